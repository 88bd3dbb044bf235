/* layout.c — CPU data-movement ops: nearest 2x upsampling, concat along
 * dim 1, and batched transpose [B, M, N] -> [B, N, M] in cache-sized tiles
 * with an AVX2 8x8 register transpose. */
#include "cpu_ops.h"
#include "vmath.h"

#include <string.h>

/* ---------------------------------------------------------------- upsample2x */

typedef struct up_ctx {
    const float *x; /* [rows = N·C·H, W] */
    float *y;       /* [N·C, OH, OW], OH in {2H-1, 2H}, OW in {2W-1, 2W} */
    int64_t h, w, oh, ow;
} up_ctx;

static void upsample_range(void *arg, int64_t begin, int64_t end) {
    const up_ctx *k = arg;
    int64_t w = k->w, ow = k->ow;
    for (int64_t r = begin; r < end; r++) {
        int64_t plane = r / k->h, row = r % k->h;
        const float *x = k->x + r * w;
        float *y = k->y + (plane * k->oh + 2 * row) * ow;
        int64_t j = 0;
#ifdef __AVX2__
        const __m256i lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        const __m256i hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
        for (; 2 * j + 16 <= ow; j += 8) {
            __m256 v = _mm256_loadu_ps(x + j);
            _mm256_storeu_ps(y + 2 * j, _mm256_permutevar8x32_ps(v, lo));
            _mm256_storeu_ps(y + 2 * j + 8, _mm256_permutevar8x32_ps(v, hi));
        }
#endif
        for (j *= 2; j < ow; j++) y[j] = x[j / 2];
        if (2 * row + 1 < k->oh) memcpy(y + ow, y, (size_t)ow * sizeof *y); /* the second row */
    }
}

/* x [N, C, H, W] -> y [N, C, OH, OW], y[i, j] = x[i/2, j/2] */
sdc_status sdc_cpu_upsample2x(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0], *y = op->dst;
    up_ctx k = {.x = x->data, .y = y->data, .h = x->shape[2], .w = x->shape[3],
                .oh = y->shape[2], .ow = y->shape[3]};
    if (k.w == 0 || k.h == 0) return SDC_OK;
    int64_t rows = x->shape[0] * x->shape[1] * x->shape[2];
    sdc_parallel_for(rows, 8192 / k.w + 1, upsample_range, &k);
    return SDC_OK;
}

/* ---------------------------------------------------------------- concat */

/* Each of the `outer` output blocks is a's block (la floats) then b's (lb);
 * work items are pieces of CONCAT_PIECE floats so that a batch of 2 still
 * splits evenly over the threads. */
#define CONCAT_PIECE 16384

typedef struct cat_ctx {
    const float *a, *b; /* [outer, la], [outer, lb] */
    float *y;           /* [outer, la + lb] */
    int64_t la, lb, pieces_per_block;
} cat_ctx;

static void concat_range(void *arg, int64_t begin, int64_t end) {
    const cat_ctx *k = arg;
    int64_t l = k->la + k->lb;
    for (int64_t it = begin; it < end; it++) {
        int64_t o = it / k->pieces_per_block;
        int64_t s = (it % k->pieces_per_block) * CONCAT_PIECE;
        int64_t e = s + CONCAT_PIECE < l ? s + CONCAT_PIECE : l;
        float *y = k->y + o * l;
        if (s < k->la) {
            int64_t ea = e < k->la ? e : k->la;
            memcpy(y + s, k->a + o * k->la + s, (size_t)(ea - s) * sizeof *y);
            s = ea;
        }
        if (s < e) memcpy(y + s, k->b + o * k->lb + (s - k->la), (size_t)(e - s) * sizeof *y);
    }
}

/* a [N, Ca, ...], b [N, Cb, ...] -> y [N, Ca+Cb, ...]; rank 1: along dim 0 */
sdc_status sdc_cpu_concat(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    int64_t outer = a->ndim == 1 ? 1 : a->shape[0];
    int64_t inner = 1;
    for (int d = 2; d < a->ndim; d++) inner *= a->shape[d];
    cat_ctx k = {.a = a->data, .b = b->data, .y = op->dst->data,
                 .la = (a->ndim == 1 ? a->shape[0] : a->shape[1]) * inner,
                 .lb = (b->ndim == 1 ? b->shape[0] : b->shape[1]) * inner};
    int64_t l = k.la + k.lb;
    if (outer == 0 || l == 0) return SDC_OK;
    k.pieces_per_block = (l + CONCAT_PIECE - 1) / CONCAT_PIECE;
    int64_t piece = l < CONCAT_PIECE ? l : CONCAT_PIECE; /* floats per item, about */
    sdc_parallel_for(outer * k.pieces_per_block, 32768 / piece + 1, concat_range, &k);
    return SDC_OK;
}

/* ---------------------------------------------------------------- transpose */

/* Tiles of TILE x TILE floats (4 KB in, 4 KB out) stay in L1 while the 8x8
 * blocks inside them are transposed in registers; walking a tile column by
 * column writes whole lines of y at a time. 32 measured a little better than
 * 16 or 64 at SD's shapes ([2, 320, 4096] and back). */
#define TILE 32

typedef struct tr_ctx {
    const float *x; /* [B, M, N] */
    float *y;       /* [B, N, M] */
    int64_t m, n, mtiles;
} tr_ctx;

#ifdef __AVX2__
/* dst[j·ldd + i] = src[i·lds + j] for an 8x8 block. */
static inline void transpose8x8(const float *src, int64_t lds, float *dst, int64_t ldd) {
    __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}
#endif

/* y[j·m + i] = x[i·n + j] for i in [i0, i1), j in [j0, j1). */
static void transpose_tile(const float *x, float *y, int64_t m, int64_t n, int64_t i0, int64_t i1,
                           int64_t j0, int64_t j1) {
    int64_t j = j0;
#ifdef __AVX2__
    for (; j + 8 <= j1; j += 8) {
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8) transpose8x8(x + i * n + j, n, y + j * m + i, m);
        for (; i < i1; i++)
            for (int64_t jj = j; jj < j + 8; jj++) y[jj * m + i] = x[i * n + jj];
    }
#endif
    for (; j < j1; j++)
        for (int64_t i = i0; i < i1; i++) y[j * m + i] = x[i * n + j];
}

/* Items are (batch, band of TILE rows of x); each band walks all columns. */
static void transpose_range(void *arg, int64_t begin, int64_t end) {
    const tr_ctx *k = arg;
    int64_t m = k->m, n = k->n;
    for (int64_t it = begin; it < end; it++) {
        int64_t bi = it / k->mtiles, i0 = (it % k->mtiles) * TILE;
        int64_t i1 = i0 + TILE < m ? i0 + TILE : m;
        for (int64_t j0 = 0; j0 < n; j0 += TILE)
            transpose_tile(k->x + bi * m * n, k->y + bi * m * n, m, n, i0, i1, j0,
                           j0 + TILE < n ? j0 + TILE : n);
    }
}

/* x [B, M, N] -> y [B, N, M] */
sdc_status sdc_cpu_transpose(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    tr_ctx k = {.x = x->data, .y = op->dst->data, .m = x->shape[1], .n = x->shape[2]};
    if (x->shape[0] == 0 || k.m == 0 || k.n == 0) return SDC_OK;
    k.mtiles = (k.m + TILE - 1) / TILE;
    int64_t band = TILE * k.n; /* floats per item */
    sdc_parallel_for(x->shape[0] * k.mtiles, band >= 32768 ? 1 : 32768 / band + 1,
                     transpose_range, &k);
    return SDC_OK;
}
