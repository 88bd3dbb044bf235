/* clip_vision.h — the CLIP vision tower (ViT) in transformers' CLIPVisionModel
 * layout: a patch convolution without bias, a class token, learned position
 * embeddings, a pre-layer-norm ("pre_layrnorm", transformers' spelling), N
 * pre-LN transformer layers (the text tower's layer without the causal mask,
 * quick-GELU MLP), and the post-layer-norm on the class token.
 *
 *     sdc_clip_vision v;
 *     sdc_clip_vision_init(&v, &sdc_clip_vision_l14, &err);   // then bind v.params
 *     sdc_tensor pooled = sdc_clip_vision_forward(&ex, &v, pixels); // [B, 3, 224, 224] -> [B, 1024]
 */
#ifndef SDC_CLIP_VISION_H
#define SDC_CLIP_VISION_H

#include "clip_text.h"

typedef struct sdc_clip_vision_config {
    int image_size; /* 224: the input is image_size x image_size */
    int patch;      /* 14 */
    int channels;   /* 3 */
    int width;      /* 1024 */
    int heads;      /* 16 */
    int layers;     /* 24 */
    int ffn;        /* 4096 */
    float eps;      /* 1e-5 */
} sdc_clip_vision_config;

/* openai/clip-vit-large-patch14's vision tower. */
extern const sdc_clip_vision_config sdc_clip_vision_l14;

typedef struct sdc_clip_vision {
    sdc_clip_vision_config cfg;
    sdc_tensor class_emb;              /* [D] */
    sdc_tensor patch_w;                /* [D, C, P, P] (no bias) */
    sdc_tensor pos_emb;                /* [1 + (S/P)^2, D] */
    sdc_tensor pre_ln_w, pre_ln_b;     /* [D] */
    clip_text_layer *layer;            /* [layers], same structure as the text tower's */
    sdc_tensor post_ln_w, post_ln_b;   /* [D] */
    sdc_params params;
} sdc_clip_vision;

/* Tokens per image: 1 + (image_size / patch)^2. */
int sdc_clip_vision_tokens(const sdc_clip_vision_config *c);

/* Checks a config (positive sizes, width % heads, image_size % patch). */
sdc_status sdc_clip_vision_config_check(const sdc_clip_vision_config *c, const char *what,
                                        sdc_err *err);

/* Builds the parameter table under "vision_model." names. Free with _free. */
sdc_status sdc_clip_vision_init(sdc_clip_vision *m, const sdc_clip_vision_config *cfg,
                                sdc_err *err);
void sdc_clip_vision_free(sdc_clip_vision *m);

/* pixels: [B, C, S, S] F32 on the backend (already normalized). Returns the
 * pooled output [B, D] (post_layernorm of the class token) from the arena. */
sdc_tensor sdc_clip_vision_forward(sdc_exec *ex, const sdc_clip_vision *m, sdc_tensor pixels);

#endif
