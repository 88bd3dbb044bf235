/* safetensors.c — a strict safetensors reader: mmap, every check of the
 * reference crate and a few more, and typed reads of (unaligned) tensor data.
 * Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON, data. */
#include "safetensors_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct sdc_safetensors {
    char *label;                /* path, or the caller's label for a buffer */
    const unsigned char *base;  /* the whole file */
    size_t size;
    bool mapped;                /* base is our mmap (unmapped on close) */
    sdc_st_entry *entries;      /* sorted by name; names owned */
    size_t n;
    char **meta;                /* key, value, key, value ... sorted by key */
    size_t n_meta;
};

#define MAX_WHOLE 9007199254740992.0 /* 2^53: larger doubles skip integers */

/* Against the reference (safetensors 0.4.5, checked file by file):
 *   same:     unknown fields in a tensor entry are ignored; "__metadata__":
 *             null means no metadata; an empty tensor name is allowed.
 *   stricter: duplicate __metadata__ keys, the escape \u0000, rank > 8
 *             (sdc_st_entry holds 8 dims) and a byte order mark are refused;
 *             F8/U16/U32/U64/... parse in the reference but are
 *             SDC_ERR_UNSUPPORTED here.
 *   laxer:    a dimension or offset written as 1.0 or 1e0 is read as 1, as
 *             cJSON does not keep the number's text (serde refuses it). */

/* ---------------------------------------------------------------- messages */

/* A tensor name made safe to print: control bytes become '?', and long
 * names are cut (at a UTF-8 boundary) so the reason still fits. */
