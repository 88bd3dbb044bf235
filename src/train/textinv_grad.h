/* textinv_grad.h — the textual-inversion objective and its gradient with
 * respect to the placeholder rows of the token embedding, through the frozen
 * CLIP text encoder and UNet. No weight gradient is ever computed.
 *
 * This is the contract between the gradient code (reverse-mode ops, model
 * backward with per-block checkpointing) and the training loop (data,
 * AdamW, checkpoints, CLI), which only calls sdc_ti_loss_grad.
 *
 * For one batch, as diffusers' textual_inversion.py computes it:
 *   c      = clip_text(ids, extra)                     [B, 77, ctx]
 *   x_t    = sqrt(ac[t]) * x0 + sqrt(1 - ac[t]) * eps  (DDPMScheduler.add_noise)
 *   pred   = unet(x_t, t, c)
 *   target = eps (epsilon prediction) or
 *            sqrt(ac[t]) * eps - sqrt(1 - ac[t]) * x0 (v prediction)
 *   loss   = mean((pred - target)^2) over every element (F.mse_loss, "mean")
 *   grad   = d loss / d extra                          [n_extra, D]
 * where a token id >= vocab selects row (id - vocab) of extra, exactly as
 * sdc_clip_text_forward's `extra` argument does.
 */
#ifndef SDC_TRAIN_TEXTINV_GRAD_H
#define SDC_TRAIN_TEXTINV_GRAD_H

#include "../core/exec.h"
#include "../models/clip_text.h"
#include "../models/unet.h"

typedef enum sdc_prediction {
    SDC_PREDICT_EPSILON = 0,
    SDC_PREDICT_V,
} sdc_prediction;

typedef struct sdc_ti_batch {
    int batch;                /* B */
    int h, w;                 /* latent height and width (the image's / 8) */
    const int32_t *ids;       /* [B, 77]; ids >= vocab index rows of extra */
    const float *latents;     /* [B, 4, h, w] clean latents x0 (posterior sample x 0.18215) */
    const float *noise;       /* [B, 4, h, w] eps */
    const int32_t *timesteps; /* [B], each in [0, 1000) */
} sdc_ti_batch;

typedef struct sdc_ti_model {
    const sdc_clip_text *clip;
    const sdc_unet *unet;
    const float *alphas_cumprod; /* [1000], sdc_schedule_alphas_cumprod */
    sdc_prediction prediction;
    int clip_skip;               /* 0 = the last layer, as diffusers' training */
} sdc_ti_model;

/* Forward and backward for one batch on ex's backend. extra [n_extra, D]
 * (D = clip width) holds the current placeholder rows; *loss gets the batch's
 * mean squared error and grad [n_extra, D] d loss / d extra (overwritten, not
 * accumulated). Memory stays bounded by recomputing each UNet block's
 * activations in the backward pass. Returns ex->status. */
sdc_status sdc_ti_loss_grad(sdc_exec *ex, const sdc_ti_model *m, const float *extra, int n_extra,
                            const sdc_ti_batch *b, float *loss, float *grad);

/* The loss alone (no backward): validation, and finite-difference checks. */
sdc_status sdc_ti_loss(sdc_exec *ex, const sdc_ti_model *m, const float *extra, int n_extra,
                       const sdc_ti_batch *b, float *loss);

#endif
