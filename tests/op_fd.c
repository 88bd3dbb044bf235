/* op_fd.c — central-difference checks of the backward references (see
 * op_fd.h). The forward op and the mapping of its inputs to the backward's
 * outputs are per kind (fd_setup); everything runs on F64 copies of the
 * row's inputs through op_ref(), never through a backend. */
#include "op_fd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool op_fd_applies(sdc_op_kind k) {
    switch (k) {
    case SDC_OP_CONV2D_BACKWARD:
    case SDC_OP_LINEAR_BACKWARD:
    case SDC_OP_GROUP_NORM_BACKWARD:
    case SDC_OP_LAYER_NORM_BACKWARD:
    case SDC_OP_ATTENTION_BACKWARD:
    case SDC_OP_GELU_BACKWARD:
    case SDC_OP_QUICK_GELU_BACKWARD:
    case SDC_OP_SILU_BACKWARD:
    case SDC_OP_GEGLU_BACKWARD:
    case SDC_OP_UPSAMPLE2X_BACKWARD: return true;
    default: return false;
    }
}

/* An F64 host tensor of the given shape (malloc'ed data, NULL on OOM). */
static bool f64_tensor(sdc_tensor *t, int ndim, const int64_t *shape) {
    if (sdc_tensor_init(t, SDC_F64, ndim, shape, NULL, NULL)) return false;
    size_t n = (size_t)sdc_tensor_numel(t);
    t->data = calloc(n ? n : 1, sizeof(double));
    return t->data != NULL;
}

static bool f64_copy(sdc_tensor *dst, const sdc_tensor *src) {
    if (!f64_tensor(dst, src->ndim, src->shape)) return false;
    double *d = dst->data;
    for (size_t i = 0; i < (size_t)sdc_tensor_numel(src); i++) d[i] = op_ref_load(src, i);
    return true;
}

/* Deterministic values in (-1, 1) for the inputs only the forward has. */
static void fill_unit(sdc_tensor *t, uint64_t *s) {
    double *d = t->data;
    for (size_t i = 0; i < (size_t)sdc_tensor_numel(t); i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        d[i] = ((double)(*s >> 11) * 0x1p-53) * 2 - 1;
    }
}

typedef struct fd_plan {
    sdc_op fwd;                  /* over F64 tensors */
    const sdc_tensor *dy;        /* the forward output's gradient (a backward source) */
    sdc_tensor *wrt[SDC_OP_MAX_DST]; /* the forward input each backward output is the gradient of */
    sdc_tensor extra;            /* an input only the forward has (owned) */
} fd_plan;

/* The forward of backward op b over its F64 sources s[], b's output shapes
 * out[]. */
static bool fd_setup(const sdc_op *b, sdc_tensor *s, const sdc_tensor *out, uint64_t seed,
                     fd_plan *p) {
    memset(p, 0, sizeof *p);
    sdc_op *f = &p->fwd;
    uint64_t st = seed ^ 0x5eed;
    switch (b->kind) {
    case SDC_OP_CONV2D_BACKWARD:
    case SDC_OP_LINEAR_BACKWARD:
    case SDC_OP_UPSAMPLE2X_BACKWARD:
        /* Linear in x: the derivative holds at any x of dx's shape. */
        if (!f64_tensor(&p->extra, out[0].ndim, out[0].shape)) return false;
        fill_unit(&p->extra, &st);
        f->kind = b->kind == SDC_OP_CONV2D_BACKWARD   ? SDC_OP_CONV2D
                  : b->kind == SDC_OP_LINEAR_BACKWARD ? SDC_OP_LINEAR
                                                      : SDC_OP_UPSAMPLE2X;
        f->src[0] = &p->extra;
        if (b->kind != SDC_OP_UPSAMPLE2X_BACKWARD) f->src[1] = &s[1];
        f->p = b->p;
        if (b->kind == SDC_OP_UPSAMPLE2X_BACKWARD) {
            f->p.upsample.out_h = s[0].shape[2];
            f->p.upsample.out_w = s[0].shape[3];
        }
        p->dy = &s[0];
        p->wrt[0] = &p->extra;
        return true;
    case SDC_OP_GROUP_NORM_BACKWARD:
        *f = (sdc_op){.kind = SDC_OP_GROUP_NORM, .src = {&s[0], &s[1], &s[2]}, .p = b->p};
        p->dy = &s[3];
        p->wrt[0] = &s[0];
        return true;
    case SDC_OP_LAYER_NORM_BACKWARD:
        /* beta shifts the output only: any beta will do. */
        if (!f64_tensor(&p->extra, 1, s[1].shape)) return false;
        fill_unit(&p->extra, &st);
        *f = (sdc_op){.kind = SDC_OP_LAYER_NORM, .src = {&s[0], &s[1], &p->extra}, .p = b->p};
        p->dy = &s[2];
        p->wrt[0] = &s[0];
        return true;
    case SDC_OP_ATTENTION_BACKWARD:
        *f = (sdc_op){.kind = SDC_OP_ATTENTION, .src = {&s[0], &s[1], &s[2]}, .p = b->p};
        p->dy = &s[3];
        for (int i = 0; i < 3; i++) p->wrt[i] = &s[i];
        return true;
    case SDC_OP_GELU_BACKWARD:
    case SDC_OP_QUICK_GELU_BACKWARD:
    case SDC_OP_SILU_BACKWARD:
    case SDC_OP_GEGLU_BACKWARD: {
        static const sdc_op_kind fk[] = {SDC_OP_GELU, SDC_OP_QUICK_GELU, SDC_OP_SILU,
                                         SDC_OP_GEGLU};
        *f = (sdc_op){.kind = fk[b->kind - SDC_OP_GELU_BACKWARD], .src = {&s[0]}};
        p->dy = &s[1];
        p->wrt[0] = &s[0];
        return true;
    }
    default: return false;
    }
}

