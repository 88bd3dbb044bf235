/* embeddings.c — loads textual-inversion embeddings from safetensors files:
 * A1111's `emb_params` / `string_to_param.*` (trigger = file name without
 * extension) and diffusers' learned_embeds ({token: [D] or [n, D]}). */
#include "embeddings.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../text/unicode.h"

typedef struct emb_entry {
    char *word;      /* trigger, NUL-terminated UTF-8 */
    char *file;      /* the file it came from (for messages) */
    size_t row;      /* first row in the table */
    int n_vectors;
} emb_entry;

struct sdc_embedding_set {
    int dim;
    emb_entry *e;
    size_t n, cap;
    float *table;    /* [n_rows, dim] */
    size_t n_rows, rows_cap;
};

static char *dup_str(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n), p[n] = '\0';
    return p;
}

static bool ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    if (k > n) return false;
    for (size_t i = 0; i < k; i++) {
        char a = s[n - k + i], b = suffix[i];
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (a != b) return false;
    }
    return true;
}

/* Pickle checkpoints are refused: unpickling runs arbitrary code. */
static bool is_pickle_name(const char *path) {
    return ends_with_ci(path, ".pt") || ends_with_ci(path, ".pth") || ends_with_ci(path, ".bin") ||
           ends_with_ci(path, ".ckpt");
}

static sdc_status refuse_pickle(const char *path, sdc_err *err) {
    /* The full conversion recipe (both layouts) is in the README. */
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                       "%s: pickle files (.pt/.pth/.bin/.ckpt) are refused because loading one can run "
                       "arbitrary code; convert it to .safetensors once, in Python: import torch, "
                       "safetensors.torch as st; d = torch.load('IN.pt', weights_only=True); "
                       "st.save_file({'emb_params': d['string_to_param']['*'].detach().contiguous()}, "
                       "'NAME.safetensors')",
                       path);
}

/* The file name without directory and without its last extension. */
static char *file_stem(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return dup_str(base, n);
}

static sdc_status add_trigger(sdc_embedding_set *s, const char *path, const char *word,
                              const sdc_safetensors *st, const sdc_st_entry *te, sdc_err *err) {
    size_t wlen = strlen(word), nu;
    if (wlen == 0) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: empty trigger word", path);
    if (sdc_utf8_decode(word, wlen, "trigger word", NULL, &nu, err))
        return sdc_err_wrap(err, "%s", path);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].word, word) == 0)
            return sdc_err_set(err, SDC_ERR_FORMAT, "embedding trigger '%s' is defined twice: in %s and in %s",
                               word, s->e[i].file, path);
    if (te->dtype != SDC_F32 && te->dtype != SDC_F16 && te->dtype != SDC_BF16)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; embeddings must be F32, F16 or BF16",
                           path, te->name, sdc_dtype_name(te->dtype));
    int64_t n, d;
    if (te->ndim == 1) n = 1, d = te->shape[0];
    else if (te->ndim == 2) n = te->shape[0], d = te->shape[1];
    else
        return sdc_err_set(err, SDC_ERR_SHAPE, "%s: tensor '%s' has rank %d; an embedding is [D] or [n, D]",
                           path, te->name, te->ndim);
    if (d != s->dim)
        return sdc_err_set(err, SDC_ERR_SHAPE,
                           "%s: tensor '%s' has vectors of %lld values, but this text encoder uses %d%s", path,
                           te->name, (long long)d, s->dim,
                           d == 1024 ? " (an SD 2.x embedding?)" : d == 1280 ? " (an SDXL embedding?)" : "");
    if (n < 1 || n > SDC_EMB_MAX_VECTORS)
        return sdc_err_set(err, SDC_ERR_SHAPE, "%s: tensor '%s' has %lld vectors; 1 to %d are supported", path,
                           te->name, (long long)n, SDC_EMB_MAX_VECTORS);
    if (s->n_rows + (size_t)n > SDC_EMB_MAX_ROWS)
        return sdc_err_set(err, SDC_ERR_ARG, "%s: more than %d embedding vectors in all", path, SDC_EMB_MAX_ROWS);
    /* Grow the table and the entry list. */
    if (s->n_rows + (size_t)n > s->rows_cap) {
        size_t c = s->rows_cap ? s->rows_cap : 16;
        while (c < s->n_rows + (size_t)n) c *= 2;
        float *t = realloc(s->table, c * (size_t)s->dim * sizeof *t);
        if (!t) return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
        s->table = t, s->rows_cap = c;
    }
    if (s->n == s->cap) {
        size_t c = s->cap ? 2 * s->cap : 8;
        emb_entry *e = realloc(s->e, c * sizeof *e);
        if (!e) return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
        s->e = e, s->cap = c;
    }
    float *dst = s->table + s->n_rows * (size_t)s->dim;
    sdc_status rc = sdc_safetensors_read(st, te, dst, SDC_F32, err);
    if (rc) return rc;
    size_t total = (size_t)n * (size_t)s->dim;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(dst[i]))
            return sdc_err_set(err, SDC_ERR_NUMERIC, "%s: tensor '%s' holds %s at vector %zu, value %zu", path,
                               te->name, isnan(dst[i]) ? "NaN" : "Inf", i / (size_t)s->dim, i % (size_t)s->dim);
    emb_entry *e = &s->e[s->n];
    e->word = dup_str(word, wlen);
    e->file = dup_str(path, strlen(path));
    if (!e->word || !e->file) {
        free(e->word), free(e->file);
        return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
    }
    e->row = s->n_rows;
    e->n_vectors = (int)n;
    s->n++;
    s->n_rows += (size_t)n;
    return SDC_OK;
}

