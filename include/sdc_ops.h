/* sdc_ops.h — the backend contract: the op set of sdc and its exact semantics.
 *
 * A port of sdc to a new accelerator implements one function per op kind
 * below and fills an sdc_backend. Nothing else in sdc touches a device.
 *
 *     sdc_op op = { .kind = SDC_OP_SILU, .src = { x }, .dst = y };
 *     sdc_status s = sdc_op_run(backend, &op, &err);  // validates, then dispatches
 *
 * General rules (every op):
 *   - Tensors are dense and contiguous, row-major, outermost dimension first.
 *     Image tensors are NCHW. "[..., C]" means any leading dims, flattened.
 *   - dst is preallocated by the caller with the shape sdc_op_infer() gives.
 *     dst never aliases a src unless the op says so.
 *   - Activations (x, dst) are F32 on the CPU backend. A backend may accept
 *     F16/BF16 activations (the CUDA backend does); the caller asks with
 *     sdc_backend_supports(). Weights (w, gamma, beta, bias, table) may be
 *     F32, F16 or BF16 on every backend; they are widened to F32 for compute.
 *   - Accumulation is at least F32. Normalization statistics and softmax are
 *     computed in F32 (or better).
 *   - A backend returns SDC_ERR_UNSUPPORTED for a dtype combination it does
 *     not implement; it never aborts.
 *   - sdc_op_run() checks shapes and dtypes before dispatch, so a backend
 *     function may assume a valid op.
 */
#ifndef SDC_OPS_H
#define SDC_OPS_H

