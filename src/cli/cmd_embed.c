/* cmd_embed.c — sdc embed: CLIP image embeddings of a folder of images into
 * a resumable, appendable pool cache (src/augment/embcache.h), and NPY
 * export/import of such a cache for faiss, autofaiss or numpy. */
#include "cli.h"
#include "progress.h"

#include "../augment/embcache.h"
#include "../core/sha256.h"
#include "../image/clip_preprocess.h"
#include "../models/clip_model.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const cli_spec spec = {
    "embed", "--model M --images DIR --out CACHE [--batch 8] [--dtype f16|f32] [-q]\n"
    "       sdc embed --export-npy FILE.npy --pool CACHE [--files LIST.csv|LIST.txt] [--dtype f16|f32]\n"
    "       sdc embed --import-npy FILE.npy --files LIST.csv|LIST.txt --images DIR --model M\n"
    "                 --out CACHE [--dtype f16|f32] [-q]",
    "Embeds every .png/.jpg/.jpeg under DIR (recursively; hidden entries and symlinked\n"
    "folders are skipped) with the CLIP model M (a transformers CLIPModel folder or one\n"
    ".safetensors; --clip is an alias of --model) into CACHE: L2-normalized image\n"
    "embeddings (F16 by default) plus the file list with SHA-256 content hashes; the\n"
    "cache records M's absolute path. Rerunning embeds only new or changed files (a file\n"
    "whose content is already in the cache reuses its row); a killed run loses at most\n"
    "its unfinished batch. One writer per cache (a lock). Unreadable images are reported\n"
    "and skipped (exit 1 at the end; a rerun retries them).",
    "--export-npy writes the cache's current rows as an NPY [N, dim] array and the file\n"
    "list (--files, default F.csv: row,path,sha256,bytes; a .txt name gets one path per\n"
    "line); paths are relative to the image folder. --import-npy appends rows made\n"
    "elsewhere (normalized on the way in) with their files (a CSV needs a \"path\"\n"
    "column; \"sha256\" is optional and computed when absent); every file must exist\n"
    "under --images, and M names the model the vectors came from."};

typedef struct {
    const char *clip, *images, *out, *pool, *export_npy, *import_npy, *files, *dtype, *backend;
    long long batch, threads;
    bool quiet, json;
    char clip_abs[4096]; /* the model's absolute path, as the cache records it */
} embed_args;

/* ---------------------------------------------------------------- scanning */