/* One safetensors file: picks the layout by its keys. */
static sdc_status load_file(sdc_embedding_set *s, const char *path, sdc_err *err) {
    if (is_pickle_name(path)) return refuse_pickle(path, err);
    sdc_safetensors *st = sdc_safetensors_open(path, err);
    if (!st) return err ? err->code : SDC_ERR_FORMAT;
    sdc_status rc = SDC_OK;
    size_t count = sdc_safetensors_count(st);
    const sdc_st_entry *emb = sdc_safetensors_find(st, "emb_params"), *stp = NULL;
    size_t n_stp = 0;
    for (size_t i = 0; i < count; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        if (strncmp(e->name, "string_to_param.", 16) == 0) n_stp++, stp = e;
    }
    if (count == 0) {
        rc = sdc_err_set(err, SDC_ERR_FORMAT, "%s: holds no tensors, so no embedding", path);
    } else if (sdc_safetensors_find(st, "clip_l") && sdc_safetensors_find(st, "clip_g")) {
        rc = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: an SDXL embedding (clip_l + clip_g), not SD 1.x", path);
    } else if (emb || n_stp) {
        /* A1111: one term per file, named after the file. */
        if (n_stp > 1 || (emb && n_stp))
            rc = sdc_err_set(err, SDC_ERR_FORMAT, "%s: holds several A1111 embedding tensors; expected one", path);
        else {
            char *stem = file_stem(path);
            rc = stem ? add_trigger(s, path, stem, st, emb ? emb : stp, err)
                      : sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
            free(stem);
        }
    } else {
        /* diffusers: every tensor is a token, e.g. "<cat-toy>". */
        for (size_t i = 0; i < count && !rc; i++) {
            const sdc_st_entry *e = sdc_safetensors_entry(st, i);
            rc = add_trigger(s, path, e->name, st, e, err);
        }
    }
    sdc_safetensors_close(st);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every non-hidden *.safetensors of dir, sorted by name; pickle files refuse
 * the whole directory rather than silently dropping an embedding. */
static sdc_status load_dir(sdc_embedding_set *s, const char *dir, sdc_err *err) {
    DIR *d = opendir(dir);
    if (!d) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    sdc_status rc = SDC_OK;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] == '.') continue;
        bool st = ends_with_ci(nm, ".safetensors");
        if (!st && !is_pickle_name(nm)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) { rc = sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", dir); break; }
            names = p;
        }
        size_t len = strlen(dir) + 1 + strlen(nm);
        if (!(names[n] = malloc(len + 1))) { rc = sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", dir); break; }
        snprintf(names[n], len + 1, "%s/%s", dir, nm);
        n++;
    }
    closedir(d);
    if (!rc && n) qsort(names, n, sizeof *names, cmp_str); /* names is NULL when n == 0 */
    for (size_t i = 0; i < n && !rc; i++) {
        struct stat sb;
        if (stat(names[i], &sb) == 0 && S_ISDIR(sb.st_mode)) continue;
        rc = load_file(s, names[i], err);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

sdc_status sdc_embeddings_load(sdc_embedding_set **set, const char *path, int dim, sdc_err *err) {
    if (!set) return sdc_err_set(err, SDC_ERR_ARG, "embeddings: set is NULL");
    *set = NULL;
    if (!path || !*path) return sdc_err_set(err, SDC_ERR_ARG, "embeddings: no path");
    if (dim < 1 || dim > 65536) return sdc_err_set(err, SDC_ERR_ARG, "embeddings: dimension %d is out of range", dim);
    struct stat sb;
    if (stat(path, &sb) != 0) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
    sdc_embedding_set *s = calloc(1, sizeof *s);
    if (!s) return sdc_err_set(err, SDC_ERR_OOM, "embeddings: out of memory");
    s->dim = dim;
    sdc_status rc = S_ISDIR(sb.st_mode) ? load_dir(s, path, err) : load_file(s, path, err);
    if (!rc && s->n == 0) rc = sdc_err_set(err, SDC_ERR_FORMAT, "%s: no .safetensors embeddings found", path);
    if (rc) {
        sdc_embeddings_free(s);
        return rc;
    }
    *set = s;
    return SDC_OK;
}

sdc_status sdc_embeddings_from_memory(sdc_embedding_set **set, const char *word,
                                      const float *vectors, int n_vectors, int dim, sdc_err *err) {
    if (!set) return sdc_err_set(err, SDC_ERR_ARG, "embeddings: set is NULL");
    *set = NULL;
    size_t wlen = word ? strlen(word) : 0, nu;
    if (wlen == 0) return sdc_err_set(err, SDC_ERR_ARG, "embeddings: empty trigger word");
    if (sdc_utf8_decode(word, wlen, "trigger word", NULL, &nu, err)) return err ? err->code : SDC_ERR_ARG;
    if (dim < 1 || dim > 65536 || n_vectors < 1 || n_vectors > SDC_EMB_MAX_VECTORS || !vectors)
        return sdc_err_set(err, SDC_ERR_ARG, "embeddings: '%s' has %d vectors of %d values; 1 to %d "
                           "vectors are supported", word, n_vectors, dim, SDC_EMB_MAX_VECTORS);
    size_t total = (size_t)n_vectors * (size_t)dim;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(vectors[i]))
            return sdc_err_set(err, SDC_ERR_NUMERIC, "embeddings: '%s' holds %s at vector %zu", word,
                               isnan(vectors[i]) ? "NaN" : "Inf", i / (size_t)dim);
    sdc_embedding_set *s = calloc(1, sizeof *s);
    if (s) {
        s->dim = dim;
        s->e = calloc(1, sizeof *s->e);
        s->table = malloc(total * sizeof *s->table);
    }
    if (!s || !s->e || !s->table || !(s->e[0].word = dup_str(word, wlen)) ||
        !(s->e[0].file = dup_str("(memory)", 8))) {
        if (s && s->e) free(s->e[0].word);
        if (s) free(s->e), free(s->table);
        free(s);
        return sdc_err_set(err, SDC_ERR_OOM, "embeddings: out of memory");
    }
    memcpy(s->table, vectors, total * sizeof *s->table);
    s->e[0].n_vectors = n_vectors;
    s->n = s->cap = 1;
    s->n_rows = s->rows_cap = (size_t)n_vectors;
    *set = s;
    return SDC_OK;
}

