/* attention.c — CPU multi-head attention, flash style: per (batch, head,
 * block of query rows), walk the keys in blocks with an online softmax
 * (running max and sum, rescaling the accumulator), 8 query rows at a time
 * through scores, softmax and p·v. Memory is O(N·D); the Nq×Nk score matrix
 * never exists. Kernels in gemm_attn.c. */
#include "cpu_ops.h"
#include "gemm_attn.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define KPANEL SDC_ATTN_KPANEL
/* Query rows per block (a multiple of 8). Keys per block (a multiple of the
 * panel, at most BLOCK_K_MAX) are chosen so the block's V, read once per 4
 * query rows, stays within about 32 KiB of L1: 96 keys up to D = 80, 48 at
 * D = 160 (measured 30% faster there than 96), 24 beyond. (Half that, 48
 * keys at D = 80, measured no faster once rows went 8 at a time.) */
#define BLOCK_Q 64
#define BLOCK_K_MAX 96
#define V_BLOCK_FLOATS 8192

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

typedef struct attn_ctx {
    const float *q, *k, *v; /* [B, Nq or Nk, H·D] */
    float *o;               /* [B, Nq, H·D] */
    int64_t nb, nq, nk, nh, d, dp, hd; /* dp = D rounded up to 8 */
    int64_t bc, nqb, nkb;   /* keys per block, query and key block counts */
    float scale2;           /* the softmax scale times log2(e) */
    bool causal;
    /* Packed per (batch, head, key block), zero past Nk: K as panels
     * [bc/KPANEL, D, KPANEL] (each d's keys contiguous). V is read in place
     * when D % 8 == 0 (every SD shape); otherwise packed as [bc, dp] with
     * zero columns past D, so the kernels need no tails. */
    float *kpack, *vpack;   /* vpack NULL when V is read in place */
    float *work;            /* per-task buffers, `wstride` floats each */
    float *lse2;            /* [B·H, Nq] row log-sum-exps (base 2) or NULL */
    int64_t wstride;
    atomic_llong next;      /* next (batch, head, query block) item */
} attn_ctx;

static float *kblock(const attn_ctx *a, int64_t bh, int64_t kb) {
    return a->kpack + (bh * a->nkb + kb) * a->d * a->bc;
}

/* Items = (batch·heads + head) · nkb + key block. */
static void pack_kv(void *p, int64_t begin, int64_t end) {
    const attn_ctx *a = p;
    for (int64_t it = begin; it < end; it++) {
        int64_t bh = it / a->nkb, kb = it % a->nkb, bi = bh / a->nh, hi = bh % a->nh;
        int64_t nvalid = a->nk - kb * a->bc < a->bc ? a->nk - kb * a->bc : a->bc;
        int64_t row0 = (bi * a->nk + kb * a->bc) * a->hd + hi * a->d;
        float *kt = kblock(a, bh, kb);
        if (nvalid < a->bc) memset(kt, 0, (size_t)(a->d * a->bc) * sizeof *kt);
        sdc_attn_pack_k(a->k + row0, a->hd, nvalid, a->d, kt);
        if (a->vpack) {
            float *vp = a->vpack + (bh * a->nkb + kb) * a->bc * a->dp;
            memset(vp, 0, (size_t)(a->bc * a->dp) * sizeof *vp);
            for (int64_t j = 0; j < nvalid; j++)
                memcpy(vp + j * a->dp, a->v + row0 + j * a->hd, (size_t)a->d * sizeof *vp);
        }
    }
}

/* Per-task buffers: the query rows (4-row groups interleaved), scores then
 * probabilities, the output accumulator, and per-row running max, sum,
 * rescale factor and new max. */
typedef struct attn_work {
    float *qi;                   /* [BLOCK_Q/4, D, 4] */
    float *s;                    /* [8, bc]: one row group's */
    float *acc;                  /* [BLOCK_Q, dp] */
    float *m, *l, *alpha, *mnew; /* [BLOCK_Q] each */
} attn_work;

