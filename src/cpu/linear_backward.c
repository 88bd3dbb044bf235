/* linear_backward.c — CPU adjoint of linear: dx [M, K] = dy [M, N] · w [N, K]
 * through fixed-tile sgemms (gemm_tiles.h), one product per batch item so
 * that a sample's gradient does not depend on its batch. A big half-precision
 * weight is widened a block of its rows (the product's depth) at a time, the
 * blocks summed into dx in order (beta = 1 after the first). */
#include "cpu_ops.h"
#include "gemm_tiles.h"

#include <limits.h>
#include <string.h>

/* dy [..., N], w [N, K] -> dx [..., K] */
sdc_status sdc_cpu_linear_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *dy = op->src[0], *wt = op->src[1];
    int64_t n = wt->shape[0], k = wt->shape[1];
    int64_t m = n ? sdc_tensor_numel(dy) / n : sdc_tensor_numel(op->dst) / (k ? k : 1);
    float *dx = op->dst->data;
    if (m == 0 || k == 0) return SDC_OK;
    if (n == 0) { /* an empty product: zeros */
        memset(dx, 0, (size_t)(m * k) * sizeof *dx);
        return SDC_OK;
    }
    if (k > INT_MAX || n > INT_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "linear_backward: w [%lld, %lld] exceeds the BLAS int range",
                           (long long)n, (long long)k);
    int64_t items = dy->ndim >= 2 && dy->shape[0] > 0 ? dy->shape[0] : 1;
    int64_t per = m / items;
    int64_t blk = sdc_cpu_row_block(wt, n, k);
    for (int64_t n0 = 0; n0 < n; n0 += blk) {
        int64_t nn = n - n0 < blk ? n - n0 : blk;
        const float *w = sdc_cpu_rows_f32(be, 0, wt, k, n0, n0 + nn, err); /* [nn, K] */
        if (!w) return sdc_err_wrap(err, "linear_backward: weight");
        sdc_gemm_batch g = {.count = items, .m = per, .n = k, .k = nn,
                            .a = (const float *)dy->data + n0, .lda = n, .stride_a = per * n,
                            .b = w, .ldb = k, .beta = n0 ? 1.0f : 0.0f,
                            .c = dx, .ldc = k, .stride_c = per * k};
        sdc_cpu_gemm(&g);
    }
    return SDC_OK;
}
