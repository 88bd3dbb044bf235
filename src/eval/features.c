/* features.c — the feature sets of `sdc report` and `sdc probe` (see
 * features.h): the dataset scan, the output manifests with their checks,
 * and one embedding cache per folder. */
#include "features.h"

#include "../core/sha256.h"
#include "../image/image.h"

#include <cJSON.h>
#include <errno.h>
#include <glob.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- cache folders */

static sdc_status mkdirs(const char *path, sdc_err *err) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return sdc_err_set(err, SDC_ERR_ARG, "%s: path too long", path);
    for (char *s = p + 1;; s++) {
        bool end = !*s;
        if (*s == '/' || end) {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                return sdc_err_set(err, SDC_ERR_IO, "%s: cannot create the feature cache folder: %s", p, strerror(errno));
            if (end) break;
            *s = '/';
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sdc_err_set(err, SDC_ERR_IO, "%s: the feature cache root is not a folder", path);
    return SDC_OK;
}

sdc_status feat_cache_root(const char *given, char *out, size_t cap, sdc_err *err) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (given) n = snprintf(out, cap, "%s", given);
    else if (xdg && xdg[0] == '/') n = snprintf(out, cap, "%s/sdc/features", xdg);
    else if (home && *home) n = snprintf(out, cap, "%s/.cache/sdc/features", home);
    else return sdc_err_set(err, SDC_ERR_ARG, "no place for the feature cache: neither HOME nor XDG_CACHE_HOME "
                            "is set (give --cache DIR)");
    if (n < 0 || (size_t)n >= cap) return sdc_err_set(err, SDC_ERR_ARG, "--cache: path too long");
    return mkdirs(out, err);
}

sdc_status feat_cache_dir(const char *root, const char *folder, char *out, size_t cap, sdc_err *err) {
    char rp[PATH_MAX];
    if (!realpath(folder, rp)) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", folder, strerror(errno));
    sdc_sha256 h;
    uint8_t d[32];
    sdc_sha256_init(&h);
    sdc_sha256_update(&h, rp, strlen(rp));
    sdc_sha256_final(&h, d);
    int n = snprintf(out, cap, "%s/", root);
    for (int i = 0; i < 8 && n > 0 && (size_t)n + 3 <= cap; i++) n += snprintf(out + n, cap - (size_t)n, "%02x", d[i]);
    if (n < 0 || (size_t)n + 1 >= cap) return sdc_err_set(err, SDC_ERR_ARG, "%s: cache path too long", root);
    return SDC_OK;
}

sdc_status feat_cache_model(const char *root, const char *folder, char **model, char sha[65], int *dim,
                            sdc_err *err) {
    char dir[PATH_MAX];
    sdc_status s = feat_cache_dir(root, folder, dir, sizeof dir, err);
    if (s) return s;
    if (access(dir, F_OK) != 0)
        return sdc_err_set(err, SDC_ERR_ARG, "%s has no cached features in %s yet: give the CLIP model "
                           "(--clip M)", folder, root);
    emb_cache c;
    if ((s = emb_cache_open_reader(dir, &c, err))) return s;
    *model = strdup(c.model);
    snprintf(sha, 65, "%s", c.model_sha256);
    *dim = c.dim;
    emb_cache_close(&c);
    return *model ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
}

/* ---------------------------------------------------------------- groups */

static sdc_status item_add(feat_group *g, int64_t *cap, const char *path, int cls, int64_t source,
                           bool external, sdc_err *err) {
    if (g->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        feat_item *v = realloc(g->items, sizeof *v * (size_t)*cap);
        if (!v) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        g->items = v;
    }
    feat_item *it = &g->items[g->n];
    *it = (feat_item){.cls = cls, .source = source, .external = external};
    if (!(it->path = strdup(path))) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    g->n++;
    return SDC_OK;
}

static void group_free(feat_group *g) {
    for (int64_t i = 0; i < g->n; i++) free(g->items[i].path);
    free(g->items), free(g->x), free(g->dir), free(g->label), free(g->method), free(g->n_rejected);
    *g = (feat_group){0};
}

/* Embeds (or finds) the group's files in its folder's cache, reads the rows
 * into g->x and drops the files that could not be embedded; keep[i] (may
 * be NULL) gets each original item's new index or -1. */
