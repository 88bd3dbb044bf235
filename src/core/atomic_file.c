/* atomic_file.c — temp file, checked writes, fsync, rename, directory fsync. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct sdc_atomic_file {
    int fd;
    char *path, *tmp;
};

sdc_atomic_file *sdc_atomic_open(const char *path, sdc_err *err) {
    sdc_atomic_file *f = calloc(1, sizeof *f);
    size_t n = strlen(path);
    if (!f || !(f->path = strdup(path)) || !(f->tmp = malloc(n + 32))) {
        if (f) free(f->path);
        free(f);
        sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
        return NULL;
    }
    /* The pid keeps concurrent writers apart; O_EXCL refuses a stale name. */
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(f->tmp, n + 32, "%s.tmp.%ld.%d", path, (long)getpid(), attempt);
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (f->fd >= 0 || errno != EEXIST) break;
    }
    if (f->fd < 0) {
        sdc_err_set(err, SDC_ERR_IO, "%s: cannot create a temporary file: %s", path,
                    strerror(errno));
        free(f->tmp);
        free(f->path);
        free(f);
        return NULL;
    }
    return f;
}

sdc_status sdc_atomic_write(sdc_atomic_file *f, const void *data, size_t len, sdc_err *err) {
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(f->fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return sdc_err_set(err, SDC_ERR_IO, "%s: write failed: %s", f->path,
                               w < 0 ? strerror(errno) : "no progress");
        p += w;
        len -= (size_t)w;
    }
    return SDC_OK;
}

sdc_status sdc_fsync_parent(const char *path, sdc_err *err) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot open directory %s: %s", path, dir,
                                   strerror(errno));
    int rc = fsync(fd), e = errno;
    close(fd);
    if (rc != 0) return sdc_err_set(err, SDC_ERR_IO, "%s: fsync of %s failed: %s", path, dir,
                                    strerror(e));
    return SDC_OK;
}

static void free_file(sdc_atomic_file *f) {
    free(f->tmp);
    free(f->path);
    free(f);
}

sdc_status sdc_atomic_commit(sdc_atomic_file *f, sdc_err *err) {
    sdc_status s = SDC_OK;
    if (fsync(f->fd) != 0)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
    if (close(f->fd) != 0 && !s)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    f->fd = -1;
    if (!s && rename(f->tmp, f->path) != 0)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: rename failed: %s", f->path, strerror(errno));
    if (s) unlink(f->tmp);
    /* The rename is not durable: the file failed, so it goes (a caller that
     * records only successes must find no file it did not record). */
    else if ((s = sdc_fsync_parent(f->path, err))) unlink(f->path);
    free_file(f);
    return s;
}

void sdc_atomic_abort(sdc_atomic_file *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    free_file(f);
}

sdc_status sdc_write_file_atomic(const char *path, const void *data, size_t len, sdc_err *err) {
    sdc_atomic_file *f = sdc_atomic_open(path, err);
    if (!f) return err ? err->code : SDC_ERR_IO;
    sdc_status s = sdc_atomic_write(f, data, len, err);
    if (s) {
        sdc_atomic_abort(f);
        return s;
    }
    return sdc_atomic_commit(f, err);
}

int sdc_lock_file(const char *path, bool wait) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -2;
    }
    return fd;
}

sdc_status sdc_read_file_capped(const char *path, size_t max_bytes, uint8_t **buf, size_t *len,
                                sdc_err *err) {
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    sdc_status st = SDC_OK;
    if (fstat(fd, &sb) != 0)
        st = sdc_err_set(err, SDC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = sdc_err_set(err, SDC_ERR_ARG, "%s: not a regular file", path);
    else if ((uint64_t)sb.st_size > max_bytes)
        st = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: file of %lld bytes is over the %zu-byte limit",
                         path, (long long)sb.st_size, max_bytes);
    size_t n = st ? 0 : (size_t)sb.st_size, got = 0;
    uint8_t *p = st ? NULL : malloc(n + 1);
    if (!st && !p) st = sdc_err_set(err, SDC_ERR_OOM, "%s: cannot allocate %zu bytes", path, n + 1);
    while (!st && got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = sdc_err_set(err, SDC_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        else if (r == 0) st = sdc_err_set(err, SDC_ERR_IO, "%s: file shrank while reading", path);
        else got += (size_t)r;
    }
    close(fd);
    if (st) {
        free(p);
        return st;
    }
    p[n] = 0;
    *buf = p;
    *len = n;
    return SDC_OK;
}
