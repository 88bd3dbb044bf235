/* clip_model.c — CLIPModel configs (folder config.json or shapes of a single
 * file), binding, and the text / image embedding paths (see clip_model.h). */
#include "clip_model.h"

#include "../weights/hf_config.h"
#include "../weights/probe.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const sdc_clip_config sdc_clip_vit_l14 = {
    .text = {.vocab = 49408, .max_pos = 77, .width = 768, .heads = 12, .layers = 12, .ffn = 3072,
             .eps = 1e-5f},
    .vision = {.image_size = 224, .patch = 14, .channels = 3, .width = 1024, .heads = 16,
               .layers = 24, .ffn = 4096, .eps = 1e-5f},
    .proj = 768, .eos_id = 49407, .resize = 224, .crop = 224,
    .mean = {0.48145466f, 0.4578275f, 0.40821073f},
    .std = {0.26862954f, 0.26130258f, 0.27577711f}};

/* ------------------------------------------------------------ config.json */

/* transformers' CLIPTextConfig / CLIPVisionConfig defaults fill absent keys
 * (save_pretrained writes only the values that differ from them). */
static sdc_status text_config(const cJSON *t, const char *path, sdc_clip_config *c, sdc_err *err) {
    static const sdc_clip_text_config defaults = {
        .vocab = 49408, .max_pos = 77, .width = 512, .heads = 8, .layers = 12, .ffn = 2048,
        .eps = 1e-5f};
    sdc_clip_text_config *x = &c->text;
    *x = defaults;
    sdc_status s;
    if ((s = sdc_clip_text_config_keys(t, path, 1 << 22, x, err)) ||
        (s = sdc_json_int(t, path, "eos_token_id", 0, 1 << 22, 49407, &c->eos_id, err)))
        return sdc_err_wrap(err, "text_config"), s;
    const char *act = sdc_json_str(t, "hidden_act", "quick_gelu");
    if (strcmp(act, "quick_gelu") != 0)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: text_config.hidden_act \"%s\" is not "
                           "quick_gelu (OpenCLIP-trained models use gelu; not supported)", path, act);
    if (x->width % x->heads)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: text hidden_size %d is not a multiple of "
                           "num_attention_heads %d", path, x->width, x->heads);
    return SDC_OK;
}

static sdc_status vision_config(const cJSON *v, const char *path, sdc_clip_config *c,
                                sdc_err *err) {
    sdc_clip_vision_config *x = &c->vision;
    sdc_status s;
    if ((s = sdc_json_int(v, path, "hidden_size", 1, 1 << 16, 768, &x->width, err)) ||
        (s = sdc_json_int(v, path, "num_attention_heads", 1, 1024, 12, &x->heads, err)) ||
        (s = sdc_json_int(v, path, "num_hidden_layers", 1, 1024, 12, &x->layers, err)) ||
        (s = sdc_json_int(v, path, "intermediate_size", 1, 1 << 18, 3072, &x->ffn, err)) ||
        (s = sdc_json_int(v, path, "num_channels", 1, 16, 3, &x->channels, err)) ||
        (s = sdc_json_int(v, path, "image_size", 1, 4096, 224, &x->image_size, err)) ||
        (s = sdc_json_int(v, path, "patch_size", 1, 4096, 32, &x->patch, err)) ||
        (s = sdc_json_float(v, path, "layer_norm_eps", 1e-12, 1, 1e-5, &x->eps, err)))
        return sdc_err_wrap(err, "vision_config"), s;
    const char *act = sdc_json_str(v, "hidden_act", "quick_gelu");
    if (strcmp(act, "quick_gelu") != 0)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: vision_config.hidden_act \"%s\" is not "
                           "quick_gelu (not supported)", path, act);
    return sdc_clip_vision_config_check(x, path, err);
}

