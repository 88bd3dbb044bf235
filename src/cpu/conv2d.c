/* conv2d.c — CPU 2-D convolution as im2col + OpenBLAS sgemm:
 * Y[n] [OC, OH·OW] = W [OC, C·KH·KW] · col [C·KH·KW, OH·OW] + b.
 * 1×1 stride-1 unpadded convs skip im2col (X[n] already is [C, H·W]); most
 * 3×3 stride-1 pad-1 convs go to Winograd (conv_winograd.c, see wino_tile);
 * small images with a half-precision weight go to sdc's own GEMM on patch
 * rows of every image at once (wgemm.h, conv_wgemm). */
#include "cpu_ops.h"
#include "gemm_tiles.h"
#include "wgemm.h"

#include <limits.h>
#include <string.h>

/* The column buffer holds at most this many floats (16 MiB). A large image
 * is done in tiles of whole output rows that fit, so memory stays bounded
 * and the tile is still in cache when sgemm reads it (smaller tiles measured
 * slower: sgemm wants a wide N). */
#define COL_BUDGET ((int64_t)4 << 20)
/* Images are never grouped into one sgemm (at 8×8 one N = 128 sgemm beat two
 * N = 64 ones by about 20%, under 1% of a UNet step): a sample's result must
 * not depend on its batch, and BLAS may pick another kernel for another N. */

typedef struct conv_geom {
    int64_t c, h, w;     /* input channels and size */
    int64_t oc, oh, ow;  /* output channels and size */
    int64_t kh, kw, s, pt, pl;
    int64_t k;           /* c·kh·kw, the GEMM depth */
    int64_t npix;        /* oh·ow */
} conv_geom;

/* A parallel fill over rows of an index space. Rows [0, ncol) are im2col
 * rows: col[kr] gets output pixels [p0, p0+t) of the image (t floats per
 * row). Rows [ncol, ncol+oc) prefill y's pixels [p0, p0+t) of channel r-ncol
 * with the bias (used with beta = 1). */
typedef struct fill_ctx {
    const conv_geom *g;
    const float *x;    /* [C, H, W] */
    float *col;        /* [K, t] */
    float *y;          /* [OC, OH·OW], one image */
    const float *b;    /* [OC] */
    int64_t p0, t, ncol;
} fill_ctx;

/* col row kr = (c, u, v), output pixel p = oy·OW + ox of one image:
 * dst[p - p0] = x[c, oy·s+u-pt, ox·s+v-pl], zero in the padding. */
static void im2col_row(const conv_geom *g, const float *x, int64_t kr, int64_t p0, int64_t t,
                       float *dst) {
    int64_t c = kr / (g->kh * g->kw), u = kr / g->kw % g->kh, v = kr % g->kw;
    const float *xc = x + c * g->h * g->w;
    /* Output columns whose tap lands inside the image: ox in [lo, hi). */
    int64_t off = v - g->pl;
    int64_t lo = off >= 0 ? 0 : (-off + g->s - 1) / g->s;
    int64_t hi = g->w - 1 - off < 0 ? 0 : (g->w - 1 - off) / g->s + 1;
    if (hi > g->ow) hi = g->ow;
    if (lo > hi) lo = hi;
    for (int64_t p = p0, pend = p0 + t; p < pend;) {
        int64_t oy = p / g->ow, ox0 = p % g->ow;
        int64_t ox1 = g->ow < ox0 + (pend - p) ? g->ow : ox0 + (pend - p);
        int64_t iy = oy * g->s + u - g->pt;
        float *d = dst + (p - p0) - ox0; /* indexed by ox */
        if (iy < 0 || iy >= g->h) {
            memset(d + ox0, 0, (size_t)(ox1 - ox0) * sizeof *d);
        } else {
            const float *src = xc + iy * g->w + off; /* src[ox·s] is the tap */
            int64_t a = lo > ox0 ? lo : ox0, z = hi < ox1 ? hi : ox1;
            if (a > z) a = z;
            if (a > ox0) memset(d + ox0, 0, (size_t)(a - ox0) * sizeof *d);
            if (g->s == 1) {
                memcpy(d + a, src + a, (size_t)(z - a) * sizeof *d);
            } else {
                for (int64_t ox = a; ox < z; ox++) d[ox] = src[ox * g->s];
            }
            if (ox1 > z) memset(d + z, 0, (size_t)(ox1 - z) * sizeof *d);
        }
        p += ox1 - ox0;
    }
}

