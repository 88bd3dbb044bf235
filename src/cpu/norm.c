/* norm.c — CPU group_norm (optionally fused with SiLU) and layer_norm.
 * Statistics are two-pass in double (mean, then squared deviations), so a
 * large mean next to a small spread costs no accuracy; output is AVX2, or
 * AVX-512 (norm_avx512.c, the same bits) on that path (cpu_isa.h). */
#include "cpu_avx512.h"
#include "cpu_isa.h"
#include "cpu_ops.h"
#include "vmath.h"

#include <math.h>

/* Mean and biased variance of x[0, n), n >= 1. The second pass also sums the
 * deviations, which corrects the mean's last rounding (Chan et al.). */
void sdc_cpu_norm_stats(const float *x, int64_t n, double *mean_out, double *var_out) {
    if (sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512) {
        sdc_cpu_norm_stats_avx512(x, n, mean_out, var_out);
        return;
    }
    double sum = 0.0;
    int64_t i = 0;
#ifdef __AVX2__
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
        s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm256_castps256_ps128(b)));
        s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
    }
    sum = sdc_v_hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
#endif
    for (; i < n; i++) sum += x[i];
    double mean = sum / (double)n, dev = 0.0, sq = 0.0;
    i = 0;
#ifdef __AVX2__
    __m256d m = _mm256_set1_pd(mean);
    __m256d d0 = _mm256_setzero_pd(), d1 = d0, q0 = d0, q1 = d0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        __m256d lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), m);
        __m256d hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), m);
        d0 = _mm256_add_pd(d0, lo);
        d1 = _mm256_add_pd(d1, hi);
        q0 = _mm256_fmadd_pd(lo, lo, q0);
        q1 = _mm256_fmadd_pd(hi, hi, q1);
    }
    dev = sdc_v_hsum_pd(_mm256_add_pd(d0, d1));
    sq = sdc_v_hsum_pd(_mm256_add_pd(q0, q1));
#endif
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        dev += d;
        sq += d * d;
    }
    double var = (sq - dev * dev / (double)n) / (double)n;
    *mean_out = mean + dev / (double)n;
    *var_out = var > 0.0 ? var : 0.0;
}

#ifdef __AVX2__
static inline __m256 gn_vec(__m256 v, __m256 mhi, __m256 mlo, __m256 scale, __m256 shift,
                            bool silu) {
    v = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_sub_ps(v, mhi), mlo), scale, shift);
    return silu ? sdc_v_silu(v) : v;
}
#endif

/* y[i] = ((x[i] - mhi) - mlo)·scale + shift, then SiLU if asked. The mean is
 * carried as two floats (mhi + mlo) so that x - mean keeps full precision
 * when the mean is large; folding it into `shift` would cancel. */
static void apply_const(const float *x, float *y, int64_t n, float mhi, float mlo, float scale,
                        float shift, bool silu) {
    if (sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512) {
        sdc_cpu_norm_apply_const_avx512(x, y, n, mhi, mlo, scale, shift, silu);
        return;
    }
    int64_t i = 0;
#ifdef __AVX2__
    __m256 vh = _mm256_set1_ps(mhi), vl = _mm256_set1_ps(mlo);
    __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(shift);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, gn_vec(v, vh, vl, vs, vb, silu));
    }
    if (i < n) { /* masked tail: same arithmetic as the body */
        __m256i mask = sdc_v_tail_mask(n - i);
        __m256 v = _mm256_maskload_ps(x + i, mask);
        _mm256_maskstore_ps(y + i, mask, gn_vec(v, vh, vl, vs, vb, silu));
    }
#else
    for (; i < n; i++) {
        float v = ((x[i] - mhi) - mlo) * scale + shift; /* no fmaf: slow without FMA */
        y[i] = silu ? sdc_s_silu(v) : v;
    }
#endif
}

