/* conv2d_backward.c — CPU adjoint of conv2d with respect to its input.
 *
 * Stride 1 with every pad below the kernel size (all of SD's stride-1
 * convs): the adjoint is itself a stride-1 convolution of dy with the kernel
 * flipped in space and its channel axes swapped, w'[c, o, u, v] =
 * w[o, c, KH-1-u, KW-1-v], padded KH-1-pad on each side. That runs through
 * the forward conv2d (Winograd for 3x3, a plain GEMM for 1x1), so the
 * backward is as fast as the forward. w' is built in w's own dtype (a
 * permutation, exact) in scratch slot 2.
 *
 * Otherwise (the stride-2 downsamplers): per image, columns dcol [C·KH·KW,
 * pixels] = wᵀ · dy in tiles of whole output rows, then col2im adds each
 * column back onto the input pixel its tap read, one channel per task in a
 * fixed order (the same bits at any thread count). */
#include "cpu_ops.h"
#include "gemm_tiles.h"

#include <limits.h>
#include <string.h>

/* The column tile holds at most this many floats, as in conv2d.c. */
#define COL_BUDGET ((int64_t)4 << 20)

typedef struct flip_ctx {
    const unsigned char *w; /* [OC, C, KH, KW] */
    unsigned char *wf;      /* [C, OC, KH, KW] */
    int64_t oc, c, kh, kw;
    size_t es;              /* element size */
} flip_ctx;

/* One kernel of kk taps, reversed: (u, v) -> (KH-1-u, KW-1-v) is t -> kk-1-t.
 * Typed copies: a memcpy per element made the flip cost as much as the conv. */
#define FLIP_TAPS(T)                                                            \
    do {                                                                        \
        const T *s_ = (const T *)src;                                           \
        T *d_ = (T *)dst;                                                       \
        for (int64_t t = 0; t < kk; t++) d_[t] = s_[kk - 1 - t];                \
    } while (0)

/* Items are the output channels c of w'. */
static void flip_range(void *arg, int64_t begin, int64_t end) {
    const flip_ctx *f = arg;
    int64_t kk = f->kh * f->kw;
    for (int64_t c = begin; c < end; c++)
        for (int64_t o = 0; o < f->oc; o++) {
            const unsigned char *src = f->w + (size_t)((o * f->c + c) * kk) * f->es;
            unsigned char *dst = f->wf + (size_t)((c * f->oc + o) * kk) * f->es;
            if (f->es == 2) FLIP_TAPS(uint16_t);
            else FLIP_TAPS(uint32_t);
        }
}

static sdc_status as_forward_conv(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *dy = op->src[0], *w = op->src[1];
    int64_t oc = w->shape[0], c = w->shape[1], kh = w->shape[2], kw = w->shape[3];
    size_t es = sdc_dtype_size(w->dtype), bytes = (size_t)sdc_tensor_numel(w) * es;
    float *buf = sdc_cpu_scratch(be, 2, (bytes + sizeof(float) - 1) / sizeof(float), err);
    if (!buf) return sdc_err_wrap(err, "conv2d_backward: flipped kernel");
    flip_ctx f = {.w = w->data, .wf = (unsigned char *)buf, .oc = oc, .c = c, .kh = kh, .kw = kw,
                  .es = es};
    sdc_parallel_for(c, 1 + 65536 / (oc * kh * kw + 1), flip_range, &f);
    sdc_tensor wf;
    sdc_status s = sdc_tensor_init(&wf, w->dtype, 4, (const int64_t[]){c, oc, kh, kw}, buf, err);
    if (s) return s;
    sdc_op fwd = {.kind = SDC_OP_CONV2D, .src = {dy, &wf}, .dst = op->dst};
    fwd.p.conv2d.stride = 1;
    fwd.p.conv2d.pad_top = (int)kh - 1 - op->p.conv2d.pad_top;
    fwd.p.conv2d.pad_bottom = (int)kh - 1 - op->p.conv2d.pad_bottom;
    fwd.p.conv2d.pad_left = (int)kw - 1 - op->p.conv2d.pad_left;
    fwd.p.conv2d.pad_right = (int)kw - 1 - op->p.conv2d.pad_right;
    return sdc_cpu_conv2d(be, &fwd, err);
}

typedef struct col_geom {
    int64_t c, h, w;    /* dx's channels and size */
    int64_t oc, oh, ow; /* dy's */
    int64_t kh, kw, s, pt, pl;
    int64_t k, npix;    /* C·KH·KW, OH·OW */
} col_geom;

typedef struct col2im_ctx {
    const col_geom *g;
    const float *col; /* [K, t]: output pixels [p0, p0+t) */
    float *dx;        /* [C, H, W], one image */
    int64_t p0, t;
} col2im_ctx;

