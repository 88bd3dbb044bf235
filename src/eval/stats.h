/* stats.h — small statistics shared by the evaluation commands: a seeded
 * generator for splits and subsets (the same numbers on every machine),
 * mean and sample standard deviation, and cosine-similarity summaries of
 * L2-normalized feature sets (diversity, nearest neighbours). */
#ifndef SDC_EVAL_STATS_H
#define SDC_EVAL_STATS_H

#include "sdc.h"

#include <stdint.h>

/* splitmix64: a tiny, well-mixed 64-bit generator. */
typedef struct eval_rng {
    uint64_t state;
} eval_rng;

eval_rng eval_rng_seed(uint64_t seed, uint64_t stream);
uint64_t eval_rng_next(eval_rng *r);
/* Uniform in [0, n) without modulo bias (n >= 1). */
uint64_t eval_rng_below(eval_rng *r, uint64_t n);
/* idx[0..k) = k distinct indices drawn uniformly from [0, n) (partial
 * Fisher-Yates over perm[n], which the caller provides as scratch). */
void eval_rng_sample(eval_rng *r, int64_t n, int64_t k, int64_t *perm, int64_t *idx);

/* Mean and sample standard deviation (n - 1; 0 for n < 2) of v[n]. */
void eval_mean_std(const double *v, int n, double *mean, double *std);

/* Mean cosine similarity over all unordered pairs of the n rows of x
 * [n, d] (L2-normalized rows): 1 - diversity. NaN for n < 2. Exact, from
 * the sum of the rows: sum_{i<j} x_i·x_j = (|sum x|² - sum |x_i|²) / 2. */
double eval_mean_pairwise_cos(const float *x, int64_t n, int d);

/* For each row of q [nq, d], the largest cosine to any row of ref [nr, d]
 * (both L2-normalized) into best[nq] (-2 when nr = 0); sgemm in blocks. */
sdc_status eval_nearest_cos(const float *q, int64_t nq, const float *ref, int64_t nr, int d,
                            float *best, sdc_err *err);

#endif
