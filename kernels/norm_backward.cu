/* norm_backward.cu — adjoints of group_norm (+SiLU) and layer_norm, F32 math:
 * with x̂ = (x - mean)·rstd and g = dy·gamma (times silu'(y), y = x̂·gamma +
 * beta recomputed), dx = rstd·(g - mean(g) - x̂·mean(g·x̂)).
 *   group_norm: chunks of GN_CHUNK elements of a group, as norm.cu: pass 1
 *     the shifted sums of x (the forward's statistics), pass 2 the sums of g
 *     and g·x̂, pass 3 dx; partial sums are combined in a fixed order.
 *   layer_norm: one block per row, the same three sums over the row. */
#include "cuda_common.cuh"

#define GN_THREADS 256
#define GN_CHUNK 8192 /* elements per block, as norm.cu */

/* g = dy·gamma, times silu'(x̂·gamma + beta) with silu */
__device__ __forceinline__ float norm_grad_in(float dy, float xh, float gm, float bt, bool silu) {
    if (silu) {
        float y = xh * gm + bt, s = 1.0f / (1.0f + expf(-y));
        dy *= s * (1.0f + y * (1.0f - s));
    }
    return dy * gm;
}

/* Combines a group's chunk sums part[g·chunks ..] in a fixed order (the
 * first warp); every thread gets (a, b) = the two totals. */
__device__ __forceinline__ float2 combine(const float2 *part, int64_t g, int chunks, float2 *sh) {
    if (threadIdx.x < 32) {
        float a = 0.0f, b = 0.0f;
        for (int i = threadIdx.x; i < chunks; i += 32) {
            float2 p = part[g * chunks + i];
            a += p.x;
            b += p.y;
        }
        a = cu_warp_sum(a);
        b = cu_warp_sum(b);
        if (threadIdx.x == 0) *sh = make_float2(a, b);
    }
    __syncthreads();
    return *sh;
}

/* Pass 1: x [G', len] -> part [G', chunks] of (Σd, Σd²), d = x - x[g, 0] */
template <typename T>
__global__ void gnb_stats_kernel(const T *x, int64_t len, int chunks, float2 *part) {
    __shared__ float red[32];
    int64_t g = blockIdx.x / chunks, ch = blockIdx.x - g * chunks;
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

typedef struct gnb_args {
    const void *gamma, *beta;
    int gdt, bdt;
    int64_t len, inner, cg;
    int groups, chunks;
    float eps;
    bool silu;
} gnb_args;

/* Pass 2 (final false): part2 [G', chunks] of (Σg, Σg·x̂) per chunk.
 * Pass 3 (final): dx = rstd·(g - Σg/n - x̂·Σg·x̂/n), g recomputed. */
template <typename T>
__global__ void gnb_grad_kernel(const T *x, const T *dy, T *dx, const float2 *part,
                                float2 *part2, gnb_args a, bool final) {
    __shared__ float red[32];
    __shared__ float2 sh[2];
    int64_t g = blockIdx.x / a.chunks, ch = blockIdx.x - g * a.chunks;
    const T *xg = x + g * a.len, *yg = dy + g * a.len;
    float2 st = combine(part, g, a.chunks, &sh[0]);
    float n = (float)a.len, dm = st.x / n;
    float mean = cu_ld(xg, 0) + dm, rstd = 1.0f / sqrtf(fmaxf(st.y / n - dm * dm, 0.0f) + a.eps);
    float m1 = 0.0f, m2 = 0.0f;
    if (final) {
        float2 gs = combine(part2, g, a.chunks, &sh[1]);
        m1 = gs.x / n;
        m2 = gs.y / n;
    }
    int64_t c0 = (g % a.groups) * a.cg;
    int64_t b = ch * GN_CHUNK, e = b + GN_CHUNK < a.len ? b + GN_CHUNK : a.len;
    float s1 = 0.0f, s2 = 0.0f;
    for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) {
        int64_t c = c0 + (int)i / (int)a.inner; /* within a group: < 2^31, checked */
        float xh = (cu_ld(xg, i) - mean) * rstd;
        float gv = norm_grad_in(cu_ld(yg, i), xh, cu_ld_any(a.gamma, a.gdt, c),
                                a.silu ? cu_ld_any(a.beta, a.bdt, c) : 0.0f, a.silu);
        if (final) {
            cu_st(dx + g * a.len, i, rstd * (gv - m1 - xh * m2));
        } else {
            s1 += gv;
            s2 += gv * xh;
        }
    }
    if (final) return;
    s1 = cu_block_sum(s1, red);
    s2 = cu_block_sum(s2, red);
    if (threadIdx.x == 0) part2[blockIdx.x] = make_float2(s1, s2);
}