static const char *show(const char *s, char *buf, size_t cap) {
    size_t limit = cap - 4, i = 0, o = 0;
    for (; s[i] && o < limit; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[i]) {
        /* o == i (one byte out per byte in): back up to a lead byte. */
        while (o > 0 && ((unsigned char)s[o] & 0xc0) == 0x80) o--;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static const char *json_kind(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

/* "<label>: <reason>" (and "tensor '<name>': " in between when name is set). */
__attribute__((format(printf, 5, 6)))
static sdc_status fail(sdc_err *err, sdc_status code, const char *label, const char *name,
                       const char *fmt, ...) {
    char why[SDC_ERR_MSG_MAX], nb[100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (name) return sdc_err_set(err, code, "%s: tensor '%s': %s", label, show(name, nb, sizeof nb), why);
    return sdc_err_set(err, code, "%s: %s", label, why);
}

/* "[2, 320, 64, 64]"; buf holds at least 200 bytes (8 dims of <= 17 digits). */
static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* ---------------------------------------------------------------- UTF-8 */

/* Strict UTF-8 (RFC 3629: no overlong forms, surrogates or code points past
 * U+10FFFF). Unless allow_ctrl, also the JSON rule that raw control bytes
 * other than tab, LF and CR never appear: cJSON accepts them inside
 * strings, and an embedded NUL would silently cut a name. Returns NULL when
 * valid, else the reason, with *at the offending offset. */
const char *sdc_st_check_text(const unsigned char *s, size_t n, bool allow_ctrl, size_t *at) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        *at = i;
        if (c < 0x80) {
            if (!allow_ctrl && c < 0x20 && !is_space((unsigned char)c)) return "control byte";
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c <= 0xbf) return "unexpected continuation byte";
        if (c == 0xc0 || c == 0xc1) return "overlong encoding";
        if (c >= 0xf5) return "invalid byte";
        if (c < 0xe0) len = 2;
        else if (c < 0xf0) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        }
        for (size_t k = 1; k < len; k++) {
            if (i + k >= n) return "sequence cut off at the end";
            unsigned t = s[i + k];
            if ((t & 0xc0) != 0x80) return "missing continuation byte";
            if (k == 1 && t < lo) return "overlong encoding";
            if (k == 1 && t > hi) return c == 0xed ? "UTF-16 surrogate" : "code point beyond U+10FFFF";
        }
        i += len;
    }
    return NULL;
}

/* ---------------------------------------------------------------- header fields */

/* A JSON number that must be a whole number in [0, 2^53]. cJSON's valueint
 * saturates at INT_MAX, so read valuedouble. Returns NULL or the reason. */
static const char *whole(const cJSON *v, uint64_t *out, char *why, size_t cap) {
    if (!cJSON_IsNumber(v)) {
        snprintf(why, cap, "is %s, not a number", json_kind(v));
        return why;
    }
    double d = v->valuedouble;
    if (!isfinite(d)) snprintf(why, cap, "is not a finite number");
    else if (d < 0) snprintf(why, cap, "is negative (%g)", d);
    else if (d != floor(d)) snprintf(why, cap, "is not a whole number (%g)", d);
    else if (d > MAX_WHOLE) snprintf(why, cap, "exceeds 2^53 (%.17g)", d);
    else {
        *out = (uint64_t)d;
        return NULL;
    }
    return why;
}

/* Valid safetensors dtypes that sdc does not handle: a distinct message, so
 * a user learns the file is fine but needs converting. */
static const char *const unsupported_dtypes[] = {
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "U16", "U32", "U64", "C64",
};

static sdc_status parse_dtype(const cJSON *v, sdc_dtype *out, const char *label, const char *name,
                              sdc_err *err) {
    char db[40];
    if (!v) return fail(err, SDC_ERR_FORMAT, label, name, "missing 'dtype'");
    if (!cJSON_IsString(v))
        return fail(err, SDC_ERR_FORMAT, label, name, "'dtype' is %s, not a string", json_kind(v));
    if (sdc_dtype_from_name(v->valuestring, out)) return SDC_OK;
    for (size_t i = 0; i < sizeof unsupported_dtypes / sizeof *unsupported_dtypes; i++)
        if (strcmp(v->valuestring, unsupported_dtypes[i]) == 0)
            return fail(err, SDC_ERR_UNSUPPORTED, label, name,
                        "dtype '%s' is valid safetensors but not supported by sdc", v->valuestring);
    return fail(err, SDC_ERR_FORMAT, label, name, "unknown dtype '%s'",
                show(v->valuestring, db, sizeof db));
}

static sdc_status parse_shape(const cJSON *v, sdc_st_entry *e, const char *label,
                              const char *name, sdc_err *err) {
    char why[80];
    if (!v) return fail(err, SDC_ERR_FORMAT, label, name, "missing 'shape'");
    if (!cJSON_IsArray(v))
        return fail(err, SDC_ERR_FORMAT, label, name, "'shape' is %s, not an array", json_kind(v));
    int rank = cJSON_GetArraySize(v);
    if (rank > SDC_ST_MAX_DIMS)
        return fail(err, SDC_ERR_FORMAT, label, name, "rank %d exceeds the maximum of %d", rank,
                    SDC_ST_MAX_DIMS);
    const cJSON *d;
    int i = 0;
    cJSON_ArrayForEach(d, v) {
        uint64_t x;
        if (whole(d, &x, why, sizeof why))
            return fail(err, SDC_ERR_FORMAT, label, name, "shape[%d] %s", i, why);
        e->shape[i++] = (int64_t)x;
    }
    e->ndim = rank;
    return SDC_OK;
}

static sdc_status parse_offsets(const cJSON *v, sdc_st_entry *e, const char *label,
                                const char *name, sdc_err *err) {
    char why[80];
    if (!v) return fail(err, SDC_ERR_FORMAT, label, name, "missing 'data_offsets'");
    if (!cJSON_IsArray(v))
        return fail(err, SDC_ERR_FORMAT, label, name, "'data_offsets' is %s, not an array",
                    json_kind(v));
    int count = cJSON_GetArraySize(v);
    if (count != 2)
        return fail(err, SDC_ERR_FORMAT, label, name, "'data_offsets' has %d entries, not 2",
                    count);
    uint64_t o[2];
    for (int i = 0; i < 2; i++)
        if (whole(cJSON_GetArrayItem(v, i), &o[i], why, sizeof why))
            return fail(err, SDC_ERR_FORMAT, label, name, "data_offsets[%d] %s", i, why);
    if (o[0] > o[1])
        return fail(err, SDC_ERR_FORMAT, label, name,
                    "data_offsets [%llu, %llu): begin is after end", (unsigned long long)o[0],
                    (unsigned long long)o[1]);
    e->begin = o[0];
    e->end = o[1];
    return SDC_OK;
}

/* Element count x dtype size, overflow-checked (a product that wraps to 0
 * must not slip through), must equal the span of the offsets. */
static sdc_status check_size(const sdc_st_entry *e, const char *label, sdc_err *err) {
    char sh[200];
    shape_text(sh, sizeof sh, e->ndim, e->shape);
    uint64_t numel = 1, bytes;
    for (int i = 0; i < e->ndim; i++)
        if (__builtin_mul_overflow(numel, (uint64_t)e->shape[i], &numel))
            return fail(err, SDC_ERR_FORMAT, label, e->name,
                        "shape %s has more elements than fit in 64 bits", sh);
    if (__builtin_mul_overflow(numel, (uint64_t)sdc_dtype_size(e->dtype), &bytes))
        return fail(err, SDC_ERR_FORMAT, label, e->name, "%s %s is more than 2^64 bytes",
                    sdc_dtype_name(e->dtype), sh);
    if (bytes != e->end - e->begin)
        return fail(err, SDC_ERR_FORMAT, label, e->name,
                    "data_offsets [%llu, %llu) hold %llu bytes but %s %s needs %llu",
                    (unsigned long long)e->begin, (unsigned long long)e->end,
                    (unsigned long long)(e->end - e->begin), sdc_dtype_name(e->dtype), sh,
                    (unsigned long long)bytes);
    return SDC_OK;
}

/* One tensor entry. Fields other than the three are ignored, as the
 * reference does (its serde TensorInfo does not deny unknown fields); a
 * known field given twice is an error there too. */
static sdc_status parse_entry(const cJSON *v, sdc_st_entry *e, const char *label, sdc_err *err) {
    const char *name = e->name;
    if (!cJSON_IsObject(v))
        return fail(err, SDC_ERR_FORMAT, label, name, "entry is %s, not an object", json_kind(v));
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (int f = 0; f < 3; f++) {
        int seen = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, v) seen += c->string && strcmp(c->string, fields[f]) == 0;
        if (seen > 1)
            return fail(err, SDC_ERR_FORMAT, label, name, "field '%s' appears %d times",
                        fields[f], seen);
    }
    sdc_status s;
    if ((s = parse_dtype(cJSON_GetObjectItemCaseSensitive(v, "dtype"), &e->dtype, label, name, err)) ||
        (s = parse_shape(cJSON_GetObjectItemCaseSensitive(v, "shape"), e, label, name, err)) ||
        (s = parse_offsets(cJSON_GetObjectItemCaseSensitive(v, "data_offsets"), e, label, name, err)))
        return s;
    return check_size(e, label, err);
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const sdc_st_entry *)a)->name, ((const sdc_st_entry *)b)->name);
}

