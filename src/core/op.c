/* op.c — the op front end: shape/dtype validation and output-shape inference
 * shared by every backend, and dispatch through a backend's op table. */
#include "sdc_ops.h"

#include <stdio.h>
#include <string.h>

static const char *const op_names[SDC_OP_COUNT] = {
#define OP_NAME(kind, name, outs, act) [SDC_OP_##kind] = #name,
    SDC_OPS(OP_NAME)
#undef OP_NAME
};

const char *sdc_op_name(sdc_op_kind k) {
    return (unsigned)k < SDC_OP_COUNT && op_names[k] ? op_names[k] : "?";
}

static bool is_float(sdc_dtype t) { return t == SDC_F32 || t == SDC_F16 || t == SDC_BF16; }

#define FAIL(...) return sdc_err_set(err, SDC_ERR_SHAPE, __VA_ARGS__)

/* Every float source must be present and of a float dtype. */
static sdc_status need(const sdc_op *op, int i, const char *what, sdc_err *err) {
    const sdc_tensor *t = op->src[i];
    if (!t) FAIL("%s: missing %s", sdc_op_name(op->kind), what);
    if (!is_float(t->dtype))
        FAIL("%s: %s has dtype %s, expected F32, F16 or BF16", sdc_op_name(op->kind), what,
             sdc_dtype_name(t->dtype));
    return SDC_OK;
}

static sdc_status need_vec(const sdc_op *op, int i, const char *what, int64_t len, sdc_err *err) {
    sdc_status s = need(op, i, what, err);
    if (s) return s;
    const sdc_tensor *t = op->src[i];
    if (t->ndim != 1 || t->shape[0] != len)
        FAIL("%s: %s must be [%lld], got rank %d with %lld elements", sdc_op_name(op->kind), what,
             (long long)len, t->ndim, (long long)sdc_tensor_numel(t));
    return SDC_OK;
}

static void set_shape(sdc_tensor *out, sdc_dtype dt, int ndim, const int64_t *shape) {
    sdc_tensor_init(out, dt, ndim, shape, NULL, NULL);
}

static sdc_status infer_conv2d(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err)) || (s = need(op, 1, "w", err))) return s;
    const sdc_tensor *x = op->src[0], *w = op->src[1];
    if (x->ndim != 4 || w->ndim != 4) FAIL("conv2d: x and w must be rank 4");
    if (w->shape[1] != x->shape[1])
        FAIL("conv2d: w has %lld input channels, x has %lld", (long long)w->shape[1],
             (long long)x->shape[1]);
    if (op->src[2] && (s = need_vec(op, 2, "bias", w->shape[0], err))) return s;
    int st = op->p.conv2d.stride;
    int pt = op->p.conv2d.pad_top, pb = op->p.conv2d.pad_bottom;
    int pl = op->p.conv2d.pad_left, pr = op->p.conv2d.pad_right;
    if (st < 1 || pt < 0 || pb < 0 || pl < 0 || pr < 0)
        FAIL("conv2d: stride must be >= 1 and padding >= 0");
    int64_t hp = x->shape[2] + pt + pb, wp = x->shape[3] + pl + pr;
    if (w->shape[2] < 1 || w->shape[3] < 1 || hp < w->shape[2] || wp < w->shape[3])
        FAIL("conv2d: kernel %lldx%lld does not fit the padded input %lldx%lld",
             (long long)w->shape[2], (long long)w->shape[3], (long long)hp, (long long)wp);
    int64_t shape[4] = {x->shape[0], w->shape[0], (hp - w->shape[2]) / st + 1,
                        (wp - w->shape[3]) / st + 1};
    set_shape(out, dt, 4, shape);
    return SDC_OK;
}

