/* attention_backward.c — CPU adjoint of multi-head attention, flash style
 * (the Nq×Nk probabilities are recomputed block by block, never stored):
 *
 *   1. the forward again, keeping each query row's log-sum-exp (attention.c),
 *      and delta_i = dy_i·o_i per head;
 *   2. per (batch·head, chunk of KCHUNK keys) item, for each block of KB
 *      keys and each block of QB query rows it is visible to:
 *        S = q·kᵀ, P = 2^(scale·log2(e)·S - lse2), dP = dy·vᵀ,
 *        dS = P∘(dP - delta), dv += Pᵀ·dy, dk += dSᵀ·q, dq_chunk += dS·k
 *      with single-threaded sgemms on the pool's threads;
 *   3. dq = scale · the chunks' partial sums, added in chunk order.
 * Every item writes only its own rows, and a chunk's partial dq is summed in
 * a fixed order, so the result is the same bits at any thread count, and a
 * sample's gradient does not depend on its batch. The extra dq buffer is
 * (chunks - 1)·B·Nq·H·D floats: none up to 1024 keys. */
#include "cpu_ops.h"
#include "vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define QB 64        /* query rows per block */
#define KB 128       /* keys per block */
#define KCHUNK 1024  /* keys per work item (a multiple of KB) */

typedef struct ab_ctx {
    const float *q, *k, *v, *dy;  /* [B, Nq or Nk, H·D] */
    const float *o;               /* [B, Nq, H·D] the forward output */
    float *dq, *dk, *dv;
    float *lse2, *delta;          /* [B·H, Nq] each */
    float *dqp;                   /* [chunks, B, Nq, H·D] partial dq, or NULL (one chunk) */
    int64_t nb, nq, nk, nh, d, hd, nchunk;
    float scale, scale2;          /* scale and scale·log2(e) */
    bool causal;
    float *work;                  /* per task: S, dP [QB, KB], dk, dv [KB, D] accumulators */
    int64_t wstride;
    atomic_llong next;
} ab_ctx;

/* delta[bh, i] = Σ_d dy[b, i, h·D + d]·o[b, i, h·D + d]; items are rows (b, i). */
static void delta_range(void *arg, int64_t begin, int64_t end) {
    ab_ctx *a = arg;
    for (int64_t r = begin; r < end; r++) {
        int64_t b = r / a->nq, i = r % a->nq;
        for (int64_t h = 0; h < a->nh; h++) {
            const float *y = a->dy + r * a->hd + h * a->d, *o = a->o + r * a->hd + h * a->d;
            double s = 0;
            for (int64_t t = 0; t < a->d; t++) s += (double)y[t] * o[t];
            a->delta[(b * a->nh + h) * a->nq + i] = (float)s;
        }
    }
}

/* P and dS for one block: s [nr, KB] holds q·kᵀ on entry and P on return,
 * dp [nr, KB] holds dy·vᵀ on entry and dS on return. Row r is query i0 + r,
 * column j is key j0 + j; under the causal mask keys past the query give 0. */
static void block_softmax_grad(const ab_ctx *a, float *s, float *dp, int64_t nr, int64_t nc,
                               const float *lse2, const float *delta, int64_t i0, int64_t j0) {
    for (int64_t r = 0; r < nr; r++) {
        float *sr = s + r * KB, *dr = dp + r * KB;
        int64_t vis = nc;
        if (a->causal && i0 + r - j0 + 1 < vis) vis = i0 + r - j0 + 1;
        if (vis < 0) vis = 0;
        int64_t j = 0;
#ifdef __AVX2__
        __m256 vs = _mm256_set1_ps(a->scale2), vl = _mm256_set1_ps(lse2[r]);
        __m256 vd = _mm256_set1_ps(delta[r]);
        for (; j + 8 <= vis; j += 8) {
            __m256 p = sdc_v_exp2_neg(_mm256_fmsub_ps(_mm256_loadu_ps(sr + j), vs, vl));
            _mm256_storeu_ps(sr + j, p);
            _mm256_storeu_ps(dr + j, _mm256_mul_ps(p, _mm256_sub_ps(_mm256_loadu_ps(dr + j), vd)));
        }
#endif
        for (; j < vis; j++) {
            float p = exp2f(sr[j] * a->scale2 - lse2[r]);
            sr[j] = p;
            dr[j] = p * (dr[j] - delta[r]);
        }
        for (; j < nc; j++) sr[j] = dr[j] = 0.0f;
    }
}

