/* norm.cu — group_norm (optionally fused with SiLU) and layer_norm with F32
 * statistics.
 *   layer_norm: one block per row, two passes over the row (mean, then the
 *     squared deviations), then the affine output.
 *   group_norm: a group (cg channels × spatial, contiguous in NCHW) is split
 *     into chunks of GN_CHUNK elements so that a 64-group image still fills
 *     the GPU. Pass 1: each block sums x - k and (x - k)² over its chunk, k
 *     being the group's first element (a sample of the group, so the shifted
 *     sums stay well conditioned when the mean is large next to the spread).
 *     Pass 2: each block combines its group's partial sums in a fixed order
 *     (deterministic) and normalizes its chunk, with SiLU when asked. */
#include "cuda_common.cuh"

#define GN_THREADS 256
#define GN_CHUNK 8192 /* elements per block: 32 per thread */

/* x [G', len] (G' = N·groups) -> part [G', chunks] of (Σd, Σd²), d = x - x[g, 0] */
template <typename T>
__global__ void gn_stats_kernel(const T *x, int64_t len, int chunks, float2 *part) {
    __shared__ float red[32];
    int64_t g = blockIdx.x / chunks;
    int64_t ch = blockIdx.x - g * chunks;
    const T *xg = x + g * len;
    float k = cu_ld(xg, 0);
    int64_t b = ch * GN_CHUNK, e = b + GN_CHUNK < len ? b + GN_CHUNK : len;
    float s1 = 0.0f, s2 = 0.0f;
    for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) {
        float d = cu_ld(xg, i) - k;
        s1 += d;
        s2 += d * d;
    }
    s1 = cu_block_sum(s1, red);
    s2 = cu_block_sum(s2, red);
    if (threadIdx.x == 0) part[blockIdx.x] = make_float2(s1, s2);
}

/* y = (x - mean)·rstd·gamma[c] + beta[c], then SiLU if asked; channel c of
 * element i of group g is (g % groups)·cg + i / inner. */
template <typename T>
__global__ void gn_apply_kernel(const T *x, T *y, const void *gamma, int gdt, const void *beta,
                                int bdt, int64_t len, int64_t inner, int64_t cg, int groups, int chunks,
                                const float2 *part, float eps, bool silu) {
    __shared__ float stat[2];
    int64_t g = blockIdx.x / chunks;
    int64_t ch = blockIdx.x - g * chunks;
    const T *xg = x + g * len;
    T *yg = y + g * len;
    if (threadIdx.x < 32) {
        float s1 = 0.0f, s2 = 0.0f;
        for (int i = threadIdx.x; i < chunks; i += 32) {
            float2 p = part[g * chunks + i];
            s1 += p.x;
            s2 += p.y;
        }
        s1 = cu_warp_sum(s1);
        s2 = cu_warp_sum(s2);
        if (threadIdx.x == 0) {
            float n = (float)len, dm = s1 / n;
            float var = fmaxf(s2 / n - dm * dm, 0.0f); /* biased, as torch */
            stat[0] = cu_ld(xg, 0) + dm;
            stat[1] = 1.0f / sqrtf(var + eps);
        }
    }
    __syncthreads();
    float mean = stat[0], rstd = stat[1];
    int64_t c0 = (g % groups) * cg;
    int64_t b = ch * GN_CHUNK, e = b + GN_CHUNK < len ? b + GN_CHUNK : len;
    for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) {
        int64_t c = c0 + (int)i / (int)inner; /* within a group: < 2^31, checked */
        float v = (cu_ld(xg, i) - mean) * rstd * cu_ld_any(gamma, gdt, c) + cu_ld_any(beta, bdt, c);
        if (silu) v = v / (1.0f + expf(-v));
        cu_st(yg, i, v);
    }
}

/* x [N, C, ...spatial], gamma/beta [C] -> y like x */
sdc_status sdc_cuda_group_norm(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0], *gamma = op->src[1], *beta = op->src[2];
    int groups = op->p.group_norm.groups;
    int64_t inner = 1;
    for (int d = 2; d < x->ndim; d++) inner *= x->shape[d];
    int64_t cg = x->shape[1] / groups, len = cg * inner, ng = x->shape[0] * groups;
    if (ng == 0 || len == 0) return SDC_OK;
    if (cu_check_elems(len, "group_norm (one group)", err)) return err->code;
    int64_t chunks = (len + GN_CHUNK - 1) / GN_CHUNK;
    if (ng * chunks > INT32_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "group_norm: tensor too large for cuda");
    float2 *part = (float2 *)cu_scratch(be, CU_SLOT_STATS, (size_t)(ng * chunks) * sizeof(float2), err);
    if (!part) return sdc_err_wrap(err, "group_norm");
    unsigned grid = (unsigned)(ng * chunks);
    sdc_status s = SDC_OK;
    CU_DISPATCH(x->dtype, T, "group_norm", err,
                gn_stats_kernel<T><<<grid, GN_THREADS, 0, cu_stream>>>((const T *)x->data, len, (int)chunks, part);
                if ((s = cu_check_launch(err, "group_norm (statistics)"))) return s;
                gn_apply_kernel<T><<<grid, GN_THREADS, 0, cu_stream>>>(
                    (const T *)x->data, (T *)op->dst->data, gamma->data, (int)gamma->dtype,
                    beta->data, (int)beta->dtype, len, inner, cg, groups, (int)chunks, part,
                    op->p.group_norm.eps, op->p.group_norm.silu));
    return cu_check_launch(err, "group_norm");
}

/* x [rows, c] -> y [rows, c]; one block per row */
template <typename T>
__global__ void ln_kernel(const T *x, T *y, const void *gamma, int gdt, const void *beta,
                          int bdt, int64_t rows, int64_t c, float eps) {
    __shared__ float red[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * c;
        T *yr = y + r * c;
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += cu_ld(xr, j);
        float mean = cu_block_sum(s, red) / (float)c;
        float q = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            float d = cu_ld(xr, j) - mean;
            q += d * d;
        }
        float rstd = 1.0f / sqrtf(cu_block_sum(q, red) / (float)c + eps);
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            cu_st(yr, j, (cu_ld(xr, j) - mean) * rstd * cu_ld_any(gamma, gdt, j) +
                             cu_ld_any(beta, bdt, j));
    }
}

/* x [..., C], gamma/beta [C] -> y like x */
sdc_status sdc_cuda_layer_norm(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0], *gamma = op->src[1], *beta = op->src[2];
    int64_t c = x->shape[x->ndim - 1], n = sdc_tensor_numel(x);
    if (c == 0 || n == 0) return SDC_OK;
    int64_t rows = n / c;
    int threads = c <= 256 ? 64 : c <= 1024 ? 128 : 256;
    unsigned grid = (unsigned)(rows < 65535 * 32 ? rows : 65535 * 32);
    CU_DISPATCH(x->dtype, T, "layer_norm", err,
                ln_kernel<T><<<grid, threads, 0, cu_stream>>>((const T *)x->data, (T *)op->dst->data,
                                                gamma->data, (int)gamma->dtype, beta->data,
                                                (int)beta->dtype, rows, c, op->p.layer_norm.eps));
    return cu_check_launch(err, "layer_norm");
}