typedef struct {
    char **v;
    size_t n, cap;
    int skipped;
} name_list;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_image_name(const char *n) {
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* a + "/" + b into out (PATH_MAX); false when it does not fit. */
static bool join(char *out, const char *a, const char *b) {
    int n = snprintf(out, PATH_MAX, "%s%s%s", a, *a && *b ? "/" : "", b);
    return n >= 0 && n < PATH_MAX;
}

/* Image files under root/rel (relative names), skipping hidden entries and
 * the folder `avoid` (the cache itself, when it lives inside DIR). */
static sdc_status scan(const char *root, const char *rel, const char *avoid, int depth,
                       name_list *out, sdc_err *err) {
    char dir[PATH_MAX];
    if (!join(dir, root, rel)) return sdc_err_set(err, SDC_ERR_ARG, "%s/%s: path too long", root, rel);
    if (depth > 64) return sdc_err_set(err, SDC_ERR_ARG, "%s: folders nested too deep", dir);
    DIR *dp = opendir(dir);
    if (!dp) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    sdc_status s = SDC_OK;
    struct dirent *e;
    while (!s && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue; /* hidden, ".", ".." */
        char path[PATH_MAX], sub[PATH_MAX];
        struct stat st, lst;
        if (!join(path, dir, e->d_name) || !join(sub, rel, e->d_name) || lstat(path, &lst) != 0 ||
            stat(path, &st) != 0) {
            out->skipped++;
            continue;
        }
        if (S_ISDIR(st.st_mode) && S_ISLNK(lst.st_mode)) { /* not followed: no loops */
            out->skipped++;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            char real[PATH_MAX];
            if (avoid && realpath(path, real) && !strcmp(real, avoid)) continue;
            s = scan(root, sub, avoid, depth + 1, out, err);
            continue;
        }
        if (!S_ISREG(st.st_mode) || !is_image_name(e->d_name)) { out->skipped++; continue; }
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 256;
            char **v = realloc(out->v, sizeof *v * out->cap);
            if (!v) { s = sdc_err_set(err, SDC_ERR_OOM, "out of memory"); break; }
            out->v = v;
        }
        if (!(out->v[out->n] = strdup(sub))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        else out->n++;
    }
    closedir(dp);
    return s;
}

static void names_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void hex(const uint8_t d[32], char out[65]) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---------------------------------------------------------------- embedding */

typedef struct {
    embed_args a;
    sdc_clip_model *m;
    sdc_backend *be;
    sdc_arena *arena;
    emb_cache cache;
    int P, S;
    /* The pending batch: entries (with rows) waiting to be appended; those
     * that need the model have their pixels in px at slot[i] >= 0. */
    emb_entry *pend;
    float *rows, *px;
    int *slot;
    int n_pend, n_px, cap_pend;
    long long n_new, n_reused, n_failed;
} embed_run;

static sdc_status flush(embed_run *r, sdc_err *err) {
    if (!r->n_pend) return SDC_OK;
    sdc_status s = SDC_OK;
    float *emb = r->n_px ? malloc(sizeof *emb * (size_t)r->n_px * r->P) : NULL;
    if (r->n_px && !emb) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (r->n_px) {
        sdc_exec ex = sdc_exec_begin(r->be, r->arena, err);
        s = sdc_clip_encode_image(&ex, r->m, r->px, r->n_px, true, emb, NULL);
    }
    if (s == SDC_ERR_NUMERIC) {
        /* One bad image spoils the batch: redo them one at a time and drop
         * the entries of the images that fail. */
        s = SDC_OK;
        size_t plane = (size_t)3 * r->S * r->S;
        for (int j = 0; j < r->n_px && !s; j++) {
            sdc_err e1 = {0};
            sdc_exec ex = sdc_exec_begin(r->be, r->arena, &e1);
            sdc_status one = sdc_clip_encode_image(&ex, r->m, r->px + plane * j, 1, true,
                                                   emb + (size_t)j * r->P, NULL);
            if (one != SDC_ERR_NUMERIC) {
                if (one) { *err = e1; s = one; }
                continue;
            }
            for (int i = 0; i < r->n_pend; i++)
                if (r->slot[i] == j) {
                    fprintf(stderr, "\nsdc embed: %s: %s\n", r->pend[i].path, e1.msg);
                    r->n_failed++;
                    r->slot[i] = -2;
                }
        }
    }
    /* Model rows into place, dropped entries out, then one durable append. */
    int k = r->n_pend;
    if (!s) {
        k = 0;
        for (int i = 0; i < r->n_pend; i++) {
            if (r->slot[i] == -2) { free(r->pend[i].path); continue; }
            const float *src = r->slot[i] >= 0 ? emb + (size_t)r->slot[i] * r->P : r->rows + (size_t)i * r->P;
            memmove(r->rows + (size_t)k * r->P, src, sizeof *r->rows * r->P);
            r->pend[k++] = r->pend[i];
        }
        s = emb_cache_append(&r->cache, r->rows, r->pend, k, err);
    }
    free(emb);
    for (int i = 0; i < k; i++) free(r->pend[i].path);
    r->n_pend = r->n_px = 0;
    return s;
}

/* Queues one file. Content already in the cache (or earlier in this batch)
 * reuses that row; anything else is decoded and preprocessed for the next
 * model call. An unreadable file is reported and counted, not fatal. */
static sdc_status queue_file(embed_run *r, const char *rel, const struct stat *st, sdc_err *err) {
    char path[PATH_MAX];
    if (!join(path, r->cache.root, rel)) return sdc_err_set(err, SDC_ERR_ARG, "%s: path too long", rel);
    uint8_t *buf = NULL;
    size_t len = 0;
    sdc_err ie = {0};
    emb_entry e = {.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec};
    sdc_status is = sdc_read_file_capped(path, SDC_IMAGE_MAX_FILE_BYTES, &buf, &len, &ie);
    if (!is) {
        sdc_sha256 h;
        uint8_t d[32];
        sdc_sha256_init(&h);
        sdc_sha256_update(&h, buf, len);
        sdc_sha256_final(&h, d);
        hex(d, e.sha256);
        e.bytes = (int64_t)len;
    }
    int64_t cached = is ? -1 : emb_cache_find_sha(&r->cache, e.sha256);
    int shared = -1; /* a pending entry with the same content */
    for (int i = 0; !is && cached < 0 && i < r->n_pend && shared < 0; i++)
        if (!strcmp(r->pend[i].sha256, e.sha256)) shared = i;
    float *px = r->px + (size_t)r->n_px * 3 * r->S * r->S;
    if (!is && cached < 0 && shared < 0) {
        sdc_image im;
        if (!(is = sdc_image_decode(buf, len, path, NULL, &im, &ie))) {
            is = sdc_clip_preprocess(&im, r->m->cfg.resize, r->S, r->m->cfg.mean, r->m->cfg.std,
                                     NULL, px, &ie);
            sdc_image_free(&im);
        }
    }
    free(buf);
    if (is) {
        if (!r->a.quiet) fprintf(stderr, "\nsdc embed: skipped %s\n", ie.msg);
        r->n_failed++;
        return SDC_OK;
    }
    int i = r->n_pend;
    r->pend[i] = e;
    if (!(r->pend[i].path = strdup(rel))) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    r->n_pend++;
    if (cached >= 0) {
        r->slot[i] = -1;
        if (emb_cache_row(&r->cache, cached, r->rows + (size_t)i * r->P, err)) return err->code;
        r->n_reused++;
    } else if (shared >= 0) {
        r->slot[i] = r->slot[shared];
        if (r->slot[i] < 0) memcpy(r->rows + (size_t)i * r->P, r->rows + (size_t)shared * r->P, sizeof *r->rows * r->P);
        r->n_reused++;
    } else {
        r->slot[i] = r->n_px++;
        r->n_new++;
    }
    if (r->n_px == r->a.batch || r->n_pend == r->cap_pend) return flush(r, err);
    return SDC_OK;
}

static sdc_status model_and_hash(const char *clip, sdc_backend *be, sdc_clip_model **m,
                                 char sha[65], sdc_err *err) {
    if (!(*m = sdc_clip_model_open(clip, be, err))) return err->code;
    sdc_status s = sdc_sha256_file((*m)->weights, sha, err);
    return s;
}

static int run_embed(const embed_args *a) {
    sdc_err err = {0};
    embed_run r = {.a = *a};
    char root[PATH_MAX], sha[65] = "", avoid[PATH_MAX];
    name_list names = {0};
    sdc_status s = SDC_OK;
    if (!realpath(a->images, root)) s = sdc_err_set(&err, SDC_ERR_IO, "%s: %s", a->images, strerror(errno));
    if (!s && !(r.be = cli_backend_create("embed", a->backend, a->quiet, &err))) s = err.code;
    if (!s && !(r.arena = sdc_arena_create(r.be, 0, &err))) s = err.code;
    if (!s) s = model_and_hash(a->clip, r.be, &r.m, sha, &err);
    if (!s) {
        r.P = r.m->cfg.proj;
        r.S = r.m->cfg.vision.image_size;
        emb_cache_meta want = {.dim = r.P, .dtype = !a->dtype ? SDC_DTYPE_COUNT
                                                   : !strcmp(a->dtype, "f32") ? SDC_F32 : SDC_F16,
                               .root = root, .model = a->clip_abs, .model_sha256 = sha};
        s = emb_cache_open_writer(a->out, &want, &r.cache, &err);
    }
    if (!s && (r.cache.recovered_rows || r.cache.recovered_tail) && !a->quiet)
        fprintf(stderr, "sdc embed: %s: recovered from an interrupted run (%lld unindexed rows "
                "and %s torn index line dropped)\n", a->out, (long long)r.cache.recovered_rows,
                r.cache.recovered_tail ? "a" : "no");
    if (!s) s = scan(root, "", realpath(a->out, avoid) ? avoid : NULL, 0, &names, &err);
    if (!s && names.n) qsort(names.v, names.n, sizeof *names.v, cmp_str);
    /* What needs work: new paths, or paths whose size or mtime changed. */
    char *todo = names.n ? calloc(names.n, 1) : NULL;
    struct stat *sts = names.n ? calloc(names.n, sizeof *sts) : NULL;
    long long n_todo = 0, n_same = 0;
    if (!s && names.n && (!todo || !sts)) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    for (size_t i = 0; !s && i < names.n; i++) {
        char path[PATH_MAX];
        if (!join(path, root, names.v[i]) || stat(path, &sts[i]) != 0) continue;
        int64_t row = emb_cache_find(&r.cache, names.v[i]);
        int64_t mt = (int64_t)sts[i].st_mtim.tv_sec * 1000000000LL + sts[i].st_mtim.tv_nsec;
        if (row >= 0 && r.cache.entries[row].bytes == sts[i].st_size && r.cache.entries[row].mtime_ns == mt) {
            n_same++;
            continue;
        }
        todo[i] = 1;
        n_todo++;
    }
    r.cap_pend = a->batch * 8 > 64 ? (int)a->batch * 8 : 64;
    r.pend = calloc((size_t)r.cap_pend, sizeof *r.pend);
    r.slot = calloc((size_t)r.cap_pend, sizeof *r.slot);
    r.rows = r.P ? malloc(sizeof *r.rows * (size_t)r.cap_pend * r.P) : NULL;
    r.px = r.S ? malloc(sizeof *r.px * (size_t)a->batch * 3 * r.S * r.S) : NULL;
    if (!s && (!r.pend || !r.slot || !r.rows || !r.px)) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!s && !a->quiet && names.skipped)
        fprintf(stderr, "sdc embed: skipped %d non-image files\n", names.skipped);
    cli_progress pr;
    if (!s && n_todo) cli_progress_start(&pr, "embed", "img", (int)(n_todo > INT32_MAX ? INT32_MAX : n_todo), a->quiet);
    long long done = 0;
    for (size_t i = 0; !s && i < names.n; i++) {
        if (!todo[i]) continue;
        s = queue_file(&r, names.v[i], &sts[i], &err);
        cli_progress_update(&pr, (int)++done);
    }
    if (!s) s = flush(&r, &err);
    if (!s && n_todo) cli_progress_end(&pr);
    for (int i = 0; i < r.n_pend; i++) free(r.pend[i].path);
    long long total = r.cache.n_live;
    free(r.pend);
    free(r.slot);
    free(r.rows);
    free(r.px);
    free(todo);
    free(sts);
    names_free(&names);
    emb_cache_close(&r.cache);
    sdc_clip_model_close(r.m);
    sdc_arena_destroy(r.arena);
    sdc_backend_destroy(r.be);
    if (s) return cli_error("embed", &err);
    if (a->json)
        printf("{\"embedded\": %lld, \"reused\": %lld, \"unchanged\": %lld, \"failed\": %lld, "
               "\"images\": %lld}\n", r.n_new, r.n_reused, n_same, r.n_failed, total);
    else if (!a->quiet)
        fprintf(stderr, "sdc embed: %lld embedded, %lld reused (same content), %lld unchanged, "
                "%lld failed; %s holds %lld images\n", r.n_new, r.n_reused, n_same, r.n_failed,
                a->out, total);
    if (r.n_failed) {
        fprintf(stderr, "sdc embed: %lld files could not be embedded (a rerun retries them)\n", r.n_failed);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* ---------------------------------------------------------------- npy */

static int run_export(const embed_args *a) {
    sdc_err err = {0};
    emb_cache c;
    if (emb_cache_open_reader(a->pool, &c, &err)) return cli_error("embed", &err);
    char list[PATH_MAX];
    if (a->files) {
        snprintf(list, sizeof list, "%s", a->files);
    } else {
        snprintf(list, sizeof list, "%s", a->export_npy);
        size_t n = strlen(list);
        if (n > 4 && !strcasecmp(list + n - 4, ".npy")) list[n - 4] = '\0';
        strncat(list, ".csv", sizeof list - strlen(list) - 1);
    }
    sdc_dtype dt = !a->dtype ? c.dtype : !strcmp(a->dtype, "f32") ? SDC_F32 : SDC_F16;
    int64_t n = 0;
    sdc_status s = !strcmp(list, a->export_npy)
                       ? sdc_err_set(&err, SDC_ERR_ARG, "--files must differ from the .npy file")
                       : emb_cache_export_npy(&c, a->export_npy, list, dt, &n, &err);
    if (!s)
        fprintf(stderr, "sdc embed: wrote %lld x %d %s rows to %s and the file list to %s "
                "(paths relative to %s)\n", (long long)n, c.dim, sdc_dtype_name(dt), a->export_npy,
                list, c.root);
    emb_cache_close(&c);
    return s ? cli_error("embed", &err) : EXIT_OK;
}

static int run_import(const embed_args *a) {
    sdc_err err = {0};
    sdc_clip_config cfg;
    char *weights = NULL, sha[65] = "", root[PATH_MAX];
    emb_npy arr = {0};
    emb_cache c = {.lock_fd = -1, .emb_fd = -1, .idx_fd = -1};
    char **paths = NULL, **shas = NULL;
    int64_t n = 0;
    float *rows = NULL;
    emb_entry *ents = NULL;
    sdc_status s = SDC_OK;
    if (!realpath(a->images, root)) s = sdc_err_set(&err, SDC_ERR_IO, "%s: %s", a->images, strerror(errno));
    if (!s) s = sdc_clip_config_read(a->clip, &cfg, &weights, &err);
    if (!s) s = sdc_sha256_file(weights, sha, &err);
    if (!s) s = emb_npy_open(a->import_npy, &arr, &err);
    if (!s) s = emb_read_list(a->files, &paths, &shas, &n, &err);
    if (!s && n != arr.rows)
        s = sdc_err_set(&err, SDC_ERR_FORMAT, "%s lists %lld files but %s holds %lld rows", a->files,
                        (long long)n, a->import_npy, (long long)arr.rows);
    if (!s && arr.cols != cfg.proj)
        s = sdc_err_set(&err, SDC_ERR_FORMAT, "%s: rows of %lld values, but %s embeds into %d",
                        a->import_npy, (long long)arr.cols, a->clip, cfg.proj);
    /* Everything is checked before anything is written. */
    if (!s && n && (!(rows = malloc(sizeof *rows * (size_t)n * cfg.proj)) || !(ents = calloc((size_t)n, sizeof *ents))))
        s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory (%lld rows)", (long long)n);
    for (int64_t i = 0; !s && i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        errno = 0;
        if (!join(path, root, paths[i]) || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            s = sdc_err_set(&err, SDC_ERR_IO, "%s: line for row %lld: %s: %s", a->files, (long long)i,
                            path, errno ? strerror(errno) : "not a regular file");
            break;
        }
        emb_entry *e = &ents[i];
        e->path = paths[i];
        e->bytes = st.st_size;
        e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        if (shas[i]) memcpy(e->sha256, shas[i], 65);
        else if ((s = sdc_sha256_file(path, e->sha256, &err))) break;
        emb_npy_row(&arr, i, rows + (size_t)i * cfg.proj);
        if ((s = sdc_l2_normalize(rows + (size_t)i * cfg.proj, cfg.proj, &err)))
            sdc_err_wrap(&err, "%s: row %lld", a->import_npy, (long long)i);
    }
    emb_cache_meta want = {.dim = cfg.proj, .dtype = !a->dtype ? SDC_DTYPE_COUNT
                                                     : !strcmp(a->dtype, "f16") ? SDC_F16 : SDC_F32,
                           .root = root, .model = a->clip_abs, .model_sha256 = sha};
    if (!s) s = emb_cache_open_writer(a->out, &want, &c, &err);
    long long added = 0, same = 0;
    for (int64_t i0 = 0; !s && i0 < n; i0 += 4096) {
        /* Rows already there with the same content are skipped (a re-import is a no-op). */
        int k = 0;
        for (int64_t i = i0; i < n && i < i0 + 4096; i++) {
            int64_t row = emb_cache_find(&c, ents[i].path);
            if (row >= 0 && !strcmp(c.entries[row].sha256, ents[i].sha256)) { same++; continue; }
            if (k != i - i0) {
                ents[i0 + k] = ents[i];
                memcpy(rows + (size_t)(i0 + k) * cfg.proj, rows + (size_t)i * cfg.proj, sizeof *rows * cfg.proj);
            }
            k++;
        }
        s = emb_cache_append(&c, rows + (size_t)i0 * cfg.proj, ents + i0, k, &err);
        added += k;
    }
    if (!s && !a->quiet)
        fprintf(stderr, "sdc embed: imported %lld rows (%lld already present) into %s\n", added, same, a->out);
    emb_cache_close(&c);
    emb_npy_close(&arr);
    for (int64_t i = 0; i < n; i++) { free(paths[i]); free(shas[i]); }
    free(paths);
    free(shas);
    free(ents);
    free(rows);
    free(weights);
    return s ? cli_error("embed", &err) : EXIT_OK;
}

/* ---------------------------------------------------------------- arguments */

int cmd_embed(int argc, char **argv) {
    embed_args a = {.batch = 8};
    cli_opt opts[] = {
        {"model|clip", 'm', CLI_STRING, &a.clip, .metavar = "M", .help = "the CLIP model (a CLIPModel)"},
        {"images", 0, CLI_STRING, &a.images, .metavar = "DIR", .help = "the image folder"},
        CLI_OUT(&a.out, 0, "the cache folder CACHE"),
        {"batch", 'b', CLI_INT, &a.batch, .lo = 1, .hi = 256, .metavar = "N",
         .help = "images per model call (default 8)"},
        {"dtype", 0, CLI_CHOICE, &a.dtype, .choices = "f16|f32",
         .help = "storage of a new cache (default f16); an existing cache keeps its own"},
        {"pool", 0, CLI_STRING, &a.pool, .metavar = "CACHE", .help = "the cache to export"},
        {"export-npy", 0, CLI_STRING, &a.export_npy, .metavar = "F.npy", .help = "export the rows"},
        {"import-npy", 0, CLI_STRING, &a.import_npy, .metavar = "F.npy", .help = "import rows"},
        {"files", 0, CLI_STRING, &a.files, .metavar = "LIST", .help = "the file list of an export/import"},
        CLI_BACKEND(&a.backend),
        CLI_THREADS(&a.threads),
        CLI_QUIET(&a.quiet),
        CLI_JSON(&a.json),
        CLI_END};
    int rc = cli_parse(&spec, opts, argc, argv, NULL);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!cli_backend_valid("embed", a.backend)) return EXIT_USAGE;
    if (a.json) a.quiet = true; /* the progress goes, the summary is the JSON */
    cli_apply_threads(a.threads);
    if (a.clip && !realpath(a.clip, a.clip_abs)) snprintf(a.clip_abs, sizeof a.clip_abs, "%s", a.clip);
    cli_on_interrupt_resume("embed");
    if (a.dtype && strcmp(a.dtype, "f16") && strcmp(a.dtype, "f32"))
        return cli_usage_error("embed", "--dtype must be f16 or f32 (got '%s')", a.dtype);
    if (a.export_npy && a.import_npy)
        return cli_usage_error("embed", "--export-npy and --import-npy do not go together");
    if (a.export_npy) {
        if (!a.pool) return cli_usage_error("embed", "--export-npy needs --pool CACHE");
        if (a.clip || a.images || a.out) return cli_usage_error("embed", "--export-npy takes --pool, --files and --dtype only");
        return run_export(&a);
    }
    if (a.import_npy) {
        if (!a.files || !a.images || !a.clip || !a.out)
            return cli_usage_error("embed", "--import-npy needs --files, --images, --model and --out");
        return run_import(&a);
    }
    if (!a.clip || !a.images || !a.out)
        return cli_usage_error("embed", "--model (--clip), --images and --out are required");
    if (a.pool || a.files) return cli_usage_error("embed", "--pool / --files go with --export-npy or --import-npy");
    return run_embed(&a);
}