static int cmp_meta_key(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* __metadata__: an object of string -> string. null counts as absent, as
 * serde reads it into an Option. Duplicate keys are rejected (cJSON keeps both). */
static sdc_status parse_meta(sdc_safetensors *st, const cJSON *v, sdc_err *err) {
    char kb[100];
    if (cJSON_IsNull(v)) return SDC_OK;
    if (!cJSON_IsObject(v))
        return fail(err, SDC_ERR_FORMAT, st->label, NULL, "__metadata__ is %s, not an object",
                    json_kind(v));
    size_t n = (size_t)cJSON_GetArraySize(v);
    st->meta = calloc(n ? 2 * n : 1, sizeof *st->meta);
    if (!st->meta) return fail(err, SDC_ERR_OOM, st->label, NULL, "out of memory");
    const cJSON *c;
    cJSON_ArrayForEach(c, v) {
        if (!cJSON_IsString(c))
            return fail(err, SDC_ERR_FORMAT, st->label, NULL,
                        "__metadata__ value of '%s' is %s, not a string", show(c->string, kb, sizeof kb),
                        json_kind(c));
        char *k = strdup(c->string), *val = strdup(c->valuestring);
        st->meta[2 * st->n_meta] = k;
        st->meta[2 * st->n_meta + 1] = val;
        st->n_meta++;
        if (!k || !val) return fail(err, SDC_ERR_OOM, st->label, NULL, "out of memory");
    }
    qsort(st->meta, st->n_meta, 2 * sizeof *st->meta, cmp_meta_key);
    for (size_t i = 1; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i - 2], st->meta[2 * i]) == 0)
            return fail(err, SDC_ERR_FORMAT, st->label, NULL, "__metadata__ key '%s' appears twice",
                        show(st->meta[2 * i], kb, sizeof kb));
    return SDC_OK;
}

/* ---------------------------------------------------------------- whole-file checks */