/* x, dy [N, C, ...spatial], gamma/beta [C] -> dx like x */
sdc_status sdc_cuda_group_norm_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0], *gamma = op->src[1], *beta = op->src[2], *dy = op->src[3];
    gnb_args a = {gamma->data, beta->data, (int)gamma->dtype, (int)beta->dtype, 0, 1, 0,
                  op->p.group_norm.groups, 0, op->p.group_norm.eps, op->p.group_norm.silu};
    for (int d = 2; d < x->ndim; d++) a.inner *= x->shape[d];
    a.cg = x->shape[1] / a.groups;
    a.len = a.cg * a.inner;
    int64_t ng = x->shape[0] * a.groups;
    if (ng == 0 || a.len == 0) return SDC_OK;
    if (cu_check_elems(a.len, "group_norm_backward (one group)", err)) return err->code;
    int64_t chunks = (a.len + GN_CHUNK - 1) / GN_CHUNK;
    if (ng * chunks > INT32_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "group_norm_backward: tensor too large");
    a.chunks = (int)chunks;
    size_t bytes = (size_t)(2 * ng * chunks) * sizeof(float2);
    float2 *part = (float2 *)cu_scratch(be, CU_SLOT_STATS, bytes, err);
    if (!part) return sdc_err_wrap(err, "group_norm_backward");
    float2 *part2 = part + ng * chunks;
    unsigned grid = (unsigned)(ng * chunks);
    sdc_status s = SDC_OK;
    CU_DISPATCH(x->dtype, T, "group_norm_backward", err,
                const T *xd = (const T *)x->data;
                const T *yd = (const T *)dy->data;
                gnb_stats_kernel<T><<<grid, GN_THREADS>>>(xd, a.len, a.chunks, part);
                if ((s = cu_check_launch(err, "group_norm_backward (statistics)"))) return s;
                gnb_grad_kernel<T><<<grid, GN_THREADS>>>(xd, yd, (T *)op->dst->data, part, part2, a,
                                                         false);
                if ((s = cu_check_launch(err, "group_norm_backward (sums)"))) return s;
                gnb_grad_kernel<T><<<grid, GN_THREADS>>>(xd, yd, (T *)op->dst->data, part, part2, a,
                                                         true));
    return cu_check_launch(err, "group_norm_backward");
}

/* x, dy [rows, c] -> dx [rows, c]; one block per row */
template <typename T>
__global__ void lnb_kernel(const T *x, const T *dy, T *dx, const void *gamma, int gdt,
                           int64_t rows, int64_t c, float eps) {
    __shared__ float red[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * c, *yr = dy + r * c;
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += cu_ld(xr, j);
        float mean = cu_block_sum(s, red) / (float)c;
        float q = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            float d = cu_ld(xr, j) - mean;
            q += d * d;
        }
        float rstd = 1.0f / sqrtf(cu_block_sum(q, red) / (float)c + eps);
        float s1 = 0.0f, s2 = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            float xh = (cu_ld(xr, j) - mean) * rstd, g = cu_ld(yr, j) * cu_ld_any(gamma, gdt, j);
            s1 += g;
            s2 += g * xh;
        }
        float m1 = cu_block_sum(s1, red) / (float)c, m2 = cu_block_sum(s2, red) / (float)c;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            float xh = (cu_ld(xr, j) - mean) * rstd, g = cu_ld(yr, j) * cu_ld_any(gamma, gdt, j);
            cu_st(dx + r * c, j, rstd * (g - m1 - xh * m2));
        }
    }
}

/* x, dy [..., C], gamma [C] -> dx like x */
sdc_status sdc_cuda_layer_norm_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *x = op->src[0], *gamma = op->src[1], *dy = op->src[2];
    int64_t c = x->shape[x->ndim - 1], n = sdc_tensor_numel(x);
    if (c == 0 || n == 0) return SDC_OK;
    int64_t rows = n / c;
    int threads = c <= 256 ? 64 : c <= 1024 ? 128 : 256;
    unsigned grid = (unsigned)(rows < 65535 * 32 ? rows : 65535 * 32);
    CU_DISPATCH(x->dtype, T, "layer_norm_backward", err,
                lnb_kernel<T><<<grid, threads>>>((const T *)x->data, (const T *)dy->data,
                                                 (T *)op->dst->data, gamma->data,
                                                 (int)gamma->dtype, rows, c,
                                                 op->p.layer_norm.eps));
    return cu_check_launch(err, "layer_norm_backward");
}
