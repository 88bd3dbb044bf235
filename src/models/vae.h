/* vae.h — SD 1.x AutoencoderKL, generic over its config:
 *   encoder: conv_in → down levels (res blocks, asymmetric-pad stride-2 conv)
 *            → mid (res, single-head attention, res) → GN+SiLU → conv_out
 *            → quant_conv → moments (mean, logvar)
 *   decoder: post_quant_conv → conv_in → mid → up levels (res blocks,
 *            nearest 2x + conv) → GN+SiLU → conv_out.
 * The 0.18215 scaling factor belongs to the pipeline, not to this module. */
#ifndef SDC_VAE_H
#define SDC_VAE_H

#include "../core/exec.h"
#include "resnet.h"

#define VAE_MAX_LEVELS 6
#define VAE_MAX_LAYERS 4

typedef struct sdc_vae_config {
    int in_channels, out_channels;  /* 3, 3 */
    int latent_channels;            /* 4 */
    int levels;                     /* 4 */
    int channels[VAE_MAX_LEVELS];   /* 128, 256, 512, 512 */
    int layers_per_block;           /* 2 (the decoder uses one more) */
    int groups;                     /* 32 */
    float scaling_factor;           /* 0.18215, for the pipeline */
} sdc_vae_config;

extern const sdc_vae_config sdc_vae_sd15;

typedef struct vae_attention {
    sdc_tensor norm_w, norm_b;                     /* [C] */
    sdc_tensor q_w, q_b, k_w, k_b, v_w, v_b;       /* [C, C] (1x1 convs in the original) */
    sdc_tensor o_w, o_b;
} vae_attention;

typedef struct vae_mid {
    sdc_resnet res0, res1;
    vae_attention attn;
} vae_mid;

typedef struct vae_level {
    sdc_resnet res[VAE_MAX_LAYERS + 1];
    sdc_tensor sample_w, sample_b;                 /* [C, C, 3, 3] */
} vae_level;

typedef struct sdc_vae {
    sdc_vae_config cfg;
    /* encoder */
    sdc_tensor enc_in_w, enc_in_b;                 /* [C0, in, 3, 3] */
    vae_level enc[VAE_MAX_LEVELS];
    vae_mid enc_mid;
    sdc_tensor enc_norm_w, enc_norm_b;             /* [Cn] */
    sdc_tensor enc_out_w, enc_out_b;               /* [2*latent, Cn, 3, 3] */
    sdc_tensor quant_w, quant_b;                   /* [2*latent, 2*latent, 1, 1] */
    /* decoder */
    sdc_tensor post_quant_w, post_quant_b;         /* [latent, latent, 1, 1] */
    sdc_tensor dec_in_w, dec_in_b;                 /* [Cn, latent, 3, 3] */
    vae_mid dec_mid;
    vae_level dec[VAE_MAX_LEVELS];                 /* diffusers order: lowest resolution first */
    sdc_tensor dec_norm_w, dec_norm_b;             /* [C0] */
    sdc_tensor dec_out_w, dec_out_b;               /* [out, C0, 3, 3] */
    sdc_params params;
} sdc_vae;

sdc_status sdc_vae_config_from_json(const char *path, sdc_vae_config *cfg, sdc_err *err);
sdc_status sdc_vae_init(sdc_vae *m, const sdc_vae_config *cfg, sdc_err *err);
void sdc_vae_free(sdc_vae *m);

/* x: [B, in, H, W] in [-1, 1] (H, W multiples of 2^(levels-1)) -> mean and
 * logvar [B, latent, H/f, W/f]; logvar clamped to [-30, 20] as diffusers does. */
sdc_status sdc_vae_encode(sdc_exec *ex, const sdc_vae *m, sdc_tensor x, sdc_tensor *mean,
                          sdc_tensor *logvar);
/* z: [B, latent, h, w] (already divided by the scaling factor) -> [B, out, h*f, w*f], unclamped. */
sdc_tensor sdc_vae_decode(sdc_exec *ex, const sdc_vae *m, sdc_tensor z);

#endif
