/* embcache.c — the pool embedding cache: meta, index recovery, durable
 * appends, the path table, and NPY/CSV interchange (see embcache.h). */
#include "embcache.h"

#include "../core/atomic_file.h"
#include "../image/image.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT "sdc-embed-cache"
#define INDEX_MAX ((size_t)8 << 30) /* index.jsonl read cap: ~50M entries */

static size_t row_bytes(int dim, sdc_dtype t) { return (size_t)dim * sdc_dtype_size(t); }

/* ---------------------------------------------------------------- entries and the path table */

static void entries_free(emb_cache *c) {
    for (int64_t i = 0; i < c->n; i++) free(c->entries[i].path);
    free(c->entries);
    free(c->dead);
    free(c->slots);
    free(c->sha_slots);
    c->entries = NULL;
    c->dead = NULL;
    c->slots = NULL;
    c->sha_slots = NULL;
    c->n = c->cap = c->n_slots = c->n_live = 0;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Records row i in the path table (an earlier row of the same path dies)
 * and in the content table (the latest row of each content). */
static void table_put(emb_cache *c, int64_t i) {
    uint64_t mask = (uint64_t)c->n_slots - 1;
    for (uint64_t h = fnv1a(c->entries[i].sha256) & mask;; h = (h + 1) & mask) {
        int64_t r = c->sha_slots[h];
        if (r < 0 || !strcmp(c->entries[r].sha256, c->entries[i].sha256)) {
            c->sha_slots[h] = i;
            break;
        }
    }
    for (uint64_t h = fnv1a(c->entries[i].path) & mask;; h = (h + 1) & mask) {
        int64_t r = c->slots[h];
        if (r < 0) {
            c->slots[h] = i;
            c->n_live++;
            return;
        }
        if (!strcmp(c->entries[r].path, c->entries[i].path)) {
            c->dead[r] = true;
            c->slots[h] = i;
            return;
        }
    }
}

static sdc_status table_build(emb_cache *c, int64_t want, sdc_err *err) {
    int64_t ns = 64;
    while (ns < 2 * want) ns *= 2;
    int64_t *s = malloc(sizeof *s * (size_t)ns), *h = malloc(sizeof *h * (size_t)ns);
    if (!s || !h) {
        free(s);
        free(h);
        return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", c->dir);
    }
    for (int64_t i = 0; i < ns; i++) s[i] = h[i] = -1;
    free(c->slots);
    free(c->sha_slots);
    c->slots = s;
    c->sha_slots = h;
    c->n_slots = ns;
    c->n_live = 0;
    for (int64_t i = 0; i < c->n; i++) c->dead[i] = false;
    for (int64_t i = 0; i < c->n; i++) table_put(c, i);
    return SDC_OK;
}

int64_t emb_cache_find(const emb_cache *c, const char *path) {
    if (!c->n_slots) return -1;
    uint64_t mask = (uint64_t)c->n_slots - 1;
    for (uint64_t h = fnv1a(path) & mask;; h = (h + 1) & mask) {
        int64_t r = c->slots[h];
        if (r < 0) return -1;
        if (!strcmp(c->entries[r].path, path)) return r;
    }
}

int64_t emb_cache_find_sha(const emb_cache *c, const char *sha256) {
    if (!c->n_slots) return -1;
    uint64_t mask = (uint64_t)c->n_slots - 1;
    for (uint64_t h = fnv1a(sha256) & mask;; h = (h + 1) & mask) {
        int64_t r = c->sha_slots[h];
        if (r < 0) return -1;
        if (!strcmp(c->entries[r].sha256, sha256)) return r;
    }
}

/* Room for n more entries. */
static sdc_status reserve(emb_cache *c, int64_t n, sdc_err *err) {
    if (c->n + n <= c->cap) return SDC_OK;
    int64_t cap = c->cap ? c->cap : 1024;
    while (cap < c->n + n) cap *= 2;
    emb_entry *e = realloc(c->entries, sizeof *e * (size_t)cap);
    if (e) c->entries = e;
    bool *d = e ? realloc(c->dead, sizeof *d * (size_t)cap) : NULL;
    if (d) c->dead = d;
    if (!e || !d) return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", c->dir);
    c->cap = cap;
    return SDC_OK;
}

/* ---------------------------------------------------------------- meta.json */

static bool is_hex64(const char *s) {
    if (!s || strlen(s) != 64) return false;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s)) return false;
    return true;
}