/* Layer norm's row: y[c] = ((x[c] - mean)·rstd)·gamma[c] + beta[c]. */
static void apply_vec(const float *x, float *y, int64_t n, float mhi, float mlo, float rstd,
                      const float *gamma, const float *beta) {
    if (sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512) {
        sdc_cpu_norm_apply_vec_avx512(x, y, n, mhi, mlo, rstd, gamma, beta);
        return;
    }
    int64_t i = 0;
#ifdef __AVX2__
    __m256 vh = _mm256_set1_ps(mhi), vl = _mm256_set1_ps(mlo), vr = _mm256_set1_ps(rstd);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vh), vl);
        v = _mm256_fmadd_ps(_mm256_mul_ps(v, vr), _mm256_loadu_ps(gamma + i),
                            _mm256_loadu_ps(beta + i));
        _mm256_storeu_ps(y + i, v);
    }
    if (i < n) { /* masked tail (masked stores are slow on AMD: tail only) */
        __m256i m = sdc_v_tail_mask(n - i);
        __m256 v = _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vh), vl);
        v = _mm256_fmadd_ps(_mm256_mul_ps(v, vr), _mm256_maskload_ps(gamma + i, m),
                            _mm256_maskload_ps(beta + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
#else
    for (; i < n; i++) y[i] = ((x[i] - mhi) - mlo) * rstd * gamma[i] + beta[i];
#endif
}

static void split_mean(double mean, float *hi, float *lo) {
    *hi = (float)mean;
    *lo = (float)(mean - (double)*hi);
}

typedef struct norm_ctx {
    const float *x;     /* group_norm [N, C, S...]; layer_norm [R, C] */
    float *y;           /* like x */
    const float *gamma; /* [C] */
    const float *beta;  /* [C] */
    int64_t c;          /* channels */
    int64_t inner;      /* group_norm: spatial size S; layer_norm: unused */
    int64_t cg;         /* group_norm: channels per group */
    int groups;
    double eps;
    bool silu;
} norm_ctx;

/* Items are (sample, group) pairs; a group is cg·S contiguous floats. */
static void group_norm_range(void *arg, int64_t begin, int64_t end) {
    const norm_ctx *k = arg;
    int64_t len = k->cg * k->inner;
    for (int64_t it = begin; it < end; it++) {
        const float *x = k->x + it * len;
        float *y = k->y + it * len;
        double mean, var;
        sdc_cpu_norm_stats(x, len, &mean, &var);
        double rstd = 1.0 / sqrt(var + k->eps);
        float mhi, mlo;
        split_mean(mean, &mhi, &mlo);
        int64_t c0 = (it % k->groups) * k->cg;
        for (int64_t c = 0; c < k->cg; c++)
            apply_const(x + c * k->inner, y + c * k->inner, k->inner, mhi, mlo,
                        (float)(rstd * k->gamma[c0 + c]), k->beta[c0 + c], k->silu);
    }
}

static void layer_norm_range(void *arg, int64_t begin, int64_t end) {
    const norm_ctx *k = arg;
    for (int64_t r = begin; r < end; r++) {
        const float *x = k->x + r * k->c;
        double mean, var;
        sdc_cpu_norm_stats(x, k->c, &mean, &var);
        float mhi, mlo;
        split_mean(mean, &mhi, &mlo);
        apply_vec(x, k->y + r * k->c, k->c, mhi, mlo, (float)(1.0 / sqrt(var + k->eps)),
                  k->gamma, k->beta);
    }
}

/* Items of `len` floats each, at least ~32K floats per chunk so that small
 * tensors stay on one thread. */
static int64_t grain_for(int64_t len) { return len >= 32768 ? 1 : 32768 / (len > 0 ? len : 1); }

/* x [N, C, ...spatial], gamma/beta [C] -> y like x */
sdc_status sdc_cpu_group_norm(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    norm_ctx k = {.x = x->data, .y = op->dst->data, .c = x->shape[1],
                  .groups = op->p.group_norm.groups, .eps = op->p.group_norm.eps,
                  .silu = op->p.group_norm.silu};
    if (!(k.gamma = sdc_cpu_as_f32(be, 0, op->src[1], err)) ||
        !(k.beta = sdc_cpu_as_f32(be, 1, op->src[2], err)))
        return sdc_err_wrap(err, "group_norm");
    int64_t n = x->shape[0];
    k.inner = 1;
    for (int d = 2; d < x->ndim; d++) k.inner *= x->shape[d];
    k.cg = k.c / k.groups;
    if (n == 0 || k.c == 0 || k.inner == 0) return SDC_OK;
    sdc_parallel_for(n * k.groups, grain_for(k.cg * k.inner), group_norm_range, &k);
    return SDC_OK;
}

/* x [..., C], gamma/beta [C] -> y like x */
sdc_status sdc_cpu_layer_norm(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    norm_ctx k = {.x = x->data, .y = op->dst->data, .c = x->shape[x->ndim - 1],
                  .eps = op->p.layer_norm.eps};
    if (!(k.gamma = sdc_cpu_as_f32(be, 0, op->src[1], err)) ||
        !(k.beta = sdc_cpu_as_f32(be, 1, op->src[2], err)))
        return sdc_err_wrap(err, "layer_norm");
    if (k.c == 0) return SDC_OK;
    int64_t rows = sdc_tensor_numel(x) / k.c;
    sdc_parallel_for(rows, grain_for(k.c), layer_norm_range, &k);
    return SDC_OK;
}
