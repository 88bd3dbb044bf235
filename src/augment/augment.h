/* augment.h — dataset augmentation planning for `sdc augment`: ImageFolder
 * scanning, a deterministic plan (every item's seed, prompt and file name
 * derived from its identity, so any subset, shard or rerun reproduces it),
 * and the append-only JSONL manifest with resume and locking. */
#ifndef SDC_AUGMENT_H
#define SDC_AUGMENT_H

#include "sdc.h"

#include <stdbool.h>
#include <stdint.h>

/* ---------------------------------------------------------------- dataset */
typedef struct aug_class {
    char *folder;   /* folder name: keys the output */
    char *name;     /* display name (--class-names, else the folder) */
    char **files;   /* image file names in the folder, sorted bytewise */
    int n_files;
} aug_class;

typedef struct aug_dataset {
    aug_class *classes;
    int n_classes;
    int skipped;    /* hidden files and non-images */
} aug_dataset;

/* Scans root/<class>/<image> (.png .jpg .jpeg, case-insensitive).
 * names_file (may be NULL) holds one display name per folder, in sorted
 * folder order. only (may be NULL) is a comma list of folders to keep. */
sdc_status aug_dataset_scan(const char *root, const char *names_file, const char *only,
                            aug_dataset *d, sdc_err *err);
void aug_dataset_free(aug_dataset *d);
/* True when path is root or lies inside it (path need not exist yet; its
 * parent must). The output of a run must not be read back as its input. */
bool aug_path_inside(const char *root, const char *path);

/* ---------------------------------------------------------------- plan */
typedef enum aug_method { AUG_BOOMERANG, AUG_PROMPT, AUG_TEXTINV } aug_method;

typedef struct aug_plan_opts {
    aug_method method;
    bool from_real;              /* boomerang, or textinv --init real */
    uint64_t base_seed;
    int per_image, per_class;
    const double *strengths;     /* one or more; a list draws one per item */
    int n_strengths;
    const char *const *templates;/* "{}" or "{name}" is replaced by the class word */
    int n_templates;
    bool random_order;           /* template drawn from the item seed, else round robin */
    const char *const *words;    /* per class: the word put in the prompt (name or trigger) */
    long long limit;             /* <= 0: all */
} aug_plan_opts;

typedef struct aug_item {
    int index;       /* position in the plan */
    int cls;
    int src;         /* file index in the class, or -1 */
    int k;           /* output number for that source / class */
    uint32_t seed;
    double strength; /* < 0: txt2img (double: the manifest prints it as typed) */
    char *prompt;
    char *output;    /* relative to the output folder */
    char *source;    /* relative to the dataset root, or NULL */
} aug_item;

typedef struct aug_plan {
    aug_item *items;
    int n;
    /* Shards split whole classes (class % N == K) instead of items (index %
     * N == K): textinv --train, where a class's token and its images stay in
     * the shard that learns it. */
    bool shard_by_class;
} aug_plan;

/* Whether item i belongs to shard k of n. */
bool aug_plan_in_shard(const aug_plan *p, int i, long long k, long long n);

const char *aug_method_name(aug_method m);
/* First 4 bytes (big endian) of SHA-256("sdc-augment-v1\0base\0method\0class\0source\0k"). */
uint32_t aug_item_seed(uint64_t base, const char *method, const char *cls, const char *source,
                       int k);
sdc_status aug_plan_build(const aug_dataset *d, const aug_plan_opts *o, aug_plan *p,
                          sdc_err *err);
void aug_plan_free(aug_plan *p);
/* The plan's identity as JSON text (malloc'ed): parameters and output names. */
char *aug_plan_json(const aug_plan *p, const char *params_json);
/* out/plan.json against this run's parameters, under a folder-wide lock
 * (out/.sdc-plan.lock, waited for: shards check and replace the plan one at
 * a time): written when absent; when it differs, the message names the first
 * argument that differs and offers --force-new-plan, which (only then) moves
 * the old plan and every manifest aside (plan.old-N.json,
 * manifest*.old-N.jsonl) so the new plan starts over; note (note_cap bytes)
 * then says why ("out/plan.json: --seed was 1 ..., now 2"), else it is "".
 * params is a JSON object of "--flag": value. */
sdc_status aug_plan_check(const char *out, const aug_plan *p, const char *params, bool force,
                          char *note, size_t note_cap, sdc_err *err);
/* The prompt templates of --templates: simple, clip, clip7 (weights/) or a
 * file of one template a line; *out (n strings) is the caller's to free. */
sdc_status aug_load_templates(const char *which, char ***out, int *n, sdc_err *err);

/* ---------------------------------------------------------------- manifest */
typedef struct aug_manifest {
    char **outputs;     /* "output" of each kept line, in file order */
    int n;
    int n_dropped;      /* torn tail or lines whose file was missing */
    int n_failed;       /* dropped "failed" lines: those items are retried */
    int *slots;         /* open-addressing index of outputs (index + 1; 0 empty) */
    int n_slots;        /* a power of two, > 2 n */
} aug_manifest;

/* Reads path (a missing file is an empty manifest). A torn last line (no
 * newline, or not JSON) is dropped; a bad line before it is SDC_ERR_FORMAT
 * naming the line number. Lines with status "ok" whose file under out_dir
 * is missing or empty, "failed" lines, and a second line for an output
 * already listed are dropped too ("rejected" lines, of --filter clip, are
 * kept: done, without a file); when anything was dropped the file is
 * rewritten atomically without it, so the log never holds duplicates. */
sdc_status aug_manifest_load(const char *path, const char *out_dir, aug_manifest *m,
                             sdc_err *err);
bool aug_manifest_has(const aug_manifest *m, const char *output);
void aug_manifest_free(aug_manifest *m);
/* One write() of the whole line on an O_APPEND fd, then fsync; on a failure
 * of either the file is truncated back to its length before the call. */
sdc_status aug_manifest_append(int fd, const char *line, sdc_err *err);

/* A manifest line's first fields (index, output, class, class_name, method)
 * as a new cJSON object to add the method's own fields to; NULL: out of memory. */
struct cJSON;
struct cJSON *aug_manifest_item_json(const aug_dataset *d, const aug_item *it, const char *method);
/* j as one manifest line ("{...}\n", malloc'ed; cJSON escapes everything:
 * pandas reads it); frees j. NULL: out of memory. */
char *aug_manifest_line_text(struct cJSON *j);

/* Removes out/<output>.tmp.* of the shard's items (left by a killed run). */
void aug_remove_temps(const char *out, const aug_plan *p, int shard, int n_shards);

/* flock(LOCK_EX|LOCK_NB) on path; returns the fd or -1 (err says who holds it). */
int aug_lock(const char *path, sdc_err *err);

/* ---------------------------------------------------------------- preview */
/* A contact sheet PNG: per class a few real images (framed) each beside its
 * augmentations in every output folder dirs[] (their manifests' ok lines),
 * then the class's txt2img or retrieved images; each tile labelled with the
 * method, the strength or the prompt, and the seed; each row with the class. */
sdc_status aug_preview_dirs(const char *png, const char *data_root, const char *const *dirs,
                            int n_dirs, const aug_dataset *d, sdc_err *err);
/* The same for one output folder (p is unused: the manifest says what exists). */
sdc_status aug_preview(const char *png, const char *data_root, const char *out_dir,
                       const aug_dataset *d, const aug_plan *p, sdc_err *err);

#endif
