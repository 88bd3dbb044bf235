/* retrieve.c — blocked sgemm top-K over a pool and the greedy class
 * assignment with near-duplicate removal (see retrieve.h). */
#include "retrieve.h"

#include "../core/parallel.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- per-class heaps */

typedef struct {
    ret_hit *h; /* min-heap: the worst kept hit on top */
    int n, cap;
} heap;

/* a ranks before b: higher score, then lower row. */
static bool better(ret_hit a, ret_hit b) { return a.score > b.score || (a.score == b.score && a.row < b.row); }

static void sift_down(heap *q, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < q->n && better(q->h[w], q->h[l])) w = l;
        if (r < q->n && better(q->h[w], q->h[r])) w = r;
        if (w == i) return;
        ret_hit t = q->h[i];
        q->h[i] = q->h[w];
        q->h[w] = t;
        i = w;
    }
}

static void heap_offer(heap *q, ret_hit x) {
    if (q->n < q->cap) {
        int i = q->n++;
        q->h[i] = x;
        while (i > 0 && better(q->h[(i - 1) / 2], q->h[i])) {
            ret_hit t = q->h[i];
            q->h[i] = q->h[(i - 1) / 2];
            q->h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (better(x, q->h[0])) {
        q->h[0] = x;
        sift_down(q, 0);
    }
}

static int cmp_hit(const void *a, const void *b) {
    const ret_hit *x = a, *y = b;
    return better(*x, *y) ? -1 : better(*y, *x) ? 1 : 0;
}

/* ---------------------------------------------------------------- one pass: top-k */

typedef struct {
    const float *scores; /* [C, nb] */
    int64_t nb, base;
    const bool *dead;
    heap *heaps;
} offer_job;

static void offer_classes(void *ctx, int64_t c0, int64_t c1) {
    const offer_job *j = ctx;
    for (int64_t c = c0; c < c1; c++) {
        heap *q = &j->heaps[c];
        const float *s = j->scores + c * j->nb;
        for (int64_t i = 0; i < j->nb; i++) {
            /* A full heap rejects most rows with one compare. */
            if (q->n == q->cap && !(s[i] > q->h[0].score)) continue;
            if (!isfinite(s[i]) || (j->dead && j->dead[j->base + i])) continue;
            heap_offer(q, (ret_hit){j->base + i, s[i]});
        }
    }
}

typedef struct {
    const uint8_t *src;
    float *dst;
    sdc_dtype dtype;
    int dim;
} convert_job;

static void convert_rows(void *ctx, int64_t r0, int64_t r1) {
    const convert_job *j = ctx;
    size_t es = sdc_dtype_size(j->dtype);
    sdc_convert(j->dst + r0 * j->dim, SDC_F32, j->src + (size_t)r0 * j->dim * es, j->dtype,
                (size_t)(r1 - r0) * j->dim, NULL);
}

static int64_t block_rows(const ret_pool *pool, int n_classes, int64_t want) {
    if (want > 0) return want;
    int64_t rows = ((int64_t)32 << 20) / (4 * pool->dim);                 /* the F32 block */
    int64_t by_scores = ((int64_t)64 << 20) / (4 * (int64_t)n_classes);  /* its scores */
    if (by_scores < rows) rows = by_scores;
    return rows < 64 ? 64 : rows;
}

sdc_status ret_topk(const ret_pool *pool, const float *queries, int n_classes, int k,
                    int64_t block, ret_hit *hits, int *count, sdc_err *err) {
    if (!pool || pool->n < 0 || pool->dim < 1 || n_classes < 1 || k < 1 ||
        (pool->dtype != SDC_F32 && pool->dtype != SDC_F16 && pool->dtype != SDC_BF16) ||
        (pool->n > 0 && !pool->rows))
        return sdc_err_set(err, SDC_ERR_ARG, "retrieve: bad pool or query arguments");
    int64_t nb_max = block_rows(pool, n_classes, block);
    if (nb_max > pool->n) nb_max = pool->n > 0 ? pool->n : 1;
    heap *heaps = calloc((size_t)n_classes, sizeof *heaps);
    ret_hit *store = malloc(sizeof *store * (size_t)n_classes * (size_t)k);
    float *x = pool->dtype == SDC_F32 ? NULL : malloc(sizeof *x * (size_t)nb_max * pool->dim);
    float *s = malloc(sizeof *s * (size_t)nb_max * n_classes);
    sdc_status st = SDC_OK;
    if (!heaps || !store || !s || (pool->dtype != SDC_F32 && !x))
        st = sdc_err_set(err, SDC_ERR_OOM, "retrieve: cannot allocate the search buffers "
                         "(%d classes x k %d, block of %lld rows)", n_classes, k, (long long)nb_max);
    for (int c = 0; !st && c < n_classes; c++) heaps[c] = (heap){store + (size_t)c * k, 0, k};
    size_t es = sdc_dtype_size(pool->dtype);
    for (int64_t b0 = 0; !st && b0 < pool->n; b0 += nb_max) {
        int64_t nb = pool->n - b0 < nb_max ? pool->n - b0 : nb_max;
        const uint8_t *src = (const uint8_t *)pool->rows + (size_t)b0 * pool->dim * es;
        const float *xb = (const float *)src;
        if (x) {
            convert_job cj = {src, x, pool->dtype, pool->dim};
            sdc_parallel_for(nb, 1024, convert_rows, &cj);
            xb = x;
        }
        /* scores[c, i] = query c . row i: [C, D] x [nb, D]^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_classes, (int)nb, pool->dim, 1.0f,
                    queries, pool->dim, xb, pool->dim, 0.0f, s, (int)nb);
        offer_job oj = {s, nb, b0, pool->dead, heaps};
        sdc_parallel_for(n_classes, 1, offer_classes, &oj);
    }
    for (int c = 0; !st && c < n_classes; c++) {
        qsort(heaps[c].h, (size_t)heaps[c].n, sizeof *heaps[c].h, cmp_hit);
        memcpy(hits + (size_t)c * k, heaps[c].h, sizeof *hits * (size_t)heaps[c].n);
        count[c] = heaps[c].n;
    }
    free(heaps);
    free(store);
    free(x);
    free(s);
    return st;
}

/* ---------------------------------------------------------------- assignment */

typedef struct {
    ret_hit hit;
    int cls;
} pair;

static int cmp_pair(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (better(x->hit, y->hit)) return -1;
    if (better(y->hit, x->hit)) return 1;
    return (x->cls > y->cls) - (x->cls < y->cls);
}

static float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void ret_result_free(ret_result *r) {
    for (int c = 0; r->hits && c < r->n_classes; c++) free(r->hits[c]);
    free(r->hits);
    free(r->count);
    memset(r, 0, sizeof *r);
}

#define BIT_GET(b, i) ((b)[(i) >> 3] >> ((i) & 7) & 1)
#define BIT_SET(b, i) ((b)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))

sdc_status ret_search(const ret_pool *pool, const float *queries, int n_classes,
                      const ret_real *real, const ret_opts *o, ret_result *r, sdc_err *err) {
    memset(r, 0, sizeof *r);
    if (!o || o->k < 1 || !(o->dedup > 0) || n_classes < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "retrieve: k must be >= 1 and the dedup threshold > 0");
    int64_t alive = 0;
    for (int64_t i = 0; i < pool->n; i++) alive += !(pool->dead && pool->dead[i]);
    int D = pool->dim, K = o->k;
    bool dedup = o->dedup < 1.0f;
    r->n_classes = n_classes;
    r->hits = calloc((size_t)n_classes, sizeof *r->hits);
    r->count = calloc((size_t)n_classes, sizeof *r->count);
    int64_t kk = 2 * (int64_t)K + 16;
    if (kk > alive) kk = alive;
    uint8_t *taken = calloc((size_t)(pool->n / 8 + 1), 1), *dropped = calloc((size_t)(pool->n / 8 + 1), 1);
    float **kept = dedup ? calloc((size_t)n_classes, sizeof *kept) : NULL;
    float *v = malloc(sizeof *v * (size_t)D);
    sdc_status s = SDC_OK;
    if (!r->hits || !r->count || !taken || !dropped || !v || (dedup && !kept))
        s = sdc_err_set(err, SDC_ERR_OOM, "retrieve: out of memory");
    for (int c = 0; !s && c < n_classes; c++)
        if (!(r->hits[c] = malloc(sizeof **r->hits * (size_t)K)) ||
            (dedup && !(kept[c] = malloc(sizeof **kept * (size_t)K * D))))
            s = sdc_err_set(err, SDC_ERR_OOM, "retrieve: out of memory (%d classes x %d kept "
                            "embeddings of %d)", n_classes, K, D);
    ret_hit *cand = NULL;
    int *ccount = NULL;
    pair *pairs = NULL;
    size_t es = sdc_dtype_size(pool->dtype);
    while (!s && kk > 0) {
        r->passes++;
        free(cand);
        free(ccount);
        free(pairs);
        cand = malloc(sizeof *cand * (size_t)n_classes * (size_t)kk);
        ccount = calloc((size_t)n_classes, sizeof *ccount);
        pairs = malloc(sizeof *pairs * (size_t)n_classes * (size_t)kk);
        if (!cand || !ccount || !pairs) {
            s = sdc_err_set(err, SDC_ERR_OOM, "retrieve: out of memory (%d classes x %lld candidates)",
                            n_classes, (long long)kk);
            break;
        }
        if ((s = ret_topk(pool, queries, n_classes, (int)kk, o->block_rows, cand, ccount, err))) break;
        size_t np = 0;
        for (int c = 0; c < n_classes; c++)
            for (int i = 0; i < ccount[c]; i++) pairs[np++] = (pair){cand[(size_t)c * kk + i], c};
        qsort(pairs, np, sizeof *pairs, cmp_pair);
        memset(taken, 0, (size_t)(pool->n / 8 + 1));
        memset(dropped, 0, (size_t)(pool->n / 8 + 1));
        memset(r->count, 0, sizeof *r->count * (size_t)n_classes);
        r->conflicts = r->duplicates = 0;
        for (size_t p = 0; p < np; p++) {
            int c = pairs[p].cls;
            int64_t row = pairs[p].hit.row;
            if (r->count[c] == K || BIT_GET(dropped, row)) continue;
            if (BIT_GET(taken, row)) { r->conflicts++; continue; }
            if (dedup) {
                sdc_convert(v, SDC_F32, (const uint8_t *)pool->rows + (size_t)row * D * es,
                            pool->dtype, (size_t)D, NULL);
                bool dup = false;
                for (int i = 0; i < r->count[c] && !dup; i++)
                    dup = dot(v, kept[c] + (size_t)i * D, D) > o->dedup;
                for (int i = 0; real && i < real->n && !dup; i++)
                    dup = real->cls[i] == c && dot(v, real->rows + (size_t)i * D, D) > o->dedup;
                if (dup) {
                    BIT_SET(dropped, row);
                    r->duplicates++;
                    continue;
                }
                memcpy(kept[c] + (size_t)r->count[c] * D, v, sizeof *v * (size_t)D);
            }
            BIT_SET(taken, row);
            r->hits[c][r->count[c]++] = pairs[p].hit;
        }
        /* Exact once every class is full or its list covered the whole pool. */
        bool done = kk >= alive;
        if (!done) {
            done = true;
            for (int c = 0; c < n_classes && done; c++) done = r->count[c] == K || ccount[c] < kk;
        }
        if (done) break;
        /* Candidate memory is classes x kk x (hit + pair); past 4 GiB stop
         * growing and report the shortfall instead. */
        int64_t cap = ((int64_t)4 << 30) / ((int64_t)n_classes * (int64_t)(sizeof(ret_hit) + sizeof(pair)));
        if (kk >= cap) {
            r->partial = true;
            break;
        }
        kk = kk * 4 > alive ? alive : kk * 4;
        if (kk > cap) kk = cap;
    }
    free(cand);
    free(ccount);
    free(pairs);
    free(taken);
    free(dropped);
    for (int c = 0; kept && c < n_classes; c++) free(kept[c]);
    free(kept);
    free(v);
    if (s) ret_result_free(r);
    return s;
}
