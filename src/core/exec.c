/* exec.c — eager op calls with arena outputs and sticky errors (see exec.h). */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double sdc_op_flops(const sdc_op *op) {
    const sdc_tensor *d = op->dst;
    switch (op->kind) {
    case SDC_OP_CONV2D: { /* 2 · N·OC·OH·OW · C·KH·KW */
        const sdc_tensor *w = op->src[1];
        return 2.0 * (double)sdc_tensor_numel(d) * (double)(w->shape[1] * w->shape[2] * w->shape[3]);
    }
    case SDC_OP_LINEAR: /* 2 · M·N·K */
        return 2.0 * (double)sdc_tensor_numel(d) * (double)op->src[1]->shape[1];
    case SDC_OP_ATTENTION:   /* QKᵀ and PV: 4 · B·Nq·Nk·(H·D), halved under a causal mask */
    case SDC_OP_ATTENTION_BACKWARD: { /* QKᵀ, dY·Vᵀ, Pᵀ·dY, dS·K, dSᵀ·Q: 10 · ... */
        const sdc_tensor *q = op->src[0], *k = op->src[1];
        double f = (op->kind == SDC_OP_ATTENTION ? 4.0 : 10.0) * (double)q->shape[0] *
                   (double)q->shape[1] * (double)k->shape[1] * (double)q->shape[2];
        return op->p.attention.causal ? f / 2 : f;
    }
    case SDC_OP_CONV2D_BACKWARD: { /* as the forward: 2 · N·OC·OH·OW · C·KH·KW */
        const sdc_tensor *w = op->src[1];
        return 2.0 * (double)sdc_tensor_numel(op->src[0]) *
               (double)(w->shape[1] * w->shape[2] * w->shape[3]);
    }
    case SDC_OP_LINEAR_BACKWARD: /* 2 · M·N·K */
        return 2.0 * (double)sdc_tensor_numel(op->src[0]) * (double)op->src[1]->shape[1];
    default: return 0;
    }
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* With profiling on and SDC_PROFILE_TRACE set, one line per op to stderr:
 * kind, input and weight shapes, ms and GFLOP/s (finds the slow shapes). */
static void trace(const sdc_op *op, double sec) {
    static int on = -1;
    if (on < 0) on = getenv("SDC_PROFILE_TRACE") != NULL;
    if (!on) return;
    char shapes[160] = "";
    size_t used = 0;
    for (int i = 0; i < 2 && op->src[i]; i++) {
        const sdc_tensor *t = op->src[i];
        for (int d = 0; d < t->ndim && used + 24 < sizeof shapes; d++)
            used += (size_t)snprintf(shapes + used, sizeof shapes - used, "%s%lld",
                                     d ? "x" : (i ? " " : ""), (long long)t->shape[d]);
    }
    double f = sdc_op_flops(op);
    fprintf(stderr, "trace %-14s %-32s %9.3f ms %7.1f GFLOP/s\n", sdc_op_name(op->kind), shapes,
            1e3 * sec, f > 0 && sec > 0 ? f / sec / 1e9 : 0.0);
}

/* Runs op on the backend, accounting FLOPs and (when profiling) time. */
static sdc_status dispatch(sdc_exec *ex, const sdc_op *op) {
    double t0 = ex->profile ? now_seconds() : 0;
    sdc_status s = sdc_op_run(ex->be, op, ex->err);
    if (s) return s;
    if (ex->profile) {
        /* Asynchronous backends are timed to completion. */
        if ((s = ex->be->synchronize(ex->be, ex->err))) return s;
        double sec = now_seconds() - t0;
        ex->op_seconds[op->kind] += sec;
        trace(op, sec);
        ex->op_calls[op->kind]++;
    }
    ex->flops += sdc_op_flops(op);
    return SDC_OK;
}

sdc_exec sdc_exec_begin(sdc_backend *be, sdc_arena *arena, sdc_err *err) {
    return (sdc_exec){.be = be, .arena = arena, .err = err, .status = SDC_OK, .act = SDC_F32};
}

void sdc_x_dump(sdc_exec *ex, const char *name, const sdc_tensor *t) {
    if (ex->dump && !ex->status) ex->dump(ex->dump_ctx, name, t);
}

static sdc_tensor empty(void) { return (sdc_tensor){0}; }

sdc_tensor sdc_x_new(sdc_exec *ex, sdc_dtype dtype, int ndim, const int64_t *shape) {
    sdc_tensor t = empty();
    if (ex->status) return t;
    ex->status = sdc_arena_tensor(ex->arena, &t, dtype, ndim, shape, ex->err);
    return ex->status ? empty() : t;
}

void sdc_x_free(sdc_exec *ex, sdc_tensor *t) {
    if (t->data) sdc_arena_release(ex->arena, t->data);
    *t = empty();
}

sdc_tensor sdc_x_reshape(sdc_exec *ex, sdc_tensor t, int ndim, const int64_t *shape) {
    if (ex->status) return empty();
    sdc_tensor r;
    ex->status = sdc_tensor_init(&r, t.dtype, ndim, shape, t.data, ex->err);
    if (!ex->status && sdc_tensor_numel(&r) != sdc_tensor_numel(&t))
        ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "reshape: %lld elements into %lld",
                                 (long long)sdc_tensor_numel(&t), (long long)sdc_tensor_numel(&r));
    if (ex->status) return empty();
    r.device = t.device;
    return r;
}