static sdc_status infer_linear(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err)) || (s = need(op, 1, "w", err))) return s;
    const sdc_tensor *x = op->src[0], *w = op->src[1];
    if (x->ndim < 1 || w->ndim != 2) FAIL("linear: x must have rank >= 1 and w rank 2");
    if (w->shape[1] != x->shape[x->ndim - 1])
        FAIL("linear: w is [%lld, %lld] but x's last dim is %lld", (long long)w->shape[0],
             (long long)w->shape[1], (long long)x->shape[x->ndim - 1]);
    if (op->src[2] && (s = need_vec(op, 2, "bias", w->shape[0], err))) return s;
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = w->shape[0];
    set_shape(out, dt, x->ndim, shape);
    return SDC_OK;
}

static sdc_status infer_norm(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err))) return s;
    const sdc_tensor *x = op->src[0];
    int64_t c;
    if (op->kind == SDC_OP_GROUP_NORM) {
        if (x->ndim < 2) FAIL("group_norm: x must be [N, C, ...]");
        c = x->shape[1];
        int g = op->p.group_norm.groups;
        if (g < 1 || c % g != 0)
            FAIL("group_norm: %lld channels do not split into %d groups", (long long)c, g);
        if (!(op->p.group_norm.eps > 0)) FAIL("group_norm: eps must be > 0");
    } else {
        if (x->ndim < 1) FAIL("layer_norm: x must have rank >= 1");
        c = x->shape[x->ndim - 1];
        if (!(op->p.layer_norm.eps > 0)) FAIL("layer_norm: eps must be > 0");
    }
    if ((s = need_vec(op, 1, "gamma", c, err)) || (s = need_vec(op, 2, "beta", c, err))) return s;
    set_shape(out, dt, x->ndim, x->shape);
    return SDC_OK;
}

static sdc_status infer_attention(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "q", err)) || (s = need(op, 1, "k", err)) || (s = need(op, 2, "v", err)))
        return s;
    const sdc_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2];
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3) FAIL("attention: q, k, v must be rank 3");
    int h = op->p.attention.heads;
    if (h < 1 || q->shape[2] % h != 0)
        FAIL("attention: width %lld does not split into %d heads", (long long)q->shape[2], h);
    if (k->shape[0] != q->shape[0] || v->shape[0] != q->shape[0])
        FAIL("attention: q, k, v batch sizes differ");
    if (k->shape[2] != q->shape[2] || v->shape[2] != q->shape[2])
        FAIL("attention: q, k, v widths differ (%lld, %lld, %lld)", (long long)q->shape[2],
             (long long)k->shape[2], (long long)v->shape[2]);
    if (k->shape[1] != v->shape[1] || k->shape[1] < 1)
        FAIL("attention: k and v must have the same, non-zero, number of tokens");
    if (op->p.attention.causal && k->shape[1] != q->shape[1])
        FAIL("attention: a causal mask needs as many keys as queries");
    set_shape(out, dt, 3, q->shape);
    return SDC_OK;
}

static sdc_status infer_unary(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err))) return s;
    const sdc_tensor *x = op->src[0];
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof shape);
    if (op->kind == SDC_OP_SOFTMAX && x->ndim < 1) FAIL("softmax: x must have rank >= 1");
    if (op->kind == SDC_OP_GEGLU) {
        if (x->ndim < 1 || x->shape[x->ndim - 1] % 2 != 0)
            FAIL("geglu: the last dim must be even");
        shape[x->ndim - 1] /= 2;
    }
    set_shape(out, dt, x->ndim, shape);
    return SDC_OK;
}

static sdc_status infer_binary(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "a", err)) || (s = need(op, 1, "b", err))) return s;
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    if (b->ndim > a->ndim) FAIL("%s: b has a higher rank than a", sdc_op_name(op->kind));
    for (int i = 0; i < b->ndim; i++) {
        int64_t db = b->shape[b->ndim - 1 - i], da = a->shape[a->ndim - 1 - i];
        if (db != da && db != 1)
            FAIL("%s: b's dim %d (%lld) does not broadcast to a's (%lld)", sdc_op_name(op->kind),
                 b->ndim - 1 - i, (long long)db, (long long)da);
    }
    set_shape(out, dt, a->ndim, a->shape);
    return SDC_OK;
}

