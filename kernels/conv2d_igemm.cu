/* conv2d_igemm.cu — 2-D convolution as an implicit GEMM on tensor cores
 * (WMMA 16x16x16, F16/BF16 in, F32 accumulate) with the bias fused into the
 * store: no column buffer. GEMM view over the whole batch:
 *   Y [OC, N·OH·OW] = W [OC, K] · X̂ [K, N·OH·OW] + b,  K = C·KH·KW,
 * where column q = (n, oy, ox) of X̂ gathers x[n, c, oy·s+u-pt, ox·s+v-pl]
 * (zero in the padding). A block computes a 64 (channels) x 64 (pixels) tile
 * with 4 warps of 32x32, stepping K by 32 through shared memory. A first,
 * plain version: no cp.async pipelining or register-blocked gathers yet. */
#include "cuda_common.cuh"

#include <mma.h>

#define IG_BM 64
#define IG_BN 64
#define IG_BK 32
#define IG_THREADS 128

/* All within 32 bits (checked by the caller). */
typedef struct ig_geom {
    int c, h, w, oc, oh, ow, kh, kw, s, pt, pl;
    int k;  /* C·KH·KW */
    int p;  /* OH·OW */
    int np; /* N·OH·OW */
} ig_geom;

/* x [N, C, H, W], w [OC, K] (dtype wdt), bias [OC] (dtype bdt) or NULL -> y [N, OC, OH, OW] */
template <typename T>
__global__ void __launch_bounds__(IG_THREADS)
    conv_igemm_kernel(const T *x, const void *w, int wdt, const void *bias, int bdt, T *y,
                      ig_geom g) {
    using namespace nvcuda;
    __shared__ __align__(128) T As[IG_BM][IG_BK + 8];    /* W tile [channel][k] */
    __shared__ __align__(128) T Bs[IG_BK][IG_BN + 8];    /* X̂ tile [k][pixel] */
    __shared__ __align__(128) float Cs[IG_BM][IG_BN + 4]; /* the result, for the epilogue */
    const int tid = threadIdx.x, warp = tid >> 5, wm = warp >> 1, wn = warp & 1;
    const int oc0 = blockIdx.y * IG_BM, q0 = blockIdx.x * IG_BN;
    const T zero = cu_num<T>::store(0.0f);

    /* Each thread gathers one pixel column of X̂ (rows kb, kb + 2, ...). */
    const int j = tid & (IG_BN - 1), kb = tid / IG_BN;
    const int q = q0 + j;
    const bool qvalid = q < g.np;
    const int img = qvalid ? q / g.p : 0, pix = qvalid ? q - img * g.p : 0;
    const int oy = pix / g.ow, ox = pix - oy * g.ow;
    const T *xn = x + (int64_t)img * g.c * g.h * g.w;
    const int iy0 = oy * g.s - g.pt, ix0 = ox * g.s - g.pl, khw = g.kh * g.kw;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int i = 0; i < 2; i++)
        for (int jj = 0; jj < 2; jj++) wmma::fill_fragment(acc[i][jj], 0.0f);

    for (int k0 = 0; k0 < g.k; k0 += IG_BK) {
        /* W tile: thread column kc, rows r = tid/32 + 4i; weights widened/narrowed to T. */
        for (int r = tid >> 5; r < IG_BM; r += IG_THREADS / 32) {
            int oc = oc0 + r, kc = k0 + (tid & 31);
            As[r][tid & 31] = oc < g.oc && kc < g.k ? cu_num<T>::store(cu_ld_any(w, wdt, oc * g.k + kc))
                                                    : zero;
        }
        for (int kr = kb; kr < IG_BK; kr += IG_THREADS / IG_BN) {
            int kg = k0 + kr;
            T v = zero;
            if (qvalid && kg < g.k) {
                int ch = kg / khw, rem = kg - ch * khw, u = rem / g.kw, vv = rem - u * g.kw;
                int iy = iy0 + u, ix = ix0 + vv;
                if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) v = xn[(ch * g.h + iy) * g.w + ix];
            }
            Bs[kr][j] = v;
        }
        __syncthreads();
        for (int ks = 0; ks < IG_BK; ks += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b[2];
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], &As[wm * 32 + i * 16][ks], IG_BK + 8);
            for (int jj = 0; jj < 2; jj++)
                wmma::load_matrix_sync(b[jj], &Bs[ks][wn * 32 + jj * 16], IG_BN + 8);
            for (int i = 0; i < 2; i++)
                for (int jj = 0; jj < 2; jj++) wmma::mma_sync(acc[i][jj], a[i], b[jj], acc[i][jj]);
        }
        __syncthreads(); /* the tiles are overwritten next step */
    }
    for (int i = 0; i < 2; i++)
        for (int jj = 0; jj < 2; jj++)
            wmma::store_matrix_sync(&Cs[wm * 32 + i * 16][wn * 32 + jj * 16], acc[i][jj], IG_BN + 4,
                                    wmma::mem_row_major);
    __syncthreads();
    /* Epilogue: + bias, to T; consecutive threads write consecutive pixels. */
    for (int idx = tid; idx < IG_BM * IG_BN; idx += IG_THREADS) {
        int r = idx / IG_BN, cidx = idx - r * IG_BN;
        int oc = oc0 + r, qq = q0 + cidx;
        if (oc >= g.oc || qq >= g.np) continue;
        int n = qq / g.p, pp = qq - n * g.p;
        float v = Cs[r][cidx] + (bias ? cu_ld_any(bias, bdt, oc) : 0.0f);
        cu_st(y, ((int64_t)n * g.oc + oc) * g.p + pp, v);
    }
}

