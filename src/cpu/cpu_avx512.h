/* cpu_avx512.h — the AVX-512 kernels (the *_avx512.c files, built with the
 * Makefile's AVX512_FLAGS). Call one only when sdc_cpu_isa_active() is
 * SDC_CPU_ISA_AVX512 (cpu_isa.h); each gives the same bits as the AVX2 form
 * it stands in for. Private to src/cpu. */
#ifndef SDC_CPU_AVX512_H
#define SDC_CPU_AVX512_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* convert_avx512.c: dst[i] = (float)src[i] for F16 src (exact). */
void sdc_cpu_f16_to_f32_avx512(float *dst, const uint16_t *src, size_t n);

/* norm_avx512.c: sdc_cpu_norm_stats, and norm.c's apply_const (group norm
 * [+ SiLU]) and apply_vec (layer norm's row). */
void sdc_cpu_norm_stats_avx512(const float *x, int64_t n, double *mean_out, double *var_out);
void sdc_cpu_norm_apply_const_avx512(const float *x, float *y, int64_t n, float mhi, float mlo,
                                     float scale, float shift, bool silu);
void sdc_cpu_norm_apply_vec_avx512(const float *x, float *y, int64_t n, float mhi, float mlo,
                                   float rstd, const float *gamma, const float *beta);

/* conv_winograd_avx512.c: U = G g Gᵀ (a = 6: F(4,3), a = 4: F(2,3)) for 16
 * input channels: taps [16][9] (lanes past n zero), U point p's n floats
 * to dst + p·ps. */
void sdc_wino_weights16_avx512(int a, const float *taps, int64_t n, float *dst, int64_t ps);

/* gemm_attn_avx512.c: gemm_attn.h's sdc_attn_scores, sdc_attn_scores_exp and
 * sdc_attn_accumulate. */
void sdc_attn_scores_avx512(const float *qi, int64_t d, const float *kp, float *s, int64_t lds,
                            int64_t nr, int64_t nc, float scale);
bool sdc_attn_scores_exp_avx512(const float *qi, int64_t d, const float *kp, float *s,
                                int64_t lds, int64_t nr, int64_t nc, float scale, const float *m,
                                float *l, float *alpha);
void sdc_attn_accumulate_avx512(const float *p, int64_t ldp, const float *v, int64_t ldv,
                                float *acc, int64_t dp, const float *alpha, int64_t nr,
                                int64_t nc);

/* wgemm_avx512.c: wgemm.c's micro-kernel, acc [12][32] += the kc-deep
 * product of a packed panel ap [kc][32] and twelve rows b[j][0, kc). */
void sdc_wgemm_kernel_avx512(int64_t kc, const float *ap, const float *const *b, float *acc);

#endif
