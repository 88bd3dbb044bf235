/* vmath.h — AVX2/FMA vector math for the CPU ops: expf (≤ 2 ulp), leaner
 * e^x and 2^x for x ≤ 0 (softmax after max-subtraction), erf and the normal
 * CDF (abs. error ~1e-7, relative in the tails), sigmoid, SiLU, GELU,
 * horizontal max/sums and masked tail loads. Header-only (static inline). */
#ifndef SDC_CPU_VMATH_H
#define SDC_CPU_VMATH_H

#include <math.h>
#include <stdint.h>

/* Scalar forms, used by the non-AVX2 build and as the definition the vector
 * forms are checked against. Φ(x) = 0.5·erfc(-x/√2) keeps GELU's negative
 * tail relatively accurate, where 1 + erf(x/√2) would cancel. */
static inline float sdc_s_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline float sdc_s_silu(float x) { return x / (1.0f + expf(-x)); }
static inline float sdc_s_gelu(float x) { return x * 0.5f * erfcf(x * -0.70710678118654752f); }
static inline float sdc_s_gelu_grad(float x) {
    return 0.5f * erfcf(x * -0.70710678118654752f) + x * 0.3989422804014327f * expf(-0.5f * x * x);
}

#ifdef __AVX2__
#include <immintrin.h>

/* exp(x). n = round(x/ln2), r = x - n·ln2 (two-part ln2, FMA), exp(r) =
 * 1 + r + r²·P(r) with P a degree-5 fit on [-ln2/2, ln2/2] (rel. error 2e-10,
 * fitted with mpmath.chebyfit), then ·2^n applied in two halves so that
 * subnormal results and overflow to Inf come out right. NaN stays NaN. */
static inline __m256 sdc_v_exp(__m256 x) {
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(88.8f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693145751953125f), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.9890980869750326e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3933641031986701e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3333109344488685e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1666465006040049e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666666681614256e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000000134577272e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n);            /* in [-150, 128] */
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static inline __m256 sdc_v_sigmoid(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, sdc_v_exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* x·sigmoid(x) as x / (1 + exp(-x)), as torch computes it. */
static inline __m256 sdc_v_silu(__m256 x) {
    __m256 e = sdc_v_exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* erf(z) = z·P(z²) on |z| <= 1, P of degree 6 (abs. error 1.2e-9, fitted with
 * mpmath.chebyfit). The leading term c0·z is added last with c0 split in two
 * floats, so the result is within ~1 ulp instead of ~2. */
static inline __m256 sdc_v__erf_small(__m256 z) {
    __m256 s = _mm256_mul_ps(z, z);
    __m256 p = _mm256_set1_ps(7.8758750626854883e-5f);
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-8.0168642871658695e-4f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(5.189087423433974e-3f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-2.6854212010626412e-2f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.1283594715160218e-1f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-3.7612626666720331e-1f));
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(p, s), z);
    t = _mm256_fmadd_ps(_mm256_set1_ps((float)(1.1283791658483509 - (double)1.1283791658483509f)),
                        z, t);
    return _mm256_fmadd_ps(_mm256_set1_ps(1.1283791658483509f), z, t);
}

/* erfc(a) for a >= 0, given a² = a2hi + a2lo exactly: exp(-a²)·erfcx(a),
 * with erfcx fitted as a degree-11 polynomial in u = 1/(1 + a/2) - 7/12 over
 * a in [0, 10] (rel. error 8e-9, mpmath.chebyfit). exp(-a²) is taken as
 * exp(-a2hi)·(1 - a2lo), so the result stays relatively accurate deep into
 * the tail. Beyond a = 10 it underflows to (nearly) 0, as erfc does. */
