/* attention_backward.cu — the adjoint of multi-head attention, flash style in
 * that the probabilities are recomputed from q, k and the row statistics and
 * never stored (O(N·D) memory), scalar F32 math, one warp per row (the lanes
 * split the head dimension, D <= 512):
 *   1. per query row: lse = log Σ_j exp(s_ij) (online max), then
 *      delta = Σ_j P_ij·(dy_i·v_j) (= dy_i·out_i), s = scale·q·k;
 *   2. per query row: dq_i = scale·Σ_j dS_ij·k_j, dS = P∘(dP - delta);
 *   3. per key row: dv_j = Σ_i P_ij·dy_i, dk_j = scale·Σ_i dS_ij·q_i.
 * Every output row is one warp's, so there are no atomics and the result is
 * the same bits every run. Correctness first: tensor-core blocks are a later
 * step (as the forward's WMMA kernel). */
#include "cuda_common.cuh"

#define AB_WARPS 4   /* rows per block */
#define AB_MAXP 16   /* head elements per lane: D <= 512 */

typedef struct ab_geom {
    int nb, nq, nk, nh, d, hd, np; /* np = ceil(D / 32) */
    float scale;
    bool causal;
} ab_geom;

/* r[t] = row[lane + 32·t] (F32), 0 past D. */
template <typename T>
__device__ __forceinline__ void load_row(float *r, const T *row, const ab_geom &g, int lane) {
    for (int t = 0; t < AB_MAXP; t++) {
        int e = lane + 32 * t;
        r[t] = t < g.np && e < g.d ? cu_ld(row, e) : 0.0f;
    }
}

/* Σ_e a[e]·row[e] over the warp (a in registers as load_row leaves it). */
template <typename T>
__device__ __forceinline__ float warp_dot(const float *a, const T *row, const ab_geom &g,
                                          int lane) {
    float s = 0.0f;
    for (int t = 0; t < g.np; t++) {
        int e = lane + 32 * t;
        if (e < g.d) s += a[t] * cu_ld(row, e);
    }
    return cu_warp_sum(s);
}

/* Where head h of token tok of batch b starts in a [B, n, H·D] tensor. The
 * statistics are [B·H, NQ]: row (b·H + h)·NQ + i. */
__device__ __forceinline__ int64_t at(const ab_geom &g, int b, int n, int tok, int h) {
    return ((int64_t)b * n + tok) * g.hd + (int64_t)h * g.d;
}

/* 1. lse and delta per query row. */
template <typename T>
__global__ void ab_stats_kernel(const T *q, const T *k, const T *v, const T *dy, float *lse,
                                float *delta, ab_geom g) {
    int lane = threadIdx.x & 31;
    int64_t row = (int64_t)blockIdx.x * AB_WARPS + (threadIdx.x >> 5);
    if (row >= (int64_t)g.nb * g.nh * g.nq) return;
    int i = (int)(row % g.nq), bh = (int)(row / g.nq), b = bh / g.nh, h = bh % g.nh;
    float qr[AB_MAXP], yr[AB_MAXP];
    load_row(qr, q + at(g, b, g.nq, i, h), g, lane);
    load_row(yr, dy + at(g, b, g.nq, i, h), g, lane);
    int nk = g.causal ? i + 1 : g.nk;
    float m = -INFINITY, l = 0.0f;
    for (int j = 0; j < nk; j++) {
        float s = g.scale * warp_dot(qr, k + at(g, b, g.nk, j, h), g, lane);
        float mn = fmaxf(m, s);
        l = l * expf(m - mn) + expf(s - mn);
        m = mn;
    }
    float ls = m + logf(l), dl = 0.0f;
    for (int j = 0; j < nk; j++) {
        float p = expf(g.scale * warp_dot(qr, k + at(g, b, g.nk, j, h), g, lane) - ls);
        dl += p * warp_dot(yr, v + at(g, b, g.nk, j, h), g, lane);
    }
    if (lane == 0) {
        lse[row] = ls;
        delta[row] = dl;
    }
}

/* 2. dq per query row. */
template <typename T>
__global__ void ab_dq_kernel(const T *q, const T *k, const T *v, const T *dy, const float *lse,
                             const float *delta, T *dq, ab_geom g) {
    int lane = threadIdx.x & 31;
    int64_t row = (int64_t)blockIdx.x * AB_WARPS + (threadIdx.x >> 5);
    if (row >= (int64_t)g.nb * g.nh * g.nq) return;
    int i = (int)(row % g.nq), bh = (int)(row / g.nq), b = bh / g.nh, h = bh % g.nh;
    float qr[AB_MAXP], yr[AB_MAXP], acc[AB_MAXP];
    load_row(qr, q + at(g, b, g.nq, i, h), g, lane);
    load_row(yr, dy + at(g, b, g.nq, i, h), g, lane);
    for (int t = 0; t < AB_MAXP; t++) acc[t] = 0.0f;
    float ls = lse[row], dl = delta[row];
    int nk = g.causal ? i + 1 : g.nk;
    for (int j = 0; j < nk; j++) {
        const T *kj = k + at(g, b, g.nk, j, h);
        float p = expf(g.scale * warp_dot(qr, kj, g, lane) - ls);
        float ds = p * (warp_dot(yr, v + at(g, b, g.nk, j, h), g, lane) - dl);
        for (int t = 0; t < g.np; t++) {
            int e = lane + 32 * t;
            if (e < g.d) acc[t] += ds * cu_ld(kj, e);
        }
    }
    T *out = dq + at(g, b, g.nq, i, h);
    for (int t = 0; t < g.np; t++) {
        int e = lane + 32 * t;
        if (e < g.d) cu_st(out, e, g.scale * acc[t]);
    }
}

