/* norm_backward.c — CPU adjoints of group_norm (optionally fused with SiLU)
 * and layer_norm. Per group (or row): the forward's statistics again
 * (sdc_cpu_norm_stats, double), then g = dy·gamma (times silu'(y), y
 * recomputed), with the two means of g and g·x̂ summed in double, then
 * dx = rstd·(g - mean(g) - x̂·mean(g·x̂)). g is parked in dx between the two
 * passes, so nothing but dx is written. */
#include "cpu_ops.h"
#include "vmath.h"

#include <math.h>

/* x̂ = (x - mhi - mlo)·rstd, the mean carried in two floats as the forward does. */
typedef struct row_norm {
    float mhi, mlo, rstd;
} row_norm;

static row_norm row_stats(const float *x, int64_t n, double eps) {
    double mean, var;
    sdc_cpu_norm_stats(x, n, &mean, &var);
    row_norm r;
    r.mhi = (float)mean;
    r.mlo = (float)(mean - (double)r.mhi);
    r.rstd = (float)(1.0 / sqrt(var + eps));
    return r;
}

#ifdef __AVX2__
static inline __m256 xhat_vec(__m256 x, const row_norm *r) {
    x = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_set1_ps(r->mhi)), _mm256_set1_ps(r->mlo));
    return _mm256_mul_ps(x, _mm256_set1_ps(r->rstd));
}

/* dy·(silu'(y)) for y = x̂·gamma + beta: σ(y)·(1 + y·(1 - σ(y))). */
static inline __m256 silu_back_vec(__m256 dy, __m256 xh, __m256 gamma, __m256 beta) {
    __m256 y = _mm256_fmadd_ps(xh, gamma, beta), one = _mm256_set1_ps(1.0f);
    __m256 s = sdc_v_sigmoid(y);
    return _mm256_mul_ps(dy, _mm256_mul_ps(s, _mm256_fmadd_ps(y, _mm256_sub_ps(one, s), one)));
}

static inline void acc_pd(__m256 v, __m256d *lo, __m256d *hi) {
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
#endif

/* Pass 1 over n values that share (or, with per_elem, index) gamma/beta:
 * g = dy·gamma (·silu') into dx; adds Σg and Σg·x̂ to s[0], s[1]. */
static void grad_pass(const float *x, const float *dy, float *dx, int64_t n, const row_norm *r,
                      const float *gamma, const float *beta, bool per_elem, bool silu,
                      double s[2]) {
    int64_t i = 0;
#ifdef __AVX2__
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
    __m256 gv = _mm256_set1_ps(gamma[0]), bv = _mm256_set1_ps(beta ? beta[0] : 0.0f);
    for (; i < n; i += 8) {
        __m256i m = sdc_v_tail_mask(n - i);
        bool full = i + 8 <= n;
        __m256 xv = full ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, m);
        __m256 d = full ? _mm256_loadu_ps(dy + i) : _mm256_maskload_ps(dy + i, m);
        if (per_elem) gv = full ? _mm256_loadu_ps(gamma + i) : _mm256_maskload_ps(gamma + i, m);
        __m256 xh = xhat_vec(xv, r);
        if (silu) d = silu_back_vec(d, xh, gv, bv);
        __m256 g = _mm256_mul_ps(d, gv); /* masked lanes: 0 */
        acc_pd(g, &a0, &a1);
        acc_pd(_mm256_mul_ps(g, xh), &b0, &b1);
        if (full) _mm256_storeu_ps(dx + i, g);
        else _mm256_maskstore_ps(dx + i, m, g);
    }
    s[0] += sdc_v_hsum_pd(_mm256_add_pd(a0, a1));
    s[1] += sdc_v_hsum_pd(_mm256_add_pd(b0, b1));
#else
    for (; i < n; i++) {
        float gm = gamma[per_elem ? i : 0];
        float xh = ((x[i] - r->mhi) - r->mlo) * r->rstd, d = dy[i];
        if (silu) {
            float y = xh * gm + beta[0], sg = sdc_s_sigmoid(y);
            d *= sg * (1.0f + y * (1.0f - sg));
        }
        float g = d * gm;
        dx[i] = g;
        s[0] += g;
        s[1] += (double)g * xh;
    }
#endif
}