static void fill_rows(void *p, int64_t begin, int64_t end) {
    const fill_ctx *f = p;
    const conv_geom *g = f->g;
    for (int64_t r = begin; r < end; r++) {
        if (r < f->ncol) {
            im2col_row(g, f->x, r, f->p0, f->t, f->col + r * f->t);
        } else {
            float *y = f->y + (r - f->ncol) * g->npix + f->p0;
            float bv = f->b[r - f->ncol];
            for (int64_t i = 0; i < f->t; i++) y[i] = bv;
        }
    }
}

/* Parallel fill of `rows` rows of `len` floats; tasks of >= ~32K floats. */
static void run_rows(sdc_range_fn fn, void *ctx, int64_t rows, int64_t len) {
    int64_t grain = len >= 32768 ? 1 : 32768 / (len ? len : 1);
    sdc_parallel_for(rows, grain, fn, ctx);
}

/* One image at a time, output pixels in tiles of `tile`; y starts as the
 * bias and sgemm accumulates (beta = 1), or beta = 0 without a bias. With
 * `direct` (1×1, stride 1, no padding) x itself is the column matrix. When a
 * whole image is one tile and the weight is widened in blocks, the columns
 * of `ni` images are filled first so each widened block serves them all
 * (still one sgemm per image). */
static sdc_status conv_tiled(sdc_backend *be, const conv_geom *g, const float *x,
                             const sdc_tensor *wt, const float *b, float *y, int64_t nb,
                             int64_t tile, bool direct, sdc_err *err) {
    /* A big half-precision weight is widened in blocks of output channels for
     * each tile (cheap next to the tile's GEMM); a small one once. */
    int64_t blk = sdc_cpu_row_block(wt, g->oc, g->k);
    int64_t ni = direct ? nb : 1; /* direct: x is every image's columns already */
    if (!direct && blk < g->oc && tile == g->npix) {
        ni = COL_BUDGET / (g->k * tile);
        ni = ni < 1 ? 1 : ni > nb ? nb : ni;
    }
    float *col = NULL; /* [ni, K, tile] */
    if (!direct && !(col = sdc_cpu_scratch(be, 4, (size_t)(ni * g->k * tile), err)))
        return sdc_err_wrap(err, "conv2d: column buffer");
    const float *w = NULL; /* [OC, K] */
    if (blk == g->oc && !(w = sdc_cpu_rows_f32(be, 0, wt, g->k, 0, g->oc, err)))
        return sdc_err_wrap(err, "conv2d: weight");
    float beta = b ? 1.0f : 0.0f;
    for (int64_t n0 = 0; n0 < nb; n0 += ni) {
        int64_t n1 = nb - n0 < ni ? nb : n0 + ni;
        for (int64_t p0 = 0; p0 < g->npix; p0 += tile) {
            int64_t t = g->npix - p0 < tile ? g->npix - p0 : tile;
            for (int64_t n = n0; n < n1; n++) {
                fill_ctx f = {.g = g, .x = x + n * g->c * g->h * g->w,
                              .col = direct ? NULL : col + (n - n0) * g->k * t,
                              .y = y + n * g->oc * g->npix, .b = b, .p0 = p0, .t = t,
                              .ncol = direct ? 0 : g->k};
                run_rows(fill_rows, &f, f.ncol + (b ? g->oc : 0), t);
            }
            int ldb = direct ? (int)g->npix : (int)t;
            for (int64_t o0 = 0; o0 < g->oc; o0 += blk) {
                int64_t o1 = g->oc - o0 < blk ? g->oc : o0 + blk;
                const float *wb = w ? w : sdc_cpu_rows_f32(be, 0, wt, g->k, o0, o1, err);
                if (!wb) return sdc_err_wrap(err, "conv2d: weight");
                /* One GEMM per image, all in fixed tiles on the pool
                 * (gemm_tiles.h): the same bits with any thread count. */
                sdc_gemm_batch gb = {
                    .count = n1 - n0, .m = o1 - o0, .n = t, .k = g->k, .a = wb, .lda = g->k,
                    .b = direct ? x + n0 * g->c * g->h * g->w + p0 : col, .ldb = ldb,
                    .stride_b = direct ? g->c * g->h * g->w : g->k * t, .beta = beta,
                    .c = y + n0 * g->oc * g->npix + o0 * g->npix + p0, .ldc = g->npix,
                    .stride_c = g->oc * g->npix};
                sdc_cpu_gemm(&gb);
            }
        }
    }
    return SDC_OK;
}

