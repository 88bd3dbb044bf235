/* schedule.h — SD 1.x noise schedules as plain arrays, matching diffusers 0.31:
 * alphas_cumprod of the scaled_linear betas, inference timesteps for a spacing,
 * sigma tables (interpolated or Karras). No sampler state lives here.
 *
 *     float ac[SDC_TRAIN_STEPS];
 *     sdc_schedule_alphas_cumprod(ac);
 *     double t[50], sig[50];
 *     int n = sdc_schedule_timesteps(SDC_TS_FLOAT, SDC_SPACING_LINSPACE, 50, t, 50);
 *     sdc_schedule_sigmas_at(ac, t, n, sig);
 */
#ifndef SDC_PIPELINE_SCHEDULE_H
#define SDC_PIPELINE_SCHEDULE_H

#include <stddef.h>

#define SDC_TRAIN_STEPS 1000 /* num_train_timesteps of SD 1.x */
#define SDC_STEPS_OFFSET 1   /* steps_offset of SD 1.x's scheduler config */

typedef enum sdc_spacing {
    SDC_SPACING_DEFAULT = 0, /* the scheduler's own default (see sdc_sampler_opts) */
    SDC_SPACING_LEADING,
    SDC_SPACING_LINSPACE,
    SDC_SPACING_TRAILING,
} sdc_spacing;

/* How a diffusers scheduler family lays out its timesteps. */
typedef enum sdc_ts_family {
    SDC_TS_DDIM,   /* DDIMScheduler: int, descending */
    SDC_TS_PNDM,   /* PNDMScheduler's _timesteps: int, ascending (before the PLMS reorder) */
    SDC_TS_FLOAT,  /* Euler, Euler a, LMS, Heun: float32, descending */
    SDC_TS_DPM,    /* DPMSolverMultistep: steps+1 grid with the last dropped, int, descending */
} sdc_ts_family;

/* alphas_cumprod[1000] in float32 as torch computes it for scaled_linear
 * betas 0.00085 -> 0.012: linspace of sqrt(beta) in float32 (torch's scalar
 * kernel; its AVX2/AVX-512 kernel rounds a few entries an ulp differently),
 * squared, 1 - beta, cumulative product accumulated in double as torch does. */
void sdc_schedule_alphas_cumprod(float ac[SDC_TRAIN_STEPS]);

/* Writes the timesteps (as doubles holding the exact values diffusers keeps)
 * into t[0..cap) and returns their count (which numpy's arange can make
 * steps + 1 for trailing spacing), or -1 if cap is too small. spacing must not
 * be DEFAULT. */
int sdc_schedule_timesteps(sdc_ts_family fam, sdc_spacing spacing, int steps, double *t, int cap);

/* sigma(t) = sqrt((1 - ac) / ac) at fractional timesteps t[0..n): np.interp
 * over the float32 sigma table. */
void sdc_schedule_sigmas_at(const float ac[SDC_TRAIN_STEPS], const double *t, int n, double *sig);

/* Karras et al. (2022) sigmas from the table's max to its min in n steps
 * (rho = 7), and their fractional timesteps (diffusers' _sigma_to_t). */
void sdc_schedule_karras(const float ac[SDC_TRAIN_STEPS], int n, double *sig, double *t);

#endif