/* A path that stays under the root: relative, no empty, "." or ".." parts. */
static bool safe_rel_path(const char *p) {
    if (!p || !*p || *p == '/' || strlen(p) > 4000) return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20) return false;
        if (!e) break;
        s = e + 1;
    }
    return true;
}

static sdc_status meta_write(const char *dir, const emb_cache_meta *m, sdc_err *err) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    cJSON_AddStringToObject(j, "format", FORMAT);
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddNumberToObject(j, "dim", m->dim);
    cJSON_AddStringToObject(j, "dtype", sdc_dtype_name(m->dtype));
    cJSON_AddBoolToObject(j, "normalized", true);
    cJSON_AddStringToObject(j, "root", m->root);
    cJSON_AddStringToObject(j, "model", m->model ? m->model : "");
    cJSON_AddStringToObject(j, "model_sha256", m->model_sha256 ? m->model_sha256 : "");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    sdc_status s = sdc_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return s;
}

static sdc_status meta_read(emb_cache *c, sdc_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", c->dir);
    uint8_t *buf;
    size_t len;
    sdc_status s = sdc_read_file_capped(path, 1 << 20, &buf, &len, err);
    if (s) return s;
    cJSON *j = cJSON_ParseWithLength((char *)buf, len);
    free(buf);
    const char *fmt = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "format")) : NULL;
    const cJSON *dim = j ? cJSON_GetObjectItemCaseSensitive(j, "dim") : NULL;
    const char *dt = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "dtype")) : NULL;
    const char *root = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "root")) : NULL;
    const char *model = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model")) : NULL;
    const char *sha = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model_sha256")) : NULL;
    const cJSON *ver = j ? cJSON_GetObjectItemCaseSensitive(j, "version") : NULL;
    if (!fmt || strcmp(fmt, FORMAT) != 0) s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: not an sdc embedding cache", path);
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: unsupported cache version", path);
    else if (!cJSON_IsNumber(dim) || dim->valuedouble < 1 || dim->valuedouble > 65536 ||
             dim->valuedouble != (int)dim->valuedouble)
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"dim\" must be an integer in [1, 65536]", path);
    else if (!dt || (strcmp(dt, "F16") && strcmp(dt, "F32")))
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"dtype\" must be F16 or F32", path);
    else if (!root || root[0] != '/')
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"root\" must be an absolute path", path);
    else if (!model || !sha)
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"model\" / \"model_sha256\" missing", path);
    if (!s) {
        c->dim = (int)dim->valuedouble;
        c->dtype = strcmp(dt, "F16") ? SDC_F32 : SDC_F16;
        if (!(c->root = strdup(root)) || !(c->model = strdup(model)) || !(c->model_sha256 = strdup(sha)))
            s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    cJSON_Delete(j);
    return s;
}

/* ---------------------------------------------------------------- index.jsonl */

/* Parses index.jsonl. *good receives the byte length of the complete, valid
 * lines; a bad last line (torn) is left out of it, a bad earlier one is an error. */