static inline __m256 sdc_v__erfc(__m256 a, __m256 a2hi, __m256 a2lo) {
    __m256 ac = _mm256_min_ps(a, _mm256_set1_ps(10.0f));
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(ac, _mm256_set1_ps(0.5f), one));
    __m256 u = _mm256_sub_ps(t, _mm256_set1_ps(0.58333333333333333f));
    __m256 q = _mm256_set1_ps(0.013353338727870101f);
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(0.034805688415492679f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(-0.053134919605832182f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(-0.039329535433369713f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(0.11361957757222788f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(0.016984103727080533f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(-0.23284759458013323f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(-0.036667211176007566f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(0.63577232440324108f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(1.1257539236760301f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(1.0287235048437346f));
    q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(0.33367365300038237f));
    __m256 e = sdc_v_exp(_mm256_sub_ps(_mm256_setzero_ps(), a2hi));
    return _mm256_mul_ps(_mm256_fnmadd_ps(e, a2lo, e), q);
}

/* a² split as hi + lo (exact with FMA). a is clamped to 15 first, past which
 * erfc is 0 anyway, so that Inf does not turn lo into NaN (NaN stays NaN). */
static inline void sdc_v__square2(__m256 a, __m256 *hi, __m256 *lo) {
    __m256 ah = _mm256_min_ps(_mm256_set1_ps(15.0f), a);
    *hi = _mm256_mul_ps(ah, ah);
    *lo = _mm256_fmsub_ps(ah, ah, *hi);
}

static inline __m256 sdc_v_abs(__m256 x) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

/* erf(x), absolute error ~1e-7 (a few float ulps near 1). */
static inline __m256 sdc_v_erf(__m256 x) {
    __m256 a = sdc_v_abs(x);
    __m256 small = sdc_v__erf_small(x);
    __m256 hi, lo;
    sdc_v__square2(a, &hi, &lo);
    __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f), sdc_v__erfc(a, hi, lo));
    __m256 r = _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(1.0f), _CMP_LT_OQ));
    return _mm256_or_ps(sdc_v_abs(r), _mm256_and_ps(x, _mm256_set1_ps(-0.0f))); /* odd, -0 too */
}

/* The normal CDF Φ(x) = 0.5·erfc(|x|/√2) for x < 0 and 1 minus that for
 * x >= 0: one branch-free path, and the negative tail keeps its relative
 * accuracy (1 + erf(x/√2) would cancel there). */
static inline __m256 sdc_v_norm_cdf(__m256 x) {
    __m256 half = _mm256_set1_ps(0.5f);
    __m256 ax = sdc_v_abs(x);
    /* a² = x²/2 from x itself: rounding z = x/√2 first would cost
     * ~2·a²·2^-24 of relative accuracy in exp(-a²). */
    __m256 hi, lo;
    sdc_v__square2(ax, &hi, &lo);
    __m256 a = _mm256_mul_ps(ax, _mm256_set1_ps(0.70710678118654752f));
    __m256 e = sdc_v__erfc(a, _mm256_mul_ps(hi, half), _mm256_mul_ps(lo, half));
    e = _mm256_mul_ps(e, half);
    return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), e), e, x);
}

/* Exact GELU, x·Φ(x). */
static inline __m256 sdc_v_gelu(__m256 x) { return _mm256_mul_ps(x, sdc_v_norm_cdf(x)); }

/* GELU's derivative Φ(x) + x·φ(x), φ(x) = exp(-x²/2)/√(2π). */
static inline __m256 sdc_v_gelu_grad(__m256 x) {
    __m256 pdf = _mm256_mul_ps(
        _mm256_set1_ps(0.3989422804014327f),
        sdc_v_exp(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(x, x))));
    return _mm256_fmadd_ps(x, pdf, sdc_v_norm_cdf(x));
}

/* e^x for x <= 0 (or -inf, or NaN), as softmax needs after subtracting the
 * max: the same reduction as sdc_v_exp with the Cephes polynomial (~1.3 ulp), but
 * results below FLT_MIN (x < -87.34) flush to 0, which lets 2^n be built
 * in one step from the bits of x·log2(e) + 1.5·2^23 + 127 (its low bits
 * hold n + 127). About half the instructions of sdc_exp256. */
static inline __m256 sdc_v_exp_neg(__m256 x) {
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

/* 2^x for x <= 0 (or -inf, or NaN), for the attention softmax, whose
 * scores carry a factor log2(e): n = round(x), r = x - n exactly (|r| <=
 * 1/2), 2^r = 1 + r·Q(r) with Q of degree 5 (rel. error 9e-9 with these
 * float coefficients, mpmath.chebyfit), times 2^n from the bits of x +
 * 1.5·2^23 + 127. x is clamped to -127, where those bits give 2^n = +0, so
 * x <= -126.5 (and -inf) gives exactly 0 with no compare. 7 FMA-port
 * operations against sdc_v_exp_neg's 11. */
static inline __m256 sdc_v_exp2_neg(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
    __m256 xc = _mm256_max_ps(_mm256_set1_ps(-127.0f), x); /* keeps a NaN x */
    __m256 t = _mm256_add_ps(xc, magic);
    __m256 r = _mm256_sub_ps(xc, _mm256_sub_ps(t, magic));
    __m256 q = _mm256_set1_ps(1.5453163359779865e-4f);
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.3390863314270973e-3f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(9.618083015084267e-3f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(5.5503569543361664e-2f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(2.4022650718688965e-1f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(6.931471824645996e-1f));
    __m256 p = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_mul_ps(p, scale);
}

static inline float sdc_v_hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline float sdc_v_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline double sdc_v_hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* Lane mask for the first n lanes (all 8 when n >= 8), for maskload and
 * maskstore tails. Masked-off lanes are never touched, so a tail may end
 * at the last byte of an allocation. */
static inline __m256i sdc_v_tail_mask(int64_t n) {
    int k = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif /* __AVX2__ */

#endif /* SDC_CPU_VMATH_H */
