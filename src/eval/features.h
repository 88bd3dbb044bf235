/* features.h — the CLIP image features of a dataset and of augmentation
 * outputs, for `sdc report` and `sdc probe`: the real images of an
 * ImageFolder DATASET, and per output folder OUT (made by `sdc augment`) the
 * images its manifest lists, each with its class and the real image it was
 * made from. Features live in one sdc embed cache per folder (embcache.h)
 * under a cache root, so a rerun after more augmentation embeds only the new
 * files.
 *
 *     feat_opts o = {.cache_root = NULL, .enc = &enc, .model = "clip-vit-large-patch14",
 *                    .model_sha256 = sha};
 *     feat_set fs;
 *     if (feat_set_load("data/train", outs, n_outs, &o, &fs, &err)) ...
 *     fs.real.x      [fs.real.n, fs.dim]   with fs.real.items[i].cls
 *     fs.outs[j].x   [fs.outs[j].n, fs.dim] with .cls and .source (a real index or -1)
 *     feat_set_free(&fs);
 *
 * Checked, each an error naming the folder and the reason: an output class
 * (in the manifest, or a class folder in OUT) that DATASET lacks (mismatched
 * class folders); a source that is not an image of DATASET; a folder's cache
 * that holds another model's features (another feature space). */
#ifndef SDC_EVAL_FEATURES_H
#define SDC_EVAL_FEATURES_H

#include "../augment/augment.h"
#include "../augment/embfiles.h"

typedef struct feat_item {
    char *path;          /* relative to its folder ("class/file.png") */
    int cls;             /* dataset class index */
    int64_t source;      /* the real image it was made from (index into real), or -1 */
    bool external;       /* made from a file outside DATASET (retrieval's pool) */
    char sha256[65];     /* content hash */
} feat_item;

typedef struct feat_group {
    char *dir;           /* as given */
    char *label;         /* "real", or the method ("boomerang"; "boomerang (b)" when two share it) */
    char *method;        /* the manifest's method ("real" for the dataset) */
    feat_item *items;
    int64_t n;
    float *x;            /* [n, dim], L2-normalized */
    int *n_rejected;     /* [n_classes] manifest lines "rejected" by the CLIP filter */
    int64_t n_failed;    /* manifest lines "failed", and images that could not be embedded */
} feat_group;

typedef struct feat_set {
    aug_dataset data;    /* the classes and their files */
    int dim;
    feat_group real;     /* every image of DATASET, class by class, file order */
    feat_group *outs;
    int n_outs;
} feat_set;

typedef struct feat_opts {
    const char *cache_root;     /* NULL: $XDG_CACHE_HOME/sdc/features, else ~/.cache/sdc/features */
    const char *class_names;    /* one display name per class folder, or NULL */
    const emb_encoder *enc;     /* the model that embeds new files; NULL: every file must be cached */
    const char *model;          /* the model's name, recorded in new caches */
    const char *model_sha256;   /* the model's weights hash: every cache must hold it */
    int dim;                    /* its embedding width */
    emb_update_hooks hooks;     /* per file (progress, skipped) */
    /* Before each folder's update: the folder and how many files it lists (may be NULL). */
    void (*folder)(void *ctx, const char *dir, int64_t n, bool starting);
} feat_opts;

sdc_status feat_set_load(const char *dataset, const char *const *outs, int n_outs, const feat_opts *o,
                         feat_set *fs, sdc_err *err);
void feat_set_free(feat_set *fs);

/* The cache root in effect (o->cache_root or the default) into out. */
sdc_status feat_cache_root(const char *given, char *out, size_t cap, sdc_err *err);
/* The cache folder of an image folder: ROOT/<first 16 hex of SHA-256(realpath)>. */
sdc_status feat_cache_dir(const char *root, const char *folder, char *out, size_t cap, sdc_err *err);
/* The model recorded in a folder's cache (runs without --clip); *model malloc'ed.
 * A folder without a cache is SDC_ERR_ARG saying a model is needed. */
sdc_status feat_cache_model(const char *root, const char *folder, char **model, char sha[65], int *dim,
                            sdc_err *err);

#endif