/* 3. dk and dv per key row. */
template <typename T>
__global__ void ab_dkv_kernel(const T *q, const T *k, const T *v, const T *dy, const float *lse,
                              const float *delta, T *dk, T *dv, ab_geom g) {
    int lane = threadIdx.x & 31;
    int64_t row = (int64_t)blockIdx.x * AB_WARPS + (threadIdx.x >> 5);
    if (row >= (int64_t)g.nb * g.nh * g.nk) return;
    int j = (int)(row % g.nk), bh = (int)(row / g.nk), b = bh / g.nh, h = bh % g.nh;
    float kr[AB_MAXP], vr[AB_MAXP], ak[AB_MAXP], av[AB_MAXP];
    load_row(kr, k + at(g, b, g.nk, j, h), g, lane);
    load_row(vr, v + at(g, b, g.nk, j, h), g, lane);
    for (int t = 0; t < AB_MAXP; t++) ak[t] = av[t] = 0.0f;
    const float *ls = lse + (int64_t)bh * g.nq, *dl = delta + (int64_t)bh * g.nq;
    for (int i = g.causal ? j : 0; i < g.nq; i++) {
        const T *qi = q + at(g, b, g.nq, i, h), *yi = dy + at(g, b, g.nq, i, h);
        float p = expf(g.scale * warp_dot(kr, qi, g, lane) - ls[i]);
        float ds = p * (warp_dot(vr, yi, g, lane) - dl[i]);
        for (int t = 0; t < g.np; t++) {
            int e = lane + 32 * t;
            if (e < g.d) {
                av[t] += p * cu_ld(yi, e);
                ak[t] += ds * cu_ld(qi, e);
            }
        }
    }
    T *ok = dk + at(g, b, g.nk, j, h), *ov = dv + at(g, b, g.nk, j, h);
    for (int t = 0; t < g.np; t++) {
        int e = lane + 32 * t;
        if (e < g.d) {
            cu_st(ok, e, g.scale * ak[t]);
            cu_st(ov, e, av[t]);
        }
    }
}

/* q, dy [B, Nq, H·D], k, v [B, Nk, H·D] -> dq like q, dk like k, dv like v */
sdc_status sdc_cuda_attention_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2], *dy = op->src[3];
    ab_geom g = {(int)q->shape[0], (int)q->shape[1], (int)k->shape[1], op->p.attention.heads, 0,
                 (int)q->shape[2], 0, 0.0f, op->p.attention.causal};
    g.d = g.hd / g.nh;
    g.np = (g.d + 31) / 32;
    if (g.nb == 0 || g.d == 0) return SDC_OK;
    if (g.d > 32 * AB_MAXP)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "attention_backward: head size %d over %d",
                           g.d, 32 * AB_MAXP);
    if (cu_check_elems(sdc_tensor_numel(q), "attention_backward", err) ||
        cu_check_elems(sdc_tensor_numel(k), "attention_backward", err))
        return err->code;
    sdc_status s;
    if (g.nq == 0) { /* no query: nothing flows back to the keys */
        if ((s = cu_check(cudaMemset(op->dst_more[0]->data, 0, sdc_tensor_nbytes(op->dst_more[0])),
                          err, "attention_backward (cudaMemset)")))
            return s;
        return cu_check(cudaMemset(op->dst_more[1]->data, 0, sdc_tensor_nbytes(op->dst_more[1])),
                        err, "attention_backward (cudaMemset)");
    }
    g.scale = op->p.attention.scale != 0.0f ? op->p.attention.scale
                                            : (float)(1.0 / sqrt((double)g.d));
    int64_t rows = (int64_t)g.nb * g.nh * g.nq, krows = (int64_t)g.nb * g.nh * g.nk;
    float *stats = (float *)cu_scratch(be, CU_SLOT_STATS, (size_t)(2 * rows) * sizeof(float), err);
    if (!stats) return sdc_err_wrap(err, "attention_backward");
    unsigned qgrid = (unsigned)((rows + AB_WARPS - 1) / AB_WARPS);
    unsigned kgrid = (unsigned)((krows + AB_WARPS - 1) / AB_WARPS);
    CU_DISPATCH(q->dtype, T, "attention_backward", err,
                const T *qd = (const T *)q->data;
                const T *kd = (const T *)k->data;
                const T *vd = (const T *)v->data;
                const T *yd = (const T *)dy->data;
                ab_stats_kernel<T><<<qgrid, 32 * AB_WARPS>>>(qd, kd, vd, yd, stats, stats + rows,
                                                             g);
                if ((s = cu_check_launch(err, "attention_backward (statistics)"))) return s;
                ab_dq_kernel<T><<<qgrid, 32 * AB_WARPS>>>(qd, kd, vd, yd, stats, stats + rows,
                                                          (T *)op->dst->data, g);
                if ((s = cu_check_launch(err, "attention_backward (dq)"))) return s;
                ab_dkv_kernel<T><<<kgrid, 32 * AB_WARPS>>>(qd, kd, vd, yd, stats, stats + rows,
                                                           (T *)op->dst_more[0]->data,
                                                           (T *)op->dst_more[1]->data, g));
    return cu_check_launch(err, "attention_backward (dk, dv)");
}
