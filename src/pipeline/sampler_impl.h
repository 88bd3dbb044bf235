/* sampler_impl.h — the sampler's private state, shared by sampler.c (schedule
 * setup, scalings, img2img) and sampler_step.c (the step of each method). */
#ifndef SDC_PIPELINE_SAMPLER_IMPL_H
#define SDC_PIPELINE_SAMPLER_IMPL_H

#include "sampler.h"

#define SDC_SAMPLER_HIST 4 /* longest history: PLMS ets and LMS derivatives */

struct sdc_sampler {
    sdc_sampler_opts o;
    sdc_sched_config c;         /* the resolved configuration */
    size_t n;                   /* elements of x */
    int N;                      /* num_train_timesteps */
    float *ac;                  /* [N] alphas_cumprod, float32 as torch keeps it */
    float final_alpha;          /* DDIM/PNDM alpha before t = 0 (set_alpha_to_one) */
    int n_ts;                   /* length of diffusers' scheduler.timesteps */
    double *ts;                 /* [n_ts] timesteps, exact values */
    float *sig;                 /* [n_ts + 1] sigmas (sigma-based and DPM++), float32 */
    int ratio;                  /* DDIM/PLMS: num_train_timesteps // steps */
    int n_prk;                  /* PNDM without skip_prk_steps: the PRK warm-up's length */
    double *prk_ts;             /* [n_prk] its timesteps */
    int begin;                  /* first iteration (img2img's t_start * order) */
    /* multistep state */
    int taken;                  /* steps taken since begin (PLMS counter) */
    float *hist[SDC_SAMPLER_HIST]; /* [n] each: PLMS ets, LMS derivatives, DPM++ model outputs */
    int n_hist;                 /* valid entries, newest last */
    float *keep;                /* [n] PLMS cur_sample, Heun's sample at the first stage */
    float *keep2;               /* [n] Heun prev_derivative, PRK cur_model_output */
    float *tmp;                 /* [n] scratch */
    float *noise;               /* [n] noise buffer */
    float heun_dt;
    bool heun_second;           /* next Heun step is the correction */
};


sdc_status sdc_step_ddim(sdc_sampler *s, int idx, const float *out, float *x, sdc_rng *rngs,
                         int n_rngs, sdc_err *err);
sdc_status sdc_step_pndm(sdc_sampler *s, int idx, const float *out, float *x);
sdc_status sdc_step_euler(sdc_sampler *s, int idx, const float *out, float *x, sdc_rng *rngs,
                          int n_rngs, bool ancestral, sdc_err *err);
sdc_status sdc_step_dpm(sdc_sampler *s, int idx, const float *out, float *x, sdc_rng *rngs,
                        int n_rngs, sdc_err *err);
sdc_status sdc_step_lms(sdc_sampler *s, int idx, const float *out, float *x);
sdc_status sdc_step_heun(sdc_sampler *s, int idx, const float *out, float *x);

#endif