/* Items are input channels: each owns its KH·KW column rows and its plane. */
static void col2im_range(void *arg, int64_t begin, int64_t end) {
    const col2im_ctx *k = arg;
    const col_geom *g = k->g;
    for (int64_t c = begin; c < end; c++) {
        float *plane = k->dx + c * g->h * g->w;
        for (int64_t u = 0; u < g->kh; u++)
            for (int64_t v = 0; v < g->kw; v++) {
                const float *row = k->col + ((c * g->kh + u) * g->kw + v) * k->t - k->p0;
                for (int64_t p = k->p0, pend = k->p0 + k->t; p < pend;) {
                    int64_t oy = p / g->ow, ox0 = p % g->ow;
                    int64_t ox1 = g->ow < ox0 + (pend - p) ? g->ow : ox0 + (pend - p);
                    int64_t iy = oy * g->s + u - g->pt;
                    if (iy >= 0 && iy < g->h) {
                        float *dst = plane + iy * g->w;
                        const float *src = row + (p - ox0);
                        for (int64_t ox = ox0; ox < ox1; ox++) {
                            int64_t ix = ox * g->s + v - g->pl;
                            if (ix >= 0 && ix < g->w) dst[ix] += src[ox];
                        }
                    }
                    p += ox1 - ox0;
                }
            }
    }
}

static sdc_status col2im_path(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *dyt = op->src[0], *wt = op->src[1];
    sdc_tensor *dxt = op->dst;
    col_geom g = {.c = dxt->shape[1], .h = dxt->shape[2], .w = dxt->shape[3],
                  .oc = dyt->shape[1], .oh = dyt->shape[2], .ow = dyt->shape[3],
                  .kh = wt->shape[2], .kw = wt->shape[3], .s = op->p.conv2d.stride,
                  .pt = op->p.conv2d.pad_top, .pl = op->p.conv2d.pad_left};
    g.k = g.c * g.kh * g.kw;
    g.npix = g.oh * g.ow;
    int64_t nb = dxt->shape[0];
    if (g.k > INT_MAX || g.oc > INT_MAX || g.npix > INT_MAX)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "conv2d_backward: GEMM of %lld x %lld x %lld exceeds the BLAS int "
                           "range", (long long)g.k, (long long)g.npix, (long long)g.oc);
    int64_t tile = g.npix;
    if (g.k * g.npix > COL_BUDGET) {
        tile = g.k * g.ow <= COL_BUDGET ? COL_BUDGET / (g.k * g.ow) * g.ow : COL_BUDGET / g.k;
        if (tile < 1) tile = 1;
    }
    float *col = sdc_cpu_scratch(be, 4, (size_t)(g.k * tile), err); /* [K, tile] */
    if (!col) return sdc_err_wrap(err, "conv2d_backward: column buffer");
    int64_t blk = sdc_cpu_row_block(wt, g.oc, g.k);
    float *dx = dxt->data;
    const float *dy = dyt->data;
    memset(dx, 0, sdc_tensor_nbytes(dxt));
    for (int64_t n = 0; n < nb; n++)
        for (int64_t p0 = 0; p0 < g.npix; p0 += tile) {
            int64_t t = g.npix - p0 < tile ? g.npix - p0 : tile;
            /* col [K, t] = wᵀ [K, OC] · dy[n] [OC, t], summed over blocks of
             * output channels when the weight is widened in blocks. */
            for (int64_t o0 = 0; o0 < g.oc; o0 += blk) {
                int64_t o1 = g.oc - o0 < blk ? g.oc : o0 + blk;
                const float *w = sdc_cpu_rows_f32(be, 0, wt, g.k, o0, o1, err); /* [o1-o0, K] */
                if (!w) return sdc_err_wrap(err, "conv2d_backward: weight");
                sdc_gemm_batch gb = {.count = 1, .m = g.k, .n = t, .k = o1 - o0, .a = w,
                                     .lda = g.k, .trans_a = true,
                                     .b = dy + (n * g.oc + o0) * g.npix + p0, .ldb = g.npix,
                                     .beta = o0 ? 1.0f : 0.0f, .c = col, .ldc = t};
                sdc_cpu_gemm(&gb);
            }
            col2im_ctx k = {.g = &g, .col = col, .dx = dx + n * g.c * g.h * g.w, .p0 = p0, .t = t};
            sdc_parallel_for(g.c, 1 + 32768 / (g.kh * g.kw * t + 1), col2im_range, &k);
        }
    return SDC_OK;
}

/* dy [N, OC, OH, OW], w [OC, C, KH, KW] -> dx [N, C, H, W] */
sdc_status sdc_cpu_conv2d_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *w = op->src[1];
    sdc_tensor *dx = op->dst;
    if (sdc_tensor_numel(dx) == 0) return SDC_OK;
    if (sdc_tensor_numel(op->src[0]) == 0 || w->shape[0] == 0) {
        memset(dx->data, 0, sdc_tensor_nbytes(dx)); /* nothing flows back */
        return SDC_OK;
    }
    const int64_t kh = w->shape[2], kw = w->shape[3];
    if (op->p.conv2d.stride == 1 && op->p.conv2d.pad_top < kh && op->p.conv2d.pad_bottom < kh &&
        op->p.conv2d.pad_left < kw && op->p.conv2d.pad_right < kw)
        return as_forward_conv(be, op, err);
    return col2im_path(be, op, err);
}
