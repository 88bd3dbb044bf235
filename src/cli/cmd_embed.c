/* cmd_embed.c — sdc embed: CLIP image embeddings of a folder of images into
 * a resumable, appendable pool cache (src/augment/embcache.h), and NPY
 * export/import of such a cache for faiss, autofaiss or numpy. */
#include "cli.h"
#include "progress.h"

#include "../augment/embcache.h"
#include "../augment/embfiles.h"
#include "../core/sha256.h"
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

/* ---------------------------------------------------------------- embedding */

typedef struct {
    cli_progress pr;
    bool quiet;
} embed_ui;

static void on_progress(void *ctx, int64_t done, int64_t total) {
    cli_progress_update(&((embed_ui *)ctx)->pr, (int)(done > INT32_MAX ? INT32_MAX : done));
}

static void on_skip(void *ctx, const char *why) {
    if (!((embed_ui *)ctx)->quiet) fprintf(stderr, "\nsdc embed: skipped %s\n", why);
}

static sdc_status model_and_hash(const char *clip, sdc_backend *be, sdc_clip_model **m,
                                 char sha[65], sdc_err *err) {
    if (!(*m = sdc_clip_model_open(clip, be, err))) return err->code;
    sdc_status s = sdc_sha256_file((*m)->weights, sha, err);
    return s;
}

static int run_embed(const embed_args *a) {
    sdc_err err = {0};
    sdc_backend *be = NULL;
    sdc_arena *arena = NULL;
    sdc_clip_model *m = NULL;
    emb_cache cache = {.lock_fd = -1, .emb_fd = -1, .idx_fd = -1};
    char root[PATH_MAX], sha[65] = "", avoid[PATH_MAX];
    name_list names = {0};
    emb_update_stats st = {0};
    sdc_status s = SDC_OK;
    if (!realpath(a->images, root)) s = sdc_err_set(&err, SDC_ERR_IO, "%s: %s", a->images, strerror(errno));
    if (!s && !(be = cli_backend_create("embed", a->backend, a->quiet, &err))) s = err.code;
    if (!s && !(arena = sdc_arena_create(be, 0, &err))) s = err.code;
    if (!s) s = model_and_hash(a->clip, be, &m, sha, &err);
    if (!s) {
        emb_cache_meta want = {.dim = m->cfg.proj, .dtype = !a->dtype ? SDC_DTYPE_COUNT
                                                   : !strcmp(a->dtype, "f32") ? SDC_F32 : SDC_F16,
                               .root = root, .model = a->clip_abs, .model_sha256 = sha};
        s = emb_cache_open_writer(a->out, &want, &cache, &err);
    }
    if (!s && (cache.recovered_rows || cache.recovered_tail) && !a->quiet)
        fprintf(stderr, "sdc embed: %s: recovered from an interrupted run (%lld unindexed rows "
                "and %s torn index line dropped)\n", a->out, (long long)cache.recovered_rows,
                cache.recovered_tail ? "a" : "no");
    if (!s) s = scan(root, "", realpath(a->out, avoid) ? avoid : NULL, 0, &names, &err);
    if (!s && names.n) qsort(names.v, names.n, sizeof *names.v, cmp_str);
    if (!s && !a->quiet && names.skipped)
        fprintf(stderr, "sdc embed: skipped %d non-image files\n", names.skipped);
    /* New paths and paths whose size or mtime changed are read; the rest
     * keep their rows (embfiles.h). */
    embed_ui ui = {.quiet = a->quiet};
    emb_update_hooks hooks = {.progress = on_progress, .skipped = on_skip, .ctx = &ui};
    emb_encoder enc = {.m = m, .be = be, .arena = arena, .batch = (int)a->batch};
    if (!s && names.n) {
        cli_progress_start(&ui.pr, "embed", "img", (int)(names.n > INT32_MAX ? INT32_MAX : names.n), a->quiet);
        s = emb_cache_update(&cache, &enc, (const char *const *)names.v, (int64_t)names.n, &hooks, NULL, &st, &err);
        if (!s) cli_progress_end(&ui.pr);
    }
    long long total = cache.n_live;
    names_free(&names);
    emb_cache_close(&cache);
    sdc_clip_model_close(m);
    sdc_arena_destroy(arena);
    sdc_backend_destroy(be);
    if (s) return cli_error("embed", &err);
    if (a->json)
        printf("{\"embedded\": %lld, \"reused\": %lld, \"unchanged\": %lld, \"failed\": %lld, "
               "\"images\": %lld}\n", (long long)st.embedded, (long long)st.reused,
               (long long)st.unchanged, (long long)st.failed, total);
    else if (!a->quiet)
        fprintf(stderr, "sdc embed: %lld embedded, %lld reused (same content), %lld unchanged, "
                "%lld failed; %s holds %lld images\n", (long long)st.embedded, (long long)st.reused,
                (long long)st.unchanged, (long long)st.failed, a->out, total);
    if (st.failed) {
        fprintf(stderr, "sdc embed: %lld files could not be embedded (a rerun retries them)\n", (long long)st.failed);
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