sdc_tensor sdc_x_rows(sdc_exec *ex, sdc_tensor t, int64_t r0, int64_t n) {
    if (ex->status) return empty();
    int64_t cols = t.ndim ? t.shape[t.ndim - 1] : 1;
    int64_t rows = cols ? sdc_tensor_numel(&t) / cols : 0;
    if (r0 < 0 || n < 1 || r0 > rows - n) {
        ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "rows: [%lld, %lld) of %lld rows",
                                 (long long)r0, (long long)(r0 + n), (long long)rows);
        return empty();
    }
    char *base = (char *)t.data + (size_t)(r0 * cols) * sdc_dtype_size(t.dtype);
    sdc_tensor r;
    ex->status = sdc_tensor_init(&r, t.dtype, 3, (const int64_t[]){1, n, cols}, base, ex->err);
    if (ex->status) return empty();
    r.device = t.device;
    return r;
}

/* Infers dst, allocates it from the arena, runs. */
static sdc_tensor run(sdc_exec *ex, sdc_op *op, sdc_dtype dst_dtype) {
    if (ex->status) return empty();
    sdc_tensor shape, out;
    shape.dtype = dst_dtype;
    ex->status = sdc_op_infer(op, op->kind == SDC_OP_CONVERT ? SDC_F32 : dst_dtype, &shape, ex->err);
    if (!ex->status) ex->status = sdc_arena_tensor(ex->arena, &out, shape.dtype, shape.ndim,
                                                   shape.shape, ex->err);
    if (ex->status) return empty();
    op->dst = &out;
    ex->status = dispatch(ex, op);
    for (int i = 0; ex->drop_weights && i < SDC_OP_MAX_SRC; i++) sdc_tensor_release_pages(op->src[i]);
    if (ex->status) {
        sdc_arena_release(ex->arena, out.data);
        return empty();
    }
    return out;
}

