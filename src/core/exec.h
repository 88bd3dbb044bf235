/* exec.h — eager execution for model code: each call validates and runs one
 * op on the backend, with its output taken from the arena. Errors are sticky:
 * after the first failure every later call is a no-op returning an empty
 * tensor, so a forward reads like the architecture and checks once at the end.
 *
 *     sdc_exec ex = sdc_exec_begin(be, arena, &err);
 *     sdc_tensor h = sdc_x_conv2d(&ex, x, &w, &b, 1, 1);    // x: [N, C, H, W]
 *     sdc_tensor y = sdc_x_silu(&ex, h);
 *     sdc_x_free(&ex, &h);
 *     if (ex.status) return ex.status;                      // err names the op
 */
#ifndef SDC_EXEC_H
#define SDC_EXEC_H

#include "arena.h"
#include "sdc_ops.h"

typedef struct sdc_exec {
    sdc_backend *be;
    sdc_arena *arena;
    sdc_err *err;
    sdc_status status; /* first failure, sticky */
    sdc_dtype act;     /* activation dtype (F32 on the CPU backend) */
    /* Work done: FLOPs of the matrix ops (conv2d, linear, attention; 1 MAC =
     * 2 FLOP), and with `profile` set, wall time and calls per op kind. */
    double flops;
    bool profile;
    double op_seconds[SDC_OP_COUNT];
    int64_t op_calls[SDC_OP_COUNT];
    /* Optional: called with named intermediate results (activation dumps). */
    void (*dump)(void *ctx, const char *name, const sdc_tensor *t);
    void *dump_ctx;
    /* Low-memory mode: a file-mapped weight's pages are dropped right after
     * the op that read it, so only the layer at work stays resident. */
    bool drop_weights;
    /* Nonzero: token-wise layers (the transformer feed-forward) run over row
     * chunks whose widest intermediate is about this many bytes (a chunk
     * keeps a minimum of rows, so it can be more). It bounds the arena's peak
     * where host memory is what runs out; each row's result does not depend
     * on the chunk it is in. */
    size_t chunk_bytes;
} sdc_exec;

/* FLOPs of one op (2 per multiply-add of conv2d, linear and attention; 0 for
 * the memory-bound rest). */
double sdc_op_flops(const sdc_op *op);

/* Calls ex->dump when set and no error is pending. */
void sdc_x_dump(sdc_exec *ex, const char *name, const sdc_tensor *t);

sdc_exec sdc_exec_begin(sdc_backend *be, sdc_arena *arena, sdc_err *err);

/* Rows [r0, r0 + n) of t [..., C] seen as one batch item [1, n, C] (ops that
 * batch per item, like the CPU linear, see one item of n rows): a view into
 * t's storage (never freed; t must outlive it). */
sdc_tensor sdc_x_rows(sdc_exec *ex, sdc_tensor t, int64_t r0, int64_t n);

/* An arena tensor of the given shape (uninitialized). */
sdc_tensor sdc_x_new(sdc_exec *ex, sdc_dtype dtype, int ndim, const int64_t *shape);
/* Returns t's storage to the arena and clears t. Safe on empty tensors. */
void sdc_x_free(sdc_exec *ex, sdc_tensor *t);
/* Same data, new shape (numel must match). No copy. */
sdc_tensor sdc_x_reshape(sdc_exec *ex, sdc_tensor t, int ndim, const int64_t *shape);

/* Host data in and out, for any backend: an arena tensor of dtype dt holding
 * the F32 values host[numel(shape)] (uploaded, then converted on the backend
 * when dt is not F32), and t (F32/F16/BF16) copied out as F32. */
sdc_tensor sdc_x_from_host(sdc_exec *ex, const float *host, sdc_dtype dt, int ndim,
                           const int64_t *shape);
sdc_status sdc_x_to_host(sdc_exec *ex, const sdc_tensor *t, float *host);

/* Ops (see sdc_ops.h for exact semantics). b may be NULL. */
sdc_tensor sdc_x_conv2d(sdc_exec *ex, sdc_tensor x, const sdc_tensor *w, const sdc_tensor *b,
                        int stride, int pad);
sdc_tensor sdc_x_conv2d_pad(sdc_exec *ex, sdc_tensor x, const sdc_tensor *w, const sdc_tensor *b,
                            int stride, int top, int bottom, int left, int right);
sdc_tensor sdc_x_linear(sdc_exec *ex, sdc_tensor x, const sdc_tensor *w, const sdc_tensor *b);
sdc_tensor sdc_x_group_norm(sdc_exec *ex, sdc_tensor x, const sdc_tensor *gamma,
                            const sdc_tensor *beta, int groups, float eps, bool silu);
sdc_tensor sdc_x_layer_norm(sdc_exec *ex, sdc_tensor x, const sdc_tensor *gamma,
                            const sdc_tensor *beta, float eps);
sdc_tensor sdc_x_attention(sdc_exec *ex, sdc_tensor q, sdc_tensor k, sdc_tensor v, int heads,
                           bool causal);
