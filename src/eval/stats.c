/* stats.c — seeded sampling, mean/std and cosine summaries (see stats.h). */
#include "stats.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

eval_rng eval_rng_seed(uint64_t seed, uint64_t stream) {
    eval_rng r = {seed ^ (stream * 0xD1B54A32D192ED03ULL)};
    eval_rng_next(&r);
    return r;
}

uint64_t eval_rng_next(eval_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t eval_rng_below(eval_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the short last bucket */
    for (;;) {
        uint64_t v = eval_rng_next(r);
        if (v < limit) return v % n;
    }
}

void eval_rng_sample(eval_rng *r, int64_t n, int64_t k, int64_t *perm, int64_t *idx) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)eval_rng_below(r, (uint64_t)(n - i));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        idx[i] = perm[i];
    }
}

void eval_mean_std(const double *v, int n, double *mean, double *std) {
    double m = 0, s = 0;
    for (int i = 0; i < n; i++) m += v[i];
    m = n ? m / n : NAN;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(s / (n - 1)) : 0;
}

double eval_mean_pairwise_cos(const float *x, int64_t n, int d) {
    if (n < 2) return NAN;
    double *sum = calloc((size_t)d, sizeof *sum), self = 0;
    if (!sum) return NAN;
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < d; i++) {
            double v = x[(size_t)r * d + i];
            sum[i] += v;
            self += v * v;
        }
    double tot = 0;
    for (int i = 0; i < d; i++) tot += sum[i] * sum[i];
    free(sum);
    return (tot - self) / ((double)n * (double)(n - 1));
}

sdc_status eval_nearest_cos(const float *q, int64_t nq, const float *ref, int64_t nr, int d,
                            float *best, sdc_err *err) {
    for (int64_t i = 0; i < nq; i++) best[i] = -2.0f;
    if (!nq || !nr) return SDC_OK;
    int64_t bq = 1024, br = 4096;
    float *s = malloc(sizeof *s * (size_t)bq * br);
    if (!s) return sdc_err_set(err, SDC_ERR_OOM, "out of memory (nearest neighbours)");
    for (int64_t i0 = 0; i0 < nq; i0 += bq) {
        int64_t ni = nq - i0 < bq ? nq - i0 : bq;
        for (int64_t j0 = 0; j0 < nr; j0 += br) {
            int64_t nj = nr - j0 < br ? nr - j0 : br;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj, d, 1.0f, q + (size_t)i0 * d, d,
                        ref + (size_t)j0 * d, d, 0.0f, s, (int)nj);
            for (int64_t i = 0; i < ni; i++)
                for (int64_t j = 0; j < nj; j++)
                    if (s[i * nj + j] > best[i0 + i]) best[i0 + i] = s[i * nj + j];
        }
    }
    free(s);
    return SDC_OK;
}