sdc_tensor sdc_x_conv2d_pad(sdc_exec *ex, sdc_tensor x, const sdc_tensor *w, const sdc_tensor *b,
                            int stride, int top, int bottom, int left, int right) {
    sdc_op op = {.kind = SDC_OP_CONV2D, .src = {&x, w, b}};
    op.p.conv2d.stride = stride;
    op.p.conv2d.pad_top = top;
    op.p.conv2d.pad_bottom = bottom;
    op.p.conv2d.pad_left = left;
    op.p.conv2d.pad_right = right;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_conv2d(sdc_exec *ex, sdc_tensor x, const sdc_tensor *w, const sdc_tensor *b,
                        int stride, int pad) {
    return sdc_x_conv2d_pad(ex, x, w, b, stride, pad, pad, pad, pad);
}

sdc_tensor sdc_x_linear(sdc_exec *ex, sdc_tensor x, const sdc_tensor *w, const sdc_tensor *b) {
    sdc_op op = {.kind = SDC_OP_LINEAR, .src = {&x, w, b}};
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_group_norm(sdc_exec *ex, sdc_tensor x, const sdc_tensor *gamma,
                            const sdc_tensor *beta, int groups, float eps, bool silu) {
    sdc_op op = {.kind = SDC_OP_GROUP_NORM, .src = {&x, gamma, beta}};
    op.p.group_norm.groups = groups;
    op.p.group_norm.eps = eps;
    op.p.group_norm.silu = silu;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_layer_norm(sdc_exec *ex, sdc_tensor x, const sdc_tensor *gamma,
                            const sdc_tensor *beta, float eps) {
    sdc_op op = {.kind = SDC_OP_LAYER_NORM, .src = {&x, gamma, beta}};
    op.p.layer_norm.eps = eps;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_attention(sdc_exec *ex, sdc_tensor q, sdc_tensor k, sdc_tensor v, int heads,
                           bool causal) {
    sdc_op op = {.kind = SDC_OP_ATTENTION, .src = {&q, &k, &v}};
    op.p.attention.heads = heads;
    op.p.attention.causal = causal;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_unary(sdc_exec *ex, sdc_op_kind kind, sdc_tensor x) {
    sdc_op op = {.kind = kind, .src = {&x}};
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_binary(sdc_exec *ex, sdc_op_kind kind, sdc_tensor a, sdc_tensor b) {
    sdc_op op = {.kind = kind, .src = {&a, &b}};
    return run(ex, &op, ex->act);
}

void sdc_x_add_inplace(sdc_exec *ex, sdc_tensor a, sdc_tensor b) {
    if (ex->status) return;
    sdc_op op = {.kind = SDC_OP_ADD, .src = {&a, &b}, .dst = &a};
    ex->status = dispatch(ex, &op);
}

sdc_tensor sdc_x_concat(sdc_exec *ex, sdc_tensor a, sdc_tensor b) {
    sdc_op op = {.kind = SDC_OP_CONCAT, .src = {&a, &b}};
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_upsample_to(sdc_exec *ex, sdc_tensor x, int64_t out_h, int64_t out_w) {
    sdc_op op = {.kind = SDC_OP_UPSAMPLE2X, .src = {&x}};
    op.p.upsample.out_h = out_h;
    op.p.upsample.out_w = out_w;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_timestep_embedding(sdc_exec *ex, sdc_tensor t, int dim, bool flip_sin_to_cos,
                                    float freq_shift) {
    sdc_op op = {.kind = SDC_OP_TIMESTEP_EMBED, .src = {&t}};
    op.p.timestep.dim = dim;
    op.p.timestep.flip_sin_to_cos = flip_sin_to_cos;
    op.p.timestep.freq_shift = freq_shift;
    op.p.timestep.max_period = 10000.0f;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_embedding(sdc_exec *ex, sdc_tensor ids, const sdc_tensor *table) {
    sdc_op op = {.kind = SDC_OP_EMBEDDING, .src = {&ids, table}};
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_convert(sdc_exec *ex, sdc_tensor x, sdc_dtype to) {
    sdc_op op = {.kind = SDC_OP_CONVERT, .src = {&x}};
    return run(ex, &op, to);
}

sdc_tensor sdc_x_conv2d_backward(sdc_exec *ex, sdc_tensor dy, const sdc_tensor *w, int stride,
                                 int pad, int64_t in_h, int64_t in_w) {
    sdc_op op = {.kind = SDC_OP_CONV2D_BACKWARD, .src = {&dy, w}};
    op.p.conv2d.stride = stride;
    op.p.conv2d.pad_top = op.p.conv2d.pad_bottom = pad;
    op.p.conv2d.pad_left = op.p.conv2d.pad_right = pad;
    op.p.conv2d.in_h = in_h;
    op.p.conv2d.in_w = in_w;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_linear_backward(sdc_exec *ex, sdc_tensor dy, const sdc_tensor *w) {
    sdc_op op = {.kind = SDC_OP_LINEAR_BACKWARD, .src = {&dy, w}};
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_group_norm_backward(sdc_exec *ex, sdc_tensor x, const sdc_tensor *gamma,
                                     const sdc_tensor *beta, sdc_tensor dy, int groups, float eps,
                                     bool silu) {
    sdc_op op = {.kind = SDC_OP_GROUP_NORM_BACKWARD, .src = {&x, gamma, beta, &dy}};
    op.p.group_norm.groups = groups;
    op.p.group_norm.eps = eps;
    op.p.group_norm.silu = silu;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_layer_norm_backward(sdc_exec *ex, sdc_tensor x, const sdc_tensor *gamma,
                                     sdc_tensor dy, float eps) {
    sdc_op op = {.kind = SDC_OP_LAYER_NORM_BACKWARD, .src = {&x, gamma, &dy}};
    op.p.layer_norm.eps = eps;
    return run(ex, &op, ex->act);
}

void sdc_x_attention_backward(sdc_exec *ex, sdc_tensor q, sdc_tensor k, sdc_tensor v,
                              sdc_tensor dy, int heads, bool causal, sdc_tensor *dq,
                              sdc_tensor *dk, sdc_tensor *dv) {
    sdc_tensor out[3] = {{0}};
    *dq = *dk = *dv = empty();
    if (ex->status) return;
    sdc_op op = {.kind = SDC_OP_ATTENTION_BACKWARD, .src = {&q, &k, &v, &dy}};
    op.p.attention.heads = heads;
    op.p.attention.causal = causal;
    for (int i = 0; i < 3 && !ex->status; i++) {
        sdc_tensor shape;
        shape.dtype = ex->act;
        ex->status = sdc_op_infer_dst(&op, ex->act, i, &shape, ex->err);
        if (!ex->status)
            ex->status = sdc_arena_tensor(ex->arena, &out[i], shape.dtype, shape.ndim,
                                          shape.shape, ex->err);
    }
    op.dst = &out[0];
    op.dst_more[0] = &out[1];
    op.dst_more[1] = &out[2];
    if (!ex->status) ex->status = dispatch(ex, &op);
    if (ex->status) {
        for (int i = 0; i < 3; i++) sdc_x_free(ex, &out[i]);
        return;
    }
    *dq = out[0];
    *dk = out[1];
    *dv = out[2];
}

sdc_tensor sdc_x_act_backward(sdc_exec *ex, sdc_op_kind kind, sdc_tensor x, sdc_tensor dy) {
    sdc_op op = {.kind = kind, .src = {&x, &dy}};
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_upsample2x_backward(sdc_exec *ex, sdc_tensor dy) {
    sdc_op op = {.kind = SDC_OP_UPSAMPLE2X_BACKWARD, .src = {&dy}};
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_slice(sdc_exec *ex, sdc_tensor x, int64_t start, int64_t len) {
    sdc_op op = {.kind = SDC_OP_SLICE, .src = {&x}};
    op.p.slice.start = start;
    op.p.slice.len = len;
    return run(ex, &op, ex->act);
}

sdc_tensor sdc_x_copy(sdc_exec *ex, sdc_tensor x) {
    if (!ex->status && x.ndim < 1) {
        ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "copy: rank-0 tensor");
        return empty();
    }
    return sdc_x_slice(ex, x, 0, x.ndim > 1 ? x.shape[1] : x.shape[0]);
}

void sdc_x_accumulate(sdc_exec *ex, sdc_tensor *acc, sdc_tensor *t) {
    if (!acc->data && !ex->status) {
        *acc = *t;
        *t = empty();
        return;
    }
    sdc_x_add_inplace(ex, *acc, *t);
    sdc_x_free(ex, t);
}

sdc_tensor sdc_x_from_host(sdc_exec *ex, const float *host, sdc_dtype dt, int ndim,
                           const int64_t *shape) {
    sdc_tensor f = sdc_x_new(ex, SDC_F32, ndim, shape);
    if (ex->status) return empty();
    ex->status = ex->be->upload(ex->be, f.data, host, sdc_tensor_nbytes(&f), ex->err);
    if (ex->status || dt == SDC_F32) {
        if (ex->status) sdc_x_free(ex, &f);
        return f;
    }
    sdc_tensor y = sdc_x_convert(ex, f, dt);
    sdc_x_free(ex, &f);
    return y;
}

sdc_status sdc_x_to_host(sdc_exec *ex, const sdc_tensor *t, float *host) {
    if (ex->status) return ex->status;
    if (t->dtype == SDC_F32)
        return ex->status = ex->be->download(ex->be, host, t->data, sdc_tensor_nbytes(t), ex->err);
    sdc_tensor f = sdc_x_convert(ex, *t, SDC_F32);
    if (!ex->status)
        ex->status = ex->be->download(ex->be, host, f.data, sdc_tensor_nbytes(&f), ex->err);
    sdc_x_free(ex, &f);
    return ex->status;
}
