/* convert.cu — dtype conversion between F32, F16 and BF16 on the device
 * (through F32: exact for the widening, round to nearest even for the
 * narrowing, NaN/Inf kept): the convert op and the weight conversion that
 * the GEMM ops use when a weight's dtype differs from the activations'. */
#include "cuda_common.cuh"

/* x [n] -> y [n] */
template <typename X, typename Y> __global__ void convert_kernel(const X *x, Y *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = cu_num<Y>::store(cu_num<X>::load(x[i]));
}

template <typename X>
static sdc_status convert_from(const X *x, void *y, sdc_dtype yt, int64_t n, sdc_err *err) {
    CU_DISPATCH(yt, Y, "convert", err,
                convert_kernel<X, Y><<<cu_blocks(n, 256), 256, 0, cu_stream>>>(x, (Y *)y, n));
    return cu_check_launch(err, "convert");
}

sdc_status cu_convert_raw(const void *x, sdc_dtype xt, void *y, sdc_dtype yt, int64_t n,
                          sdc_err *err) {
    if (n <= 0) return SDC_OK;
    if (xt == yt)
        return cu_check(cudaMemcpyAsync(y, x, (size_t)n * sdc_dtype_size(xt),
                                        cudaMemcpyDeviceToDevice, cu_stream),
                        err, "convert (cudaMemcpyAsync)");
    CU_DISPATCH(xt, X, "convert", err, return convert_from((const X *)x, y, yt, n, err));
    return SDC_OK;
}

/* x [...] -> y [...] of dst's dtype */
sdc_status sdc_cuda_convert(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0];
    return cu_convert_raw(x->data, x->dtype, op->dst->data, op->dst->dtype, sdc_tensor_numel(x),
                          err);
}
