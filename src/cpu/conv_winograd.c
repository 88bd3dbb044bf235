/* conv_winograd.c — 3×3 stride-1 pad-1 conv2d by Winograd F(m×m, 3×3) with
 * m = 4 (a 6×6 input tile, 36 points) or m = 2 (4×4, 16 points):
 * y = Aᵀ [U ⊙ V] A per tile, U = G g Gᵀ, V = Bᵀ d B (Lavin & Gray 2015).
 * The sum over input channels is one GEMM per point p (gemm_tiles.h):
 * M[p] [OCb, T] = U[p] [OCb, C] · V[p] [C, T], per image, so its shape never
 * depends on the batch. Transforms run on sdc's pool, 8 lanes at a time
 * (the weight transform 16 on the AVX-512 path: conv_winograd_avx512.c). */
#include "cpu_avx512.h"
#include "cpu_isa.h"
#include "cpu_ops.h"
#include "gemm_tiles.h"

#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* Eight lanes of tiles (input, output transform) or channels (weights). */
typedef float v8 __attribute__((vector_size(32)));

/* Scratch per conv, in floats: U for a block of output channels (slot 5,
 * 16 MiB), V and M for a block of tiles (slot 4, 16 MiB). */
#define U_BUDGET ((int64_t)4 << 20)
#define VM_BUDGET ((int64_t)4 << 20)

typedef struct wino {
    int m, a;              /* output tile m×m, input tile a×a (a = m + 2) */
    int64_t c, h, w, oc;
    int64_t tw, ntile;     /* tiles per row, tiles per image */
} wino;

/* ---- 1-D transforms on 8 lanes; s / t: input / output strides ---- */

/* F(4, 3) at the points 0, -1, 1, 1/2, -2 and ∞: about 2.5x less F32
 * error than Lavin's 0, ±1, ±2 (a float32 simulation over 320 channels:
 * max-abs 2.6e-5 against 6.9e-5), which came close to conv's 1e-4. */
static inline void bt6(const v8 *d, int s, v8 *o, int t) { /* Bᵀ d, 6 → 6 */
    v8 d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    o[0] = d0 - 2.0f * d2 + d4 + 1.5f * (d3 - d1);
    o[t] = d1 + d4 + 0.5f * d3 - 2.5f * d2;
    o[2 * t] = d4 - d1 + 0.5f * d2 + 2.5f * d3;
    o[3 * t] = 2.0f * (d3 - d1) + (d4 - d2);
    o[4 * t] = 0.5f * (d1 - d3) + (d4 - d2);
    o[5 * t] = d1 + d5 - 2.0f * d3 + 1.5f * (d4 - d2);
}

static inline void g6(const v8 *g, int s, v8 *o, int t) { /* G g, 3 → 6 */
    v8 g0 = g[0], g1 = g[s], g2 = g[2 * s];
    o[0] = g0;
    o[t] = (g1 - g0 - g2) * (1.0f / 3);
    o[2 * t] = (g0 + g1 + g2) * (1.0f / 3);
    o[3 * t] = (16.0f * g0 + 8.0f * g1 + 4.0f * g2) * (-1.0f / 15);
    o[4 * t] = (g0 - 2.0f * g1 + 4.0f * g2) * (1.0f / 15);
    o[5 * t] = g2;
}

static inline void at6(const v8 *m, int s, v8 *o, int t) { /* Aᵀ m, 6 → 4 */
    v8 m1 = m[s], m2 = m[2 * s], m3 = m[3 * s], m4 = m[4 * s];
    v8 p = m2 + m1, d = m2 - m1;
    o[0] = m[0] + p + m3 + m4;
    o[t] = d + 0.5f * m3 - 2.0f * m4;
    o[2 * t] = p + 0.25f * m3 + 4.0f * m4;
    o[3 * t] = d + 0.125f * m3 - 8.0f * m4 + m[5 * s];
}

static inline void bt4(const v8 *d, int s, v8 *o, int t) { /* 4 → 4 */
    v8 d1 = d[s], d2 = d[2 * s];
    o[0] = d[0] - d2;
    o[t] = d1 + d2;
    o[2 * t] = d2 - d1;
    o[3 * t] = d1 - d[3 * s];
}

static inline void g4(const v8 *g, int s, v8 *o, int t) { /* 3 → 4 */
    v8 g0 = g[0], g1 = g[s], g2 = g[2 * s];
    o[0] = g0;
    o[t] = (g0 + g1 + g2) * 0.5f;
    o[2 * t] = (g0 - g1 + g2) * 0.5f;
    o[3 * t] = g2;
}

static inline void at4(const v8 *m, int s, v8 *o, int t) { /* 4 → 2 */
    o[0] = m[0] + m[s] + m[2 * s];
    o[t] = m[s] - m[2 * s] - m[3 * s];
}

