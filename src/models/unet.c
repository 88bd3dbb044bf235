/* unet.c — SD 1.x UNet: parameter table (both checkpoint layouts) and forward.
 * Original-layout names follow the LDM module tree: input_blocks.N.M,
 * middle_block.M, output_blocks.N.M, with resnets' in_layers/emb_layers/
 * out_layers/skip_connection. */
#include "unet.h"
#include "unet_blocks.h"

#include "../weights/hf_config.h"

#include <stdio.h>
#include <string.h>

const sdc_unet_config sdc_unet_sd15 = {
    .in_channels = 4, .out_channels = 4, .levels = 4, .channels = {320, 640, 1280, 1280},
    .attn = {true, true, true, false}, .layers_per_block = 2, .heads = 8, .context_dim = 768,
    .groups = 32, .norm_eps = 1e-5f};

/* ------------------------------------------------------------ parameter table */

/* LDM's ResBlock: in_layers (GN, SiLU, conv), emb_layers (SiLU, linear),
 * out_layers (GN, SiLU, dropout, conv), skip_connection. */
static const sdc_resnet_names ldm_resblock = {
    .norm1 = "in_layers.0", .conv1 = "in_layers.2", .temb = "emb_layers.1",
    .norm2 = "out_layers.0", .conv2 = "out_layers.3", .skip = "skip_connection"};

static void add_resnet(sdc_params *P, sdc_resnet *r, int in, int out, int temb, const char *d,
                       const char *o) {
    sdc_resnet_params(P, r, in, out, temb, &ldm_resblock, d, o);
}

static void add_transformer(sdc_params *P, unet_transformer *t, int C, int ctx, const char *d,
                            const char *o) {
    sdc_param_names n;
#define N(suf) SDC_PARAM_NAMES(&n, d, suf, o, suf)
    t->ch = C;
    sdc_params_norm(P, &t->norm_w, &t->norm_b, C, N("norm"));
    sdc_params_conv(P, &t->proj_in_w, &t->proj_in_b, C, C, 1, N("proj_in"));
    sdc_params_norm(P, &t->ln1_w, &t->ln1_b, C, N("transformer_blocks.0.norm1"));
    sdc_params_linear(P, &t->q1_w, NULL, C, C, N("transformer_blocks.0.attn1.to_q"));
    sdc_params_linear(P, &t->k1_w, NULL, C, C, N("transformer_blocks.0.attn1.to_k"));
    sdc_params_linear(P, &t->v1_w, NULL, C, C, N("transformer_blocks.0.attn1.to_v"));
    sdc_params_linear(P, &t->o1_w, &t->o1_b, C, C, N("transformer_blocks.0.attn1.to_out.0"));
    sdc_params_norm(P, &t->ln2_w, &t->ln2_b, C, N("transformer_blocks.0.norm2"));
    sdc_params_linear(P, &t->q2_w, NULL, C, C, N("transformer_blocks.0.attn2.to_q"));
    sdc_params_linear(P, &t->k2_w, NULL, C, ctx, N("transformer_blocks.0.attn2.to_k"));
    sdc_params_linear(P, &t->v2_w, NULL, C, ctx, N("transformer_blocks.0.attn2.to_v"));
    sdc_params_linear(P, &t->o2_w, &t->o2_b, C, C, N("transformer_blocks.0.attn2.to_out.0"));
    sdc_params_norm(P, &t->ln3_w, &t->ln3_b, C, N("transformer_blocks.0.norm3"));
    sdc_params_linear(P, &t->ff1_w, &t->ff1_b, 8 * C, C, N("transformer_blocks.0.ff.net.0.proj"));
    sdc_params_linear(P, &t->ff2_w, &t->ff2_b, C, 4 * C, N("transformer_blocks.0.ff.net.2"));
    sdc_params_conv(P, &t->proj_out_w, &t->proj_out_b, C, C, 1, N("proj_out"));
#undef N
}

/* Layer j of level i: a resnet from in to out channels and, on a level with
 * attention, a transformer after it. Diffusers names them
 * "<blocks>.<i>.resnets.<j>" and "<blocks>.<i>.attentions.<j>", LDM
 * "<ldm>.<idx>.0" and "<ldm>.<idx>.1". */
