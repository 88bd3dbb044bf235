/* arena.h — the activation arena: a few large device blocks carved by a
 * first-fit allocator with coalescing, so that a model forward does no
 * per-op malloc. Bookkeeping lives on the host, so it works for device
 * memory too. After the first forward at a resolution the arena has grown
 * to its peak; sdc_arena_reset() then merges its blocks into one, and
 * sdc_arena_trim() gives the empty ones back between phases. */
#ifndef SDC_ARENA_H
#define SDC_ARENA_H

#include "sdc_ops.h"

typedef struct sdc_arena sdc_arena;

/* block_bytes: the size of each growth step (0 = 64 MiB). */
sdc_arena *sdc_arena_create(sdc_backend *be, size_t block_bytes, sdc_err *err);
void sdc_arena_destroy(sdc_arena *a);
/* 64-byte aligned; NULL (with err set) when the backend has no memory left. */
void *sdc_arena_alloc(sdc_arena *a, size_t bytes, sdc_err *err);
/* Returns p to the arena. NULL is ignored. */
void sdc_arena_release(sdc_arena *a, void *p);
/* Allocates a tensor's storage from the arena and fills t (device = backend's). */
sdc_status sdc_arena_tensor(sdc_arena *a, sdc_tensor *t, sdc_dtype dtype, int ndim,
                            const int64_t *shape, sdc_err *err);
/* Releases every allocation; merges blocks into one of the total size. */
sdc_status sdc_arena_reset(sdc_arena *a, sdc_err *err);
/* Gives every block with nothing allocated in it back to the backend, so
 * that one phase's peak (the VAE's at 512²: ~0.8 GB) is not carried into
 * the next; returns the bytes freed. Live allocations keep their blocks. */
size_t sdc_arena_trim(sdc_arena *a);
size_t sdc_arena_in_use(const sdc_arena *a);
size_t sdc_arena_peak(const sdc_arena *a);
size_t sdc_arena_capacity(const sdc_arena *a);

#endif
