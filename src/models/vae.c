/* vae.c — SD 1.x AutoencoderKL: parameter table (both layouts) and forward.
 * Original-layout names follow LDM: encoder.down.I.block.J, .downsample,
 * mid.block_1/attn_1/block_2, decoder.up.I (numbered from the highest
 * resolution, the reverse of diffusers' up_blocks), nin_shortcut. */
#include "vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const sdc_vae_config sdc_vae_sd15 = {
    .in_channels = 3, .out_channels = 3, .latent_channels = 4, .levels = 4,
    .channels = {128, 256, 512, 512}, .layers_per_block = 2, .groups = 32,
    .scaling_factor = 0.18215f};

#define VAE_EPS 1e-6f /* every group norm of the SD VAE */

/* LDM's ResnetBlock (no time embedding) with its nin_shortcut. */
static const sdc_resnet_names ldm_resnet = {
    .norm1 = "norm1", .conv1 = "conv1", .norm2 = "norm2", .conv2 = "conv2",
    .skip = "nin_shortcut"};

static void add_resnet(sdc_params *P, sdc_resnet *r, int in, int out, const char *d,
                       const char *o) {
    sdc_resnet_params(P, r, in, out, 0, &ldm_resnet, d, o);
}

static void add_mid(sdc_params *P, vae_mid *m, int C, const char *d, const char *o) {
    sdc_param_names n;
#define N(dsuf, osuf) SDC_PARAM_NAMES(&n, d, dsuf, o, osuf)
    add_resnet(P, &m->res0, C, C, N("resnets.0", "block_1"));
    sdc_params_norm(P, &m->attn.norm_w, &m->attn.norm_b, C,
                    N("attentions.0.group_norm", "attn_1.norm"));
    sdc_params_linear(P, &m->attn.q_w, &m->attn.q_b, C, C, N("attentions.0.to_q", "attn_1.q"));
    sdc_params_linear(P, &m->attn.k_w, &m->attn.k_b, C, C, N("attentions.0.to_k", "attn_1.k"));
    sdc_params_linear(P, &m->attn.v_w, &m->attn.v_b, C, C, N("attentions.0.to_v", "attn_1.v"));
    sdc_params_linear(P, &m->attn.o_w, &m->attn.o_b, C, C,
                      N("attentions.0.to_out.0", "attn_1.proj_out"));
    add_resnet(P, &m->res1, C, C, N("resnets.1", "block_2"));
#undef N
}

