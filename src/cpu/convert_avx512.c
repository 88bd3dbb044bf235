/* convert_avx512.c — F16 -> F32 widening, 32 halves per step (exact, so the
 * same bits as the F16C path). See cpu_avx512.h. */
#include "cpu_avx512.h"

#include <immintrin.h>

void sdc_cpu_f16_to_f32_avx512(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 16));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(a));
        _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(b));
    }
    if (i < n) { /* masked tail, 16 at a time */
        for (; i < n; i += 16) {
            __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
            __m256i a = _mm256_maskz_loadu_epi16(m, src + i);
            _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(a));
        }
    }
}
