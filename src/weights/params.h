/* params.h — a model's parameter table: one row per weight tensor
 * {name, field, shape}. Loading, random initialization (make-random) and the
 * name mapping for both checkpoint layouts all read this one table.
 * Names are diffusers/transformers keys relative to the component
 * ("down_blocks.0.resnets.0.conv1.weight"); a key map turns them into the
 * checkpoint's own keys. */
#ifndef SDC_PARAMS_H
#define SDC_PARAMS_H

#include "sdc_ops.h"

typedef struct sdc_param {
    char *name;        /* diffusers / transformers key */
    char *alt;         /* the original single-file key, or NULL when identical */
    sdc_tensor *field; /* the model struct's slot this row binds */
    int ndim;
    int64_t shape[SDC_MAX_DIMS];
    bool optional;     /* absent keys leave field empty (data == NULL) */
} sdc_param;

typedef struct sdc_params {
    sdc_param *rows;
    size_t n, cap;
    void **device_bufs; /* uploads owned by the table (non-CPU backends) */
    size_t n_bufs, cap_bufs;
    sdc_backend *be;
    sdc_status status;  /* sticky: the first add failure */
} sdc_params;

void sdc_params_init(sdc_params *p);
void sdc_params_free(sdc_params *p);
/* Adds a row under its diffusers name and its original-layout name (alt, or
 * NULL when identical). Failures are sticky in p->status. */
void sdc_params_add(sdc_params *p, sdc_tensor *field, int ndim, const int64_t *shape,
                    const char *name, const char *alt);
void sdc_params_add_optional(sdc_params *p, sdc_tensor *field, int ndim, const int64_t *shape,
                             const char *name, const char *alt);
int64_t sdc_params_count(const sdc_params *p); /* total elements */

/* Module-shaped rows: "<prefix>.weight" and "<prefix>.bias" (b may be NULL
 * for a bias-free layer); alt is the original-layout prefix or NULL.
 *   linear: w [out, in], b [out]     conv: w [out, in, k, k], b [out]
 *   norm:   w [dim],     b [dim] */
void sdc_params_linear(sdc_params *p, sdc_tensor *w, sdc_tensor *b, int64_t out, int64_t in,
                       const char *prefix, const char *alt);
void sdc_params_conv(sdc_params *p, sdc_tensor *w, sdc_tensor *b, int64_t out, int64_t in,
                     int64_t k, const char *prefix, const char *alt);
void sdc_params_norm(sdc_params *p, sdc_tensor *w, sdc_tensor *b, int64_t dim, const char *prefix,
                     const char *alt);

/* The name and alt arguments of a block's rows, "<d>.<dsuf>" (diffusers) and
 * "<o>.<osuf>" (original), formatted into n:
 *     sdc_param_names n;
 *     sdc_params_conv(P, &w, &b, C, C, 1, SDC_PARAM_NAMES(&n, d, "proj_in", o, "proj_in"));
 */
typedef struct sdc_param_names {
    char name[192], alt[192];
} sdc_param_names;
const char *sdc_param_names_set(sdc_param_names *n, const char *d, const char *dsuf,
                                const char *o, const char *osuf);
#define SDC_PARAM_NAMES(n, d, dsuf, o, osuf) sdc_param_names_set(n, d, dsuf, o, osuf), (n)->alt

/* Maps a table row to the checkpoint key (writes into buf, returns buf). */
typedef const char *(*sdc_key_map)(const sdc_param *row, char *buf, size_t cap, const void *ctx);

/* Binds every row to a tensor of `files` (searched in order) under map.
 * Shapes must match, ignoring trailing 1s (a 1x1 conv binds a linear row).
 * Float weights (F32/F16/BF16) only. On the CPU the fields point into the
 * mmap (no copy); other backends get an upload the table owns.
 * `component` names the model in messages ("unet"). */
sdc_status sdc_params_bind(sdc_params *p, const char *component, sdc_safetensors *const *files,
                           size_t nfiles, sdc_key_map map, const void *ctx, sdc_backend *be,
                           sdc_err *err);

/* Drops the resident pages of the weights that point into a file mapping
 * (they come back from the page cache on next use): a finished component
 * stops counting in the process's memory. Owned weights are untouched. */
void sdc_params_release_pages(const sdc_params *p);

/* The table takes ownership of backend memory buf (freed with the table). */
sdc_status sdc_params_own(sdc_params *p, void *buf);

/* Gives every row fresh host storage of dtype with random values of sane
 * scale (see random_weights.c); the table owns the storage. */
sdc_status sdc_params_fill_random(sdc_params *p, sdc_backend *cpu, sdc_dtype dtype, uint64_t seed,
                                  sdc_err *err);

/* ctx (a string) + the diffusers name; ctx + the original name. */
const char *sdc_key_map_diffusers(const sdc_param *row, char *buf, size_t cap, const void *ctx);
const char *sdc_key_map_original(const sdc_param *row, char *buf, size_t cap, const void *ctx);

#endif
