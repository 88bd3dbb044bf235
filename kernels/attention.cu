/* attention.cu — multi-head attention, flash style: O(N·D) memory, the
 * Nq×Nk score matrix never exists. Per (batch, head, block of queries) the
 * keys are walked in tiles with an online softmax in F32 (running max m and
 * sum l; the accumulator is rescaled by exp(m_old - m_new) when the max
 * grows). Two kernels:
 *   attn_simple — any dtype, head dim up to 512 (SD: 40, 80, 160, CLIP's 64,
 *     the VAE's single 512-wide head), scalar F32 math. Queries are 16 per
 *     block (4 warps × 4); for a tile of 32 keys each lane scores one key,
 *     then each lane accumulates P·V for its dims. Head dims are staged in
 *     chunks of 128 so shared memory stays under 48 KB for every D.
 *   attn_wmma — F16/BF16 with D % 8 == 0 and D <= 256: Q·Kᵀ and P·V on
 *     tensor cores (WMMA 16x16x16, F32 accumulate). Each warp owns 16 query
 *     rows; scores, probabilities (rounded to the input type, as flash
 *     attention does) and the F32 output accumulator live in shared memory,
 *     because WMMA's register layout cannot be rescaled per row.
 * Masking: keys past Nk and, with causal, keys after the query get -inf; a
 * row whose tile is all masked keeps its state (the -inf max is guarded). */
#include "cuda_common.cuh"

#include <mma.h>

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
    case 1: attn_simple_kernel<T, 1><<<gr, AS_WARPS * 32>>>(q, k, v, o, g); break;
    case 2: attn_simple_kernel<T, 2><<<gr, AS_WARPS * 32>>>(q, k, v, o, g); break;
    case 3: attn_simple_kernel<T, 3><<<gr, AS_WARPS * 32>>>(q, k, v, o, g); break;
    case 4: attn_simple_kernel<T, 4><<<gr, AS_WARPS * 32>>>(q, k, v, o, g); break;
    default:
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "attention: head dim %d is over 512, not implemented on cuda", g.d);
    }
    return cu_check_launch(err, "attention");
}

/* ---------------------------------------------------------------- WMMA */

#define AW_BK 64 /* keys per tile */

/* Shared-memory layout of attn_wmma for nw warps (16 queries each) and
 * head dim padded to dp (a multiple of 16). Every region starts 32-byte
 * aligned, as WMMA loads need: each size is a multiple of 256 bytes. */
typedef struct aw_layout {
    int ldh, lds, ldp, ldo;           /* row strides: Q/K/V (T), S (float), P (T), O (float) */
    size_t q, k, v, s, p, o, bytes;   /* byte offsets */
} aw_layout;

__host__ __device__ inline aw_layout aw_layout_for(int nw, int dp) {
    aw_layout L;
    int bq = 16 * nw;
    L.ldh = dp + 8;
    L.lds = AW_BK + 4;
    L.ldp = AW_BK + 8;
    L.ldo = dp + 4;
    L.q = 0;
    L.k = L.q + (size_t)bq * L.ldh * 2;
    L.v = L.k + (size_t)AW_BK * L.ldh * 2;
    L.s = L.v + (size_t)AW_BK * L.ldh * 2;
    L.p = L.s + (size_t)bq * L.lds * 4;
    L.o = L.p + (size_t)bq * L.ldp * 2;
    L.bytes = L.o + (size_t)bq * L.ldo * 4;
    return L;
}

/* dst [rows_total, ld] (cols dp) = src rows (stride hd) for r < rows, c < d; zeros elsewhere.
 * vec8: d % 8 == 0 and src rows 16-byte aligned, so 8 elements move at once. */