static sdc_status infer_upsample(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err))) return s;
    const sdc_tensor *x = op->src[0];
    if (x->ndim != 4) FAIL("upsample2x: x must be [N, C, H, W]");
    int64_t oh = op->p.upsample.out_h ? op->p.upsample.out_h : 2 * x->shape[2];
    int64_t ow = op->p.upsample.out_w ? op->p.upsample.out_w : 2 * x->shape[3];
    if ((oh != 2 * x->shape[2] && oh != 2 * x->shape[2] - 1) ||
        (ow != 2 * x->shape[3] && ow != 2 * x->shape[3] - 1))
        FAIL("upsample2x: output %lldx%lld is not twice (or twice less one) the input %lldx%lld",
             (long long)oh, (long long)ow, (long long)x->shape[2], (long long)x->shape[3]);
    int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
    set_shape(out, dt, 4, shape);
    return SDC_OK;
}

static sdc_status infer_concat(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "a", err)) || (s = need(op, 1, "b", err))) return s;
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    if (a->ndim != b->ndim || a->ndim < 1) FAIL("concat: a and b must have the same rank >= 1");
    int axis = a->ndim == 1 ? 0 : 1;
    for (int i = 0; i < a->ndim; i++)
        if (i != axis && a->shape[i] != b->shape[i])
            FAIL("concat: dim %d differs (%lld vs %lld)", i, (long long)a->shape[i],
                 (long long)b->shape[i]);
    int64_t shape[4];
    memcpy(shape, a->shape, sizeof shape);
    shape[axis] += b->shape[axis];
    set_shape(out, dt, a->ndim, shape);
    return SDC_OK;
}

static sdc_status infer_timestep(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "t", err))) return s;
    const sdc_tensor *t = op->src[0];
    int dim = op->p.timestep.dim;
    if (t->ndim != 1) FAIL("timestep_embedding: t must be [N]");
    if (dim < 2) FAIL("timestep_embedding: dim must be >= 2");
    if (!(op->p.timestep.max_period > 1)) FAIL("timestep_embedding: max_period must be > 1");
    if (!((float)(dim / 2) - op->p.timestep.freq_shift > 0))
        FAIL("timestep_embedding: freq_shift must be below dim/2");
    int64_t shape[2] = {t->shape[0], dim};
    set_shape(out, dt, 2, shape);
    return SDC_OK;
}

static sdc_status infer_embedding(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    const sdc_tensor *ids = op->src[0];
    if (!ids || ids->dtype != SDC_I32) FAIL("embedding: ids must be I32");
    if ((s = need(op, 1, "table", err))) return s;
    const sdc_tensor *tab = op->src[1];
    if (tab->ndim != 2) FAIL("embedding: table must be [V, D]");
    if (ids->ndim > 3) FAIL("embedding: ids must have rank <= 3");
    int64_t shape[4];
    memcpy(shape, ids->shape, sizeof shape);
    shape[ids->ndim] = tab->shape[1];
    set_shape(out, dt, ids->ndim + 1, shape);
    return SDC_OK;
}

static sdc_status infer_transpose(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err))) return s;
    const sdc_tensor *x = op->src[0];
    if (x->ndim != 3) FAIL("transpose: x must be [B, M, N]");
    int64_t shape[3] = {x->shape[0], x->shape[2], x->shape[1]};
    set_shape(out, dt, 3, shape);
    return SDC_OK;
}

/* ---------------------------------------------------------------- backward */

/* Source j must have source i's shape (a gradient and its activation). */
static sdc_status need_like(const sdc_op *op, int j, const char *what, int i, sdc_err *err) {
    sdc_status s = need(op, j, what, err);
    if (s) return s;
    if (!sdc_tensor_same_shape(op->src[j], op->src[i])) {
        char a[96], b[96];
        FAIL("%s: %s is %s, expected %s", sdc_op_name(op->kind), what,
             sdc_shape_str(op->src[j], a, sizeof a), sdc_shape_str(op->src[i], b, sizeof b));
    }
    return SDC_OK;
}