static void add_layer(sdc_params *P, unet_level *lv, const sdc_unet_config *c, bool attn, int in,
                      int out, const char *blocks, int i, int j, const char *ldm, int idx) {
    char d[96], o[96];
    snprintf(d, sizeof d, "%s.%d.resnets.%d", blocks, i, j);
    snprintf(o, sizeof o, "%s.%d.0", ldm, idx);
    add_resnet(P, &lv->res[j], in, out, 4 * c->channels[0], d, o);
    if (!attn) return;
    snprintf(d, sizeof d, "%s.%d.attentions.%d", blocks, i, j);
    snprintf(o, sizeof o, "%s.%d.1", ldm, idx);
    add_transformer(P, &lv->attn[j], out, c->context_dim, d, o);
}

sdc_status sdc_unet_init(sdc_unet *m, const sdc_unet_config *cfg, sdc_err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const sdc_unet_config *c = cfg;
    int L = c->layers_per_block, n = c->levels, C0 = c->channels[0], T = 4 * C0;
    if (n < 1 || n > UNET_MAX_LEVELS || L < 1 || L > UNET_MAX_LAYERS || c->heads < 1 ||
        c->groups < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "unet: config out of range");
    for (int i = 0; i < n; i++)
        if (c->channels[i] % c->groups || (c->attn[i] && c->channels[i] % c->heads))
            return sdc_err_set(err, SDC_ERR_ARG, "unet: %d channels do not split into %d groups "
                               "or %d heads", c->channels[i], c->groups, c->heads);
    sdc_params *P = &m->params;
    sdc_params_init(P);
    char d[96], o[96];
    sdc_params_conv(P, &m->conv_in_w, &m->conv_in_b, C0, c->in_channels, 3, "conv_in",
                    "input_blocks.0.0");
    sdc_params_linear(P, &m->temb1_w, &m->temb1_b, T, C0, "time_embedding.linear_1",
                      "time_embed.0");
    sdc_params_linear(P, &m->temb2_w, &m->temb2_b, T, T, "time_embedding.linear_2",
                      "time_embed.2");
    int ch = C0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) {
            add_layer(P, &m->down[i], c, c->attn[i], ch, c->channels[i], "down_blocks", i, j,
                      "input_blocks", 1 + i * (L + 1) + j);
            ch = c->channels[i];
        }
        if (i < n - 1) {
            snprintf(d, sizeof d, "down_blocks.%d.downsamplers.0.conv", i);
            snprintf(o, sizeof o, "input_blocks.%d.0.op", (i + 1) * (L + 1));
            sdc_params_conv(P, &m->down[i].sample_w, &m->down[i].sample_b, ch, ch, 3, d, o);
        }
    }
    add_resnet(P, &m->mid_res[0], ch, ch, T, "mid_block.resnets.0", "middle_block.0");
    add_transformer(P, &m->mid_attn, ch, c->context_dim, "mid_block.attentions.0",
                    "middle_block.1");
    add_resnet(P, &m->mid_res[1], ch, ch, T, "mid_block.resnets.1", "middle_block.2");
    /* Up level i mirrors down level n-1-i; its resnets eat the skips in reverse. */
    for (int i = 0; i < n; i++) {
        int lvl = n - 1 - i, out = c->channels[lvl];
        int skip_in = c->channels[lvl > 0 ? lvl - 1 : 0];
        for (int j = 0; j <= L; j++) {
            int skip = j == L ? skip_in : out;
            add_layer(P, &m->up[i], c, c->attn[lvl], ch + skip, out, "up_blocks", i, j,
                      "output_blocks", i * (L + 1) + j);
            ch = out;
        }
        if (i < n - 1) {
            snprintf(d, sizeof d, "up_blocks.%d.upsamplers.0.conv", i);
            snprintf(o, sizeof o, "output_blocks.%d.%d.conv", i * (L + 1) + L,
                     c->attn[lvl] ? 2 : 1);
            sdc_params_conv(P, &m->up[i].sample_w, &m->up[i].sample_b, ch, ch, 3, d, o);
        }
    }
    sdc_params_norm(P, &m->norm_out_w, &m->norm_out_b, C0, "conv_norm_out", "out.0");
    sdc_params_conv(P, &m->conv_out_w, &m->conv_out_b, c->out_channels, C0, 3, "conv_out",
                    "out.2");
    if (P->status) return sdc_err_set(err, P->status, "unet: building the parameter table");
    return SDC_OK;
}

