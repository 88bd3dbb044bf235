/* clip_text.c — CLIP text transformer forward (see clip_text.h). */
#include "clip_text.h"

#include "../weights/hf_config.h"
#include "../weights/probe.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const sdc_clip_text_config sdc_clip_text_sd15 = {
    .vocab = 49408, .max_pos = 77, .width = 768, .heads = 12, .layers = 12, .ffn = 3072,
    .eps = 1e-5f};

sdc_status sdc_clip_text_config_from_json(const char *path, sdc_clip_text_config *cfg,
                                          sdc_err *err) {
    cJSON *j = sdc_json_load(path, err);
    if (!j) return err->code;
    sdc_clip_text_config c = sdc_clip_text_sd15;
    sdc_status s;
    if ((s = sdc_clip_text_config_keys(j, path, 1 << 20, &c, err))) {
        cJSON_Delete(j);
        return s;
    }
    const char *act = sdc_json_str(j, "hidden_act", "quick_gelu");
    if (strcmp(act, "quick_gelu") != 0) {
        s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not SD 1.x's "
                        "quick_gelu (an SD 2.x text encoder?)", path, act);
        cJSON_Delete(j);
        return s;
    }
    cJSON_Delete(j);
    if (c.width % c.heads != 0)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: hidden_size %d is not a multiple of "
                           "num_attention_heads %d", path, c.width, c.heads);
    *cfg = c;
    return SDC_OK;
}

sdc_status sdc_clip_text_config_keys(const cJSON *t, const char *path, long max_vocab,
                                     sdc_clip_text_config *c, sdc_err *err) {
    sdc_status s;
    if ((s = sdc_json_int(t, path, "vocab_size", 1, max_vocab, c->vocab, &c->vocab, err)) ||
        (s = sdc_json_int(t, path, "max_position_embeddings", 1, 4096, c->max_pos, &c->max_pos,
                          err)) ||
        (s = sdc_json_int(t, path, "hidden_size", 1, 1 << 16, c->width, &c->width, err)) ||
        (s = sdc_json_int(t, path, "num_attention_heads", 1, 1024, c->heads, &c->heads, err)) ||
        (s = sdc_json_int(t, path, "num_hidden_layers", 1, 1024, c->layers, &c->layers, err)) ||
        (s = sdc_json_int(t, path, "intermediate_size", 1, 1 << 18, c->ffn, &c->ffn, err)) ||
        (s = sdc_json_float(t, path, "layer_norm_eps", 1e-12, 1, c->eps, &c->eps, err)))
        return s;
    return SDC_OK;
}

/* A dimension as an int, saturated (callers range-check the sizes). */
static int dim(int64_t d) { return d > INT_MAX ? INT_MAX : (int)d; }

const char *sdc_clip_text_config_from_shapes(const sdc_safetensors *st, const char *prefix,
                                             sdc_clip_text_config *c) {
    static const char *const key[] = {"embeddings.token_embedding.weight",
                                      "embeddings.position_embedding.weight",
                                      "encoder.layers.0.mlp.fc1.weight"};
    const sdc_st_entry *e[3];
    for (int i = 0; i < 3; i++) {
        e[i] = sdc_st_findf(st, "%s%s", prefix, key[i]);
        if (!e[i] || e[i]->ndim != 2) return key[i];
    }
    c->vocab = dim(e[0]->shape[0]);
    c->width = dim(e[0]->shape[1]);
    c->max_pos = dim(e[1]->shape[0]);
    c->ffn = dim(e[2]->shape[0]);
    c->layers = 0;
    while (c->layers < 1024 &&
           sdc_st_findf(st, "%sencoder.layers.%d.layer_norm1.weight", prefix, c->layers))
        c->layers++;
    return NULL;
}

#define SHAPE(...) (const int64_t[]){__VA_ARGS__}
#define NDIM(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define ADD(field, name, ...) sdc_params_add(P, field, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__), name, NULL)

