/* attention_flash.cu — flash attention on tensor cores (WMMA 16x16x16, F32
 * accumulation) for F16/BF16 with D % 8 == 0 and D <= 256: SD's UNet heads
 * (40, 80, 160) and CLIP's (64). Each warp owns 16 query rows; a block of
 * 1-4 warps walks the keys in tiles of 64 (K and V staged in shared memory
 * by the whole block):
 *   S [16, 64] = Q_w·Kᵀ       tensor cores, Q's fragments kept in registers for D <= 80
 *   P = 2^(S·scale·log2 e - μ) per row, rounded to the input type (as flash attention does)
 *   O_w [16, D] += P·V        tensor cores, the accumulators kept in registers
 * The row maxima run online, but lazily: μ, the max the exponent subtracts,
 * moves only when a tile's max exceeds it by more than 2^8 (then P <= 256,
 * exact in F16 and BF16), and only then do the accumulators pass through
 * shared memory to be rescaled per row (WMMA's register layout is opaque).
 * After the first tile or two that almost never happens, so the per-tile
 * work is two MMA loops, one store of S and a pass of exp2 per score. The
 * result O/l is the same for any μ (l sums the same P).
 * The head dim is padded to DP = 16·KD with zero columns; KD is a template
 * parameter (1-5, 8, 10, 16) so fragment arrays live in registers. */
#include "cuda_common.cuh"

#include <mma.h>

#define AF_BK 64          /* keys per tile */
#define AF_TAU 8.0f       /* lazy rescale threshold, log2 units: P <= 2^8 */
#define AF_LOG2E 1.4426950408889634f

typedef struct af_geom {
    int64_t nq, nk, hd; /* queries, keys, row width H·D */
    int nh, d;          /* heads, head dim */
    int64_t nqb;        /* query blocks per (batch, head) */
    float scale_log2;   /* scale · log2(e) */
    bool causal;
} af_geom;

/* Shared-memory layout for nw warps and head dim padded to dp. Every region
 * starts 32-byte aligned, as WMMA needs: each size is a multiple of 256 bytes.
 * O (the accumulators' staging, used only to rescale and at the end) shares
 * S's space when a warp's 16 rows of it fit there (dp <= 64): S is dead by
 * then in each tile, and one block fewer of shared memory lets 4 blocks share
 * an SM at D = 40 instead of 3. */
typedef struct af_layout {
    int ldh, lds, ldp, ldo;         /* row strides: Q/K/V (T), S (float), P (T), O (float) */
    int o_warp;                     /* floats between two warps' O rows */
    size_t q, k, v, s, p, o, bytes; /* byte offsets */
} af_layout;

__host__ __device__ inline af_layout af_layout_for(int nw, int dp) {
    af_layout L;
    int bq = 16 * nw;
    L.ldh = dp + 8; /* +8 halves: rows start in different banks */
    L.lds = AF_BK + 4;
    L.ldp = AF_BK + 8;
    L.ldo = dp + 4;
    L.q = 0;
    L.k = L.q + (size_t)bq * L.ldh * 2;
    L.v = L.k + (size_t)AF_BK * L.ldh * 2;
    L.s = L.v + (size_t)AF_BK * L.ldh * 2;
    L.p = L.s + (size_t)bq * L.lds * 4;
    if (L.ldo <= L.lds) { /* O inside S, each warp's at its S rows */
        L.o = L.s;
        L.o_warp = 16 * L.lds;
        L.bytes = L.p + (size_t)bq * L.ldp * 2;
    } else {
        L.o = L.p + (size_t)bq * L.ldp * 2;
        L.o_warp = 16 * L.ldo;
        L.bytes = L.o + (size_t)bq * L.ldo * 4;
    }
    return L;
}

/* dst [rows_total, ld] (cols dp) = src rows (stride hd) for r < rows, c < d;
 * zeros elsewhere. vec8: d % 8 == 0 and src 16-byte aligned, so 8 elements
 * move at once. */