/* The forward input size along one axis: given (must give `out`) or the
 * largest that gives it (see SDC_OP_CONV2D_BACKWARD). */
static sdc_status conv_in_size(int64_t given, int64_t out, int64_t k, int s, int p0, int p1,
                               const char *axis, int64_t *in, sdc_err *err) {
    int64_t n = given ? given : out * s + k - 1 - p0 - p1;
    if (out < 1 || n < 1 || n + p0 + p1 < k || (n + p0 + p1 - k) / s + 1 != out)
        FAIL("conv2d_backward: no input %s of %lld gives an output of %lld (kernel %lld, "
             "stride %d, pads %d/%d)", axis, (long long)n, (long long)out, (long long)k, s, p0,
             p1);
    *in = n;
    return SDC_OK;
}

static sdc_status infer_conv2d_backward(const sdc_op *op, sdc_dtype dt, sdc_tensor *out,
                                        sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "dy", err)) || (s = need(op, 1, "w", err))) return s;
    const sdc_tensor *dy = op->src[0], *w = op->src[1];
    if (dy->ndim != 4 || w->ndim != 4) FAIL("conv2d_backward: dy and w must be rank 4");
    if (op->src[2] || op->src[3]) FAIL("conv2d_backward: takes only dy and w");
    if (w->shape[0] != dy->shape[1])
        FAIL("conv2d_backward: w has %lld output channels, dy has %lld", (long long)w->shape[0],
             (long long)dy->shape[1]);
    int st = op->p.conv2d.stride;
    int pt = op->p.conv2d.pad_top, pb = op->p.conv2d.pad_bottom;
    int pl = op->p.conv2d.pad_left, pr = op->p.conv2d.pad_right;
    if (st < 1 || pt < 0 || pb < 0 || pl < 0 || pr < 0 || op->p.conv2d.in_h < 0 ||
        op->p.conv2d.in_w < 0)
        FAIL("conv2d_backward: stride must be >= 1, padding and input size >= 0");
    if (w->shape[2] < 1 || w->shape[3] < 1) FAIL("conv2d_backward: empty kernel");
    int64_t h, wd;
    if ((s = conv_in_size(op->p.conv2d.in_h, dy->shape[2], w->shape[2], st, pt, pb, "height", &h,
                          err)) ||
        (s = conv_in_size(op->p.conv2d.in_w, dy->shape[3], w->shape[3], st, pl, pr, "width", &wd,
                          err)))
        return s;
    int64_t shape[4] = {dy->shape[0], w->shape[1], h, wd};
    set_shape(out, dt, 4, shape);
    return SDC_OK;
}

static sdc_status infer_linear_backward(const sdc_op *op, sdc_dtype dt, sdc_tensor *out,
                                        sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "dy", err)) || (s = need(op, 1, "w", err))) return s;
    const sdc_tensor *dy = op->src[0], *w = op->src[1];
    if (dy->ndim < 1 || w->ndim != 2) FAIL("linear_backward: dy must have rank >= 1 and w rank 2");
    if (op->src[2] || op->src[3]) FAIL("linear_backward: takes only dy and w");
    if (w->shape[0] != dy->shape[dy->ndim - 1])
        FAIL("linear_backward: w is [%lld, %lld] but dy's last dim is %lld",
             (long long)w->shape[0], (long long)w->shape[1], (long long)dy->shape[dy->ndim - 1]);
    int64_t shape[4];
    memcpy(shape, dy->shape, sizeof shape);
    shape[dy->ndim - 1] = w->shape[1];
    set_shape(out, dt, dy->ndim, shape);
    return SDC_OK;
}

