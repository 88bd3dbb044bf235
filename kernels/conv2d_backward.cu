/* conv2d_backward.cu — the adjoint of conv2d with respect to its input.
 * Stride 1 with every pad below the kernel size (all of SD's stride-1
 * convs): a forward conv2d (conv2d.cu, either algorithm) of dy with the
 * kernel flipped and its channel axes swapped, w'[c, o, u, v] =
 * w[o, c, KH-1-u, KW-1-v], padded KH-1-pad; w' is written in the activation
 * dtype (the weight converted as it is permuted) into its own scratch slot.
 * Otherwise (stride-2 downsamplers): per image and tile of output pixels,
 * columns dcol [C·KH·KW, t] = wᵀ · dy by cublasGemmEx, then col2im as a
 * gather: each input pixel sums, in F32, the column entries of the taps that
 * read it — no atomics, the same bits every run. */
#include "cuda_common.cuh"

#include <limits.h>

#define COL_BUDGET ((int64_t)32 << 20) /* elements of the column buffer, as conv2d.cu */

/* w [OC, C, kk] (any float dtype) -> wf [C, OC, kk] (T), taps reversed */
template <typename T>
__global__ void flip_kernel(const void *w, int wdt, T *wf, int n, int oc, int c, int kk) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int t = i % kk, r = i / kk, o = r % oc, ch = r / oc;
        cu_st(wf, i, cu_ld_any(w, wdt, ((int64_t)o * c + ch) * kk + (kk - 1 - t)));
    }
}

static sdc_status as_forward_conv(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *dy = op->src[0], *w = op->src[1];
    sdc_dtype dt = op->dst->dtype;
    int64_t oc = w->shape[0], c = w->shape[1], kh = w->shape[2], kw = w->shape[3];
    int64_t n = sdc_tensor_numel(w);
    if (cu_check_elems(n, "conv2d_backward (weight)", err)) return err->code;
    void *wf = cu_scratch(be, CU_SLOT_FLIP, (size_t)n * sdc_dtype_size(dt), err);
    if (!wf) return sdc_err_wrap(err, "conv2d_backward: flipped kernel");
    CU_DISPATCH(dt, T, "conv2d_backward", err,
                flip_kernel<T><<<cu_blocks(n, 256), 256>>>(w->data, (int)w->dtype, (T *)wf,
                                                           (int)n, (int)oc, (int)c,
                                                           (int)(kh * kw)));
    sdc_status s = cu_check_launch(err, "conv2d_backward (flip)");
    if (s) return s;
    sdc_tensor wt;
    const int64_t shape[4] = {c, oc, kh, kw};
    if ((s = sdc_tensor_init(&wt, dt, 4, shape, wf, err))) return s;
    wt.device = SDC_DEVICE_CUDA;
    sdc_op fwd = {};
    fwd.kind = SDC_OP_CONV2D;
    fwd.src[0] = dy;
    fwd.src[1] = &wt;
    fwd.dst = op->dst;
    fwd.p.conv2d.stride = 1;
    fwd.p.conv2d.pad_top = (int)kh - 1 - op->p.conv2d.pad_top;
    fwd.p.conv2d.pad_bottom = (int)kh - 1 - op->p.conv2d.pad_bottom;
    fwd.p.conv2d.pad_left = (int)kw - 1 - op->p.conv2d.pad_left;
    fwd.p.conv2d.pad_right = (int)kw - 1 - op->p.conv2d.pad_right;
    return sdc_cuda_conv2d(be, &fwd, err);
}

typedef struct col2im_geom {
    int c, h, w, oh, ow, kh, kw, s, pt, pl;
} col2im_geom;

/* dx [C, H, W] (one image) += the columns col [K, t] of output pixels
 * [p0, p0 + t): dx[c, iy, ix] gathers col[(c, u, v), p] over the taps with
 * iy = oy·s + u - pt, ix = ox·s + v - pl, p = oy·OW + ox in the tile. */
template <typename T>
__global__ void col2im_kernel(const T *col, T *dx, int n, int t, int p0, bool first,
                              col2im_geom g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int ix = i % g.w, r = i / g.w, iy = r % g.h, ch = r / g.h;
        float acc = first ? 0.0f : cu_ld(dx, i);
        for (int u = 0; u < g.kh; u++) {
            int ty = iy + g.pt - u;
            if (ty < 0 || ty % g.s) continue;
            int oy = ty / g.s;
            if (oy >= g.oh) continue;
            for (int v = 0; v < g.kw; v++) {
                int tx = ix + g.pl - v;
                if (tx < 0 || tx % g.s) continue;
                int ox = tx / g.s;
                int p = oy * g.ow + ox - p0;
                if (ox >= g.ow || p < 0 || p >= t) continue;
                acc += cu_ld(col, ((int64_t)(ch * g.kh + u) * g.kw + v) * t + p);
            }
        }
        cu_st(dx, i, acc);
    }
}

