/* unet.h — the SD 1.x UNet2DConditionModel, generic over its config so that
 * tiny test configs run exactly the code paths of the full model:
 *   conv_in → down levels (res blocks [+ cross-attn transformers], downsample)
 *   → mid (res, transformer, res) → up levels (res blocks on concatenated
 *   skips [+ transformers], upsample) → GN+SiLU → conv_out. */
#ifndef SDC_UNET_H
#define SDC_UNET_H

#include "../core/exec.h"
#include "resnet.h"

#define UNET_MAX_LEVELS 6
#define UNET_MAX_LAYERS 4

typedef struct sdc_unet_config {
    int in_channels, out_channels;     /* 4, 4 */
    int levels;                        /* 4 */
    int channels[UNET_MAX_LEVELS];     /* 320, 640, 1280, 1280 */
    bool attn[UNET_MAX_LEVELS];        /* down level i has transformers (up mirrors it) */
    int layers_per_block;              /* 2 */
    int heads;                         /* 8 (the config's "attention_head_dim") */
    int context_dim;                   /* 768 */
    int groups;                        /* 32 */
    float norm_eps;                    /* 1e-5 */
} sdc_unet_config;

extern const sdc_unet_config sdc_unet_sd15;

typedef struct unet_transformer {
    int ch;
    sdc_tensor norm_w, norm_b;         /* [C] group norm, eps 1e-6 */
    sdc_tensor proj_in_w, proj_in_b;   /* [C, C, 1, 1] */
    sdc_tensor ln1_w, ln1_b, ln2_w, ln2_b, ln3_w, ln3_b; /* [C] */
    sdc_tensor q1_w, k1_w, v1_w;       /* [C, C] self-attention, no bias */
    sdc_tensor o1_w, o1_b;             /* [C, C], [C] */
    sdc_tensor q2_w;                   /* [C, C] cross-attention */
    sdc_tensor k2_w, v2_w;             /* [C, context] */
    sdc_tensor o2_w, o2_b;             /* [C, C], [C] */
    sdc_tensor ff1_w, ff1_b;           /* [8C, C], [8C] GEGLU projection */
    sdc_tensor ff2_w, ff2_b;           /* [C, 4C], [C] */
    sdc_tensor proj_out_w, proj_out_b; /* [C, C, 1, 1] */
} unet_transformer;

typedef struct unet_level {
    sdc_resnet res[UNET_MAX_LAYERS + 1];      /* down: layers; up: layers + 1 */
    unet_transformer attn[UNET_MAX_LAYERS + 1];
    sdc_tensor sample_w, sample_b;             /* down/upsampler conv [C, C, 3, 3] */
} unet_level;

typedef struct sdc_unet {
    sdc_unet_config cfg;
    sdc_tensor conv_in_w, conv_in_b;           /* [C0, in, 3, 3] */
    sdc_tensor temb1_w, temb1_b;               /* [4*C0, C0] */
    sdc_tensor temb2_w, temb2_b;               /* [4*C0, 4*C0] */
    unet_level down[UNET_MAX_LEVELS], up[UNET_MAX_LEVELS];
    sdc_resnet mid_res[2];
    unet_transformer mid_attn;
    sdc_tensor norm_out_w, norm_out_b;         /* [C0] */
    sdc_tensor conv_out_w, conv_out_b;         /* [out, C0, 3, 3] */
    sdc_params params;
} sdc_unet;

/* Reads diffusers' unet/config.json; refuses what is not SD 1.x-shaped. */
sdc_status sdc_unet_config_from_json(const char *path, sdc_unet_config *cfg, sdc_err *err);
/* Builds the parameter table (diffusers names, original names as alt). */
sdc_status sdc_unet_init(sdc_unet *m, const sdc_unet_config *cfg, sdc_err *err);
void sdc_unet_free(sdc_unet *m);

/* x: [B, in, h, w] (h, w divisible by 2^(levels-1)); t: [B] F32 timesteps;
 * ctx: [B, 77, context]. Returns the raw prediction [B, out, h, w].
 * With ex->dump set, names every block's output ("down_blocks.0", "mid_block",
 * "up_blocks.3", ...). */
sdc_tensor sdc_unet_forward(sdc_exec *ex, const sdc_unet *m, sdc_tensor x, sdc_tensor t,
                            sdc_tensor ctx);

#endif
