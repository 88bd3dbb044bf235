/* clip_text.h — the CLIP text tower of SD 1.x (ViT-L/14's text transformer):
 * token + position embeddings, pre-LN transformer layers with causal
 * self-attention and quick-GELU MLPs, final layer norm. */
#ifndef SDC_CLIP_TEXT_H
#define SDC_CLIP_TEXT_H

#include "../core/exec.h"
#include "../weights/params.h"

typedef struct sdc_clip_text_config {
    int vocab;   /* 49408 */
    int max_pos; /* 77 */
    int width;   /* 768 */
    int heads;   /* 12 */
    int layers;  /* 12 */
    int ffn;     /* 3072 */
    float eps;   /* 1e-5 */
} sdc_clip_text_config;

extern const sdc_clip_text_config sdc_clip_text_sd15;

typedef struct clip_text_layer {
    sdc_tensor ln1_w, ln1_b;           /* [D] */
    sdc_tensor q_w, k_w, v_w, out_w;   /* [D, D] */
    sdc_tensor q_b, k_b, v_b, out_b;   /* [D] */
    sdc_tensor ln2_w, ln2_b;           /* [D] */
    sdc_tensor fc1_w, fc1_b;           /* [F, D], [F] */
    sdc_tensor fc2_w, fc2_b;           /* [D, F], [D] */
} clip_text_layer;

typedef struct sdc_clip_text {
    sdc_clip_text_config cfg;
    sdc_tensor token_emb;              /* [V, D] */
    sdc_tensor pos_emb;                /* [77, D] */
    clip_text_layer *layer;            /* [layers] */
    sdc_tensor final_ln_w, final_ln_b; /* [D] */
    sdc_params params;
} sdc_clip_text;

/* Reads a transformers CLIPTextConfig (config.json). Refuses activations
 * other than quick_gelu (SD 2.x's OpenCLIP tower uses gelu). */
sdc_status sdc_clip_text_config_from_json(const char *path, sdc_clip_text_config *cfg,
                                          sdc_err *err);
/* The CLIPTextConfig keys of JSON object t (NULL: none) into *c, range
 * checked (vocab_size up to max_vocab); absent keys keep *c's values. The
 * one list of them, for the SD text encoder's config.json above and a
 * CLIPModel's text_config (clip_model.c). */
struct cJSON;
sdc_status sdc_clip_text_config_keys(const struct cJSON *t, const char *path, long max_vocab,
                                     sdc_clip_text_config *c, sdc_err *err);
/* A text tower's sizes off its tensors' shapes under prefix ("text_model."
 * in a CLIPModel file, "cond_stage_model.transformer.text_model." in an SD
 * one): vocab, width, max_pos, ffn and the layer count; the other fields of
 * *c stay. Returns NULL, or the key (after prefix) of a tensor that is
 * missing or not 2-D. */
const char *sdc_clip_text_config_from_shapes(const sdc_safetensors *st, const char *prefix,
                                             sdc_clip_text_config *c);

/* Builds the parameter table (names relative to "text_model."'s parent, i.e.
 * "text_model.embeddings.token_embedding.weight"). Free with _free. */
sdc_status sdc_clip_text_init(sdc_clip_text *m, const sdc_clip_text_config *cfg, sdc_err *err);
void sdc_clip_text_free(sdc_clip_text *m);

/* ids: [B, max_pos] I32 on the host. Returns last_hidden_state [B, max_pos, D]
 * from the arena, after skipping the last `skip` layers (diffusers'
 * clip_skip: 0 = all layers; the final layer norm is applied either way).
 * Ids vocab + k (textual-inversion tokens) take row k of extra [n_extra, D]
 * (host memory) as their token embedding. */
sdc_tensor sdc_clip_text_forward(sdc_exec *ex, const sdc_clip_text *m, const int32_t *ids, int batch,
                                 int skip, const float *extra, int n_extra);

/* The embedding stage alone: token (and extra) + position embeddings
 * [B, max_pos, D]; the arguments as sdc_clip_text_forward's, checked. */
sdc_tensor sdc_clip_text_embed(sdc_exec *ex, const sdc_clip_text *m, const int32_t *ids,
                               int batch, int skip, const float *extra, int n_extra);

/* The rows of a tower's n encoder layers under "<tower>.encoder.layers.<i>"
 * (tower "text_model" or "vision_model"): layer_norm1,
 * self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1 [F, D], mlp.fc2 [D, F];
 * both towers share it. */
void sdc_clip_encoder_params(sdc_params *P, clip_text_layer *layers, int n, const char *tower,
                             int D, int F);
/* The self-attention's projections of LN1(x), x [B, T, D]: q, k, v [B, T, D]
 * (the forward's and the backward's rerun's first step). */
void sdc_clip_layer_qkv(sdc_exec *ex, const clip_text_layer *L, float eps, sdc_tensor x,
                        sdc_tensor *q, sdc_tensor *k, sdc_tensor *v);
/* One pre-LN transformer layer on x [B, T, D], in place (the text tower's
 * causal layer; the vision tower runs the same layer without the mask). */
void sdc_clip_layer_forward(sdc_exec *ex, const clip_text_layer *L, int heads, float eps,
                            bool causal, sdc_tensor x);

#endif