/* A size given as N or {"shortest_edge": N} / {"height": N, "width": N}. */
static sdc_status size_field(const cJSON *j, const char *path, const char *key, bool shortest,
                             int def, int *out, sdc_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) { *out = def; return SDC_OK; }
    if (cJSON_IsNumber(v)) return sdc_json_int(j, path, key, 1, 4096, def, out, err);
    if (cJSON_IsObject(v)) {
        if (shortest) return sdc_json_int(v, path, "shortest_edge", 1, 4096, -1, out, err);
        int h, w;
        sdc_status s;
        if ((s = sdc_json_int(v, path, "height", 1, 4096, -1, &h, err)) ||
            (s = sdc_json_int(v, path, "width", 1, 4096, -1, &w, err)))
            return s;
        if (h != w)
            return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: %s %dx%d is not square", path, key, w, h);
        *out = h;
        return SDC_OK;
    }
    return sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"%s\" must be a number or an object", path, key);
}

static sdc_status triple(const cJSON *j, const char *path, const char *key, float *out,
                         sdc_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return SDC_OK;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"%s\" must be 3 numbers", path, key);
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || fabs(e->valuedouble) > 1e3)
            return sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"%s\" must be 3 numbers", path, key);
        out[i] = (float)e->valuedouble;
    }
    return SDC_OK;
}

/* preprocessor_config.json: CLIPImageProcessor's fields; anything that is not
 * CLIP's pipeline (another resample filter, a step switched off) is refused. */
static sdc_status preprocessor_config(const char *path, sdc_clip_config *c, sdc_err *err) {
    cJSON *j = sdc_json_load(path, err);
    if (!j) return err->code;
    sdc_status s = SDC_OK;
    int resample;
    static const char *const must[] = {"do_resize", "do_center_crop", "do_rescale", "do_normalize"};
    for (size_t i = 0; !s && i < sizeof must / sizeof *must; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, must[i]);
        if (v && !cJSON_IsTrue(v))
            s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: \"%s\" is off; sdc runs CLIP's full "
                            "preprocessing only", path, must[i]);
    }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(j, "rescale_factor");
    if (!s && rf && !(cJSON_IsNumber(rf) && fabs(rf->valuedouble * 255.0 - 1.0) < 1e-12))
        s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: rescale_factor must be 1/255", path);
    if (!s) s = sdc_json_int(j, path, "resample", 0, 5, 3, &resample, err);
    if (!s && resample != 3)
        s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: resample %d is not bicubic (3)", path, resample);
    if (!s) s = size_field(j, path, "size", true, c->resize, &c->resize, err);
    if (!s) s = size_field(j, path, "crop_size", false, c->crop, &c->crop, err);
    if (!s) s = triple(j, path, "image_mean", c->mean, err);
    if (!s) s = triple(j, path, "image_std", c->std, err);
    for (int i = 0; !s && i < 3; i++)
        if (!(c->std[i] > 0))
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: image_std must be positive", path);
    cJSON_Delete(j);
    return s;
}

static sdc_status folder_config(const char *dir, sdc_clip_config *c, char **weights,
                                sdc_err *err) {
    char path[4096], cfgp[4096];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    if (!sdc_is_file_in(dir, "config.json")) {
        if (sdc_is_pipeline_folder(dir))
            return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: a diffusers pipeline folder, not a "
                               "CLIPModel (give the CLIP model's own folder)", dir);
        return sdc_err_set(err, SDC_ERR_IO, "%s: no config.json (a CLIPModel folder holds "
                           "config.json and model.safetensors)", dir);
    }
    cJSON *j = sdc_json_load(cfgp, err);
    if (!j) return err->code;
    sdc_status s = SDC_OK;
    const char *type = sdc_json_str(j, "model_type", "clip");
    if (strcmp(type, "clip") != 0)
        s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not a CLIPModel "
                        "(\"clip\")%s", cfgp, type,
                        !strcmp(type, "clip_text_model") || !strcmp(type, "clip_vision_model")
                            ? ": both towers and the projections are needed" : "");
    /* transformers: a legacy *_config_dict rebuilds that config from its
     * own keys plus the defaults, replacing *_config entirely. */
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text_config_dict");
    if (!cJSON_IsObject(t)) t = cJSON_GetObjectItemCaseSensitive(j, "text_config");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "vision_config_dict");
    if (!cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(j, "vision_config");
    if (!s && ((t && !cJSON_IsObject(t)) || (v && !cJSON_IsObject(v))))
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: text_config / vision_config must be objects", cfgp);
    if (!s) s = text_config(t, cfgp, c, err);
    if (!s) s = vision_config(v, cfgp, c, err);
    if (!s) s = sdc_json_int(j, cfgp, "projection_dim", 1, 1 << 16, 512, &c->proj, err);
    cJSON_Delete(j);
    c->crop = c->vision.image_size;
    c->resize = c->vision.image_size;
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    if (!s && sdc_is_file_in(dir, "preprocessor_config.json"))
        s = preprocessor_config(path, c, err);
    if (!s && c->crop != c->vision.image_size)
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: crop_size %d differs from the vision tower's "
                        "image_size %d", path, c->crop, c->vision.image_size);
    if (!s && c->resize < c->crop)
        s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: shortest_edge %d is below crop_size %d",
                        path, c->resize, c->crop);
    if (s) return s;
    if (sdc_model_file(dir, path, sizeof path)) {
        if (weights && !(*weights = strdup(path)))
            return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        return SDC_OK;
    }
    if (sdc_is_file_in(dir, "model.safetensors.index.json"))
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: sharded safetensors are not supported; "
                           "join the shards into model.safetensors", dir);
    return sdc_err_set(err, SDC_ERR_IO, "%s: no model.safetensors (pickle .bin weights are not "
                       "loaded; convert them to safetensors)", dir);
}