#include "sdc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ops, one paragraph each in the order of SDC_OPS below.
 *
 * conv2d: src = { x [N, C, H, W], w [OC, C, KH, KW], b [OC] or NULL }
 *   dst [N, OC, OH, OW], OH = (H + pad_top + pad_bottom - KH) / stride + 1,
 *   OW likewise with left/right. Zero padding. Cross-correlation (as torch):
 *   y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] * x[n, c, i*stride+u-pad_top, j*stride+v-pad_left]
 *   SD uses 1x1 (pad 0), 3x3 stride 1 pad 1, 3x3 stride 2 pad 1, and the
 *   VAE encoder's stride 2 with pad (top 0, bottom 1, left 0, right 1).
 * linear: src = { x [..., K], w [N, K], b [N] or NULL }; dst [..., N] = x·wᵀ + b
 * group_norm: src = { x [N, C, ...spatial], gamma [C], beta [C] }; dst like x.
 *   C splits into `groups` consecutive groups; mean and biased variance over
 *   (C/groups × spatial) per sample; y = (x-mean)/sqrt(var+eps)*gamma+beta,
 *   then y = y*sigmoid(y) if silu. Requires C % groups == 0.
 * layer_norm: src = { x [..., C], gamma [C], beta [C] }; dst like x.
 *   Normalizes over the last dim with biased variance and eps.
 * attention: src = { q [B, Nq, H*D], k [B, Nk, H*D], v [B, Nk, H*D] }; dst [B, Nq, H*D].
 *   Head h uses columns [h*D, (h+1)*D). out = softmax(scale * q·kᵀ + mask)·v,
 *   scale defaults to 1/sqrt(D) when p.attention.scale == 0. With causal,
 *   query i sees keys j <= i (requires Nq == Nk). Memory O(N·D): the Nq×Nk
 *   score matrix is never materialized.
 * softmax: src = { x [..., C] }; dst like x; over the last dim, max-subtracted.
 * gelu: y = 0.5·x·(1 + erf(x/√2))  (exact, torch's default)
 * quick_gelu: y = x·sigmoid(1.702·x)  (CLIP's activation)
 * geglu: src = { x [..., 2F] }; dst [..., F]; y = x[..., :F] · gelu(x[..., F:])
 *   (diffusers' GEGLU: the first half is the value, the second the gate)
 * silu: y = x·sigmoid(x)
 * add / mul: src = { a, b }; dst like a. b broadcasts to a: same rank after
 *   right-aligning dims, each dim of b either equal to a's or 1. A rank-0
 *   or [1] b is a scalar. dst may alias a.
 * upsample2x: src = { x [N, C, H, W] }; dst [N, C, OH, OW]; nearest:
 *   y[n,c,i,j] = x[n,c,i/2,j/2]. OH = p.upsample.out_h, or 2H when 0;
 *   it may be 2H - 1 (the UNet upsampling to an odd skip size, as torch's
 *   interpolate(size=...) does); OW likewise.
 * concat: src = { a [N, Ca, ...], b [N, Cb, ...] }; dst [N, Ca+Cb, ...]; along dim 1,
 *   the other dims equal. (A rank-1 pair concatenates along dim 0.)
 * timestep_embedding: src = { t [N] (F32) }; dst [N, dim].
 *   half = dim/2, freq_i = exp(-ln(max_period) * i / (half - freq_shift)),
 *   arg_i = t * freq_i, emb = [sin(arg), cos(arg)], or [cos, sin] with
 *   flip_sin_to_cos (SD 1.x). Odd dim zero-pads the last column.
 * embedding: src = { ids [...] (I32), table [V, D] }; dst [..., D];
 *   dst[i] = table[ids[i]]. An id outside [0, V) is SDC_ERR_ARG.
 * convert: src = { x }; dst same shape, other dtype (F32/F16/BF16),
 *   round-to-nearest-even, NaN/Inf preserved.
 * transpose: src = { x [B, M, N] }; dst [B, N, M]. (NCHW <-> NHWC as [N, C, HW])
 *
 * Reverse mode: data gradients only (sdc never computes a weight
 * gradient). Each op below is the adjoint of a forward op: given dy,
 * the gradient of a scalar L with respect to that op's output, dst is
 * dL/dx = J(x)ᵀ·dy. Weights are constants. The same dtype rules as the
 * forward ops apply (activations and gradients share dst's dtype).
 *
 * conv2d_backward: src = { dy [N, OC, OH, OW], w [OC, C, KH, KW] }; dst dx [N, C, H, W]
 *   with p.conv2d as the forward's (stride, pads) and H = p.conv2d.in_h,
 *   W = p.conv2d.in_w: the forward input's size. 0 means the largest size
 *   that gives OH, OH·stride + KH - 1 - pad_top - pad_bottom (for stride 1
 *   the only one; for SD's stride-2 pad-1 downsamplers of an even size,
 *   2·OH; an odd forward input must be given). A given size must give OH.
 *   dx[n,c,h,v'] = sum over (o,i,j,u,v) with i·stride+u-pad_top = h and
 *   j·stride+v-pad_left = v' of w[o,c,u,v]·dy[n,o,i,j] (input pixels no
 *   tap reads get 0).
 * linear_backward: src = { dy [..., N], w [N, K] }; dst dx [..., K] = dy·w
 * group_norm_backward: src = { x [N, C, ...], gamma [C], beta [C], dy like x };
 *   dst dx like x, for the forward group_norm(x, gamma, beta) with the
 *   same p.group_norm (groups, eps, silu; beta matters only with silu,
 *   whose input y is recomputed). With x̂ = (x-mean)·rstd per group and
 *   g = dy·gamma (times silu'(y) with silu):
 *   dx = rstd·(g - mean(g) - x̂·mean(g·x̂)), means over the group.
 * layer_norm_backward: src = { x [..., C], gamma [C], dy like x }; dst dx like x,
 *   for layer_norm(x, gamma, ·) with p.layer_norm; the formula above over
 *   each row of C.
 * attention_backward: src = { q [B, Nq, H·D], k [B, Nk, H·D], v [B, Nk, H·D],
 *   dy [B, Nq, H·D] }; three outputs: dst = dq like q, dst_more[0] = dk
 *   like k, dst_more[1] = dv like v, for attention(q, k, v) with the same
 *   p.attention (heads, causal, scale). With P = softmax(scale·q·kᵀ + mask)
 *   per head: dv = Pᵀ·dy, dS = P∘(dy·vᵀ - rowsum(dy∘out)),
 *   dq = scale·dS·k, dk = scale·dSᵀ·q. Memory O(N·D): the score blocks
 *   are recomputed, the Nq×Nk matrix never exists.
 * gelu/quick_gelu/silu_backward: src = { x, dy like x }; dst dx = dy·f'(x).
 * geglu_backward: src = { x [..., 2F], dy [..., F] }; dst dx [..., 2F]:
 *   dx[..., :F] = dy·gelu(x[..., F:]), dx[..., F:] = dy·x[..., :F]·gelu'(x[..., F:]).
 * upsample2x_backward: src = { dy [N, C, OH, OW] }; dst dx [N, C, (OH+1)/2, (OW+1)/2]:
 *   dx[n,c,i,j] = the sum of dy over the (up to 2x2) pixels that
 *   upsample2x copied from (i, j); OH may be odd (the 2H-1 case).
 * slice: src = { x [N, C, ...] }; dst [N, len, ...] = channels
 *   [start, start + len) of x along dim 1 (a rank-1 x: along dim 0), with
 *   p.slice. concat's adjoint is two slices.
 */

/* The op list: one row an op. Everything indexed by op kind is generated
 * from it: the enum, sdc_op_name(), the output counts and activation masks
 * that sdc_op_run() checks, and the CPU and CUDA op tables (sdc_<backend>_<name>).
 *   kind  the enum value, SDC_OP_<kind>
 *   name  sdc_op_name(), and each backend's function sdc_cpu_<name>, sdc_cuda_<name>
 *   outs  how many outputs (dst, then dst_more[]): sdc_op_dst_count()
 *   act   bit i set: src[i] is an activation and must have dst's dtype
 *         (the others are weights, ids or t: any float type, or as the op says)
 * A backend of its own fills sdc_backend.op with [SDC_OP_<kind>] = fn and may
 * leave kinds NULL (not implemented). */
#define SDC_OPS(X)                                             \
    /* kind                 name                  outs act */  \
    X(CONV2D,               conv2d,               1, 0x1)      \
    X(LINEAR,               linear,               1, 0x1)      \
    X(GROUP_NORM,           group_norm,           1, 0x1)      \
    X(LAYER_NORM,           layer_norm,           1, 0x1)      \
    X(ATTENTION,            attention,            1, 0x7)      \
    X(SOFTMAX,              softmax,              1, 0x1)      \
    X(GELU,                 gelu,                 1, 0x1)      \
    X(QUICK_GELU,           quick_gelu,           1, 0x1)      \
    X(GEGLU,                geglu,                1, 0x1)      \
    X(SILU,                 silu,                 1, 0x1)      \
    X(ADD,                  add,                  1, 0x3)      \
    X(MUL,                  mul,                  1, 0x3)      \
    X(UPSAMPLE2X,           upsample2x,           1, 0x1)      \
    X(CONCAT,               concat,               1, 0x3)      \
    X(TIMESTEP_EMBED,       timestep_embedding,   1, 0x0)      \
    X(EMBEDDING,            embedding,            1, 0x0)      \
    X(CONVERT,              convert,              1, 0x0)      \
    X(TRANSPOSE,            transpose,            1, 0x1)      \
    /* reverse mode */                                         \
    X(CONV2D_BACKWARD,      conv2d_backward,      1, 0x1)      \
    X(LINEAR_BACKWARD,      linear_backward,      1, 0x1)      \
    X(GROUP_NORM_BACKWARD,  group_norm_backward,  1, 0x9)      \
    X(LAYER_NORM_BACKWARD,  layer_norm_backward,  1, 0x5)      \
    X(ATTENTION_BACKWARD,   attention_backward,   3, 0xf)      \
    X(GELU_BACKWARD,        gelu_backward,        1, 0x3)      \
    X(QUICK_GELU_BACKWARD,  quick_gelu_backward,  1, 0x3)      \
    X(SILU_BACKWARD,        silu_backward,        1, 0x3)      \
    X(GEGLU_BACKWARD,       geglu_backward,       1, 0x3)      \
    X(UPSAMPLE2X_BACKWARD,  upsample2x_backward,  1, 0x1)      \
    X(SLICE,                slice,                1, 0x1)

typedef enum sdc_op_kind {
#define SDC_OP_ENUM_(kind, name, outs, act) SDC_OP_##kind,
    SDC_OPS(SDC_OP_ENUM_)
#undef SDC_OP_ENUM_
    SDC_OP_COUNT
} sdc_op_kind;

#define SDC_OP_MAX_SRC 4
/* Most outputs of one op: attention_backward's dq, dk, dv. */
#define SDC_OP_MAX_DST 3

typedef struct sdc_op {
    sdc_op_kind kind;
    const sdc_tensor *src[SDC_OP_MAX_SRC];
    sdc_tensor *dst;                          /* the output (the first one) */
    sdc_tensor *dst_more[SDC_OP_MAX_DST - 1]; /* outputs 1.. of a multi-output op */
    union {
        /* in_h, in_w: conv2d_backward only (the forward ignores them). */
        struct { int stride, pad_top, pad_bottom, pad_left, pad_right; int64_t in_h, in_w; } conv2d;
        struct { int groups; float eps; bool silu; } group_norm;
        struct { float eps; } layer_norm;
        struct { int heads; bool causal; float scale; } attention;
        struct { int dim; bool flip_sin_to_cos; float freq_shift; float max_period; } timestep;
        struct { int64_t out_h, out_w; } upsample;
        struct { int64_t start, len; } slice;
    } p;
} sdc_op;

typedef struct sdc_backend sdc_backend;
typedef sdc_status (*sdc_op_fn)(sdc_backend *be, const sdc_op *op, sdc_err *err);

/* A backend: a name, one function per op (NULL = not implemented), and
 * memory management for its device. For the CPU backend, device memory is
 * host memory and upload/download are memcpy. */
struct sdc_backend {
    const char *name;
    sdc_device device;
    sdc_op_fn op[SDC_OP_COUNT];
    /* Returns 64-byte aligned device memory or NULL. */
    void *(*alloc)(sdc_backend *be, size_t bytes);
    void (*free)(sdc_backend *be, void *ptr);
    sdc_status (*upload)(sdc_backend *be, void *dst_dev, const void *src_host, size_t bytes,
                         sdc_err *err);
    sdc_status (*download)(sdc_backend *be, void *dst_host, const void *src_dev, size_t bytes,
                           sdc_err *err);
    /* Waits for queued work; reports asynchronous failures. */
    sdc_status (*synchronize)(sdc_backend *be, sdc_err *err);
    /* Optional (NULL: nothing cached). Gives the scratch the ops keep between
     * calls back to the device; called between model phases, never while a
     * graph is recorded. The next op that needs scratch allocates it again. */
    void (*trim)(sdc_backend *be);
    /* True if the backend computes `kind` with activations of dtype t. */
    bool (*supports)(const sdc_backend *be, sdc_op_kind kind, sdc_dtype t);
    void (*destroy)(sdc_backend *be);
    void *impl;
};

const char *sdc_op_name(sdc_op_kind k);
/* Validates op's sources and params and computes dst's shape and dtype
 * (act_dtype is the activation dtype the caller wants; CONVERT ignores it and
 * keeps out->dtype). Fills *out's metadata only. */
sdc_status sdc_op_infer(const sdc_op *op, sdc_dtype act_dtype, sdc_tensor *out, sdc_err *err);
/* How many outputs kind has (3 for attention_backward, else 1), and the
 * shape of output i (0 = dst, i >= 1 = dst_more[i-1]) as sdc_op_infer. */
int sdc_op_dst_count(sdc_op_kind k);
sdc_status sdc_op_infer_dst(const sdc_op *op, sdc_dtype act_dtype, int i, sdc_tensor *out,
                            sdc_err *err);
/* Validates op (including every dst's shape) and runs it on be. */
sdc_status sdc_op_run(sdc_backend *be, const sdc_op *op, sdc_err *err);
bool sdc_backend_supports(const sdc_backend *be, sdc_op_kind kind, sdc_dtype t);

/* The CPU backend (AVX2/FMA + OpenBLAS + worker threads). */
sdc_backend *sdc_cpu_backend_create(sdc_err *err);

/* The CUDA backend, or NULL with SDC_ERR_UNSUPPORTED when sdc was built
 * without CUDA or no device is present. */
sdc_backend *sdc_cuda_backend_create(int device_index, sdc_err *err);

/* The Vulkan backend (src/vulkan/), or NULL with SDC_ERR_UNSUPPORTED when sdc
 * was built without Vulkan or no usable device is present. device_index -1
 * takes $SDC_VULKAN_DEVICE, else 0. Forward ops only. */
sdc_backend *sdc_vulkan_backend_create(int device_index, sdc_err *err);

void sdc_backend_destroy(sdc_backend *be);

#ifdef __cplusplus
}
#endif
#endif /* SDC_OPS_H */