sdc_tensor sdc_x_unary(sdc_exec *ex, sdc_op_kind kind, sdc_tensor x);
sdc_tensor sdc_x_binary(sdc_exec *ex, sdc_op_kind kind, sdc_tensor a, sdc_tensor b);
/* a += b in place (b broadcasts to a). */
void sdc_x_add_inplace(sdc_exec *ex, sdc_tensor a, sdc_tensor b);
sdc_tensor sdc_x_concat(sdc_exec *ex, sdc_tensor a, sdc_tensor b);
/* Nearest 2x upsampling to out_h x out_w (each 2H or 2H - 1; 0 = 2x). */
sdc_tensor sdc_x_upsample_to(sdc_exec *ex, sdc_tensor x, int64_t out_h, int64_t out_w);
sdc_tensor sdc_x_timestep_embedding(sdc_exec *ex, sdc_tensor t, int dim, bool flip_sin_to_cos,
                                    float freq_shift);
sdc_tensor sdc_x_embedding(sdc_exec *ex, sdc_tensor ids, const sdc_tensor *table);
sdc_tensor sdc_x_convert(sdc_exec *ex, sdc_tensor x, sdc_dtype to);

/* Reverse mode (see sdc_ops.h): each returns dL/d(input) given the upstream
 * gradient dy of the forward op's output. in_h/in_w: the forward input's
 * size (0: see SDC_OP_CONV2D_BACKWARD). */
sdc_tensor sdc_x_conv2d_backward(sdc_exec *ex, sdc_tensor dy, const sdc_tensor *w, int stride,
                                 int pad, int64_t in_h, int64_t in_w);
sdc_tensor sdc_x_linear_backward(sdc_exec *ex, sdc_tensor dy, const sdc_tensor *w);
sdc_tensor sdc_x_group_norm_backward(sdc_exec *ex, sdc_tensor x, const sdc_tensor *gamma,
                                     const sdc_tensor *beta, sdc_tensor dy, int groups, float eps,
                                     bool silu);
sdc_tensor sdc_x_layer_norm_backward(sdc_exec *ex, sdc_tensor x, const sdc_tensor *gamma,
                                     sdc_tensor dy, float eps);
/* dq, dk, dv come from the arena (empty after a failure). */
void sdc_x_attention_backward(sdc_exec *ex, sdc_tensor q, sdc_tensor k, sdc_tensor v,
                              sdc_tensor dy, int heads, bool causal, sdc_tensor *dq,
                              sdc_tensor *dk, sdc_tensor *dv);
/* gelu/quick_gelu/silu/geglu_backward: dx from the forward input x and dy. */
sdc_tensor sdc_x_act_backward(sdc_exec *ex, sdc_op_kind kind, sdc_tensor x, sdc_tensor dy);
sdc_tensor sdc_x_upsample2x_backward(sdc_exec *ex, sdc_tensor dy);
/* Channels [start, start + len) along dim 1 (concat's adjoint). */
sdc_tensor sdc_x_slice(sdc_exec *ex, sdc_tensor x, int64_t start, int64_t len);
/* A new copy of x (rank >= 1). */
sdc_tensor sdc_x_copy(sdc_exec *ex, sdc_tensor x);
/* Gradient accumulation: *acc += *t and *t is freed, or *acc takes *t
 * when *acc is empty; *t is cleared either way. */
void sdc_x_accumulate(sdc_exec *ex, sdc_tensor *acc, sdc_tensor *t);

#define sdc_x_silu(ex, x) sdc_x_unary((ex), SDC_OP_SILU, (x))
#define sdc_x_gelu(ex, x) sdc_x_unary((ex), SDC_OP_GELU, (x))
#define sdc_x_quick_gelu(ex, x) sdc_x_unary((ex), SDC_OP_QUICK_GELU, (x))
#define sdc_x_geglu(ex, x) sdc_x_unary((ex), SDC_OP_GEGLU, (x))
#define sdc_x_softmax(ex, x) sdc_x_unary((ex), SDC_OP_SOFTMAX, (x))
#define sdc_x_upsample2x(ex, x) sdc_x_unary((ex), SDC_OP_UPSAMPLE2X, (x))
#define sdc_x_transpose(ex, x) sdc_x_unary((ex), SDC_OP_TRANSPOSE, (x))
#define sdc_x_add(ex, a, b) sdc_x_binary((ex), SDC_OP_ADD, (a), (b))
#define sdc_x_mul(ex, a, b) sdc_x_binary((ex), SDC_OP_MUL, (a), (b))

/* Replaces the tensor h by expr (which usually reads h), freeing h's old
 * value on the sdc_exec named ex in the caller's scope:
 *     SDC_X_STEP(h, sdc_x_silu(ex, h)); */
#define SDC_X_STEP(h, expr)        \
    do {                           \
        sdc_tensor next_ = (expr); \
        sdc_x_free(ex, &(h));      \
        (h) = next_;               \
    } while (0)

#endif