sdc_status sdc_vae_init(sdc_vae *m, const sdc_vae_config *cfg, sdc_err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const sdc_vae_config *c = cfg;
    int n = c->levels, L = c->layers_per_block, C0 = c->channels[0], Cn = c->channels[n - 1];
    int lat = c->latent_channels;
    if (n < 1 || n > VAE_MAX_LEVELS || L < 1 || L > VAE_MAX_LAYERS || lat < 1 || c->groups < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "vae: config out of range");
    for (int i = 0; i < n; i++)
        if (c->channels[i] < 1 || c->channels[i] % c->groups)
            return sdc_err_set(err, SDC_ERR_ARG, "vae: %d channels do not split into %d groups",
                               c->channels[i], c->groups);
    sdc_params *P = &m->params;
    sdc_params_init(P);
    char d[96], o[96];
    sdc_params_conv(P, &m->enc_in_w, &m->enc_in_b, C0, c->in_channels, 3, "encoder.conv_in", NULL);
    int ch = C0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) {
            snprintf(d, sizeof d, "encoder.down_blocks.%d.resnets.%d", i, j);
            snprintf(o, sizeof o, "encoder.down.%d.block.%d", i, j);
            add_resnet(P, &m->enc[i].res[j], ch, c->channels[i], d, o);
            ch = c->channels[i];
        }
        if (i < n - 1) {
            snprintf(d, sizeof d, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            snprintf(o, sizeof o, "encoder.down.%d.downsample.conv", i);
            sdc_params_conv(P, &m->enc[i].sample_w, &m->enc[i].sample_b, ch, ch, 3, d, o);
        }
    }
    add_mid(P, &m->enc_mid, Cn, "encoder.mid_block", "encoder.mid");
    sdc_params_norm(P, &m->enc_norm_w, &m->enc_norm_b, Cn, "encoder.conv_norm_out",
                    "encoder.norm_out");
    sdc_params_conv(P, &m->enc_out_w, &m->enc_out_b, 2 * lat, Cn, 3, "encoder.conv_out", NULL);
    sdc_params_conv(P, &m->quant_w, &m->quant_b, 2 * lat, 2 * lat, 1, "quant_conv", NULL);

    sdc_params_conv(P, &m->post_quant_w, &m->post_quant_b, lat, lat, 1, "post_quant_conv", NULL);
    sdc_params_conv(P, &m->dec_in_w, &m->dec_in_b, Cn, lat, 3, "decoder.conv_in", NULL);
    add_mid(P, &m->dec_mid, Cn, "decoder.mid_block", "decoder.mid");
    ch = Cn;
    for (int i = 0; i < n; i++) {
        int lvl = n - 1 - i, out = c->channels[lvl];
        for (int j = 0; j <= L; j++) {
            snprintf(d, sizeof d, "decoder.up_blocks.%d.resnets.%d", i, j);
            snprintf(o, sizeof o, "decoder.up.%d.block.%d", lvl, j);
            add_resnet(P, &m->dec[i].res[j], ch, out, d, o);
            ch = out;
        }
        if (i < n - 1) {
            snprintf(d, sizeof d, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            snprintf(o, sizeof o, "decoder.up.%d.upsample.conv", lvl);
            sdc_params_conv(P, &m->dec[i].sample_w, &m->dec[i].sample_b, ch, ch, 3, d, o);
        }
    }
    sdc_params_norm(P, &m->dec_norm_w, &m->dec_norm_b, C0, "decoder.conv_norm_out",
                    "decoder.norm_out");
    sdc_params_conv(P, &m->dec_out_w, &m->dec_out_b, c->out_channels, C0, 3, "decoder.conv_out",
                    NULL);
    if (P->status) return sdc_err_set(err, P->status, "vae: building the parameter table");
    return SDC_OK;
}

void sdc_vae_free(sdc_vae *m) {
    sdc_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ forward */

/* x: [B, in, H, W] -> [B, out, H, W]; x is consumed. */
static sdc_tensor resnet_forward(sdc_exec *ex, const sdc_resnet *r, int groups, sdc_tensor x) {
    sdc_tensor h = sdc_x_group_norm(ex, x, &r->norm1_w, &r->norm1_b, groups, VAE_EPS, true);
    SDC_X_STEP(h, sdc_x_conv2d(ex, h, &r->conv1_w, &r->conv1_b, 1, 1));
    SDC_X_STEP(h, sdc_x_group_norm(ex, h, &r->norm2_w, &r->norm2_b, groups, VAE_EPS, true));
    SDC_X_STEP(h, sdc_x_conv2d(ex, h, &r->conv2_w, &r->conv2_b, 1, 1));
    if (r->in != r->out) SDC_X_STEP(x, sdc_x_conv2d(ex, x, &r->skip_w, &r->skip_b, 1, 0));
    sdc_x_add_inplace(ex, h, x);
    sdc_x_free(ex, &x);
    return h;
}

/* x: [B, C, H, W] -> x + attention(GN(x)) with one head of width C; x consumed. */
static sdc_tensor attention_forward(sdc_exec *ex, const vae_attention *a, int groups,
                                    sdc_tensor x) {
    int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    sdc_tensor n = sdc_x_group_norm(ex, x, &a->norm_w, &a->norm_b, groups, VAE_EPS, false);
    sdc_tensor t = sdc_x_transpose(ex, sdc_x_reshape(ex, n, 3, (const int64_t[]){B, C, H * W}));
    sdc_x_free(ex, &n); /* t: [B, HW, C] */
    sdc_tensor q = sdc_x_linear(ex, t, &a->q_w, &a->q_b);
    sdc_tensor k = sdc_x_linear(ex, t, &a->k_w, &a->k_b);
    sdc_tensor v = sdc_x_linear(ex, t, &a->v_w, &a->v_b);
    sdc_x_free(ex, &t);
    sdc_tensor o = sdc_x_attention(ex, q, k, v, 1, false);
    sdc_x_free(ex, &q);
    sdc_x_free(ex, &k);
    sdc_x_free(ex, &v);
    SDC_X_STEP(o, sdc_x_linear(ex, o, &a->o_w, &a->o_b));
    SDC_X_STEP(o, sdc_x_transpose(ex, o)); /* [B, C, HW] */
    sdc_tensor y = sdc_x_reshape(ex, o, 4, (const int64_t[]){B, C, H, W});
    sdc_x_add_inplace(ex, y, x);
    sdc_x_free(ex, &x);
    return y;
}

static sdc_tensor mid_forward(sdc_exec *ex, const vae_mid *m, int groups, sdc_tensor h) {
    h = resnet_forward(ex, &m->res0, groups, h);
    h = attention_forward(ex, &m->attn, groups, h);
    return resnet_forward(ex, &m->res1, groups, h);
}

static bool check_input(sdc_exec *ex, const sdc_vae *m, sdc_tensor x, int channels,
                        int64_t mult, const char *what) {
    if (ex->status) return false;
    if (x.ndim != 4 || x.shape[1] != channels || x.shape[2] < 1 || x.shape[3] < 1 ||
        x.shape[2] % mult || x.shape[3] % mult) {
        ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "vae %s: expected [B, %d, h, w] with h "
                                 "and w positive multiples of %lld", what, channels,
                                 (long long)mult);
        return false;
    }
    (void)m;
    return true;
}

