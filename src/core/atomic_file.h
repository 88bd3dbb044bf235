/* atomic_file.h — whole files: durable writes, reads with a size cap, the
 * fsync of a parent folder, lock files. A durable write goes to a temp file
 * in the target's directory (O_EXCL), every write checked, fsync, rename into
 * place, fsync of the directory. A failure at any step removes the temp file
 * and leaves the target untouched (except a failed fsync of the directory
 * after the rename: then the new file is removed); an fsync error is a
 * failure (never retried). */
#ifndef SDC_ATOMIC_FILE_H
#define SDC_ATOMIC_FILE_H

#include "sdc.h"

typedef struct sdc_atomic_file sdc_atomic_file;

sdc_atomic_file *sdc_atomic_open(const char *path, sdc_err *err);
sdc_status sdc_atomic_write(sdc_atomic_file *f, const void *data, size_t len, sdc_err *err);
/* Makes the file durable under its final name; frees f either way. */
sdc_status sdc_atomic_commit(sdc_atomic_file *f, sdc_err *err);
/* Drops the temp file; frees f. NULL is ignored. */
void sdc_atomic_abort(sdc_atomic_file *f);
/* All of the above for one buffer. */
sdc_status sdc_write_file_atomic(const char *path, const void *data, size_t len, sdc_err *err);
/* fsync of the folder that holds path (".", "/" or its parent), so that a
 * rename or link into it is durable. */
sdc_status sdc_fsync_parent(const char *path, sdc_err *err);

/* Opens (creating, mode 0644) the lock file path and takes an exclusive
 * flock on it: waiting for it when wait, else failing at once when another
 * process holds it. Returns the fd (closing it releases the lock); -1 when
 * path cannot be opened, -2 when the lock is not taken (errno says why:
 * EWOULDBLOCK when another process holds it). */
int sdc_lock_file(const char *path, bool wait);

/* Reads a whole regular file into a malloc'ed buffer (+1 NUL byte, not
 * counted); larger than max_bytes is refused before reading. */
sdc_status sdc_read_file_capped(const char *path, size_t max_bytes, uint8_t **buf, size_t *len,
                                sdc_err *err);

#endif
