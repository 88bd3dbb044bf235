/* sampler.h — diffusers' SD 1.x schedulers as samplers on plain float arrays:
 * a schedule (timesteps, sigmas), the denoiser's input scaling, and a step
 * with whatever multistep state the method needs. Each is configured from a
 * scheduler_config.json as diffusers' from_config does (sched_config.h):
 * epsilon, v or sample prediction, any beta schedule and spacing.
 *
 *     sdc_sampler_opts o = {.steps = 20};
 *     sdc_sampler_from_name("DPM++ 2M Karras", &o);       // or "dpmpp_2m_karras"
 *     o.config = sched_file;                              // NULL: SD 1.x's
 *     sdc_sampler *s = sdc_sampler_create(&o, n, &err);   // n = elements of x
 *     sdc_rng_randn(&rng, x, n);
 *     for (size_t k = 0; k < n; k++) x[k] *= sdc_sampler_init_noise_sigma(s);
 *     for (int i = 0; i < sdc_sampler_iterations(s); i++) {
 *         float t = sdc_sampler_timestep(s, i);
 *         for (size_t k = 0; k < n; k++) x_in[k] = x[k] * sdc_sampler_input_scale(s, i);
 *         unet(x_in, t, out);                              // the model's prediction
 *         if (sdc_sampler_step(s, i, out, x, &rng, &err)) ...
 *     }
 *     sdc_sampler_free(s);
 *
 * This is exactly diffusers' pipeline loop (the CFG combination happens in the
 * prediction before the step). img2img: sdc_sampler_set_strength, then
 * sdc_sampler_add_noise on the encoded latents, then the same loop over the
 * remaining iterations.
 */
#ifndef SDC_PIPELINE_SAMPLER_H
#define SDC_PIPELINE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>

#include "rng.h"
#include "schedule.h"
#include "sdc.h"

/* use_karras_sigmas: from the config, or forced by the sampler's name. */
enum { SDC_KARRAS_CONFIG = 0, SDC_KARRAS_ON = 1, SDC_KARRAS_OFF = 2 };

typedef struct sdc_sampler_opts {
    sdc_sampler_kind kind;
    int steps;                    /* num_inference_steps, 1..num_train_timesteps */
    float eta;                    /* DDIM only: 0 deterministic, 1 DDPM-like; >= 0 */
    int karras;                   /* SDC_KARRAS_*: Euler, DPM++, LMS, Heun */
    sdc_dpm_algorithm algorithm;  /* DPM++ only; DEFAULT: the config's */
    sdc_spacing spacing;          /* DEFAULT: the config's (else the class default) */
    sdc_prediction prediction;    /* DEFAULT: the config's prediction_type */
    sdc_final_sigma final_sigma;  /* Euler, DPM++; DEFAULT: the config's */
    const sdc_sched_file *config; /* scheduler_config.json; NULL: SD 1.5's */
} sdc_sampler_opts;

typedef struct sdc_sampler sdc_sampler;

/* Sampler names, case-insensitive, spaces and hyphens read as '_' and "++"
 * as "pp": sdc's ("ddim", "pndm", "euler", "euler_a", "dpmpp_2m",
 * "dpmpp_2m_karras", "dpmpp_2m_sde", "dpmpp_2m_sde_karras", "lms",
 * "lms_karras", "heun", "euler_karras", "heun_karras"), A1111's ("Euler a",
 * "DPM++ 2M Karras", "PLMS", "LMS Karras", ...) and stable-diffusion.cpp's
 * ("euler_a", "dpm++2m", "ddim_trailing", ...). Sets kind and what the name
 * implies (karras, the DPM algorithm, a spacing); false for an unknown name. */
bool sdc_sampler_from_name(const char *name, sdc_sampler_opts *o);
/* The sampler a model runs when none is named: its scheduler config's class
 * with that config's settings (f NULL: SD 1.5's PNDM, i.e. PLMS). Sets kind
 * and config, leaving the overrides at DEFAULT. False when f names a class
 * sdc does not run: o is then PNDM on f's settings. */
bool sdc_sampler_default(const sdc_sched_file *f, sdc_sampler_opts *o);
/* The valid names, comma separated, for error messages. */
const char *sdc_sampler_names(void);
/* The base name of a kind ("ddim", "pndm", ...). */
const char *sdc_sampler_name(sdc_sampler_kind kind);

/* The configuration a sampler with these options runs: o->config resolved
 * for o->kind (sdc_sched_resolve), then o's overrides. */
sdc_status sdc_sampler_resolve(const sdc_sampler_opts *o, sdc_sched_config *c, sdc_err *err);
/* sdc's canonical name ("dpmpp_2m_sde_karras") and A1111's ("DPM++ 2M SDE
 * Karras", with *schedule "Karras" when A1111 names the schedule separately,
 * as for "Euler" + Karras; else NULL) of a resolved sampler. */
const char *sdc_sampler_canonical(sdc_sampler_kind kind, const sdc_sched_config *c);
const char *sdc_sampler_a1111(sdc_sampler_kind kind, const sdc_sched_config *c,
                              const char **schedule);

/* n: elements of the latent x (all images of the batch together). Invalid
 * options are SDC_ERR_ARG naming the option; a bad config as in
 * sdc_sched_resolve. */
sdc_sampler *sdc_sampler_create(const sdc_sampler_opts *o, size_t n, sdc_err *err);
void sdc_sampler_free(sdc_sampler *s);
/* The resolved configuration a sampler runs. */
const sdc_sched_config *sdc_sampler_config(const sdc_sampler *s);

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

/* One scheduler.step: out[n] is the model output at iteration i (epsilon, v
 * or x0 as the config's prediction_type says), x[n] is updated in place.
 * Iterations must be stepped in order 0, 1, ... rng is used by DDIM with
 * eta > 0, Euler a and DPM++ 2M SDE (one randn of n per step); it may be NULL
 * otherwise. */
sdc_status sdc_sampler_step(sdc_sampler *s, int i, const float *out, float *x, sdc_rng *rng,
                            sdc_err *err);

/* The same with one generator per batch row (x holds n_rngs equal rows):
 * each row's noise comes from its own generator, as diffusers does with a
 * list of generators, so a row's result does not depend on its batch. */
sdc_status sdc_sampler_step_rows(sdc_sampler *s, int i, const float *out, float *x, sdc_rng *rngs,
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
