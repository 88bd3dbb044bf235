/* params.c — parameter tables and binding them to safetensors files. */
#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sdc_params_init(sdc_params *p) { memset(p, 0, sizeof *p); }

void sdc_params_free(sdc_params *p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->rows[i].name);
        free(p->rows[i].alt);
    }
    free(p->rows);
    for (size_t i = 0; i < p->n_bufs; i++) p->be->free(p->be, p->device_bufs[i]);
    free(p->device_bufs);
    memset(p, 0, sizeof *p);
}

static void add_row(sdc_params *p, sdc_tensor *field, int ndim, const int64_t *shape, bool opt,
                    const char *name, const char *alt) {
    if (p->status) return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        sdc_param *r = realloc(p->rows, cap * sizeof *r);
        if (!r) { p->status = SDC_ERR_OOM; return; }
        p->rows = r;
        p->cap = cap;
    }
    sdc_param *row = &p->rows[p->n];
    memset(row, 0, sizeof *row);
    row->name = strdup(name);
    row->alt = alt && strcmp(alt, name) != 0 ? strdup(alt) : NULL;
    if (!row->name || (alt && strcmp(alt, name) != 0 && !row->alt)) {
        free(row->name);
        free(row->alt);
        p->status = SDC_ERR_OOM;
        return;
    }
    row->field = field;
    row->ndim = ndim;
    for (int i = 0; i < SDC_MAX_DIMS; i++) row->shape[i] = i < ndim ? shape[i] : 1;
    row->optional = opt;
    memset(field, 0, sizeof *field);
    p->n++;
}

void sdc_params_add(sdc_params *p, sdc_tensor *field, int ndim, const int64_t *shape,
                    const char *name, const char *alt) {
    add_row(p, field, ndim, shape, false, name, alt);
}

void sdc_params_add_optional(sdc_params *p, sdc_tensor *field, int ndim, const int64_t *shape,
                             const char *name, const char *alt) {
    add_row(p, field, ndim, shape, true, name, alt);
}

const char *sdc_param_names_set(sdc_param_names *n, const char *d, const char *dsuf,
                                const char *o, const char *osuf) {
    snprintf(n->name, sizeof n->name, "%s.%s", d, dsuf);
    snprintf(n->alt, sizeof n->alt, "%s.%s", o, osuf);
    return n->name;
}

/* Adds "<prefix>.<suffix>" (and the alt twin) with the given shape. */
static void add_suffixed(sdc_params *p, sdc_tensor *field, int ndim, const int64_t *shape,
                         const char *prefix, const char *alt, const char *suffix) {
    char name[256], alt_name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    if (alt) snprintf(alt_name, sizeof alt_name, "%s.%s", alt, suffix);
    sdc_params_add(p, field, ndim, shape, name, alt ? alt_name : NULL);
}

void sdc_params_linear(sdc_params *p, sdc_tensor *w, sdc_tensor *b, int64_t out, int64_t in,
                       const char *prefix, const char *alt) {
    add_suffixed(p, w, 2, (const int64_t[]){out, in}, prefix, alt, "weight");
    if (b) add_suffixed(p, b, 1, (const int64_t[]){out}, prefix, alt, "bias");
}

void sdc_params_conv(sdc_params *p, sdc_tensor *w, sdc_tensor *b, int64_t out, int64_t in,
                     int64_t k, const char *prefix, const char *alt) {
    add_suffixed(p, w, 4, (const int64_t[]){out, in, k, k}, prefix, alt, "weight");
    if (b) add_suffixed(p, b, 1, (const int64_t[]){out}, prefix, alt, "bias");
}

void sdc_params_norm(sdc_params *p, sdc_tensor *w, sdc_tensor *b, int64_t dim, const char *prefix,
                     const char *alt) {
    add_suffixed(p, w, 1, (const int64_t[]){dim}, prefix, alt, "weight");
    add_suffixed(p, b, 1, (const int64_t[]){dim}, prefix, alt, "bias");
}

int64_t sdc_params_count(const sdc_params *p) {
    int64_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        int64_t k = 1;
        for (int d = 0; d < p->rows[i].ndim; d++) k *= p->rows[i].shape[d];
        n += k;
    }
    return n;
}

const char *sdc_key_map_diffusers(const sdc_param *row, char *buf, size_t cap, const void *ctx) {
    snprintf(buf, cap, "%s%s", ctx ? (const char *)ctx : "", row->name);
    return buf;
}

const char *sdc_key_map_original(const sdc_param *row, char *buf, size_t cap, const void *ctx) {
    snprintf(buf, cap, "%s%s", ctx ? (const char *)ctx : "", row->alt ? row->alt : row->name);
    return buf;
}