void sdc_unet_free(sdc_unet *m) {
    sdc_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ forward */

/* x: [B, in, H, W], temb_act: [B, T] (already SiLU'd) -> [B, out, H, W] */
sdc_tensor sdc_unet_resnet_forward(sdc_exec *ex, const sdc_resnet *r, const sdc_unet_config *c,
                                   sdc_tensor x, sdc_tensor temb_act) {
    sdc_tensor h = sdc_x_group_norm(ex, x, &r->norm1_w, &r->norm1_b, c->groups, c->norm_eps, true);
    sdc_tensor h1 = sdc_x_conv2d(ex, h, &r->conv1_w, &r->conv1_b, 1, 1);
    sdc_x_free(ex, &h);
    sdc_tensor t = sdc_x_linear(ex, temb_act, &r->temb_w, &r->temb_b); /* [B, out] */
    sdc_tensor t4 = sdc_x_reshape(ex, t, 4, (const int64_t[]){t.shape[0], t.shape[1], 1, 1});
    sdc_x_add_inplace(ex, h1, t4);
    sdc_x_free(ex, &t);
    h = sdc_x_group_norm(ex, h1, &r->norm2_w, &r->norm2_b, c->groups, c->norm_eps, true);
    sdc_x_free(ex, &h1);
    sdc_tensor out = sdc_x_conv2d(ex, h, &r->conv2_w, &r->conv2_b, 1, 1);
    sdc_x_free(ex, &h);
    sdc_unet_resnet_add_skip(ex, r, x, out);
    return out;
}

void sdc_unet_resnet_add_skip(sdc_exec *ex, const sdc_resnet *r, sdc_tensor x, sdc_tensor out) {
    if (r->in != r->out) {
        sdc_tensor s = sdc_x_conv2d(ex, x, &r->skip_w, &r->skip_b, 1, 0);
        sdc_x_add_inplace(ex, out, s);
        sdc_x_free(ex, &s);
    } else {
        sdc_x_add_inplace(ex, out, x);
    }
}

/* q_in: [B, N, C]; kv_in: [B, M, Ck] -> attention output projected, [B, N, C] */
static sdc_tensor attn_forward(sdc_exec *ex, int heads, sdc_tensor q_in, sdc_tensor kv_in,
                               const sdc_tensor *q_w, const sdc_tensor *k_w, const sdc_tensor *v_w,
                               const sdc_tensor *o_w, const sdc_tensor *o_b) {
    sdc_tensor q = sdc_x_linear(ex, q_in, q_w, NULL);
    sdc_tensor k = sdc_x_linear(ex, kv_in, k_w, NULL);
    sdc_tensor v = sdc_x_linear(ex, kv_in, v_w, NULL);
    sdc_tensor a = sdc_x_attention(ex, q, k, v, heads, false);
    sdc_x_free(ex, &q);
    sdc_x_free(ex, &k);
    sdc_x_free(ex, &v);
    sdc_tensor o = sdc_x_linear(ex, a, o_w, o_b);
    sdc_x_free(ex, &a);
    return o;
}

/* h += ff(ln3(h)) for h [B, n, C] (a whole tensor or a view of rows). */
static void feed_forward_on(sdc_exec *ex, const unet_transformer *t, sdc_tensor h) {
    sdc_tensor ln = sdc_x_layer_norm(ex, h, &t->ln3_w, &t->ln3_b, 1e-5f);
    sdc_tensor f = sdc_x_linear(ex, ln, &t->ff1_w, &t->ff1_b); /* [B, n, 8C] */
    sdc_x_free(ex, &ln);
    sdc_tensor g = sdc_x_geglu(ex, f);                         /* [B, n, 4C] */
    sdc_x_free(ex, &f);
    sdc_tensor o = sdc_x_linear(ex, g, &t->ff2_w, &t->ff2_b);  /* [B, n, C] */
    sdc_x_free(ex, &g);
    sdc_x_add_inplace(ex, h, o);
    sdc_x_free(ex, &o);
}

/* A chunk keeps at least this many rows: the CPU linear picks its path by the
 * rows of one batch item (wgemm up to 256), and a chunk must take the whole
 * tensor's path to give its bits. */
#define FF_MIN_CHUNK_ROWS 512

/* The feed-forward's [B, HW, 8C] projection is the UNet's widest tensor
 * (84 MB at 512², CFG, F32), so under ex->chunk_bytes it runs one batch item
 * at a time, in equal parts within the budget but of at least
 * FF_MIN_CHUNK_ROWS rows. */
static void feed_forward(sdc_exec *ex, const unet_transformer *t, sdc_tensor h /* [B, HW, C] */) {
    if (!ex->chunk_bytes) {
        feed_forward_on(ex, t, h);
        return;
    }
    int64_t B = h.shape[0], HW = h.shape[1];
    size_t row_bytes = (size_t)t->ff1_w.shape[0] * sdc_dtype_size(h.dtype);
    int64_t fit = (int64_t)(ex->chunk_bytes / (row_bytes ? row_bytes : 1));
    if (fit < FF_MIN_CHUNK_ROWS) fit = FF_MIN_CHUNK_ROWS;
    int64_t parts = (HW + fit - 1) / fit; /* each within the budget ... */
    if (parts > HW / FF_MIN_CHUNK_ROWS) parts = HW / FF_MIN_CHUNK_ROWS; /* ... unless too small */
    if (parts < 1) parts = 1;
    for (int64_t b = 0; b < B; b++)
        for (int64_t p = 0; p < parts && !ex->status; p++) {
            int64_t r0 = HW * p / parts, r1 = HW * (p + 1) / parts;
            feed_forward_on(ex, t, sdc_x_rows(ex, h, b * HW + r0, r1 - r0));
        }
}

/* x: [B, C, H, W], ctx: [B, 77, context] -> [B, C, H, W] (x + transformer(x)) */
sdc_tensor sdc_unet_transformer_forward(sdc_exec *ex, const unet_transformer *t,
                                        const sdc_unet_config *c, sdc_tensor x, sdc_tensor ctx) {
    int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    sdc_tensor n = sdc_x_group_norm(ex, x, &t->norm_w, &t->norm_b, c->groups, 1e-6f, false);
    sdc_tensor p = sdc_x_conv2d(ex, n, &t->proj_in_w, &t->proj_in_b, 1, 0);
    sdc_x_free(ex, &n);
    sdc_tensor h = sdc_x_transpose(ex, sdc_x_reshape(ex, p, 3, (const int64_t[]){B, C, H * W}));
    sdc_x_free(ex, &p); /* h: [B, HW, C] */

    n = sdc_x_layer_norm(ex, h, &t->ln1_w, &t->ln1_b, 1e-5f);
    sdc_tensor o = attn_forward(ex, c->heads, n, n, &t->q1_w, &t->k1_w, &t->v1_w, &t->o1_w,
                                &t->o1_b);
    sdc_x_free(ex, &n);
    sdc_x_add_inplace(ex, h, o);
    sdc_x_free(ex, &o);

    n = sdc_x_layer_norm(ex, h, &t->ln2_w, &t->ln2_b, 1e-5f);
    o = attn_forward(ex, c->heads, n, ctx, &t->q2_w, &t->k2_w, &t->v2_w, &t->o2_w, &t->o2_b);
    sdc_x_free(ex, &n);
    sdc_x_add_inplace(ex, h, o);
    sdc_x_free(ex, &o);

    feed_forward(ex, t, h);

    sdc_tensor back = sdc_x_transpose(ex, h); /* [B, C, HW] */
    sdc_x_free(ex, &h);
    sdc_tensor out = sdc_x_conv2d(ex, sdc_x_reshape(ex, back, 4, (const int64_t[]){B, C, H, W}),
                                  &t->proj_out_w, &t->proj_out_b, 1, 0);
    sdc_x_free(ex, &back);
    sdc_x_add_inplace(ex, out, x);
    return out;
}

/* t: [B] -> [B, 4·C0]; every resnet uses SiLU(temb), so it is applied once. */
sdc_tensor sdc_unet_time_embedding(sdc_exec *ex, const sdc_unet *m, sdc_tensor t) {
    sdc_tensor e = sdc_x_timestep_embedding(ex, t, m->cfg.channels[0], true, 0.0f);
    SDC_X_STEP(e, sdc_x_linear(ex, e, &m->temb1_w, &m->temb1_b));
    SDC_X_STEP(e, sdc_x_silu(ex, e));
    SDC_X_STEP(e, sdc_x_linear(ex, e, &m->temb2_w, &m->temb2_b));
    SDC_X_STEP(e, sdc_x_silu(ex, e));
    return e;
}

bool sdc_unet_inputs_ok(sdc_exec *ex, const sdc_unet *m, sdc_tensor x, sdc_tensor t,
                        sdc_tensor ctx) {
    const sdc_unet_config *c = &m->cfg;
    if (ex->status) return false;
    if (x.ndim != 4 || x.shape[1] != c->in_channels || x.shape[2] < 1 || x.shape[3] < 1 ||
        t.ndim != 1 || t.shape[0] != x.shape[0] || ctx.ndim != 3 || ctx.shape[0] != x.shape[0] ||
        ctx.shape[2] != c->context_dim) {
        ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE,
                                 "unet: expected sample [B, %d, h, w], timestep [B] and context "
                                 "[B, T, %d]", c->in_channels, c->context_dim);
        return false;
    }
    return true;
}