/* Patch rows for wgemm: dst [K] = the taps of output pixel p of one image
 * x [C, H, W], in the weight's (c, u, v) order, zero in the padding. */
static void im2row_row(const conv_geom *g, const float *x, int64_t p, float *dst) {
    int64_t oy = p / g->ow, ox = p % g->ow;
    for (int64_t c = 0; c < g->c; c++) {
        const float *xc = x + c * g->h * g->w;
        for (int64_t u = 0; u < g->kh; u++) {
            int64_t iy = oy * g->s + u - g->pt;
            bool row_in = iy >= 0 && iy < g->h;
            for (int64_t v = 0; v < g->kw; v++) {
                int64_t ix = ox * g->s + v - g->pl;
                *dst++ = row_in && ix >= 0 && ix < g->w ? xc[iy * g->w + ix] : 0.0f;
            }
        }
    }
}

typedef struct rows_ctx {
    const conv_geom *g;
    const float *x; /* the group's first image */
    float *rows;    /* [images · pixels, K] */
} rows_ctx;

static void fill_patch_rows(void *p, int64_t begin, int64_t end) {
    const rows_ctx *r = p;
    const conv_geom *g = r->g;
    for (int64_t j = begin; j < end; j++)
        im2row_row(g, r->x + j / g->npix * g->c * g->h * g->w, j % g->npix, r->rows + j * g->k);
}

/* Small images: every image's patch rows, then one wgemm that reads the
 * weight once, in its stored dtype (wgemm.h). Images go in groups whose
 * rows fit COL_BUDGET; a group boundary changes no bits. */
static sdc_status conv_wgemm(sdc_backend *be, const conv_geom *g, const float *x,
                             const sdc_tensor *wt, const float *b, float *y, int64_t nb,
                             sdc_err *err) {
    int64_t ni = COL_BUDGET / (g->k * g->npix);
    ni = ni < 1 ? 1 : ni > nb ? nb : ni;
    float *rows = sdc_cpu_scratch(be, 4, (size_t)(ni * g->npix * g->k), err);
    if (!rows) return sdc_err_wrap(err, "conv2d: patch rows");
    for (int64_t n0 = 0; n0 < nb; n0 += ni) {
        int64_t cnt = nb - n0 < ni ? nb - n0 : ni;
        rows_ctx r = {.g = g, .x = x + n0 * g->c * g->h * g->w, .rows = rows};
        run_rows(fill_patch_rows, &r, cnt * g->npix, g->k);
        for (int64_t n = n0; b && n < n0 + cnt; n++) {
            fill_ctx f = {.g = g, .y = y + n * g->oc * g->npix, .b = b, .t = g->npix};
            run_rows(fill_rows, &f, g->oc, g->npix);
        }
        sdc_wgemm w = {.m = g->oc, .n = cnt * g->npix, .k = g->k, .w = wt->data,
                       .wtype = wt->dtype, .ldw = g->k, .x = rows, .ldx = g->k,
                       .c = y + n0 * g->oc * g->npix, .group = g->npix,
                       .group_stride = g->oc * g->npix, .cs = 1, .rs = g->npix,
                       .accumulate = b != NULL};
        if (sdc_cpu_wgemm(be, &w, err)) return sdc_err_wrap(err, "conv2d");
    }
    return SDC_OK;
}

/* Winograd output tile for a 3×3 stride-1 pad-1 conv: 4, 2, or 0 for im2col.
 * Measured on the UNet's shapes (2 Zen3 cores, batch 2, ms as im2col / F(4,3)
 * / F(2,3), best of 2-3 runs; the machine was shared, so ±30%):
 *   320ch 64x64 91 / 45 / 57        640ch 32x32 92 / 41 / 64
 *   1920→640 32x32 341 / 236 / 221  1280ch 16x16 100 / 69 / 66
 *   2560→1280 16x16 441 / 268 / 303 1280ch 8x8 31 / 52 / 40
 *   2560→1280 8x8 126 / 194 / 114   320→4 64x64 28 / 11 / 15
 *   4→320 64x64 3 / 10 / 15
 * F(4,3) wants many tiles per sgemm (N) and enough output channels per U
 * block (its 36 points take 2.25x F(2,3)'s scratch); past 1280 input
 * channels at 16x16 it wins by transforming the input once for all blocks. */
