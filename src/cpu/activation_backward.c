/* activation_backward.c — CPU adjoints of the elementwise activations:
 * dx = dy·f'(x) for GELU (exact), CLIP's quick_gelu and SiLU, and GEGLU's
 * two halves. AVX2 via vmath.h with masked tails, libm in the scalar build. */
#include "cpu_ops.h"
#include "vmath.h"

#include <math.h>

typedef enum act_kind { ACT_GELU, ACT_QUICK_GELU, ACT_SILU } act_kind;

#ifdef __AVX2__
/* σ(a·x)·(1 + a·x·(1 - σ(a·x))): the derivative of x·σ(a·x). */
static inline __m256 sig_grad(__m256 x, float a) {
    __m256 ax = _mm256_mul_ps(x, _mm256_set1_ps(a));
    __m256 s = sdc_v_sigmoid(ax);
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_mul_ps(s, _mm256_fmadd_ps(ax, _mm256_sub_ps(one, s), one));
}

static inline __m256 grad_vec(act_kind kind, __m256 x) {
    switch (kind) {
    case ACT_GELU: return sdc_v_gelu_grad(x);
    case ACT_QUICK_GELU: return sig_grad(x, 1.702f);
    case ACT_SILU: break;
    }
    return sig_grad(x, 1.0f);
}
#else
static inline float grad_one(act_kind kind, float x) {
    if (kind == ACT_GELU) return sdc_s_gelu_grad(x);
    float ax = kind == ACT_QUICK_GELU ? 1.702f * x : x;
    float s = sdc_s_sigmoid(ax);
    return s * (1.0f + ax * (1.0f - s));
}
#endif

/* dx[i] = dy[i]·f'(x[i]) for i in [0, n). */
static inline void grad_map(act_kind kind, const float *x, const float *dy, float *dx, int64_t n) {
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i),
                                               grad_vec(kind, _mm256_loadu_ps(x + i))));
    if (i < n) {
        __m256i m = sdc_v_tail_mask(n - i);
        __m256 g = grad_vec(kind, _mm256_maskload_ps(x + i, m));
        _mm256_maskstore_ps(dx + i, m, _mm256_mul_ps(_mm256_maskload_ps(dy + i, m), g));
    }
#else
    for (; i < n; i++) dx[i] = dy[i] * grad_one(kind, x[i]);
#endif
}

/* GEGLU row piece: dv = dy·gelu(g), dg = dy·v·gelu'(g). */
static void geglu_grad_map(const float *v, const float *g, const float *dy, float *dv, float *dg,
                           int64_t n) {
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i), d = _mm256_loadu_ps(dy + i);
        _mm256_storeu_ps(dv + i, _mm256_mul_ps(d, sdc_v_gelu(gv)));
        _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(v + i)),
                                               sdc_v_gelu_grad(gv)));
    }
    if (i < n) {
        __m256i m = sdc_v_tail_mask(n - i);
        __m256 gv = _mm256_maskload_ps(g + i, m), d = _mm256_maskload_ps(dy + i, m);
        _mm256_maskstore_ps(dv + i, m, _mm256_mul_ps(d, sdc_v_gelu(gv)));
        _mm256_maskstore_ps(dg + i, m, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_maskload_ps(v + i, m)),
                                                     sdc_v_gelu_grad(gv)));
    }
#else
    for (; i < n; i++) {
        dv[i] = dy[i] * sdc_s_gelu(g[i]);
        dg[i] = dy[i] * v[i] * sdc_s_gelu_grad(g[i]);
    }
#endif
}

typedef struct grad_ctx {
    const float *x;  /* unary: [n]; geglu: [rows, 2F] */
    const float *dy; /* unary: [n]; geglu: [rows, F] */
    float *dx;       /* like x */
    int64_t f;       /* geglu: F */
} grad_ctx;

static void gelu_range(void *arg, int64_t b, int64_t e) {
    const grad_ctx *k = arg;
    grad_map(ACT_GELU, k->x + b, k->dy + b, k->dx + b, e - b);
}

static void quick_gelu_range(void *arg, int64_t b, int64_t e) {
    const grad_ctx *k = arg;
    grad_map(ACT_QUICK_GELU, k->x + b, k->dy + b, k->dx + b, e - b);
}

static void silu_range(void *arg, int64_t b, int64_t e) {
    const grad_ctx *k = arg;
    grad_map(ACT_SILU, k->x + b, k->dy + b, k->dx + b, e - b);
}

/* [b, e) indexes dy; split at row boundaries. */
static void geglu_range(void *arg, int64_t b, int64_t e) {
    const grad_ctx *k = arg;
    while (b < e) {
        int64_t r = b / k->f, j = b % k->f;
        int64_t len = k->f - j < e - b ? k->f - j : e - b;
        const float *row = k->x + r * 2 * k->f;
        float *drow = k->dx + r * 2 * k->f;
        geglu_grad_map(row + j, row + k->f + j, k->dy + b, drow + j, drow + k->f + j, len);
        b += len;
    }
}

/* As the forward activations: 16K elements per task. */
#define ACT_GRAIN 16384

static sdc_status run_unary(const sdc_op *op, sdc_range_fn fn) {
    grad_ctx k = {.x = op->src[0]->data, .dy = op->src[1]->data, .dx = op->dst->data};
    sdc_parallel_for(sdc_tensor_numel(op->src[0]), ACT_GRAIN, fn, &k);
    return SDC_OK;
}

/* x, dy [...] -> dx like x */
sdc_status sdc_cpu_gelu_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return run_unary(op, gelu_range);
}

/* x, dy [...] -> dx like x */
sdc_status sdc_cpu_quick_gelu_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return run_unary(op, quick_gelu_range);
}

/* x, dy [...] -> dx like x */
sdc_status sdc_cpu_silu_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return run_unary(op, silu_range);
}

/* x [..., 2F], dy [..., F] -> dx [..., 2F] */
sdc_status sdc_cpu_geglu_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    grad_ctx k = {.x = x->data, .dy = op->src[1]->data, .dx = op->dst->data,
                  .f = x->shape[x->ndim - 1] / 2};
    if (k.f == 0) return SDC_OK;
    sdc_parallel_for(sdc_tensor_numel(op->src[1]), ACT_GRAIN, geglu_range, &k);
    return SDC_OK;
}
