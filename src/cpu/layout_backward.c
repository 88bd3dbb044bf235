/* layout_backward.c — CPU adjoints of data movement: nearest-2x upsampling's
 * (each input pixel sums the up-to-2x2 pixels it was copied to) and slice
 * along dim 1 (concat's adjoint). Residual adds and transposes need no op of
 * their own: their adjoints are add and transpose. */
#include "cpu_ops.h"

#include <string.h>

typedef struct up_ctx {
    const float *dy; /* [N·C, OH, OW] */
    float *dx;       /* [N·C, H, W], H = (OH+1)/2, W = (OW+1)/2 */
    int64_t h, w, oh, ow;
} up_ctx;

/* Items are rows of dx; row i gathers dy rows 2i and 2i+1 (when present). */
static void upsample_back_range(void *arg, int64_t begin, int64_t end) {
    const up_ctx *k = arg;
    for (int64_t r = begin; r < end; r++) {
        int64_t plane = r / k->h, i = r % k->h;
        const float *y0 = k->dy + (plane * k->oh + 2 * i) * k->ow;
        const float *y1 = 2 * i + 1 < k->oh ? y0 + k->ow : NULL;
        float *x = k->dx + r * k->w;
        for (int64_t j = 0; j < k->w; j++) {
            bool two = 2 * j + 1 < k->ow;
            float s = y0[2 * j] + (two ? y0[2 * j + 1] : 0.0f);
            if (y1) s += y1[2 * j] + (two ? y1[2 * j + 1] : 0.0f);
            x[j] = s;
        }
    }
}

/* dy [N, C, OH, OW] -> dx [N, C, (OH+1)/2, (OW+1)/2] */
sdc_status sdc_cpu_upsample2x_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *dy = op->src[0], *dx = op->dst;
    up_ctx k = {.dy = dy->data, .dx = dx->data, .h = dx->shape[2], .w = dx->shape[3],
                .oh = dy->shape[2], .ow = dy->shape[3]};
    if (k.h == 0 || k.w == 0) return SDC_OK;
    int64_t rows = dx->shape[0] * dx->shape[1] * k.h;
    sdc_parallel_for(rows, 8192 / k.w + 1, upsample_back_range, &k);
    return SDC_OK;
}

/* Pieces of at most SLICE_PIECE floats, so a batch of 1 still splits. */
#define SLICE_PIECE 16384

typedef struct slice_ctx {
    const float *x; /* [outer, C·inner] */
    float *y;       /* [outer, len·inner] */
    int64_t in_row, out_row, off, pieces;
} slice_ctx;

static void slice_range(void *arg, int64_t begin, int64_t end) {
    const slice_ctx *k = arg;
    for (int64_t it = begin; it < end; it++) {
        int64_t o = it / k->pieces, s = it % k->pieces * SLICE_PIECE;
        int64_t n = k->out_row - s < SLICE_PIECE ? k->out_row - s : SLICE_PIECE;
        memcpy(k->y + o * k->out_row + s, k->x + o * k->in_row + k->off + s,
               (size_t)n * sizeof *k->y);
    }
}

/* x [N, C, ...] -> y [N, len, ...] = x[:, start:start+len]; rank 1 along dim 0 */
sdc_status sdc_cpu_slice(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    int axis = x->ndim == 1 ? 0 : 1;
    int64_t outer = axis == 0 ? 1 : x->shape[0], inner = 1;
    for (int d = axis + 1; d < x->ndim; d++) inner *= x->shape[d];
    slice_ctx k = {.x = x->data, .y = op->dst->data, .in_row = x->shape[axis] * inner,
                   .out_row = op->p.slice.len * inner, .off = op->p.slice.start * inner};
    if (outer == 0 || k.out_row == 0) return SDC_OK;
    k.pieces = (k.out_row + SLICE_PIECE - 1) / SLICE_PIECE;
    sdc_parallel_for(outer * k.pieces, 1, slice_range, &k);
    return SDC_OK;
}
