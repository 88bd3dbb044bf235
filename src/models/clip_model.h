/* clip_model.h — a full CLIP model (transformers' CLIPModel layout): the text
 * tower (clip_text.h, pooled at the EOS token), the vision tower
 * (clip_vision.h, pooled at the class token) and the two bias-free
 * projections into the shared embedding space.
 *
 *     sdc_clip_model *m = sdc_clip_model_open("clip-vit-large-patch14", be, &err);
 *     sdc_exec ex = sdc_exec_begin(be, arena, &err);
 *     float emb[2 * 768];                                 // [B, projection_dim]
 *     if (sdc_clip_encode_image(&ex, m, pixels, 2, true, emb, NULL)) ...  // pixels [2, 3, 224, 224]
 *     sdc_clip_model_close(m);
 *
 * Checkpoints: a folder with config.json (a CLIPConfig: text_config /
 * vision_config, or the legacy *_config_dict, which transformers lets win)
 * and model.safetensors, plus preprocessor_config.json when present; or a
 * single .safetensors in the same key layout (text_model.*, vision_model.*,
 * text_projection.weight, visual_projection.weight, logit_scale) whose sizes
 * are read off the tensor shapes (heads: width / 64, or the file's
 * __metadata__ sdc.clip.text_heads / sdc.clip.vision_heads).
 *
 * Embeddings: "features" are transformers' get_text_features /
 * get_image_features (projection of the pooled output, not normalized);
 * "embeds" are CLIPModel's text_embeds / image_embeds (the same, L2-normalized).
 * The `normalize` flag of the encoders picks one. */
#ifndef SDC_CLIP_MODEL_H
#define SDC_CLIP_MODEL_H

#include "clip_vision.h"

typedef struct sdc_clip_config {
    sdc_clip_text_config text;
    sdc_clip_vision_config vision;
    int proj;        /* projection_dim (768 for ViT-L/14) */
    /* text_config.eos_token_id. transformers 4.46 pools the text at
     * argmax(input_ids) when it is 2 (configs older than its PR #24773),
     * else at the first position holding eos_token_id (position 0 if none). */
    int eos_id;
    /* Preprocessing (preprocessor_config.json, else CLIP's): the shortest
     * side is resized to `resize` (bicubic), a crop x crop centre is cut
     * (crop == vision.image_size), then (x / 255 - mean) / std. */
    int resize, crop;
    float mean[3], std[3];
} sdc_clip_config;

/* openai/clip-vit-large-patch14 (text 768 x 12 layers, vision 1024 x 24, 768-d). */
extern const sdc_clip_config sdc_clip_vit_l14;

typedef struct sdc_clip_model {
    sdc_clip_config cfg;
    char *path;             /* as opened */
    char *weights;          /* the .safetensors file holding the weights */
    sdc_safetensors *st;
    sdc_clip_text text;
    sdc_clip_vision vision;
    sdc_tensor text_proj;   /* [P, Dt] */
    sdc_tensor visual_proj; /* [P, Dv] */
    sdc_tensor logit_scale; /* [] (optional; empty when absent) */
    sdc_params params;      /* the projections and logit_scale */
} sdc_clip_model;

/* Reads the config of a CLIPModel folder or single file without binding
 * weights (*weights gets the malloc'ed weights path; may be NULL). */
sdc_status sdc_clip_config_read(const char *path, sdc_clip_config *cfg, char **weights,
                                sdc_err *err);

/* Opens, checks and binds a CLIP model on be. Files that are not a CLIPModel
 * (an SD checkpoint, a vision-only or text-only file, SD 2.x's OpenCLIP) are
 * refused with what they look like and which tensors are missing. */
sdc_clip_model *sdc_clip_model_open(const char *path, sdc_backend *be, sdc_err *err);
void sdc_clip_model_close(sdc_clip_model *m);
/* A model of config cfg with random weights of sane scale in dtype, on the
 * CPU backend (benchmarks; deterministic for a seed). */
sdc_clip_model *sdc_clip_model_random(const sdc_clip_config *cfg, sdc_backend *cpu,
                                      sdc_dtype dtype, uint64_t seed, sdc_err *err);

/* The position the text tower is pooled at for one row of ids (see eos_id). */
int sdc_clip_eos_index(const sdc_clip_config *c, const int32_t *ids, int len);

/* pixels: host [B, C, S, S] F32, preprocessed. embeds: host [B, proj] F32;
 * pooled (may be NULL): host [B, vision width], the post-LN class token.
 * On failure ex is spent (its status is sticky); NaN/Inf is SDC_ERR_NUMERIC. */
sdc_status sdc_clip_encode_image(sdc_exec *ex, const sdc_clip_model *m, const float *pixels,
                                 int batch, bool normalize, float *embeds, float *pooled);
/* ids: host [B, len] token ids, len <= max_pos (77); shorter rows are padded
 * after the end, which the causal mask makes invisible to the pooled token.
 * embeds: host [B, proj]; pooled (may be NULL): host [B, text width]. */
sdc_status sdc_clip_encode_text(sdc_exec *ex, const sdc_clip_model *m, const int32_t *ids,
                                int batch, int len, bool normalize, float *embeds, float *pooled);

/* v /= ||v||₂ (norm in double). A zero or non-finite vector is SDC_ERR_NUMERIC. */
sdc_status sdc_l2_normalize(float *v, int n, sdc_err *err);

#endif