static sdc_status col2im_path(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *dy = op->src[0], *wt = op->src[1], *dx = op->dst;
    sdc_dtype dt = dx->dtype;
    col2im_geom g = {(int)dx->shape[1], (int)dx->shape[2], (int)dx->shape[3], (int)dy->shape[2],
                     (int)dy->shape[3], (int)wt->shape[2], (int)wt->shape[3],
                     op->p.conv2d.stride, op->p.conv2d.pad_top, op->p.conv2d.pad_left};
    int64_t nimg = dx->shape[0], oc = dy->shape[1], k = (int64_t)g.c * g.kh * g.kw,
            p = (int64_t)g.oh * g.ow, x1 = (int64_t)g.c * g.h * g.w;
    if (cu_check_elems(x1, "conv2d_backward (one image)", err) ||
        cu_check_elems(oc * p, "conv2d_backward (one image)", err))
        return err->code;
    if (k > INT_MAX || oc > INT_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "conv2d_backward: exceeds cuBLAS's int sizes");
    const void *w = cu_as_dtype(be, wt, dt, CU_SLOT_WEIGHT, err);
    if (!w) return sdc_err_wrap(err, "conv2d_backward: weight");
    int64_t t = COL_BUDGET / k;
    t = t < 1 ? 1 : t > p ? p : t;
    size_t es = sdc_dtype_size(dt);
    void *col = cu_scratch(be, CU_SLOT_COL, (size_t)(k * t) * es, err);
    if (!col) return sdc_err_wrap(err, "conv2d_backward: column buffer");
    cublasHandle_t h = cu_impl(be)->blas;
    cudaDataType_t ty = cu_blas_type(dt);
    float alpha = 1.0f, beta = 0.0f;
    sdc_status s;
    for (int64_t n = 0; n < nimg; n++) {
        const char *dyn = (const char *)dy->data + (size_t)(n * oc * p) * es;
        char *dxn = (char *)dx->data + (size_t)(n * x1) * es;
        for (int64_t p0 = 0; p0 < p; p0 += t) {
            int64_t tt = p - p0 < t ? p - p0 : t;
            /* Column-major: dcolᵀ [t, K] = (dy[n] tile: [t, OC], ld P) ·
             * (w row-major [OC, K] = column-major [K, OC], transposed). */
            s = cu_check_blas(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)tt, (int)k, (int)oc,
                                           &alpha, dyn + (size_t)p0 * es, ty, (int)p, w, ty,
                                           (int)k, &beta, col, ty, (int)tt, CUBLAS_COMPUTE_32F,
                                           CUBLAS_GEMM_DEFAULT),
                              err, "conv2d_backward (cublasGemmEx)");
            if (s) return s;
            bool first = p0 == 0;
            CU_DISPATCH(dt, T, "conv2d_backward", err,
                        col2im_kernel<T><<<cu_blocks(x1, 256), 256>>>(
                            (const T *)col, (T *)dxn, (int)x1, (int)tt, (int)p0, first, g));
            if ((s = cu_check_launch(err, "conv2d_backward (col2im)"))) return s;
        }
    }
    return SDC_OK;
}

/* dy [N, OC, OH, OW], w [OC, C, KH, KW] -> dx [N, C, H, W] */
sdc_status sdc_cuda_conv2d_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *w = op->src[1], *dx = op->dst;
    if (sdc_tensor_numel(dx) == 0) return SDC_OK;
    if (sdc_tensor_numel(op->src[0]) == 0 || w->shape[0] == 0) /* nothing flows back */
        return cu_check(cudaMemset(dx->data, 0, sdc_tensor_nbytes(dx)), err,
                        "conv2d_backward (cudaMemset)");
    int64_t kh = w->shape[2], kw = w->shape[3];
    if (op->p.conv2d.stride == 1 && op->p.conv2d.pad_top < kh && op->p.conv2d.pad_bottom < kh &&
        op->p.conv2d.pad_left < kw && op->p.conv2d.pad_right < kw)
        return as_forward_conv(be, op, err);
    return col2im_path(be, op, err);
}
