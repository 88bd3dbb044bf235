/* softmax.cu — softmax over the last dim, max-subtracted, F32 math: one
 * block per row (three passes over the row: max, sum of exps, normalize). A
 * NaN in a row poisons its sum, and so the whole row, as on the CPU. */
#include "cuda_common.cuh"

/* x [rows, c] -> y [rows, c] */
template <typename T> __global__ void softmax_kernel(const T *x, T *y, int64_t rows, int64_t c) {
    __shared__ float red[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * c;
        T *yr = y + r * c;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m = fmaxf(m, cu_ld(xr, j));
        m = cu_block_max(m, red);
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += expf(cu_ld(xr, j) - m);
        s = cu_block_sum(s, red);
        /* Division, not a multiply by 1/s: the last step stays exactly rounded. */
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) cu_st(yr, j, expf(cu_ld(xr, j) - m) / s);
    }
}

/* x [..., C] -> y like x */
sdc_status sdc_cuda_softmax(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0];
    int64_t c = x->shape[x->ndim - 1], n = sdc_tensor_numel(x);
    if (c == 0 || n == 0) return SDC_OK;
    int64_t rows = n / c;
    int threads = c <= 128 ? 32 : c <= 1024 ? 128 : 256;
    unsigned grid = (unsigned)(rows < 65535 * 32 ? rows : 65535 * 32);
    CU_DISPATCH(x->dtype, T, "softmax", err,
                softmax_kernel<T><<<grid, threads, 0, cu_stream>>>((const T *)x->data, (T *)op->dst->data, rows,
                                                     c));
    return cu_check_launch(err, "softmax");
}
