/* activation_backward.cu — adjoints of the elementwise activations in F32
 * math: dx = dy·f'(x) for exact GELU, CLIP's quick_gelu and SiLU, and
 * GEGLU's two halves. Memory-bound: one grid-stride pass. */
#include "cuda_common.cuh"

enum act_kind { ACT_GELU, ACT_QUICK_GELU, ACT_SILU };

/* Φ(x) + x·φ(x) */
__device__ __forceinline__ float gelu_grad_f(float x) {
    return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) +
           x * 0.3989422804014327f * expf(-0.5f * x * x);
}

/* d/dx x·σ(a·x) = σ(a·x)·(1 + a·x·(1 - σ(a·x))) */
__device__ __forceinline__ float sig_grad_f(float x, float a) {
    float s = 1.0f / (1.0f + expf(-a * x));
    return s * (1.0f + a * x * (1.0f - s));
}

/* x, dy [n] -> dx [n] */
template <typename T>
__global__ void act_back_kernel(act_kind k, const T *x, const T *dy, T *dx, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = cu_ld(x, i);
        float g = k == ACT_GELU         ? gelu_grad_f(v)
                  : k == ACT_QUICK_GELU ? sig_grad_f(v, 1.702f)
                                        : sig_grad_f(v, 1.0f);
        cu_st(dx, i, cu_ld(dy, i) * g);
    }
}

/* x [rows, 2F], dy [rows, F] -> dx [rows, 2F]; i runs over dy */
template <typename T>
__global__ void geglu_back_kernel(const T *x, const T *dy, T *dx, int n, int f) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int r = i / f, j = i - r * f;
        int64_t at = (int64_t)r * 2 * f;
        float v = cu_ld(x, at + j), g = cu_ld(x, at + f + j), d = cu_ld(dy, i);
        cu_st(dx, at + j, d * 0.5f * g * (1.0f + erff(g * 0.70710678118654752f)));
        cu_st(dx, at + f + j, d * v * gelu_grad_f(g));
    }
}

static sdc_status run_act(const sdc_op *op, act_kind k, const char *name, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    int64_t n = sdc_tensor_numel(x);
    if (n == 0) return SDC_OK;
    CU_DISPATCH(x->dtype, T, name, err,
                act_kind kk = k;
                act_back_kernel<T><<<cu_blocks(n, 256), 256>>>(kk, (const T *)x->data,
                                                               (const T *)op->src[1]->data,
                                                               (T *)op->dst->data, n));
    return cu_check_launch(err, name);
}

/* x, dy [...] -> dx like x */
sdc_status sdc_cuda_gelu_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    return run_act(op, ACT_GELU, "gelu_backward", err);
}

/* x, dy [...] -> dx like x */
sdc_status sdc_cuda_quick_gelu_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    return run_act(op, ACT_QUICK_GELU, "quick_gelu_backward", err);
}

/* x, dy [...] -> dx like x */
sdc_status sdc_cuda_silu_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    return run_act(op, ACT_SILU, "silu_backward", err);
}

/* x [..., 2F], dy [..., F] -> dx [..., 2F] */
sdc_status sdc_cuda_geglu_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0];
    int64_t f = x->shape[x->ndim - 1] / 2, n = sdc_tensor_numel(op->src[1]);
    if (n == 0 || f == 0) return SDC_OK;
    if (cu_check_elems(sdc_tensor_numel(x), "geglu_backward", err)) return err->code;
    CU_DISPATCH(x->dtype, T, "geglu_backward", err,
                geglu_back_kernel<T><<<cu_blocks(n, 256), 256>>>(
                    (const T *)x->data, (const T *)op->src[1]->data, (T *)op->dst->data, (int)n,
                    (int)f));
    return cu_check_launch(err, "geglu_backward");
}
