/* dataset.c — reads an ImageFolder tree (ROOT/<class>/<image>) for
 * `sdc augment`: classes and files sorted bytewise so the plan is the same on
 * every machine, hidden files and non-images counted and skipped. */
#include "augment.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b); /* bytewise: locale-independent */
}

static bool is_image_name(const char *n) {
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
                   !strcasecmp(dot, ".jpeg"));
}

/* Sorted names in dir; want_dirs picks subfolders or regular files. */
static sdc_status list_dir(const char *dir, bool want_dirs, char ***out, int *n, int *skipped,
                           sdc_err *err) {
    DIR *dp = opendir(dir);
    if (!dp) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    char **v = NULL;
    int cnt = 0, cap = 0;
    sdc_status s = SDC_OK;
    struct dirent *e;
    while (!s && (e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        bool hidden = e->d_name[0] == '.';
        if (stat(path, &st) != 0) { if (skipped) (*skipped)++; continue; }
        bool isdir = S_ISDIR(st.st_mode);
        if (want_dirs ? (!isdir || hidden) : (hidden || !S_ISREG(st.st_mode) || !is_image_name(e->d_name))) {
            if (skipped && !(want_dirs && !isdir && hidden)) (*skipped)++;
            continue;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, sizeof *v * (size_t)cap);
            if (!nv) { s = sdc_err_set(err, SDC_ERR_OOM, "out of memory"); break; }
            v = nv;
        }
        if (!(v[cnt] = strdup(e->d_name))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        else cnt++;
    }
    closedir(dp);
    if (cnt) qsort(v, (size_t)cnt, sizeof *v, cmp_str);
    *out = v;
    *n = cnt;
    return s;
}

static bool in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return true;
        if (!c) break;
        p = c + 1;
    }
    return false;
}

/* One name per line; CR stripped (files written on Windows). */
static sdc_status read_names(const char *path, int want, char **names, sdc_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (n < want && !(names[n] = strdup(line))) { fclose(f); return sdc_err_set(err, SDC_ERR_OOM, "out of memory"); }
        n++;
    }
    fclose(f);
    if (n != want)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: %d class names for %d class folders", path,
                           n, want);
    return SDC_OK;
}

sdc_status aug_dataset_scan(const char *root, const char *names_file, const char *only,
                            aug_dataset *d, sdc_err *err) {
    *d = (aug_dataset){0};
    char **dirs = NULL;
    int nd = 0;
    sdc_status s = list_dir(root, true, &dirs, &nd, NULL, err);
    char **names = s ? NULL : calloc((size_t)nd + 1, sizeof *names);
    if (!s && !names) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    /* Names are given for every folder (sorted), before --classes filters. */
    if (!s && names_file) s = read_names(names_file, nd, names, err);
    if (!s && !(d->classes = calloc((size_t)nd + 1, sizeof *d->classes)))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int i = 0; !s && i < nd; i++) {
        if (only && !in_list(only, dirs[i])) continue;
        aug_class *c = &d->classes[d->n_classes++];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        c->folder = dirs[i];
        dirs[i] = NULL;
        c->name = names[i] ? names[i] : strdup(c->folder);
        names[i] = NULL;
        if (!c->name) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        if (!s) s = list_dir(path, false, &c->files, &c->n_files, &d->skipped, err);
    }
    if (!s && d->n_classes == 0)
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: no class folders%s", root,
                        only ? " matching --classes" : "");
    if (!s && only) /* every requested class must exist: a typo should not silently shrink the run */
        for (const char *p = only; *p;) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            bool found = false;
            for (int i = 0; i < d->n_classes; i++)
                found |= strlen(d->classes[i].folder) == len && !strncmp(d->classes[i].folder, p, len);
            if (!found) { s = sdc_err_set(err, SDC_ERR_ARG, "--classes: no folder '%.*s' in %s", (int)len, p, root); break; }
            if (!c) break;
            p = c + 1;
        }
    for (int i = 0; i < nd; i++) { free(dirs ? dirs[i] : NULL); free(names ? names[i] : NULL); }
    free(dirs);
    free(names);
    if (s) aug_dataset_free(d);
    return s;
}

void aug_dataset_free(aug_dataset *d) {
    for (int i = 0; d->classes && i < d->n_classes; i++) {
        aug_class *c = &d->classes[i];
        for (int j = 0; j < c->n_files; j++) free(c->files[j]);
        free(c->files);
        free(c->folder);
        free(c->name);
    }
    free(d->classes);
    *d = (aug_dataset){0};
}

bool aug_path_inside(const char *data, const char *out) {
    char d[PATH_MAX], o[2 * PATH_MAX + 2], tmp[PATH_MAX];
    if (!realpath(data, d)) return false;
    if (!realpath(out, o)) {
        snprintf(tmp, sizeof tmp, "%s", out);
        for (size_t l = strlen(tmp); l > 1 && tmp[l - 1] == '/';) tmp[--l] = '\0'; /* "new/" */
        char *base = strrchr(tmp, '/'), parent[PATH_MAX];
        if (base) *base++ = '\0';
        if (!realpath(base ? (tmp[0] ? tmp : "/") : ".", parent)) return false;
        snprintf(o, sizeof o, "%s/%s", parent, base ? base : tmp);
    }
    size_t n = strlen(d);
    return !strncmp(o, d, n) && (o[n] == '\0' || o[n] == '/' || (n == 1 && d[0] == '/'));
}

