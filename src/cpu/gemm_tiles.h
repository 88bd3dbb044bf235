/* gemm_tiles.h — sdc's threading of the matrix products: a GEMM (or a batch
 * of equal-shaped GEMMs) is cut into fixed tiles, and each tile is one
 * single-threaded OpenBLAS sgemm on one thread of sdc's pool.
 *
 * Why not OpenBLAS's own threads: the cut depends only on the GEMM's shape,
 * never on the thread count or on what else is in the batch, so a result is
 * the same bits with 1 or 16 threads and in any batch; small GEMMs (77 text
 * tokens, an 8x8 latent) keep every core busy without OpenBLAS's hand-offs
 * and spinning; and OpenBLAS's threads never compete with the pool. */
#ifndef SDC_CPU_GEMM_TILES_H
#define SDC_CPU_GEMM_TILES_H

#include <stdbool.h>
#include <stdint.h>

/* `count` products C_i [M, N] = op(A_i) · op(B_i) + beta · C_i, row-major,
 * op(A) = A [M, K] or, with trans_a, Aᵀ for A [K, M]; op(B) = B [K, N] or,
 * with trans_b, Bᵀ for B [N, K]. Operand i starts stride_* floats after
 * operand i-1. */
typedef struct sdc_gemm_batch {
    int64_t count, m, n, k;
    const float *a;
    int64_t lda, stride_a;
    const float *b;
    int64_t ldb, stride_b;
    bool trans_a, trans_b;
    float beta;
    float *c;
    int64_t ldc, stride_c;
} sdc_gemm_batch;

/* Runs the batch on the pool. Sizes must fit cblas's int (callers check). */
void sdc_cpu_gemm(const sdc_gemm_batch *g);

#endif