void sdc_embeddings_free(sdc_embedding_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->e[i].word), free(s->e[i].file);
    free(s->e);
    free(s->table);
    free(s);
}

size_t sdc_embeddings_count(const sdc_embedding_set *s) { return s ? s->n : 0; }

const float *sdc_embeddings_find(const sdc_embedding_set *s, const char *word, int *n_vectors) {
    if (n_vectors) *n_vectors = 0;
    if (!s || !word) return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].word, word) == 0) {
            if (n_vectors) *n_vectors = s->e[i].n_vectors;
            return s->table + s->e[i].row * (size_t)s->dim;
        }
    return NULL;
}

bool sdc_embeddings_at(const sdc_embedding_set *s, size_t i, const char **word, size_t *row,
                       int *n_vectors, const char **file) {
    if (!s || i >= s->n) return false;
    if (word) *word = s->e[i].word;
    if (row) *row = s->e[i].row;
    if (n_vectors) *n_vectors = s->e[i].n_vectors;
    if (file) *file = s->e[i].file;
    return true;
}

const float *sdc_embeddings_table(const sdc_embedding_set *s, size_t *n_rows, int *dim) {
    if (n_rows) *n_rows = s ? s->n_rows : 0;
    if (dim) *dim = s ? s->dim : 0;
    return s ? s->table : NULL;
}