sdc_status sdc_vae_encode(sdc_exec *ex, const sdc_vae *m, sdc_tensor x, sdc_tensor *mean,
                          sdc_tensor *logvar) {
    const sdc_vae_config *c = &m->cfg;
    int n = c->levels, L = c->layers_per_block, lat = c->latent_channels;
    *mean = *logvar = (sdc_tensor){0};
    if (!check_input(ex, m, x, c->in_channels, (int64_t)1 << (n - 1), "encode")) return ex->status;
    sdc_tensor h = sdc_x_conv2d(ex, x, &m->enc_in_w, &m->enc_in_b, 1, 1);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) h = resnet_forward(ex, &m->enc[i].res[j], c->groups, h);
        /* diffusers pads (0, 1, 0, 1) and convolves with stride 2, padding 0. */
        if (i < n - 1)
            SDC_X_STEP(h, sdc_x_conv2d_pad(ex, h, &m->enc[i].sample_w, &m->enc[i].sample_b, 2, 0, 1, 0, 1));
    }
    h = mid_forward(ex, &m->enc_mid, c->groups, h);
    SDC_X_STEP(h, sdc_x_group_norm(ex, h, &m->enc_norm_w, &m->enc_norm_b, c->groups, VAE_EPS, true));
    SDC_X_STEP(h, sdc_x_conv2d(ex, h, &m->enc_out_w, &m->enc_out_b, 1, 1));
    SDC_X_STEP(h, sdc_x_conv2d(ex, h, &m->quant_w, &m->quant_b, 1, 0)); /* [B, 2*lat, h, w] */
    if (ex->status) return ex->status;
    /* Split the moments through the host, which works on every backend and
     * activation dtype: both halves are contiguous per sample and the latent
     * is small. mean and logvar are F32. */
    int64_t B = h.shape[0], hw = h.shape[2] * h.shape[3];
    int64_t shape[4] = {B, lat, h.shape[2], h.shape[3]};
    size_t half = (size_t)(lat * hw), total = (size_t)B * 2 * half;
    float *buf = malloc(sizeof(float) * (2 * total + 1)); /* moments, then split */
    if (!buf) ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "vae encode: out of memory");
    if (!ex->status && !sdc_x_to_host(ex, &h, buf)) {
        float *mu = buf + total, *lv = mu + total / 2;
        for (int64_t b = 0; b < B; b++) {
            const float *src = buf + (size_t)b * 2 * half;
            memcpy(mu + (size_t)b * half, src, half * sizeof(float));
            for (size_t i = 0; i < half; i++) {
                float v = src[half + i];
                lv[(size_t)b * half + i] = v < -30.0f ? -30.0f : v > 20.0f ? 20.0f : v;
            }
        }
        *mean = sdc_x_from_host(ex, mu, SDC_F32, 4, shape);
        *logvar = sdc_x_from_host(ex, lv, SDC_F32, 4, shape);
    }
    free(buf);
    sdc_x_free(ex, &h);
    if (ex->status) {
        sdc_x_free(ex, mean);
        sdc_x_free(ex, logvar);
    }
    return ex->status;
}

