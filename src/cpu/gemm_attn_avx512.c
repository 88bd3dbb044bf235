/* gemm_attn_avx512.c — the flash attention's score and p·v kernels on
 * AVX-512 (see cpu_avx512.h, gemm_attn.h). A 24-key panel is one 16-lane
 * and one 8-lane vector (two FMAs per row and dim, not three), eight rows
 * at a time; p·v takes the head dims 16 at a time. Each output lane sums
 * the same products in the same order as gemm_attn.c's AVX2 kernels, so
 * the bits are the same. */
#include "cpu_avx512.h"
#include "gemm_attn.h"
#include "vmath.h"
#include "vmath_avx512.h"

#include <math.h>

#define KPANEL SDC_ATTN_KPANEL
_Static_assert(KPANEL == 24, "the score kernel takes a panel as 16 + 8 keys");

/* Pins v to a register (see gemm_attn.c). */
#define IN_REG(v) __asm__("" : "+v"(v))

/* s [nr, lds] = scale · q · kᵀ for the 24 keys of panel kk; rows in groups
 * of R (8, or 4 for a last group of 4) from qi's 4-row groups. */
static inline __attribute__((always_inline)) void score_rows(const float *qi, int64_t d,
                                                             const float *kk, float *s,
                                                             int64_t lds, float scale, int R) {
    const float *q0 = qi, *q1 = qi + 4 * d, *kt = kk;
    __m512 a[8];
    __m256 b[8];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        a[i] = _mm512_setzero_ps();
        b[i] = _mm256_setzero_ps();
    }
    for (int64_t t = 0; t < d; t++, q0 += 4, q1 += 4, kt += KPANEL) {
        __m512 k0 = _mm512_loadu_ps(kt);
        __m256 k1 = _mm256_loadu_ps(kt + 16);
        IN_REG(k0);
        IN_REG(k1);
#pragma GCC unroll 8
        for (int i = 0; i < R; i++) {
            float qv = i < 4 ? q0[i] : q1[i - 4];
            a[i] = _mm512_fmadd_ps(_mm512_set1_ps(qv), k0, a[i]);
            b[i] = _mm256_fmadd_ps(_mm256_set1_ps(qv), k1, b[i]);
        }
    }
    __m512 vs = _mm512_set1_ps(scale);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        float *o = s + i * lds;
        _mm512_storeu_ps(o, _mm512_mul_ps(a[i], vs));
        _mm256_storeu_ps(o + 16, _mm256_mul_ps(b[i], _mm512_castps512_ps256(vs)));
    }
}

static __attribute__((noinline)) void score_panel(const float *qi, int64_t d, const float *kk,
                                                  float *s, int64_t lds, int64_t nr,
                                                  float scale) {
    int64_t r = 0;
    for (; r + 8 <= nr; r += 8) score_rows(qi + r * d, d, kk, s + r * lds, lds, scale, 8);
    for (; r < nr; r += 4) score_rows(qi + r * d, d, kk, s + r * lds, lds, scale, 4);
}

void sdc_attn_scores_avx512(const float *qi, int64_t d, const float *kp, float *s, int64_t lds,
                            int64_t nr, int64_t nc, float scale) {
    for (int64_t c = 0; c < nc; c += KPANEL) score_panel(qi, d, kp + c * d, s + c, lds, nr, scale);
}

bool sdc_attn_scores_exp_avx512(const float *qi, int64_t d, const float *kp, float *s,
                                int64_t lds, int64_t nr, int64_t nc, float scale, const float *m,
                                float *l, float *alpha) {
    /* Per row, 8-lane running max and sum, as the AVX2 kernel keeps them. */
    __m256 vmax[8], vsum[8];
    for (int64_t r = 0; r < nr; r++) {
        if (!(m[r] > -INFINITY)) return false;
        vmax[r] = _mm256_set1_ps(-INFINITY);
        vsum[r] = _mm256_setzero_ps();
    }
    for (int64_t c = 0; c < nc; c += KPANEL) {
        score_panel(qi, d, kp + c * d, s + c, lds, nr, scale);
        for (int64_t r = 0; r < nr; r++) {
            float *o = s + r * lds + c;
            __m512 z = _mm512_loadu_ps(o);
            __m256 x2 = _mm256_loadu_ps(o + 16), mr = _mm256_set1_ps(m[r]);
            __m512 ez = sdc_v16_exp2_neg(_mm512_sub_ps(z, _mm512_set1_ps(m[r])));
            __m256 e2 = sdc_v_exp2_neg(_mm256_sub_ps(x2, mr));
            _mm512_storeu_ps(o, ez);
            _mm256_storeu_ps(o + 16, e2);
            __m256 mx = _mm256_max_ps(vmax[r], _mm512_castps512_ps256(z));
            mx = _mm256_max_ps(mx, _mm512_extractf32x8_ps(z, 1));
            vmax[r] = _mm256_max_ps(mx, x2);
            __m256 sm = _mm256_add_ps(vsum[r], _mm512_castps512_ps256(ez));
            sm = _mm256_add_ps(sm, _mm512_extractf32x8_ps(ez, 1));
            vsum[r] = _mm256_add_ps(sm, e2);
        }
    }
    for (int64_t r = 0; r < nr; r++)
        if (!(sdc_v_hmax(vmax[r]) <= m[r] + SDC_ATTN_STALE_MAX)) return false;
    for (int64_t r = 0; r < nr; r++) {
        l[r] += sdc_v_hsum(vsum[r]);
        alpha[r] = 1.0f;
    }
    return true;
}