static sdc_status index_parse(emb_cache *c, const char *path, size_t *good, bool *torn,
                              sdc_err *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    *good = 0;
    *torn = false;
    if (access(path, F_OK) != 0) return SDC_OK;
    sdc_status s = sdc_read_file_capped(path, INDEX_MAX, &buf, &len, err);
    if (s) return s;
    int64_t line_no = 0;
    for (size_t at = 0; !s && at < len;) {
        char *line = (char *)buf + at, *nl = memchr(line, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - line) : len - at;
        bool last = !nl || at + ll + 1 >= len;
        line_no++;
        line[ll] = '\0';
        cJSON *j = nl ? cJSON_ParseWithLength(line, ll) : NULL;
        const char *p = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "path")) : NULL;
        const char *sha = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "sha256")) : NULL;
        const cJSON *by = j ? cJSON_GetObjectItemCaseSensitive(j, "bytes") : NULL;
        const char *mt = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "mtime_ns")) : NULL;
        char *end = NULL;
        long long mtime = mt ? strtoll(mt, &end, 10) : 0;
        bool ok = p && safe_rel_path(p) && is_hex64(sha) &&
                  cJSON_IsNumber(by) && by->valuedouble >= 0 && by->valuedouble < 9e15 &&
                  (!mt || (*mt && end && !*end));
        if (!ok) {
            cJSON_Delete(j);
            if (last) { *torn = true; break; }
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: line %" PRId64 " is not an index entry "
                            "(corrupt)", path, line_no);
            break;
        }
        if ((s = reserve(c, 1, err))) { cJSON_Delete(j); break; }
        emb_entry *e = &c->entries[c->n];
        memset(e, 0, sizeof *e);
        if (!(e->path = strdup(p))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        memcpy(e->sha256, sha, 65);
        e->bytes = (int64_t)by->valuedouble;
        e->mtime_ns = mtime;
        cJSON_Delete(j);
        if (s) break;
        c->dead[c->n] = false;
        c->n++;
        at += ll + 1;
        *good = at;
    }
    free(buf);
    return s;
}

/* ---------------------------------------------------------------- open / close */

static void cache_init(emb_cache *c) {
    memset(c, 0, sizeof *c);
    c->lock_fd = c->emb_fd = c->idx_fd = -1;
}

void emb_cache_close(emb_cache *c) {
    if (c->map) munmap((void *)c->map, c->map_len);
    if (c->emb_fd >= 0) close(c->emb_fd);
    if (c->idx_fd >= 0) close(c->idx_fd);
    if (c->lock_fd >= 0) close(c->lock_fd);
    entries_free(c);
    free(c->dir);
    free(c->root);
    free(c->model);
    free(c->model_sha256);
    cache_init(c);
}

static sdc_status lock_dir(emb_cache *c, sdc_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/.lock", c->dir);
    int fd = sdc_lock_file(path, false);
    if (fd == -1) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot create lock: %s", path, strerror(errno));
    if (fd == -2)
        return sdc_err_set(err, SDC_ERR_IO, "%s: %s", c->dir,
                           errno == EWOULDBLOCK ? "another sdc embed is writing to this cache" : strerror(errno));
    c->lock_fd = fd;
    return SDC_OK;
}

