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

typedef enum sdc_op_kind {
    /* conv2d: src = { x [N, C, H, W], w [OC, C, KH, KW], b [OC] or NULL }
     *   dst [N, OC, OH, OW], OH = (H + pad_top + pad_bottom - KH) / stride + 1,
     *   OW likewise with left/right. Zero padding. Cross-correlation (as torch):
     *   y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] * x[n, c, i*stride+u-pad_top, j*stride+v-pad_left]
     *   SD uses 1x1 (pad 0), 3x3 stride 1 pad 1, 3x3 stride 2 pad 1, and the
     *   VAE encoder's stride 2 with pad (top 0, bottom 1, left 0, right 1). */
    SDC_OP_CONV2D = 0,
    /* linear: src = { x [..., K], w [N, K], b [N] or NULL }; dst [..., N] = x·wᵀ + b */
    SDC_OP_LINEAR,
    /* group_norm: src = { x [N, C, ...spatial], gamma [C], beta [C] }; dst like x.
     *   C splits into `groups` consecutive groups; mean and biased variance over
     *   (C/groups × spatial) per sample; y = (x-mean)/sqrt(var+eps)*gamma+beta,
     *   then y = y*sigmoid(y) if silu. Requires C % groups == 0. */
    SDC_OP_GROUP_NORM,
    /* layer_norm: src = { x [..., C], gamma [C], beta [C] }; dst like x.
     *   Normalizes over the last dim with biased variance and eps. */
    SDC_OP_LAYER_NORM,
    /* attention: src = { q [B, Nq, H*D], k [B, Nk, H*D], v [B, Nk, H*D] }; dst [B, Nq, H*D].
     *   Head h uses columns [h*D, (h+1)*D). out = softmax(scale * q·kᵀ + mask)·v,
     *   scale defaults to 1/sqrt(D) when p.attention.scale == 0. With causal,
     *   query i sees keys j <= i (requires Nq == Nk). Memory O(N·D): the Nq×Nk
     *   score matrix is never materialized. */
    SDC_OP_ATTENTION,
    /* softmax: src = { x [..., C] }; dst like x; over the last dim, max-subtracted. */
    SDC_OP_SOFTMAX,
    /* gelu: y = 0.5·x·(1 + erf(x/√2))  (exact, torch's default) */
    SDC_OP_GELU,
    /* quick_gelu: y = x·sigmoid(1.702·x)  (CLIP's activation) */
    SDC_OP_QUICK_GELU,
    /* geglu: src = { x [..., 2F] }; dst [..., F]; y = x[..., :F] · gelu(x[..., F:])
     *   (diffusers' GEGLU: the first half is the value, the second the gate) */
    SDC_OP_GEGLU,
    /* silu: y = x·sigmoid(x) */
    SDC_OP_SILU,
    /* add / mul: src = { a, b }; dst like a. b broadcasts to a: same rank after
     *   right-aligning dims, each dim of b either equal to a's or 1. A rank-0
     *   or [1] b is a scalar. dst may alias a. */
    SDC_OP_ADD,
    SDC_OP_MUL,
    /* upsample2x: src = { x [N, C, H, W] }; dst [N, C, OH, OW]; nearest:
     *   y[n,c,i,j] = x[n,c,i/2,j/2]. OH = p.upsample.out_h, or 2H when 0;
     *   it may be 2H - 1 (the UNet upsampling to an odd skip size, as torch's
     *   interpolate(size=...) does); OW likewise. */
    SDC_OP_UPSAMPLE2X,
    /* concat: src = { a [N, Ca, ...], b [N, Cb, ...] }; dst [N, Ca+Cb, ...]; along dim 1,
     *   the other dims equal. (A rank-1 pair concatenates along dim 0.) */
    SDC_OP_CONCAT,
    /* timestep_embedding: src = { t [N] (F32) }; dst [N, dim].
     *   half = dim/2, freq_i = exp(-ln(max_period) * i / (half - freq_shift)),
     *   arg_i = t * freq_i, emb = [sin(arg), cos(arg)], or [cos, sin] with
     *   flip_sin_to_cos (SD 1.x). Odd dim zero-pads the last column. */
    SDC_OP_TIMESTEP_EMBED,
    /* embedding: src = { ids [...] (I32), table [V, D] }; dst [..., D];
     *   dst[i] = table[ids[i]]. An id outside [0, V) is SDC_ERR_ARG. */
    SDC_OP_EMBEDDING,
    /* convert: src = { x }; dst same shape, other dtype (F32/F16/BF16),
     *   round-to-nearest-even, NaN/Inf preserved. */
    SDC_OP_CONVERT,
    /* transpose: src = { x [B, M, N] }; dst [B, N, M]. (NCHW <-> NHWC as [N, C, HW]) */
    SDC_OP_TRANSPOSE,
    SDC_OP_COUNT
} sdc_op_kind;

#define SDC_OP_MAX_SRC 3

typedef struct sdc_op {
    sdc_op_kind kind;
    const sdc_tensor *src[SDC_OP_MAX_SRC];
    sdc_tensor *dst;
    union {
        struct { int stride, pad_top, pad_bottom, pad_left, pad_right; } conv2d;
        struct { int groups; float eps; bool silu; } group_norm;
        struct { float eps; } layer_norm;
        struct { int heads; bool causal; float scale; } attention;
        struct { int dim; bool flip_sin_to_cos; float freq_shift; float max_period; } timestep;
        struct { int64_t out_h, out_w; } upsample;
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
/* Validates op (including dst's shape) and runs it on be. */
sdc_status sdc_op_run(sdc_backend *be, const sdc_op *op, sdc_err *err);
bool sdc_backend_supports(const sdc_backend *be, sdc_op_kind kind, sdc_dtype t);

/* The CPU backend (AVX2/FMA + OpenBLAS + worker threads). */
sdc_backend *sdc_cpu_backend_create(sdc_err *err);

/* The CUDA backend, or NULL with SDC_ERR_UNSUPPORTED when sdc was built
 * without CUDA or no device is present. */
sdc_backend *sdc_cuda_backend_create(int device_index, sdc_err *err);

void sdc_backend_destroy(sdc_backend *be);

#ifdef __cplusplus
}
#endif
#endif /* SDC_OPS_H */
