/* textinv_grad.c — PLACEHOLDER for the textual-inversion gradient, to be
 * replaced whole by the analytic gradient (reverse-mode ops and model
 * backward, branch ti-grad). Until then it implements textinv_grad.h
 * correctly but slowly, with the existing forwards only:
 *   sdc_ti_loss       clip text (with the extra rows) -> DDPM add_noise ->
 *                     UNet -> mean squared error on eps or v
 *   sdc_ti_loss_grad  central finite differences over every element of
 *                     extra: 2 * n_extra * D + 1 loss evaluations per call,
 *                     fine on the tiny test model (CLIP width 8) and refused
 *                     above TI_FD_MAX_PARAMS elements (a full-size model's 768
 *                     would take 1537 UNet passes per step).
 * Nothing but the header's two functions may live in this file. */
#include "textinv_grad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TI_FD_MAX_PARAMS 1024
/* Central-difference step, relative to max(1, |x|): the truncation error
 * (h^2) and the F32 forward's rounding noise (1/h) balance near 3e-2 on the
 * tiny model. Against torch autograd (tests/test_train.c) the gradient's
 * rel-L2 was 2.1e-2 at h 3e-3, 4.9e-3 at 1e-2, 3.5e-3 at 3e-2, 3.1e-2 at 1e-1. */
#define TI_FD_STEP 3e-2f

static sdc_status check_batch(sdc_exec *ex, const sdc_ti_model *m, const float *extra,
                              int n_extra, const sdc_ti_batch *b) {
    if (!m || !m->clip || !m->unet || !m->alphas_cumprod || !b || !b->ids || !b->latents ||
        !b->noise || !b->timesteps || (n_extra > 0 && !extra) || n_extra < 0)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "textual inversion: missing input");
    if (b->batch < 1 || b->batch > 256 || b->h < 1 || b->w < 1)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "textual inversion: batch %d of "
                                        "%dx%d latents", b->batch, b->h, b->w);
    for (int i = 0; i < b->batch; i++)
        if (b->timesteps[i] < 0 || b->timesteps[i] >= 1000)
            return ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "textual inversion: timestep "
                                            "%d outside [0, 1000)", (int)b->timesteps[i]);
    if (m->clip->cfg.width != m->unet->cfg.context_dim)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "textual inversion: text width "
                                        "%d but UNet context %d", m->clip->cfg.width,
                                        m->unet->cfg.context_dim);
    return SDC_OK;
}

/* The batch's loss at extra, computed as diffusers' textual_inversion.py
 * does in float32 (add_noise, get_velocity and F.mse_loss term by term);
 * the mean is summed in double. */
static sdc_status loss_at(sdc_exec *ex, const sdc_ti_model *m, const float *extra, int n_extra,
                          const sdc_ti_batch *b, float *xt_host, float *pred, float *loss) {
    int B = b->batch;
    size_t per = (size_t)4 * b->h * b->w, n = per * (size_t)B;
    float tv[256];
    for (int i = 0; i < B; i++) {
        float ac = m->alphas_cumprod[b->timesteps[i]], sa = sqrtf(ac), so = sqrtf(1.0f - ac);
        const float *x0 = b->latents + i * per, *eps = b->noise + i * per;
        for (size_t k = 0; k < per; k++) {
            float p1 = sa * x0[k], p2 = so * eps[k];
            xt_host[i * per + k] = p1 + p2;
        }
        tv[i] = (float)b->timesteps[i];
    }
    sdc_tensor ctx = sdc_clip_text_forward(ex, m->clip, b->ids, B, m->clip_skip, extra, n_extra);
    sdc_tensor xt = sdc_x_from_host(ex, xt_host, SDC_F32, 4, (const int64_t[]){B, 4, b->h, b->w});
    sdc_tensor t = sdc_x_from_host(ex, tv, SDC_F32, 1, (const int64_t[]){B});
    sdc_tensor y = sdc_unet_forward(ex, m->unet, xt, t, ctx);
    if (!ex->status) sdc_x_to_host(ex, &y, pred);
    sdc_x_free(ex, &y);
    sdc_x_free(ex, &t);
    sdc_x_free(ex, &xt);
    sdc_x_free(ex, &ctx);
    if (ex->status) return ex->status;
    double sum = 0;
    for (int i = 0; i < B; i++) {
        float ac = m->alphas_cumprod[b->timesteps[i]], sa = sqrtf(ac), so = sqrtf(1.0f - ac);
        for (size_t k = 0; k < per; k++) {
            size_t j = i * per + k;
            float target = b->noise[j];
            if (m->prediction == SDC_PREDICT_V) {
                float p1 = sa * b->noise[j], p2 = so * b->latents[j];
                target = p1 - p2;
            }
            float d = pred[j] - target;
            sum += (double)(d * d);
        }
    }
    *loss = (float)(sum / (double)n);
    return SDC_OK;
}

sdc_status sdc_ti_loss(sdc_exec *ex, const sdc_ti_model *m, const float *extra, int n_extra,
                       const sdc_ti_batch *b, float *loss) {
    if (ex->status) return ex->status;
    if (check_batch(ex, m, extra, n_extra, b)) return ex->status;
    size_t n = (size_t)4 * b->h * b->w * (size_t)b->batch;
    float *xt = malloc(sizeof *xt * n), *pred = malloc(sizeof *pred * n);
    if (!xt || !pred) ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "textual inversion: out of memory");
    else loss_at(ex, m, extra, n_extra, b, xt, pred, loss);
    free(xt);
    free(pred);
    return ex->status;
}

sdc_status sdc_ti_loss_grad(sdc_exec *ex, const sdc_ti_model *m, const float *extra, int n_extra,
                            const sdc_ti_batch *b, float *loss, float *grad) {
    if (ex->status) return ex->status;
    if (check_batch(ex, m, extra, n_extra, b)) return ex->status;
    size_t D = (size_t)m->clip->cfg.width, np = (size_t)n_extra * D;
    if (np > TI_FD_MAX_PARAMS)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_UNSUPPORTED,
                                        "textual inversion: %zu embedding values need the analytic "
                                        "gradient; this build has the finite-difference placeholder "
                                        "(at most %d values: the tiny test model)", np,
                                        TI_FD_MAX_PARAMS);
    size_t n = (size_t)4 * b->h * b->w * (size_t)b->batch;
    float *xt = malloc(sizeof *xt * n), *pred = malloc(sizeof *pred * n);
    float *x = malloc(sizeof *x * (np ? np : 1));
    if (!xt || !pred || !x) {
        ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "textual inversion: out of memory");
    } else {
        if (np) memcpy(x, extra, sizeof *x * np);
        loss_at(ex, m, x, n_extra, b, xt, pred, loss);
        for (size_t i = 0; i < np && !ex->status; i++) {
            float x0 = x[i], h = TI_FD_STEP * fmaxf(1.0f, fabsf(x0)), lp = 0, lm = 0;
            float xp = x0 + h, xm = x0 - h; /* the steps actually taken, in F32 */
            x[i] = xp;
            loss_at(ex, m, x, n_extra, b, xt, pred, &lp);
            x[i] = xm;
            if (!ex->status) loss_at(ex, m, x, n_extra, b, xt, pred, &lm);
            x[i] = x0;
            grad[i] = (float)(((double)lp - (double)lm) / ((double)xp - (double)xm));
        }
    }
    free(xt);
    free(pred);
    free(x);
    return ex->status;
}
