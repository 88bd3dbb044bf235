/* clip_vision.c — CLIP vision transformer forward (see clip_vision.h). */
#include "clip_vision.h"

#include <stdlib.h>
#include <string.h>

const sdc_clip_vision_config sdc_clip_vision_l14 = {
    .image_size = 224, .patch = 14, .channels = 3, .width = 1024, .heads = 16, .layers = 24,
    .ffn = 4096, .eps = 1e-5f};

int sdc_clip_vision_tokens(const sdc_clip_vision_config *c) {
    int g = c->image_size / c->patch;
    return 1 + g * g;
}

sdc_status sdc_clip_vision_config_check(const sdc_clip_vision_config *c, const char *what,
                                        sdc_err *err) {
    if (c->image_size < 1 || c->image_size > 4096 || c->patch < 1 || c->channels < 1 ||
        c->channels > 16 || c->width < 1 || c->heads < 1 || c->layers < 1 || c->ffn < 1 ||
        !(c->eps > 0))
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: vision config out of range (image_size %d, "
                           "patch %d, width %d, heads %d, layers %d)", what, c->image_size,
                           c->patch, c->width, c->heads, c->layers);
    if (c->width % c->heads)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: vision hidden_size %d is not a multiple of "
                           "num_attention_heads %d", what, c->width, c->heads);
    if (c->image_size % c->patch)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: vision image_size %d is not a multiple of "
                           "patch_size %d", what, c->image_size, c->patch);
    return SDC_OK;
}

sdc_status sdc_clip_vision_init(sdc_clip_vision *m, const sdc_clip_vision_config *cfg,
                                sdc_err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    sdc_status s = sdc_clip_vision_config_check(cfg, "clip vision", err);
    if (s) return s;
    m->layer = calloc((size_t)cfg->layers, sizeof *m->layer);
    if (!m->layer) return sdc_err_set(err, SDC_ERR_OOM, "clip vision: out of memory");
    sdc_params *P = &m->params;
    sdc_params_init(P);
    int64_t D = cfg->width, F = cfg->ffn, T = sdc_clip_vision_tokens(cfg);
    sdc_params_add(P, &m->class_emb, 1, (const int64_t[]){D},
                   "vision_model.embeddings.class_embedding", NULL);
    sdc_params_add(P, &m->patch_w, 4, (const int64_t[]){D, cfg->channels, cfg->patch, cfg->patch},
                   "vision_model.embeddings.patch_embedding.weight", NULL);
    sdc_params_add(P, &m->pos_emb, 2, (const int64_t[]){T, D},
                   "vision_model.embeddings.position_embedding.weight", NULL);
    sdc_params_norm(P, &m->pre_ln_w, &m->pre_ln_b, D, "vision_model.pre_layrnorm", NULL);
    sdc_clip_encoder_params(P, m->layer, cfg->layers, "vision_model", D, F);
    sdc_params_norm(P, &m->post_ln_w, &m->post_ln_b, D, "vision_model.post_layernorm", NULL);
    if (P->status) return sdc_err_set(err, P->status, "clip vision: building the parameter table");
    return SDC_OK;
}

void sdc_clip_vision_free(sdc_clip_vision *m) {
    sdc_params_free(&m->params);
    free(m->layer);
    memset(m, 0, sizeof *m);
}

/* Uploads n I32 values to a new arena tensor of the given shape. */
static sdc_tensor upload_ids(sdc_exec *ex, const int32_t *v, int ndim, const int64_t *shape,
                             size_t n) {
    sdc_tensor t = sdc_x_new(ex, SDC_I32, ndim, shape);
    if (!ex->status) ex->status = ex->be->upload(ex->be, t.data, v, n * sizeof *v, ex->err);
    return t;
}

sdc_tensor sdc_clip_vision_forward(sdc_exec *ex, const sdc_clip_vision *m, sdc_tensor px) {
    const sdc_clip_vision_config *c = &m->cfg;
    sdc_tensor none = {0};
    if (ex->status) return none;
    int S = c->image_size, P = c->patch, g = S / P;
    if (px.ndim != 4 || px.shape[0] < 1 || px.shape[1] != c->channels || px.shape[2] != S ||
        px.shape[3] != S) {
        char buf[64];
        ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "clip vision: pixel_values is %s, "
                                 "expected [B, %d, %d, %d]", sdc_shape_str(&px, buf, sizeof buf),
                                 c->channels, S, S);
        return none;
    }
    int64_t B = px.shape[0], D = c->width, n = (int64_t)g * g, T = n + 1;
    /* Patches: [B, D, g, g] -> [B, D, n] -> [B, n, D]. */
    sdc_tensor e = sdc_x_conv2d(ex, px, &m->patch_w, NULL, P, 0);
    e = sdc_x_reshape(ex, e, 3, (const int64_t[]){B, D, n});
    sdc_tensor patches = sdc_x_transpose(ex, e);
    sdc_x_free(ex, &e);

    /* The class token through the embedding op (row 0 of class_emb seen as
     * [1, D]), so it is widened from the stored dtype on any backend. */
    int32_t *host = calloc((size_t)(B + T), sizeof *host);
    if (!host && !ex->status) ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "clip vision: oom");
    for (int64_t i = 0; host && i < T; i++) host[B + i] = (int32_t)i;
    sdc_tensor cid = host ? upload_ids(ex, host, 2, (const int64_t[]){B, 1}, (size_t)B) : none;
    sdc_tensor pos = host ? upload_ids(ex, host + B, 1, (const int64_t[]){T}, (size_t)T) : none;
    free(host);
    sdc_tensor table = m->class_emb;
    table.ndim = 2;
    table.shape[0] = 1;
    table.shape[1] = D;
    sdc_tensor cls = sdc_x_embedding(ex, cid, &table);     /* [B, 1, D] */
    sdc_tensor x = sdc_x_concat(ex, cls, patches);          /* [B, T, D] */
    sdc_x_free(ex, &cls);
    sdc_x_free(ex, &patches);
    sdc_tensor p = sdc_x_embedding(ex, pos, &m->pos_emb);  /* [T, D] */
    sdc_x_free(ex, &cid);
    sdc_x_free(ex, &pos);
    sdc_x_add_inplace(ex, x, p);
    sdc_x_free(ex, &p);
    sdc_tensor h = sdc_x_layer_norm(ex, x, &m->pre_ln_w, &m->pre_ln_b, c->eps);
    sdc_x_free(ex, &x);
    for (int i = 0; i < c->layers; i++)
        sdc_clip_layer_forward(ex, &m->layer[i], c->heads, c->eps, false, h);

    /* The class token of each image: row 0 of [T, D], gathered through the host. */
    sdc_tensor c0 = sdc_x_new(ex, ex->act, 2, (const int64_t[]){B, D});
    size_t row = (size_t)D * sdc_dtype_size(ex->act);
    void *buf = ex->status ? NULL : malloc(row);
    if (!buf && !ex->status) ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "clip vision: oom");
    for (int64_t b = 0; b < B && !ex->status; b++) {
        ex->status = ex->be->download(ex->be, buf, (char *)h.data + (size_t)(b * T) * row, row,
                                      ex->err);
        if (!ex->status)
            ex->status = ex->be->upload(ex->be, (char *)c0.data + (size_t)b * row, buf, row, ex->err);
    }
    free(buf);
    sdc_x_free(ex, &h);
    sdc_tensor y = sdc_x_layer_norm(ex, c0, &m->post_ln_w, &m->post_ln_b, c->eps);
    sdc_x_free(ex, &c0);
    return y;
}