template <typename T>
__device__ void af_load_tile(T *dst, int ld, const T *src, int64_t hd, int64_t rows,
                             int rows_total, int d, int dp, bool vec8) {
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

/* q [B, Nq, H·D], k/v [B, Nk, H·D] -> o [B, Nq, H·D]; KD = padded D / 16. */
template <typename T, int KD>
__global__ void attn_flash_kernel(const T *q, const T *k, const T *v, T *o, af_geom g,
                                  bool vec8) {
    using namespace nvcuda;
    typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> frag_a;
    typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> frag_bt;
    typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> frag_b;
    typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;
    constexpr int DP = 16 * KD;
    constexpr bool HOIST_Q = KD <= 5; /* Q in registers: 8·KD more per lane */
    extern __shared__ __align__(128) unsigned char aw_smem[];
    const int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int bq = 16 * nw;
    const af_layout L = af_layout_for(nw, DP);
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

    af_load_tile(Qs, L.ldh, qh + q0 * g.hd, g.hd, g.nq - q0, bq, g.d, DP, vec8);

    /* Softmax bookkeeping: lanes 2r and 2r+1 share row r of the warp's 16,
     * each taking every other column. mu = -inf until a key is visible. */
    const int rr = warp * 16 + (lane >> 1), hc = lane & 1;
    const int64_t qi = q0 + rr;
    float mu = -INFINITY, l = 0.0f;
    float *Sw = S + (warp * 16) * L.lds, *Ow = O + warp * L.o_warp;
    float *srow = Sw + (lane >> 1) * L.lds, *orow = Ow + (lane >> 1) * L.ldo;
    T *prow = P + rr * L.ldp;
    const T *Qw = Qs + (warp * 16) * L.ldh;
    const T *Pw = P + (warp * 16) * L.ldp;

    frag_c acc[KD];
#pragma unroll
    for (int n = 0; n < KD; n++) wmma::fill_fragment(acc[n], 0.0f);
    frag_a qf[HOIST_Q ? KD : 1];

    int64_t qlast = (q0 + bq < g.nq ? q0 + bq : g.nq) - 1;
    int64_t kend = g.causal && qlast + 1 < g.nk ? qlast + 1 : g.nk;
    for (int64_t j0 = 0; j0 < kend; j0 += AF_BK) {
        __syncthreads(); /* the previous K/V tile is done with; Q is in place on the first */
        af_load_tile(Ks, L.ldh, kh + j0 * g.hd, g.hd, g.nk - j0, AF_BK, g.d, DP, vec8);
        af_load_tile(Vs, L.ldh, vh + j0 * g.hd, g.hd, g.nk - j0, AF_BK, g.d, DP, vec8);
        __syncthreads();
        if (HOIST_Q && j0 == 0) {
#pragma unroll
            for (int kk = 0; kk < (HOIST_Q ? KD : 1); kk++)
                wmma::load_matrix_sync(qf[kk], Qw + kk * 16, L.ldh);
        }

        /* S [16, 64] = Q_w [16, DP] · Kᵀ [DP, 64]; K row-major is Kᵀ column-major. */
#pragma unroll
        for (int n = 0; n < AF_BK / 16; n++) {
            frag_c s;
            wmma::fill_fragment(s, 0.0f);
#pragma unroll
            for (int kk = 0; kk < KD; kk++) {
                frag_bt kt;
                wmma::load_matrix_sync(kt, Ks + (n * 16) * L.ldh + kk * 16, L.ldh);
                if (HOIST_Q) {
                    wmma::mma_sync(s, qf[HOIST_Q ? kk : 0], kt, s);
                } else {
                    frag_a a;
                    wmma::load_matrix_sync(a, Qw + kk * 16, L.ldh);
                    wmma::mma_sync(s, a, kt, s);
                }
            }
            wmma::store_matrix_sync(Sw + n * 16, s, L.lds, wmma::mem_row_major);
        }
        __syncwarp();

        /* Row rr's scores in log2 units, masked; the tile's max. */
        float tmax = -INFINITY;
        for (int c = hc; c < AF_BK; c += 2) {
            int64_t kj = j0 + c;
            bool vis = kj < g.nk && (!g.causal || kj <= qi);
            float sc = vis ? srow[c] * g.scale_log2 : -INFINITY;
            srow[c] = sc;
            tmax = fmaxf(tmax, sc);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        /* Lazy max: move mu only past the threshold (or from -inf). */
        bool move = tmax > mu + AF_TAU || (mu == -INFINITY && tmax > -INFINITY);
        float alpha = 1.0f;
        if (move) {
            alpha = exp2f(mu - tmax); /* 0 when mu was -inf */
            mu = tmax;
        }
        /* A row whose keys were all masked so far keeps mu = -inf: p = 2^-inf = 0. */
        const float msub = mu == -INFINITY ? 0.0f : mu;
        float psum = 0.0f;
        for (int c = hc; c < AF_BK; c += 2) {
            float p = exp2f(srow[c] - msub);
            psum += p;
            prow[c] = cu_num<T>::store(p);
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        l = l * alpha + psum;
        /* Rescale the accumulators when a row of the warp moved its max:
         * through shared memory (over S, read by now, when O shares it), then
         * back. Warp-uniform (any lane). */
        float moved = cu_warp_max(move && j0 > 0 ? 1.0f : 0.0f);
        if (moved > 0.0f) {
#pragma unroll
            for (int n = 0; n < KD; n++)
                wmma::store_matrix_sync(Ow + n * 16, acc[n], L.ldo, wmma::mem_row_major);
            __syncwarp();
            for (int c = hc; c < DP; c += 2) orow[c] *= alpha;
            __syncwarp();
#pragma unroll
            for (int n = 0; n < KD; n++)
                wmma::load_matrix_sync(acc[n], Ow + n * 16, L.ldo, wmma::mem_row_major);
        }
        __syncwarp(); /* P is written */

        /* O_w [16, DP] += P_w [16, 64] · V [64, DP]. */
#pragma unroll
        for (int kk = 0; kk < AF_BK / 16; kk++) {
            frag_a a;
            wmma::load_matrix_sync(a, Pw + kk * 16, L.ldp);
#pragma unroll
            for (int n = 0; n < KD; n++) {
                frag_b bv;
                wmma::load_matrix_sync(bv, Vs + (kk * 16) * L.ldh + n * 16, L.ldh);
                wmma::mma_sync(acc[n], a, bv, acc[n]);
            }
        }
        __syncwarp(); /* S and P are read before the next tile writes them */
    }
#pragma unroll
    for (int n = 0; n < KD; n++)
        wmma::store_matrix_sync(Ow + n * 16, acc[n], L.ldo, wmma::mem_row_major);
    __syncwarp();
    if (qi < g.nq) {
        T *out = o + (b * g.nq + qi) * g.hd + h * g.d;
        /* l > 0 once any key was visible (every query sees at least key 0). */
        for (int c = hc; c < g.d; c += 2) cu_st(out, c, orow[c] / l);
    }
}

/* KD for head dim d: the padded width in 16s, rounded up to an instantiated
 * one; 0 when the kernel does not take d. */
static int flash_kd(int d) {
    if (d % 8 != 0 || d > 256) return 0;
    int kd = (d + 15) / 16;
    return kd <= 5 ? kd : kd <= 8 ? 8 : kd <= 10 ? 10 : 16;
}

int cu_flash_warps(const cuda_impl *c, sdc_dtype dt, int d, size_t *bytes) {
    int kd = flash_kd(d);
    if ((dt != SDC_F16 && dt != SDC_BF16) || kd == 0) return 0;
    for (int nw = 4; nw >= 1; nw /= 2) {
        af_layout L = af_layout_for(nw, 16 * kd);
        if (L.bytes <= c->prop.sharedMemPerBlockOptin) {
            *bytes = L.bytes;
            return nw;
        }
    }
    return 0;
}

template <typename T, int KD>
static sdc_status launch_kd(const sdc_op *op, const af_geom &g, int64_t nb, int nw, size_t bytes,
                            bool vec8, sdc_err *err) {
    int64_t grid = nb * g.nh * g.nqb;
    if (grid > INT32_MAX) return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "attention: too many blocks");
    /* The opt-in above 48 KB; set once per instantiation and size (it is
     * not a stream operation, so it may also happen while a graph is recorded). */
    static size_t set_bytes = 0;
    if (bytes > set_bytes) {
        sdc_status s = cu_check(cudaFuncSetAttribute((const void *)attn_flash_kernel<T, KD>,
                                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                     (int)bytes),
                                err, "attention (cudaFuncSetAttribute, %zu bytes of shared memory)",
                                bytes);
        if (s) return s;
        set_bytes = bytes;
    }
    attn_flash_kernel<T, KD><<<(unsigned)grid, 32 * nw, bytes, cu_stream>>>(
        (const T *)op->src[0]->data, (const T *)op->src[1]->data, (const T *)op->src[2]->data,
        (T *)op->dst->data, g, vec8);
    return cu_check_launch(err, "attention (tensor cores)");
}

template <typename T>
static sdc_status launch_t(const sdc_op *op, const af_geom &g, int64_t nb, int nw, size_t bytes,
                           bool vec8, int kd, sdc_err *err) {
    switch (kd) {
    case 1: return launch_kd<T, 1>(op, g, nb, nw, bytes, vec8, err);
    case 2: return launch_kd<T, 2>(op, g, nb, nw, bytes, vec8, err);
    case 3: return launch_kd<T, 3>(op, g, nb, nw, bytes, vec8, err);
    case 4: return launch_kd<T, 4>(op, g, nb, nw, bytes, vec8, err);
    case 5: return launch_kd<T, 5>(op, g, nb, nw, bytes, vec8, err);
    case 8: return launch_kd<T, 8>(op, g, nb, nw, bytes, vec8, err);
    case 10: return launch_kd<T, 10>(op, g, nb, nw, bytes, vec8, err);
    case 16: return launch_kd<T, 16>(op, g, nb, nw, bytes, vec8, err);
    default: return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "attention: no flash kernel for KD %d", kd);
    }
}

sdc_status cu_attention_flash(const sdc_op *op, int heads, float scale, int nw, size_t bytes,
                              sdc_err *err) {
    const sdc_tensor *qt = op->src[0], *kt = op->src[1], *vt = op->src[2];
    af_geom g;
    int64_t nb = qt->shape[0];
    g.nq = qt->shape[1];
    g.nk = kt->shape[1];
    g.hd = qt->shape[2];
    g.nh = heads;
    g.d = (int)(g.hd / heads);
    g.causal = op->p.attention.causal;
    g.scale_log2 = scale * AF_LOG2E;
    g.nqb = (g.nq + 16 * nw - 1) / (16 * nw);
    int kd = flash_kd(g.d);
    bool vec8 = g.d % 8 == 0 &&
                ((uintptr_t)qt->data % 16 | (uintptr_t)kt->data % 16 | (uintptr_t)vt->data % 16) == 0;
    if (op->dst->dtype == SDC_F16) return launch_t<__half>(op, g, nb, nw, bytes, vec8, kd, err);
    return launch_t<__nv_bfloat16>(op, g, nb, nw, bytes, vec8, kd, err);
}
