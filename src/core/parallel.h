/* parallel.h — a small pthread pool for the CPU backend's non-GEMM ops.
 * Workers sleep on a condition variable between jobs (no spinning), so they
 * never steal cycles from OpenBLAS's own threads. */
#ifndef SDC_PARALLEL_H
#define SDC_PARALLEL_H

#include <stdint.h>

/* Called with a half-open range [begin, end) of the n items. */
typedef void (*sdc_range_fn)(void *ctx, int64_t begin, int64_t end);

/* Splits [0, n) into contiguous chunks of at least `grain` items and runs
 * them on the pool (the caller's thread works too). Returns when all are done.
 * Safe to call from one thread at a time; nested calls run serially. */
void sdc_parallel_for(int64_t n, int64_t grain, sdc_range_fn fn, void *ctx);

/* Brackets GEMM tiles run through sdc_parallel_for: OpenBLAS runs each call
 * on the calling thread meanwhile. */
void sdc_blas_serial_begin(void);
void sdc_blas_serial_end(void);

#endif
