/* preflight.c — checks before the compute (see preflight.h): vocabulary
 * lookup, writable outputs, free space, checkpoint parts. */
#include "preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef SDC_PREFIX
#define SDC_PREFIX "/usr/local"
#endif

static bool readable_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && access(p, R_OK) == 0;
}

/* The folder of the running binary, or "" when unknown. */
static void exe_dir(char *out, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    out[0] = '\0';
    if (n <= 0) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0', snprintf(out, cap, "%s", exe);
}

sdc_status cli_find_vocab(const char *explicit_path, char *out, size_t cap, sdc_err *err) {
    if (explicit_path) {
        snprintf(out, cap, "%s", explicit_path);
        if (readable_file(explicit_path)) return SDC_OK;
        return sdc_err_set(err, SDC_ERR_IO, "--vocab %s: %s", explicit_path,
                           access(explicit_path, F_OK) ? strerror(errno) : "not a readable file");
    }
    char dir[PATH_MAX], cand[8][PATH_MAX + 64];
    int n = 0;
    const char *env = getenv("SDC_VOCAB");
    if (env && *env) { /* set on purpose: a wrong one is an error, not skipped */
        snprintf(out, cap, "%s", env);
        if (readable_file(env)) return SDC_OK;
        return sdc_err_set(err, SDC_ERR_IO, "$SDC_VOCAB=%s: %s (unset it to search the usual "
                           "places, see sdc --help)", env,
                           access(env, F_OK) ? strerror(errno) : "not a readable file");
    }
    exe_dir(dir, sizeof dir);
    if (dir[0]) {
        snprintf(cand[n++], sizeof cand[0], "%s/" CLI_VOCAB_NAME, dir);
        snprintf(cand[n++], sizeof cand[0], "%s/../share/sdc/" CLI_VOCAB_NAME, dir);
    }
    snprintf(cand[n++], sizeof cand[0], SDC_PREFIX "/share/sdc/" CLI_VOCAB_NAME);
    snprintf(cand[n++], sizeof cand[0], "weights/" CLI_VOCAB_NAME);
    if (dir[0]) {
        snprintf(cand[n++], sizeof cand[0], "%s/../weights/" CLI_VOCAB_NAME, dir);
        snprintf(cand[n++], sizeof cand[0], "%s/../../weights/" CLI_VOCAB_NAME, dir);
    }
    for (int i = 0; i < n; i++)
        if (readable_file(cand[i])) {
            snprintf(out, cap, "%s", cand[i]);
            return SDC_OK;
        }
    return sdc_err_set(err, SDC_ERR_IO, "CLIP's vocabulary " CLI_VOCAB_NAME " not found: pass --vocab "
                       "PATH, set $SDC_VOCAB, put it next to the sdc binary, or `make install` it "
                       "(to <prefix>/share/sdc); `make setup` fetches it into weights/. Tried, "
                       "with bin = %s: bin/, bin/../share/sdc/, " SDC_PREFIX "/share/sdc/, "
                       "./weights/, bin/../weights/, bin/../../weights/",
                       dir[0] ? dir : "(unknown)");
}

sdc_status cli_model_vocab(const char *model, const char *explicit_path, char *buf, size_t cap,
                           const char **path, sdc_err *err) {
    char vj[PATH_MAX + 32], mt[PATH_MAX + 32];
    struct stat sb;
    if (!explicit_path && model && stat(model, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(vj, sizeof vj, "%s/tokenizer/vocab.json", model);
        snprintf(mt, sizeof mt, "%s/tokenizer/merges.txt", model);
        if (readable_file(vj) && readable_file(mt)) {
            *path = NULL;
            return SDC_OK;
        }
    }
    sdc_status s = cli_find_vocab(explicit_path, buf, cap, err);
    *path = s ? NULL : buf;
    return s;
}

/* Creates and removes a temp file in dir (open(2) itself, not mkstemp, so
 * that an LD_PRELOAD fault shim sees it as it sees every output). */
static sdc_status probe(const char *dir, const char *what, const char *shown, sdc_err *err) {
    static unsigned counter;
    char p[PATH_MAX + 64];
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(p, sizeof p, "%s/.sdc-probe.%ld.%u", dir, (long)getpid(), counter++);
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0)
        return sdc_err_set(err, SDC_ERR_IO, "%s %s: cannot write in %s: %s", what, shown, dir,
                           strerror(errno));
    close(fd);
    unlink(p);
    return SDC_OK;
}

