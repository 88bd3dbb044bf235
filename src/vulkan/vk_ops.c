/* vk_ops.c — the Vulkan backend's elementwise, layout and lookup ops:
 * each fills its shader's push constants (tensor addresses, dtype codes,
 * sizes) and records one dispatch. The push structs mirror the shaders'
 * push_constant blocks (uvec2 addresses first, then 32-bit fields). */
#include "vk_ops_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint32_t vk_dt(sdc_dtype t) { return t == SDC_F16 ? 1u : t == SDC_BF16 ? 2u : 0u; }

uint64_t vk_addr(const sdc_tensor *t) { return t ? (uint64_t)(uintptr_t)t->data : 0; }

sdc_status vk_check_sizes(const sdc_op *op, sdc_err *err) {
    const sdc_tensor *ts[SDC_OP_MAX_SRC + 1] = {op->dst, op->src[0], op->src[1], op->src[2], op->src[3]};
    for (int i = 0; i < SDC_OP_MAX_SRC + 1; i++)
        if (ts[i] && sdc_tensor_numel(ts[i]) > INT32_MAX)
            return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                               "vulkan: %s: a tensor of %lld elements (the shaders index with 32 bits)",
                               sdc_op_name(op->kind), (long long)sdc_tensor_numel(ts[i]));
    return SDC_OK;
}

/* ---------------------------------------------------------------- unary */

typedef struct unary_push {
    uint64_t x, y;
    uint32_t n, dx, dy, op, f;
} unary_push;

enum { UN_SILU = 0, UN_GELU, UN_QUICK_GELU, UN_GEGLU, UN_CONVERT };

sdc_status vk_op_unary(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    const sdc_tensor *x = op->src[0];
    unary_push p = {.x = vk_addr(x), .y = vk_addr(op->dst), .n = (uint32_t)sdc_tensor_numel(op->dst),
                    .dx = vk_dt(x->dtype), .dy = vk_dt(op->dst->dtype)};
    switch (op->kind) {
    case SDC_OP_SILU: p.op = UN_SILU; break;
    case SDC_OP_GELU: p.op = UN_GELU; break;
    case SDC_OP_QUICK_GELU: p.op = UN_QUICK_GELU; break;
    case SDC_OP_CONVERT: p.op = UN_CONVERT; break;
    default: /* geglu: x [..., 2F] -> y [..., F] */
        p.op = UN_GEGLU;
        p.f = (uint32_t)op->dst->shape[op->dst->ndim - 1];
        break;
    }
    return vk_dispatch_1d(vk_of(be), VK_SH_UNARY, &p, sizeof p, p.n, 256, err);
}

/* ---------------------------------------------------------------- binary */

typedef struct binary_push {
    uint64_t a, b, y;
    uint32_t n, da, db, dy, mul;
    uint32_t d1, d2, d3;
    uint32_t s0, s1, s2, s3;
} binary_push;

/* a [d0..d3] (right-aligned into 4 dims) and b's strides over them: b is
 * right-aligned to a; a dim where b has 1 gets stride 0. */
sdc_status vk_op_binary(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    int64_t ad[4] = {1, 1, 1, 1}, bd[4] = {1, 1, 1, 1};
    for (int i = 0; i < a->ndim; i++) ad[4 - a->ndim + i] = a->shape[i];
    for (int i = 0; i < b->ndim; i++) bd[4 - b->ndim + i] = b->shape[i];
    uint32_t st[4];
    int64_t stride = 1;
    for (int i = 3; i >= 0; i--) {
        st[i] = bd[i] == 1 ? 0 : (uint32_t)stride;
        stride *= bd[i];
    }
    binary_push p = {.a = vk_addr(a), .b = vk_addr(b), .y = vk_addr(op->dst),
                     .n = (uint32_t)sdc_tensor_numel(op->dst), .da = vk_dt(a->dtype),
                     .db = vk_dt(b->dtype), .dy = vk_dt(op->dst->dtype),
                     .mul = op->kind == SDC_OP_MUL,
                     .d1 = (uint32_t)ad[1], .d2 = (uint32_t)ad[2], .d3 = (uint32_t)ad[3],
                     .s0 = st[0], .s1 = st[1], .s2 = st[2], .s3 = st[3]};
    if (!p.d1 || !p.d2 || !p.d3) return SDC_OK; /* empty */
    return vk_dispatch_1d(vk_of(be), VK_SH_BINARY, &p, sizeof p, p.n, 256, err);
}

/* ---------------------------------------------------------------- layout */

typedef struct layout_push {
    uint64_t a, b, y;
    uint32_t n, dt, op;
    uint32_t p0, p1, p2, p3;
} layout_push;

enum { LY_UPSAMPLE = 0, LY_CONCAT, LY_TRANSPOSE, LY_SLICE };

static sdc_status layout_run(sdc_backend *be, const sdc_op *op, layout_push *p, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    p->y = vk_addr(op->dst);
    p->n = (uint32_t)sdc_tensor_numel(op->dst);
    p->dt = vk_dt(op->dst->dtype);
    return vk_dispatch_1d(vk_of(be), VK_SH_LAYOUT, p, sizeof *p, p->n, 256, err);
}

/* x [N, C, H, W] -> y [N, C, OH, OW] */
sdc_status vk_op_upsample2x(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    layout_push p = {.a = vk_addr(x), .op = LY_UPSAMPLE, .p0 = (uint32_t)x->shape[2],
                     .p1 = (uint32_t)x->shape[3], .p2 = (uint32_t)op->dst->shape[2],
                     .p3 = (uint32_t)op->dst->shape[3]};
    return layout_run(be, op, &p, err);
}

