/* embcache.h — the pool embedding cache of `sdc embed` and `sdc augment
 * --method retrieve`: L2-normalized CLIP image embeddings of a folder of
 * images, with the file list and content hashes, appendable and crash-safe.
 *
 *     emb_cache c;
 *     emb_cache_meta m = {.dim = 768, .dtype = SDC_F16, .root = "/data/pool", ...};
 *     if (emb_cache_open_writer("pool.cache", &m, &c, &err)) ...   // lock + recovery
 *     emb_cache_append(&c, rows, entries, n, &err);                 // rows [n, 768] F32
 *     emb_cache_close(&c);
 *
 * On disk, CACHE/ holds
 *   meta.json        {"format": "sdc-embed-cache", "version": 1, "dim": D, "dtype": "F16"|"F32",
 *                     "normalized": true, "root": ABS, "model": M, "model_sha256": HEX}
 *                    (written once, atomically, when the cache is made)
 *   embeddings.bin   N rows of D little-endian F16 or F32 values, no header;
 *                    row i belongs to line i of index.jsonl
 *   index.jsonl      one JSON object per row: {"path": relative to root,
 *                    "sha256": HEX, "bytes": N, "mtime_ns": "DECIMAL"}
 *   .lock            flock'ed by the one writer
 * A batch is appended as rows first (one write, fsync), then its index lines
 * (one write on an O_APPEND descriptor, fsync). The index is the truth: on
 * opening for writing, a torn last index line is cut off and rows past the
 * index (a run killed between the two writes) are truncated, so a killed run
 * loses at most its unfinished batch. A path listed twice (the file changed)
 * means its last row; earlier ones are dead. Readers take no lock and see the
 * rows of complete index lines only. */
#ifndef SDC_EMBCACHE_H
#define SDC_EMBCACHE_H

#include "sdc.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct emb_entry {
    char *path;          /* relative to the cache root, '/'-separated */
    char sha256[65];     /* lowercase hex of the file's bytes */
    int64_t bytes;
    int64_t mtime_ns;
} emb_entry;

typedef struct emb_cache_meta {
    int dim;
    sdc_dtype dtype;           /* SDC_F16 or SDC_F32 (SDC_DTYPE_COUNT: an existing cache's,
                                  F16 for a new one) */
    const char *root;          /* absolute folder the paths are relative to */
    const char *model;         /* the CLIP model as given */
    const char *model_sha256;  /* SHA-256 of its weights file */
} emb_cache_meta;

typedef struct emb_cache {
    char *dir;
    int dim;
    sdc_dtype dtype;
    char *root, *model, *model_sha256;
    emb_entry *entries;        /* [n], index order */
    int64_t n, cap;
    bool *dead;                /* [n]: superseded by a later row of the same path */
    int64_t n_live;
    int64_t *slots;            /* open-addressing table path -> last row (or -1) */
    int64_t *sha_slots;        /* the same for content hash -> last row */
    int64_t n_slots;
    /* Writer only: */
    int lock_fd, emb_fd, idx_fd;
    int64_t recovered_rows;    /* rows past the index cut off on open */
    bool recovered_tail;       /* a torn index line cut off on open */
    /* Reader: embeddings.bin mapped read-only (rows of the n entries). */
    const void *map;
    size_t map_len;
} emb_cache;

/* Opens CACHE for appending (created when absent, its parent must exist):
 * takes the lock (a second writer gets SDC_ERR_IO naming it), recovers as
 * described above, and checks that an existing cache matches want (dim,
 * dtype, root and model hash), naming the difference. */
sdc_status emb_cache_open_writer(const char *dir, const emb_cache_meta *want, emb_cache *c,
                                 sdc_err *err);
/* Opens CACHE for reading and maps its rows (no lock, no repair). */
sdc_status emb_cache_open_reader(const char *dir, emb_cache *c, sdc_err *err);
void emb_cache_close(emb_cache *c);

/* The last row of path, or -1. */
int64_t emb_cache_find(const emb_cache *c, const char *path);
/* The last row holding content sha256 (any path), or -1. */
int64_t emb_cache_find_sha(const emb_cache *c, const char *sha256);

/* Appends n rows (host F32 [n, dim], already normalized; stored in the
 * cache's dtype) and their entries: rows, fsync, index lines, fsync. */
sdc_status emb_cache_append(emb_cache *c, const float *rows, const emb_entry *e, int n,
                            sdc_err *err);
/* Row i as F32 into out[dim] (reader: from the map; writer: pread). */
sdc_status emb_cache_row(const emb_cache *c, int64_t i, float *out, sdc_err *err);

/* ---------------------------------------------------------------- .npy */

/* Writes the live rows (index order) as an NPY v1 file [N, dim] of dtype
 * (F16 '<f2' or F32 '<f4'), and the file list: `list` ending in .csv gets
 * "row,path,sha256,bytes" with a header (RFC 4180 quoting), anything else
 * one path per line. Paths are relative to the cache root. Both atomic. */
sdc_status emb_cache_export_npy(const emb_cache *c, const char *npy, const char *list,
                                sdc_dtype dtype, int64_t *n_out, sdc_err *err);

typedef struct emb_npy {
    int64_t rows, cols;
    sdc_dtype dtype;           /* SDC_F16, SDC_F32 or SDC_F64 */
    const void *data;          /* inside the mapping */
    void *map;
    size_t map_len;
} emb_npy;

/* Maps an NPY file (v1-v3) holding a C-order 2-D little-endian float array. */
sdc_status emb_npy_open(const char *path, emb_npy *a, sdc_err *err);
void emb_npy_close(emb_npy *a);
/* Row i as F32. */
void emb_npy_row(const emb_npy *a, int64_t i, float *out);

/* Reads a file list: CSV (first line a header with a "path" column and
 * optionally "sha256") when the name ends in .csv, else one path per line.
 * *paths and *shas (entries NULL when absent) are malloc'ed arrays of n. */
sdc_status emb_read_list(const char *path, char ***paths, char ***shas, int64_t *n, sdc_err *err);

#endif
