/* gemm_attn.h — block kernels of the CPU flash attention (attention.c):
 * packing, score tiles q·kᵀ, the online softmax step and the p·v update.
 * AVX2/FMA in gemm_attn.c, with scalar fallbacks. Private to src/cpu. */
#ifndef SDC_CPU_GEMM_ATTN_H
#define SDC_CPU_GEMM_ATTN_H

#include <stdint.h>

/* Keys per score-kernel panel: a 4 rows × 24 keys tile keeps 12 FMA chains
 * in flight, enough to hide the FMA latency. */
#define SDC_ATTN_KPANEL 24

/* qi [nr/4, d, 4] (4-row groups interleaved, so a tile broadcasts its 4
 * rows from one pointer) from rows q + r·ld; rows r >= valid are zero.
 * nr % 4 == 0. */
void sdc_attn_pack_q(const float *q, int64_t ld, int64_t valid, int64_t nr, int64_t d,
                     float *qi);

/* kp [., d, KPANEL] panels from n key rows k + j·ld: kp[j/24][t][j%24] =
 * k[j][t]. Entries for keys >= n are left alone (the caller zeroes them). */
void sdc_attn_pack_k(const float *k, int64_t ld, int64_t n, int64_t d, float *kp);

/* s [nr, lds] = scale · q · kᵀ over keys [0, nc): qi from sdc_attn_pack_q,
 * kp from sdc_attn_pack_k; nr % 4 == 0, nc % KPANEL == 0. */
void sdc_attn_scores(const float *qi, int64_t d, const float *kp, float *s, int64_t lds,
                     int64_t nr, int64_t nc, float scale);

/* Online softmax over scores s [nr, lds], keys [0, nc) (masked ones -inf,
 * nc % 8 == 0): updates each row's running max m and sum l, writes
 * alpha = exp(m_old - m_new), the factor for the old sum and accumulator,
 * and overwrites s with p = exp(s - m_new). m, l, alpha and mnew (scratch)
 * hold nr rounded up to 8 entries. */
void sdc_attn_softmax(float *s, int64_t lds, int64_t nr, int64_t nc, float *m, float *l,
                      float *alpha, float *mnew);

/* acc [nr, dp] = acc · alpha[row] + p [nr, ldp] · v [nc, ldv] over the
 * first dp columns of v (dp % 8 == 0, columns past D zero or ignored);
 * nr % 4 == 0, any nc. */
void sdc_attn_accumulate(const float *p, int64_t ldp, const float *v, int64_t ldv, float *acc,
                         int64_t dp, const float *alpha, int64_t nr, int64_t nc);

/* dst [d] = src [d] / l, a true division (exactly rounded). */
void sdc_attn_store(float *dst, const float *src, int64_t d, float l);

#endif
