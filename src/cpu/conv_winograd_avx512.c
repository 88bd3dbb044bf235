/* conv_winograd_avx512.c — the Winograd weight transform U = G g Gᵀ for 16
 * input channels at a time (conv_winograd.c does 8; see cpu_avx512.h). G's
 * rows are conv_winograd.c's g6 and g4, the same expressions on 16 lanes
 * (no FMA contraction in ISO C mode), so U has the same bits. */
#include "cpu_avx512.h"

#include <immintrin.h>
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

static inline void g6(const v16 *g, int s, v16 *o, int t) { /* G g, 3 → 6 */
    v16 g0 = g[0], g1 = g[s], g2 = g[2 * s];
    o[0] = g0;
    o[t] = (g1 - g0 - g2) * (1.0f / 3);
    o[2 * t] = (g0 + g1 + g2) * (1.0f / 3);
    o[3 * t] = (16.0f * g0 + 8.0f * g1 + 4.0f * g2) * (-1.0f / 15);
    o[4 * t] = (g0 - 2.0f * g1 + 4.0f * g2) * (1.0f / 15);
    o[5 * t] = g2;
}

static inline void g4(const v16 *g, int s, v16 *o, int t) { /* 3 → 4 */
    v16 g0 = g[0], g1 = g[s], g2 = g[2 * s];
    o[0] = g0;
    o[t] = (g0 + g1 + g2) * 0.5f;
    o[2 * t] = (g0 - g1 + g2) * 0.5f;
    o[3 * t] = g2;
}

void sdc_wino_weights16_avx512(int a, const float *taps, int64_t n, float *dst, int64_t ps) {
    v16 w[3][3], t[6][3], u[6][6];
    __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(9));
    for (int i = 0; i < 9; i++) /* w[i/3][i%3][l] = taps[l·9 + i] */
        w[i / 3][i % 3] = (v16)_mm512_i32gather_ps(idx, taps + i, 4);
    if (a == 6) {
        for (int j = 0; j < 3; j++) g6(&w[0][j], 3, &t[0][j], 3);
        for (int i = 0; i < 6; i++) g6(&t[i][0], 1, &u[i][0], 1);
    } else {
        for (int j = 0; j < 3; j++) g4(&w[0][j], 3, &t[0][j], 3);
        for (int i = 0; i < 4; i++) g4(&t[i][0], 1, &u[i][0], 1);
    }
    __mmask16 k = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
    for (int p = 0; p < a * a; p++)
        _mm512_mask_storeu_ps(dst + p * ps, k, (__m512)u[p / a][p % a]);
}