/* a [N, Ca, ...], b [N, Cb, ...] -> y [N, Ca+Cb, ...]; rank 1 joins along dim 0. */
sdc_status vk_op_concat(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    int64_t outer = a->ndim == 1 ? 1 : a->shape[0];
    int64_t na = sdc_tensor_numel(a), nb = sdc_tensor_numel(b);
    layout_push p = {.a = vk_addr(a), .b = vk_addr(b), .op = LY_CONCAT,
                     .p0 = (uint32_t)(outer ? na / outer : 0), .p1 = (uint32_t)(outer ? nb / outer : 0)};
    return layout_run(be, op, &p, err);
}

/* x [B, M, N] -> y [B, N, M] */
sdc_status vk_op_transpose(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    layout_push p = {.a = vk_addr(x), .op = LY_TRANSPOSE, .p0 = (uint32_t)x->shape[1],
                     .p1 = (uint32_t)x->shape[2]};
    return layout_run(be, op, &p, err);
}

/* x [N, C, ...] -> y [N, len, ...]: channels [start, start + len); rank 1 along dim 0. */
sdc_status vk_op_slice(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    int64_t outer = x->ndim == 1 ? 1 : x->shape[0], c = x->ndim == 1 ? x->shape[0] : x->shape[1];
    int64_t n = sdc_tensor_numel(x), inner = outer && c ? n / (outer * c) : 0;
    layout_push p = {.a = vk_addr(x), .op = LY_SLICE, .p0 = (uint32_t)(c * inner),
                     .p1 = (uint32_t)(op->p.slice.len * inner),
                     .p2 = (uint32_t)(op->p.slice.start * inner)};
    return layout_run(be, op, &p, err);
}

/* ---------------------------------------------------------------- lookup */

typedef struct embed_push {
    uint64_t ids, table, y;
    uint32_t n, dtab, dy, op, d, half, flip;
} embed_push;

/* ids [...] (I32), table [V, D] -> y [..., D]. The ids are checked on the
 * host (a download: the op names a bad id and its position, as the CPU). */
sdc_status vk_op_embedding(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    const sdc_tensor *ids = op->src[0], *tab = op->src[1];
    int64_t rows = sdc_tensor_numel(ids), v = tab->shape[0];
    int32_t *h = malloc((size_t)(rows ? rows : 1) * sizeof *h);
    if (!h) return sdc_err_set(err, SDC_ERR_OOM, "vulkan: embedding: out of host memory");
    s = vk_download_fn(be, h, ids->data, (size_t)rows * sizeof *h, err);
    for (int64_t i = 0; !s && i < rows; i++)
        if (h[i] < 0 || h[i] >= v)
            s = sdc_err_set(err, SDC_ERR_ARG, "embedding: id %d at position %lld is outside [0, %lld)",
                            (int)h[i], (long long)i, (long long)v);
    free(h);
    if (s) return s;
    embed_push p = {.ids = vk_addr(ids), .table = vk_addr(tab), .y = vk_addr(op->dst),
                    .n = (uint32_t)sdc_tensor_numel(op->dst), .dtab = vk_dt(tab->dtype),
                    .dy = vk_dt(op->dst->dtype), .op = 0, .d = (uint32_t)tab->shape[1]};
    return vk_dispatch_1d(vk_of(be), VK_SH_EMBED, &p, sizeof p, p.n, 256, err);
}

/* t [N] (F32) -> y [N, dim]. The frequencies come from the host's expf,
 * exactly the CPU backend's: a shader's exp is only specified to a few ulp,
 * and t (up to 1000) multiplies its error. */
sdc_status vk_op_timestep(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    int dim = op->p.timestep.dim, half = dim / 2;
    float neg_log = (float)-log((double)op->p.timestep.max_period);
    float denom = (float)half - op->p.timestep.freq_shift;
    float *freq = malloc((size_t)(half ? half : 1) * sizeof *freq);
    if (!freq) return sdc_err_set(err, SDC_ERR_OOM, "vulkan: timestep_embedding: out of host memory");
    for (int i = 0; i < half; i++) freq[i] = expf(neg_log * (float)i / denom);
    void *dev = vk_alloc_fn(be, (size_t)(half ? half : 1) * sizeof *freq);
    if (!dev) {
        free(freq);
        return sdc_err_set(err, SDC_ERR_OOM, "vulkan: timestep_embedding: no device memory");
    }
    s = vk_upload_fn(be, dev, freq, (size_t)half * sizeof *freq, err);
    free(freq);
    embed_push p = {.ids = vk_addr(op->src[0]), .table = (uint64_t)(uintptr_t)dev,
                    .y = vk_addr(op->dst), .n = (uint32_t)sdc_tensor_numel(op->dst),
                    .dy = vk_dt(op->dst->dtype), .op = 1, .d = (uint32_t)dim,
                    .half = (uint32_t)half, .flip = op->p.timestep.flip_sin_to_cos};
    if (!s) s = vk_dispatch_1d(vk_of(be), VK_SH_EMBED, &p, sizeof p, p.n, 256, err);
    if (!s) s = vk_flush(vk_of(be), err); /* the table is read before it is freed */
    vk_free_fn(be, dev);
    return s;
}
