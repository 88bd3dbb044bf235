/* checkpoint.c — opening SD 1.x checkpoints in both layouts, inferring the
 * original layout's configs from tensor shapes, and binding the models. */
#include "checkpoint.h"

#include "../weights/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* The original layout's key prefixes (probe.h), short. */
#define UNET_PREFIX SDC_ORIGINAL_UNET_PREFIX
#define VAE_PREFIX SDC_ORIGINAL_VAE_PREFIX
#define CLIP_PREFIX SDC_ORIGINAL_TEXT_PREFIX

void sdc_checkpoint_close(sdc_checkpoint *ck) {
    if (!ck) return;
    sdc_safetensors_close(ck->single);
    sdc_safetensors_close(ck->unet_st);
    sdc_safetensors_close(ck->vae_st);
    sdc_safetensors_close(ck->text_st);
    free(ck->path);
    free(ck);
}

/* A short description of what a non-SD-1.x single file looks like. */
static const char *what_it_looks_like(const sdc_safetensors *st) {
    static const sdc_st_look looks[] = {
        {SDC_ST_LORA, 0, "a LoRA, not a full checkpoint"},
        {SDC_ST_SDXL, 0, "an SDXL checkpoint"},
        {SDC_ST_SD2, 0, "an SD 2.x checkpoint (OpenCLIP text encoder)"},
        {SDC_ST_EMPTY, 0, "an empty file"},
        {0, 0, NULL}};
    return sdc_st_looks_like(st, looks, "not an SD 1.x checkpoint");
}

/* A config inferred from shapes misses tensor `what`. */
static sdc_status missing(const sdc_safetensors *st, const char *path, const char *what,
                          sdc_err *err) {
    return sdc_err_set(err, SDC_ERR_FORMAT, "%s: %s (missing %s)", path, what_it_looks_like(st),
                       what);
}
#define NEED(e, what) do { if (!(e)) return missing(st, path, what, err); } while (0)

static sdc_status infer_clip(const sdc_safetensors *st, const char *path, sdc_clip_text_config *c,
                             sdc_err *err) {
    *c = sdc_clip_text_sd15;
    const char *bad = sdc_clip_text_config_from_shapes(st, CLIP_PREFIX "text_model.", c);
    char key[160];
    if (bad) snprintf(key, sizeof key, CLIP_PREFIX "text_model.%s", bad);
    NEED(!bad, key);
    /* Heads are not in any shape: width / 64 (SD 1.x's 768 / 64 = 12) or the
     * file's sdc.clip.heads. When neither works, 0: only loading the text
     * encoder fails then (sdc_checkpoint_set_clip_heads supplies it), so the
     * UNet and VAE of such a file still load. */
    long heads = sdc_st_heads(st, "sdc.clip.heads", c->width);
    c->heads = heads >= 1 ? (int)heads : 0;
    return SDC_OK;
}

static sdc_status infer_unet(const sdc_safetensors *st, const char *path, sdc_unet_config *c,
                             sdc_err *err) {
    const sdc_st_entry *in = sdc_st_findf(st, UNET_PREFIX "input_blocks.0.0.weight");
    const sdc_st_entry *out = sdc_st_findf(st, UNET_PREFIX "out.2.weight");
    NEED(in && in->ndim == 4, UNET_PREFIX "input_blocks.0.0.weight");
    NEED(out && out->ndim == 4, UNET_PREFIX "out.2.weight");
    *c = sdc_unet_sd15;
    c->in_channels = (int)in->shape[1];
    c->out_channels = (int)out->shape[0];
    if (c->in_channels != 4)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: the UNet takes %d input channels%s; SD "
                           "1.x txt2img/img2img needs 4", path, c->in_channels,
                           c->in_channels == 9 ? " (an inpainting model)" : "");
    /* input_blocks.{L+1}.0.op is the first downsampler. */
    int L = 1;
    while (L <= UNET_MAX_LAYERS && !sdc_st_findf(st, UNET_PREFIX "input_blocks.%d.0.op.weight", L + 1)) L++;
    NEED(L <= UNET_MAX_LAYERS, "the first downsampler (input_blocks.N.0.op)");
    c->layers_per_block = L;
    int n = 0;
    while (n < UNET_MAX_LEVELS &&
           sdc_st_findf(st, UNET_PREFIX "input_blocks.%d.0.out_layers.3.weight", 1 + n * (L + 1))) {
        const sdc_st_entry *e =
            sdc_st_findf(st, UNET_PREFIX "input_blocks.%d.0.out_layers.3.weight", 1 + n * (L + 1));
        c->channels[n] = (int)e->shape[0];
        c->attn[n] = sdc_st_findf(st, UNET_PREFIX "input_blocks.%d.1.proj_in.weight", 1 + n * (L + 1));
        n++;
    }
    NEED(n >= 1, "UNet down blocks");
    c->levels = n;
    const sdc_st_entry *k2 =
        sdc_st_findf(st, UNET_PREFIX "middle_block.1.transformer_blocks.0.attn2.to_k.weight");
    NEED(k2 && k2->ndim == 2, UNET_PREFIX "middle_block.1.transformer_blocks.0.attn2.to_k.weight");
    c->context_dim = (int)k2->shape[1];
    if (sdc_st_findf(st, UNET_PREFIX "input_blocks.1.1.proj_in.weight") &&
        sdc_st_findf(st, UNET_PREFIX "input_blocks.1.1.proj_in.weight")->ndim == 2)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: the UNet uses linear projections "
                           "(an SD 2.x model)", path);
    long heads = sdc_st_meta_int(st, "sdc.unet.heads", 8);
    if (heads < 1) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: bad sdc.unet.heads", path);
    c->heads = (int)heads;
    return SDC_OK;
}

