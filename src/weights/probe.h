/* probe.h — looking into a checkpoint before binding it: which layout a path
 * holds, where each model's keys sit, which files a folder holds and what an
 * unexpected file looks like. The one probing module (layout_detect.c), used
 * by the SD checkpoint opener (models/checkpoint.c) and the CLIPModel opener
 * (models/clip_model.c):
 *
 *     if (sdc_st_findf(st, "%s.layers.%d.mlp.fc1.weight", prefix, 0)) ...
 *     if (sdc_st_traits(st) & SDC_ST_SDXL) ...    // conditioner.embedders.*
 *     long heads = sdc_st_heads(st, "sdc.clip.heads", width);
 */
#ifndef SDC_WEIGHTS_PROBE_H
#define SDC_WEIGHTS_PROBE_H

#include "sdc.h"

/* Where each SD 1.x model's keys sit in the original (CompVis / A1111)
 * single-file layout: the prefix before the model table's own key names. */
#define SDC_ORIGINAL_UNET_PREFIX "model.diffusion_model."
#define SDC_ORIGINAL_VAE_PREFIX "first_stage_model."
#define SDC_ORIGINAL_TEXT_PREFIX "cond_stage_model.transformer."

/* The entry whose name is the printf-formatted key (at most 255 bytes), or NULL. */
const sdc_st_entry *sdc_st_findf(const sdc_safetensors *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What a single file's keys say it is, for the openers' refusals: a set of
 * these bits (several can hold; each opener reads them in its own order). */
typedef enum sdc_st_trait {
    SDC_ST_EMPTY = 1 << 0,         /* no tensors */
    SDC_ST_LORA = 1 << 1,          /* lora_* */
    SDC_ST_SDXL = 1 << 2,          /* conditioner.embedders.* */
    SDC_ST_SD2 = 1 << 3,           /* cond_stage_model.model.* (OpenCLIP text encoder) */
    SDC_ST_SD = 1 << 4,            /* cond_stage_model.* or model.diffusion_model.* */
    SDC_ST_OPENCLIP = 1 << 5,      /* visual.* or transformer.resblocks.* */
    SDC_ST_CLIP_TEXT = 1 << 6,     /* text_model.* (transformers' CLIP text tower) */
    SDC_ST_CLIP_VISION = 1 << 7,   /* vision_model.* (its vision tower) */
} sdc_st_trait;
unsigned sdc_st_traits(const sdc_safetensors *st);
/* What a file looks like to an opener that wanted something else: the says
 * of the first row of looks (ended by a row with says NULL) whose `all`
 * traits st has and whose `none` traits it lacks, else otherwise. */
typedef struct sdc_st_look {
    unsigned all, none;
    const char *says;
} sdc_st_look;
const char *sdc_st_looks_like(const sdc_safetensors *st, const sdc_st_look *looks,
                              const char *otherwise);

/* A __metadata__ integer in [1, 4095]: def when absent, -1 when malformed. */
long sdc_st_meta_int(const sdc_safetensors *st, const char *key, long def);
/* The head count of a tower of width: the file's __metadata__ key when set,
 * else width / 64 (SD 1.x's and CLIP's head size); -1 when that is not a
 * positive divisor of width. */
long sdc_st_heads(const sdc_safetensors *st, const char *key, int width);

/* True when dir/rel is a regular file. */
bool sdc_is_file_in(const char *dir, const char *rel);
/* A diffusers folder's weights file of component c: the first of
 * <sub>/<name>.safetensors and its .fp16 variant that is a regular file under
 * dir, its path written to path (cap bytes); returns it relative to dir
 * ("unet/diffusion_pytorch_model.safetensors", static), or NULL. */
const char *sdc_component_file(const char *dir, sdc_component c, char *path, size_t cap);
/* The preferred weights file name of component c ("model.safetensors"). */
const char *sdc_component_weights_name(sdc_component c);
/* The same for a transformers model folder (a CLIPModel's): model.safetensors
 * or model.fp16.safetensors in dir, as the text encoder's folder holds. */
const char *sdc_model_file(const char *dir, char *path, size_t cap);
/* True when dir holds a diffusers pipeline's model_index.json. */
bool sdc_is_pipeline_folder(const char *dir);

#endif