sdc_status sdc_clip_text_init(sdc_clip_text *m, const sdc_clip_text_config *cfg, sdc_err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (cfg->width % cfg->heads != 0 || cfg->layers < 1 || cfg->max_pos < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "clip text: inconsistent config (width %d, %d heads, "
                           "%d layers, %d positions)", cfg->width, cfg->heads, cfg->layers,
                           cfg->max_pos);
    m->layer = calloc((size_t)cfg->layers, sizeof *m->layer);
    if (!m->layer) return sdc_err_set(err, SDC_ERR_OOM, "clip text: out of memory");
    sdc_params *P = &m->params;
    sdc_params_init(P);
    int D = cfg->width, F = cfg->ffn;
    ADD(&m->token_emb, "text_model.embeddings.token_embedding.weight", cfg->vocab, D);
    ADD(&m->pos_emb, "text_model.embeddings.position_embedding.weight", cfg->max_pos, D);
    sdc_clip_encoder_params(P, m->layer, cfg->layers, "text_model", D, F);
    sdc_params_norm(P, &m->final_ln_w, &m->final_ln_b, D, "text_model.final_layer_norm", NULL);
    if (P->status) return sdc_err_set(err, P->status, "clip text: building the parameter table");
    return SDC_OK;
}

static void layer_params(sdc_params *P, clip_text_layer *L, const char *pre, int D, int F) {
    char name[160];
#define SUB(s) (snprintf(name, sizeof name, "%s.%s", pre, s), name)
    sdc_params_norm(P, &L->ln1_w, &L->ln1_b, D, SUB("layer_norm1"), NULL);
    sdc_params_linear(P, &L->q_w, &L->q_b, D, D, SUB("self_attn.q_proj"), NULL);
    sdc_params_linear(P, &L->k_w, &L->k_b, D, D, SUB("self_attn.k_proj"), NULL);
    sdc_params_linear(P, &L->v_w, &L->v_b, D, D, SUB("self_attn.v_proj"), NULL);
    sdc_params_linear(P, &L->out_w, &L->out_b, D, D, SUB("self_attn.out_proj"), NULL);
    sdc_params_norm(P, &L->ln2_w, &L->ln2_b, D, SUB("layer_norm2"), NULL);
    sdc_params_linear(P, &L->fc1_w, &L->fc1_b, F, D, SUB("mlp.fc1"), NULL);
    sdc_params_linear(P, &L->fc2_w, &L->fc2_b, D, F, SUB("mlp.fc2"), NULL);
#undef SUB
}

void sdc_clip_encoder_params(sdc_params *P, clip_text_layer *layers, int n, const char *tower,
                             int D, int F) {
    char pre[128];
    for (int i = 0; i < n; i++) {
        snprintf(pre, sizeof pre, "%s.encoder.layers.%d", tower, i);
        layer_params(P, &layers[i], pre, D, F);
    }
}

void sdc_clip_text_free(sdc_clip_text *m) {
    sdc_params_free(&m->params);
    free(m->layer);
    memset(m, 0, sizeof *m);
}

void sdc_clip_layer_qkv(sdc_exec *ex, const clip_text_layer *L, float eps, sdc_tensor x,
                        sdc_tensor *q, sdc_tensor *k, sdc_tensor *v) {
    sdc_tensor h = sdc_x_layer_norm(ex, x, &L->ln1_w, &L->ln1_b, eps);
    *q = sdc_x_linear(ex, h, &L->q_w, &L->q_b);
    *k = sdc_x_linear(ex, h, &L->k_w, &L->k_b);
    *v = sdc_x_linear(ex, h, &L->v_w, &L->v_b);
    sdc_x_free(ex, &h);
}

/* x: [B, T, D] -> x + attention(LN1(x)) + MLP(LN2(...)), in place. */
void sdc_clip_layer_forward(sdc_exec *ex, const clip_text_layer *L, int heads, float eps,
                            bool causal, sdc_tensor x) {
    sdc_tensor q, k, v;
    sdc_clip_layer_qkv(ex, L, eps, x, &q, &k, &v);
    sdc_tensor a = sdc_x_attention(ex, q, k, v, heads, causal);
    sdc_x_free(ex, &q);
    sdc_x_free(ex, &k);
    sdc_x_free(ex, &v);
    sdc_tensor o = sdc_x_linear(ex, a, &L->out_w, &L->out_b);
    sdc_x_free(ex, &a);
    sdc_x_add_inplace(ex, x, o);
    sdc_x_free(ex, &o);

    sdc_tensor h = sdc_x_layer_norm(ex, x, &L->ln2_w, &L->ln2_b, eps);
    sdc_tensor f = sdc_x_linear(ex, h, &L->fc1_w, &L->fc1_b); /* [B, T, F] */
    sdc_x_free(ex, &h);
    sdc_tensor g = sdc_x_quick_gelu(ex, f);
    sdc_x_free(ex, &f);
    o = sdc_x_linear(ex, g, &L->fc2_w, &L->fc2_b);
    sdc_x_free(ex, &g);
    sdc_x_add_inplace(ex, x, o);
    sdc_x_free(ex, &o);
}