/* ------------------------------------------------------------ single file */

static const char *looks_like(const sdc_safetensors *st) {
    static const sdc_st_look looks[] = {
        {SDC_ST_SD, 0, "a Stable Diffusion checkpoint, not a CLIPModel"},
        {SDC_ST_OPENCLIP, 0,
         "an OpenCLIP state dict (convert it to transformers' CLIPModel layout)"},
        {SDC_ST_CLIP_VISION, SDC_ST_CLIP_TEXT, "a vision-only CLIP file (both towers are needed)"},
        {SDC_ST_CLIP_TEXT, SDC_ST_CLIP_VISION, "a text-only CLIP file (both towers are needed)"},
        {SDC_ST_EMPTY, 0, "an empty file"},
        {0, 0, NULL}};
    return sdc_st_looks_like(st, looks, "not a CLIPModel");
}

/* A config inferred from shapes misses tensor `what`, or has it malformed. */
static sdc_status missing(const sdc_safetensors *st, const char *path, const char *what,
                          sdc_err *err) {
    return sdc_err_set(err, SDC_ERR_FORMAT, "%s: %s (missing or malformed %s)", path,
                       looks_like(st), what);
}
#define NEED(e, what) do { if (!(e)) return missing(st, path, what, err); } while (0)

static sdc_status infer_config(const sdc_safetensors *st, const char *path, sdc_clip_config *c,
                               sdc_err *err) {
    *c = sdc_clip_vit_l14;
    sdc_clip_text_config *t = &c->text;
    const char *bad = sdc_clip_text_config_from_shapes(st, "text_model.", t);
    char key[160];
    if (bad) snprintf(key, sizeof key, "text_model.%s", bad);
    NEED(!bad, key);
    const sdc_st_entry *patch = sdc_st_findf(st, "vision_model.embeddings.patch_embedding.weight");
    const sdc_st_entry *vpos = sdc_st_findf(st, "vision_model.embeddings.position_embedding.weight");
    const sdc_st_entry *vfc = sdc_st_findf(st, "vision_model.encoder.layers.0.mlp.fc1.weight");
    const sdc_st_entry *proj = sdc_st_findf(st, "visual_projection.weight");
    NEED(patch && patch->ndim == 4 && patch->shape[2] == patch->shape[3],
         "vision_model.embeddings.patch_embedding.weight");
    NEED(vpos && vpos->ndim == 2, "vision_model.embeddings.position_embedding.weight");
    NEED(vfc && vfc->ndim == 2, "vision_model.encoder.layers.0.mlp.fc1.weight");
    NEED(proj && proj->ndim == 2, "visual_projection.weight");
    if (t->vocab > (1 << 22) || t->width > (1 << 16) || t->max_pos > 4096 ||
        patch->shape[0] > (1 << 16) || patch->shape[1] > 16 || patch->shape[2] > 4096 ||
        vpos->shape[0] > (1 << 24) || t->ffn > (1 << 18) || vfc->shape[0] > (1 << 18) ||
        proj->shape[0] > (1 << 16))
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: CLIP tensor sizes out of range", path);
    sdc_clip_vision_config *v = &c->vision;
    v->width = (int)patch->shape[0];
    v->channels = (int)patch->shape[1];
    v->patch = (int)patch->shape[2];
    v->ffn = (int)vfc->shape[0];
    v->layers = 0;
    while (v->layers < 1024 && sdc_st_findf(st, "vision_model.encoder.layers.%d.layer_norm1.weight", v->layers))
        v->layers++;
    int64_t n = vpos->shape[0] - 1, g = (int64_t)llround(sqrt((double)(n > 0 ? n : 0)));
    if (n < 1 || g * g != n)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: vision position embeddings hold %lld rows, "
                           "not 1 + a square number of patches", path, (long long)vpos->shape[0]);
    v->image_size = (int)(g * v->patch);
    long th = sdc_st_heads(st, "sdc.clip.text_heads", t->width);
    long vh = sdc_st_heads(st, "sdc.clip.vision_heads", v->width);
    if (th < 1 || vh < 1)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: cannot tell the head count (widths %d / %d "
                           "are not multiples of 64; set __metadata__ sdc.clip.text_heads and "
                           "sdc.clip.vision_heads)", path, t->width, v->width);
    t->heads = (int)th;
    v->heads = (int)vh;
    c->proj = (int)proj->shape[0];
    c->eos_id = t->vocab - 1; /* CLIP's <|endoftext|> is the last id */
    c->crop = c->resize = v->image_size;
    return sdc_clip_vision_config_check(v, path, err);
}