/* ---- weight transform: U[p][o][c] for o in a block, from any dtype ---- */

typedef struct wt_ctx {
    const wino *g;
    const sdc_tensor *wt; /* [OC, C, 3, 3] F32/F16/BF16 */
    float *u;             /* [a², ob, C], points ps floats apart */
    int64_t o0, ob, ncg;  /* first channel, block size, groups of 8 inputs (16: wt_range16) */
    int64_t ps;
} wt_ctx;

/* Weights g[o][c0+k][9] for k < n, widened straight from the source dtype. */
static void load_taps(const sdc_tensor *wt, int64_t off, int64_t n, float *dst) {
    if (wt->dtype == SDC_F32) {
        memcpy(dst, (const float *)wt->data + off, (size_t)n * sizeof *dst);
    } else if (wt->dtype == SDC_F16) {
        (void)sdc_cpu_widen(dst, (const uint16_t *)wt->data + off, SDC_F16, (size_t)n, NULL);
    } else {
        const uint16_t *s = (const uint16_t *)wt->data + off;
        for (int64_t i = 0; i < n; i++) { /* BF16 is the top half of an F32 */
            uint32_t bits = (uint32_t)s[i] << 16;
            memcpy(dst + i, &bits, sizeof bits);
        }
    }
}

/* The AVX-512 path: items are (o, group of 16 input channels). */
static void wt_range16(void *p, int64_t begin, int64_t end) {
    const wt_ctx *k = p;
    const wino *g = k->g;
    for (int64_t it = begin; it < end; it++) {
        int64_t o = it / k->ncg, c0 = it % k->ncg * 16;
        int64_t n = g->c - c0 < 16 ? g->c - c0 : 16;
        float taps[144] = {0};
        load_taps(k->wt, ((k->o0 + o) * g->c + c0) * 9, n * 9, taps);
        sdc_wino_weights16_avx512(g->a, taps, n, k->u + o * g->c + c0, k->ps);
    }
}

static void wt_range(void *p, int64_t begin, int64_t end) {
    const wt_ctx *k = p;
    const wino *g = k->g;
    int a = g->a;
    for (int64_t it = begin; it < end; it++) {
        int64_t o = it / k->ncg, c0 = it % k->ncg * 8;
        int64_t n = g->c - c0 < 8 ? g->c - c0 : 8;
        float taps[72] = {0};
        load_taps(k->wt, ((k->o0 + o) * g->c + c0) * 9, n * 9, taps);
        v8 w[3][3], t[6][3], u[6][6];
        for (int i = 0; i < 9; i++) { /* w[i/3][i%3][l] = taps[l·9 + i] */
#ifdef __AVX2__
            __m256i idx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
            w[i / 3][i % 3] = (v8)_mm256_i32gather_ps(taps + i, idx, 4);
#else
            for (int l = 0; l < 8; l++) w[i / 3][i % 3][l] = taps[l * 9 + i];
#endif
        }
        if (a == 6) {
            for (int j = 0; j < 3; j++) g6(&w[0][j], 3, &t[0][j], 3);
            for (int i = 0; i < 6; i++) g6(&t[i][0], 1, &u[i][0], 1);
        } else {
            for (int j = 0; j < 3; j++) g4(&w[0][j], 3, &t[0][j], 3);
            for (int i = 0; i < 4; i++) g4(&t[i][0], 1, &u[i][0], 1);
        }
        for (int pi = 0; pi < a; pi++)
            for (int pj = 0; pj < a; pj++) {
                float *dst = k->u + (pi * a + pj) * k->ps + o * g->c + c0;
                if (n == 8) memcpy(dst, &u[pi][pj], sizeof(v8));
                else for (int64_t l = 0; l < n; l++) dst[l] = u[pi][pj][l];
            }
    }
}

/* ---- input transform: V[p][c][t] for tiles [t0, t0+tb) of one image ---- */

typedef struct in_ctx {
    const wino *g;
    const float *x; /* [C, H, W] */
    float *v;       /* [a², C, tb], points ps floats apart */
    int64_t t0, tb, ngrp, ps;
} in_ctx;

/* d[i][j][l] = the a×a input patch of `tile` (zero outside the image, or
 * everywhere for an unused lane). `a` is a constant after inlining. */
static inline __attribute__((always_inline)) void gather(int a, const wino *g, const float *xc,
                                                         int64_t tile, bool used, v8 d[6][6],
                                                         int l) {
    int64_t y0 = tile / g->tw * g->m - 1, x0 = tile % g->tw * g->m - 1;
    if (!used) {
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++) d[i][j][l] = 0.0f;
    } else if (y0 >= 0 && x0 >= 0 && y0 + a <= g->h && x0 + a <= g->w) {
        const float *s = xc + y0 * g->w + x0;
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++) d[i][j][l] = s[i * g->w + j];
    } else { /* an edge tile: zero padding outside the image */
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++) {
                int64_t y = y0 + i, xx = x0 + j;
                bool in = y >= 0 && y < g->h && xx >= 0 && xx < g->w;
                d[i][j][l] = in ? xc[y * g->w + xx] : 0.0f;
            }
    }
}

