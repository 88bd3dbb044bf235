/* cpu_ops.h — the CPU backend's op functions (one per sdc_op_kind) and the
 * helpers they share. Each function may assume sdc_op_run() validated the op
 * (shapes, dtypes: activations F32, weights F32/F16/BF16). */
#ifndef SDC_CPU_OPS_H
#define SDC_CPU_OPS_H

#include "sdc_ops.h"
#include "../core/parallel.h"

/* dst [n] F32 from src [n] of dtype t (F32/F16/BF16; else an error): the
 * F16 case on the chosen CPU path (cpu_isa.h), the rest by sdc_convert. */
sdc_status sdc_cpu_widen(float *dst, const void *src, sdc_dtype t, size_t n, sdc_err *err);
/* Weights as F32: t's own data when it is already F32 (and 4-byte aligned),
 * else a conversion into the backend's reusable scratch `slot` (0..3). The
 * pointer is valid until the next call with the same slot. NULL on OOM. */
const float *sdc_cpu_as_f32(sdc_backend *be, int slot, const sdc_tensor *t, sdc_err *err);
/* Rows [r0, r1) of a weight t [R, cols] as F32: a view when t is F32, else
 * widened into slot's scratch. Big half-precision weights are widened a
 * block of rows at a time (SDC_CPU_WIDEN_FLOATS at most), so the scratch
 * stays small and in cache instead of holding the largest layer in F32. */
const float *sdc_cpu_rows_f32(sdc_backend *be, int slot, const sdc_tensor *t, int64_t cols,
                              int64_t r0, int64_t r1, sdc_err *err);
/* Rows per widened block of a [rows, cols] weight (all rows when F32 or small). */
int64_t sdc_cpu_row_block(const sdc_tensor *t, int64_t rows, int64_t cols);
#define SDC_CPU_WIDEN_FLOATS ((int64_t)2 << 20)
/* A reusable F32 scratch buffer of n floats in `slot` (4..7), 64-byte aligned. */
float *sdc_cpu_scratch(sdc_backend *be, int slot, size_t n, sdc_err *err);

/* conv2d for 3×3 kernels, stride 1, pad 1 on all sides by Winograd
 * F(m×m, 3×3), m = 4 or 2 (conv_winograd.c): y [N, OC, H, W] from
 * x [N, C, H, W], weight wt [OC, C, 3, 3] (F32/F16/BF16), b [OC] or NULL. */
sdc_status sdc_cpu_conv3x3_winograd(sdc_backend *be, int m, const float *x,
                                    const sdc_tensor *wt, const float *b, float *y, int64_t nb,
                                    int64_t c, int64_t h, int64_t w, int64_t oc, sdc_err *err);

/* Mean and biased variance of x[0, n), n >= 1, two-pass in double (norm.c;
 * the forward and backward norms share it so they see the same statistics). */
void sdc_cpu_norm_stats(const float *x, int64_t n, double *mean, double *var);

/* The forward attention of op (q, k, v into op->dst) that also writes each
 * query row's log-sum-exp, in base 2, of its scores times scale·log2(e):
 * lse2 [B·H, Nq] (attention.c; the backward recomputes P = 2^(s - lse2)). */
sdc_status sdc_cpu_attention_lse(sdc_backend *be, const sdc_op *op, float *lse2, sdc_err *err);

/* One function per row of SDC_OPS (include/sdc_ops.h): sdc_cpu_<name>. */
#define SDC_DECLARE_CPU_OP(kind, name, outs, act) \
    sdc_status sdc_cpu_##name(sdc_backend *be, const sdc_op *op, sdc_err *err);
SDC_OPS(SDC_DECLARE_CPU_OP)
#undef SDC_DECLARE_CPU_OP

#endif