sdc_status emb_cache_open_writer(const char *dir, const emb_cache_meta *want, emb_cache *c,
                                 sdc_err *err) {
    cache_init(c);
    if (want->dim < 1 || want->dim > 65536 ||
        (want->dtype != SDC_F16 && want->dtype != SDC_F32 && want->dtype != SDC_DTYPE_COUNT) ||
        !want->root || want->root[0] != '/')
        return sdc_err_set(err, SDC_ERR_ARG, "%s: bad cache parameters", dir);
    if (!(c->dir = strdup(dir))) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    sdc_status s = SDC_OK;
    char mpath[4096], ipath[4096], epath[4096];
    snprintf(mpath, sizeof mpath, "%s/meta.json", dir);
    snprintf(ipath, sizeof ipath, "%s/index.jsonl", dir);
    snprintf(epath, sizeof epath, "%s/embeddings.bin", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    struct stat sb;
    if (!s && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: not a folder", dir);
    if (!s) s = lock_dir(c, err);
    if (!s && access(mpath, F_OK) != 0) {
        if (access(ipath, F_OK) == 0 || access(epath, F_OK) == 0)
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: holds index/embeddings but no meta.json "
                            "(not a complete sdc cache)", dir);
        else {
            emb_cache_meta m = *want;
            if (m.dtype == SDC_DTYPE_COUNT) m.dtype = SDC_F16;
            s = meta_write(dir, &m, err);
        }
    }
    if (!s) s = meta_read(c, err);
    if (!s && c->dim != want->dim)
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: the cache holds %d-d embeddings, this model gives "
                        "%d-d", dir, c->dim, want->dim);
    if (!s && want->dtype != SDC_DTYPE_COUNT && c->dtype != want->dtype)
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: the cache stores %s; rerun with --dtype %s",
                        dir, sdc_dtype_name(c->dtype), c->dtype == SDC_F16 ? "f16" : "f32");
    if (!s && strcmp(c->root, want->root))
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: the cache was built from %s, not %s (use the same "
                        "--images, or a new cache)", dir, c->root, want->root);
    if (!s && want->model_sha256 && strcmp(c->model_sha256, want->model_sha256))
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: the cache holds embeddings of another model (%s, "
                        "sha256 %.12s...); this one has sha256 %.12s...", dir, c->model,
                        c->model_sha256, want->model_sha256);
    size_t good = 0;
    if (!s) s = index_parse(c, ipath, &good, &c->recovered_tail, err);
    if (!s && (c->idx_fd = open(ipath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", ipath, strerror(errno));
    if (!s && c->recovered_tail && (ftruncate(c->idx_fd, (off_t)good) != 0 || fsync(c->idx_fd) != 0))
        s = sdc_err_set(err, SDC_ERR_IO, "%s: cannot cut the torn last line: %s", ipath, strerror(errno));
    if (!s && (c->emb_fd = open(epath, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", epath, strerror(errno));
    if (!s && fstat(c->emb_fd, &sb) != 0) s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", epath, strerror(errno));
    size_t rb = row_bytes(c->dim, c->dtype);
    if (!s && (uint64_t)sb.st_size < (uint64_t)c->n * rb)
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: holds %lld rows but index.jsonl lists %lld "
                        "(damaged; rebuild the cache)", epath, (long long)(sb.st_size / (off_t)rb),
                        (long long)c->n);
    if (!s && (uint64_t)sb.st_size > (uint64_t)c->n * rb) {
        c->recovered_rows = (int64_t)(((uint64_t)sb.st_size - (uint64_t)c->n * rb + rb - 1) / rb);
        if (ftruncate(c->emb_fd, (off_t)(c->n * rb)) != 0 || fsync(c->emb_fd) != 0)
            s = sdc_err_set(err, SDC_ERR_IO, "%s: cannot truncate to the index: %s", epath, strerror(errno));
    }
    if (!s) s = table_build(c, c->n + 1024, err);
    if (s) emb_cache_close(c);
    return s;
}

sdc_status emb_cache_open_reader(const char *dir, emb_cache *c, sdc_err *err) {
    cache_init(c);
    if (!(c->dir = strdup(dir))) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    char ipath[4096], epath[4096];
    snprintf(ipath, sizeof ipath, "%s/index.jsonl", dir);
    snprintf(epath, sizeof epath, "%s/embeddings.bin", dir);
    struct stat sb;
    sdc_status s = SDC_OK;
    if (stat(dir, &sb) != 0) s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", dir, strerror(errno));
    else if (!S_ISDIR(sb.st_mode)) s = sdc_err_set(err, SDC_ERR_ARG, "%s: not an embedding cache folder", dir);
    if (!s) s = meta_read(c, err);
    size_t good;
    bool torn;
    if (!s) s = index_parse(c, ipath, &good, &torn, err);
    size_t rb = row_bytes(c->dim, c->dtype);
    int fd = -1;
    if (!s && c->n > 0) {
        if ((fd = open(epath, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0)
            s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", epath, strerror(errno));
        else if ((uint64_t)sb.st_size < (uint64_t)c->n * rb)
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: holds fewer rows than index.jsonl lists "
                            "(damaged)", epath);
        if (!s) {
            c->map_len = (size_t)c->n * rb;
            void *m = mmap(NULL, c->map_len, PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) s = sdc_err_set(err, SDC_ERR_IO, "%s: mmap: %s", epath, strerror(errno));
            else c->map = m;
        }
    }
    if (fd >= 0) close(fd);
    if (!s) s = table_build(c, c->n, err);
    if (s) emb_cache_close(c);
    return s;
}

/* ---------------------------------------------------------------- appends */

static sdc_status write_all(int fd, const void *buf, size_t n, const char *what, sdc_err *err) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return sdc_err_set(err, SDC_ERR_IO, "%s: write failed: %s", what,
                               w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return SDC_OK;
}

static char *index_line(const emb_entry *e) {
    cJSON *j = cJSON_CreateObject();
    char mt[32];
    snprintf(mt, sizeof mt, "%lld", (long long)e->mtime_ns);
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "path", e->path);
    cJSON_AddStringToObject(j, "sha256", e->sha256);
    cJSON_AddNumberToObject(j, "bytes", (double)e->bytes);
    cJSON_AddStringToObject(j, "mtime_ns", mt);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

sdc_status emb_cache_append(emb_cache *c, const float *rows, const emb_entry *e, int n,
                            sdc_err *err) {
    if (c->emb_fd < 0 || c->idx_fd < 0)
        return sdc_err_set(err, SDC_ERR_ARG, "%s: not open for writing", c->dir);
    if (n <= 0) return SDC_OK;
    for (int i = 0; i < n; i++)
        if (!safe_rel_path(e[i].path) || !is_hex64(e[i].sha256))
            return sdc_err_set(err, SDC_ERR_ARG, "%s: bad entry '%s'", c->dir, e[i].path);
    size_t rb = row_bytes(c->dim, c->dtype);
    char epath[4096], ipath[4096];
    snprintf(epath, sizeof epath, "%s/embeddings.bin", c->dir);
    snprintf(ipath, sizeof ipath, "%s/index.jsonl", c->dir);
    void *buf = malloc(rb * (size_t)n);
    char **lines = calloc((size_t)n, sizeof *lines);
    size_t total = 0;
    sdc_status s = buf && lines ? reserve(c, n, err) : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s) s = sdc_convert(buf, c->dtype, rows, SDC_F32, (size_t)n * c->dim, err);
    for (int i = 0; !s && i < n; i++) {
        if (!(lines[i] = index_line(&e[i]))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        else total += strlen(lines[i]) + 1;
    }
    char *text = s ? NULL : malloc(total + 1);
    if (!s && !text) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int i = 0, at = 0; !s && i < n; i++) {
        size_t l = strlen(lines[i]);
        memcpy(text + at, lines[i], l);
        text[at + l] = '\n';
        at += (int)l + 1;
    }
    /* Rows first, durable; then the index lines that make them count. */
    off_t emb_size = (off_t)((size_t)c->n * rb);
    bool rows_written = false;
    if (!s && !(s = write_all(c->emb_fd, buf, rb * (size_t)n, epath, err))) {
        rows_written = true;
        if (fsync(c->emb_fd) != 0) s = sdc_err_set(err, SDC_ERR_IO, "%s: fsync failed: %s", epath, strerror(errno));
    }
    struct stat sb;
    off_t idx_size = !s && fstat(c->idx_fd, &sb) == 0 ? sb.st_size : -1;
    if (!s && idx_size < 0) s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", ipath, strerror(errno));
    if (!s && !(s = write_all(c->idx_fd, text, total, ipath, err)) && fsync(c->idx_fd) != 0)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: fsync failed: %s", ipath, strerror(errno));
    if (s && rows_written) {
        /* Undo, so the next append does not land after a partial batch (a
         * failed undo is repaired on the next open, as after a crash). */
        if (idx_size >= 0 && ftruncate(c->idx_fd, idx_size) == 0) (void)fsync(c->idx_fd);
        if (ftruncate(c->emb_fd, emb_size) == 0) (void)fsync(c->emb_fd);
    }
    for (int i = 0; !s && i < n; i++) {
        emb_entry *d = &c->entries[c->n];
        *d = e[i];
        if (!(d->path = strdup(e[i].path))) {
            s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
            break;
        }
        c->dead[c->n] = false;
        c->n++;
        if (2 * c->n > c->n_slots) s = table_build(c, 2 * c->n, err);
        else table_put(c, c->n - 1);
    }
    for (int i = 0; lines && i < n; i++) free(lines[i]);
    free(lines);
    free(text);
    free(buf);
    return s;
}

sdc_status emb_cache_row(const emb_cache *c, int64_t i, float *out, sdc_err *err) {
    if (i < 0 || i >= c->n) return sdc_err_set(err, SDC_ERR_ARG, "%s: row %lld out of range", c->dir, (long long)i);
    size_t rb = row_bytes(c->dim, c->dtype);
    if (c->map) return sdc_convert(out, SDC_F32, (const char *)c->map + (size_t)i * rb, c->dtype, (size_t)c->dim, err);
    uint8_t *tmp = malloc(rb);
    ssize_t r = tmp && c->emb_fd >= 0 ? pread(c->emb_fd, tmp, rb, (off_t)((size_t)i * rb)) : -1;
    sdc_status s = r == (ssize_t)rb ? sdc_convert(out, SDC_F32, tmp, c->dtype, (size_t)c->dim, err)
                                    : sdc_err_set(err, SDC_ERR_IO, "%s: cannot read row %lld",
                                                  c->dir, (long long)i);
    free(tmp);
    return s;
}

/* ---------------------------------------------------------------- .npy */

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static size_t npy_header(char *hdr, size_t cap, const char *descr, int64_t rows, int64_t cols) {
    char dict[200];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     descr, (long long)rows, (long long)cols);
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    if (10 + hlen > cap) return 0;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)(hlen & 0xff);
    hdr[9] = (char)(hlen >> 8);
    memcpy(hdr + 10, dict, (size_t)n);
    memset(hdr + 10 + n, ' ', pad);
    hdr[10 + hlen - 1] = '\n';
    return 10 + hlen;
}

sdc_status emb_cache_export_npy(const emb_cache *c, const char *npy, const char *list,
                                sdc_dtype dtype, int64_t *n_out, sdc_err *err) {
    if (dtype != SDC_F16 && dtype != SDC_F32) return sdc_err_set(err, SDC_ERR_ARG, "npy: dtype must be F16 or F32");
    char hdr[256];
    size_t hl = npy_header(hdr, sizeof hdr, dtype == SDC_F16 ? "<f2" : "<f4", c->n_live, c->dim);
    sdc_atomic_file *f = sdc_atomic_open(npy, err);
    if (!f) return err->code;
    sdc_status s = sdc_atomic_write(f, hdr, hl, err);
    size_t orb = row_bytes(c->dim, dtype);
    enum { CHUNK = 1024 };
    float *row = malloc(sizeof *row * (size_t)c->dim);
    uint8_t *out = malloc(orb * CHUNK);
    if (!s && (!row || !out)) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    int k = 0;
    for (int64_t i = 0; !s && i < c->n; i++) {
        if (c->dead[i]) continue;
        if (!(s = emb_cache_row(c, i, row, err)))
            s = sdc_convert(out + (size_t)k * orb, dtype, row, SDC_F32, (size_t)c->dim, err);
        if (!s && ++k == CHUNK) {
            s = sdc_atomic_write(f, out, orb * (size_t)k, err);
            k = 0;
        }
    }
    if (!s && k) s = sdc_atomic_write(f, out, orb * (size_t)k, err);
    free(row);
    free(out);
    if (s) { sdc_atomic_abort(f); return s; }
    if ((s = sdc_atomic_commit(f, err))) return s;
    /* The list, built in memory (paths are short; 1M entries ~ 150 MB). */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    size_t ll = strlen(list);
    bool csv = ll >= 4 && !strcasecmp(list + ll - 4, ".csv");
    if (csv) fputs("row,path,sha256,bytes\n", m);
    int64_t r = 0;
    for (int64_t i = 0; i < c->n; i++) {
        if (c->dead[i]) continue;
        if (csv) {
            fprintf(m, "%lld,", (long long)r);
            csv_field(m, c->entries[i].path);
            fprintf(m, ",%s,%lld\n", c->entries[i].sha256, (long long)c->entries[i].bytes);
        } else {
            fprintf(m, "%s\n", c->entries[i].path);
        }
        r++;
    }
    if (fclose(m) != 0) { free(text); return sdc_err_set(err, SDC_ERR_OOM, "out of memory"); }
    s = sdc_write_file_atomic(list, text, len, err);
    free(text);
    if (!s && n_out) *n_out = r;
    return s;
}

void emb_npy_close(emb_npy *a) {
    if (a->map) munmap(a->map, a->map_len);
    memset(a, 0, sizeof *a);
}

/* The value text after 'key': in an NPY header dict, or NULL. */
static const char *dict_value(const char *h, const char *key) {
    char k[32];
    snprintf(k, sizeof k, "'%s'", key);
    const char *p = strstr(h, k);
    if (!p) return NULL;
    p += strlen(k);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

sdc_status emb_npy_open(const char *path, emb_npy *a, sdc_err *err) {
    memset(a, 0, sizeof *a);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        sdc_status s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return s;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size < 12) {
        close(fd);
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: not an NPY file (too short)", path);
    }
    a->map_len = (size_t)sb.st_size;
    a->map = mmap(NULL, a->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (a->map == MAP_FAILED) {
        a->map = NULL;
        return sdc_err_set(err, SDC_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    }
    const uint8_t *b = a->map;
    sdc_status s = SDC_OK;
    size_t off = 0, hlen = 0;
    if (memcmp(b, "\x93NUMPY", 6) != 0) s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: not an NPY file (no \\x93NUMPY magic)", path);
    else if (b[6] == 1) { hlen = (size_t)b[8] | (size_t)b[9] << 8; off = 10; }
    else if (b[6] == 2 || b[6] == 3) { hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24; off = 12; }
    else s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: NPY version %d is not supported", path, b[6]);
    char hdr[4096];
    if (!s && (hlen >= sizeof hdr || off + hlen > a->map_len))
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: NPY header length %zu is bad", path, hlen);
    if (!s) {
        memcpy(hdr, b + off, hlen);
        hdr[hlen] = '\0';
        const char *d = dict_value(hdr, "descr"), *fo = dict_value(hdr, "fortran_order"),
                   *sh = dict_value(hdr, "shape");
        long long r = -1, cc = -1;
        char extra = 0;
        if (!d || !fo || !sh) s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: NPY header lacks descr/fortran_order/shape", path);
        else if (!strncmp(d, "'<f4'", 5)) a->dtype = SDC_F32;
        else if (!strncmp(d, "'<f2'", 5)) a->dtype = SDC_F16;
        else if (!strncmp(d, "'<f8'", 5)) a->dtype = SDC_F64;
        else s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: NPY dtype %.8s is not little-endian "
                             "float16/32/64", path, d);
        if (!s && strncmp(fo, "False", 5) != 0)
            s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: Fortran-order NPY arrays are not supported", path);
        if (!s && (sscanf(sh, "(%lld, %lld%c", &r, &cc, &extra) != 3 || extra != ')' || r < 0 || cc < 1 || cc > 65536))
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: NPY shape must be 2-D (rows, dim) (got %.40s)", path, sh);
        if (!s) {
            size_t es = sdc_dtype_size(a->dtype), data = a->map_len - off - hlen;
            if ((unsigned long long)r > data / ((size_t)cc * es) || (size_t)r * (size_t)cc * es != data)
                s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: NPY data holds %zu bytes, the header says "
                                "%lld x %lld x %zu", path, data, r, cc, es);
            a->rows = r;
            a->cols = cc;
            a->data = b + off + hlen;
        }
    }
    if (s) emb_npy_close(a);
    return s;
}

void emb_npy_row(const emb_npy *a, int64_t i, float *out) {
    const uint8_t *p = (const uint8_t *)a->data + (size_t)i * (size_t)a->cols * sdc_dtype_size(a->dtype);
    if (a->dtype == SDC_F64) {
        for (int64_t k = 0; k < a->cols; k++) {
            double v;
            memcpy(&v, p + 8 * k, 8);
            out[k] = (float)v;
        }
    } else {
        sdc_convert(out, SDC_F32, p, a->dtype, (size_t)a->cols, NULL);
    }
}

/* Splits one CSV record at *pos (RFC 4180: quotes, doubled quotes, CRLF).
 * Fields go into f[0..cap); returns the count, or -1 on a bad quote. */
static int csv_record(char *buf, size_t len, size_t *pos, char **f, int cap) {
    int n = 0;
    size_t i = *pos;
    for (;;) {
        char *out = buf + i, *w = out;
        if (i < len && buf[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) return -1;
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') { *w++ = '"'; i += 2; continue; }
                    i++;
                    break;
                }
                *w++ = buf[i++];
            }
            if (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') return -1;
        } else {
            while (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') *w++ = buf[i++];
        }
        char sep = i < len ? buf[i] : '\n';
        *w = '\0';
        if (n < cap) f[n] = out;
        n++;
        i++;
        if (sep == '\r' && i < len && buf[i] == '\n') i++;
        if (sep != ',') break;
    }
    *pos = i;
    return n;
}

sdc_status emb_read_list(const char *path, char ***paths, char ***shas, int64_t *n, sdc_err *err) {
    *paths = *shas = NULL;
    *n = 0;
    uint8_t *buf;
    size_t len;
    sdc_status s = sdc_read_file_capped(path, INDEX_MAX, &buf, &len, err);
    if (s) return s;
    size_t pl = strlen(path);
    bool csv = pl >= 4 && !strcasecmp(path + pl - 4, ".csv");
    int64_t cap = 0, line = 0;
    int pcol = 0, scol = -1;
    size_t pos = 0;
    char *f[64];
    if (csv) {
        int k = csv_record((char *)buf, len, &pos, f, 64);
        pcol = -1;
        for (int i = 0; i < k && i < 64; i++) {
            if (!strcmp(f[i], "path")) pcol = i;
            if (!strcmp(f[i], "sha256")) scol = i;
        }
        line = 1;
        if (pcol < 0) s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: the CSV header has no \"path\" column", path);
    }
    while (!s && pos < len) {
        line++;
        char *p = NULL, *h = NULL;
        if (csv) {
            int k = csv_record((char *)buf, len, &pos, f, 64);
            if (k < 0 || k <= pcol || (scol >= 0 && k <= scol)) {
                s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: line %lld: malformed CSV record", path, (long long)line);
                break;
            }
            p = f[pcol];
            h = scol >= 0 ? f[scol] : NULL;
        } else {
            char *l = (char *)buf + pos, *nl = memchr(l, '\n', len - pos);
            size_t ll = nl ? (size_t)(nl - l) : len - pos;
            pos += ll + 1;
            if (ll && l[ll - 1] == '\r') ll--;
            l[ll] = '\0';
            p = l;
        }
        if (!*p && pos >= len) break; /* a final empty line */
        if (!safe_rel_path(p)) {
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: line %lld: '%s' is not a relative path under "
                            "the image folder", path, (long long)line, p);
            break;
        }
        if (h && *h && !is_hex64(h)) {
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: line %lld: sha256 '%s' is not 64 lowercase hex "
                            "digits", path, (long long)line, h);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **np = realloc(*paths, sizeof *np * (size_t)cap);
            if (np) *paths = np;
            char **ns = np ? realloc(*shas, sizeof *ns * (size_t)cap) : NULL;
            if (ns) *shas = ns;
            if (!np || !ns) { s = sdc_err_set(err, SDC_ERR_OOM, "out of memory"); break; }
        }
        (*paths)[*n] = strdup(p);
        (*shas)[*n] = h && *h ? strdup(h) : NULL;
        if (!(*paths)[*n]) { s = sdc_err_set(err, SDC_ERR_OOM, "out of memory"); break; }
        (*n)++;
    }
    free(buf);
    if (s) {
        for (int64_t i = 0; i < *n; i++) { free((*paths)[i]); free((*shas)[i]); }
        free(*paths);
        free(*shas);
        *paths = *shas = NULL;
        *n = 0;
    }
    return s;
}