/* acc [4 rows, nv 16-lane vectors] = acc·alpha + p [4, nc] · v [nc, ...];
 * the last vector covers only the lanes of `last` (the 8-lane rest of a
 * D that is not a multiple of 16). */
static inline __attribute__((always_inline)) void pv_tile(const float *p, int64_t ldp,
                                                          const float *v, int64_t ldv,
                                                          float *acc, int64_t dp,
                                                          const float *alpha, int64_t nc, int nv,
                                                          __mmask16 last) {
    __m512 c[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        __m512 al = _mm512_set1_ps(alpha[r]);
#pragma GCC unroll 3
        for (int u = 0; u < nv; u++) {
            __mmask16 k = u == nv - 1 ? last : (__mmask16)0xFFFF;
            c[r][u] = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, acc + r * dp + 16 * u), al);
        }
    }
    for (int64_t j = 0; j < nc; j++) {
        __m512 vv[3];
#pragma GCC unroll 3
        for (int u = 0; u < nv; u++) {
            __mmask16 k = u == nv - 1 ? last : (__mmask16)0xFFFF;
            vv[u] = _mm512_maskz_loadu_ps(k, v + j * ldv + 16 * u);
            IN_REG(vv[u]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m512 pb = _mm512_set1_ps(p[r * ldp + j]);
#pragma GCC unroll 3
            for (int u = 0; u < nv; u++) c[r][u] = _mm512_fmadd_ps(pb, vv[u], c[r][u]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 3
        for (int u = 0; u < nv; u++) {
            __mmask16 k = u == nv - 1 ? last : (__mmask16)0xFFFF;
            _mm512_mask_storeu_ps(acc + r * dp + 16 * u, k, c[r][u]);
        }
}

void sdc_attn_accumulate_avx512(const float *p, int64_t ldp, const float *v, int64_t ldv,
                                float *acc, int64_t dp, const float *alpha, int64_t nr,
                                int64_t nc) {
    for (int64_t r = 0; r < nr; r += 4) {
        const float *pr = p + r * ldp;
        float *ar = acc + r * dp;
        /* Up to 3 vectors per tile (the last may be 8 lanes): 40 = 16+16+8,
         * 80 = 48 + 32, 160 = 48 + 48 + 32 + 32. */
        for (int64_t d0 = 0; d0 < dp;) {
            int64_t left = dp - d0, nvec = (left + 15) / 16;
            __mmask16 last = left % 16 ? (__mmask16)0x00FF : (__mmask16)0xFFFF;
            if (nvec == 4) {
                pv_tile(pr, ldp, v + d0, ldv, ar + d0, dp, alpha + r, nc, 2, 0xFFFF);
                d0 += 32;
            } else if (nvec > 3) {
                pv_tile(pr, ldp, v + d0, ldv, ar + d0, dp, alpha + r, nc, 3, 0xFFFF);
                d0 += 48;
            } else if (nvec == 3) {
                pv_tile(pr, ldp, v + d0, ldv, ar + d0, dp, alpha + r, nc, 3, last);
                d0 = dp;
            } else if (nvec == 2) {
                pv_tile(pr, ldp, v + d0, ldv, ar + d0, dp, alpha + r, nc, 2, last);
                d0 = dp;
            } else {
                pv_tile(pr, ldp, v + d0, ldv, ar + d0, dp, alpha + r, nc, 1, last);
                d0 = dp;
            }
        }
    }
}
