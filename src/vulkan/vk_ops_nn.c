/* vk_ops_nn.c — the Vulkan backend's compute-heavy ops: linear and conv2d
 * on the tiled GEMM (gemm.comp), the row reductions (norm.comp: group norm,
 * layer norm, softmax) and attention (attention.comp). */
#include "vk_ops_common.h"

#include <math.h>

typedef struct gemm_push {
    uint64_t x, w, b, y;
    uint32_t M, N, K, dx, dw, db, dy;
    uint32_t C, H, W, KW, KHW, OW, stride, pad_top, pad_left;
} gemm_push;

#define TILE 64u

/* x [..., K], w [N, K], b [N] or NULL -> y [..., N] */
sdc_status vk_op_linear(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    const sdc_tensor *x = op->src[0], *w = op->src[1], *b = op->src[2];
    uint32_t K = (uint32_t)w->shape[1], N = (uint32_t)w->shape[0];
    uint32_t M = (uint32_t)(N ? sdc_tensor_numel(op->dst) / N : 0);
    gemm_push p = {.x = vk_addr(x), .w = vk_addr(w), .b = vk_addr(b), .y = vk_addr(op->dst),
                   .M = M, .N = N, .K = K, .dx = vk_dt(x->dtype), .dw = vk_dt(w->dtype),
                   .db = b ? vk_dt(b->dtype) : 0, .dy = vk_dt(op->dst->dtype)};
    return vk_dispatch(vk_of(be), VK_SH_GEMM, &p, sizeof p, (N + TILE - 1) / TILE,
                       (M + TILE - 1) / TILE, 1, err);
}

/* x [N, C, H, W], w [OC, C, KH, KW], b [OC] or NULL -> y [N, OC, OH, OW]:
 * per image, y[oc, pixel] = w [OC, C*KH*KW] · the implicit im2col matrix. */
sdc_status vk_op_conv2d(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    const sdc_tensor *x = op->src[0], *w = op->src[1], *b = op->src[2], *y = op->dst;
    uint32_t oc = (uint32_t)w->shape[0], kh = (uint32_t)w->shape[2], kw = (uint32_t)w->shape[3];
    uint32_t pixels = (uint32_t)(y->shape[2] * y->shape[3]);
    gemm_push p = {.x = vk_addr(x), .w = vk_addr(w), .b = vk_addr(b), .y = vk_addr(y),
                   .M = oc, .N = pixels, .K = (uint32_t)x->shape[1] * kh * kw,
                   .dx = vk_dt(x->dtype), .dw = vk_dt(w->dtype), .db = b ? vk_dt(b->dtype) : 0,
                   .dy = vk_dt(y->dtype), .C = (uint32_t)x->shape[1], .H = (uint32_t)x->shape[2],
                   .W = (uint32_t)x->shape[3], .KW = kw, .KHW = kh * kw,
                   .OW = (uint32_t)y->shape[3], .stride = (uint32_t)op->p.conv2d.stride,
                   .pad_top = (uint32_t)op->p.conv2d.pad_top,
                   .pad_left = (uint32_t)op->p.conv2d.pad_left};
    return vk_dispatch(vk_of(be), VK_SH_CONV, &p, sizeof p, (pixels + TILE - 1) / TILE,
                       (oc + TILE - 1) / TILE, (uint32_t)x->shape[0], err);
}

/* ---------------------------------------------------------------- norms */

typedef struct norm_push {
    uint64_t x, gamma, beta, y;
    uint32_t rows, len, spatial, cpg, groups;
    uint32_t dx, dw, dy, op, silu;
    float eps;
} norm_push;

enum { NM_GROUP = 0, NM_LAYER, NM_SOFTMAX };

static sdc_status norm_run(sdc_backend *be, const sdc_op *op, norm_push *p, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    p->x = vk_addr(op->src[0]);
    p->y = vk_addr(op->dst);
    p->dx = vk_dt(op->src[0]->dtype);
    p->dy = vk_dt(op->dst->dtype);
    if (op->kind != SDC_OP_SOFTMAX) {
        p->gamma = vk_addr(op->src[1]);
        p->beta = vk_addr(op->src[2]);
        p->dw = vk_dt(op->src[1]->dtype); /* gamma and beta share a dtype (the loader's) */
    }
    if (!p->len) return SDC_OK;
    return vk_dispatch_1d(vk_of(be), VK_SH_NORM, p, sizeof *p, (uint64_t)p->rows * 256u, 256, err);
}

/* x [N, C, ...spatial] -> y; a row is one (sample, group). */
sdc_status vk_op_group_norm(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    int64_t n = x->shape[0], c = x->shape[1], total = sdc_tensor_numel(x);
    uint32_t groups = (uint32_t)op->p.group_norm.groups;
    int64_t spatial = n > 0 && c > 0 ? total / (n * c) : 0;
    norm_push p = {.rows = (uint32_t)(n * groups), .len = (uint32_t)(c / groups * spatial),
                   .spatial = (uint32_t)spatial, .cpg = (uint32_t)(c / groups), .groups = groups,
                   .op = NM_GROUP, .silu = op->p.group_norm.silu, .eps = op->p.group_norm.eps};
    return norm_run(be, op, &p, err);
}