/* One item: keys [c·KCHUNK, ...) of one (batch, head). */
static void chunk_item(const ab_ctx *a, float *work, int64_t item) {
    int64_t bh = item / a->nchunk, chunk = item % a->nchunk;
    int64_t bi = bh / a->nh, hi = bh % a->nh, d = a->d, hd = a->hd;
    float *s = work, *dp = s + QB * KB, *kacc = dp + QB * KB, *vacc = kacc + KB * d;
    const float *q = a->q + bi * a->nq * hd + hi * d, *y = a->dy + bi * a->nq * hd + hi * d;
    const float *k = a->k + bi * a->nk * hd + hi * d, *v = a->v + bi * a->nk * hd + hi * d;
    const float *lse2 = a->lse2 + bh * a->nq, *delta = a->delta + bh * a->nq;
    /* dq (or this chunk's partial): rows of ld H·D, zeroed, scaled at the end. */
    float *dq = a->dqp ? a->dqp + (chunk * a->nb + bi) * a->nq * hd + hi * d
                       : a->dq + bi * a->nq * hd + hi * d;
    for (int64_t i = 0; i < a->nq; i++) memset(dq + i * hd, 0, (size_t)d * sizeof *dq);
    int64_t kend = (chunk + 1) * KCHUNK < a->nk ? (chunk + 1) * KCHUNK : a->nk;
    for (int64_t j0 = chunk * KCHUNK; j0 < kend; j0 += KB) {
        int64_t nc = kend - j0 < KB ? kend - j0 : KB;
        memset(kacc, 0, (size_t)(2 * KB * d) * sizeof *kacc);
        /* Under the causal mask, queries before j0 see none of these keys. */
        int64_t first = a->causal ? j0 / QB * QB : 0;
        for (int64_t i0 = first; i0 < a->nq; i0 += QB) {
            int64_t nr = a->nq - i0 < QB ? a->nq - i0 : QB;
            const float *qb = q + i0 * hd, *yb = y + i0 * hd, *kb = k + j0 * hd, *vb = v + j0 * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nc, (int)d, 1.0f,
                        qb, (int)hd, kb, (int)hd, 0.0f, s, KB);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nc, (int)d, 1.0f,
                        yb, (int)hd, vb, (int)hd, 0.0f, dp, KB);
            block_softmax_grad(a, s, dp, nr, nc, lse2 + i0, delta + i0, i0, j0);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)d, (int)nr, 1.0f,
                        s, KB, yb, (int)hd, 1.0f, vacc, (int)d);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)d, (int)nr, 1.0f,
                        dp, KB, qb, (int)hd, 1.0f, kacc, (int)d);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)d, (int)nc, 1.0f,
                        dp, KB, kb, (int)hd, 1.0f, dq + i0 * hd, (int)hd);
        }
        float *dk = a->dk + (bi * a->nk + j0) * hd + hi * d;
        float *dv = a->dv + (bi * a->nk + j0) * hd + hi * d;
        for (int64_t j = 0; j < nc; j++)
            for (int64_t t = 0; t < d; t++) {
                dk[j * hd + t] = a->scale * kacc[j * d + t];
                dv[j * hd + t] = vacc[j * d + t];
            }
    }
    if (!a->dqp)
        for (int64_t i = 0; i < a->nq; i++)
            for (int64_t t = 0; t < d; t++) dq[i * hd + t] *= a->scale;
}

/* Task t (one per thread) takes items until none are left. */
static void chunk_tasks(void *p, int64_t begin, int64_t end) {
    ab_ctx *a = p;
    int64_t nitems = a->nb * a->nh * a->nchunk;
    for (int64_t t = begin; t < end; t++)
        for (;;) {
            int64_t it = atomic_fetch_add(&a->next, 1);
            if (it >= nitems) break;
            chunk_item(a, a->work + t * a->wstride, it);
        }
}

