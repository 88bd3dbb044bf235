/* manifest.c — the append-only JSONL log of `sdc augment`: loading it on
 * resume (torn tail dropped, a corrupt middle line refused, lines whose file
 * vanished dropped), durable appends, and the output folder's lock. */
#include "augment.h"

#include "../core/atomic_file.h"
#include "../image/image.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static bool file_ok(const char *dir, const char *rel) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* FNV-1a: the manifest's index of outputs. */
static uint32_t hash_str(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The slot holding output, or the empty slot where it would go. */
static int *find_slot(const aug_manifest *m, const char *output) {
    size_t mask = (size_t)m->n_slots - 1;
    for (size_t i = hash_str(output) & mask;; i = (i + 1) & mask) {
        int *sl = &m->slots[i];
        if (!*sl || !strcmp(m->outputs[*sl - 1], output)) return sl;
    }
}

/* Room in the index for one more output (load factor under 1/2). */
static bool index_reserve(aug_manifest *m) {
    if (m->n_slots > 2 * (m->n + 1)) return true;
    int n_old = m->n_slots, *old = m->slots, ns = n_old ? n_old * 2 : 128;
    int *v = calloc((size_t)ns, sizeof *v);
    if (!v) return false;
    m->slots = v;
    m->n_slots = ns;
    for (int i = 0; i < n_old; i++)
        if (old[i]) *find_slot(m, m->outputs[old[i] - 1]) = old[i];
    free(old);
    return true;
}

sdc_status aug_manifest_load(const char *path, const char *out_dir, aug_manifest *m,
                             sdc_err *err) {
    *m = (aug_manifest){0};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (access(path, F_OK) != 0) return SDC_OK;
    sdc_status s = sdc_read_file_capped(path, (size_t)1 << 30, &buf, &len, err);
    if (s) return s;
    char *kept = malloc(len + 1);
    size_t kept_len = 0;
    int cap = 0, line_no = 0;
    if (!kept) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (size_t at = 0; !s && at < len;) {
        char *line = (char *)buf + at, *nl = memchr(line, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - line) : len - at;
        bool last = !nl || at + ll + 1 >= len;
        line_no++;
        at += ll + (nl ? 1 : 0);
        line[ll] = '\0'; /* buf has a spare NUL byte past len */
        /* Strict: one JSON object and nothing after it (no NUL, no junk). */
        cJSON *j = nl && strlen(line) == ll ? cJSON_ParseWithOpts(line, NULL, 1) : NULL;
        const cJSON *out = j ? cJSON_GetObjectItemCaseSensitive(j, "output") : NULL;
        const cJSON *st = j ? cJSON_GetObjectItemCaseSensitive(j, "status") : NULL;
        if (!cJSON_IsString(out) || !cJSON_IsString(st)) {
            cJSON_Delete(j);
            /* A crash mid-append can only tear the last line: it is dropped. */
            if (last) { m->n_dropped++; break; }
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: line %d is not a manifest entry (corrupt)",
                            path, line_no);
            break;
        }
        /* Failed items are dropped and so retried: a transient I/O error heals,
         * a corrupt source fails again and gets one fresh line. A "rejected"
         * item (--filter clip: every attempt rejected) is done and has no file. */
        bool rejected = !strcmp(st->valuestring, "rejected");
        bool failed = strcmp(st->valuestring, "ok") != 0 && !rejected;
        bool keep = !failed && (rejected || file_ok(out_dir, out->valuestring));
        if (failed) m->n_failed++;
        int *slot = NULL;
        if (keep && !index_reserve(m)) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        /* A second line for the same output (a hand-edited or concatenated
         * log) is dropped: the item is done once. */
        else if (keep && *(slot = find_slot(m, out->valuestring))) keep = false;
        if (keep && !s) {
            if (m->n == cap) {
                cap = cap ? cap * 2 : 64;
                char **v = realloc(m->outputs, sizeof *v * (size_t)cap);
                if (!v) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
                else m->outputs = v;
            }
            if (!s && !(m->outputs[m->n] = strdup(out->valuestring)))
                s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
            if (!s) *slot = ++m->n;
            memcpy(kept + kept_len, line, ll);
            kept_len += ll;
            kept[kept_len++] = '\n';
        } else if (!s) {
            m->n_dropped++;
        }
        cJSON_Delete(j);
    }
    /* Rewrite without the dropped lines, so regenerated items are not doubled. */
    if (!s && m->n_dropped) s = sdc_write_file_atomic(path, kept, kept_len, err);
    free(kept);
    free(buf);
    if (s) aug_manifest_free(m);
    return s;
}

