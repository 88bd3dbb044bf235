/* wgemm.h — sdc's own GEMM for a weight times activations, reading the
 * weight in its stored dtype (F32, F16 or BF16).
 *
 * Why not OpenBLAS here: a half-precision weight had to be widened into an
 * F32 copy first, which sgemm then packed again, once per tile and batch
 * item. For the products with few columns (an 8x8 or 4x4 latent, 77 text
 * tokens) that traffic, not arithmetic, set the time: a 4x4 conv ran at
 * 33-47 GFLOP/s against a 230 GFLOP/s sgemm ceiling. Here the weight is
 * widened while it is packed into 32-row panels that stay in cache, each
 * panel serves every column (every batch item) before the next one is
 * read, and the weight is read from memory once per product.
 *
 * Bits: every output element is its start value (C's own value when
 * `accumulate`, else 0) plus the k products added one at a time in k order,
 * by fused multiply-adds. That order does not depend on the tiling, the
 * thread count, the batch, or the instruction set (the AVX2 and AVX-512
 * kernels differ only in how many elements they do at once), so a sample's
 * result is the same in any batch, with any thread count, on either path. */
#ifndef SDC_CPU_WGEMM_H
#define SDC_CPU_WGEMM_H

#include "sdc_ops.h"

#include <stdbool.h>
#include <stdint.h>

/* C (j, i) = [C (j, i) +] Σ_k x[j, k] · w[i, k], for i < m (weight rows:
 * output features or channels) and j < n (activation rows: tokens, or
 * pixels of all images). Element (j, i) of C is at
 *   c + (j / group) · group_stride + (j % group) · cs + i · rs,
 * which covers a linear's y [n, m] (group = n, cs = m, rs = 1) and a conv's
 * y [images, m, pixels] (group = pixels, group_stride = m · pixels, cs = 1,
 * rs = pixels). */
typedef struct sdc_wgemm {
    int64_t m, n, k;
    const void *w;      /* [m, k] rows ldw elements apart, of dtype wtype */
    sdc_dtype wtype;    /* SDC_F32, SDC_F16 or SDC_BF16 */
    int64_t ldw;
    const float *x;     /* [n, k] rows ldx floats apart */
    int64_t ldx;
    float *c;
    int64_t group, group_stride, cs, rs;
    bool accumulate;    /* start from C's values (e.g. a bias written there) */
} sdc_wgemm;

/* Whether wgemm beats widening + OpenBLAS for a product with this weight
 * dtype, `cols` columns per batch item (tokens or output pixels) and depth
 * k; `transpose_only` for a 1x1 conv, whose patch rows are a transpose.
 * Measured on a Xeon (AVX-512, 2 threads; bench/RESULTS.md 2026-12-05):
 * with an F16 weight, 1280 channels at 4x4 ran 2.1x and at 8x8 1.6x
 * faster; 64-256 tokens 1.1-1.4x. F32 weights need no widening, and there
 * OpenBLAS kept up or won; past ~256 columns its packing is amortized and
 * it won by 5-10 %; below 12 columns (one tile) or 256 deep, packing and the
 * tile copies outweigh the products. SDC_WGEMM=0 turns wgemm off (for
 * comparisons; it changes the bits, not the tolerances). */
bool sdc_wgemm_pays(sdc_dtype wtype, int64_t cols, int64_t k, bool transpose_only);

/* Runs g on sdc's pool, with per-thread scratch in the backend's slot 3. */
sdc_status sdc_cpu_wgemm(sdc_backend *be, const sdc_wgemm *g, sdc_err *err);

#endif