template <typename T>
__device__ void aw_load_tile(T *dst, int ld, const T *src, int64_t hd, int64_t rows, int rows_total,
                             int d, int dp, bool vec8) {
    if (vec8) {
        int cpr = dp / 8;
        for (int idx = threadIdx.x; idx < rows_total * cpr; idx += blockDim.x) {
            int r = idx / cpr, cc = idx - r * cpr;
            uint4 val = make_uint4(0, 0, 0, 0);
            if (r < rows && cc * 8 < d) val = *(const uint4 *)(src + r * hd + cc * 8);
            *(uint4 *)(dst + r * ld + cc * 8) = val;
        }
    } else {
        const T zero = cu_num<T>::store(0.0f);
        for (int idx = threadIdx.x; idx < rows_total * dp; idx += blockDim.x) {
            int r = idx / dp, c = idx - r * dp;
            dst[r * ld + c] = r < rows && c < d ? src[r * hd + c] : zero;
        }
    }
}

/* q [B, Nq, H·D], k/v [B, Nk, H·D] -> o [B, Nq, H·D]; F16 or BF16. */
template <typename T>
__global__ void attn_wmma_kernel(const T *q, const T *k, const T *v, T *o, attn_geom g, int dp,
                                 bool vec8) {
    using namespace nvcuda;
    extern __shared__ __align__(128) unsigned char aw_smem[];
    const int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int bq = 16 * nw;
    const aw_layout L = aw_layout_for(nw, dp);
    T *Qs = (T *)(aw_smem + L.q);
    T *Ks = (T *)(aw_smem + L.k);
    T *Vs = (T *)(aw_smem + L.v);
    float *S = (float *)(aw_smem + L.s);
    T *P = (T *)(aw_smem + L.p);
    float *O = (float *)(aw_smem + L.o);

    const int64_t qb = blockIdx.x % g.nqb, bh = blockIdx.x / g.nqb;
    const int64_t b = bh / g.nh, h = bh % g.nh;
    const int64_t q0 = qb * bq;
    const T *qh = q + b * g.nq * g.hd + h * g.d;
    const T *kh = k + b * g.nk * g.hd + h * g.d;
    const T *vh = v + b * g.nk * g.hd + h * g.d;

    aw_load_tile(Qs, L.ldh, qh + q0 * g.hd, g.hd, g.nq - q0, bq, g.d, dp, vec8);
    for (int idx = threadIdx.x; idx < bq * L.ldo; idx += blockDim.x) O[idx] = 0.0f;

    /* Softmax bookkeeping: lanes 2r and 2r+1 share row r of the warp's 16,
     * each taking every other column. */
    const int rr = warp * 16 + (lane >> 1), hc = lane & 1;
    const int64_t qi = q0 + rr;
    float m = -INFINITY, l = 0.0f;
    float *srow = S + rr * L.lds, *orow = O + rr * L.ldo;
    T *prow = P + rr * L.ldp;

    int64_t qlast = (q0 + bq < g.nq ? q0 + bq : g.nq) - 1;
    int64_t kend = g.causal && qlast + 1 < g.nk ? qlast + 1 : g.nk;
    for (int64_t j0 = 0; j0 < kend; j0 += AW_BK) {
        __syncthreads(); /* previous K/V tile done with; Q and O ready on the first pass */
        aw_load_tile(Ks, L.ldh, kh + j0 * g.hd, g.hd, g.nk - j0, AW_BK, g.d, dp, vec8);
        aw_load_tile(Vs, L.ldh, vh + j0 * g.hd, g.hd, g.nk - j0, AW_BK, g.d, dp, vec8);
        __syncthreads();

        /* S [16, 64] = Q_w [16, dp] · Kᵀ [dp, 64]; K row-major is Kᵀ column-major. */
        for (int n = 0; n < AW_BK / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < dp / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bt;
                wmma::load_matrix_sync(a, Qs + (warp * 16) * L.ldh + kk * 16, L.ldh);
                wmma::load_matrix_sync(bt, Ks + (n * 16) * L.ldh + kk * 16, L.ldh);
                wmma::mma_sync(acc, a, bt, acc);
            }
            wmma::store_matrix_sync(S + (warp * 16) * L.lds + n * 16, acc, L.lds,
                                    wmma::mem_row_major);
        }
        __syncwarp();

        /* Online softmax of row rr over this tile. */
        float tmax = -INFINITY;
        for (int c = hc; c < AW_BK; c += 2) {
            int64_t kj = j0 + c;
            bool vis = kj < g.nk && (!g.causal || kj <= qi);
            float sc = vis ? srow[c] * g.scale : -INFINITY;
            srow[c] = sc;
            tmax = fmaxf(tmax, sc);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        float mnew = fmaxf(m, tmax), msafe = safe_max(mnew);
        float alpha = expf(m - msafe), psum = 0.0f;
        m = mnew;
        for (int c = hc; c < AW_BK; c += 2) {
            float p = expf(srow[c] - msafe);
            psum += p;
            prow[c] = cu_num<T>::store(p);
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        l = l * alpha + psum;
        for (int c = hc; c < dp; c += 2) orow[c] *= alpha;
        __syncwarp();

        /* O_w [16, dp] += P_w [16, 64] · V [64, dp]. */
        for (int n = 0; n < dp / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, O + (warp * 16) * L.ldo + n * 16, L.ldo,
                                   wmma::mem_row_major);
            for (int kk = 0; kk < AW_BK / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bv;
                wmma::load_matrix_sync(a, P + (warp * 16) * L.ldp + kk * 16, L.ldp);
                wmma::load_matrix_sync(bv, Vs + (kk * 16) * L.ldh + n * 16, L.ldh);
                wmma::mma_sync(acc, a, bv, acc);
            }
            wmma::store_matrix_sync(O + (warp * 16) * L.ldo + n * 16, acc, L.ldo,
                                    wmma::mem_row_major);
        }
        __syncwarp();
    }
    if (qi < g.nq) {
        T *out = o + (b * g.nq + qi) * g.hd + h * g.d;
        for (int c = hc; c < g.d; c += 2) cu_st(out, c, orow[c] / l);
    }
}

