/* sampler_impl.h — the sampler's private state, shared by sampler.c (schedule
 * setup, scalings, img2img) and sampler_step.c (the step of each method). */
#ifndef SDC_PIPELINE_SAMPLER_IMPL_H
#define SDC_PIPELINE_SAMPLER_IMPL_H

#include "sampler.h"

#define SDC_SAMPLER_HIST 4 /* longest history: PLMS ets and LMS derivatives */

struct sdc_sampler {
    sdc_sampler_opts o;
    size_t n;                   /* elements of x */
    float ac[SDC_TRAIN_STEPS];  /* alphas_cumprod, float32 as torch keeps it */
    int n_ts;                   /* length of diffusers' scheduler.timesteps */
    double *ts;                 /* [n_ts] timesteps, exact values */
    float *sig;                 /* [n_ts + 1] sigmas (sigma-based and DPM++), float32 */
    int ratio;                  /* DDIM/PLMS: num_train_timesteps // steps */
    int begin;                  /* first iteration (img2img's t_start * order) */
    /* multistep state */
    int taken;                  /* steps taken since begin (PLMS counter) */
    float *hist[SDC_SAMPLER_HIST]; /* [n] each: PLMS ets, LMS derivatives, DPM++ x0 */
    int n_hist;                 /* valid entries, newest last */
    float *keep;                /* [n] PLMS cur_sample, Heun's sample at the first stage */
    float *keep2;               /* [n] Heun prev_derivative */
    float *tmp;                 /* [n] noise buffer */
    float heun_dt;
    bool heun_second;           /* next Heun step is the correction */
};

/* Pushes a copy of v[n] as newest history entry (dropping the oldest past max). */
void sdc_sampler_push_hist(sdc_sampler *s, const float *v, int max);

sdc_status sdc_step_ddim(sdc_sampler *s, int idx, const float *eps, float *x, sdc_rng *rngs,
                         int n_rngs, sdc_err *err);
sdc_status sdc_step_pndm(sdc_sampler *s, int idx, const float *eps, float *x);
sdc_status sdc_step_euler(sdc_sampler *s, int idx, const float *eps, float *x, sdc_rng *rngs,
                          int n_rngs, bool ancestral, sdc_err *err);
sdc_status sdc_step_dpmpp_2m(sdc_sampler *s, int idx, const float *eps, float *x);
sdc_status sdc_step_lms(sdc_sampler *s, int idx, const float *eps, float *x);
sdc_status sdc_step_heun(sdc_sampler *s, int idx, const float *eps, float *x);

#endif