/* x [N, C, H, W] (F16/BF16), w [OC, C, KH, KW], b [OC] or NULL -> y [N, OC, OH, OW] */
sdc_status cu_conv2d_implicit(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0], *wt = op->src[1], *bt = op->src[2], *y = op->dst;
    if (sdc_tensor_numel(y) == 0) return SDC_OK;
    if (cu_check_elems(sdc_tensor_numel(x), "conv2d (implicit GEMM)", err) ||
        cu_check_elems(sdc_tensor_numel(y), "conv2d (implicit GEMM)", err) ||
        cu_check_elems(sdc_tensor_numel(wt), "conv2d (implicit GEMM)", err))
        return err->code;
    ig_geom g = {(int)x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)y->shape[1],
                 (int)y->shape[2], (int)y->shape[3], (int)wt->shape[2], (int)wt->shape[3],
                 op->p.conv2d.stride, op->p.conv2d.pad_top, op->p.conv2d.pad_left, 0, 0, 0};
    g.k = g.c * g.kh * g.kw;
    g.p = g.oh * g.ow;
    g.np = (int)x->shape[0] * g.p;
    int64_t gx = (g.np + IG_BN - 1) / IG_BN, gy = (g.oc + IG_BM - 1) / IG_BM;
    if (gx > INT32_MAX || gy > 65535)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "conv2d (implicit GEMM): grid too large");
    dim3 grid((unsigned)gx, (unsigned)gy);
    const void *bd = bt ? bt->data : NULL;
    int bdt = bt ? (int)bt->dtype : (int)SDC_F32;
    switch (y->dtype) {
    case SDC_F16:
        conv_igemm_kernel<__half><<<grid, IG_THREADS, 0, cu_stream>>>((const __half *)x->data, wt->data,
                                                        (int)wt->dtype, bd, bdt,
                                                        (__half *)y->data, g);
        break;
    case SDC_BF16:
        conv_igemm_kernel<__nv_bfloat16><<<grid, IG_THREADS, 0, cu_stream>>>(
            (const __nv_bfloat16 *)x->data, wt->data, (int)wt->dtype, bd, bdt,
            (__nv_bfloat16 *)y->data, g);
        break;
    default:
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "conv2d (implicit GEMM): activations must be F16 or BF16, not %s",
                           sdc_dtype_name(y->dtype));
    }
    return cu_check_launch(err, "conv2d (implicit GEMM)");
}