/* dq = scale · Σ_chunks dqp, in chunk order; items are rows (b, i). */
static void reduce_range(void *arg, int64_t begin, int64_t end) {
    const ab_ctx *a = arg;
    int64_t plane = a->nb * a->nq * a->hd;
    for (int64_t r = begin; r < end; r++) {
        float *dst = a->dq + r * a->hd;
        const float *src = a->dqp + r * a->hd;
        for (int64_t t = 0; t < a->hd; t++) {
            float sum = src[t];
            for (int64_t c = 1; c < a->nchunk; c++) sum += src[c * plane + t];
            dst[t] = a->scale * sum;
        }
    }
}

/* q, dy [B, Nq, H·D], k, v [B, Nk, H·D] -> dq like q, dk like k, dv like v */
sdc_status sdc_cpu_attention_backward(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *q = op->src[0], *k = op->src[1];
    ab_ctx a = {.q = q->data, .k = k->data, .v = op->src[2]->data, .dy = op->src[3]->data,
                .dq = op->dst->data, .dk = op->dst_more[0]->data, .dv = op->dst_more[1]->data,
                .nb = q->shape[0], .nq = q->shape[1], .nk = k->shape[1],
                .nh = op->p.attention.heads, .hd = q->shape[2], .causal = op->p.attention.causal};
    a.d = a.hd / a.nh;
    if (a.nb == 0 || a.d == 0) return SDC_OK;
    if (a.nq == 0) { /* no query: nothing flows back to the keys */
        memset(a.dk, 0, sdc_tensor_nbytes(op->dst_more[0]));
        memset(a.dv, 0, sdc_tensor_nbytes(op->dst_more[1]));
        return SDC_OK;
    }
    a.scale = op->p.attention.scale != 0.0f ? op->p.attention.scale
                                            : (float)(1.0 / sqrt((double)a.d));
    a.scale2 = (float)(a.scale * 1.4426950408889634); /* as the forward rounds it */
    int64_t rows = a.nb * a.nh * a.nq;
    /* 1. The forward's output and row statistics. */
    float *stats = sdc_cpu_scratch(be, 2, (size_t)(2 * rows), err);
    float *o = stats ? sdc_cpu_scratch(be, 3, (size_t)sdc_tensor_numel(q), err) : NULL;
    if (!o) return sdc_err_wrap(err, "attention_backward: forward buffers");
    a.lse2 = stats;
    a.delta = stats + rows;
    a.o = o;
    sdc_tensor ot = *q;
    ot.data = o;
    sdc_op fwd = {.kind = SDC_OP_ATTENTION, .src = {q, k, op->src[2]}, .dst = &ot};
    fwd.p.attention = op->p.attention;
    sdc_status s = sdc_cpu_attention_lse(be, &fwd, a.lse2, err);
    if (s) return sdc_err_wrap(err, "attention_backward");
    sdc_parallel_for(a.nb * a.nq, 1 + 8192 / (a.hd + 1), delta_range, &a);
    /* 2. Key chunks. */
    a.nchunk = (a.nk + KCHUNK - 1) / KCHUNK;
    int64_t ntasks = sdc_get_threads();
    a.wstride = (2 * QB * KB + 2 * KB * a.d + 15) / 16 * 16;
    a.work = sdc_cpu_scratch(be, 7, (size_t)(ntasks * a.wstride), err);
    if (a.work && a.nchunk > 1)
        a.dqp = sdc_cpu_scratch(be, 6, (size_t)(a.nchunk * sdc_tensor_numel(q)), err);
    if (!a.work || (a.nchunk > 1 && !a.dqp))
        return sdc_err_wrap(err, "attention_backward: work buffers");
    atomic_init(&a.next, 0);
    sdc_blas_serial_begin();
    sdc_parallel_for(ntasks, 1, chunk_tasks, &a);
    sdc_blas_serial_end();
    /* 3. dq from the partials. */
    if (a.dqp) sdc_parallel_for(a.nb * a.nq, 1 + 8192 / (a.hd + 1), reduce_range, &a);
    return SDC_OK;
}
