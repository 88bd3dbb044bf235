/* embfiles.h — brings an embedding cache (embcache.h) up to date for a
 * list of image files under its root, with a CLIP model: the engine of
 * `sdc embed` and of the feature caches of `sdc report` and `sdc probe`.
 *
 *     emb_update_hooks h = {.progress = bar, .skipped = warn, .ctx = &ui};
 *     int64_t *rows = malloc(n * sizeof *rows);
 *     emb_update_stats st;
 *     if (emb_cache_update(&cache, &enc, paths, n, &h, rows, &st, &err)) ...
 *     // rows[i]: the cache row of paths[i], or -1 if it could not be embedded
 *
 * A file whose size and mtime match its cache entry is not read again; a
 * file with content already in the cache (any path) reuses that row; the
 * rest are decoded, preprocessed as CLIPImageProcessor does and embedded in
 * batches, each batch appended durably (a killed run loses at most one). An
 * unreadable file, or one whose embedding is not finite, is reported through
 * the hook and skipped (row -1): a later call retries it. */
#ifndef SDC_EMBFILES_H
#define SDC_EMBFILES_H

#include "embcache.h"

#include "../models/clip_model.h"

typedef struct emb_encoder {
    const sdc_clip_model *m;
    sdc_backend *be;
    sdc_arena *arena;
    int batch;                  /* images per model call (>= 1) */
} emb_encoder;

typedef struct emb_update_hooks {
    /* After each file: done of total (may be NULL). */
    void (*progress)(void *ctx, int64_t done, int64_t total);
    /* A file skipped, with the reason (names the file; may be NULL). */
    void (*skipped)(void *ctx, const char *why);
    void *ctx;
} emb_update_hooks;

typedef struct emb_update_stats {
    int64_t embedded;   /* new rows from the model */
    int64_t reused;     /* new rows copied from a row of the same content */
    int64_t unchanged;  /* size and mtime matched: nothing read */
    int64_t failed;     /* unreadable or not finite: row -1 */
} emb_update_stats;

/* c: a cache open for writing (emb_cache_open_writer); paths: n names
 * relative to c->root ('/'-separated). rows (may be NULL) gets each file's
 * row. enc may be NULL when every file is expected unchanged: then a file
 * that needs the model is an error naming it. */
sdc_status emb_cache_update(emb_cache *c, const emb_encoder *enc, const char *const *paths,
                            int64_t n, const emb_update_hooks *hooks, int64_t *rows,
                            emb_update_stats *st, sdc_err *err);

#endif
