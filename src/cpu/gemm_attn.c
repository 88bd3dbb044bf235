/* gemm_attn.c — block kernels of the CPU flash attention (see gemm_attn.h):
 * register-blocked AVX2/FMA score and p·v kernels, the online softmax with
 * the vectorized 2^x, and the transposes that pack Q and K. Scalar versions
 * of each follow for builds without AVX2. On the AVX-512 path (cpu_isa.h)
 * the score and p·v kernels are gemm_attn_avx512.c's (the same bits). */
#include "cpu_avx512.h"
#include "cpu_isa.h"
#include "gemm_attn.h"
#include "vmath.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define KPANEL SDC_ATTN_KPANEL

#ifdef __AVX2__
/* Pins v to a register: otherwise GCC folds the load into each FMA that
 * uses it, repeating it per row, and the kernels become load-bound (16
 * loads per 12 FMAs instead of 7; measured 25% slower). */
#define IN_REG(v) __asm__("" : "+x"(v))

/* 8×8 transpose: on return r[i] holds column i of the input rows r[0..7]. */
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

void sdc_attn_pack_q(const float *q, int64_t ld, int64_t valid, int64_t nr, int64_t d,
                     float *qi) {
    for (int64_t g = 0; g < nr; g += 4) {
        const float *row[4];
        for (int i = 0; i < 4; i++) row[i] = g + i < valid ? q + (g + i) * ld : NULL;
        float *dst = qi + g * d;
        int64_t t = 0;
        /* 4 rows × 8 dims -> 8 dims × 4 rows: the 8×8 transpose's low half. */
        for (; t + 8 <= d; t += 8, dst += 32) {
            __m256 r[8];
            for (int i = 0; i < 4; i++) {
                r[i] = row[i] ? _mm256_loadu_ps(row[i] + t) : _mm256_setzero_ps();
                r[i + 4] = _mm256_setzero_ps();
            }
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm_storeu_ps(dst + 4 * i, _mm256_castps256_ps128(r[i]));
        }
        for (; t < d; t++, dst += 4)
            for (int i = 0; i < 4; i++) dst[i] = row[i] ? row[i][t] : 0.0f;
    }
}

void sdc_attn_pack_k(const float *k, int64_t ld, int64_t n, int64_t d, float *kp) {
    int64_t j = 0;
    /* 8 keys × 8 dims at a time; 8 divides KPANEL, so a group of 8 keys
     * never straddles two panels. */
    for (; j + 8 <= n; j += 8) {
        float *pan = kp + j / KPANEL * d * KPANEL + j % KPANEL;
        int64_t t = 0;
        for (; t + 8 <= d; t += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(k + (j + i) * ld + t);
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(pan + (t + i) * KPANEL, r[i]);
        }
        for (; t < d; t++)
            for (int i = 0; i < 8; i++) pan[t * KPANEL + i] = k[(j + i) * ld + t];
    }
    for (; j < n; j++) {
        float *pan = kp + j / KPANEL * d * KPANEL + j % KPANEL;
        for (int64_t t = 0; t < d; t++) pan[t * KPANEL] = k[j * ld + t];
    }
}

/* s [nr, lds] = scale · q · kᵀ for the 24 keys of one panel kk. Not
 * inlined: its 12 accumulators need all of the registers, and GCC spills
 * them in the FMA loop when exp's constants share the function. */
