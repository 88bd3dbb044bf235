/* bench_util.h — what every bench program shares: a monotonic clock, the
 * median of repeats, the measured OpenBLAS sgemm ceiling, and peak RSS. */
#ifndef SDC_BENCH_UTIL_H
#define SDC_BENCH_UTIL_H

double bench_now(void);
/* Median of n values (sorts v in place). */
double bench_median(double *v, int n);
/* GFLOP/s of cblas_sgemm at 2048³ on the current thread count, median of 3
 * after a warm-up: the ceiling that fractions are reported against. */
double bench_sgemm_ceiling(void);
/* Peak resident set size of this process so far, in bytes. */
double bench_peak_rss(void);

#endif
