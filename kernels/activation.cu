/* activation.cu — elementwise activations in F32 math: exact (erf) GELU,
 * CLIP's quick_gelu, SiLU, and diffusers' GEGLU (value half times the GELU
 * of the gate half). Memory-bound: one grid-stride pass. */
#include "cuda_common.cuh"

enum act_kind { ACT_GELU, ACT_QUICK_GELU, ACT_SILU };

__device__ __forceinline__ float gelu_f(float x) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

/* x / (1 + exp(-a·x)): exp overflows to Inf for very negative x, giving -0. */
__device__ __forceinline__ float act_f(act_kind k, float x) {
    switch (k) {
    case ACT_GELU: return gelu_f(x);
    case ACT_QUICK_GELU: return x / (1.0f + expf(-1.702f * x));
    case ACT_SILU: break;
    }
    return x / (1.0f + expf(-x));
}

/* x [n] -> y [n] */
template <typename T> __global__ void act_kernel(act_kind k, const T *x, T *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        cu_st(y, i, act_f(k, cu_ld(x, i)));
}

/* x [rows, 2F] -> y [rows, F], y = x[:, :F]·gelu(x[:, F:]) */
template <typename T> __global__ void geglu_kernel(const T *x, T *y, int n, int f) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int r = i / f, j = i - r * f;
        const T *row = x + (int64_t)r * 2 * f;
        cu_st(y, i, cu_ld(row, j) * gelu_f(cu_ld(row, f + j)));
    }
}

static sdc_status run_act(const sdc_op *op, act_kind k, const char *name, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    int64_t n = sdc_tensor_numel(x);
    if (n == 0) return SDC_OK;
    CU_DISPATCH(x->dtype, T, name, err,
                act_kind kk = k;
                act_kernel<T><<<cu_blocks(n, 256), 256, 0, cu_stream>>>(kk, (const T *)x->data,
                                                          (T *)op->dst->data, n));
    return cu_check_launch(err, name);
}

/* x [...] -> y like x */
sdc_status sdc_cuda_gelu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    return run_act(op, ACT_GELU, "gelu", err);
}

/* x [...] -> y like x */
sdc_status sdc_cuda_quick_gelu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    return run_act(op, ACT_QUICK_GELU, "quick_gelu", err);
}

/* x [...] -> y like x */
sdc_status sdc_cuda_silu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    return run_act(op, ACT_SILU, "silu", err);
}

/* x [..., 2F] -> y [..., F] */
sdc_status sdc_cuda_geglu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0];
    int64_t f = x->shape[x->ndim - 1] / 2, n = sdc_tensor_numel(op->dst);
    if (n == 0 || f == 0) return SDC_OK;
    if (cu_check_elems(sdc_tensor_numel(x), "geglu", err)) return err->code;
    CU_DISPATCH(x->dtype, T, "geglu", err,
                geglu_kernel<T><<<cu_blocks(n, 256), 256, 0, cu_stream>>>((const T *)x->data,
                                                            (T *)op->dst->data, (int)n, (int)f));
    return cu_check_launch(err, "geglu");
}
