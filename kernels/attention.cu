/* attention.cu — multi-head attention: the op's entry, which picks a kernel,
 * and the scalar kernel. Flash style everywhere it runs fused: O(N·D)
 * memory, the Nq×Nk score matrix never exists; per (batch, head, block of
 * queries) the keys are walked in tiles with an online softmax in F32
 * (running max m and sum l; the accumulator is rescaled by exp(m_old -
 * m_new) when the max grows). The kernels:
 *   flash (attention_flash.cu) — F16/BF16 with D % 8 == 0 and D <= 256, on
 *     tensor cores: SD's UNet and CLIP heads;
 *   gemm (attention_gemm.cu) — F32, and wider heads (the VAE's single
 *     512-wide head): two cuBLAS GEMMs around a row softmax, the scores
 *     bounded to 64 MiB per block of query rows;
 *   attn_simple (here) — any dtype, head dim up to 512, scalar F32 math:
 *     the reference variant ($SDC_CUDA_ATTN=simple). Queries are 16 per
 *     block (4 warps × 4); for a tile of 32 keys each lane scores one key,
 *     then each lane accumulates P·V for its dims. Head dims are staged in
 *     chunks of 128 so shared memory stays under 48 KB for every D.
 * Masking: keys past Nk and, with causal, keys after the query get -inf; a
 * row whose tile is all masked keeps its state (the -inf max is guarded). */
#include "cuda_common.cuh"

typedef struct attn_geom {
    int64_t nq, nk, hd; /* queries, keys, row width H·D */
    int nh, d;          /* heads, head dim */
    int64_t nqb;        /* query blocks per (batch, head) */
    float scale;
    bool causal;
} attn_geom;

/* The max to subtract after a tile whose running max is mnew: 0 while every
 * key seen so far was masked, so that exp(-inf - 0) = 0 gives p = alpha = 0
 * instead of exp(-inf + inf) = NaN. */
__device__ __forceinline__ float safe_max(float mnew) { return mnew == -INFINITY ? 0.0f : mnew; }

/* ---------------------------------------------------------------- simple */

#define AS_WARPS 4
#define AS_QPW 4                     /* queries per warp */
#define AS_BQ (AS_WARPS * AS_QPW)    /* queries per block */
#define AS_BK 32                     /* keys per tile: one per lane */
#define AS_DC 128                    /* head dims per chunk: 4 per lane */

/* q [B, Nq, H·D], k/v [B, Nk, H·D] -> o [B, Nq, H·D]; NCH = ceil(D / 128). */
template <typename T, int NCH>
__global__ void __launch_bounds__(AS_WARPS * 32)
    attn_simple_kernel(const T *q, const T *k, const T *v, T *o, attn_geom g) {
    __shared__ float Ks[AS_BK][AS_DC + 1]; /* odd stride: lane j reads row j conflict-free */
    __shared__ float Vs[AS_BK][AS_DC];
    __shared__ float Qs[AS_BQ][AS_DC];
    __shared__ float Ps[AS_WARPS][AS_QPW][AS_BK];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t qb = blockIdx.x % g.nqb, bh = blockIdx.x / g.nqb;
    const int64_t b = bh / g.nh, h = bh % g.nh;
    const int64_t q0 = qb * AS_BQ;
    const T *qh = q + b * g.nq * g.hd + h * g.d; /* row i at qh + i·hd */
    const T *kh = k + b * g.nk * g.hd + h * g.d;
    const T *vh = v + b * g.nk * g.hd + h * g.d;

    float acc[AS_QPW][NCH * 4], m[AS_QPW], l[AS_QPW];
#pragma unroll
    for (int qq = 0; qq < AS_QPW; qq++) {
        m[qq] = -INFINITY;
        l[qq] = 0.0f;
#pragma unroll
        for (int t = 0; t < NCH * 4; t++) acc[qq][t] = 0.0f;
    }
    /* With the causal mask, keys after the block's last query are never seen. */
    int64_t qlast = (q0 + AS_BQ < g.nq ? q0 + AS_BQ : g.nq) - 1;
    int64_t kend = g.causal && qlast + 1 < g.nk ? qlast + 1 : g.nk;
    for (int64_t j0 = 0; j0 < kend; j0 += AS_BK) {
        /* Scores: lane scores key j0 + lane against each of the warp's queries. */
        float s[AS_QPW];
#pragma unroll
        for (int qq = 0; qq < AS_QPW; qq++) s[qq] = 0.0f;
#pragma unroll
        for (int ch = 0; ch < NCH; ch++) {
            int c0 = ch * AS_DC, w = g.d - c0 < AS_DC ? g.d - c0 : AS_DC;
            __syncthreads(); /* the previous chunk's tiles are no longer read */
            for (int idx = threadIdx.x; idx < AS_BK * w; idx += blockDim.x) {
                int r = idx / w, c = idx - r * w;
                int64_t kj = j0 + r;
                Ks[r][c] = kj < g.nk ? cu_ld(kh, kj * g.hd + c0 + c) : 0.0f;
            }
            for (int idx = threadIdx.x; idx < AS_BQ * w; idx += blockDim.x) {
                int r = idx / w, c = idx - r * w;
                int64_t qi = q0 + r;
                Qs[r][c] = qi < g.nq ? cu_ld(qh, qi * g.hd + c0 + c) : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int qq = 0; qq < AS_QPW; qq++) {
                const float *qrow = Qs[warp * AS_QPW + qq];
                float a = s[qq];
                for (int c = 0; c < w; c++) a += qrow[c] * Ks[lane][c];
                s[qq] = a;
            }
        }
        /* Online softmax per query; p goes to shared memory for P·V. */
        int64_t kj = j0 + lane;
#pragma unroll
        for (int qq = 0; qq < AS_QPW; qq++) {
            int64_t qi = q0 + warp * AS_QPW + qq;
            bool vis = kj < g.nk && (!g.causal || kj <= qi);
            float sc = vis ? s[qq] * g.scale : -INFINITY;
            float mnew = fmaxf(m[qq], cu_warp_max(sc)), msafe = safe_max(mnew);
            float alpha = expf(m[qq] - msafe), p = expf(sc - msafe);
            m[qq] = mnew;
            l[qq] = l[qq] * alpha + cu_warp_sum(p);
            Ps[warp][qq][lane] = p;
#pragma unroll
            for (int t = 0; t < NCH * 4; t++) acc[qq][t] *= alpha;
        }
        /* P·V, chunk by chunk of V. */
#pragma unroll
        for (int ch = 0; ch < NCH; ch++) {
            int c0 = ch * AS_DC, w = g.d - c0 < AS_DC ? g.d - c0 : AS_DC;
            __syncthreads(); /* Ps is written; Vs is free */
            for (int idx = threadIdx.x; idx < AS_BK * w; idx += blockDim.x) {
                int r = idx / w, c = idx - r * w;
                int64_t kv = j0 + r;
                Vs[r][c] = kv < g.nk ? cu_ld(vh, kv * g.hd + c0 + c) : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int qq = 0; qq < AS_QPW; qq++) {
                const float *prow = Ps[warp][qq];
#pragma unroll
                for (int t = 0; t < 4; t++) {
                    int c = lane + 32 * t;
                    if (c >= w) continue;
                    float a = acc[qq][ch * 4 + t];
                    for (int j = 0; j < AS_BK; j++) a += prow[j] * Vs[j][c];
                    acc[qq][ch * 4 + t] = a;
                }
            }
        }
    }
#pragma unroll
    for (int qq = 0; qq < AS_QPW; qq++) {
        int64_t qi = q0 + warp * AS_QPW + qq;
        if (qi >= g.nq) continue;
        T *orow = o + (b * g.nq + qi) * g.hd + h * g.d;
#pragma unroll
        for (int t = 0; t < NCH * 4; t++) {
            int c = (t / 4) * AS_DC + lane + 32 * (t % 4);
            if (c < g.d) cu_st(orow, c, acc[qq][t] / l[qq]);
        }
    }
}