static __attribute__((noinline)) void score_panel(const float *qi, int64_t d, const float *kk,
                                                  float *s, int64_t lds, int64_t nr,
                                                  float scale) {
    __m256 vs = _mm256_set1_ps(scale);
    for (int64_t r = 0; r < nr; r += 4) {
        const float *qq = qi + r * d, *kt = kk;
        __m256 acc[4][3];
        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = acc[i][2] = _mm256_setzero_ps();
        for (int64_t t = 0; t < d; t++, qq += 4, kt += KPANEL) {
            __m256 k0 = _mm256_loadu_ps(kt), k1 = _mm256_loadu_ps(kt + 8);
            __m256 k2 = _mm256_loadu_ps(kt + 16);
            IN_REG(k0);
            IN_REG(k1);
            IN_REG(k2);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m256 b = _mm256_broadcast_ss(qq + i);
                acc[i][0] = _mm256_fmadd_ps(b, k0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(b, k1, acc[i][1]);
                acc[i][2] = _mm256_fmadd_ps(b, k2, acc[i][2]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            float *o = s + (r + i) * lds;
            _mm256_storeu_ps(o, _mm256_mul_ps(acc[i][0], vs));
            _mm256_storeu_ps(o + 8, _mm256_mul_ps(acc[i][1], vs));
            _mm256_storeu_ps(o + 16, _mm256_mul_ps(acc[i][2], vs));
        }
    }
}

void sdc_attn_scores(const float *qi, int64_t d, const float *kp, float *s, int64_t lds,
                     int64_t nr, int64_t nc, float scale) {
    if (sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512) {
        sdc_attn_scores_avx512(qi, d, kp, s, lds, nr, nc, scale);
        return;
    }
    /* Panel-outer: one key panel (d × 24) stays in L1 across the row groups. */
    for (int64_t c = 0; c < nc; c += KPANEL) score_panel(qi, d, kp + c * d, s + c, lds, nr, scale);
}

bool sdc_attn_scores_exp(const float *qi, int64_t d, const float *kp, float *s, int64_t lds,
                         int64_t nr, int64_t nc, float scale, const float *m, float *l,
                         float *alpha) {
    if (sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512)
        return sdc_attn_scores_exp_avx512(qi, d, kp, s, lds, nr, nc, scale, m, l, alpha);
    /* Per row, lane-wise running max of the scores and sum of p. */
    __m256 vmax[8], vsum[8];
    for (int64_t r = 0; r < nr; r++) {
        if (!(m[r] > -INFINITY)) return false; /* no finite max yet (or NaN) */
        vmax[r] = _mm256_set1_ps(-INFINITY);
        vsum[r] = _mm256_setzero_ps();
    }
    for (int64_t c = 0; c < nc; c += KPANEL) {
        score_panel(qi, d, kp + c * d, s + c, lds, nr, scale);
        /* Then 2^(s - m) in place, while the panel's scores are in L1. */
        for (int64_t r = 0; r < nr; r++) {
            float *o = s + r * lds + c;
            __m256 mr = _mm256_set1_ps(m[r]), mx = vmax[r], sm = vsum[r];
#pragma GCC unroll 3
            for (int u = 0; u < 3; u++) {
                __m256 x = _mm256_loadu_ps(o + 8 * u);
                mx = _mm256_max_ps(mx, x);
                __m256 e = sdc_v_exp2_neg(_mm256_sub_ps(x, mr));
                _mm256_storeu_ps(o + 8 * u, e);
                sm = _mm256_add_ps(sm, e);
            }
            vmax[r] = mx;
            vsum[r] = sm;
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

void sdc_attn_softmax(float *s, int64_t lds, int64_t nr, int64_t nc, float *m, float *l,
                      float *alpha, float *mnew) {
    for (int64_t r = 0; r < nr; r++) {
        const float *sr = s + r * lds;
        __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0; /* two chains hide latency */
        int64_t c = 0;
        for (; c + 16 <= nc; c += 16) {
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(sr + c));
            m1 = _mm256_max_ps(m1, _mm256_loadu_ps(sr + c + 8));
        }
        if (c < nc) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(sr + c));
        float mx = sdc_v_hmax(_mm256_max_ps(m0, m1));
        mnew[r] = mx > m[r] ? mx : m[r];
    }
    /* The rescale factors, 8 rows at a time (2^-inf = 0 for a first block). */
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int64_t r = 0; r < nr; r += 8) {
        __m256 mn = _mm256_loadu_ps(mnew + r);
        __m256 a = sdc_v_exp2_neg(_mm256_sub_ps(_mm256_loadu_ps(m + r), mn));
        /* A row with nothing visible yet keeps alpha = 1 (-inf - -inf is NaN). */
        a = _mm256_blendv_ps(a, _mm256_set1_ps(1.0f), _mm256_cmp_ps(mn, ninf, _CMP_EQ_OQ));
        _mm256_storeu_ps(alpha + r, a);
        _mm256_storeu_ps(m + r, mn);
    }
    for (int64_t r = 0; r < nr; r++) {
        float *sr = s + r * lds;
        if (m[r] == -INFINITY) {
            memset(sr, 0, (size_t)nc * sizeof *sr);
            continue;
        }
        __m256 vmax = _mm256_set1_ps(m[r]), s0 = _mm256_setzero_ps(), s1 = s0;
        int64_t c = 0;
        for (; c + 16 <= nc; c += 16) {
            __m256 e0 = sdc_v_exp2_neg(_mm256_sub_ps(_mm256_loadu_ps(sr + c), vmax));
            __m256 e1 = sdc_v_exp2_neg(_mm256_sub_ps(_mm256_loadu_ps(sr + c + 8), vmax));
            _mm256_storeu_ps(sr + c, e0);
            _mm256_storeu_ps(sr + c + 8, e1);
            s0 = _mm256_add_ps(s0, e0);
            s1 = _mm256_add_ps(s1, e1);
        }
        if (c < nc) {
            __m256 e0 = sdc_v_exp2_neg(_mm256_sub_ps(_mm256_loadu_ps(sr + c), vmax));
            _mm256_storeu_ps(sr + c, e0);
            s0 = _mm256_add_ps(s0, e0);
        }
        l[r] = l[r] * alpha[r] + sdc_v_hsum(_mm256_add_ps(s0, s1));
    }
}

/* acc [4 rows, nv·8 dims] = acc·alpha + p [4, nc] · v [nc, nv·8]. The unroll
 * pragmas turn c[][] into 4·nv registers (nv = 2 or 3 keeps 8-12 FMA chains
 * in flight; 1 only when dp = 8). */
static inline __attribute__((always_inline)) void pv_tile(const float *p, int64_t ldp,
                                                          const float *v, int64_t ldv,
                                                          float *acc, int64_t dp,
                                                          const float *alpha, int64_t nc,
                                                          int nv) {
    __m256 c[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        __m256 al = _mm256_set1_ps(alpha[r]);
#pragma GCC unroll 3
        for (int u = 0; u < nv; u++)
            c[r][u] = _mm256_mul_ps(_mm256_loadu_ps(acc + r * dp + 8 * u), al);
    }
    for (int64_t j = 0; j < nc; j++) {
        __m256 vv[3];
#pragma GCC unroll 3
        for (int u = 0; u < nv; u++) {
            vv[u] = _mm256_loadu_ps(v + j * ldv + 8 * u);
            IN_REG(vv[u]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256 pb = _mm256_broadcast_ss(p + r * ldp + j);
#pragma GCC unroll 3
            for (int u = 0; u < nv; u++) c[r][u] = _mm256_fmadd_ps(pb, vv[u], c[r][u]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 3
        for (int u = 0; u < nv; u++) _mm256_storeu_ps(acc + r * dp + 8 * u, c[r][u]);
}

void sdc_attn_accumulate(const float *p, int64_t ldp, const float *v, int64_t ldv, float *acc,
                         int64_t dp, const float *alpha, int64_t nr, int64_t nc) {
    if (sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512) {
        sdc_attn_accumulate_avx512(p, ldp, v, ldv, acc, dp, alpha, nr, nc);
        return;
    }
    for (int64_t r = 0; r < nr; r += 4) {
        const float *pr = p + r * ldp;
        float *ar = acc + r * dp;
        /* dp/8 vectors in chunks of 3 and 2 (4 = 2 + 2): never 1 unless dp = 8. */
        for (int64_t d0 = 0; d0 < dp;) {
            int64_t left = (dp - d0) / 8;
            if (left >= 3 && left != 4) {
                pv_tile(pr, ldp, v + d0, ldv, ar + d0, dp, alpha + r, nc, 3);
                d0 += 24;
            } else if (left >= 2) {
                pv_tile(pr, ldp, v + d0, ldv, ar + d0, dp, alpha + r, nc, 2);
                d0 += 16;
            } else {
                pv_tile(pr, ldp, v + d0, ldv, ar + d0, dp, alpha + r, nc, 1);
                d0 += 8;
            }
        }
    }
}

void sdc_attn_store(float *dst, const float *src, int64_t d, float l) {
    __m256 vl = _mm256_set1_ps(l);
    int64_t t = 0;
    for (; t + 8 <= d; t += 8) _mm256_storeu_ps(dst + t, _mm256_div_ps(_mm256_loadu_ps(src + t), vl));
    for (; t < d; t++) dst[t] = src[t] / l;
}

#else /* scalar fallbacks: same layouts and results up to rounding */

void sdc_attn_pack_q(const float *q, int64_t ld, int64_t valid, int64_t nr, int64_t d,
                     float *qi) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t t = 0; t < d; t++)
            qi[(r / 4) * d * 4 + t * 4 + r % 4] = r < valid ? q[r * ld + t] : 0.0f;
}

void sdc_attn_pack_k(const float *k, int64_t ld, int64_t n, int64_t d, float *kp) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t t = 0; t < d; t++)
            kp[j / KPANEL * d * KPANEL + t * KPANEL + j % KPANEL] = k[j * ld + t];
}

void sdc_attn_scores(const float *qi, int64_t d, const float *kp, float *s, int64_t lds,
                     int64_t nr, int64_t nc, float scale) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) {
            const float *qq = qi + (r / 4) * d * 4 + r % 4;
            const float *kk = kp + (c / KPANEL) * d * KPANEL + c % KPANEL;
            float acc = 0.0f;
            for (int64_t t = 0; t < d; t++) acc += qq[t * 4] * kk[t * KPANEL];
            s[r * lds + c] = acc * scale;
        }
}

