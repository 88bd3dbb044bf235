/* textinv_grad.c — the textual-inversion loss and its analytic gradient
 * (textinv_grad.h): CLIP text forward with its tape -> DDPM add_noise ->
 * UNet forward with its checkpoints -> MSE on eps or v; then d loss / d pred
 * back through the UNet to the context (unet_backward.c) and through the
 * text encoder to the placeholder rows (clip_text_backward.c). The noisy
 * latents, target and loss are computed on the host in F32 term by term, as
 * diffusers' textual_inversion.py does in torch. */
#include "textinv_grad.h"

#include "../models/clip_text_backward.h"
#include "../models/unet_backward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TI_MAX_BATCH 256

static sdc_status check_batch(sdc_exec *ex, const sdc_ti_model *m, const float *extra,
                              int n_extra, const sdc_ti_batch *b) {
    if (!m || !m->clip || !m->unet || !m->alphas_cumprod || !b || !b->ids || !b->latents ||
        !b->noise || !b->timesteps || n_extra < 0 || (n_extra > 0 && !extra))
        return ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "textual inversion: missing input");
    if (b->batch < 1 || b->batch > TI_MAX_BATCH || b->h < 1 || b->w < 1)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "textual inversion: batch %d of "
                                        "%dx%d latents (batch must be in [1, %d])", b->batch,
                                        b->h, b->w, TI_MAX_BATCH);
    for (int i = 0; i < b->batch; i++)
        if (b->timesteps[i] < 0 || b->timesteps[i] >= 1000)
            return ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "textual inversion: timestep "
                                            "%d outside [0, 1000)", (int)b->timesteps[i]);
    if (m->prediction != SDC_PREDICT_EPSILON && m->prediction != SDC_PREDICT_V)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_ARG,
                                        "textual inversion: unknown prediction type %d",
                                        (int)m->prediction);
    if (m->clip->cfg.width != m->unet->cfg.context_dim)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "textual inversion: text width "
                                        "%d but UNet context %d", m->clip->cfg.width,
                                        m->unet->cfg.context_dim);
    return SDC_OK;
}

/* x_t = sqrt(ac)·x0 + sqrt(1 - ac)·eps per sample (DDPMScheduler.add_noise,
 * F32, each product rounded before the sum as torch does); t as F32. */
static void add_noise(const sdc_ti_model *m, const sdc_ti_batch *b, float *xt, float *tv) {
    size_t per = (size_t)4 * (size_t)b->h * (size_t)b->w;
    for (int i = 0; i < b->batch; i++) {
        float ac = m->alphas_cumprod[b->timesteps[i]], sa = sqrtf(ac), so = sqrtf(1.0f - ac);
        const float *x0 = b->latents + i * per, *eps = b->noise + i * per;
        for (size_t k = 0; k < per; k++) {
            float p1 = sa * x0[k], p2 = so * eps[k];
            xt[i * per + k] = p1 + p2;
        }
        tv[i] = (float)b->timesteps[i];
    }
}

/* mean((pred - target)²) with target eps or v = sqrt(ac)·eps - sqrt(1-ac)·x0
 * (get_velocity); with dpred, also d loss / d pred = 2·(pred - target)/N. */
static float mse(const sdc_ti_model *m, const sdc_ti_batch *b, const float *pred, float *dpred) {
    size_t per = (size_t)4 * (size_t)b->h * (size_t)b->w, n = per * (size_t)b->batch;
    double sum = 0;
    float scale = 2.0f / (float)n;
    for (int i = 0; i < b->batch; i++) {
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
            if (dpred) dpred[j] = scale * d;
        }
    }
    return (float)(sum / (double)n);
}

/* Host buffers of one call: x_t, pred (then d loss / d pred), timesteps. */
typedef struct ti_bufs {
    float *xt, *pred, tv[TI_MAX_BATCH];
} ti_bufs;

static sdc_status bufs_alloc(sdc_exec *ex, const sdc_ti_batch *b, ti_bufs *h) {
    size_t n = (size_t)4 * (size_t)b->h * (size_t)b->w * (size_t)b->batch;
    h->xt = malloc(n * sizeof *h->xt);
    h->pred = malloc(n * sizeof *h->pred);
    if (!h->xt || !h->pred)
        return ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "textual inversion: out of memory");
    return SDC_OK;
}

static void bufs_free(ti_bufs *h) {
    free(h->xt);
    free(h->pred);
}

sdc_status sdc_ti_loss(sdc_exec *ex, const sdc_ti_model *m, const float *extra, int n_extra,
                       const sdc_ti_batch *b, float *loss) {
    if (ex->status || check_batch(ex, m, extra, n_extra, b)) return ex->status;
    ti_bufs h = {0};
    int B = b->batch;
    if (!bufs_alloc(ex, b, &h)) {
        add_noise(m, b, h.xt, h.tv);
        sdc_tensor ctx = sdc_clip_text_forward(ex, m->clip, b->ids, B, m->clip_skip, extra,
                                               n_extra);
        sdc_tensor xt = sdc_x_from_host(ex, h.xt, ex->act, 4, (const int64_t[]){B, 4, b->h, b->w});
        sdc_tensor t = sdc_x_from_host(ex, h.tv, SDC_F32, 1, (const int64_t[]){B});
        sdc_tensor y = sdc_unet_forward(ex, m->unet, xt, t, ctx);
        if (!ex->status && !sdc_x_to_host(ex, &y, h.pred)) *loss = mse(m, b, h.pred, NULL);
        sdc_x_free(ex, &y);
        sdc_x_free(ex, &t);
        sdc_x_free(ex, &xt);
        sdc_x_free(ex, &ctx);
    }
    bufs_free(&h);
    return ex->status;
}

sdc_status sdc_ti_loss_grad(sdc_exec *ex, const sdc_ti_model *m, const float *extra, int n_extra,
                            const sdc_ti_batch *b, float *loss, float *grad) {
    if (ex->status || check_batch(ex, m, extra, n_extra, b)) return ex->status;
    ti_bufs h = {0};
    int B = b->batch;
    const int64_t lat[4] = {B, 4, b->h, b->w};
    if (!bufs_alloc(ex, b, &h)) {
        add_noise(m, b, h.xt, h.tv);
        sdc_clip_tape ctape;
        sdc_unet_tape utape;
        sdc_tensor ctx = sdc_clip_text_forward_tape(ex, m->clip, b->ids, B, m->clip_skip, extra,
                                                    n_extra, &ctape);
        sdc_tensor xt = sdc_x_from_host(ex, h.xt, ex->act, 4, lat);
        sdc_tensor t = sdc_x_from_host(ex, h.tv, SDC_F32, 1, (const int64_t[]){B});
        sdc_tensor y = sdc_unet_forward_tape(ex, m->unet, xt, t, ctx, &utape);
        sdc_x_free(ex, &t);
        sdc_x_free(ex, &xt);
        if (!ex->status && !sdc_x_to_host(ex, &y, h.pred)) *loss = mse(m, b, h.pred, h.pred);
        sdc_x_free(ex, &y);
        sdc_tensor dy = sdc_x_from_host(ex, h.pred, ex->act, 4, lat); /* d loss / d pred */
        sdc_tensor dctx = sdc_unet_backward(ex, m->unet, &utape, dy);  /* releases utape */
        sdc_x_free(ex, &dy);
        sdc_x_free(ex, &ctx);
        sdc_clip_text_backward(ex, m->clip, &ctape, dctx, grad);       /* releases ctape */
        sdc_x_free(ex, &dctx);
    }
    bufs_free(&h);
    return ex->status;
}