/* group_norm_backward {x, gamma, beta, dy}; layer_norm_backward {x, gamma, dy}. */
static sdc_status infer_norm_backward(const sdc_op *op, sdc_dtype dt, sdc_tensor *out,
                                      sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err))) return s;
    const sdc_tensor *x = op->src[0];
    int64_t c;
    int dyi;
    if (op->kind == SDC_OP_GROUP_NORM_BACKWARD) {
        if (x->ndim < 2) FAIL("group_norm_backward: x must be [N, C, ...]");
        c = x->shape[1];
        int g = op->p.group_norm.groups;
        if (g < 1 || c % g != 0)
            FAIL("group_norm_backward: %lld channels do not split into %d groups", (long long)c,
                 g);
        if (!(op->p.group_norm.eps > 0)) FAIL("group_norm_backward: eps must be > 0");
        if ((s = need_vec(op, 2, "beta", c, err))) return s;
        dyi = 3;
    } else {
        if (x->ndim < 1) FAIL("layer_norm_backward: x must have rank >= 1");
        c = x->shape[x->ndim - 1];
        if (!(op->p.layer_norm.eps > 0)) FAIL("layer_norm_backward: eps must be > 0");
        if (op->src[3]) FAIL("layer_norm_backward: takes only x, gamma and dy");
        dyi = 2;
    }
    if ((s = need_vec(op, 1, "gamma", c, err)) || (s = need_like(op, dyi, "dy", 0, err))) return s;
    set_shape(out, dt, x->ndim, x->shape);
    return SDC_OK;
}

/* Outputs dq, dk, dv: shaped like q, k, v. */
static sdc_status infer_attention_backward(const sdc_op *op, sdc_dtype dt, int i, sdc_tensor *out,
                                           sdc_err *err) {
    sdc_status s = infer_attention(op, dt, out, err);
    if (s) return s;
    if ((s = need_like(op, 3, "dy", 0, err))) return s;
    set_shape(out, dt, 3, op->src[i]->shape);
    return SDC_OK;
}

/* {x, dy}: gelu/quick_gelu/silu (dy like x) and geglu (dy [..., F] for x [..., 2F]). */
static sdc_status infer_act_backward(const sdc_op *op, sdc_dtype dt, sdc_tensor *out,
                                     sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err))) return s;
    const sdc_tensor *x = op->src[0];
    if (op->src[2] || op->src[3]) FAIL("%s: takes only x and dy", sdc_op_name(op->kind));
    if (op->kind == SDC_OP_GEGLU_BACKWARD) {
        if ((s = need(op, 1, "dy", err))) return s;
        const sdc_tensor *dy = op->src[1];
        if (x->ndim < 1 || x->shape[x->ndim - 1] % 2 != 0)
            FAIL("geglu_backward: x's last dim must be even");
        bool ok = dy->ndim == x->ndim;
        for (int d = 0; ok && d < x->ndim; d++)
            ok = dy->shape[d] == (d == x->ndim - 1 ? x->shape[d] / 2 : x->shape[d]);
        if (!ok) FAIL("geglu_backward: dy must be x's shape with the last dim halved");
    } else if ((s = need_like(op, 1, "dy", 0, err))) {
        return s;
    }
    set_shape(out, dt, x->ndim, x->shape);
    return SDC_OK;
}

static sdc_status infer_upsample_backward(const sdc_op *op, sdc_dtype dt, sdc_tensor *out,
                                          sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "dy", err))) return s;
    const sdc_tensor *dy = op->src[0];
    if (dy->ndim != 4) FAIL("upsample2x_backward: dy must be [N, C, OH, OW]");
    int64_t shape[4] = {dy->shape[0], dy->shape[1], (dy->shape[2] + 1) / 2,
                        (dy->shape[3] + 1) / 2};
    set_shape(out, dt, 4, shape);
    return SDC_OK;
}

static sdc_status infer_slice(const sdc_op *op, sdc_dtype dt, sdc_tensor *out, sdc_err *err) {
    sdc_status s;
    if ((s = need(op, 0, "x", err))) return s;
    const sdc_tensor *x = op->src[0];
    if (x->ndim < 1) FAIL("slice: x must have rank >= 1");
    int axis = x->ndim == 1 ? 0 : 1;
    int64_t start = op->p.slice.start, len = op->p.slice.len;
    if (start < 0 || len < 0 || start > x->shape[axis] || len > x->shape[axis] - start)
        FAIL("slice: [%lld, %lld + %lld) is outside dim %d of size %lld", (long long)start,
             (long long)start, (long long)len, axis, (long long)x->shape[axis]);
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = len;
    set_shape(out, dt, x->ndim, shape);
    return SDC_OK;
}