/* Warps per block for the WMMA kernel (4, 2 or 1: what fits the device's
 * shared memory), or 0 when it does not apply. */
static int wmma_warps(const cuda_impl *c, sdc_dtype dt, int d, size_t *bytes) {
    if ((dt != SDC_F16 && dt != SDC_BF16) || d % 8 != 0 || d > 256) return 0;
    int dp = (d + 15) / 16 * 16;
    for (int nw = 4; nw >= 1; nw /= 2) {
        aw_layout L = aw_layout_for(nw, dp);
        if (L.bytes <= c->prop.sharedMemPerBlockOptin) {
            *bytes = L.bytes;
            return nw;
        }
    }
    return 0;
}

template <typename T>
static sdc_status launch_wmma(const sdc_op *op, attn_geom g, int64_t nb, int nw, size_t bytes,
                              sdc_err *err) {
    int dp = (g.d + 15) / 16 * 16;
    g.nqb = (g.nq + 16 * nw - 1) / (16 * nw);
    int64_t grid = nb * g.nh * g.nqb;
    if (grid > INT32_MAX) return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "attention: too many blocks");
    const T *q = (const T *)op->src[0]->data, *k = (const T *)op->src[1]->data,
            *v = (const T *)op->src[2]->data;
    bool vec8 = g.d % 8 == 0 && ((uintptr_t)q % 16 | (uintptr_t)k % 16 | (uintptr_t)v % 16) == 0;
    sdc_status s = cu_check(cudaFuncSetAttribute(attn_wmma_kernel<T>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)bytes),
                            err, "attention (cudaFuncSetAttribute, %zu bytes of shared memory)",
                            bytes);
    if (s) return s;
    attn_wmma_kernel<T><<<(unsigned)grid, 32 * nw, bytes>>>(q, k, v, (T *)op->dst->data, g, dp,
                                                            vec8);
    return cu_check_launch(err, "attention (tensor cores)");
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
    int nw = cu_impl(be)->attn == SDC_CUDA_ATTN_AUTO ? wmma_warps(cu_impl(be), dt, g.d, &bytes) : 0;
    if (nw > 0) {
        if (dt == SDC_F16) return launch_wmma<__half>(op, g, nb, nw, bytes, err);
        return launch_wmma<__nv_bfloat16>(op, g, nb, nw, bytes, err);
    }
    g.nqb = (g.nq + AS_BQ - 1) / AS_BQ;
    CU_DISPATCH(dt, T, "attention", err, return launch_simple<T>(op, g, nb, err));
    return SDC_OK;
}
