/* schedule.h — noise schedules as plain arrays, matching diffusers 0.31 to
 * 0.42: alphas_cumprod of a beta schedule, inference timesteps for a spacing,
 * sigma tables (interpolated or Karras). No sampler state lives here.
 *
 *     float ac[SDC_TRAIN_STEPS];
 *     sdc_schedule_alphas_cumprod(ac);                    // SD 1.x's betas
 *     double t[50], sig[50];
 *     int n = sdc_schedule_timesteps(SDC_TS_FLOAT, SDC_SPACING_LINSPACE, 50, t, 50);
 *     sdc_schedule_sigmas_at(ac, t, n, sig);
 *
 * The *_n forms take any num_train_timesteps N and steps_offset, for the
 * schedules a scheduler_config.json describes (sched_config.h). */
#ifndef SDC_PIPELINE_SCHEDULE_H
#define SDC_PIPELINE_SCHEDULE_H

#include <stddef.h>

#include "sched_config.h"

#define SDC_TRAIN_STEPS 1000 /* num_train_timesteps of SD 1.x */
#define SDC_STEPS_OFFSET 1   /* steps_offset of SD 1.x's scheduler config */

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
/* The same for c's beta schedule (linear, scaled_linear, squaredcos_cap_v2 or
 * trained betas, then rescale_betas_zero_snr): ac[c->train_steps]. */
void sdc_schedule_alphas_cumprod_cfg(const sdc_sched_config *c, float *ac);

/* Writes the timesteps (as doubles holding the exact values diffusers keeps)
 * into t[0..cap) and returns their count (which numpy's arange can make
 * steps + 1 for trailing spacing), or -1 if cap is too small. spacing must not
 * be DEFAULT. SD 1.x's N = 1000 and steps_offset 1. */
int sdc_schedule_timesteps(sdc_ts_family fam, sdc_spacing spacing, int steps, double *t, int cap);
/* The same for N training steps and a steps_offset; last is DPMSolver's
 * last_timestep (N minus the lambda_min_clipped cut), N for the others. */
int sdc_schedule_timesteps_n(sdc_ts_family fam, sdc_spacing spacing, int steps, int N, int offset,
                             int last, double *t, int cap);

/* sigma(t) = sqrt((1 - ac) / ac) at fractional timesteps t[0..n): np.interp
 * over the float32 sigma table (1000 entries; _n: N entries). */
void sdc_schedule_sigmas_at(const float ac[SDC_TRAIN_STEPS], const double *t, int n, double *sig);
void sdc_schedule_sigmas_at_n(const float *ac, int N, const double *t, int n, double *sig);

/* Karras et al. (2022) sigmas from the table's max to its min in n steps
 * (rho = 7), and their fractional timesteps rounded (DPMSolver's). */
void sdc_schedule_karras(const float ac[SDC_TRAIN_STEPS], int n, double *sig, double *t);
/* Karras sigmas from smax down to smin in n steps (rho = 7). */
void sdc_schedule_karras_range(double smin, double smax, int n, double *sig);
/* diffusers' _sigma_to_t: the fractional timestep of each sigma among the
 * N-entry table's log sigmas (unrounded). */
void sdc_schedule_sigma_to_t(const float *ac, int N, const double *sig, int n, double *t);
/* The float32 table entry sqrt((1 - ac[i]) / ac[i]). */
float sdc_schedule_sigma_table(const float *ac, int i);

#endif
