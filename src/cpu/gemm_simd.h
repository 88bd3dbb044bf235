/* gemm_simd.h — AVX2 helpers shared by the CPU attention and softmax kernels:
 * an accurate vectorized expf (range reduction + polynomial, ~1 ulp, no
 * -ffast-math needed) and horizontal max/sum. Private to src/cpu. */
#ifndef SDC_CPU_GEMM_SIMD_H
#define SDC_CPU_GEMM_SIMD_H

#ifdef __AVX2__
#include <immintrin.h>

/* e^x for 8 floats. x = n·ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 split in
 * a hi part exact in float and a lo correction, applied with FMA), e^r by the
 * Cephes degree-7 form 1 + r + r²·P(r), then scaled by 2^n in two halves so
 * results that land in the subnormal range are still right. x < -104 gives 0
 * (-inf included), x > 88.73 gives +inf, NaN stays NaN. */
static inline __m256 sdc_exp256(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.7228394f), lo = _mm256_set1_ps(-104.0f);
    __m256 big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    /* Clamping keeps n in int range; NaN passes through (max/min return x's
     * operand order so that a NaN x survives). */
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    xc = _mm256_blendv_ps(xc, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n = 2^a · 2^b with a = n/2 (floor), b = n - a: both stay normal for
     * n in [-150, 128]. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i a = _mm256_srai_epi32(ni, 1);
    __m256i b = _mm256_sub_epi32(ni, a);
    __m256 sa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(127)), 23));
    __m256 sb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, sa), sb);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), big);
    return _mm256_andnot_ps(tiny, y);
}

/* e^x for x <= 0 (or -inf, or NaN), as softmax needs after subtracting the
 * max: the same reduction and polynomial as sdc_exp256 (~1.3 ulp), but
 * results below FLT_MIN (x < -87.34) flush to 0, which lets 2^n be built
 * in one step from the bits of x·log2(e) + 1.5·2^23 + 127 (its low bits
 * hold n + 127). About half the instructions of sdc_exp256. */
static inline __m256 sdc_exp256_neg(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3365402f);
    const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
    __m256 xc = _mm256_max_ps(lo, x); /* operand order keeps a NaN x */
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), _mm256_mul_ps(p, scale));
}

static inline float sdc_hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline float sdc_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* Lane mask selecting the first n (0..8) of 8 lanes, for tails. */
static inline __m256i sdc_tail_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif /* __AVX2__ */

#endif