/* Whole cache lines per task, so two threads never share one. */
static int64_t work_floats(int64_t d, int64_t dp, int64_t bc) {
    return round_up(round_up(BLOCK_Q * d, 16) + 8 * bc + BLOCK_Q * dp + 4 * BLOCK_Q, 16);
}

static attn_work work_at(float *base, int64_t d, int64_t dp, int64_t bc) {
    attn_work w;
    w.qi = base;
    w.s = w.qi + round_up(BLOCK_Q * d, 16);
    w.acc = w.s + 8 * bc;
    w.m = w.acc + BLOCK_Q * dp;
    w.l = w.m + BLOCK_Q;
    w.alpha = w.l + BLOCK_Q;
    w.mnew = w.alpha + BLOCK_Q;
    return w;
}

/* One (batch, head, query block) item. */
static void attend_block(const attn_ctx *a, attn_work *w, int64_t item) {
    int64_t qb = item % a->nqb, bh = item / a->nqb, bi = bh / a->nh, hi = bh % a->nh;
    int64_t i0 = qb * BLOCK_Q, nr = a->nq - i0 < BLOCK_Q ? a->nq - i0 : BLOCK_Q;
    int64_t nrp = round_up(nr, 4), d = a->d, dp = a->dp, bc = a->bc;
    /* Rows past nr are zero: they compute harmless finite junk, never stored. */
    sdc_attn_pack_q(a->q + (bi * a->nq + i0) * a->hd + hi * d, a->hd, nr, nrp, d, w->qi);
    for (int64_t r = 0; r < BLOCK_Q; r++) {
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    memset(w->acc, 0, (size_t)(nrp * dp) * sizeof *w->acc);
    /* With the causal mask, keys past the block's last query are never seen. */
    int64_t kend = a->causal && i0 + nr < a->nk ? i0 + nr : a->nk;
    for (int64_t kb = 0; kb * bc < kend; kb++) {
        int64_t j0 = kb * bc, nc = kend - j0 < bc ? kend - j0 : bc;
        int64_t ncp = round_up(nc, KPANEL);
        const float *kp = kblock(a, bh, kb);
        /* p is 0 for keys past nc: only the nc real V rows are read. */
        const float *vb = a->vpack ? a->vpack + (bh * a->nkb + kb) * bc * dp
                                   : a->v + (bi * a->nk + j0) * a->hd + hi * d;
        int64_t ldv = a->vpack ? dp : a->hd;
        /* 8 rows at a time through scores, softmax and p·v, so the scores
         * stay in L1 next to the key block's K and V. */
        for (int64_t g = 0; g < nrp; g += 8) {
            int64_t ng = nrp - g < 8 ? nrp - g : 8;
            /* After the first block the running max rarely moves: one pass
             * against it, unless a block has padding or masked keys. */
            if (a->causal || nc != ncp || kb == 0 ||
                !sdc_attn_scores_exp(w->qi + g * d, d, kp, w->s, bc, ng, ncp, a->scale2,
                                     w->m + g, w->l + g, w->alpha + g)) {
                sdc_attn_scores(w->qi + g * d, d, kp, w->s, bc, ng, ncp, a->scale2);
                /* Row r sees keys j < nc, and with the causal mask j0 + j <= i0 + r. */
                for (int64_t r = 0; r < ng; r++) {
                    int64_t vis = nc;
                    if (a->causal && i0 + g + r - j0 + 1 < vis) vis = i0 + g + r - j0 + 1;
                    for (int64_t j = vis < 0 ? 0 : vis; j < ncp; j++) w->s[r * bc + j] = -INFINITY;
                }
                sdc_attn_softmax(w->s, bc, ng, ncp, w->m + g, w->l + g, w->alpha + g,
                                 w->mnew + g);
            }
            sdc_attn_accumulate(w->s, bc, vb, ldv, w->acc + g * dp, dp, w->alpha + g, ng, nc);
        }
    }
    for (int64_t r = 0; r < nr; r++)
        sdc_attn_store(a->o + (bi * a->nq + i0 + r) * a->hd + hi * d, w->acc + r * dp, d, w->l[r]);
    if (a->lse2)
        for (int64_t r = 0; r < nr; r++) a->lse2[bh * a->nq + i0 + r] = w->m[r] + log2f(w->l[r]);
}

/* Task t (one per thread) takes items until none are left. */
static void attend_tasks(void *p, int64_t begin, int64_t end) {
    attn_ctx *a = p;
    int64_t nitems = a->nb * a->nh * a->nqb;
    for (int64_t t = begin; t < end; t++) {
        attn_work w = work_at(a->work + t * a->wstride, a->d, a->dp, a->bc);
        for (;;) {
            int64_t it = atomic_fetch_add(&a->next, 1);
            if (it >= nitems) break;
            attend_block(a, &w, it);
        }
    }
}

static sdc_status attention_run(sdc_backend *be, const sdc_op *op, float *lse2, sdc_err *err) {
    const sdc_tensor *q = op->src[0]; /* [B, Nq, H·D] */
    const sdc_tensor *k = op->src[1]; /* [B, Nk, H·D] */
    const sdc_tensor *v = op->src[2]; /* [B, Nk, H·D] */
    attn_ctx a = {.q = q->data, .k = k->data, .v = v->data, .o = op->dst->data,
                  .nb = q->shape[0], .nq = q->shape[1], .nk = k->shape[1],
                  .nh = op->p.attention.heads, .hd = q->shape[2],
                  .causal = op->p.attention.causal, .lse2 = lse2};
    a.d = a.hd / a.nh;
    if (a.nb == 0 || a.nq == 0 || a.d == 0) return SDC_OK;
    a.dp = round_up(a.d, 8);
    /* 1/sqrt(D) rounded once, as torch's Python-side float gives it; the
     * softmax takes 2^x, cheaper than e^x, so the scores carry log2(e). */
    float scale = op->p.attention.scale != 0.0f ? op->p.attention.scale
                                                : (float)(1.0 / sqrt((double)a.d));
    a.scale2 = (float)(scale * 1.4426950408889634);
    a.bc = V_BLOCK_FLOATS / a.dp / KPANEL * KPANEL;
    a.bc = a.bc < KPANEL ? KPANEL : a.bc > BLOCK_K_MAX ? BLOCK_K_MAX : a.bc;
    a.nqb = (a.nq + BLOCK_Q - 1) / BLOCK_Q;
    a.nkb = (a.nk + a.bc - 1) / a.bc;
    int64_t nbh = a.nb * a.nh, ntasks = sdc_get_threads();
    a.wstride = work_floats(a.d, a.dp, a.bc);
    bool vpacked = a.d % 8 != 0;
    int64_t kfloats = nbh * a.nkb * a.bc * a.d, vfloats = vpacked ? nbh * a.nkb * a.bc * a.dp : 0;
    float *pack = sdc_cpu_scratch(be, 6, (size_t)(kfloats + vfloats), err);
    a.work = pack ? sdc_cpu_scratch(be, 7, (size_t)(ntasks * a.wstride), err) : NULL;
    if (!a.work) return sdc_err_wrap(err, "attention: packing buffers");
    a.kpack = pack;
    a.vpack = vpacked ? pack + kfloats : NULL;
    sdc_parallel_for(nbh * a.nkb, 4, pack_kv, &a);
    atomic_init(&a.next, 0);
    sdc_parallel_for(ntasks, 1, attend_tasks, &a);
    return SDC_OK;
}

sdc_status sdc_cpu_attention(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return attention_run(be, op, NULL, err);
}

sdc_status sdc_cpu_attention_lse(sdc_backend *be, const sdc_op *op, float *lse2, sdc_err *err) {
    return attention_run(be, op, lse2, err);
}