sdc_status sdc_clip_config_read(const char *path, sdc_clip_config *cfg, char **weights,
                                sdc_err *err) {
    struct stat sb;
    if (weights) *weights = NULL;
    if (stat(path, &sb) != 0) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
    *cfg = sdc_clip_vit_l14;
    if (S_ISDIR(sb.st_mode)) return folder_config(path, cfg, weights, err);
    sdc_safetensors *st = sdc_safetensors_open(path, err);
    if (!st) return err->code;
    sdc_status s = infer_config(st, path, cfg, err);
    sdc_safetensors_close(st);
    if (!s && weights && !(*weights = strdup(path))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    return s;
}

/* ------------------------------------------------------------ open */

void sdc_clip_model_close(sdc_clip_model *m) {
    if (!m) return;
    sdc_clip_text_free(&m->text);
    sdc_clip_vision_free(&m->vision);
    sdc_params_free(&m->params);
    sdc_safetensors_close(m->st);
    free(m->path);
    free(m->weights);
    free(m);
}

static sdc_status bind(sdc_clip_model *m, sdc_params *p, const char *what, sdc_backend *be,
                       sdc_err *err) {
    sdc_status s = sdc_params_bind(p, what, &m->st, 1, sdc_key_map_diffusers, "", be, err);
    if (s) {
        /* The generic message ends "this does not look like an SD 1.x ...":
         * say what the file looks like instead. */
        char *tail = strstr(err->msg, " — this does not look like");
        if (tail) *tail = '\0';
        if (s == SDC_ERR_FORMAT && strstr(err->msg, "missing")) {
            char msg[SDC_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            sdc_err_set(err, s, "%s: %s (%s)", m->weights, msg, looks_like(m->st));
        }
        else
            sdc_err_wrap(err, "%s", m->weights);
    }
    return s;
}

/* The three parameter tables of m->cfg (towers, projections). */
static sdc_status build_tables(sdc_clip_model *m, sdc_err *err) {
    const sdc_clip_config *c = &m->cfg;
    sdc_status s = sdc_clip_text_init(&m->text, &c->text, err);
    if (!s) s = sdc_clip_vision_init(&m->vision, &c->vision, err);
    if (s) return s;
    sdc_params *P = &m->params;
    sdc_params_init(P);
    sdc_params_add(P, &m->text_proj, 2, (const int64_t[]){c->proj, c->text.width},
                   "text_projection.weight", NULL);
    sdc_params_add(P, &m->visual_proj, 2, (const int64_t[]){c->proj, c->vision.width},
                   "visual_projection.weight", NULL);
    sdc_params_add_optional(P, &m->logit_scale, 0, NULL, "logit_scale", NULL);
    return P->status ? sdc_err_set(err, P->status, "clip: building the parameter table") : SDC_OK;
}

sdc_clip_model *sdc_clip_model_random(const sdc_clip_config *cfg, sdc_backend *cpu,
                                      sdc_dtype dtype, uint64_t seed, sdc_err *err) {
    sdc_clip_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup("(random)"))) {
        free(m);
        sdc_err_set(err, SDC_ERR_OOM, "clip: out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    sdc_status s = build_tables(m, err);
    if (!s) s = sdc_params_fill_random(&m->text.params, cpu, dtype, seed, err);
    if (!s) s = sdc_params_fill_random(&m->vision.params, cpu, dtype, seed + 1, err);
    if (!s) s = sdc_params_fill_random(&m->params, cpu, dtype, seed + 2, err);
    if (s) {
        sdc_clip_model_close(m);
        return NULL;
    }
    return m;
}

sdc_clip_model *sdc_clip_model_open(const char *path, sdc_backend *be, sdc_err *err) {
    sdc_clip_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
        return NULL;
    }
    sdc_status s = sdc_clip_config_read(path, &m->cfg, &m->weights, err);
    if (!s && !(m->st = sdc_safetensors_open(m->weights, err))) s = err->code;
    if (!s && !(sdc_st_traits(m->st) & SDC_ST_CLIP_VISION))
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: %s (no vision_model.* tensors)", m->weights,
                        looks_like(m->st));
    if (!s) s = build_tables(m, err);
    if (!s) s = bind(m, &m->text.params, "clip text tower", be, err);
    if (!s) s = bind(m, &m->vision.params, "clip vision tower", be, err);
    if (!s) s = bind(m, &m->params, "clip projections", be, err);
    if (s) {
        sdc_clip_model_close(m);
        return NULL;
    }
    return m;
}

