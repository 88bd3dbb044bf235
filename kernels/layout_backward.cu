/* layout_backward.cu — adjoints of data movement: nearest 2x upsampling's
 * (each input pixel gathers the up-to-2x2 pixels it was copied to, summed in
 * F32) and slice along dim 1 (concat's adjoint; a copy, never converted). */
#include "cuda_common.cuh"

/* dy [P, OH, OW] -> dx [P, H, W], H = (OH+1)/2, W = (OW+1)/2 */
template <typename T>
__global__ void upsample_back_kernel(const T *dy, T *dx, int n, int h, int w, int oh, int ow) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int t = i / w, col = i - t * w, p = t / h, row = t - p * h;
        const T *y0 = dy + ((int64_t)p * oh + 2 * row) * ow + 2 * col;
        bool down = 2 * row + 1 < oh, right = 2 * col + 1 < ow;
        float s = cu_ld(y0, 0) + (right ? cu_ld(y0, 1) : 0.0f);
        if (down) s += cu_ld(y0, ow) + (right ? cu_ld(y0, ow + 1) : 0.0f);
        cu_st(dx, i, s);
    }
}

/* dy [N, C, OH, OW] -> dx [N, C, (OH+1)/2, (OW+1)/2] */
sdc_status sdc_cuda_upsample2x_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *dy = op->src[0], *dx = op->dst;
    int64_t n = sdc_tensor_numel(dx);
    if (n == 0) return SDC_OK;
    if (cu_check_elems(sdc_tensor_numel(dy), "upsample2x_backward", err)) return err->code;
    CU_DISPATCH(dy->dtype, T, "upsample2x_backward", err,
                upsample_back_kernel<T><<<cu_blocks(n, 256), 256>>>(
                    (const T *)dy->data, (T *)dx->data, (int)n, (int)dx->shape[2],
                    (int)dx->shape[3], (int)dy->shape[2], (int)dy->shape[3]));
    return cu_check_launch(err, "upsample2x_backward");
}

/* x [outer, lx] -> y [outer, ly], y[o, r] = x[o, off + r] */
template <typename T>
__global__ void slice_kernel(const T *x, T *y, int n, int lx, int ly, int off) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / ly, r = i - o * ly;
        y[i] = x[(int64_t)o * lx + off + r];
    }
}

/* x [N, C, ...] -> y [N, len, ...] = x[:, start:start+len]; rank 1 along dim 0 */
sdc_status sdc_cuda_slice(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0];
    int axis = x->ndim == 1 ? 0 : 1;
    int64_t inner = 1;
    for (int d = axis + 1; d < x->ndim; d++) inner *= x->shape[d];
    int64_t n = sdc_tensor_numel(op->dst);
    if (n == 0) return SDC_OK;
    if (cu_check_elems(sdc_tensor_numel(x), "slice", err)) return err->code;
    CU_DISPATCH(x->dtype, T, "slice", err,
                slice_kernel<T><<<cu_blocks(n, 256), 256>>>(
                    (const T *)x->data, (T *)op->dst->data, (int)n, (int)(x->shape[axis] * inner),
                    (int)(op->p.slice.len * inner), (int)(op->p.slice.start * inner)));
    return cu_check_launch(err, "slice");
}