static sdc_status infer_vae(const sdc_safetensors *st, const char *path, sdc_vae_config *c,
                            sdc_err *err) {
    const sdc_st_entry *in = sdc_st_findf(st, VAE_PREFIX "encoder.conv_in.weight");
    const sdc_st_entry *out = sdc_st_findf(st, VAE_PREFIX "decoder.conv_out.weight");
    const sdc_st_entry *pq = sdc_st_findf(st, VAE_PREFIX "post_quant_conv.weight");
    NEED(in && in->ndim == 4, VAE_PREFIX "encoder.conv_in.weight");
    NEED(out && out->ndim == 4, VAE_PREFIX "decoder.conv_out.weight");
    NEED(pq && pq->ndim >= 2, VAE_PREFIX "post_quant_conv.weight");
    *c = sdc_vae_sd15;
    c->in_channels = (int)in->shape[1];
    c->out_channels = (int)out->shape[0];
    c->latent_channels = (int)pq->shape[0];
    int L = 0;
    while (L < VAE_MAX_LAYERS && sdc_st_findf(st, VAE_PREFIX "encoder.down.0.block.%d.conv1.weight", L)) L++;
    NEED(L >= 1, VAE_PREFIX "encoder.down.0.block.0");
    c->layers_per_block = L;
    int n = 0;
    while (n < VAE_MAX_LEVELS && sdc_st_findf(st, VAE_PREFIX "encoder.down.%d.block.0.conv2.weight", n)) {
        c->channels[n] = (int)sdc_st_findf(st, VAE_PREFIX "encoder.down.%d.block.0.conv2.weight", n)->shape[0];
        n++;
    }
    c->levels = n;
    return SDC_OK;
}

static sdc_status open_original(sdc_checkpoint *ck, sdc_err *err) {
    const char *path = ck->path;
    ck->single = sdc_safetensors_open(path, err);
    if (!ck->single) return err->code;
    const sdc_safetensors *st = ck->single;
    sdc_layout_info info;
    sdc_layout_of_file(st, &info);
    if (!info.has[SDC_COMPONENT_UNET] || !info.has[SDC_COMPONENT_VAE] ||
        !info.has[SDC_COMPONENT_TEXT])
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: %s (an SD 1.x file holds %s*, %s* and "
                           "%s*)", path, what_it_looks_like(st), UNET_PREFIX, VAE_PREFIX,
                           CLIP_PREFIX "text_model.");
    ck->layout = SDC_LAYOUT_ORIGINAL;
    sdc_status s;
    if ((s = infer_clip(st, path, &ck->clip, err)) || (s = infer_unet(st, path, &ck->unet, err)) ||
        (s = infer_vae(st, path, &ck->vae, err)))
        return s;
    return SDC_OK;
}

/* dir/<component>/ : its weights (opened) and the path of its config.json. */
static sdc_status open_component(const char *dir, sdc_component c, sdc_safetensors **st,
                                 char *config, size_t cap, sdc_err *err) {
    char path[4096];
    const char *sub = sdc_component_name(c);
    if (!sdc_component_file(dir, c, path, sizeof path))
        return sdc_err_set(err, SDC_ERR_IO, "%s/%s: no %s (pickle .bin weights are not loaded; "
                           "convert them to safetensors)", dir, sub, sdc_component_weights_name(c));
    *st = sdc_safetensors_open(path, err);
    if (!*st) return err->code;
    snprintf(config, cap, "%s/%s/config.json", dir, sub);
    return SDC_OK;
}