sdc_tensor sdc_clip_text_embed(sdc_exec *ex, const sdc_clip_text *m, const int32_t *ids,
                               int batch, int skip, const float *extra, int n_extra) {
    const sdc_clip_text_config *c = &m->cfg;
    sdc_tensor none = {0};
    if (ex->status) return none;
    if (batch < 1 || skip < 0 || skip >= c->layers) {
        ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "clip text: batch %d / clip skip %d out "
                                 "of range (skip must be below %d layers)", batch, skip, c->layers);
        return none;
    }
    int T = c->max_pos;
    int n = batch * T;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab + (extra ? n_extra : 0)) {
            ex->status = sdc_err_set(ex->err, SDC_ERR_ARG,
                                     "clip text: token id %d at position %d is outside [0, %d)",
                                     ids[i], i, c->vocab + (extra ? n_extra : 0));
            return none;
        }
    /* ids (extra ones as 0, overwritten below) and positions go to the
     * device as I32 tensors. */
    sdc_tensor tok = sdc_x_new(ex, SDC_I32, 2, (const int64_t[]){batch, T});
    sdc_tensor pos = sdc_x_new(ex, SDC_I32, 1, (const int64_t[]){T});
    int32_t *host = malloc((size_t)(n + T) * sizeof *host);
    if (!host && !ex->status) ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "clip text: oom");
    if (!ex->status) {
        for (int i = 0; i < n; i++) host[i] = ids[i] < c->vocab ? ids[i] : 0;
        for (int i = 0; i < T; i++) host[n + i] = i;
        ex->status = ex->be->upload(ex->be, tok.data, host, (size_t)n * 4, ex->err);
        if (!ex->status) ex->status = ex->be->upload(ex->be, pos.data, host + n, (size_t)T * 4, ex->err);
    }
    free(host);

    sdc_tensor x = sdc_x_embedding(ex, tok, &m->token_emb);  /* [B, T, D] */
    /* Extra rows go in in the activation dtype (converted on the host). */
    size_t row = (size_t)c->width * sdc_dtype_size(x.dtype);
    void *conv = x.dtype != SDC_F32 && !ex->status ? malloc(row) : NULL;
    if (x.dtype != SDC_F32 && !conv && !ex->status)
        ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "clip text: oom");
    for (int i = 0; i < n && !ex->status; i++) {
        if (ids[i] < c->vocab) continue;
        const float *src = extra + (size_t)(ids[i] - c->vocab) * c->width;
        if (conv)
            ex->status = sdc_convert(conv, x.dtype, src, SDC_F32, (size_t)c->width, ex->err);
        if (!ex->status)
            ex->status = ex->be->upload(ex->be, (char *)x.data + (size_t)i * row,
                                        conv ? conv : (const void *)src, row, ex->err);
    }
    free(conv);
    sdc_tensor p = sdc_x_embedding(ex, pos, &m->pos_emb);    /* [T, D] */
    sdc_x_free(ex, &tok);
    sdc_x_free(ex, &pos);
    sdc_x_add_inplace(ex, x, p);
    sdc_x_free(ex, &p);
    return x;
}

sdc_tensor sdc_clip_text_forward(sdc_exec *ex, const sdc_clip_text *m, const int32_t *ids,
                                 int batch, int skip, const float *extra, int n_extra) {
    const sdc_clip_text_config *c = &m->cfg;
    sdc_tensor x = sdc_clip_text_embed(ex, m, ids, batch, skip, extra, n_extra);
    for (int i = 0; i < c->layers - skip; i++)
        sdc_clip_layer_forward(ex, &m->layer[i], c->heads, c->eps, true, x);
    sdc_tensor y = sdc_x_layer_norm(ex, x, &m->final_ln_w, &m->final_ln_b, c->eps);
    sdc_x_free(ex, &x);
    return y;
}
