/* activation.c — CPU elementwise activations: exact (erf) GELU, CLIP's
 * quick_gelu, diffusers' GEGLU and SiLU. AVX2 via vmath.h, masked tails so
 * every element goes through the same arithmetic; libm in the scalar build. */
#include "cpu_ops.h"
#include "vmath.h"

#include <math.h>

typedef enum act_kind { ACT_GELU, ACT_QUICK_GELU, ACT_SILU } act_kind;

#ifdef __AVX2__
static inline __m256 act_vec(act_kind kind, __m256 x) {
    switch (kind) {
    case ACT_GELU: return sdc_v_gelu(x);
    case ACT_QUICK_GELU:
        return _mm256_mul_ps(x, sdc_v_sigmoid(_mm256_mul_ps(x, _mm256_set1_ps(1.702f))));
    case ACT_SILU: break;
    }
    return sdc_v_silu(x);
}
#else
static inline float act_one(act_kind kind, float x) {
    switch (kind) {
    case ACT_GELU: return sdc_s_gelu(x);
    case ACT_QUICK_GELU: return x * sdc_s_sigmoid(1.702f * x);
    case ACT_SILU: break;
    }
    return sdc_s_silu(x);
}
#endif

/* y[i] = f(x[i]) for i in [0, n); `kind` is loop-invariant, and inlining
 * act_vec into the three callers below lets the compiler drop the switch. */
static inline void act_map(act_kind kind, const float *x, float *y, int64_t n) {
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, act_vec(kind, _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = sdc_v_tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, act_vec(kind, _mm256_maskload_ps(x + i, m)));
    }
#else
    for (; i < n; i++) y[i] = act_one(kind, x[i]);
#endif
}

/* y[i] = v[i]·gelu(g[i]) for i in [0, n). */
static void geglu_map(const float *v, const float *g, float *y, int64_t n) {
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(v + i),
                                              sdc_v_gelu(_mm256_loadu_ps(g + i))));
    if (i < n) {
        __m256i m = sdc_v_tail_mask(n - i);
        __m256 r = sdc_v_gelu(_mm256_maskload_ps(g + i, m));
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(v + i, m), r));
    }
#else
    for (; i < n; i++) y[i] = v[i] * sdc_s_gelu(g[i]);
#endif
}

typedef struct act_ctx {
    const float *x; /* unary: [n]; geglu: [rows, 2F] */
    float *y;       /* unary: [n]; geglu: [rows, F] */
    int64_t f;      /* geglu: F */
} act_ctx;

static void gelu_range(void *arg, int64_t b, int64_t e) {
    const act_ctx *k = arg;
    act_map(ACT_GELU, k->x + b, k->y + b, e - b);
}

static void quick_gelu_range(void *arg, int64_t b, int64_t e) {
    const act_ctx *k = arg;
    act_map(ACT_QUICK_GELU, k->x + b, k->y + b, e - b);
}

static void silu_range(void *arg, int64_t b, int64_t e) {
    const act_ctx *k = arg;
    act_map(ACT_SILU, k->x + b, k->y + b, e - b);
}

/* [b, e) indexes the output; split it at row boundaries. */
static void geglu_range(void *arg, int64_t b, int64_t e) {
    const act_ctx *k = arg;
    while (b < e) {
        int64_t r = b / k->f, j = b % k->f;
        int64_t len = k->f - j < e - b ? k->f - j : e - b;
        const float *row = k->x + r * 2 * k->f;
        geglu_map(row + j, row + k->f + j, k->y + b, len);
        b += len;
    }
}

/* Transcendental ops cost ~10-20 ns per vector: 16K elements is enough work
 * to be worth waking the pool. */
#define ACT_GRAIN 16384

static sdc_status run_unary(const sdc_op *op, sdc_range_fn fn) {
    act_ctx k = {.x = op->src[0]->data, .y = op->dst->data};
    sdc_parallel_for(sdc_tensor_numel(op->src[0]), ACT_GRAIN, fn, &k);
    return SDC_OK;
}

/* x [...] -> y like x */
sdc_status sdc_cpu_gelu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return run_unary(op, gelu_range);
}

/* x [...] -> y like x */
sdc_status sdc_cpu_quick_gelu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return run_unary(op, quick_gelu_range);
}

/* x [...] -> y like x */
sdc_status sdc_cpu_silu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return run_unary(op, silu_range);
}

/* x [..., 2F] -> y [..., F] = x[..., :F]·gelu(x[..., F:]) */
sdc_status sdc_cpu_geglu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    act_ctx k = {.x = x->data, .y = op->dst->data, .f = x->shape[x->ndim - 1] / 2};
    if (k.f == 0) return SDC_OK;
    sdc_parallel_for(sdc_tensor_numel(op->dst), ACT_GRAIN, geglu_range, &k);
    return SDC_OK;
}
