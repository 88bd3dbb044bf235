/* tensor.c — tensor metadata helpers and owned host tensors. */
#include "sdc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int64_t sdc_tensor_numel(const sdc_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t sdc_tensor_nbytes(const sdc_tensor *t) {
    return (size_t)sdc_tensor_numel(t) * sdc_dtype_size(t->dtype);
}

sdc_status sdc_tensor_init(sdc_tensor *t, sdc_dtype dtype, int ndim, const int64_t *shape,
                           void *data, sdc_err *err) {
    if (ndim < 0 || ndim > SDC_MAX_DIMS)
        return sdc_err_set(err, SDC_ERR_SHAPE, "tensor rank %d is outside 0..%d", ndim,
                           SDC_MAX_DIMS);
    if ((unsigned)dtype >= SDC_DTYPE_COUNT)
        return sdc_err_set(err, SDC_ERR_ARG, "unknown dtype %d", (int)dtype);
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    /* Bytes must fit comfortably in size_t and int64_t. */
    uint64_t total = sdc_dtype_size(dtype);
    for (int i = 0; i < SDC_MAX_DIMS; i++) {
        int64_t d = i < ndim ? shape[i] : 1;
        if (d < 0) return sdc_err_set(err, SDC_ERR_SHAPE, "tensor dim %d is negative (%lld)", i,
                                      (long long)d);
        if (d != 0 && total > (UINT64_MAX >> 2) / (uint64_t)d)
            return sdc_err_set(err, SDC_ERR_OOM, "tensor size overflows");
        total *= (uint64_t)d;
        t->shape[i] = d;
    }
    t->data = data;
    t->device = SDC_DEVICE_CPU;
    return SDC_OK;
}

sdc_tensor *sdc_tensor_new(sdc_dtype dtype, int ndim, const int64_t *shape, sdc_err *err) {
    sdc_tensor tmp;
    if (sdc_tensor_init(&tmp, dtype, ndim, shape, NULL, err)) return NULL;
    size_t bytes = sdc_tensor_nbytes(&tmp);
    sdc_tensor *t = malloc(sizeof *t);
    void *data = NULL;
    if (t && posix_memalign(&data, 64, bytes ? (bytes + 63) & ~(size_t)63 : 64) != 0) data = NULL;
    if (!t || !data) {
        free(t);
        free(data);
        sdc_err_set(err, SDC_ERR_OOM, "cannot allocate a %zu-byte tensor", bytes);
        return NULL;
    }
    *t = tmp;
    t->data = data;
    t->owned = true;
    return t;
}

void sdc_tensor_free(sdc_tensor *t) {
    if (!t) return;
    if (t->owned) free(t->data);
    free(t);
}

bool sdc_tensor_same_shape(const sdc_tensor *a, const sdc_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *sdc_shape_str(const sdc_tensor *t, char *buf, size_t cap) {
    size_t used = 0;
    int n = snprintf(buf, cap, "[");
    if (n > 0) used = (size_t)n;
    for (int i = 0; i < t->ndim && used < cap; i++) {
        n = snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (n > 0) used += (size_t)n;
    }
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

void sdc_tensor_release_pages(const sdc_tensor *t) {
    if (!t || !t->file_mapped || !t->data) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    /* Only whole pages inside the tensor: a neighbour's pages stay. */
    uintptr_t a = (uintptr_t)t->data, z = a + sdc_tensor_nbytes(t);
    a = (a + page - 1) / page * page;
    z = z / page * page;
    if (z > a) madvise((void *)a, z - a, MADV_DONTNEED); /* advisory: failure is harmless */
}