/* Pass 2: dx = rstd·(g - m1 - x̂·m2), g read from dx. */
static void apply_pass(const float *x, float *dx, int64_t n, const row_norm *r, float m1,
                       float m2) {
    int64_t i = 0;
#ifdef __AVX2__
    __m256 vm1 = _mm256_set1_ps(m1), vm2 = _mm256_set1_ps(m2), vr = _mm256_set1_ps(r->rstd);
    for (; i < n; i += 8) {
        __m256i m = sdc_v_tail_mask(n - i);
        bool full = i + 8 <= n;
        __m256 xv = full ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, m);
        __m256 g = full ? _mm256_loadu_ps(dx + i) : _mm256_maskload_ps(dx + i, m);
        __m256 v = _mm256_mul_ps(vr, _mm256_fnmadd_ps(xhat_vec(xv, r), vm2, _mm256_sub_ps(g, vm1)));
        if (full) _mm256_storeu_ps(dx + i, v);
        else _mm256_maskstore_ps(dx + i, m, v);
    }
#else
    for (; i < n; i++) {
        float xh = ((x[i] - r->mhi) - r->mlo) * r->rstd;
        dx[i] = r->rstd * ((dx[i] - m1) - xh * m2);
    }
#endif
}

typedef struct nb_ctx {
    const float *x, *dy; /* group_norm [N, C, S...]; layer_norm [R, C] */
    float *dx;
    const float *gamma, *beta; /* [C] */
    int64_t c, inner, cg;      /* channels; group_norm: spatial size, channels per group */
    int groups;
    double eps;
    bool silu;
} nb_ctx;

/* Items are (sample, group) pairs; a group is cg·S contiguous floats. */
static void group_range(void *arg, int64_t begin, int64_t end) {
    const nb_ctx *k = arg;
    int64_t len = k->cg * k->inner;
    for (int64_t it = begin; it < end; it++) {
        const float *x = k->x + it * len, *dy = k->dy + it * len;
        float *dx = k->dx + it * len;
        row_norm r = row_stats(x, len, k->eps);
        int64_t c0 = (it % k->groups) * k->cg;
        double s[2] = {0, 0};
        for (int64_t c = 0; c < k->cg; c++)
            grad_pass(x + c * k->inner, dy + c * k->inner, dx + c * k->inner, k->inner, &r,
                      k->gamma + c0 + c, k->beta + c0 + c, false, k->silu, s);
        float m1 = (float)(s[0] / (double)len), m2 = (float)(s[1] / (double)len);
        apply_pass(x, dx, len, &r, m1, m2);
    }
}

static void layer_range(void *arg, int64_t begin, int64_t end) {
    const nb_ctx *k = arg;
    for (int64_t it = begin; it < end; it++) {
        const float *x = k->x + it * k->c;
        float *dx = k->dx + it * k->c;
        row_norm r = row_stats(x, k->c, k->eps);
        double s[2] = {0, 0};
        grad_pass(x, k->dy + it * k->c, dx, k->c, &r, k->gamma, NULL, true, false, s);
        apply_pass(x, dx, k->c, &r, (float)(s[0] / (double)k->c), (float)(s[1] / (double)k->c));
    }
}

/* As the forward norms: ~32K floats per task. */
static int64_t grain_for(int64_t len) { return len >= 32768 ? 1 : 32768 / (len > 0 ? len : 1); }

/* x, dy [N, C, ...spatial], gamma/beta [C] -> dx like x */
sdc_status sdc_cpu_group_norm_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    nb_ctx k = {.x = x->data, .dy = op->src[3]->data, .dx = op->dst->data, .c = x->shape[1],
                .groups = op->p.group_norm.groups, .eps = op->p.group_norm.eps,
                .silu = op->p.group_norm.silu};
    if (!(k.gamma = sdc_cpu_as_f32(be, 0, op->src[1], err)) ||
        !(k.beta = sdc_cpu_as_f32(be, 1, op->src[2], err)))
        return sdc_err_wrap(err, "group_norm_backward");
    int64_t n = x->shape[0];
    k.inner = 1;
    for (int d = 2; d < x->ndim; d++) k.inner *= x->shape[d];
    k.cg = k.c / k.groups;
    if (n == 0 || k.c == 0 || k.inner == 0) return SDC_OK;
    sdc_parallel_for(n * k.groups, grain_for(k.cg * k.inner), group_range, &k);
    return SDC_OK;
}

/* x, dy [..., C], gamma [C] -> dx like x */
sdc_status sdc_cpu_layer_norm_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    nb_ctx k = {.x = x->data, .dy = op->src[2]->data, .dx = op->dst->data,
                .c = x->shape[x->ndim - 1], .eps = op->p.layer_norm.eps};
    if (!(k.gamma = sdc_cpu_as_f32(be, 0, op->src[1], err)))
        return sdc_err_wrap(err, "layer_norm_backward");
    if (k.c == 0) return SDC_OK;
    sdc_parallel_for(sdc_tensor_numel(x) / k.c, grain_for(k.c), layer_range, &k);
    return SDC_OK;
}
