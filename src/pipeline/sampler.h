/* sampler.h — diffusers 0.31's SD 1.x schedulers as samplers on plain float
 * arrays: a schedule (timesteps, sigmas), the denoiser's input scaling, and a
 * step with whatever multistep state the method needs.
 *
 *     sdc_sampler_opts o = {.steps = 20};
 *     sdc_sampler_from_name("dpmpp_2m_karras", &o);
 *     sdc_sampler *s = sdc_sampler_create(&o, n, &err);   // n = elements of x
 *     sdc_rng_randn(&rng, x, n);
 *     for (size_t k = 0; k < n; k++) x[k] *= sdc_sampler_init_noise_sigma(s);
 *     for (int i = 0; i < sdc_sampler_iterations(s); i++) {
 *         float t = sdc_sampler_timestep(s, i);
 *         for (size_t k = 0; k < n; k++) x_in[k] = x[k] * sdc_sampler_input_scale(s, i);
 *         unet(x_in, t, eps);                              // epsilon prediction
 *         if (sdc_sampler_step(s, i, eps, x, &rng, &err)) ...
 *     }
 *     sdc_sampler_free(s);
 *
 * This is exactly diffusers' pipeline loop (the CFG combination happens in eps
 * before the step). img2img: sdc_sampler_set_strength, then sdc_sampler_add_noise
 * on the encoded latents, then the same loop over the remaining iterations.
 */
#ifndef SDC_PIPELINE_SAMPLER_H
#define SDC_PIPELINE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>

#include "rng.h"
#include "schedule.h"
#include "sdc.h"

typedef enum sdc_sampler_kind {
    SDC_SAMPLER_DDIM = 0,  /* DDIMScheduler (eta; default spacing leading) */
    SDC_SAMPLER_PNDM,      /* PNDMScheduler, skip_prk_steps: PLMS (leading) */
    SDC_SAMPLER_EULER,     /* EulerDiscreteScheduler (linspace) */
    SDC_SAMPLER_EULER_A,   /* EulerAncestralDiscreteScheduler (linspace) */
    SDC_SAMPLER_DPMPP_2M,  /* DPMSolverMultistep dpmsolver++ order 2 (linspace; karras) */
    SDC_SAMPLER_LMS,       /* LMSDiscreteScheduler, order 4 (linspace) */
    SDC_SAMPLER_HEUN,      /* HeunDiscreteScheduler (linspace; 2 evaluations per step) */
    SDC_SAMPLER_COUNT
} sdc_sampler_kind;

typedef struct sdc_sampler_opts {
    sdc_sampler_kind kind;
    int steps;           /* num_inference_steps, 1..1000 */
    float eta;           /* DDIM only: 0 deterministic, 1 DDPM-like; >= 0 */
    bool karras;         /* DPM++ 2M only: use_karras_sigmas */
    sdc_spacing spacing; /* DEFAULT = the scheduler's own default */
} sdc_sampler_opts;

typedef struct sdc_sampler sdc_sampler;

/* "ddim", "pndm" or "plms", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras",
 * "lms", "heun": sets o->kind and o->karras only. False for an unknown name. */
bool sdc_sampler_from_name(const char *name, sdc_sampler_opts *o);
const char *sdc_sampler_name(sdc_sampler_kind kind);

/* n: elements of the latent x (all images of the batch together). Invalid
 * options are SDC_ERR_ARG naming the option. */
sdc_sampler *sdc_sampler_create(const sdc_sampler_opts *o, size_t n, sdc_err *err);
void sdc_sampler_free(sdc_sampler *s);

/* Model evaluations left to run (after set_strength, only the remaining ones);
 * i below counts from 0 to this minus 1. */
int sdc_sampler_iterations(const sdc_sampler *s);
/* t passed to the UNet at iteration i (diffusers' timesteps[i], as float). */
float sdc_sampler_timestep(const sdc_sampler *s, int i);
/* Factor on x before the UNet: 1/sqrt(sigma^2 + 1) for the sigma-based
 * samplers (Euler, Euler a, LMS, Heun), 1 for DDIM, PLMS and DPM++. */
float sdc_sampler_input_scale(const sdc_sampler *s, int i);
/* sigma at iteration i (0 for the samplers that do not use sigmas). */
float sdc_sampler_sigma(const sdc_sampler *s, int i);
/* Scale of the initial noise (scheduler.init_noise_sigma). */
float sdc_sampler_init_noise_sigma(const sdc_sampler *s);

/* One scheduler.step: eps[n] is the model output at iteration i (epsilon),
 * x[n] is updated in place. Iterations must be stepped in order 0, 1, ...
 * rng is used by DDIM with eta > 0 and Euler a (one randn of n per step); it
 * may be NULL otherwise. */
sdc_status sdc_sampler_step(sdc_sampler *s, int i, const float *eps, float *x, sdc_rng *rng,
                            sdc_err *err);

/* The same with one generator per batch row (x holds n_rngs equal rows):
 * each row's noise comes from its own generator, as diffusers does with a
 * list of generators, so a row's result does not depend on its batch. */
sdc_status sdc_sampler_step_rows(sdc_sampler *s, int i, const float *eps, float *x, sdc_rng *rngs,
                                 int n_rngs, sdc_err *err);

/* img2img, as StableDiffusionImg2ImgPipeline: init = min(int(steps*strength),
 * steps), t_start = max(steps - init, 0), iterations start at t_start * order
 * (order 2 for Heun). Resets the multistep state. strength in [0, 1]. */
sdc_status sdc_sampler_set_strength(sdc_sampler *s, float strength, sdc_err *err);
/* scheduler.add_noise(x0, noise, first remaining timestep) into xt (all [n]).
 * Without remaining iterations xt = x0. */
void sdc_sampler_add_noise(const sdc_sampler *s, const float *x0, const float *noise, float *xt,
                           size_t n);

#endif
