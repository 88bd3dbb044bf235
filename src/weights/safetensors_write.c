/* safetensors_write.c — writes host tensors as a safetensors file, byte for
 * byte as the reference writer lays it out (compact JSON header padded with
 * spaces to a multiple of 8), durably: temp file, fsync, rename, dir fsync. */
#include "safetensors_internal.h"

#include "../core/atomic_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable string; any failure is sticky in oom. */
typedef struct strbuf {
    char *p;
    size_t len, cap;
    bool oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX / 4 - b->len) { b->oom = true; return; }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(strbuf *b, uint64_t v) {
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    sb_str(b, num);
}

/* A JSON string literal. s is valid UTF-8 (checked by the caller) and goes
 * out raw, as serde_json writes it; only '"', '\\' and controls are escaped. */
static void sb_json(strbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* Control bytes are fine in what we write: sb_json escapes them. */
static bool valid_utf8(const char *s) {
    size_t at;
    return !sdc_st_check_text((const unsigned char *)s, strlen(s), true, &at);
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted copies of the names (pass 0) and the metadata keys (pass 1) show
 * duplicates as neighbours. */
static sdc_status check_unique(const char *path, const sdc_st_write_item *items, size_t n,
                               const char *const *kv, size_t n_meta, sdc_err *err) {
    size_t most = n > n_meta ? n : n_meta;
    const char **names = malloc((most ? most : 1) * sizeof *names);
    if (!names) return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
    sdc_status s = SDC_OK;
    for (int pass = 0; pass < 2 && !s; pass++) {
        size_t m = pass ? n_meta : n;
        for (size_t i = 0; i < m; i++) names[i] = pass ? kv[2 * i] : items[i].name;
        qsort(names, m, sizeof *names, cmp_cstr);
        for (size_t i = 1; i < m && !s; i++)
            if (strcmp(names[i - 1], names[i]) == 0)
                s = sdc_err_set(err, SDC_ERR_ARG, "%s: %s '%.200s' given twice", path,
                                pass ? "metadata key" : "tensor name", names[i]);
    }
    free(names);
    return s;
}

/* Host tensors with sane shapes, valid UTF-8 names, keys and values, and
 * unique names. *data_len gets the size of the data area. */
static sdc_status check_items(const char *path, const sdc_st_write_item *items, size_t n,
                              const char *const *kv, size_t n_meta, uint64_t *data_len,
                              sdc_err *err) {
    *data_len = 0;
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor *t = items[i].tensor;
        const char *name = items[i].name;
        if (!name || !t)
            return sdc_err_set(err, SDC_ERR_ARG, "%s: item %zu has no name or tensor", path, i);
#define BAD(why) sdc_err_set(err, SDC_ERR_ARG, "%s: tensor '%.200s': %s", path, name, why)
        if (!valid_utf8(name) || strcmp(name, "__metadata__") == 0)
            return BAD("invalid tensor name");
        if (t->device != SDC_DEVICE_CPU) return BAD("not a host tensor");
        if (t->ndim < 0 || t->ndim > SDC_MAX_DIMS || (unsigned)t->dtype >= SDC_DTYPE_COUNT)
            return BAD("invalid rank or dtype");
        uint64_t bytes = sdc_dtype_size(t->dtype);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0 || __builtin_mul_overflow(bytes, (uint64_t)t->shape[d], &bytes))
                return BAD("invalid shape");
        if (bytes && !t->data) return BAD("no data");
#undef BAD
        /* Readers (ours included) refuse offsets past 2^53. */
        if (__builtin_add_overflow(*data_len, bytes, data_len) || *data_len > (uint64_t)1 << 53)
            return sdc_err_set(err, SDC_ERR_ARG, "%s: the tensors exceed 2^53 bytes", path);
    }
    for (size_t i = 0; i < 2 * n_meta; i++)
        if (!kv[i] || !valid_utf8(kv[i]))
            return sdc_err_set(err, SDC_ERR_ARG, "%s: metadata %s %zu is NULL or not UTF-8",
                               path, i % 2 ? "value" : "key", i / 2);
    return check_unique(path, items, n, kv, n_meta, err);
}

/* The header as the reference writes it: compact JSON, __metadata__ first,
 * then the tensors in the given order, packed back to back. */
static sdc_status build_header(strbuf *b, const sdc_st_write_item *items, size_t n,
                               const char *const *kv, size_t n_meta) {
    sb_put(b, "{", 1);
    if (n_meta) {
        sb_str(b, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_put(b, ",", 1);
            sb_json(b, kv[2 * i]);
            sb_put(b, ":", 1);
            sb_json(b, kv[2 * i + 1]);
        }
        sb_put(b, "}", 1);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor *t = items[i].tensor;
        if (i || n_meta) sb_put(b, ",", 1);
        sb_json(b, items[i].name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, sdc_dtype_name(t->dtype));
        sb_str(b, "\",\"shape\":[");
        uint64_t bytes = sdc_dtype_size(t->dtype); /* no overflow: checked */
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_put(b, ",", 1);
            sb_u64(b, (uint64_t)t->shape[d]);
            bytes *= (uint64_t)t->shape[d];
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_u64(b, offset);
        sb_put(b, ",", 1);
        sb_u64(b, offset + bytes);
        sb_str(b, "]}");
        offset += bytes;
    }
    sb_put(b, "}", 1);
    /* Padding so the data area starts 8-byte aligned in the file. */
    while (!b->oom && b->len % 8) sb_put(b, " ", 1);
    return b->oom ? SDC_ERR_OOM : SDC_OK;
}

sdc_status sdc_safetensors_write(const char *path, const sdc_st_write_item *items, size_t n,
                                 const char *const *meta_kv, size_t n_meta, sdc_err *err) {
    if (!path || !*path || (n && !items) || (n_meta && !meta_kv))
        return sdc_err_set(err, SDC_ERR_ARG, "safetensors write: invalid argument");
    uint64_t data_len;
    sdc_status s = check_items(path, items, n, meta_kv, n_meta, &data_len, err);
    if (s) return s;
    strbuf hdr = {0};
    if (build_header(&hdr, items, n, meta_kv, n_meta)) {
        free(hdr.p);
        return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory building the header", path);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    sdc_atomic_file *f = sdc_atomic_open(path, err);
    if (!f) {
        free(hdr.p);
        return err ? err->code : SDC_ERR_IO;
    }
    s = sdc_atomic_write(f, len8, 8, err);
    if (!s) s = sdc_atomic_write(f, hdr.p, hdr.len, err);
    for (size_t i = 0; !s && i < n; i++)
        s = sdc_atomic_write(f, items[i].tensor->data, sdc_tensor_nbytes(items[i].tensor), err);
    free(hdr.p);
    if (s) {
        sdc_atomic_abort(f);
        return s;
    }
    return sdc_atomic_commit(f, err);
}