static sdc_status open_diffusers(sdc_checkpoint *ck, sdc_err *err) {
    char cfg[4096];
    sdc_status s;
    ck->layout = SDC_LAYOUT_DIFFUSERS;
    if ((s = open_component(ck->path, SDC_COMPONENT_UNET, &ck->unet_st, cfg, sizeof cfg, err)) ||
        (s = sdc_unet_config_from_json(cfg, &ck->unet, err)) ||
        (s = open_component(ck->path, SDC_COMPONENT_VAE, &ck->vae_st, cfg, sizeof cfg, err)) ||
        (s = sdc_vae_config_from_json(cfg, &ck->vae, err)) ||
        (s = open_component(ck->path, SDC_COMPONENT_TEXT, &ck->text_st, cfg, sizeof cfg, err)) ||
        (s = sdc_clip_text_config_from_json(cfg, &ck->clip, err)))
        return s;
    return SDC_OK;
}

sdc_checkpoint *sdc_checkpoint_open(const char *path, sdc_err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    /* Pickle checkpoints are refused by name: unpickling runs arbitrary code. */
    const char *ext = strrchr(path, '.');
    if (!S_ISDIR(sb.st_mode) && ext && (!strcasecmp(ext, ".ckpt") || !strcasecmp(ext, ".pt") ||
                                        !strcasecmp(ext, ".pth") || !strcasecmp(ext, ".bin"))) {
        sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: a pickle checkpoint (%s) is not loaded (unpickling "
                    "can run arbitrary code); convert it to .safetensors first", path, ext);
        return NULL;
    }
    sdc_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->path = strdup(path))) {
        free(ck);
        sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
        return NULL;
    }
    sdc_status s = S_ISDIR(sb.st_mode) ? open_diffusers(ck, err) : open_original(ck, err);
    if (s) {
        sdc_checkpoint_close(ck);
        return NULL;
    }
    return ck;
}

/* ------------------------------------------------------------ binding */

/* Binds p, the table a model's init has just built with status `built`, to
 * the checkpoint. A failure names the checkpoint (init's: a config inferred
 * from odd shapes) or the file the weights came from (binding's). */
static sdc_status bind(sdc_status built, sdc_params *p, const char *component,
                       const sdc_checkpoint *ck, sdc_safetensors *own, const char *prefix,
                       sdc_backend *be, sdc_err *err) {
    if (built) return sdc_err_wrap(err, "%s", ck->path), built;
    sdc_safetensors *st = ck->layout == SDC_LAYOUT_ORIGINAL ? ck->single : own;
    sdc_status s = ck->layout == SDC_LAYOUT_ORIGINAL
                       ? sdc_params_bind(p, component, &st, 1, sdc_key_map_original, prefix, be, err)
                       : sdc_params_bind(p, component, &st, 1, sdc_key_map_diffusers, "", be, err);
    if (s) sdc_err_wrap(err, "%s", sdc_safetensors_path(st));
    return s;
}

sdc_status sdc_checkpoint_set_clip_heads(sdc_checkpoint *ck, int heads, sdc_err *err) {
    if (heads < 1 || ck->clip.width % heads)
        return sdc_err_set(err, SDC_ERR_ARG, "%s: %d text-encoder heads do not divide its width %d",
                           ck->path, heads, ck->clip.width);
    ck->clip.heads = heads;
    return SDC_OK;
}

sdc_status sdc_clip_text_load(sdc_clip_text *m, const sdc_checkpoint *ck, sdc_backend *be,
                              sdc_err *err) {
    if (ck->clip.heads < 1)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: cannot tell the text encoder's head count "
                           "(width %d is not a multiple of 64 and the file names none): pass "
                           "--clip-heads N", ck->path, ck->clip.width);
    sdc_status s = bind(sdc_clip_text_init(m, &ck->clip, err), &m->params, "text encoder", ck,
                        ck->text_st, CLIP_PREFIX, be, err);
    if (s) sdc_clip_text_free(m);
    return s;
}

sdc_status sdc_unet_load(sdc_unet *m, const sdc_checkpoint *ck, sdc_backend *be, sdc_err *err) {
    sdc_status s = bind(sdc_unet_init(m, &ck->unet, err), &m->params, "unet", ck, ck->unet_st,
                        UNET_PREFIX, be, err);
    if (s) sdc_unet_free(m);
    return s;
}

sdc_status sdc_vae_load(sdc_vae *m, const sdc_checkpoint *ck, sdc_backend *be, sdc_err *err) {
    sdc_status s = bind(sdc_vae_init(m, &ck->vae, err), &m->params, "vae", ck, ck->vae_st,
                        VAE_PREFIX, be, err);
    if (s) sdc_vae_free(m);
    return s;
}