static sdc_status group_features(const feat_opts *o, const char *root, feat_group *g, int64_t *keep,
                                 sdc_err *err) {
    char rp[PATH_MAX], dir[PATH_MAX];
    if (!realpath(g->dir, rp)) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", g->dir, strerror(errno));
    sdc_status s = feat_cache_dir(root, g->dir, dir, sizeof dir, err);
    if (s) return s;
    emb_cache_meta want = {.dim = o->dim, .dtype = SDC_DTYPE_COUNT, .root = rp, .model = o->model,
                           .model_sha256 = o->model_sha256};
    emb_cache c;
    if ((s = emb_cache_open_writer(dir, &want, &c, err))) {
        if (strstr(err->msg, "another model"))
            sdc_err_wrap(err, "%s: its features come from another model's feature space", g->dir);
        else
            sdc_err_wrap(err, "%s: feature cache", g->dir);
        return s;
    }
    int64_t *rows = malloc(sizeof *rows * (size_t)(g->n ? g->n : 1));
    const char **paths = malloc(sizeof *paths * (size_t)(g->n ? g->n : 1));
    if (!rows || !paths) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int64_t i = 0; !s && i < g->n; i++) paths[i] = g->items[i].path;
    if (!s && o->folder) o->folder(o->hooks.ctx, g->dir, g->n, true);
    if (!s) s = emb_cache_update(&c, o->enc, paths, g->n, &o->hooks, rows, NULL, err);
    if (s && err->code == SDC_ERR_ARG && strstr(err->msg, "no CLIP model"))
        sdc_err_wrap(err, "%s", g->dir);
    if (!s && o->folder) o->folder(o->hooks.ctx, g->dir, g->n, false);
    if (!s && !(g->x = malloc(sizeof *g->x * (size_t)(g->n ? g->n : 1) * o->dim)))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory (%lld features)", (long long)g->n);
    int64_t k = 0;
    for (int64_t i = 0; !s && i < g->n; i++) {
        if (keep) keep[i] = rows[i] < 0 ? -1 : k;
        if (rows[i] < 0) {
            g->n_failed++;
            free(g->items[i].path);
            continue;
        }
        if ((s = emb_cache_row(&c, rows[i], g->x + (size_t)k * o->dim, err))) {
            for (int64_t t = i; t < g->n; t++) free(g->items[t].path);
            g->n = k;
            break;
        }
        g->items[k] = g->items[i];
        snprintf(g->items[k].sha256, sizeof g->items[k].sha256, "%s", c.entries[rows[i]].sha256);
        k++;
    }
    if (!s) g->n = k;
    free(rows);
    free(paths);
    emb_cache_close(&c);
    return s;
}

/* ---------------------------------------------------------------- manifests */

static int find_class(const aug_dataset *d, const char *folder) {
    for (int c = 0; c < d->n_classes; c++)
        if (!strcmp(d->classes[c].folder, folder)) return c;
    return -1;
}

static int cmp_name(const void *key, const void *el) { return strcmp(key, *(char *const *)el); }

/* The real index of "class/file" (-2 when DATASET has no such image). */
static int64_t real_index(const aug_dataset *d, const int64_t *first, const char *source) {
    const char *slash = strrchr(source, '/');
    if (!slash || source[0] == '/') return -2;
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%.*s", (int)(slash - source), source);
    int c = find_class(d, folder);
    if (c < 0) return -2;
    char **hit = bsearch(slash + 1, d->classes[c].files, (size_t)d->classes[c].n_files, sizeof(char *), cmp_name);
    return hit ? first[c] + (hit - d->classes[c].files) : -2;
}

static const char *jstr(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One manifest file's lines into g (ok outputs; rejected and failed counted). */
static sdc_status read_manifest(const char *path, const char *dataset, const aug_dataset *d,
                                const int64_t *first, feat_group *g, int64_t *cap, sdc_err *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    sdc_status s = sdc_read_file_capped(path, (size_t)1 << 30, &buf, &len, err);
    if (s) return s;
    int line_no = 0;
    for (size_t at = 0; !s && at < len;) {
        char *line = (char *)buf + at, *nl = memchr(line, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - line) : len - at;
        at += ll + (nl ? 1 : 0);
        line_no++;
        line[ll] = '\0';
        cJSON *j = nl ? cJSON_ParseWithOpts(line, NULL, 1) : NULL;
        const char *out = j ? jstr(j, "output") : NULL, *st = j ? jstr(j, "status") : NULL;
        const char *cls = j ? jstr(j, "class") : NULL, *method = j ? jstr(j, "method") : NULL;
        if (!out || !st || !cls || !method) {
            cJSON_Delete(j);
            if (at >= len) break; /* a torn last line: a run is still writing, or was killed */
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: line %d is not a manifest entry", path, line_no);
            break;
        }
        int c = find_class(d, cls);
        if (c < 0) {
            s = sdc_err_set(err, SDC_ERR_ARG, "%s: line %d: class '%s' is not a class folder of %s (mismatched "
                            "class folders: was it made from another dataset?)", path, line_no, cls, dataset);
        } else if (!strcmp(st, "rejected")) {
            g->n_rejected[c]++;
        } else if (strcmp(st, "ok")) {
            g->n_failed++;
        } else {
            const char *src = jstr(j, "source");
            bool external = cJSON_GetObjectItemCaseSensitive(j, "pool_file") != NULL;
            int64_t ri = src && !external ? real_index(d, first, src) : -1;
            if (ri == -2)
                s = sdc_err_set(err, SDC_ERR_ARG, "%s: line %d: source '%s' is not an image of %s (was it made "
                                "from another dataset?)", path, line_no, src, dataset);
            else if (!g->method && !(g->method = strdup(method)))
                s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
            else
                s = item_add(g, cap, out, c, ri, external, err);
        }
        cJSON_Delete(j);
    }
    free(buf);
    return s;
}

/* Every class folder of out must be a class of the dataset. */
static sdc_status check_out_folders(const char *out, const char *dataset, const aug_dataset *d, sdc_err *err) {
    DIR *dp = opendir(out);
    if (!dp) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot open folder: %s", out, strerror(errno));
    sdc_status s = SDC_OK;
    for (struct dirent *e; !s && (e = readdir(dp));) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", out, e->d_name);
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode) && find_class(d, e->d_name) < 0)
            s = sdc_err_set(err, SDC_ERR_ARG, "%s: class folder '%s' is not a class of %s (mismatched class "
                            "folders)", out, e->d_name, dataset);
    }
    closedir(dp);
    return s;
}