/* L = <dy, forward(x)>; NAN when the reference fails. */
static double objective(const fd_plan *p, double *y) {
    if (!op_ref(&p->fwd, p->dy, y)) return NAN;
    double l = 0;
    const double *dy = p->dy->data;
    for (size_t i = 0; i < (size_t)sdc_tensor_numel(p->dy); i++) l += dy[i] * y[i];
    return l;
}

/* (L(x + h) - L(x - h)) / (the exact step), with x[idx] restored. */
static double central(const fd_plan *p, double *y, double *x, size_t idx, double h) {
    double x0 = x[idx], hi = x0 + h, lo = x0 - h;
    x[idx] = hi;
    double lp = objective(p, y);
    x[idx] = lo;
    double lm = objective(p, y);
    x[idx] = x0;
    return (lp - lm) / (hi - lo);
}

/* Richardson's extrapolation of two central differences: the h² terms
 * cancel, leaving O(h⁴). Plain central differences were not enough on
 * peaky attention (scores ~50: large third derivatives), where their
 * truncation error passed 3e-6 on 1.7 % of seeds. */
static double richardson(const fd_plan *p, double *y, double *x, size_t idx, double h) {
    return (4 * central(p, y, x, idx, h / 2) - central(p, y, x, idx, h)) / 3;
}

bool op_fd_check(const op_case *c, uint64_t seed, int max_probes, op_error *e, sdc_err *err) {
    memset(e, 0, sizeof *e);
    if (!op_fd_applies(c->op.kind)) {
        sdc_err_set(err, SDC_ERR_ARG, "%s: no forward to difference", c->name);
        return false;
    }
    sdc_backend *be = sdc_cpu_backend_create(err);
    if (!be) return false;
    op_inst in;
    op_opts o = {.seed = seed, .act = SDC_F32};
    sdc_tensor s[SDC_OP_MAX_SRC] = {{0}};
    fd_plan p = {0};
    double *g = NULL, *y = NULL;
    bool ok = op_inst_build(&in, c, &o, be, err) == SDC_OK;
    for (int i = 0; ok && i < in.nsrc; i++) ok = f64_copy(&s[i], &in.hsrc[i]);
    size_t ng = 0;
    for (int i = 0; ok && i < in.ndst; i++) ng += (size_t)sdc_tensor_numel(&in.hdst[i]);
    ok = ok && fd_setup(&in.op, s, in.hdst, seed, &p);
    if (ok) {
        g = malloc((ng ? ng : 1) * sizeof *g);
        y = malloc((size_t)(sdc_tensor_numel(p.dy) ? sdc_tensor_numel(p.dy) : 1) * sizeof *y);
        sdc_op b = in.op;
        for (int i = 0; i < in.nsrc; i++) b.src[i] = &s[i];
        ok = g && y && op_ref(&b, &in.hdst[0], g);
    }
    /* Each output's probes, against Richardson-extrapolated differences. */
    double num = 0, den = 0;
    size_t at = 0;
    for (int oi = 0; ok && oi < in.ndst; oi++) {
        sdc_tensor *t = p.wrt[oi];
        double *x = t->data;
        size_t n = (size_t)sdc_tensor_numel(t);
        size_t probes = max_probes > 0 && n > (size_t)max_probes ? (size_t)max_probes : n;
        for (size_t k = 0; ok && k < probes; k++) {
            size_t idx = probes == n ? k : k * n / probes;
            double x0 = x[idx], h = 1e-5 * (1 + fabs(x0));
            double fd = richardson(&p, y, x, idx, h), an = g[at + idx], d = fabs(fd - an);
            ok = isfinite(fd);
            if (d > e->max_abs) {
                e->max_abs = d;
                e->worst = idx;
                e->worst_got = an;
                e->worst_ref = fd;
                e->worst_out = oi;
            }
            num += d * d;
            den += fd * fd;
        }
        at += n;
    }
    e->rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    if (!ok && err->code == SDC_OK) sdc_err_set(err, SDC_ERR_OOM, "%s: reference failed", c->name);
    free(g);
    free(y);
    free(p.extra.data);
    for (int i = 0; i < SDC_OP_MAX_SRC; i++) free(s[i].data);
    op_inst_free(&in);
    sdc_backend_destroy(be);
    return ok;
}
