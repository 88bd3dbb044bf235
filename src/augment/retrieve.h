/* retrieve.h — exact top-K retrieval of pool images per class for `sdc
 * augment --method retrieve`: cosine similarity of L2-normalized embeddings
 * through BLAS sgemm over the pool in blocks (bounded memory for millions of
 * rows: one block of rows and its scores, plus a top-K heap per class; never
 * N x N), then a greedy assignment that gives each pool image to at most one
 * class and drops near-duplicates.
 *
 *     ret_pool pool = {.rows = map, .dtype = SDC_F16, .n = n, .dim = 768, .dead = dead};
 *     ret_opts o = {.k = 100, .dedup = 0.94f};
 *     ret_result r;
 *     if (ret_search(&pool, queries, n_classes, NULL, &o, &r, &err)) ...
 *     for (int c = 0; c < n_classes; c++)
 *         for (int i = 0; i < r.count[c]; i++) use(r.hits[c][i].row, r.hits[c][i].score);
 *     ret_result_free(&r);
 *
 * Assignment: all (class, image) candidate pairs are taken in order of
 * decreasing similarity (ties: lower pool row, then lower class); a pair is
 * kept when its class still has room, the image is not taken yet, and the
 * image is not a near-duplicate (cosine > dedup) of an image already kept for
 * that class or of one of that class's own real images. A near-duplicate is
 * dropped for good (it goes to no other class). So an image in the top K of
 * two classes goes to the one where it scores highest, and that class's
 * list moves up one. The candidate lists start at 2K + 16 per class and grow
 * (another pass over the pool) until every class is full or has seen the
 * whole pool, so the result equals the same greedy over complete lists. */
#ifndef SDC_RETRIEVE_H
#define SDC_RETRIEVE_H

#include "sdc.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ret_pool {
    const void *rows;    /* [n, dim] F16 or F32, L2-normalized */
    sdc_dtype dtype;
    int64_t n;
    int dim;
    const bool *dead;    /* [n] rows to ignore (superseded), or NULL */
} ret_pool;

/* Real images of the dataset, for the near-duplicate check against a class's
 * own images (optional). */
typedef struct ret_real {
    const float *rows;   /* [n, dim] F32, L2-normalized */
    const int *cls;      /* [n] class of each */
    int n;
} ret_real;

typedef struct ret_opts {
    int k;               /* images per class, >= 1 */
    float dedup;         /* cosine threshold; >= 1 keeps near-duplicates (exact ones too) */
    int64_t block_rows;  /* pool rows per sgemm block (0: about 32 MiB of F32) */
} ret_opts;

typedef struct ret_hit {
    int64_t row;         /* pool row */
    float score;         /* cosine similarity to the class query */
} ret_hit;

typedef struct ret_result {
    ret_hit **hits;      /* [n_classes][count[c]], best first (rank = index + 1) */
    int *count;          /* may be below k when the pool runs out */
    int n_classes;
    int64_t conflicts;   /* pairs skipped because the image went to another class */
    int64_t duplicates;  /* images dropped as near-duplicates */
    int passes;          /* passes over the pool */
    bool partial;        /* a class stayed short: its candidate list hit the memory cap */
} ret_result;

/* queries: [n_classes, dim] F32, L2-normalized. */
sdc_status ret_search(const ret_pool *pool, const float *queries, int n_classes,
                      const ret_real *real, const ret_opts *o, ret_result *r, sdc_err *err);
void ret_result_free(ret_result *r);

/* Plain top-k of one pass without assignment: per class the k best rows
 * (best first) into hits[c * k ...], counts into count[c] (for benchmarks and
 * tests). */
sdc_status ret_topk(const ret_pool *pool, const float *queries, int n_classes, int k,
                    int64_t block_rows, ret_hit *hits, int *count, sdc_err *err);

#endif