sdc_tensor sdc_unet_forward(sdc_exec *ex, const sdc_unet *m, sdc_tensor x, sdc_tensor t,
                            sdc_tensor ctx) {
    const sdc_unet_config *c = &m->cfg;
    int n = c->levels, L = c->layers_per_block;
    sdc_tensor none = {0};
    if (!sdc_unet_inputs_ok(ex, m, x, t, ctx)) return none;
    sdc_tensor e = sdc_unet_time_embedding(ex, m, t);

    sdc_tensor skips[1 + UNET_MAX_LEVELS * (UNET_MAX_LAYERS + 1)];
    int ns = 0;
    sdc_tensor h = sdc_x_conv2d(ex, x, &m->conv_in_w, &m->conv_in_b, 1, 1);
    skips[ns++] = h;
    char name[64];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) {
            h = sdc_unet_resnet_forward(ex, &m->down[i].res[j], c, h, e);
            if (c->attn[i])
                SDC_X_STEP(h, sdc_unet_transformer_forward(ex, &m->down[i].attn[j], c, h, ctx));
            skips[ns++] = h;
        }
        if (i < n - 1) {
            h = sdc_x_conv2d(ex, h, &m->down[i].sample_w, &m->down[i].sample_b, 2, 1);
            skips[ns++] = h;
        }
        snprintf(name, sizeof name, "down_blocks.%d", i);
        sdc_x_dump(ex, name, &h);
    }
    /* h aliases the last skip; the mid block starts from it without freeing. */
    h = sdc_unet_resnet_forward(ex, &m->mid_res[0], c, h, e);
    SDC_X_STEP(h, sdc_unet_transformer_forward(ex, &m->mid_attn, c, h, ctx));
    SDC_X_STEP(h, sdc_unet_resnet_forward(ex, &m->mid_res[1], c, h, e));
    sdc_x_dump(ex, "mid_block", &h);
    for (int i = 0; i < n; i++) {
        int lvl = n - 1 - i;
        for (int j = 0; j <= L; j++) {
            sdc_tensor s = skips[--ns];
            SDC_X_STEP(h, sdc_x_concat(ex, h, s));
            sdc_x_free(ex, &s);
            SDC_X_STEP(h, sdc_unet_resnet_forward(ex, &m->up[i].res[j], c, h, e));
            if (c->attn[lvl])
                SDC_X_STEP(h, sdc_unet_transformer_forward(ex, &m->up[i].attn[j], c, h, ctx));
        }
        if (i < n - 1) {
            /* To the next skip's size: an odd size came from a stride-2
             * conv of an odd input (diffusers' upsample_size). */
            const sdc_tensor *next = &skips[ns - 1];
            SDC_X_STEP(h, sdc_x_upsample_to(ex, h, next->shape[2], next->shape[3]));
            SDC_X_STEP(h, sdc_x_conv2d(ex, h, &m->up[i].sample_w, &m->up[i].sample_b, 1, 1));
        }
        snprintf(name, sizeof name, "up_blocks.%d", i);
        sdc_x_dump(ex, name, &h);
    }
    sdc_x_free(ex, &e);
    SDC_X_STEP(h, sdc_x_group_norm(ex, h, &m->norm_out_w, &m->norm_out_b, c->groups, c->norm_eps, true));
    SDC_X_STEP(h, sdc_x_conv2d(ex, h, &m->conv_out_w, &m->conv_out_b, 1, 1));
    /* On failure, release whatever skips are still held. */
    while (ns > 0) sdc_x_free(ex, &skips[--ns]);
    return h;
}