/* Shapes agree when equal after dropping trailing 1s. */
static bool shapes_agree(const sdc_st_entry *e, const sdc_param *row) {
    int ne = e->ndim, nr = row->ndim;
    while (ne > 0 && e->shape[ne - 1] == 1) ne--;
    while (nr > 0 && row->shape[nr - 1] == 1) nr--;
    if (ne != nr) return false;
    for (int i = 0; i < ne; i++)
        if (e->shape[i] != row->shape[i]) return false;
    return true;
}

static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t used = 0;
    int n = snprintf(buf, cap, "[");
    if (n > 0) used = (size_t)n;
    for (int i = 0; i < ndim && used < cap; i++) {
        n = snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
        if (n > 0) used += (size_t)n;
    }
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

sdc_status sdc_params_own(sdc_params *p, void *buf) {
    if (p->n_bufs == p->cap_bufs) {
        size_t cap = p->cap_bufs ? 2 * p->cap_bufs : 256;
        void **b = realloc(p->device_bufs, cap * sizeof *b);
        if (!b) return SDC_ERR_OOM;
        p->device_bufs = b;
        p->cap_bufs = cap;
    }
    p->device_bufs[p->n_bufs++] = buf;
    return SDC_OK;
}

void sdc_params_release_pages(const sdc_params *p) {
    for (size_t i = 0; i < p->n; i++) sdc_tensor_release_pages(p->rows[i].field);
}

static sdc_status bind_row(sdc_params *p, sdc_param *row, const sdc_st_entry *e,
                           const char *component, sdc_backend *be, const sdc_safetensors *file,
                           sdc_err *err) {
    if (e->dtype != SDC_F32 && e->dtype != SDC_F16 && e->dtype != SDC_BF16)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                           component, e->name, sdc_dtype_name(e->dtype));
    if (!shapes_agree(e, row)) {
        char got[96], want[96];
        shape_text(got, sizeof got, e->ndim, e->shape);
        shape_text(want, sizeof want, row->ndim, row->shape);
        return sdc_err_set(err, SDC_ERR_SHAPE, "%s: tensor '%s' is %s, expected %s", component,
                           e->name, got, want);
    }
    sdc_status s = sdc_tensor_init(row->field, e->dtype, row->ndim, row->shape,
                                   (void *)e->data, err);
    if (s) return s;
    row->field->file_mapped = be->device == SDC_DEVICE_CPU && sdc_safetensors_is_mapped(file);
    if (be->device == SDC_DEVICE_CPU) return SDC_OK;
    size_t bytes = sdc_tensor_nbytes(row->field);
    void *dev = be->alloc(be, bytes);
    if (!dev || sdc_params_own(p, dev)) {
        if (dev) be->free(be, dev);
        return sdc_err_set(err, SDC_ERR_OOM, "%s: cannot allocate %zu bytes on %s for '%s'",
                           component, bytes, be->name, e->name);
    }
    if ((s = be->upload(be, dev, e->data, bytes, err))) return s;
    row->field->data = dev;
    row->field->device = be->device;
    return SDC_OK;
}

sdc_status sdc_params_bind(sdc_params *p, const char *component, sdc_safetensors *const *files,
                           size_t nfiles, sdc_key_map map, const void *ctx, sdc_backend *be,
                           sdc_err *err) {
    if (p->status)
        return sdc_err_set(err, p->status, "%s: building the parameter table failed", component);
    p->be = be;
    char key[320], missing[SDC_ERR_MSG_MAX / 2] = "";
    size_t n_missing = 0, used = 0;
    for (size_t i = 0; i < p->n; i++) {
        sdc_param *row = &p->rows[i];
        map(row, key, sizeof key, ctx);
        const sdc_st_entry *e = NULL;
        size_t f = 0;
        for (; f < nfiles && !(e = sdc_safetensors_find(files[f], key)); f++) {}
        if (!e) {
            if (row->optional) continue;
            /* Collect a few names; the count tells the rest. */
            if (n_missing < 3 && used < sizeof missing - 1) {
                int k = snprintf(missing + used, sizeof missing - used, "%s'%s'",
                                 n_missing ? ", " : "", key);
                if (k > 0) used += (size_t)k;
                if (used >= sizeof missing) used = sizeof missing - 1;
            }
            n_missing++;
            continue;
        }
        sdc_status s = bind_row(p, row, e, component, be, files[f], err);
        if (s) return s;
    }
    if (n_missing)
        return sdc_err_set(err, SDC_ERR_FORMAT,
                           "%s: %zu of %zu tensors missing, e.g. %s — this does not look like an "
                           "SD 1.x %s", component, n_missing, p->n, missing, component);
    return SDC_OK;
}
