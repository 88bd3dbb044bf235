/* linear.cu — y [M, N] = x [M, K] · wᵀ + b through cublasGemmEx with F32
 * accumulation (CUBLAS_COMPUTE_32F: tensor cores for F16/BF16, plain FP32
 * for F32 — no TF32). The bias is written into y first and the GEMM adds
 * onto it (beta = 1). A weight whose dtype differs from the activations' is
 * converted into scratch first (cuBLAS wants A and B of one type). */
#include "cuda_common.cuh"

#include <limits.h>

/* y [outer, nb, inner] = b[c] (or 0) */
template <typename T>
__global__ void fill_bias_kernel(T *y, const void *b, int bdt, int n, int nb, int inner) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        cu_st(y, i, b ? cu_ld_any(b, bdt, (i / inner) % nb) : 0.0f);
}

sdc_status cu_fill_bias(void *y, sdc_dtype yt, const sdc_tensor *b, int64_t outer, int64_t nb,
                        int64_t inner, sdc_err *err) {
    int64_t n = outer * nb * inner;
    if (n == 0) return SDC_OK;
    if (cu_check_elems(n, "bias", err)) return err->code;
    const void *bd = b ? b->data : NULL;
    int bdt = b ? (int)b->dtype : (int)SDC_F32;
    CU_DISPATCH(yt, T, "bias", err,
                fill_bias_kernel<T><<<cu_blocks(n, 256), 256, 0, cu_stream>>>((T *)y, bd, bdt, (int)n, (int)nb,
                                                                (int)inner));
    return cu_check_launch(err, "bias");
}

/* x [..., K], w [N, K], b [N] or NULL -> y [..., N] */
sdc_status sdc_cuda_linear(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0], *wt = op->src[1], *bt = op->src[2];
    sdc_dtype dt = op->dst->dtype;
    int64_t k = wt->shape[1], n = wt->shape[0];
    int64_t m = n ? sdc_tensor_numel(op->dst) / n : 0;
    if (m == 0 || n == 0) return SDC_OK;
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "linear: [%lld, %lld] x [%lld, %lld] exceeds cuBLAS's int sizes",
                           (long long)m, (long long)k, (long long)n, (long long)k);
    /* y starts as the bias rows, or zeros when K = 0 leaves nothing to add. */
    if (bt || k == 0) {
        if (cu_fill_bias(op->dst->data, dt, bt, m, n, 1, err)) return sdc_err_wrap(err, "linear");
        if (k == 0) return SDC_OK;
    }
    const void *w = cu_as_dtype(be, wt, dt, CU_SLOT_WEIGHT, err);
    if (!w) return sdc_err_wrap(err, "linear: weight");
    float alpha = 1.0f, beta = bt ? 1.0f : 0.0f;
    cudaDataType_t ty = cu_blas_type(dt);
    /* Column-major view: yᵀ [N, M] = (w [N, K]) · (xᵀ [K, M]); w row-major is
     * wᵀ column-major, hence OP_T. */
    return cu_check_blas(cublasGemmEx(cu_impl(be)->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)m,
                                      (int)k, &alpha, w, ty, (int)k, x->data, ty, (int)k, &beta,
                                      op->dst->data, ty, (int)n, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT),
                         err, "linear (cublasGemmEx)");
}