static int cmp_entry_offsets(const void *a, const void *b) {
    const sdc_st_entry *x = *(const sdc_st_entry *const *)a, *y = *(const sdc_st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Sorted by offset, the tensors must tile [0, data_len) exactly: no gap, no
 * overlap, nothing appended, nothing missing. */
static sdc_status check_tiling(sdc_safetensors *st, uint64_t data_len, sdc_err *err) {
    const sdc_st_entry **order = malloc((st->n ? st->n : 1) * sizeof *order);
    if (!order) return fail(err, SDC_ERR_OOM, st->label, NULL, "out of memory");
    for (size_t i = 0; i < st->n; i++) order[i] = &st->entries[i];
    qsort(order, st->n, sizeof *order, cmp_entry_offsets);
    uint64_t cursor = 0;
    sdc_status s = SDC_OK;
    char pb[100];
    for (size_t i = 0; i < st->n && !s; i++) {
        const sdc_st_entry *e = order[i], *prev = i ? order[i - 1] : NULL;
        if (e->begin < cursor)
            s = fail(err, SDC_ERR_FORMAT, st->label, e->name,
                     "data_offsets [%llu, %llu) overlap tensor '%s' [%llu, %llu)",
                     (unsigned long long)e->begin, (unsigned long long)e->end,
                     show(prev->name, pb, sizeof pb), (unsigned long long)prev->begin,
                     (unsigned long long)prev->end);
        else if (e->begin > cursor && !prev)
            s = fail(err, SDC_ERR_FORMAT, st->label, e->name,
                     "the first tensor's data begins at %llu, not 0", (unsigned long long)e->begin);
        else if (e->begin > cursor)
            s = fail(err, SDC_ERR_FORMAT, st->label, e->name,
                     "begins at %llu, leaving a gap of %llu bytes after tensor '%s' (ends at %llu)",
                     (unsigned long long)e->begin, (unsigned long long)(e->begin - cursor),
                     show(prev->name, pb, sizeof pb), (unsigned long long)cursor);
        cursor = e->end;
    }
    free(order);
    if (s) return s;
    if (cursor > data_len)
        return fail(err, SDC_ERR_FORMAT, st->label, NULL,
                    "file is truncated: the tensors need %llu bytes of data but only %llu follow "
                    "the header", (unsigned long long)cursor, (unsigned long long)data_len);
    if (cursor < data_len)
        return fail(err, SDC_ERR_FORMAT, st->label, NULL,
                    "%llu unexpected bytes after the last tensor (the tensors cover %llu of the "
                    "%llu-byte data area)", (unsigned long long)(data_len - cursor),
                    (unsigned long long)cursor, (unsigned long long)data_len);
    return SDC_OK;
}

/* Reads the tensor entries and __metadata__ of a parsed header object. */
static sdc_status parse_object(sdc_safetensors *st, const cJSON *root, sdc_err *err) {
    size_t n_tensors = 0, n_meta = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, root) {
        if (strcmp(c->string, "__metadata__") == 0) n_meta++;
        else n_tensors++;
    }
    if (n_meta > 1)
        return fail(err, SDC_ERR_FORMAT, st->label, NULL, "__metadata__ appears %zu times", n_meta);
    st->entries = calloc(n_tensors ? n_tensors : 1, sizeof *st->entries);
    if (!st->entries) return fail(err, SDC_ERR_OOM, st->label, NULL, "out of memory");
    sdc_status s;
    cJSON_ArrayForEach(c, root) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if ((s = parse_meta(st, c, err))) return s;
            continue;
        }
        sdc_st_entry *e = &st->entries[st->n++];
        if (!(e->name = strdup(c->string))) return fail(err, SDC_ERR_OOM, st->label, NULL, "out of memory");
        if ((s = parse_entry(c, e, st->label, err))) return s;
    }
    return SDC_OK;
}

/* Validates the header text and parses it into st. */
/* cJSON turns the escape \u0000 into a NUL that silently ends a C string,
 * so "a\u0000b" would load as "a". Finds an escape (an odd run of
 * backslashes before "u0000"); returns its offset or n. */
static size_t find_escaped_nul(const unsigned char *s, size_t n) {
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] != '\\' || s[i + 1] != 'u' || memcmp(s + i + 2, "0000", 4) != 0) continue;
        size_t run = 0;
        while (run < i && s[i - 1 - run] == '\\') run++;
        if (run % 2 == 0) return i;
    }
    return n;
}

