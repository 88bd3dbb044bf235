/* cpu_backend.c — the CPU backend: its op table, host memory, and the
 * weight-conversion scratch shared by its ops. */
#include "cpu_ops.h"
#include "cpu_avx512.h"
#include "cpu_isa.h"

#include <stdlib.h>
#include <string.h>

#define NSLOTS 8

typedef struct cpu_impl {
    float *slot[NSLOTS];
    size_t slot_cap[NSLOTS]; /* in floats */
} cpu_impl;

float *sdc_cpu_scratch(sdc_backend *be, int slot, size_t n, sdc_err *err) {
    cpu_impl *impl = be->impl;
    if (slot < 0 || slot >= NSLOTS) {
        sdc_err_set(err, SDC_ERR_ARG, "cpu: scratch slot %d out of range", slot);
        return NULL;
    }
    if (impl->slot_cap[slot] < n) {
        void *p = NULL;
        if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) {
            sdc_err_set(err, SDC_ERR_OOM, "cpu: cannot allocate %zu floats of scratch", n);
            return NULL;
        }
        free(impl->slot[slot]);
        impl->slot[slot] = p;
        impl->slot_cap[slot] = n;
    }
    return impl->slot[slot];
}

sdc_status sdc_cpu_widen(float *dst, const void *src, sdc_dtype t, size_t n, sdc_err *err) {
    if (t == SDC_F16 && sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512) {
        sdc_cpu_f16_to_f32_avx512(dst, src, n);
        return SDC_OK;
    }
    return sdc_convert(dst, SDC_F32, src, t, n, err);
}

const float *sdc_cpu_as_f32(sdc_backend *be, int slot, const sdc_tensor *t, sdc_err *err) {
    if (t->dtype == SDC_F32 && ((uintptr_t)t->data & 3) == 0) return t->data;
    size_t n = (size_t)sdc_tensor_numel(t);
    float *dst = sdc_cpu_scratch(be, slot, n, err);
    if (!dst) return NULL;
    if (sdc_cpu_widen(dst, t->data, t->dtype, n, err)) return NULL;
    return dst;
}

const float *sdc_cpu_rows_f32(sdc_backend *be, int slot, const sdc_tensor *t, int64_t cols,
                              int64_t r0, int64_t r1, sdc_err *err) {
    size_t off = (size_t)(r0 * cols), n = (size_t)((r1 - r0) * cols);
    if (t->dtype == SDC_F32 && ((uintptr_t)t->data & 3) == 0) return (const float *)t->data + off;
    float *dst = sdc_cpu_scratch(be, slot, n, err);
    if (!dst) return NULL;
    const char *src = (const char *)t->data + off * sdc_dtype_size(t->dtype);
    if (sdc_cpu_widen(dst, src, t->dtype, n, err)) return NULL;
    return dst;
}

int64_t sdc_cpu_row_block(const sdc_tensor *t, int64_t rows, int64_t cols) {
    if (t->dtype == SDC_F32 || rows * cols <= SDC_CPU_WIDEN_FLOATS) return rows;
    int64_t r = SDC_CPU_WIDEN_FLOATS / (cols ? cols : 1);
    r = r >= 64 ? r / 16 * 16 : r; /* sgemm likes M in multiples of its register tile */
    return r < 1 ? 1 : r;
}

static void *cpu_alloc(sdc_backend *be, size_t bytes) {
    (void)be;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

static void cpu_free(sdc_backend *be, void *p) {
    (void)be;
    free(p);
}

static sdc_status cpu_copy(sdc_backend *be, void *dst, const void *src, size_t bytes,
                           sdc_err *err) {
    (void)be;
    (void)err;
    memcpy(dst, src, bytes);
    return SDC_OK;
}

static sdc_status cpu_sync(sdc_backend *be, sdc_err *err) {
    (void)be;
    (void)err;
    return SDC_OK;
}

static bool cpu_supports(const sdc_backend *be, sdc_op_kind kind, sdc_dtype t) {
    (void)be;
    /* Activations are F32; convert also handles the half types. */
    return t == SDC_F32 || (kind == SDC_OP_CONVERT && (t == SDC_F16 || t == SDC_BF16));
}

static void cpu_trim(sdc_backend *be) {
    cpu_impl *impl = be->impl;
    for (int i = 0; i < NSLOTS; i++) {
        free(impl->slot[i]);
        impl->slot[i] = NULL;
        impl->slot_cap[i] = 0;
    }
}

static void cpu_destroy(sdc_backend *be) {
    cpu_trim(be);
    free(be->impl);
    free(be);
}

sdc_backend *sdc_cpu_backend_create(sdc_err *err) {
    sdc_backend *be = calloc(1, sizeof *be);
    cpu_impl *impl = calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        sdc_err_set(err, SDC_ERR_OOM, "cpu backend: out of memory");
        return NULL;
    }
    be->name = "cpu";
    be->device = SDC_DEVICE_CPU;
#define CPU_OP_SLOT(kind, name, outs, act) be->op[SDC_OP_##kind] = sdc_cpu_##name;
    SDC_OPS(CPU_OP_SLOT)
#undef CPU_OP_SLOT
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_copy;
    be->download = cpu_copy;
    be->synchronize = cpu_sync;
    be->trim = cpu_trim;
    be->supports = cpu_supports;
    be->destroy = cpu_destroy;
    be->impl = impl;
    (void)sdc_get_threads(); /* starts the pool settings and OpenBLAS's count */
    return be;
}