static sdc_status load_out(const char *out, const char *dataset, const aug_dataset *d, const int64_t *first,
                           feat_group *g, sdc_err *err) {
    int64_t cap = 0;
    sdc_status s = check_out_folders(out, dataset, d, err);
    if (!s && (!(g->dir = strdup(out)) || !(g->n_rejected = calloc((size_t)d->n_classes, sizeof *g->n_rejected))))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    if (!s && access(path, F_OK) == 0) {
        s = read_manifest(path, dataset, d, first, g, &cap, err);
    } else if (!s) { /* shards not merged yet: their logs */
        glob_t gl;
        snprintf(path, sizeof path, "%s/manifest.shard-*-of-*.jsonl", out);
        if (glob(path, 0, NULL, &gl) != 0)
            s = sdc_err_set(err, SDC_ERR_ARG, "%s: no manifest.jsonl (not an sdc augment output folder)", out);
        else {
            for (size_t i = 0; !s && i < gl.gl_pathc; i++) s = read_manifest(gl.gl_pathv[i], dataset, d, first, g, &cap, err);
            globfree(&gl);
        }
    }
    if (!s && !g->method && !(g->method = strdup("none"))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    return s;
}

/* ---------------------------------------------------------------- the set */

sdc_status feat_set_load(const char *dataset, const char *const *outs, int n_outs, const feat_opts *o,
                         feat_set *fs, sdc_err *err) {
    *fs = (feat_set){.dim = o->dim};
    char root[PATH_MAX];
    int64_t *first = NULL, *keep = NULL, cap = 0;
    sdc_status s = feat_cache_root(o->cache_root, root, sizeof root, err);
    if (!s) s = aug_dataset_scan(dataset, o->class_names, NULL, &fs->data, err);
    const aug_dataset *d = &fs->data;
    if (!s && (!(first = calloc((size_t)d->n_classes + 1, sizeof *first)) ||
               !(fs->outs = calloc((size_t)(n_outs ? n_outs : 1), sizeof *fs->outs)) ||
               !(fs->real.dir = strdup(dataset)) || !(fs->real.label = strdup("real")) ||
               !(fs->real.method = strdup("real")) ||
               !(fs->real.n_rejected = calloc((size_t)d->n_classes, sizeof *fs->real.n_rejected))))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int c = 0; !s && c < d->n_classes; c++) {
        first[c + 1] = first[c] + d->classes[c].n_files;
        for (int f = 0; !s && f < d->classes[c].n_files; f++) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", d->classes[c].folder, d->classes[c].files[f]);
            s = item_add(&fs->real, &cap, p, c, -1, false, err);
        }
    }
    /* Every manifest is read (and checked) before anything is embedded. */
    for (int j = 0; !s && j < n_outs; j++, fs->n_outs++) s = load_out(outs[j], dataset, d, first, &fs->outs[j], err);
    for (int j = 0; !s && j < n_outs; j++) { /* labels: the method, unique */
        int same = 0;
        for (int i = 0; i < n_outs; i++) same += !strcmp(fs->outs[i].method, fs->outs[j].method);
        char lab[PATH_MAX + 64];
        const char *base = strrchr(outs[j], '/');
        base = base && base[1] ? base + 1 : outs[j];
        if (same > 1) snprintf(lab, sizeof lab, "%s (%s)", fs->outs[j].method, base);
        else snprintf(lab, sizeof lab, "%s", fs->outs[j].method);
        if (!(fs->outs[j].label = strdup(lab))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    if (!s && !(keep = malloc(sizeof *keep * (size_t)(fs->real.n ? fs->real.n : 1))))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s) s = group_features(o, root, &fs->real, keep, err);
    for (int j = 0; !s && j < n_outs; j++) {
        feat_group *g = &fs->outs[j];
        for (int64_t i = 0; i < g->n; i++) /* a source that could not be embedded is no real image now */
            if (g->items[i].source >= 0) g->items[i].source = keep[g->items[i].source];
        s = group_features(o, root, g, NULL, err);
    }
    free(first);
    free(keep);
    if (s) feat_set_free(fs);
    return s;
}

void feat_set_free(feat_set *fs) {
    group_free(&fs->real);
    for (int j = 0; j < fs->n_outs; j++) group_free(&fs->outs[j]);
    free(fs->outs);
    aug_dataset_free(&fs->data);
    *fs = (feat_set){0};
}
