/* softmax.c — CPU softmax over the last dim: max-subtracted, F32, rows in
 * parallel on the pool, AVX2 exp (vmath.h) with a scalar fallback. */
#include "cpu_ops.h"
#include "vmath.h"

#include <math.h>

typedef struct softmax_ctx {
    const float *x; /* [rows, c] */
    float *y;       /* [rows, c] */
    int64_t c;
} softmax_ctx;

/* One row: y = exp(x - max) / sum. The division (not a multiply by 1/sum)
 * keeps the last step exactly rounded. */
static void softmax_row(const float *x, float *y, int64_t c) {
    int64_t j = 0;
    float mx = -INFINITY, sum = 0.0f;
#ifdef __AVX2__
    __m256 vm = _mm256_set1_ps(-INFINITY);
    for (; j + 8 <= c; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + j));
    mx = sdc_v_hmax(vm);
#endif
    for (; j < c; j++) mx = x[j] > mx ? x[j] : mx;
    /* A NaN anywhere must poison the row like the reference does; max_ps
     * may have dropped it, so a NaN input is caught by the sum below. */
    j = 0;
#ifdef __AVX2__
    __m256 vmax = _mm256_set1_ps(mx), vs = _mm256_setzero_ps();
    for (; j + 8 <= c; j += 8) {
        __m256 e = sdc_v_exp(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmax));
        _mm256_storeu_ps(y + j, e);
        vs = _mm256_add_ps(vs, e);
    }
    if (j < c) {
        __m256i m = sdc_v_tail_mask(c - j);
        __m256 e = sdc_v_exp(_mm256_sub_ps(_mm256_maskload_ps(x + j, m), vmax));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(y + j, m, e);
        vs = _mm256_add_ps(vs, e);
        j = c;
    }
    sum = sdc_v_hsum(vs);
#endif
    for (; j < c; j++) {
        y[j] = expf(x[j] - mx);
        sum += y[j];
    }
    j = 0;
#ifdef __AVX2__
    __m256 vsum = _mm256_set1_ps(sum);
    for (; j + 8 <= c; j += 8) _mm256_storeu_ps(y + j, _mm256_div_ps(_mm256_loadu_ps(y + j), vsum));
#endif
    for (; j < c; j++) y[j] /= sum;
}

static void softmax_rows(void *p, int64_t begin, int64_t end) {
    const softmax_ctx *s = p;
    for (int64_t r = begin; r < end; r++) softmax_row(s->x + r * s->c, s->y + r * s->c, s->c);
}

sdc_status sdc_cpu_softmax(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    (void)err;
    const sdc_tensor *x = op->src[0]; /* [..., C] */
    int64_t c = x->shape[x->ndim - 1];
    int64_t n = sdc_tensor_numel(x);
    if (c == 0 || n == 0) return SDC_OK;
    softmax_ctx s = {x->data, op->dst->data, c};
    /* Rows of a few thousand elements or more each make a worthwhile task. */
    int64_t grain = c >= 4096 ? 1 : 4096 / c;
    sdc_parallel_for(n / c, grain, softmax_rows, &s);
    return SDC_OK;
}