/* x [..., C] -> y, over the last dim (a rank-0 x is one row of 1). */
static void rows_of(const sdc_tensor *x, uint32_t *rows, uint32_t *len) {
    int64_t c = x->ndim ? x->shape[x->ndim - 1] : 1, total = sdc_tensor_numel(x);
    *len = (uint32_t)c;
    *rows = (uint32_t)(c ? total / c : 0);
}

sdc_status vk_op_layer_norm(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    norm_push p = {.op = NM_LAYER, .eps = op->p.layer_norm.eps};
    rows_of(op->src[0], &p.rows, &p.len);
    return norm_run(be, op, &p, err);
}

sdc_status vk_op_softmax(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    norm_push p = {.op = NM_SOFTMAX};
    rows_of(op->src[0], &p.rows, &p.len);
    return norm_run(be, op, &p, err);
}

/* ---------------------------------------------------------------- attention */

typedef struct attn_push {
    uint64_t q, k, v, y, acc, ml;
    uint32_t nq, nk, heads, d, dt, causal, tk;
    uint32_t k0, k1, first, last;
    float scale;
} attn_push;

#define ATTN_MAXD 512u /* attention.comp's default MAXD */
#define ATTN_TILE 2048u /* attention.comp's TILE: floats of K (and of V) per tile */

/* Keys one dispatch may cover. Unlimited (all of them) unless the device
 * bounds an invocation's loop iterations (llvmpipe: 65535 over all loops,
 * then the loops silently exit). Per key an invocation runs the dot product
 * (d), the value update (d) and at worst a rescale (d); plus the tile loads
 * and the state's d-loops, counted generously. */
static uint32_t keys_per_dispatch(const vk_impl *v, uint32_t d, uint32_t nk) {
    if (!v->loop_budget) return nk;
    int64_t room = (int64_t)v->loop_budget - 2000 - 6 * (int64_t)d;
    int64_t per_key = 3 * (int64_t)d + 8;
    int64_t kc = room > per_key ? room / per_key : 1;
    return kc < nk ? (uint32_t)kc : nk;
}

/* q [B, Nq, H*D], k, v [B, Nk, H*D] -> y [B, Nq, H*D] */
sdc_status vk_op_attention(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    sdc_status s = vk_check_sizes(op, err);
    if (s) return s;
    vk_impl *vi = vk_of(be);
    const sdc_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2];
    uint32_t heads = (uint32_t)op->p.attention.heads;
    uint32_t d = (uint32_t)(q->shape[2] / heads);
    if (d > ATTN_MAXD)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "vulkan: attention with head dim %u (the shader holds at most %u)", d,
                           ATTN_MAXD);
    float scale = op->p.attention.scale != 0 ? op->p.attention.scale : 1.0f / sqrtf((float)d);
    attn_push p = {.q = vk_addr(q), .k = vk_addr(k), .v = vk_addr(v), .y = vk_addr(op->dst),
                   .nq = (uint32_t)q->shape[1], .nk = (uint32_t)k->shape[1], .heads = heads,
                   .d = d, .dt = vk_dt(q->dtype), .causal = op->p.attention.causal,
                   .tk = d ? ATTN_TILE / d : 1, .scale = scale};
    if (p.tk > 64) p.tk = 64;
    if (!d || !p.nk || !p.nq) return SDC_OK;
    uint32_t kc = keys_per_dispatch(vi, d, p.nk);
    int spec = 0; /* the smallest MAXD variant that holds d (0: 512) */
    for (int i = VK_SPEC_COUNT - 1; i >= 1; i--)
        if (d <= vk_spec_values[i]) spec = i;
    uint32_t gx = (p.nq + 63) / 64, gz = (uint32_t)q->shape[0];
    void *acc = NULL, *ml = NULL;
    if (kc < p.nk) { /* the carried state: acc [B, H, Nq, D], (m, l) [B, H, Nq, 2], F32 */
        size_t rows = (size_t)gz * heads * p.nq;
        acc = vk_alloc_fn(be, rows * d * sizeof(float));
        ml = vk_alloc_fn(be, rows * 2 * sizeof(float));
        if (!acc || !ml) {
            vk_free_fn(be, acc);
            vk_free_fn(be, ml);
            return sdc_err_set(err, SDC_ERR_OOM, "vulkan: attention: no device memory for %zu rows of state",
                               rows);
        }
        p.acc = (uint64_t)(uintptr_t)acc;
        p.ml = (uint64_t)(uintptr_t)ml;
    }
    for (uint32_t k0 = 0; !s && k0 < p.nk; k0 += kc) {
        p.k0 = k0;
        p.k1 = p.nk - k0 < kc ? p.nk : k0 + kc;
        p.first = k0 == 0;
        p.last = p.k1 == p.nk;
        s = vk_dispatch_spec(vi, VK_SH_ATTENTION, spec, &p, sizeof p, gx, heads, gz, err);
    }
    if (acc) { /* freeing runs the queued dispatches first */
        vk_free_fn(be, acc);
        vk_free_fn(be, ml);
    }
    return s;
}
