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

/* Registers one encoder layer's parameters in P under pre ("text_model.
 * encoder.layers.3", "vision_model.encoder.layers.3"): layer_norm1,
 * self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1 [F, D], mlp.fc2 [D, F];
 * both towers share it. */
void sdc_clip_layer_params(sdc_params *P, clip_text_layer *L, const char *pre, int D, int F);
/* One pre-LN transformer layer on x [B, T, D], in place (the text tower's
 * causal layer; the vision tower runs the same layer without the mask). */
void sdc_clip_layer_forward(sdc_exec *ex, const clip_text_layer *L, int heads, float eps,
                            bool causal, sdc_tensor x);

#endif
