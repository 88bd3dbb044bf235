/* wgemm_avx512.c — wgemm's 32 × 12 micro-kernel in one pass: 24 accumulators
 * of 16 floats, two panel loads and twelve broadcasts per k. Each element is
 * acc = fma(a, b, acc) in k order, as in the AVX2 kernel (same bits). */
#include "cpu_avx512.h"

#include <immintrin.h>

void sdc_wgemm_kernel_avx512(int64_t kc, const float *ap, const float *const *b, float *acc) {
#define WG_ROW(j)                                                                 \
    const float *b##j = b[j];                                                     \
    __m512 c##j##l = _mm512_loadu_ps(acc + (j) * 32),                             \
           c##j##h = _mm512_loadu_ps(acc + (j) * 32 + 16);
    WG_ROW(0) WG_ROW(1) WG_ROW(2) WG_ROW(3) WG_ROW(4) WG_ROW(5)
    WG_ROW(6) WG_ROW(7) WG_ROW(8) WG_ROW(9) WG_ROW(10) WG_ROW(11)
#undef WG_ROW
    const float *a = ap;
    for (int64_t k = 0; k < kc; k++, a += 32) {
        __m512 al = _mm512_load_ps(a), ah = _mm512_load_ps(a + 16);
#define WG_FMA(j)                                      \
    {                                                  \
        __m512 x = _mm512_set1_ps(b##j[k]);            \
        c##j##l = _mm512_fmadd_ps(al, x, c##j##l);     \
        c##j##h = _mm512_fmadd_ps(ah, x, c##j##h);     \
    }
        WG_FMA(0) WG_FMA(1) WG_FMA(2) WG_FMA(3) WG_FMA(4) WG_FMA(5)
        WG_FMA(6) WG_FMA(7) WG_FMA(8) WG_FMA(9) WG_FMA(10) WG_FMA(11)
#undef WG_FMA
    }
#define WG_STORE(j)                                \
    _mm512_storeu_ps(acc + (j) * 32, c##j##l);     \
    _mm512_storeu_ps(acc + (j) * 32 + 16, c##j##h);
    WG_STORE(0) WG_STORE(1) WG_STORE(2) WG_STORE(3) WG_STORE(4) WG_STORE(5)
    WG_STORE(6) WG_STORE(7) WG_STORE(8) WG_STORE(9) WG_STORE(10) WG_STORE(11)
#undef WG_STORE
}