sdc_tensor sdc_vae_decode(sdc_exec *ex, const sdc_vae *m, sdc_tensor z) {
    const sdc_vae_config *c = &m->cfg;
    int n = c->levels, L = c->layers_per_block;
    if (!check_input(ex, m, z, c->latent_channels, 1, "decode")) return (sdc_tensor){0};
    sdc_tensor h = sdc_x_conv2d(ex, z, &m->post_quant_w, &m->post_quant_b, 1, 0);
    SDC_X_STEP(h, sdc_x_conv2d(ex, h, &m->dec_in_w, &m->dec_in_b, 1, 1));
    h = mid_forward(ex, &m->dec_mid, c->groups, h);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= L; j++) h = resnet_forward(ex, &m->dec[i].res[j], c->groups, h);
        if (i < n - 1) {
            SDC_X_STEP(h, sdc_x_upsample2x(ex, h));
            SDC_X_STEP(h, sdc_x_conv2d(ex, h, &m->dec[i].sample_w, &m->dec[i].sample_b, 1, 1));
        }
    }
    SDC_X_STEP(h, sdc_x_group_norm(ex, h, &m->dec_norm_w, &m->dec_norm_b, c->groups, VAE_EPS, true));
    SDC_X_STEP(h, sdc_x_conv2d(ex, h, &m->dec_out_w, &m->dec_out_b, 1, 1));
    return h;
}

/* ------------------------------------------------------------ config.json */

#include "../weights/hf_config.h"

sdc_status sdc_vae_config_from_json(const char *path, sdc_vae_config *cfg, sdc_err *err) {
    cJSON *j = sdc_json_load(path, err);
    if (!j) return err->code;
    sdc_vae_config c = sdc_vae_sd15;
    sdc_status s;
    if ((s = sdc_json_int(j, path, "in_channels", 1, 64, 3, &c.in_channels, err)) ||
        (s = sdc_json_int(j, path, "out_channels", 1, 64, 3, &c.out_channels, err)) ||
        (s = sdc_json_int(j, path, "latent_channels", 1, 64, 4, &c.latent_channels, err)) ||
        (s = sdc_json_int(j, path, "layers_per_block", 1, VAE_MAX_LAYERS, 2, &c.layers_per_block,
                          err)) ||
        (s = sdc_json_int(j, path, "norm_num_groups", 1, 1024, 32, &c.groups, err)) ||
        (s = sdc_json_float(j, path, "scaling_factor", 1e-6, 1e6, 0.18215, &c.scaling_factor,
                            err))) {
        cJSON_Delete(j);
        return s;
    }
    const cJSON *boc = cJSON_GetObjectItemCaseSensitive(j, "block_out_channels");
    int n = cJSON_GetArraySize(boc);
    if (!cJSON_IsArray(boc) || n < 1 || n > VAE_MAX_LEVELS) {
        cJSON_Delete(j);
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: block_out_channels must list 1 to %d "
                           "channel counts", path, VAE_MAX_LEVELS);
    }
    c.levels = n;
    for (int i = 0; i < n; i++) {
        const cJSON *ch = cJSON_GetArrayItem(boc, i);
        if (!cJSON_IsNumber(ch) || ch->valuedouble < 1 || ch->valuedouble > 65536 ||
            ch->valuedouble != (double)(int)ch->valuedouble || (int)ch->valuedouble % c.groups) {
            cJSON_Delete(j);
            return sdc_err_set(err, SDC_ERR_FORMAT, "%s: block_out_channels[%d] is not a "
                               "positive multiple of %d", path, i, c.groups);
        }
        c.channels[i] = (int)ch->valuedouble;
    }
    cJSON_Delete(j);
    *cfg = c;
    return SDC_OK;
}