static int wino_tile(const conv_geom *g) {
    if (g->c < 32) return 0;
    if (g->npix >= 1024) return g->c <= 1280 ? 4 : 2;
    if (g->npix >= 256) return g->c > 1280 ? 4 : 2;
    return g->c > 1280 ? 2 : 0;
}

sdc_status sdc_cpu_conv2d(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *xt = op->src[0]; /* [N, C, H, W] */
    const sdc_tensor *wt = op->src[1]; /* [OC, C, KH, KW] */
    const sdc_tensor *bt = op->src[2]; /* [OC] or NULL */
    sdc_tensor *yt = op->dst;          /* [N, OC, OH, OW] */
    conv_geom g = {
        .c = xt->shape[1], .h = xt->shape[2], .w = xt->shape[3],
        .oc = yt->shape[1], .oh = yt->shape[2], .ow = yt->shape[3],
        .kh = wt->shape[2], .kw = wt->shape[3], .s = op->p.conv2d.stride,
        .pt = op->p.conv2d.pad_top, .pl = op->p.conv2d.pad_left,
    };
    g.k = g.c * g.kh * g.kw;
    g.npix = g.oh * g.ow;
    int64_t nb = xt->shape[0];
    float *y = yt->data;
    if (nb == 0 || g.oc == 0 || g.npix == 0) return SDC_OK;
    const float *b = bt ? sdc_cpu_as_f32(be, 1, bt, err) : NULL; /* [OC] */
    if (bt && !b) return sdc_err_wrap(err, "conv2d: bias");
    if (g.k == 0) { /* no input channels: y is the bias (or zero) */
        for (int64_t r = 0; r < nb * g.oc; r++)
            for (int64_t i = 0; i < g.npix; i++) y[r * g.npix + i] = b ? b[r % g.oc] : 0.0f;
        return SDC_OK;
    }
    if (g.k > INT_MAX || g.oc > INT_MAX || g.npix > INT_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "conv2d: GEMM of %lld x %lld x %lld exceeds the BLAS int range",
                           (long long)g.oc, (long long)g.npix, (long long)g.k);
    const float *x = xt->data;
    bool wgemm = sdc_wgemm_pays(wt->dtype, g.npix, g.k, g.kh * g.kw == 1);
    /* Up to 8x8 wgemm also beats Winograd (2560 -> 1280 channels with F16
     * weights, batch 2: 16 against 30 ms at 4x4, 39 against 44 ms at 8x8;
     * at 16x16 Winograd wins, 100 against 155 ms). */
    if (g.kh == 3 && g.kw == 3 && g.s == 1 && g.pt == 1 && g.pl == 1 && g.oh == g.h &&
        g.ow == g.w && !(wgemm && g.npix <= 64)) {
        int m = wino_tile(&g);
        if (m)
            return sdc_cpu_conv3x3_winograd(be, m, x, wt, b, y, nb, g.c, g.h, g.w, g.oc, err);
    }
    if (wgemm) return conv_wgemm(be, &g, x, wt, b, y, nb, err);

    bool direct = g.kh == 1 && g.kw == 1 && g.s == 1 && g.pt == 0 && g.pl == 0 &&
                  g.oh == g.h && g.ow == g.w;
    /* Tile = as many whole output rows as fit the budget (at least one row;
     * a single row wider than the budget is cut into column chunks). */
    int64_t tile = g.npix;
    if (!direct && g.k * g.npix > COL_BUDGET) {
        if (g.k * g.ow <= COL_BUDGET) {
            tile = COL_BUDGET / (g.k * g.ow) * g.ow;
        } else {
            tile = COL_BUDGET / g.k;
            if (tile < 64) tile = 64;
        }
    }
    return conv_tiled(be, &g, x, wt, b, y, nb, tile, direct, err);
}
