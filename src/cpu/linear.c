/* linear.c — CPU linear layer: y [M, N] = x [M, K] · wᵀ + b through OpenBLAS
 * sgemm. The bias is written into y first and sgemm accumulates onto it
 * (beta = 1), so no separate epilogue pass over y is needed. */
#include "cpu_ops.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

/* cblas takes int sizes; larger M is cut into row chunks below. */
#define ROW_CHUNK ((int64_t)1 << 30)

typedef struct bias_ctx {
    float *y;        /* [m, n] */
    const float *b;  /* [n] or NULL (then zeros) */
    int64_t n;
} bias_ctx;

static void fill_rows(void *p, int64_t begin, int64_t end) {
    const bias_ctx *c = p;
    for (int64_t i = begin; i < end; i++) {
        if (c->b) memcpy(c->y + i * c->n, c->b, (size_t)c->n * sizeof *c->y);
        else memset(c->y + i * c->n, 0, (size_t)c->n * sizeof *c->y);
    }
}

sdc_status sdc_cpu_linear(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0]; /* [..., K] */
    const sdc_tensor *wt = op->src[1]; /* [N, K] */
    const sdc_tensor *bt = op->src[2]; /* [N] or NULL */
    int64_t k = wt->shape[1], n = wt->shape[0];
    int64_t m = k ? sdc_tensor_numel(x) / k : sdc_tensor_numel(op->dst) / (n ? n : 1);
    float *y = op->dst->data; /* [..., N] */
    if (m == 0 || n == 0) return SDC_OK;
    if (k > INT_MAX || n > INT_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "linear: w [%lld, %lld] exceeds the BLAS int range", (long long)n,
                           (long long)k);
    const float *b = bt ? sdc_cpu_as_f32(be, 1, bt, err) : NULL;
    if (bt && !b) return sdc_err_wrap(err, "linear");

    /* y rows start as the bias (or zero when K = 0 and there is none). */
    if (b || k == 0) {
        bias_ctx c = {y, b, n};
        sdc_parallel_for(m, n >= 65536 ? 1 : 65536 / n, fill_rows, &c);
    }
    if (k == 0) return SDC_OK;
    const float *xd = x->data;
    /* One GEMM per batch item: a sample's result must not depend on what it
     * is batched with (BLAS may pick another kernel for another M). */
    int64_t per = x->ndim >= 2 && x->shape[0] > 0 ? m / x->shape[0] : m;
    /* A big half-precision weight is widened a block of output features at a
     * time (each block is used by every batch item before the next). */
    int64_t blk = sdc_cpu_row_block(wt, n, k);
    for (int64_t n0 = 0; n0 < n; n0 += blk) {
        int64_t nn = n - n0 < blk ? n - n0 : blk;
        const float *w = sdc_cpu_rows_f32(be, 0, wt, k, n0, n0 + nn, err); /* [nn, K] */
        if (!w) return sdc_err_wrap(err, "linear: weight");
        for (int64_t s0 = 0; s0 < m; s0 += per) {
            for (int64_t r0 = s0; r0 < s0 + per; r0 += ROW_CHUNK) {
                int64_t rows = s0 + per - r0 < ROW_CHUNK ? s0 + per - r0 : ROW_CHUNK;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)nn, (int)k,
                            1.0f, xd + r0 * k, (int)k, w, (int)k, b ? 1.0f : 0.0f,
                            y + r0 * n + n0, (int)n);
            }
        }
    }
    return SDC_OK;
}
