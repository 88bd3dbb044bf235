/* linear.c — CPU linear layer: y [M, N] = x [M, K] · wᵀ + b through OpenBLAS
 * sgemm, or through sdc's own GEMM when the weight is half precision and a
 * sample has few rows (wgemm.h). The bias is written into y first and the
 * product accumulates onto it, so no separate epilogue pass over y is
 * needed. The products run in fixed tiles on sdc's pool (gemm_tiles.h). */
#include "cpu_ops.h"
#include "gemm_tiles.h"
#include "wgemm.h"

#include <limits.h>
#include <string.h>

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
    /* Rows per batch item decide the path (never the batch: a sample's bits
     * must not depend on it). */
    int64_t items = x->ndim >= 2 && x->shape[0] > 0 ? x->shape[0] : 1;
    int64_t per = m / items; /* any size: a tile has at most 512 rows */
    if (sdc_wgemm_pays(wt->dtype, per, k, false)) {
        sdc_wgemm g = {.m = n, .n = m, .k = k, .w = wt->data, .wtype = wt->dtype, .ldw = k,
                       .x = x->data, .ldx = k, .c = y, .group = m, .cs = n, .rs = 1,
                       .accumulate = b != NULL};
        return sdc_cpu_wgemm(be, &g, err) ? sdc_err_wrap(err, "linear") : SDC_OK;
    }
    /* One GEMM per batch item, in tiles (gemm_tiles.h): a sample's result
     * must not depend on what it is batched with. */
    /* A big half-precision weight is widened a block of output features at a
     * time (each block is used by every batch item before the next). */
    int64_t blk = sdc_cpu_row_block(wt, n, k);
    for (int64_t n0 = 0; n0 < n; n0 += blk) {
        int64_t nn = n - n0 < blk ? n - n0 : blk;
        const float *w = sdc_cpu_rows_f32(be, 0, wt, k, n0, n0 + nn, err); /* [nn, K] */
        if (!w) return sdc_err_wrap(err, "linear: weight");
        sdc_gemm_batch g = {.count = items, .m = per, .n = nn, .k = k,
                            .a = x->data, .lda = k, .stride_a = per * k,
                            .b = w, .ldb = k, .trans_b = true, .beta = b ? 1.0f : 0.0f,
                            .c = y + n0, .ldc = n, .stride_c = per * n};
        sdc_cpu_gemm(&g);
    }
    return SDC_OK;
}