static sdc_status parse_header(sdc_safetensors *st, const unsigned char *text, size_t n,
                               sdc_err *err) {
    size_t at;
    const char *why = sdc_st_check_text(text, n, false, &at);
    if (why && strcmp(why, "control byte") == 0)
        return fail(err, SDC_ERR_FORMAT, st->label, NULL,
                    "header contains control byte 0x%02x at header byte %zu (not allowed in JSON)",
                    text[at], at);
    if (why)
        return fail(err, SDC_ERR_FORMAT, st->label, NULL,
                    "header is not valid UTF-8: %s (byte 0x%02x at header byte %zu)", why,
                    text[at], at);
    /* cJSON would skip a byte order mark; JSON (and the reference) does not. */
    if (n >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        return fail(err, SDC_ERR_FORMAT, st->label, NULL,
                    "header starts with a UTF-8 byte order mark (not allowed in JSON)");
    if ((at = find_escaped_nul(text, n)) < n)
        return fail(err, SDC_ERR_FORMAT, st->label, NULL,
                    "header contains the escape \\u0000 at header byte %zu (names and values "
                    "cannot hold NUL)", at);
    size_t lead = 0;
    while (lead < n && is_space(text[lead])) lead++;
    if (lead == n)
        return fail(err, SDC_ERR_FORMAT, st->label, NULL,
                    "header holds no JSON (%zu bytes, all white space)", n);
    /* cJSON reads a NUL-terminated copy of exactly n bytes. */
    char *copy = malloc(n + 1);
    if (!copy) return fail(err, SDC_ERR_OOM, st->label, NULL, "cannot allocate a %zu-byte header", n);
    memcpy(copy, text, n);
    copy[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, n, &end, false);
    sdc_status s = SDC_OK;
    if (!root) {
        size_t pos = end ? (size_t)(end - copy) : 0;
        s = pos + 1 >= n ? fail(err, SDC_ERR_FORMAT, st->label, NULL,
                                "header JSON ends early (truncated at byte %zu)", n)
                         : fail(err, SDC_ERR_FORMAT, st->label, NULL,
                                "header is not valid JSON (error near header byte %zu)", pos);
    } else {
        size_t pos = (size_t)(end - copy);
        while (pos < n && is_space((unsigned char)copy[pos])) pos++;
        if (pos < n)
            s = fail(err, SDC_ERR_FORMAT, st->label, NULL,
                     "unexpected text after the header's JSON value at header byte %zu", pos);
        else if (!cJSON_IsObject(root))
            s = fail(err, SDC_ERR_FORMAT, st->label, NULL, "header is %s, not a JSON object",
                     json_kind(root));
        else
            s = parse_object(st, root, err);
    }
    cJSON_Delete(root);
    free(copy);
    return s;
}

/* ---------------------------------------------------------------- open / close */

static sdc_status check_file_size(const char *label, uint64_t size, sdc_err *err) {
    if (size < 8)
        return fail(err, SDC_ERR_FORMAT, label, NULL,
                    "file is %llu bytes, too short for the 8-byte header length",
                    (unsigned long long)size);
    return SDC_OK;
}

/* Takes ownership of a mapping (when mapped) even on failure. */
static sdc_safetensors *parse_buffer(const unsigned char *buf, size_t len, const char *label,
                                     bool mapped, sdc_err *err) {
    sdc_safetensors *st = calloc(1, sizeof *st);
    char *lab = strdup(label ? label : "<memory>");
    if (!st || !lab) {
        free(st);
        free(lab);
        if (mapped) munmap((void *)buf, len);
        sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", label ? label : "<memory>");
        return NULL;
    }
    st->label = lab;
    st->base = buf;
    st->size = len;
    st->mapped = mapped;
    if (check_file_size(st->label, len, err)) goto fail;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > SDC_ST_MAX_HEADER) {
        fail(err, SDC_ERR_FORMAT, st->label, NULL, "header length %llu exceeds the %llu-byte limit",
             (unsigned long long)n, SDC_ST_MAX_HEADER);
        goto fail;
    }
    if (n > len - 8) { /* len >= 8, so no overflow */
        fail(err, SDC_ERR_FORMAT, st->label, NULL,
             "header length %llu runs past the end of the %zu-byte file", (unsigned long long)n, len);
        goto fail;
    }
    if (parse_header(st, buf + 8, (size_t)n, err)) goto fail;
    qsort(st->entries, st->n, sizeof *st->entries, cmp_entry_name);
    char nb[100];
    for (size_t i = 1; i < st->n; i++)
        if (strcmp(st->entries[i - 1].name, st->entries[i].name) == 0) {
            fail(err, SDC_ERR_FORMAT, st->label, NULL, "tensor '%s' appears twice in the header",
                 show(st->entries[i].name, nb, sizeof nb));
            goto fail;
        }
    if (check_tiling(st, len - 8 - n, err)) goto fail;
    for (size_t i = 0; i < st->n; i++) st->entries[i].data = buf + 8 + n + st->entries[i].begin;
    return st;
fail:
    sdc_safetensors_close(st);
    return NULL;
}

