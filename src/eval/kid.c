/* kid.c — the kernel distance of two feature sets (see dist.h). */
#include "dist.h"
#include "stats.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

/* Sum of (g / d + 1)³ over the entries of a Gram block, skipping the
 * diagonal when the block is a set against itself. In double: MMD² is a
 * small difference of three sums of values near 1. */
static double kernel_sum(const double *x, const double *y, int64_t m, int d, int same, double *g) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, d, 1.0, x, d, y, d, 0.0, g, (int)m);
    double s = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) {
            if (same && i == j) continue;
            double k = g[i * m + j] / d + 1.0;
            s += k * k * k;
        }
    return s;
}

double kid_mmd2(const float *af, const float *bf, int64_t m, int d) {
    double *g = malloc(sizeof *g * (size_t)m * m), *a = malloc(sizeof *a * (size_t)m * d);
    double *b = malloc(sizeof *b * (size_t)m * d);
    if (!g || !a || !b || m < 2) {
        free(g), free(a), free(b);
        return NAN;
    }
    for (size_t i = 0; i < (size_t)m * d; i++) a[i] = af[i], b[i] = bf[i];
    double kaa = kernel_sum(a, a, m, d, 1, g), kbb = kernel_sum(b, b, m, d, 1, g);
    double kab = kernel_sum(a, b, m, d, 0, g);
    free(g), free(a), free(b);
    double mm = (double)m;
    return (kaa + kbb) / (mm * (mm - 1)) - 2 * kab / (mm * mm);
}

sdc_status kid_subset(uint64_t seed, int s, int64_t na, int64_t nb, int64_t m, int64_t *idx_a,
                      int64_t *idx_b, sdc_err *err) {
    int64_t *perm = malloc(sizeof *perm * (size_t)(na > nb ? na : nb));
    if (!perm) return sdc_err_set(err, SDC_ERR_OOM, "KID: out of memory");
    eval_rng r = eval_rng_seed(seed, (uint64_t)s);
    eval_rng_sample(&r, na, m, perm, idx_a);
    eval_rng_sample(&r, nb, m, perm, idx_b);
    free(perm);
    return SDC_OK;
}

sdc_status kid_compute(const float *a, int64_t na, const float *b, int64_t nb, int d,
                       const kid_opts *o, kid_result *r, double *per_subset, sdc_err *err) {
    int64_t m = o->subset_size;
    if (m > na) m = na;
    if (m > nb) m = nb;
    if (m < 2 || o->subsets < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "KID needs subsets of 2 or more rows from each set (sets of "
                           "%lld and %lld rows, subset size %d)", (long long)na, (long long)nb, o->subset_size);
    *r = (kid_result){.subsets = o->subsets, .subset_size = (int)m};
    int64_t *ia = malloc(sizeof *ia * (size_t)m), *ib = malloc(sizeof *ib * (size_t)m);
    float *xa = malloc(sizeof *xa * (size_t)m * d), *xb = malloc(sizeof *xb * (size_t)m * d);
    double *v = malloc(sizeof *v * (size_t)o->subsets);
    sdc_status s = SDC_OK;
    if (!ia || !ib || !xa || !xb || !v) s = sdc_err_set(err, SDC_ERR_OOM, "KID: out of memory");
    for (int k = 0; !s && k < o->subsets; k++) {
        if ((s = kid_subset(o->seed, k, na, nb, m, ia, ib, err))) break;
        for (int64_t i = 0; i < m; i++)
            for (int j = 0; j < d; j++) {
                xa[i * d + j] = a[(size_t)ia[i] * d + j];
                xb[i * d + j] = b[(size_t)ib[i] * d + j];
            }
        v[k] = kid_mmd2(xa, xb, m, d);
        if (!isfinite(v[k])) s = sdc_err_set(err, SDC_ERR_NUMERIC, "KID: subset %d is not finite", k);
        else if (per_subset) per_subset[k] = v[k];
    }
    if (!s) eval_mean_std(v, o->subsets, &r->mean, &r->std);
    free(ia), free(ib), free(xa), free(xb), free(v);
    return s;
}
