/* vmath_avx512.h — the AVX-512 forms of vmath.h's e^x, SiLU and 2^x (x <= 0)
 * for the *_avx512.c kernels: the same operations in the same order on 16
 * lanes, so each lane's result has the same bits as the AVX2 form's. Only
 * for files compiled with the AVX-512 flags (Makefile, cpu_isa.h). */
#ifndef SDC_CPU_VMATH_AVX512_H
#define SDC_CPU_VMATH_AVX512_H

#ifndef __AVX512F__
#error "vmath_avx512.h is for the *_avx512.c kernels, built with -mavx512f"
#endif

#include <immintrin.h>

/* sdc_v_exp on 16 lanes. */
static inline __m512 sdc_v16_exp(__m512 x) {
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.8f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.9890980869750326e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3933641031986701e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3333109344488685e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1666465006040049e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666666681614256e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000000134577272e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i ni = _mm512_cvtps_epi32(n); /* in [-150, 128] */
    __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
    __m512i bias = _mm512_set1_epi32(127);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

/* sdc_v_silu on 16 lanes: x / (1 + exp(-x)). */
static inline __m512 sdc_v16_silu(__m512 x) {
    __m512 e = sdc_v16_exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* sdc_v_exp2_neg on 16 lanes. */
static inline __m512 sdc_v16_exp2_neg(__m512 x) {
    const __m512 magic = _mm512_set1_ps(12582912.0f + 127.0f);
    __m512 xc = _mm512_max_ps(_mm512_set1_ps(-127.0f), x); /* keeps a NaN x */
    __m512 t = _mm512_add_ps(xc, magic);
    __m512 r = _mm512_sub_ps(xc, _mm512_sub_ps(t, magic));
    __m512 q = _mm512_set1_ps(1.5453163359779865e-4f);
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.3390863314270973e-3f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(9.618083015084267e-3f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(5.5503569543361664e-2f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(2.4022650718688965e-1f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(6.931471824645996e-1f));
    __m512 p = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f));
    __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t), 23));
    return _mm512_mul_ps(p, scale);
}

/* Lane mask for the first n lanes (all 16 when n >= 16). */
static inline __mmask16 sdc_v16_tail_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

#endif