bool aug_manifest_has(const aug_manifest *m, const char *output) {
    return m->n_slots && *find_slot(m, output) != 0;
}

void aug_manifest_free(aug_manifest *m) {
    for (int i = 0; i < m->n; i++) free(m->outputs[i]);
    free(m->outputs);
    free(m->slots);
    *m = (aug_manifest){0};
}

sdc_status aug_manifest_append(int fd, const char *line, sdc_err *err) {
    size_t n = strlen(line);
    off_t before = lseek(fd, 0, SEEK_END);
    /* One write: O_APPEND makes it land whole at the end or (crash) torn at the tail. */
    ssize_t w = write(fd, line, n);
    sdc_status s = SDC_OK;
    if (w < 0 || (size_t)w != n)
        s = sdc_err_set(err, SDC_ERR_IO, "manifest: write failed: %s",
                        w < 0 ? strerror(errno) : "short write (disk full?)");
    else if (fsync(fd) != 0)
        s = sdc_err_set(err, SDC_ERR_IO, "manifest: fsync failed: %s", strerror(errno));
    /* A line that did not become durable (or a torn one) is taken back, so
     * the log holds only what the caller counts as recorded. */
    if (s && before >= 0 && ftruncate(fd, before) == 0) (void)fsync(fd);
    return s;
}

cJSON *aug_manifest_item_json(const aug_dataset *d, const aug_item *it, const char *method) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "index", it->index);
    cJSON_AddStringToObject(j, "output", it->output);
    cJSON_AddStringToObject(j, "class", d->classes[it->cls].folder);
    cJSON_AddStringToObject(j, "class_name", d->classes[it->cls].name);
    cJSON_AddStringToObject(j, "method", method);
    return j;
}

char *aug_manifest_line_text(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j), *line = s ? malloc(strlen(s) + 2) : NULL;
    if (line) sprintf(line, "%s\n", s);
    free(s);
    cJSON_Delete(j);
    return line;
}

int aug_lock(const char *path, sdc_err *err) {
    int fd = sdc_lock_file(path, false);
    if (fd == -1) sdc_err_set(err, SDC_ERR_IO, "%s: cannot create lock: %s", path, strerror(errno));
    else if (fd == -2)
        sdc_err_set(err, SDC_ERR_IO, "%s: %s", path,
                    errno == EWOULDBLOCK ? "another sdc augment is writing to this output folder"
                                         : strerror(errno));
    return fd < 0 ? -1 : fd;
}

/* True when a temp file's writer (the pid in NAME.tmp.PID.N) is gone. */
static bool writer_gone(const char *path) {
    const char *t = strstr(path, ".tmp.");
    if (!t) return false;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (end == t + 5 || *end != '.' || pid <= 0) return false;
    return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

void aug_remove_temps(const char *out, const aug_plan *p, int shard, int n_shards) {
    /* Top-level temps (plan.json, manifests) may belong to a live shard
     * beside us: only those whose writer is dead go. */
    char top[4200];
    glob_t tg;
    snprintf(top, sizeof top, "%s/*.tmp.*", out);
    if (glob(top, GLOB_NOSORT, NULL, &tg) == 0)
        for (size_t k = 0; k < tg.gl_pathc; k++)
            if (writer_gone(tg.gl_pathv[k])) unlink(tg.gl_pathv[k]);
    globfree(&tg);
    /* Only our own items' temp names: another shard may be writing beside us. */
    for (int i = 0; i < p->n; i++) {
        if (!aug_plan_in_shard(p, i, shard, n_shards)) continue;
        char pat[4200];
        glob_t g;
        snprintf(pat, sizeof pat, "%s/%s.tmp.*", out, p->items[i].output);
        if (glob(pat, GLOB_NOSORT, NULL, &g) == 0)
            for (size_t k = 0; k < g.gl_pathc; k++) unlink(g.gl_pathv[k]);
        globfree(&g);
    }
}
