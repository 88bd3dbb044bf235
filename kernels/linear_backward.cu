/* linear_backward.cu — dx [M, K] = dy [M, N] · w [N, K] through cublasGemmEx
 * with F32 accumulation (as linear.cu: no TF32). A weight whose dtype differs
 * from the activations' is converted into scratch first. */
#include "cuda_common.cuh"

#include <limits.h>

/* dy [..., N], w [N, K] -> dx [..., K] */
sdc_status sdc_cuda_linear_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *dy = op->src[0], *wt = op->src[1];
    sdc_dtype dt = op->dst->dtype;
    int64_t n = wt->shape[0], k = wt->shape[1];
    int64_t m = k ? sdc_tensor_numel(op->dst) / k : 0;
    if (m == 0 || k == 0) return SDC_OK;
    if (n == 0) /* an empty sum */
        return cu_check(cudaMemset(op->dst->data, 0, sdc_tensor_nbytes(op->dst)), err,
                        "linear_backward (cudaMemset)");
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "linear_backward: [%lld, %lld] x [%lld, %lld] exceeds cuBLAS's int "
                           "sizes", (long long)m, (long long)n, (long long)n, (long long)k);
    const void *w = cu_as_dtype(be, wt, dt, CU_SLOT_WEIGHT, err);
    if (!w) return sdc_err_wrap(err, "linear_backward: weight");
    float alpha = 1.0f, beta = 0.0f;
    cudaDataType_t ty = cu_blas_type(dt);
    /* Column-major view: dxᵀ [K, M] = (w row-major [N, K] = column-major
     * [K, N]) · (dyᵀ [N, M]). */
    return cu_check_blas(cublasGemmEx(cu_impl(be)->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)k, (int)m,
                                      (int)n, &alpha, w, ty, (int)k, dy->data, ty, (int)n, &beta,
                                      op->dst->data, ty, (int)k, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT),
                         err, "linear_backward (cublasGemmEx)");
}
