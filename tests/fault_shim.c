/* fault_shim.c — an LD_PRELOAD library that injects I/O faults into the sdc
 * CLI for the `faults` suite (built as $(BUILD)/libsdc_fault.so). Only files
 * and folders whose path contains $SDC_FAULT_MATCH are touched; $SDC_FAULT
 * says how:
 *
 *   enospc:N   the Nth write() to a matching file writes half its bytes, and
 *              every later write() to one fails with ENOSPC (disk full in
 *              the middle of a file)
 *   eio_fsync:N  the Nth fsync()/fdatasync() of a matching file or folder
 *              fails with EIO (counted over matching descriptors only)
 *   erofs, eacces  creating, opening for writing, mkdir, rename into or
 *              unlink of a matching path fail with EROFS / EACCES (a
 *              read-only or forbidden output folder; chmod does not stop
 *              root)
 *
 * Each fault that fires is logged to stderr as "fault_shim: ...". Runs as
 * the only preload of a plain or ASan build (then with
 * ASAN_OPTIONS=verify_asan_link_order=0). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum { F_NONE, F_ENOSPC, F_EIO_FSYNC, F_ERRNO };

static int mode = -1, nth, err_no;
static const char *match;
static atomic_int n_writes, n_fsyncs;
#define MAX_FD 4096
static atomic_bool watched[MAX_FD];

static void config(void) {
    if (mode >= 0) return;
    const char *f = getenv("SDC_FAULT");
    match = getenv("SDC_FAULT_MATCH");
    int m = F_NONE;
    if (f && match && *match) {
        if (!strncmp(f, "enospc:", 7)) m = F_ENOSPC, nth = atoi(f + 7);
        else if (!strncmp(f, "eio_fsync:", 10)) m = F_EIO_FSYNC, nth = atoi(f + 10);
        else if (!strcmp(f, "erofs")) m = F_ERRNO, err_no = EROFS;
        else if (!strcmp(f, "eacces")) m = F_ERRNO, err_no = EACCES;
    }
    mode = m;
}

static bool matches(const char *path) {
    config();
    return mode != F_NONE && path && strstr(path, match);
}

static void say(const char *what, const char *path) {
    char msg[512];
    int n = snprintf(msg, sizeof msg, "fault_shim: %s %s\n", what, path ? path : "");
    ssize_t (*real_write)(int, const void *, size_t) = dlsym(RTLD_NEXT, "write");
    if (n > 0 && real_write) (void)!real_write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

/* Opening path with flags is refused in errno mode. */
static bool refuse_open(const char *path, int flags) {
    config(); /* the mode is read on the first call of any hook */
    if (mode != F_ERRNO || !matches(path)) return false;
    if (!(flags & (O_CREAT | O_WRONLY | O_RDWR | O_TRUNC))) return false;
    say("refused open", path);
    errno = err_no;
    return true;
}

static int track(int fd, const char *path) {
    if (fd >= 0 && fd < MAX_FD) atomic_store(&watched[fd], matches(path));
    return fd;
}

#define REAL(ret, name, ...)                                  \
    static ret (*real)(__VA_ARGS__);                          \
    if (!real) real = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    REAL(int, "open", const char *, int, ...);
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    if (refuse_open(path, flags)) return -1;
    return track(real(path, flags, m), path);
}

int open64(const char *path, int flags, ...) {
    REAL(int, "open64", const char *, int, ...);
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    if (refuse_open(path, flags)) return -1;
    return track(real(path, flags, m), path);
}

int openat(int dir, const char *path, int flags, ...) {
    REAL(int, "openat", int, const char *, int, ...);
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    if (refuse_open(path, flags)) return -1;
    return track(real(dir, path, flags, m), path);
}

int openat64(int dir, const char *path, int flags, ...) {
    REAL(int, "openat64", int, const char *, int, ...);
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    if (refuse_open(path, flags)) return -1;
    return track(real(dir, path, flags, m), path);
}

int creat(const char *path, mode_t m) {
    return open(path, O_CREAT | O_WRONLY | O_TRUNC, m);
}

int close(int fd) {
    REAL(int, "close", int);
    if (fd >= 0 && fd < MAX_FD) atomic_store(&watched[fd], false);
    return real(fd);
}

static bool is_watched(int fd) { return fd >= 0 && fd < MAX_FD && atomic_load(&watched[fd]); }

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(ssize_t, "write", int, const void *, size_t);
    if (mode == F_ENOSPC && is_watched(fd)) {
        int k = atomic_fetch_add(&n_writes, 1) + 1;
        if (k == nth && n > 1) {
            say("short write, then disk full", "");
            return real(fd, buf, n / 2);
        }
        if (k >= nth) {
            errno = ENOSPC;
            return -1;
        }
    }
    return real(fd, buf, n);
}

static bool fail_fsync(int fd) {
    if (mode != F_EIO_FSYNC || !is_watched(fd)) return false;
    if (atomic_fetch_add(&n_fsyncs, 1) + 1 != nth) return false;
    say("fsync fails with EIO", "");
    errno = EIO;
    return true;
}

int fsync(int fd) {
    REAL(int, "fsync", int);
    return fail_fsync(fd) ? -1 : real(fd);
}

int fdatasync(int fd) {
    REAL(int, "fdatasync", int);
    return fail_fsync(fd) ? -1 : real(fd);
}

static bool refuse_path(const char *what, const char *path) {
    config();
    if (mode != F_ERRNO || !matches(path)) return false;
    say(what, path);
    errno = err_no;
    return true;
}

int mkdir(const char *path, mode_t m) {
    REAL(int, "mkdir", const char *, mode_t);
    struct stat sb;
    if (matches(path) && mode == F_ERRNO && stat(path, &sb) == 0) { /* as the kernel says first */
        errno = EEXIST;
        return -1;
    }
    return refuse_path("refused mkdir", path) ? -1 : real(path, m);
}

int rename(const char *from, const char *to) {
    REAL(int, "rename", const char *, const char *);
    return refuse_path("refused rename", to) || refuse_path("refused rename", from) ? -1 : real(from, to);
}

int unlink(const char *path) {
    REAL(int, "unlink", const char *);
    return refuse_path("refused unlink", path) ? -1 : real(path);
}