static void in_range(void *p, int64_t begin, int64_t end) {
    const in_ctx *k = p;
    const wino *g = k->g;
    int a = g->a, m = g->m;
    for (int64_t it = begin; it < end; it++) {
        int64_t c = it / k->ngrp, l0 = it % k->ngrp * 8;
        int64_t n = k->tb - l0 < 8 ? k->tb - l0 : 8;
        const float *xc = k->x + c * g->h * g->w;
        v8 d[6][6], t[6][6], v[6][6];
        int64_t tile0 = k->t0 + l0, y0 = tile0 / g->tw * m - 1, x0 = tile0 % g->tw * m - 1;
#ifdef __AVX2__
        /* Eight interior tiles side by side in one tile row: strided gathers. */
        if (n == 8 && tile0 % g->tw + 8 <= g->tw && y0 >= 0 && x0 >= 0 && y0 + a <= g->h &&
            x0 + 7 * m + a <= g->w) {
            const float *s = xc + y0 * g->w + x0;
            __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                             _mm256_set1_epi32(m));
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    d[i][j] = (v8)_mm256_i32gather_ps(s + i * g->w + j, idx, 4);
        } else
#endif
        for (int64_t l = 0; l < 8; l++) {
            int64_t tile = tile0 + l;
            if (a == 6) gather(6, g, xc, tile, l < n, d, (int)l);
            else gather(4, g, xc, tile, l < n, d, (int)l);
        }
        if (a == 6) {
            for (int j = 0; j < 6; j++) bt6(&d[0][j], 6, &t[0][j], 6);
            for (int i = 0; i < 6; i++) bt6(&t[i][0], 1, &v[i][0], 1);
        } else {
            for (int j = 0; j < 4; j++) bt4(&d[0][j], 6, &t[0][j], 6);
            for (int i = 0; i < 4; i++) bt4(&t[i][0], 1, &v[i][0], 1);
        }
        for (int pi = 0; pi < a; pi++)
            for (int pj = 0; pj < a; pj++) {
                float *dst = k->v + (pi * a + pj) * k->ps + c * k->tb + l0;
                if (n == 8) memcpy(dst, &v[pi][pj], sizeof(v8));
                else for (int64_t l = 0; l < n; l++) dst[l] = v[pi][pj][l];
            }
    }
}

/* ---- output transform: y[o0+o] tiles from M[p][o][t], plus the bias ---- */

typedef struct out_ctx {
    const wino *g;
    const float *mm; /* [a², ob, tb], points ps floats apart */
    const float *b;  /* [OC] or NULL */
    float *y;        /* [OC, H, W], one image */
    int64_t o0, ob, t0, tb, ngrp, ps;
} out_ctx;

static void out_range(void *p, int64_t begin, int64_t end) {
    const out_ctx *k = p;
    const wino *g = k->g;
    int a = g->a, m = g->m;
    for (int64_t it = begin; it < end; it++) {
        int64_t o = it / k->ngrp, l0 = it % k->ngrp * 8;
        int64_t n = k->tb - l0 < 8 ? k->tb - l0 : 8;
        v8 mv[6][6], t[4][6], r[4][4];
        for (int pi = 0; pi < a; pi++)
            for (int pj = 0; pj < a; pj++) {
                const float *s = k->mm + (pi * a + pj) * k->ps + o * k->tb + l0;
                if (n == 8) memcpy(&mv[pi][pj], s, sizeof(v8));
                else for (int64_t l = 0; l < 8; l++) mv[pi][pj][l] = l < n ? s[l] : 0.0f;
            }
        if (a == 6) {
            for (int j = 0; j < 6; j++) at6(&mv[0][j], 6, &t[0][j], 6);
            for (int i = 0; i < 4; i++) at6(&t[i][0], 1, &r[i][0], 1);
        } else {
            for (int j = 0; j < 4; j++) at4(&mv[0][j], 6, &t[0][j], 6);
            for (int i = 0; i < 2; i++) at4(&t[i][0], 1, &r[i][0], 1);
        }
        float bv = k->b ? k->b[k->o0 + o] : 0.0f;
        float *yo = k->y + (k->o0 + o) * g->h * g->w;
        for (int64_t l = 0; l < n; l++) {
            int64_t tile = k->t0 + l0 + l;
            int64_t y0 = tile / g->tw * m, x0 = tile % g->tw * m;
            int64_t ny = g->h - y0 < m ? g->h - y0 : m, nx = g->w - x0 < m ? g->w - x0 : m;
            for (int64_t i = 0; i < ny; i++)
                for (int64_t j = 0; j < nx; j++) yo[(y0 + i) * g->w + x0 + j] = r[i][j][l] + bv;
        }
    }
}