int sdc_op_dst_count(sdc_op_kind k) {
    static const unsigned char outs_of[SDC_OP_COUNT] = {
#define OP_OUTS(kind, name, outs, act) [SDC_OP_##kind] = outs,
        SDC_OPS(OP_OUTS)
#undef OP_OUTS
    };
    return (unsigned)k < SDC_OP_COUNT ? outs_of[k] : 1;
}

sdc_status sdc_op_infer(const sdc_op *op, sdc_dtype act, sdc_tensor *out, sdc_err *err) {
    return sdc_op_infer_dst(op, act, 0, out, err);
}

sdc_status sdc_op_infer_dst(const sdc_op *op, sdc_dtype act, int i, sdc_tensor *out,
                            sdc_err *err) {
    if (!op || !out) return sdc_err_set(err, SDC_ERR_ARG, "op: NULL argument");
    if (i < 0 || (unsigned)op->kind >= SDC_OP_COUNT || i >= sdc_op_dst_count(op->kind))
        return sdc_err_set(err, SDC_ERR_ARG, "%s: no output %d", sdc_op_name(op->kind), i);
    if (!is_float(act))
        return sdc_err_set(err, SDC_ERR_ARG, "%s: activation dtype %s is not a float type",
                           sdc_op_name(op->kind), sdc_dtype_name(act));
    switch (op->kind) {
    case SDC_OP_CONV2D: return infer_conv2d(op, act, out, err);
    case SDC_OP_LINEAR: return infer_linear(op, act, out, err);
    case SDC_OP_GROUP_NORM:
    case SDC_OP_LAYER_NORM: return infer_norm(op, act, out, err);
    case SDC_OP_ATTENTION: return infer_attention(op, act, out, err);
    case SDC_OP_SOFTMAX:
    case SDC_OP_GELU:
    case SDC_OP_QUICK_GELU:
    case SDC_OP_GEGLU:
    case SDC_OP_SILU: return infer_unary(op, act, out, err);
    case SDC_OP_ADD:
    case SDC_OP_MUL: return infer_binary(op, act, out, err);
    case SDC_OP_UPSAMPLE2X: return infer_upsample(op, act, out, err);
    case SDC_OP_CONCAT: return infer_concat(op, act, out, err);
    case SDC_OP_TIMESTEP_EMBED: return infer_timestep(op, act, out, err);
    case SDC_OP_EMBEDDING: return infer_embedding(op, act, out, err);
    case SDC_OP_CONVERT: {
        sdc_dtype keep = out->dtype;
        sdc_status s = infer_unary(op, act, out, err);
        if (!s && !is_float(keep)) FAIL("convert: target dtype must be F32, F16 or BF16");
        out->dtype = keep;
        return s;
    }
    case SDC_OP_TRANSPOSE: return infer_transpose(op, act, out, err);
    case SDC_OP_CONV2D_BACKWARD: return infer_conv2d_backward(op, act, out, err);
    case SDC_OP_LINEAR_BACKWARD: return infer_linear_backward(op, act, out, err);
    case SDC_OP_GROUP_NORM_BACKWARD:
    case SDC_OP_LAYER_NORM_BACKWARD: return infer_norm_backward(op, act, out, err);
    case SDC_OP_ATTENTION_BACKWARD: return infer_attention_backward(op, act, i, out, err);
    case SDC_OP_GELU_BACKWARD:
    case SDC_OP_QUICK_GELU_BACKWARD:
    case SDC_OP_SILU_BACKWARD:
    case SDC_OP_GEGLU_BACKWARD: return infer_act_backward(op, act, out, err);
    case SDC_OP_UPSAMPLE2X_BACKWARD: return infer_upsample_backward(op, act, out, err);
    case SDC_OP_SLICE: return infer_slice(op, act, out, err);
    case SDC_OP_COUNT: break;
    }
    return sdc_err_set(err, SDC_ERR_ARG, "op: unknown kind %d", (int)op->kind);
}