bool sdc_attn_scores_exp(const float *qi, int64_t d, const float *kp, float *s, int64_t lds,
                         int64_t nr, int64_t nc, float scale, const float *m, float *l,
                         float *alpha) {
    (void)qi, (void)d, (void)kp, (void)s, (void)lds, (void)nr, (void)nc, (void)scale;
    (void)m, (void)l, (void)alpha;
    return false; /* the two-pass path does it all */
}

void sdc_attn_softmax(float *s, int64_t lds, int64_t nr, int64_t nc, float *m, float *l,
                      float *alpha, float *mnew) {
    (void)mnew;
    for (int64_t r = 0; r < nr; r++) {
        float *sr = s + r * lds, mx = m[r], sum = 0.0f;
        for (int64_t c = 0; c < nc; c++) mx = sr[c] > mx ? sr[c] : mx;
        if (mx == -INFINITY) {
            memset(sr, 0, (size_t)nc * sizeof *sr);
            alpha[r] = 1.0f;
            continue;
        }
        for (int64_t c = 0; c < nc; c++) {
            sr[c] = exp2f(sr[c] - mx);
            sum += sr[c];
        }
        alpha[r] = exp2f(m[r] - mx);
        m[r] = mx;
        l[r] = l[r] * alpha[r] + sum;
    }
}

void sdc_attn_accumulate(const float *p, int64_t ldp, const float *v, int64_t ldv, float *acc,
                         int64_t dp, const float *alpha, int64_t nr, int64_t nc) {
    for (int64_t r = 0; r < nr; r++) {
        float *ar = acc + r * dp;
        for (int64_t t = 0; t < dp; t++) ar[t] *= alpha[r];
        for (int64_t j = 0; j < nc; j++)
            for (int64_t t = 0; t < dp; t++) ar[t] += p[r * ldp + j] * v[j * ldv + t];
    }
}

void sdc_attn_store(float *dst, const float *src, int64_t d, float l) {
    for (int64_t t = 0; t < d; t++) dst[t] = src[t] / l;
}
#endif
