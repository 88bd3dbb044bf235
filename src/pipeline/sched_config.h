/* sched_config.h — a diffusers scheduler_config.json, resolved for one sdc
 * sampler exactly as diffusers resolves it, into a plain struct the schedule
 * and the sampler steps read.
 *
 *     sdc_sched_file *f = NULL;
 *     sdc_sched_file_for_model("models/my-sd15", &f, &err);   // NULL f: none
 *     sdc_sched_config c;
 *     if (sdc_sched_resolve(SDC_SAMPLER_EULER, f, &c, &err)) ...  // f NULL: SD 1.x's
 *     sdc_sched_file_free(f);
 *
 * The rule (diffusers 0.31 to 0.42, configuration_utils.extract_init_dict):
 * StableDiffusionPipeline.from_pretrained loads the folder's own class F and
 * sets steps_offset to 1 and clip_sample to false where they are not; then
 * `X.from_config(pipe.scheduler.config)` takes each of X's parameters from
 * the file when the file names it (with those two fixes applied), and X's own
 * class default otherwise (values F only filled in by default do not carry
 * over). sdc runs the folder's own class as the pipeline loaded it and every
 * other sampler as X.from_config does. A single-file checkpoint has no
 * config: it gets SD 1.5's scheduler_config.json (the PNDM file below). */
#ifndef SDC_PIPELINE_SCHED_CONFIG_H
#define SDC_PIPELINE_SCHED_CONFIG_H

#include <stdbool.h>

#include "sdc.h"

typedef enum sdc_sampler_kind {
    SDC_SAMPLER_DDIM = 0,  /* DDIMScheduler (eta; default spacing leading) */
    SDC_SAMPLER_PNDM,      /* PNDMScheduler: PLMS (skip_prk_steps) or PRK + PLMS */
    SDC_SAMPLER_EULER,     /* EulerDiscreteScheduler (linspace) */
    SDC_SAMPLER_EULER_A,   /* EulerAncestralDiscreteScheduler (linspace) */
    SDC_SAMPLER_DPMPP_2M,  /* DPMSolverMultistepScheduler (linspace; karras, SDE) */
    SDC_SAMPLER_LMS,       /* LMSDiscreteScheduler, order 4 (linspace) */
    SDC_SAMPLER_HEUN,      /* HeunDiscreteScheduler (linspace; 2 evaluations per step) */
    SDC_SAMPLER_COUNT
} sdc_sampler_kind;

typedef enum sdc_spacing {
    SDC_SPACING_DEFAULT = 0, /* the config's (else the class default) */
    SDC_SPACING_LEADING,
    SDC_SPACING_LINSPACE,
    SDC_SPACING_TRAILING,
} sdc_spacing;

typedef enum sdc_prediction {
    SDC_PRED_DEFAULT = 0,    /* the config's prediction_type */
    SDC_PRED_EPSILON,
    SDC_PRED_V,              /* v_prediction */
    SDC_PRED_SAMPLE,         /* sample (x0) */
} sdc_prediction;

typedef enum sdc_final_sigma {
    SDC_FINAL_SIGMA_DEFAULT = 0, /* the config's final_sigmas_type */
    SDC_FINAL_SIGMA_ZERO,        /* diffusers >= 0.26's default */
    SDC_FINAL_SIGMA_MIN,         /* "sigma_min": diffusers <= 0.25's DPM++ behaviour */
} sdc_final_sigma;

typedef enum sdc_dpm_algorithm {
    SDC_DPM_DEFAULT = 0,     /* the config's algorithm_type */
    SDC_DPM_PLUSPLUS,        /* dpmsolver++ (DPM++ 2M) */
    SDC_DPM_SDE_PLUSPLUS,    /* sde-dpmsolver++ (DPM++ 2M SDE): noise every step */
    SDC_DPM_PLAIN,           /* dpmsolver (noise prediction form) */
} sdc_dpm_algorithm;

typedef enum sdc_beta_schedule {
    SDC_BETAS_LINEAR = 0,
    SDC_BETAS_SCALED_LINEAR,
    SDC_BETAS_SQUAREDCOS_CAP_V2,
    SDC_BETAS_TRAINED,
} sdc_beta_schedule;

/* Everything one sampler's schedule and step read, fully resolved. */
typedef struct sdc_sched_config {
    int train_steps;               /* num_train_timesteps */
    sdc_beta_schedule betas;
    double beta_start, beta_end;
    const float *trained_betas;    /* [train_steps] (TRAINED; owned by the file) */
    bool rescale_zero_snr;         /* rescale_betas_zero_snr */
    sdc_prediction prediction;     /* never DEFAULT here */
    sdc_spacing spacing;           /* never DEFAULT here */
    int steps_offset;
    bool set_alpha_to_one;         /* DDIM, PNDM: final alpha 1 instead of alphas_cumprod[0] */
    bool clip_sample;              /* DDIM, Heun: clamp x0 to +-clip_sample_range */
    double clip_sample_range;
    bool skip_prk_steps;           /* PNDM */
    bool karras;                   /* use_karras_sigmas (Euler, DPM, LMS, Heun) */
    double sigma_min, sigma_max;   /* karras range; NAN: the schedule's own ends */
    bool continuous_timesteps;     /* Euler: timestep_type continuous with v_prediction */
    sdc_final_sigma final_sigma;   /* Euler, DPM: never DEFAULT here */
    int solver_order;              /* DPM: 1 or 2 */
    sdc_dpm_algorithm algorithm;   /* DPM: never DEFAULT here */
    bool solver_heun;              /* DPM: solver_type heun (else midpoint) */
    bool lower_order_final, euler_at_final;
    double lambda_min_clipped;     /* DPM: -INFINITY when unset */
} sdc_sched_config;

typedef struct sdc_sched_file sdc_sched_file;

/* Reads and parses a scheduler_config.json (at most 1 MiB). */
sdc_sched_file *sdc_sched_file_load(const char *path, sdc_err *err);
/* The same from a JSON text; label names it in messages. */
sdc_sched_file *sdc_sched_file_parse(const char *json, const char *label, sdc_err *err);
/* MODEL/scheduler/scheduler_config.json when MODEL is a folder holding one;
 * *out NULL otherwise (a single file, or a folder without a scheduler). */
sdc_status sdc_sched_file_for_model(const char *model, sdc_sched_file **out, sdc_err *err);
void sdc_sched_file_free(sdc_sched_file *f);
/* Its path or label, and its _class_name ("" when absent). */
const char *sdc_sched_file_label(const sdc_sched_file *f);
const char *sdc_sched_file_class(const sdc_sched_file *f);
/* The sampler kind of the file's class; false for a class sdc does not run. */
bool sdc_sched_file_kind(const sdc_sched_file *f, sdc_sampler_kind *kind);

/* Resolves kind's parameters from f (NULL: SD 1.5's scheduler_config.json).
 * A mistyped value is SDC_ERR_FORMAT, a value sdc does not implement
 * (thresholding, solver_order 3, ...) SDC_ERR_UNSUPPORTED, each naming the
 * file and the key; keys kind's class does not read are ignored, as diffusers
 * ignores them. */
sdc_status sdc_sched_resolve(sdc_sampler_kind kind, const sdc_sched_file *f, sdc_sched_config *out,
                             sdc_err *err);

/* diffusers' class name of a kind ("DDIMScheduler", ...). */
const char *sdc_sched_class_name(sdc_sampler_kind kind);
const char *sdc_prediction_name(sdc_prediction p);  /* "epsilon", "v_prediction", "sample" */
const char *sdc_spacing_name(sdc_spacing s);        /* "leading", "linspace", "trailing" */

#endif