bool sdc_backend_supports(const sdc_backend *be, sdc_op_kind kind, sdc_dtype t) {
    if ((unsigned)kind >= SDC_OP_COUNT || !be->op[kind]) return false;
    return be->supports ? be->supports(be, kind, t) : t == SDC_F32;
}

sdc_status sdc_op_run(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    if (!be || !op || !op->dst) return sdc_err_set(err, SDC_ERR_ARG, "op: NULL argument");
    if ((unsigned)op->kind >= SDC_OP_COUNT)
        return sdc_err_set(err, SDC_ERR_ARG, "op: unknown kind %d", (int)op->kind);
    sdc_tensor want;
    sdc_dtype act = op->kind == SDC_OP_CONVERT ? op->src[0] ? op->src[0]->dtype : SDC_F32
                                               : op->dst->dtype;
    for (int i = 0; i < sdc_op_dst_count(op->kind); i++) {
        const sdc_tensor *d = i ? op->dst_more[i - 1] : op->dst;
        if (!d) return sdc_err_set(err, SDC_ERR_ARG, "%s: output %d is NULL",
                                   sdc_op_name(op->kind), i);
        want.dtype = op->dst->dtype;
        sdc_status s = sdc_op_infer_dst(op, act, i, &want, err);
        if (s) return s;
        if (!sdc_tensor_same_shape(&want, d) || want.dtype != d->dtype) {
            char a[96], b[96], name[24] = "dst";
            if (i) snprintf(name, sizeof name, "dst_more[%d]", i - 1);
            FAIL("%s: %s is %s %s, expected %s %s", sdc_op_name(op->kind), name,
                 sdc_dtype_name(d->dtype), sdc_shape_str(d, a, sizeof a),
                 sdc_dtype_name(want.dtype), sdc_shape_str(&want, b, sizeof b));
        }
        if (d->device != be->device)
            return sdc_err_set(err, SDC_ERR_ARG, "%s: dst lives on another device",
                               sdc_op_name(op->kind));
    }
    /* Activations share dst's dtype; weights (conv/linear w and bias, norm
     * gamma/beta, embedding table) may be any float type; t is always F32. */
    static const unsigned char act_mask[SDC_OP_COUNT] = {
#define OP_ACT(kind, name, outs, act) [SDC_OP_##kind] = act,
        SDC_OPS(OP_ACT)
#undef OP_ACT
    };
    for (int i = 0; i < SDC_OP_MAX_SRC; i++)
        if ((act_mask[op->kind] >> i & 1) && op->src[i]->dtype != op->dst->dtype)
            FAIL("%s: source %d is %s but dst is %s", sdc_op_name(op->kind), i,
                 sdc_dtype_name(op->src[i]->dtype), sdc_dtype_name(op->dst->dtype));
    if (op->kind == SDC_OP_TIMESTEP_EMBED && op->src[0]->dtype != SDC_F32)
        FAIL("timestep_embedding: t must be F32");
    for (int i = 0; i < SDC_OP_MAX_SRC; i++)
        if (op->src[i] && op->src[i]->device != be->device)
            return sdc_err_set(err, SDC_ERR_ARG, "%s: source %d lives on another device",
                               sdc_op_name(op->kind), i);
    if (!sdc_backend_supports(be, op->kind, op->dst->dtype) ||
        (op->kind == SDC_OP_CONVERT && !sdc_backend_supports(be, op->kind, op->src[0]->dtype)))
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: backend %s does not implement it for %s",
                           sdc_op_name(op->kind), be->name, sdc_dtype_name(op->dst->dtype));
    return be->op[op->kind](be, op, err);
}

void sdc_backend_destroy(sdc_backend *be) {
    if (be && be->destroy) be->destroy(be);
}
