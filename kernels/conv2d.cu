/* conv2d.cu — 2-D convolution as im2col + cublasGemmEx (F32 accumulation):
 *   Y[n] [OC, OH·OW] = W [OC, C·KH·KW] · col [C·KH·KW, OH·OW] + b
 * 1x1 stride-1 unpadded convs need no im2col (X[n] already is [C, H·W]) and
 * run as one strided-batched GEMM over the images. Otherwise the columns of
 * one image are built in tiles of at most COL_BUDGET elements (a 512² VAE
 * layer would need 600 MB at once). With SDC_CUDA_CONV_IMPLICIT and F16/BF16
 * activations the implicit GEMM of conv2d_igemm.cu runs instead. */
#include "cuda_common.cuh"

#include <limits.h>

#define COL_BUDGET ((int64_t)32 << 20) /* elements of the column buffer */

typedef struct im2col_geom {
    int c, h, w, oh, ow, kh, kw, s, pt, pl;
} im2col_geom;

/* x [C, H, W] (one image) -> col [K, t]: output pixels [p0, p0 + t). Block
 * row y takes col rows kr = y, y + gridDim.y, ...: (c, u, v) is worked out
 * once per row, leaving one division per element. */
template <typename T>
__global__ void im2col_kernel(const T *x, T *col, int k, int t, int p0, im2col_geom g) {
    const T zero = cu_num<T>::store(0.0f);
    for (int kr = blockIdx.y; kr < k; kr += gridDim.y) {
        int ch = kr / (g.kh * g.kw), rem = kr - ch * g.kh * g.kw;
        int u = rem / g.kw, v = rem - u * g.kw;
        const T *xc = x + (int64_t)ch * g.h * g.w;
        T *dst = col + (int64_t)kr * t;
        for (int pp = blockIdx.x * blockDim.x + threadIdx.x; pp < t; pp += gridDim.x * blockDim.x) {
            int p = p0 + pp, oy = p / g.ow, ox = p - oy * g.ow;
            int iy = oy * g.s + u - g.pt, ix = ox * g.s + v - g.pl;
            dst[pp] = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w ? xc[iy * g.w + ix] : zero;
        }
    }
}

/* x [N, C, H, W], w [OC, C, KH, KW], b [OC] or NULL -> y [N, OC, OH, OW] */
sdc_status sdc_cuda_conv2d(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0], *wt = op->src[1], *bt = op->src[2], *y = op->dst;
    sdc_dtype dt = y->dtype;
    if (cu_impl(be)->conv == SDC_CUDA_CONV_IMPLICIT && (dt == SDC_F16 || dt == SDC_BF16))
        return cu_conv2d_implicit(be, op, err);
    if (sdc_tensor_numel(y) == 0) return SDC_OK;
    /* Per image and per weight within the kernels' 32-bit indexing. */
    int64_t x1 = sdc_tensor_numel(x) / x->shape[0], y1 = sdc_tensor_numel(y) / y->shape[0];
    if (cu_check_elems(x1 > y1 ? x1 : y1, "conv2d (one image)", err) ||
        cu_check_elems(sdc_tensor_numel(wt), "conv2d (weight)", err))
        return err->code;
    im2col_geom g = {(int)x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)y->shape[2],
                     (int)y->shape[3], (int)wt->shape[2], (int)wt->shape[3],
                     op->p.conv2d.stride, op->p.conv2d.pad_top, op->p.conv2d.pad_left};
    int64_t nimg = x->shape[0], oc = y->shape[1], k = (int64_t)g.c * g.kh * g.kw,
            p = (int64_t)g.oh * g.ow;
    if (nimg > INT_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "conv2d: batch exceeds cuBLAS's int range");
    sdc_status s;
    if (bt || k == 0) {
        if ((s = cu_fill_bias(y->data, dt, bt, nimg, oc, p, err))) return sdc_err_wrap(err, "conv2d");
        if (k == 0) return SDC_OK;
    }
    const void *w = cu_as_dtype(be, wt, dt, CU_SLOT_WEIGHT, err);
    if (!w) return sdc_err_wrap(err, "conv2d: weight");
    cublasHandle_t h = cu_impl(be)->blas;
    cudaDataType_t ty = cu_blas_type(dt);
    size_t es = sdc_dtype_size(dt);
    float alpha = 1.0f, beta = bt ? 1.0f : 0.0f;
    /* Column-major view per image: Yᵀ [P, OC] = colᵀ [P, K] · Wᵀ [K, OC]. */
    if (g.kh == 1 && g.kw == 1 && g.s == 1 && g.pt == 0 && g.pl == 0 && g.oh == g.h &&
        g.ow == g.w)
        return cu_check_blas(
            cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)p, (int)oc, (int)k, &alpha,
                                       x->data, ty, (int)p, (long long)(k * p), w, ty, (int)k, 0,
                                       &beta, y->data, ty, (int)p, (long long)(oc * p), (int)nimg,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            err, "conv2d 1x1 (cublasGemmStridedBatchedEx)");
    int64_t t = COL_BUDGET / k;
    t = t < 1 ? 1 : t > p ? p : t;
    void *col = cu_scratch(be, CU_SLOT_COL, (size_t)(k * t) * es, err);
    if (!col) return sdc_err_wrap(err, "conv2d: im2col buffer");
    for (int64_t n = 0; n < nimg; n++) {
        const char *xn = (const char *)x->data + (size_t)(n * x1) * es;
        char *yn = (char *)y->data + (size_t)(n * oc * p) * es;
        for (int64_t p0 = 0; p0 < p; p0 += t) {
            int64_t tt = p - p0 < t ? p - p0 : t;
            dim3 grid(cu_blocks(tt, 256), (unsigned)(k < 65535 ? k : 65535));
            CU_DISPATCH(dt, T, "conv2d", err,
                        im2col_kernel<T><<<grid, 256, 0, cu_stream>>>((const T *)xn, (T *)col, (int)k, (int)tt,
                                                        (int)p0, g));
            if ((s = cu_check_launch(err, "conv2d (im2col)"))) return s;
            s = cu_check_blas(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)tt, (int)oc, (int)k,
                                           &alpha, col, ty, (int)tt, w, ty, (int)k, &beta,
                                           yn + (size_t)p0 * es, ty, (int)p, CUBLAS_COMPUTE_32F,
                                           CUBLAS_GEMM_DEFAULT),
                              err, "conv2d (cublasGemmEx)");
            if (s) return s;
        }
    }
    return SDC_OK;
}
