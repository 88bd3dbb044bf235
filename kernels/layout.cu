/* layout.cu — data movement: nearest 2x upsampling to out_h x out_w, concat
 * along dim 1 (dim 0 for rank 1), and batched transpose [B, M, N] -> [B, N, M]
 * through 32x32 shared-memory tiles. Values are copied, never converted. */
#include "cuda_common.cuh"

/* x [P, H, W] -> y [P, OH, OW], y[p, i, j] = x[p, i/2, j/2] */
template <typename T>
__global__ void upsample_kernel(const T *x, T *y, int n, int h, int w, int oh, int ow) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int t = i / ow, col = i - t * ow, p = t / oh, row = t - p * oh;
        y[i] = x[(p * h + row / 2) * w + col / 2];
    }
}

/* x [N, C, H, W] -> y [N, C, OH, OW] */
sdc_status sdc_cuda_upsample2x(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0], *y = op->dst;
    int64_t n = sdc_tensor_numel(y);
    if (n == 0) return SDC_OK;
    if (cu_check_elems(n, "upsample2x", err)) return err->code;
    CU_DISPATCH(x->dtype, T, "upsample2x", err,
                upsample_kernel<T><<<cu_blocks(n, 256), 256, 0, cu_stream>>>(
                    (const T *)x->data, (T *)y->data, (int)n, (int)x->shape[2],
                    (int)x->shape[3], (int)y->shape[2], (int)y->shape[3]));
    return cu_check_launch(err, "upsample2x");
}

/* a [outer, la], b [outer, lb] -> y [outer, la + lb] */
template <typename T>
__global__ void concat_kernel(const T *a, const T *b, T *y, int n, int la, int lb) {
    int l = la + lb;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / l, r = i - o * l;
        y[i] = r < la ? a[o * la + r] : b[o * lb + (r - la)];
    }
}

/* a [N, Ca, ...], b [N, Cb, ...] -> y [N, Ca+Cb, ...]; rank 1: along dim 0 */
sdc_status sdc_cuda_concat(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    int64_t inner = 1;
    for (int d = 2; d < a->ndim; d++) inner *= a->shape[d];
    int64_t la = (a->ndim == 1 ? a->shape[0] : a->shape[1]) * inner;
    int64_t lb = (b->ndim == 1 ? b->shape[0] : b->shape[1]) * inner;
    int64_t n = sdc_tensor_numel(op->dst);
    if (n == 0) return SDC_OK;
    if (cu_check_elems(n, "concat", err)) return err->code;
    CU_DISPATCH(a->dtype, T, "concat", err,
                concat_kernel<T><<<cu_blocks(n, 256), 256, 0, cu_stream>>>((const T *)a->data,
                                                             (const T *)b->data,
                                                             (T *)op->dst->data, (int)n, (int)la,
                                                             (int)lb));
    return cu_check_launch(err, "concat");
}

#define TR_TILE 32
#define TR_ROWS 8 /* a block is 32 x 8 threads; each thread moves 4 elements */

/* x [B, M, N] -> y [B, N, M]; one 32x32 tile per iteration of a block.
 * The +1 column keeps the column reads of the tile free of bank conflicts. */
template <typename T>
__global__ void transpose_kernel(const T *x, T *y, int64_t m, int64_t n, int64_t mt, int64_t nt,
                                 int64_t tiles) {
    __shared__ T tile[TR_TILE][TR_TILE + 1];
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        int64_t b = t / (mt * nt), rem = t - b * mt * nt;
        int64_t i0 = rem / nt * TR_TILE, j0 = rem % nt * TR_TILE;
        const T *xb = x + b * m * n;
        T *yb = y + b * m * n;
        for (int r = threadIdx.y; r < TR_TILE; r += TR_ROWS) {
            int64_t i = i0 + r, j = j0 + threadIdx.x;
            if (i < m && j < n) tile[r][threadIdx.x] = xb[i * n + j];
        }
        __syncthreads();
        for (int r = threadIdx.y; r < TR_TILE; r += TR_ROWS) {
            int64_t j = j0 + r, i = i0 + threadIdx.x; /* y row j, column i */
            if (i < m && j < n) yb[j * m + i] = tile[threadIdx.x][r];
        }
        __syncthreads(); /* the tile is reused by the next iteration */
    }
}

/* x [B, M, N] -> y [B, N, M] */
sdc_status sdc_cuda_transpose(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0];
    int64_t bsz = x->shape[0], m = x->shape[1], n = x->shape[2];
    if (bsz == 0 || m == 0 || n == 0) return SDC_OK;
    int64_t mt = (m + TR_TILE - 1) / TR_TILE, nt = (n + TR_TILE - 1) / TR_TILE;
    int64_t tiles = bsz * mt * nt;
    unsigned grid = (unsigned)(tiles < 65535 * 32 ? tiles : 65535 * 32);
    dim3 block(TR_TILE, TR_ROWS);
    CU_DISPATCH(x->dtype, T, "transpose", err,
                transpose_kernel<T><<<grid, block, 0, cu_stream>>>((const T *)x->data, (T *)op->dst->data, m,
                                                     n, mt, nt, tiles));
    return cu_check_launch(err, "transpose");
}