/* Blocks of `total` of at most `cap` items, split evenly, rounded up to `q`. */
static int64_t even_block(int64_t total, int64_t cap, int64_t q) {
    if (cap < q) cap = q;
    if (total <= cap) return total;
    int64_t nblk = (total + cap - 1) / cap, blk = (total + nblk - 1) / nblk;
    blk = (blk + q - 1) / q * q;
    return blk < total ? blk : total;
}

/* Floats between two points' matrices: a multiple of 4 KiB would put all
 * a² rows a transform touches into one cache set; one line more spreads them. */
static int64_t point_stride(int64_t n) { return (n + 15) / 16 * 16 + 16; }

sdc_status sdc_cpu_conv3x3_winograd(sdc_backend *be, int m, const float *x,
                                    const sdc_tensor *wt, const float *b, float *y, int64_t nb,
                                    int64_t c, int64_t h, int64_t w, int64_t oc, sdc_err *err) {
    wino g = {.m = m, .a = m + 2, .c = c, .h = h, .w = w, .oc = oc,
              .tw = (w + m - 1) / m};
    g.ntile = (h + m - 1) / m * g.tw;
    int64_t a2 = g.a * g.a;
    /* Output channels per U block and tiles per V/M block: both depend only
     * on one image's shape, so every sgemm's M, N, K does too. */
    int64_t ob = even_block(oc, U_BUDGET / (a2 * c), 16);
    int64_t tb = even_block(g.ntile, VM_BUDGET / (a2 * (c + ob)), 8);
    int64_t ups = point_stride(ob * c), vps = point_stride(c * tb), mps = point_stride(ob * tb);
    /* V of every image and tile block, when it fits, is transformed once
     * instead of once per OC block. */
    int64_t nvb = nb * ((g.ntile + tb - 1) / tb);
    bool keep = ob < oc && nvb * a2 * vps + a2 * mps <= VM_BUDGET;
    int64_t nvbuf = keep ? nvb : 1;
    float *u = sdc_cpu_scratch(be, 5, (size_t)(a2 * ups), err);
    float *v = u ? sdc_cpu_scratch(be, 4, (size_t)(a2 * (nvbuf * vps + mps)), err) : NULL;
    if (!v) return sdc_err_wrap(err, "conv2d: winograd scratch");
    float *mm = v + nvbuf * a2 * vps; /* [a², ob, tb] after V [nvbuf][a², C, tb] */
    bool w16 = sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512;
    int64_t ncg = w16 ? (c + 15) / 16 : (c + 7) / 8;
    /* OC blocks outer: a block's U serves every image and tile block. */
    for (int64_t o0 = 0; o0 < oc; o0 += ob) {
        int64_t on = oc - o0 < ob ? oc - o0 : ob;
        wt_ctx wk = {.g = &g, .wt = wt, .u = u, .o0 = o0, .ob = on, .ncg = ncg, .ps = ups};
        sdc_parallel_for(on * ncg, w16 ? 8 : 16, w16 ? wt_range16 : wt_range, &wk);
        for (int64_t n = 0, vb = 0; n < nb; n++) {
            const float *xn = x + n * c * h * w;
            float *yn = y + n * oc * h * w;
            for (int64_t t0 = 0; t0 < g.ntile; t0 += tb, vb++) {
                int64_t tn = g.ntile - t0 < tb ? g.ntile - t0 : tb, ngrp = (tn + 7) / 8;
                float *vv = v + (keep ? vb : 0) * a2 * vps; /* [a², C, tn] */
                in_ctx ik = {.g = &g, .x = xn, .v = vv, .t0 = t0, .tb = tn, .ngrp = ngrp,
                             .ps = vps};
                if (!keep || o0 == 0) sdc_parallel_for(c * ngrp, 16, in_range, &ik);
                /* M[p] [on, tn] = U[p] [on, C] · V[p] [C, tn], in fixed tiles on the
                 * pool (gemm_tiles.h): the same bits with any thread count. */
                sdc_gemm_batch gb = {.count = a2, .m = on, .n = tn, .k = c,
                                     .a = u, .lda = c, .stride_a = ups,
                                     .b = vv, .ldb = tn, .stride_b = vps,
                                     .c = mm, .ldc = tn, .stride_c = mps};
                sdc_cpu_gemm(&gb);
                out_ctx ok = {.g = &g, .mm = mm, .b = b, .y = yn, .o0 = o0, .ob = on,
                              .t0 = t0, .tb = tn, .ngrp = ngrp, .ps = mps};
                sdc_parallel_for(on * ngrp, 16, out_range, &ok);
            }
        }
    }
    return SDC_OK;
}
