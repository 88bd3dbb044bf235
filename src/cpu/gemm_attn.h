/* gemm_attn.h — block kernels of the CPU flash attention (attention.c):
 * packing, score tiles q·kᵀ, the online softmax step and the p·v update.
 * AVX2/FMA in gemm_attn.c, with scalar fallbacks. Private to src/cpu. */
#ifndef SDC_CPU_GEMM_ATTN_H
#define SDC_CPU_GEMM_ATTN_H

#include <stdbool.h>
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

/* How far (in log2 units) a block's scores may exceed the row's running max
 * for sdc_attn_scores_exp: p and the sums grow by at most 2^20, far from
 * float overflow, and the relative rounding is the same at any scale. */
#define SDC_ATTN_STALE_MAX 20.0f

/* sdc_attn_scores and the softmax step in one pass, for a block where every
 * key is visible (no mask, nc real keys): p = 2^(s - m) against the rows'
 * running max m from earlier blocks, left as it is. Returns true, with l
 * += the row sums of p and alpha = 1, if every row's max stays within m +
 * SDC_ATTN_STALE_MAX; false, with only s changed, if any does not, or a row
 * has no finite max yet: the caller then takes the two-pass path. nr <= 8. */
bool sdc_attn_scores_exp(const float *qi, int64_t d, const float *kp, float *s, int64_t lds,
                         int64_t nr, int64_t nc, float scale, const float *m, float *l,
                         float *alpha);

/* Online softmax, in base 2, over scores s [nr, lds] that carry a factor
 * log2(e), keys [0, nc) (masked ones -inf, nc % 8 == 0): updates each row's
 * running max m and sum l, writes alpha = 2^(m_old - m_new), the factor for
 * the old sum and accumulator, and overwrites s with p = 2^(s - m_new). m,
 * l, alpha and mnew (scratch) hold nr rounded up to 8 entries. */
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
