/* checkpoint.h — an SD 1.x checkpoint on disk, in either layout, and its
 * three models loaded onto a backend.
 *
 *   original:  one .safetensors file with model.diffusion_model.*,
 *              first_stage_model.* and cond_stage_model.transformer.text_model.*
 *              (configs inferred from tensor shapes; head counts are SD 1.x's
 *              unless the file's __metadata__ gives sdc.unet.heads /
 *              sdc.clip.heads, as the tiny test checkpoints do)
 *   diffusers: a folder with unet/, vae/, text_encoder/, each holding its
 *              config.json and safetensors weights. */
#ifndef SDC_CHECKPOINT_H
#define SDC_CHECKPOINT_H

#include "clip_text.h"
#include "unet.h"
#include "vae.h"

typedef struct sdc_checkpoint {
    sdc_layout layout;
    char *path;
    sdc_safetensors *single;                 /* original layout */
    sdc_safetensors *unet_st, *vae_st, *text_st; /* diffusers layout */
    sdc_clip_text_config clip;
    sdc_unet_config unet;
    sdc_vae_config vae;
} sdc_checkpoint;

/* Opens and validates a checkpoint; refuses what is not SD 1.x (SD 2.x, SDXL,
 * inpainting, LoRA, ...) with a message saying what it looks like. */
sdc_checkpoint *sdc_checkpoint_open(const char *path, sdc_err *err);
void sdc_checkpoint_close(sdc_checkpoint *ck);

/* Sets the text encoder's head count of a single file whose width does not
 * tell it (the config's width must be a multiple of heads). */
sdc_status sdc_checkpoint_set_clip_heads(sdc_checkpoint *ck, int heads, sdc_err *err);

/* Each builds the model's table from the checkpoint's config and binds it;
 * the text encoder fails when its head count is unknown (0). */
sdc_status sdc_clip_text_load(sdc_clip_text *m, const sdc_checkpoint *ck, sdc_backend *be,
                              sdc_err *err);
sdc_status sdc_unet_load(sdc_unet *m, const sdc_checkpoint *ck, sdc_backend *be, sdc_err *err);
sdc_status sdc_vae_load(sdc_vae *m, const sdc_checkpoint *ck, sdc_backend *be, sdc_err *err);

/* config.json text (malloc'd; NULL on OOM) for make-random's diffusers folders. */
char *sdc_unet_config_json(const sdc_unet_config *c);
char *sdc_vae_config_json(const sdc_vae_config *c);
char *sdc_clip_text_config_json(const sdc_clip_text_config *c);

#endif