/* ------------------------------------------------------------ encoding */

int sdc_clip_eos_index(const sdc_clip_config *c, const int32_t *ids, int len) {
    int at = 0;
    if (c->eos_id == 2) { /* transformers' legacy rule: argmax, first of equals */
        for (int i = 1; i < len; i++)
            if (ids[i] > ids[at]) at = i;
        return at;
    }
    for (int i = 0; i < len; i++)
        if (ids[i] == c->eos_id) return i;
    return 0;
}

sdc_status sdc_l2_normalize(float *v, int n, sdc_err *err) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)v[i] * v[i];
    if (!(ss > 0) || !isfinite(ss))
        return sdc_err_set(err, SDC_ERR_NUMERIC, "cannot normalize an embedding of norm %g",
                           sqrt(ss));
    float inv = (float)(1.0 / sqrt(ss));
    for (int i = 0; i < n; i++) v[i] *= inv;
    return SDC_OK;
}

/* pooled [B, D] (act dtype, on the backend) -> projection -> host F32 outputs. */
static sdc_status project(sdc_exec *ex, sdc_tensor pooled, const sdc_tensor *w, int batch,
                          bool normalize, float *embeds, float *pooled_out, const char *what) {
    sdc_tensor y = sdc_x_linear(ex, pooled, w, NULL); /* [B, P] */
    sdc_tensor yf = ex->act == SDC_F32 ? y : sdc_x_convert(ex, y, SDC_F32);
    sdc_tensor pf = ex->act == SDC_F32 || !pooled_out ? pooled : sdc_x_convert(ex, pooled, SDC_F32);
    if (!ex->status)
        ex->status = ex->be->download(ex->be, embeds, yf.data, sdc_tensor_nbytes(&yf), ex->err);
    if (!ex->status && pooled_out)
        ex->status = ex->be->download(ex->be, pooled_out, pf.data, sdc_tensor_nbytes(&pf), ex->err);
    if (yf.data != y.data) sdc_x_free(ex, &yf);
    if (pf.data != pooled.data) sdc_x_free(ex, &pf);
    sdc_x_free(ex, &y);
    if (ex->status) return ex->status;
    int P = (int)w->shape[0];
    for (int b = 0; b < batch; b++) {
        for (int i = 0; i < P; i++)
            if (!isfinite(embeds[(size_t)b * P + i]))
                return ex->status = sdc_err_set(ex->err, SDC_ERR_NUMERIC, "%s: non-finite "
                                                "embedding for item %d of the batch", what, b);
        if (normalize && (ex->status = sdc_l2_normalize(embeds + (size_t)b * P, P, ex->err)))
            return sdc_err_wrap(ex->err, "%s: item %d", what, b);
    }
    return SDC_OK;
}

