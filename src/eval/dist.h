/* dist.h — distances between a real and a synthetic feature set (CLIP image
 * embeddings): the Fréchet distance of Gaussian fits (FID, computed on CLIP
 * features instead of Inception's) and the kernel distance (KID: unbiased
 * MMD² with the cubic polynomial kernel, mean and std over random subsets,
 * as Bińkowski et al. define it and torch-fidelity computes it).
 *
 *     double fid;
 *     if (fid_compute(real, n_real, fake, n_fake, 768, &fid, &err)) ...
 *     kid_opts ko = {.subsets = 100, .subset_size = 1000, .seed = 0};
 *     kid_result kr;
 *     if (kid_compute(real, n_real, fake, n_fake, 768, &ko, &kr, NULL, &err)) ...
 *
 * FID = |mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2), with
 * sample covariances (n - 1), all in double. tr((S_a S_b)^1/2) is the sum of
 * the square roots of the eigenvalues of the symmetric PSD S_a^1/2 S_b S_a^1/2
 * (symeig.h; no general matrix square root, no complex parts). When a set
 * has fewer rows than dimensions (per-class FID), the same trace comes from
 * a small matrix: with A, B the centred rows, the nonzero eigenvalues of
 * S_a S_b are those of (A Bᵀ)(B Aᵀ) / ((n_a - 1)(n_b - 1)), an n x n problem.
 * Small sets make FID biased upwards; compare sets of similar sizes. */
#ifndef SDC_EVAL_DIST_H
#define SDC_EVAL_DIST_H

#include "sdc.h"

#include <stdint.h>

/* Mean and covariance of a feature set, reusable across comparisons. */
typedef struct feat_stats {
    int d;
    int64_t n;
    double *mu;      /* [d] */
    double *cov;     /* [d, d] (n - 1 in the denominator) */
} feat_stats;

/* x: [n, d], n >= 2. */
sdc_status feat_stats_compute(const float *x, int64_t n, int d, feat_stats *s, sdc_err *err);
void feat_stats_free(feat_stats *s);

/* FID from two fits (d x d eigenproblems). */
sdc_status fid_from_stats(const feat_stats *a, const feat_stats *b, double *fid, sdc_err *err);
/* FID of two sets, n >= 2 each; takes the small-matrix route when a set has
 * fewer rows than d. */
sdc_status fid_compute(const float *a, int64_t na, const float *b, int64_t nb, int d, double *fid,
                       sdc_err *err);
/* The small-matrix route alone (for tests; any sizes >= 2). */
sdc_status fid_compute_gram(const float *a, int64_t na, const float *b, int64_t nb, int d,
                            double *fid, sdc_err *err);

typedef struct kid_opts {
    int subsets;        /* random subset pairs (torch-fidelity: 100) */
    int subset_size;    /* rows drawn from each set, without replacement (torch-fidelity: 1000);
                           capped at the smaller set; >= 2 */
    uint64_t seed;
} kid_opts;

typedef struct kid_result {
    double mean, std;   /* over subsets (std with n - 1; 0 for one subset) */
    int subsets, subset_size;
} kid_result;

/* The unbiased MMD² of a [m, d] and b [m, d] with k(x, y) = (x·y / d + 1)³. */
double kid_mmd2(const float *a, const float *b, int64_t m, int d);
/* Rows of subset s (of each set) as kid_compute draws them: idx_a[m], idx_b[m]. */
sdc_status kid_subset(uint64_t seed, int s, int64_t na, int64_t nb, int64_t m, int64_t *idx_a,
                      int64_t *idx_b, sdc_err *err);
/* KID; per_subset (may be NULL) gets each subset's MMD² [o->subsets]. */
sdc_status kid_compute(const float *a, int64_t na, const float *b, int64_t nb, int d,
                       const kid_opts *o, kid_result *r, double *per_subset, sdc_err *err);

#endif