static void parent_of(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') out[--n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == out) out[1] = '\0';
    else *slash = '\0';
}

sdc_status cli_check_writable(const char *path, const char *what, sdc_err *err) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return sdc_err_set(err, SDC_ERR_ARG, "%s %s: is a folder, not a file (%s)", what, path,
                           strerror(EISDIR));
    char dir[PATH_MAX];
    parent_of(path, dir, sizeof dir);
    if (stat(dir, &sb) != 0)
        return sdc_err_set(err, SDC_ERR_IO, "%s %s: its folder %s: %s", what, path, dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return sdc_err_set(err, SDC_ERR_IO, "%s %s: %s is not a folder", what, path, dir);
    return probe(dir, what, path, err);
}

sdc_status cli_check_writable_dir(const char *dir, const char *what, sdc_err *err) {
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return sdc_err_set(err, SDC_ERR_IO, "%s %s: not a folder (%s)", what, dir, strerror(ENOTDIR));
        return probe(dir, what, dir, err);
    }
    char parent[PATH_MAX];
    parent_of(dir, parent, sizeof parent);
    if (stat(parent, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sdc_err_set(err, SDC_ERR_IO, "%s %s: neither it nor its parent %s exists (%s)", what,
                           dir, parent, strerror(stat(parent, &sb) ? ENOENT : ENOTDIR));
    return probe(parent, what, dir, err);
}

sdc_status cli_check_space(const char *path, unsigned long long bytes, const char *what,
                           sdc_err *err) {
    struct statvfs v;
    char dir[PATH_MAX];
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(dir, sizeof dir, "%s", path);
    else parent_of(path, dir, sizeof dir);
    if (statvfs(dir, &v) != 0) return SDC_OK; /* unknown: the writes will tell */
    unsigned long long avail = (unsigned long long)v.f_bavail * v.f_frsize;
    if (avail < bytes)
        return sdc_err_set(err, SDC_ERR_IO, "%s %s: only %llu bytes free on its disk, one output "
                           "needs up to %llu (No space left on device)", what, path, avail, bytes);
    return SDC_OK;
}

sdc_status cli_check_model_parts(const char *model, unsigned parts, sdc_err *err) {
    const char *ext = strrchr(model, '/') ? strrchr(strrchr(model, '/'), '.') : strrchr(model, '.');
    if (ext && (!strcasecmp(ext, ".ckpt") || !strcasecmp(ext, ".pt") || !strcasecmp(ext, ".pth") ||
                !strcasecmp(ext, ".bin")))
        return SDC_OK; /* the loader refuses a pickle by name, before reading it */
    sdc_layout_info info;
    sdc_status s = sdc_detect_layout(model, &info, err);
    if (s) return s;
    if (info.layout == SDC_LAYOUT_UNKNOWN)
        return SDC_OK; /* not SD 1.x at all: the loader says what it looks like */
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++)
        if ((parts & (1u << c)) && !info.has[c])
            return sdc_err_set(err, SDC_ERR_FORMAT, "%s: the checkpoint has no %s, which this "
                               "command needs", model, sdc_component_name(c));
    return SDC_OK;
}

unsigned long long cli_png_bound(int w, int h) {
    /* stored deflate blocks: 5 bytes per 64 KiB, a filter byte per row, headers and text */
    unsigned long long raw = (unsigned long long)w * h * 3 + (unsigned long long)h;
    return raw + raw / 65535 * 5 + 65536;
}
