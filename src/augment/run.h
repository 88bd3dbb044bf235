/* run.h — the output folder of an augment run, shared by the generating
 * methods and retrieve: the folder and its class folders, the shard's lock,
 * the manifest (what is done, and the fd lines are appended to), and taking
 * back a fresh folder when a run fails before its first item.
 *
 *     aug_out o;
 *     sdc_status s = aug_out_create(&o, out, d, NULL, sk, sn, true, &err);  // folders, lock
 *     if (!s) s = aug_plan_check(out, plan, params, force, note, sizeof note, &err);
 *     if (!s) s = aug_out_load(&o, &err);          // what is done
 *     if (!s) s = aug_out_begin(&o, plan, &err);   // temps gone, the manifest's append fd
 *     for each item not aug_manifest_has(&o.man, output): write it, then
 *         aug_manifest_append(o.fd, line, &err);
 *     s = aug_out_close(&o, d, s, nothing_done, &err);  // undoes a fresh folder on failure
 */
#ifndef SDC_AUGMENT_RUN_H
#define SDC_AUGMENT_RUN_H

#include "augment.h"
#include "embcache.h"
#include "filter.h"

#include "../image/image.h"
#include "../pipeline/pipeline.h"

typedef struct aug_out {
    const char *dir;    /* the output folder */
    long long sk, sn;   /* shard sk of sn */
    char tag[64];       /* "" or ".shard-K-of-N": names the lock and the manifest */
    char mpath[4096];   /* dir/manifest<tag>.jsonl */
    bool fresh;         /* dir did not exist before aug_out_create */
    int lock, fd;       /* the shard's lock; the manifest opened O_APPEND (-1: none) */
    aug_manifest man;   /* the manifest's lines (aug_out_load) */
} aug_out;

/* Creates dir and the class folders of d (only those with count[c] > 0 when
 * count is not NULL: an empty class folder is refused by torchvision's
 * ImageFolder), then takes the shard's lock dir/.sdc-augment<tag>.lock.
 * On failure nothing is held; with undo, a fresh folder is taken back when
 * a class folder cannot be created. */
sdc_status aug_out_create(aug_out *o, const char *dir, const aug_dataset *d, const int *count,
                          long long sk, long long sn, bool undo, sdc_err *err);
/* Loads the manifest into o->man (aug_manifest_load). */
sdc_status aug_out_load(aug_out *o, sdc_err *err);
/* Removes the temp files of the shard's items (a killed run's) and opens
 * the manifest for appending (o->fd). */
sdc_status aug_out_begin(aug_out *o, const aug_plan *plan, sdc_err *err);
/* Takes back what a fresh run made (plan.json, the plan lock, an empty
 * manifest, the shard lock, empty class folders, dir when empty). */
void aug_out_undo(const aug_out *o, const aug_dataset *d);
/* Closes the manifest (a close error is returned when s is SDC_OK), undoes
 * the fresh folder when undo and o->fresh (still holding the lock), then
 * releases the lock and the manifest's lines. Returns s or the close error. */
sdc_status aug_out_close(aug_out *o, const aug_dataset *d, sdc_status s, bool undo, sdc_err *err);

/* Items of the plan in o's shard not yet in its manifest. */
int aug_out_todo(const aug_out *o, const aug_plan *plan);

/* What a run loop reports as it goes; either function may be NULL. */
typedef struct aug_run_hooks {
    void (*progress)(void *ctx, int done);                         /* after each item */
    void (*failed)(void *ctx, const char *output, const char *msg); /* recorded as failed */
    void *ctx;
} aug_run_hooks;

typedef struct aug_run_counts {
    int done;   /* items processed (failed ones included) */
    int failed; /* recorded as failed: the next run retries them */
} aug_run_counts;

/* ---------------------------------------------------------------- retrieve */

/* One retrieved image: pool row, similarity to its class's query, rank (1..). */
typedef struct aug_pick {
    int64_t row;
    float score;
    int rank;
} aug_pick;

typedef struct aug_retrieve_opts {
    const char *query;     /* text, image or both (the manifest says which) */
    bool link;             /* hard-link instead of copying */
    const char *model;     /* the CLIP model, and its weights' SHA-256 */
    const char *model_sha;
} aug_retrieve_opts;

/* <class>/retrieve-<rank>-<stem>-<sha8>.<ext> (the stem cut to 80 bytes;
 * malloc'ed, NULL: out of memory). */
char *aug_retrieve_output_name(const char *folder, int rank, const char *pool_path,
                               const char *sha);
/* Places each pending item i of plan (pool row picks[i]) into o: copied, or
 * hard-linked with ro->link, after checking that the pool file still holds
 * the bytes that were embedded; its manifest line follows once the file is
 * durable. An item that cannot be placed is recorded as failed and the run
 * goes on; a manifest write error stops it (the status). */
sdc_status aug_retrieve_items(aug_out *o, const aug_dataset *d, const aug_plan *plan,
                              const aug_pick *picks, const emb_cache *pool,
                              const aug_retrieve_opts *ro, const aug_run_hooks *h,
                              aug_run_counts *n, sdc_err *err);

/* ---------------------------------------------------------------- generate */

/* The model's name (its file or folder name without .safetensors) into
 * name, its absolute path into abs_path (PATH_MAX bytes; the path as given
 * when it cannot be resolved) and, with need_sha and a single file, its
 * SHA-256 into sha (65 bytes; *model_sha = sha, else NULL): slow for 2 GB,
 * but it names the exact weights. */
sdc_status aug_model_identity(const char *model, char *name, size_t cap, char *abs_path, char *sha,
                              bool need_sha, const char **model_sha, sdc_err *err);

/* What every item of a generating run (boomerang, prompt, textinv) shares. */
typedef struct aug_gen_run {
    sdc_pipeline *p;
    const aug_dataset *d;
    const aug_plan *plan;
    const char *data;                 /* the dataset root: img2img sources */
    sdc_embedding_set *const *sets;   /* per class (entries may be NULL) */
    cJSON *const *extra;              /* per class: fields every manifest line carries, or NULL */
    aug_filter *flt;                  /* --filter clip, or NULL */
    int batch, w, h;                  /* rows per UNet call; the image size */
    sdc_generate_opts base;           /* negative, cfg, size, sampler, precision, rng; each
                                         batch sets batch, rows, strength and prompt */
    sdc_gen_meta meta;                /* the PNG infotext's fields shared by every image; each
                                         image sets prompt, negative, seed and strength */
    /* the manifest's fields */
    const char *method, *sampler_name, *model_name, *model_sha; /* model_sha may be NULL */
    long long steps;
    double cfg;
} aug_gen_run;

/* Generates the pending items of o's shard, in plan order, in batches of
 * consecutive items with one strength (every row has its own generator, so
 * an item's image does not depend on the batch); each PNG is durable before
 * its manifest line. An item that fails is recorded as failed and the run
 * goes on; a disk error on an image (SDC_ERR_IO) or on the manifest stops
 * it, unrecorded, so that the next run redoes it (the status). */
sdc_status aug_generate_items(aug_out *o, const aug_gen_run *g, const aug_run_hooks *h,
                              aug_run_counts *n, sdc_err *err);

#endif
