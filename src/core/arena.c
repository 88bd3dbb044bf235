/* arena.c — first-fit allocator over a few big backend blocks (see arena.h). */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN 64

typedef struct segment {
    size_t off, size;
    bool used;
} segment;

typedef struct block {
    unsigned char *base;
    size_t size;
    segment *seg; /* sorted by offset, tiling [0, size) */
    size_t nseg, cap;
} block;

struct sdc_arena {
    sdc_backend *be;
    size_t block_bytes;
    block *blocks;
    size_t nblocks;
    size_t in_use, peak;
};

static size_t round_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

sdc_arena *sdc_arena_create(sdc_backend *be, size_t block_bytes, sdc_err *err) {
    sdc_arena *a = calloc(1, sizeof *a);
    if (!a) {
        sdc_err_set(err, SDC_ERR_OOM, "arena: out of host memory");
        return NULL;
    }
    a->be = be;
    a->block_bytes = block_bytes ? round_up(block_bytes) : (size_t)64 << 20;
    return a;
}

static void free_block(sdc_arena *a, block *b) {
    a->be->free(a->be, b->base);
    free(b->seg);
}

static void free_blocks(sdc_arena *a) {
    for (size_t i = 0; i < a->nblocks; i++) free_block(a, &a->blocks[i]);
    free(a->blocks);
    a->blocks = NULL;
    a->nblocks = 0;
}

void sdc_arena_destroy(sdc_arena *a) {
    if (!a) return;
    free_blocks(a);
    free(a);
}

static bool seg_insert(block *b, size_t at, segment s) {
    if (b->nseg == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        segment *n = realloc(b->seg, cap * sizeof *n);
        if (!n) return false;
        b->seg = n;
        b->cap = cap;
    }
    memmove(&b->seg[at + 1], &b->seg[at], (b->nseg - at) * sizeof *b->seg);
    b->seg[at] = s;
    b->nseg++;
    return true;
}

static block *add_block(sdc_arena *a, size_t size) {
    block *nb = realloc(a->blocks, (a->nblocks + 1) * sizeof *nb);
    if (!nb) return NULL;
    a->blocks = nb;
    block *b = &a->blocks[a->nblocks];
    memset(b, 0, sizeof *b);
    b->base = a->be->alloc(a->be, size);
    if (!b->base) return NULL;
    b->size = size;
    if (!seg_insert(b, 0, (segment){0, size, false})) {
        a->be->free(a->be, b->base);
        return NULL;
    }
    a->nblocks++;
    return b;
}

/* Takes `size` bytes from the front of free segment i. */
static void *carve(block *b, size_t i, size_t size) {
    segment *s = &b->seg[i];
    if (s->size > size) {
        segment rest = {s->off + size, s->size - size, false};
        if (!seg_insert(b, i + 1, rest)) return NULL;
        s = &b->seg[i];
        s->size = size;
    }
    s->used = true;
    return b->base + s->off;
}

void *sdc_arena_alloc(sdc_arena *a, size_t bytes, sdc_err *err) {
    size_t size = round_up(bytes ? bytes : 1);
    if (size < bytes) {
        sdc_err_set(err, SDC_ERR_OOM, "arena: request of %zu bytes overflows", bytes);
        return NULL;
    }
    for (size_t bi = 0; bi < a->nblocks; bi++) {
        block *b = &a->blocks[bi];
        for (size_t i = 0; i < b->nseg; i++) {
            if (!b->seg[i].used && b->seg[i].size >= size) {
                void *p = carve(b, i, size);
                if (!p) goto oom;
                a->in_use += size;
                if (a->in_use > a->peak) a->peak = a->in_use;
                return p;
            }
        }
    }
    block *b = add_block(a, size > a->block_bytes ? size : a->block_bytes);
    if (!b) goto oom;
    void *p = carve(b, 0, size);
    if (!p) goto oom;
    a->in_use += size;
    if (a->in_use > a->peak) a->peak = a->in_use;
    return p;
oom:
    sdc_err_set(err, SDC_ERR_OOM, "arena: cannot allocate %zu bytes on %s (%zu in use)", bytes,
                a->be->name, a->in_use);
    return NULL;
}

void sdc_arena_release(sdc_arena *a, void *p) {
    if (!p) return;
    for (size_t bi = 0; bi < a->nblocks; bi++) {
        block *b = &a->blocks[bi];
        unsigned char *c = p;
        if (c < b->base || c >= b->base + b->size) continue;
        size_t off = (size_t)(c - b->base), lo = 0, hi = b->nseg;
        while (lo < hi) { /* binary search for the segment at off */
            size_t mid = (lo + hi) / 2;
            if (b->seg[mid].off < off) lo = mid + 1; else hi = mid;
        }
        if (lo == b->nseg || b->seg[lo].off != off || !b->seg[lo].used) return;
        b->seg[lo].used = false;
        a->in_use -= b->seg[lo].size;
        if (lo + 1 < b->nseg && !b->seg[lo + 1].used) { /* merge with the next */
            b->seg[lo].size += b->seg[lo + 1].size;
            memmove(&b->seg[lo + 1], &b->seg[lo + 2], (b->nseg - lo - 2) * sizeof *b->seg);
            b->nseg--;
        }
        if (lo > 0 && !b->seg[lo - 1].used) { /* merge with the previous */
            b->seg[lo - 1].size += b->seg[lo].size;
            memmove(&b->seg[lo], &b->seg[lo + 1], (b->nseg - lo - 1) * sizeof *b->seg);
            b->nseg--;
        }
        return;
    }
}

sdc_status sdc_arena_tensor(sdc_arena *a, sdc_tensor *t, sdc_dtype dtype, int ndim,
                            const int64_t *shape, sdc_err *err) {
    sdc_status s = sdc_tensor_init(t, dtype, ndim, shape, NULL, err);
    if (s) return s;
    t->data = sdc_arena_alloc(a, sdc_tensor_nbytes(t), err);
    if (!t->data) return SDC_ERR_OOM;
    t->device = a->be->device;
    return SDC_OK;
}

sdc_status sdc_arena_reset(sdc_arena *a, sdc_err *err) {
    size_t total = 0;
    for (size_t i = 0; i < a->nblocks; i++) total += a->blocks[i].size;
    a->in_use = 0;
    if (a->nblocks <= 1) {
        if (a->nblocks == 1) {
            a->blocks[0].nseg = 1;
            a->blocks[0].seg[0] = (segment){0, a->blocks[0].size, false};
        }
        return SDC_OK;
    }
    free_blocks(a);
    if (!add_block(a, total))
        return sdc_err_set(err, SDC_ERR_OOM, "arena: cannot allocate a %zu-byte block", total);
    return SDC_OK;
}

size_t sdc_arena_trim(sdc_arena *a) {
    size_t freed = 0, kept = 0;
    for (size_t i = 0; i < a->nblocks; i++) {
        block *b = &a->blocks[i];
        if (b->nseg == 1 && !b->seg[0].used) {
            freed += b->size;
            free_block(a, b);
        } else {
            a->blocks[kept++] = *b;
        }
    }
    a->nblocks = kept;
    return freed;
}

size_t sdc_arena_in_use(const sdc_arena *a) { return a->in_use; }
size_t sdc_arena_peak(const sdc_arena *a) { return a->peak; }
size_t sdc_arena_capacity(const sdc_arena *a) {
    size_t total = 0;
    for (size_t i = 0; i < a->nblocks; i++) total += a->blocks[i].size;
    return total;
}