template <typename T>
static sdc_status launch_simple(const sdc_op *op, const attn_geom &g, int64_t nb, sdc_err *err) {
    int nch = (g.d + AS_DC - 1) / AS_DC;
    int64_t grid = nb * g.nh * g.nqb;
    if (grid > INT32_MAX) return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "attention: too many blocks");
    const T *q = (const T *)op->src[0]->data, *k = (const T *)op->src[1]->data,
            *v = (const T *)op->src[2]->data;
    T *o = (T *)op->dst->data;
    unsigned gr = (unsigned)grid;
    switch (nch) {
    case 1: attn_simple_kernel<T, 1><<<gr, AS_WARPS * 32, 0, cu_stream>>>(q, k, v, o, g); break;
    case 2: attn_simple_kernel<T, 2><<<gr, AS_WARPS * 32, 0, cu_stream>>>(q, k, v, o, g); break;
    case 3: attn_simple_kernel<T, 3><<<gr, AS_WARPS * 32, 0, cu_stream>>>(q, k, v, o, g); break;
    case 4: attn_simple_kernel<T, 4><<<gr, AS_WARPS * 32, 0, cu_stream>>>(q, k, v, o, g); break;
    default:
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "attention: head dim %d is over 512, not implemented on cuda", g.d);
    }
    return cu_check_launch(err, "attention");
}

/* q [B, Nq, H·D], k [B, Nk, H·D], v [B, Nk, H·D] -> o [B, Nq, H·D] */
sdc_status sdc_cuda_attention(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *q = op->src[0], *k = op->src[1];
    attn_geom g;
    int64_t nb = q->shape[0];
    g.nq = q->shape[1];
    g.nk = k->shape[1];
    g.hd = q->shape[2];
    g.nh = op->p.attention.heads;
    g.d = (int)(g.hd / g.nh);
    g.causal = op->p.attention.causal;
    /* 1/sqrt(D) rounded once, as torch's Python-side float gives it. */
    g.scale = op->p.attention.scale != 0.0f ? op->p.attention.scale
                                            : (float)(1.0 / sqrt((double)g.d));
    if (nb == 0 || g.nq == 0 || g.d == 0) return SDC_OK;
    sdc_dtype dt = op->dst->dtype;
    size_t bytes = 0;
    bool automatic = cu_impl(be)->attn == SDC_CUDA_ATTN_AUTO;
    int nw = automatic ? cu_flash_warps(cu_impl(be), dt, g.d, &bytes) : 0;
    if (nw > 0) return cu_attention_flash(op, g.nh, g.scale, nw, bytes, err);
    /* F32, and head dims the tensor-core kernel does not take: two GEMMs
     * (the scalar kernel reached 2.6 TFLOP/s on the VAE's D = 512 on an H200). */
    if (automatic) return cu_attention_gemm(be, op, g.nh, g.scale, err);
    g.nqb = (g.nq + AS_BQ - 1) / AS_BQ;
    CU_DISPATCH(dt, T, "attention", err, return launch_simple<T>(op, g, nb, err));
    return SDC_OK;
}
