/* norm_avx512.c — norm.c's statistics and output loops on 16 lanes (see
 * cpu_avx512.h). The same bits as the AVX2 forms: the double sums keep the
 * AVX2 code's 16 (then 8) partial sums, lane for lane, and are reduced in
 * its order; the output is the same per-element arithmetic. */
#include "cpu_avx512.h"
#include "vmath.h"
#include "vmath_avx512.h"

void sdc_cpu_norm_stats_avx512(const float *x, int64_t n, double *mean_out, double *var_out) {
    int64_t i = 0;
    /* a = the AVX2 code's s0|s1, b = s2|s3 */
    __m512d a = _mm512_setzero_pd(), b = a;
    for (; i + 16 <= n; i += 16) {
        a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
        b = _mm512_add_pd(b, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)));
    }
    double sum = sdc_v_hsum_pd(
        _mm256_add_pd(_mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1)),
                      _mm256_add_pd(_mm512_castpd512_pd256(b), _mm512_extractf64x4_pd(b, 1))));
    for (; i < n; i++) sum += x[i];
    double mean = sum / (double)n, dev = 0.0, sq = 0.0;
    i = 0;
    /* dd = d0|d1, qq = q0|q1 */
    __m512d m = _mm512_set1_pd(mean), dd = _mm512_setzero_pd(), qq = dd;
    for (; i + 8 <= n; i += 8) {
        __m512d v = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), m);
        dd = _mm512_add_pd(dd, v);
        qq = _mm512_fmadd_pd(v, v, qq);
    }
    dev = sdc_v_hsum_pd(_mm256_add_pd(_mm512_castpd512_pd256(dd), _mm512_extractf64x4_pd(dd, 1)));
    sq = sdc_v_hsum_pd(_mm256_add_pd(_mm512_castpd512_pd256(qq), _mm512_extractf64x4_pd(qq, 1)));
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        dev += d;
        sq += d * d;
    }
    double var = (sq - dev * dev / (double)n) / (double)n;
    *mean_out = mean + dev / (double)n;
    *var_out = var > 0.0 ? var : 0.0;
}

static inline __m512 gn_vec(__m512 v, __m512 mhi, __m512 mlo, __m512 scale, __m512 shift,
                            bool silu) {
    v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_sub_ps(v, mhi), mlo), scale, shift);
    return silu ? sdc_v16_silu(v) : v;
}

void sdc_cpu_norm_apply_const_avx512(const float *x, float *y, int64_t n, float mhi, float mlo,
                                     float scale, float shift, bool silu) {
    __m512 vh = _mm512_set1_ps(mhi), vl = _mm512_set1_ps(mlo);
    __m512 vs = _mm512_set1_ps(scale), vb = _mm512_set1_ps(shift);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, gn_vec(_mm512_loadu_ps(x + i), vh, vl, vs, vb, silu));
    if (i < n) {
        __mmask16 k = sdc_v16_tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, gn_vec(_mm512_maskz_loadu_ps(k, x + i), vh, vl, vs, vb, silu));
    }
}

void sdc_cpu_norm_apply_vec_avx512(const float *x, float *y, int64_t n, float mhi, float mlo,
                                   float rstd, const float *gamma, const float *beta) {
    __m512 vh = _mm512_set1_ps(mhi), vl = _mm512_set1_ps(mlo), vr = _mm512_set1_ps(rstd);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = sdc_v16_tail_mask(n - i);
        __m512 v = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vh), vl);
        v = _mm512_fmadd_ps(_mm512_mul_ps(v, vr), _mm512_maskz_loadu_ps(k, gamma + i),
                            _mm512_maskz_loadu_ps(k, beta + i));
        _mm512_mask_storeu_ps(y + i, k, v);
    }
}
