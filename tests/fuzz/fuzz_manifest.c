/* fuzz_manifest.c — libFuzzer target: the manifest reader `sdc augment` runs
 * on resume (aug_manifest_load). The input is written as a per-process
 * manifest.jsonl on tmpfs (/dev/shm, or $SDC_FUZZ_TMPDIR) beside an output
 * folder holding a/x.png and b/y.png (non-empty), a/empty.png (empty) and
 * a/dir.png (a folder), so kept and dropped lines are both reached. Checks:
 * a failed load leaves the file untouched and m empty; a good one lists only
 * existing files, once each; a rewrite loads again unchanged (idempotent);
 * no temp file is left behind. */
#include "augment/augment.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256], out[300], path[300];

static void put(const char *rel, const char *text) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", out, rel);
    FILE *f = fopen(p, "w");
    if (!f) { perror(p); exit(1); }
    fputs(text, f);
    fclose(f);
}

static void cleanup(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_manifest: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *base = getenv("SDC_FUZZ_TMPDIR");
    if (!base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/sdc-fuzz-manifest-%d", base, (int)getpid());
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    char p[400];
    mkdir(dir, 0755);
    mkdir(out, 0755);
    snprintf(p, sizeof p, "%s/a", out);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/b", out);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/a/dir.png", out);
    mkdir(p, 0755);
    put("a/x.png", "png");
    put("b/y.png", "png");
    put("a/empty.png", "");
    atexit(cleanup);
    return 0;
}

static uint8_t *slurp(size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { *len = 0; return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    return b;
}

/* No manifest.jsonl.tmp.* is left in out. */
static void no_temps(void) {
    DIR *d = opendir(out);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) __builtin_trap();
    closedir(d);
}

static bool exists(const char *rel) {
    char p[4400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", out, rel);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    if (off != size) return 0;

    aug_manifest m;
    sdc_err err = {0};
    sdc_status s = aug_manifest_load(path, out, &m, &err);
    no_temps();
    size_t len;
    uint8_t *now = slurp(&len);
    if (s != SDC_OK) {
        /* Refused: named, nothing kept, the file as it was. */
        if (m.n || m.outputs || m.slots || !strstr(err.msg, path)) __builtin_trap();
        if (!now || len != size || (size && memcmp(now, data, size))) __builtin_trap();
        free(now);
        return 0;
    }
    if (!now) __builtin_trap();
    if (!m.n_dropped && (len != size || (size && memcmp(now, data, size)))) __builtin_trap();
    for (int i = 0; i < m.n; i++) {
        if (!exists(m.outputs[i]) || !aug_manifest_has(&m, m.outputs[i])) __builtin_trap();
        for (int k = 0; k < i; k++)
            if (!strcmp(m.outputs[k], m.outputs[i])) __builtin_trap();
    }
    if (aug_manifest_has(&m, "a/empty.png") || aug_manifest_has(&m, "a/dir.png"))
        __builtin_trap();
    if (m.n_dropped) {
        /* What was rewritten loads again as is, with the same outputs. */
        aug_manifest m2;
        sdc_err e2 = {0};
        if (aug_manifest_load(path, out, &m2, &e2) != SDC_OK) __builtin_trap();
        if (m2.n != m.n || m2.n_dropped || m2.n_failed) __builtin_trap();
        for (int i = 0; i < m.n; i++)
            if (strcmp(m.outputs[i], m2.outputs[i])) __builtin_trap();
        size_t len2;
        uint8_t *again = slurp(&len2);
        if (!again || len2 != len || (len && memcmp(again, now, len))) __builtin_trap();
        free(again);
        aug_manifest_free(&m2);
        no_temps();
    }
    free(now);
    aug_manifest_free(&m);
    return 0;
}