sdc_safetensors *sdc_safetensors_open_memory(const void *buf, size_t len, const char *label,
                                             sdc_err *err) {
    if (!buf && len) {
        sdc_err_set(err, SDC_ERR_ARG, "%s: NULL buffer", label ? label : "<memory>");
        return NULL;
    }
    return parse_buffer(buf, len, label, false, err);
}

sdc_safetensors *sdc_safetensors_open(const char *path, sdc_err *err) {
    if (!path) {
        sdc_err_set(err, SDC_ERR_ARG, "safetensors: NULL path");
        return NULL;
    }
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        sdc_err_set(err, SDC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        sdc_err_set(err, SDC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        sdc_err_set(err, SDC_ERR_IO, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: file too large to map", path);
        close(fd);
        return NULL;
    }
    /* mmap cannot map 0 bytes: short files fail here with the same message. */
    if (check_file_size(path, (uint64_t)sb.st_size, err)) {
        close(fd);
        return NULL;
    }
    size_t len = (size_t)sb.st_size;
    /* If the file is truncated while mapped, touching the lost pages raises
     * SIGBUS; checkpoints are assumed not to change under us. */
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    close(fd);
    if (map == MAP_FAILED) {
        sdc_err_set(err, SDC_ERR_IO, "%s: cannot mmap %zu bytes: %s", path, len, strerror(saved));
        return NULL;
    }
    return parse_buffer(map, len, path, true, err);
}

void sdc_safetensors_close(sdc_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free((char *)st->entries[i].name);
    free(st->entries);
    for (size_t i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    free(st->meta);
    if (st->mapped) munmap((void *)st->base, st->size);
    free(st->label);
    free(st);
}

const char *sdc_safetensors_path(const sdc_safetensors *st) { return st->label; }
bool sdc_safetensors_is_mapped(const sdc_safetensors *st) { return st->mapped; }
size_t sdc_safetensors_count(const sdc_safetensors *st) { return st->n; }

const sdc_st_entry *sdc_safetensors_entry(const sdc_safetensors *st, size_t i) {
    return i < st->n ? &st->entries[i] : NULL;
}

const sdc_st_entry *sdc_safetensors_find(const sdc_safetensors *st, const char *name) {
    sdc_st_entry key = {.name = name};
    /* bsearch wants a valid base even for zero elements (UBSan's nonnull). */
    if (!st->n) return NULL;
    return bsearch(&key, st->entries, st->n, sizeof *st->entries, cmp_entry_name);
}

const char *sdc_safetensors_meta(const sdc_safetensors *st, const char *key) {
    if (!st->n_meta) return NULL;
    char **hit = bsearch(&key, st->meta, st->n_meta, 2 * sizeof *st->meta, cmp_meta_key);
    return hit ? hit[1] : NULL;
}

size_t sdc_safetensors_meta_count(const sdc_safetensors *st) { return st->n_meta; }

bool sdc_safetensors_meta_at(const sdc_safetensors *st, size_t i, const char **key,
                             const char **value) {
    if (i >= st->n_meta) return false;
    if (key) *key = st->meta[2 * i];
    if (value) *value = st->meta[2 * i + 1];
    return true;
}

uint64_t sdc_st_entry_numel(const sdc_st_entry *e) {
    uint64_t n = 1;
    for (int i = 0; i < e->ndim; i++) n *= (uint64_t)e->shape[i]; /* checked at open */
    return n;
}

/* ---------------------------------------------------------------- read */

/* One element, widened without loss where possible: integers as int64,
 * floats as double. Loads go through memcpy since data may be unaligned. */
typedef struct { bool is_int; int64_t i; double d; } scalar;

static scalar load(const unsigned char *p, sdc_dtype t, size_t k) {
    scalar v = {.is_int = true};
    switch (t) {
    case SDC_I64: memcpy(&v.i, p + 8 * k, 8); break;
    case SDC_I32: { int32_t x; memcpy(&x, p + 4 * k, 4); v.i = x; break; }
    case SDC_I16: { int16_t x; memcpy(&x, p + 2 * k, 2); v.i = x; break; }
    case SDC_I8: v.i = (int8_t)p[k]; break;
    case SDC_U8: v.i = p[k]; break;
    case SDC_BOOL: v.i = p[k] != 0; break;
    case SDC_F64: v.is_int = false; memcpy(&v.d, p + 8 * k, 8); break;
    default: { float f; sdc_convert(&f, SDC_F32, p + sdc_dtype_size(t) * k, t, 1, NULL);
               v.is_int = false; v.d = f; }
    }
    return v;
}

/* Stores into an I32/I64 or float target; false when the value does not fit. */
static bool store(unsigned char *p, sdc_dtype t, size_t k, scalar v) {
    if (t == SDC_I32 || t == SDC_I64) {
        int64_t x;
        if (v.is_int) x = v.i;
        else if (isfinite(v.d) && v.d == floor(v.d) && v.d >= -9223372036854775808.0 &&
                 v.d < 9223372036854775808.0)
            x = (int64_t)v.d;
        else return false;
        if (t == SDC_I64) { memcpy(p + 8 * k, &x, 8); return true; }
        if (x < INT32_MIN || x > INT32_MAX) return false;
        int32_t y = (int32_t)x;
        memcpy(p + 4 * k, &y, 4);
        return true;
    }
    float f = v.is_int ? (float)v.i : (float)v.d;
    sdc_convert(p + sdc_dtype_size(t) * k, t, &f, SDC_F32, 1, NULL);
    return true;
}

static bool is_float(sdc_dtype t) { return t == SDC_F32 || t == SDC_F16 || t == SDC_BF16; }

sdc_status sdc_safetensors_read(const sdc_safetensors *st, const sdc_st_entry *e, void *dst,
                                sdc_dtype dst_t, sdc_err *err) {
    if (!st || !e || (unsigned)dst_t >= SDC_DTYPE_COUNT)
        return sdc_err_set(err, SDC_ERR_ARG, "safetensors read: invalid argument");
    size_t n = (size_t)sdc_st_entry_numel(e);
    if (n == 0) return SDC_OK;
    if (!dst) return fail(err, SDC_ERR_ARG, st->label, e->name, "NULL destination");
    if (e->dtype == dst_t) {
        memcpy(dst, e->data, n * sdc_dtype_size(dst_t));
        return SDC_OK;
    }
    if (is_float(e->dtype) && is_float(dst_t))
        return sdc_convert(dst, dst_t, e->data, e->dtype, n, err);
    if (!is_float(dst_t) && dst_t != SDC_I32 && dst_t != SDC_I64)
        return fail(err, SDC_ERR_UNSUPPORTED, st->label, e->name, "cannot read %s as %s",
                    sdc_dtype_name(e->dtype), sdc_dtype_name(dst_t));
    for (size_t k = 0; k < n; k++) {
        scalar v = load(e->data, e->dtype, k);
        if (!store(dst, dst_t, k, v)) {
            char num[40];
            if (v.is_int) snprintf(num, sizeof num, "%lld", (long long)v.i);
            else snprintf(num, sizeof num, "%g", v.d);
            return fail(err, SDC_ERR_FORMAT, st->label, e->name,
                        "element %zu (%s) is not a whole number that fits in %s", k, num,
                        sdc_dtype_name(dst_t));
        }
    }
    return SDC_OK;
}

sdc_tensor *sdc_safetensors_load(const sdc_safetensors *st, const char *name, sdc_dtype dtype,
                                 sdc_err *err) {
    const sdc_st_entry *e = sdc_safetensors_find(st, name);
    if (!e) {
        sdc_err_set(err, SDC_ERR_ARG, "%s: no tensor '%s'", sdc_safetensors_path(st), name);
        return NULL;
    }
    if (e->ndim > SDC_MAX_DIMS) {
        sdc_err_set(err, SDC_ERR_SHAPE, "%s: tensor '%s' has rank %d; at most %d is supported here",
                    sdc_safetensors_path(st), name, e->ndim, SDC_MAX_DIMS);
        return NULL;
    }
    sdc_tensor *t = sdc_tensor_new(dtype, e->ndim, e->shape, err);
    if (t && sdc_safetensors_read(st, e, t->data, dtype, err)) {
        sdc_tensor_free(t);
        return NULL;
    }
    return t;
}