sdc_status sdc_clip_encode_image(sdc_exec *ex, const sdc_clip_model *m, const float *pixels,
                                 int batch, bool normalize, float *embeds, float *pooled) {
    if (ex->status) return ex->status;
    const sdc_clip_vision_config *v = &m->cfg.vision;
    if (batch < 1)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "clip image: batch %d", batch);
    int64_t shape[4] = {batch, v->channels, v->image_size, v->image_size};
    sdc_tensor x = sdc_x_new(ex, SDC_F32, 4, shape);
    if (!ex->status)
        ex->status = ex->be->upload(ex->be, x.data, pixels, sdc_tensor_nbytes(&x), ex->err);
    sdc_tensor xa = ex->act == SDC_F32 ? x : sdc_x_convert(ex, x, ex->act);
    if (xa.data != x.data) sdc_x_free(ex, &x);
    sdc_tensor p = sdc_clip_vision_forward(ex, &m->vision, xa); /* [B, Dv] */
    sdc_x_free(ex, &xa);
    project(ex, p, &m->visual_proj, batch, normalize, embeds, pooled, "clip image");
    sdc_x_free(ex, &p);
    return ex->status;
}

sdc_status sdc_clip_encode_text(sdc_exec *ex, const sdc_clip_model *m, const int32_t *ids,
                                int batch, int len, bool normalize, float *embeds, float *pooled) {
    if (ex->status) return ex->status;
    const sdc_clip_text_config *t = &m->cfg.text;
    if (batch < 1 || len < 1 || len > t->max_pos)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "clip text: %d rows of %d ids; "
                                        "rows must hold 1 to %d ids", batch, len, t->max_pos);
    int T = t->max_pos;
    int32_t *full = calloc((size_t)batch * T, sizeof *full);
    int *at = calloc((size_t)batch, sizeof *at);
    if (!full || !at) {
        free(full);
        free(at);
        return ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "clip text: out of memory");
    }
    for (int b = 0; b < batch; b++) {
        memcpy(full + (size_t)b * T, ids + (size_t)b * len, sizeof *full * (size_t)len);
        at[b] = sdc_clip_eos_index(&m->cfg, ids + (size_t)b * len, len);
    }
    sdc_tensor h = sdc_clip_text_forward(ex, &m->text, full, batch, 0, NULL, 0); /* [B, T, D] */
    free(full);
    /* The pooled rows, gathered through the host. */
    int64_t D = t->width;
    sdc_tensor p = sdc_x_new(ex, ex->act, 2, (const int64_t[]){batch, D});
    size_t row = (size_t)D * sdc_dtype_size(ex->act);
    void *buf = ex->status ? NULL : malloc(row);
    if (!buf && !ex->status) ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "clip text: oom");
    for (int b = 0; b < batch && !ex->status; b++) {
        ex->status = ex->be->download(ex->be, buf, (char *)h.data + ((size_t)b * T + at[b]) * row,
                                      row, ex->err);
        if (!ex->status)
            ex->status = ex->be->upload(ex->be, (char *)p.data + (size_t)b * row, buf, row, ex->err);
    }
    free(buf);
    free(at);
    sdc_x_free(ex, &h);
    project(ex, p, &m->text_proj, batch, normalize, embeds, pooled, "clip text");
    sdc_x_free(ex, &p);
    return ex->status;
}
