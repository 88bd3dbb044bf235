/* random_weights.c — fills a parameter table with random weights of sane
 * scale (for make-random checkpoints and benchmarks): mean 0 and variance
 * 1/fan_in for matrices and kernels, 1 ± 0.1 for norm scales, 0 ± 0.02 for
 * biases and embeddings. Deterministic for a seed, and independent of thread count. */
#include "params.h"

#include "../core/parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536 /* elements per independently seeded stream */

typedef struct {
    void *data;
    sdc_dtype dtype;
    int64_t n;
    float mean, std;
    uint64_t seed;
} fill_job;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill_chunks(void *ctx, int64_t begin, int64_t end) {
    const fill_job *j = ctx;
    float buf[CHUNK];
    for (int64_t c = begin; c < end; c++) {
        uint64_t s = j->seed ^ ((uint64_t)c * 0xd1b54a32d192ed03ULL);
        int64_t lo = c * CHUNK, hi = lo + CHUNK < j->n ? lo + CHUNK : j->n;
        /* Irwin-Hall: four 16-bit uniforms from one draw, summed, give a
         * unit-variance bell curve with tails cut at ±3.46σ — cheap, and no
         * outliers to disturb timings. */
        for (int64_t i = lo; i < hi; i++) {
            uint64_t r = splitmix64(&s);
            float sum = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) +
                        (float)((r >> 32) & 0xffff) + (float)(r >> 48);
            float u = sum * (1.0f / 65536.0f) - 2.0f; /* variance 1/3 */
            buf[i - lo] = j->mean + j->std * 1.7320508f * u;
        }
        size_t esz = sdc_dtype_size(j->dtype);
        sdc_convert((unsigned char *)j->data + (size_t)lo * esz, j->dtype, buf, SDC_F32,
                    (size_t)(hi - lo), NULL);
    }
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

sdc_status sdc_params_fill_random(sdc_params *p, sdc_backend *be, sdc_dtype dtype, uint64_t seed,
                                  sdc_err *err) {
    if (be->device != SDC_DEVICE_CPU)
        return sdc_err_set(err, SDC_ERR_ARG, "random weights: need the CPU backend");
    p->be = be;
    for (size_t r = 0; r < p->n; r++) {
        sdc_param *row = &p->rows[r];
        sdc_tensor *t = row->field;
        sdc_status s = sdc_tensor_init(t, dtype, row->ndim, row->shape, NULL, err);
        if (s) return s;
        size_t bytes = sdc_tensor_nbytes(t);
        t->data = be->alloc(be, bytes);
        if (!t->data) return sdc_err_set(err, SDC_ERR_OOM, "random weights: %zu bytes", bytes);
        if (sdc_params_own(p, t->data)) {
            be->free(be, t->data);
            return sdc_err_set(err, SDC_ERR_OOM, "random weights: out of memory");
        }
        fill_job j = {t->data, dtype, sdc_tensor_numel(t), 0.0f, 0.02f, seed + 0x9e37u * r};
        if (row->ndim >= 2 && !strstr(row->name, "embedding")) {
            int64_t fan_in = 1;
            for (int d = 1; d < row->ndim; d++) fan_in *= row->shape[d];
            j.std = (float)(1.0 / sqrt((double)fan_in));
        } else if (row->ndim == 1 && ends_with(row->name, "weight")) {
            j.mean = 1.0f; /* a norm's scale */
            j.std = 0.1f;
        }
        sdc_parallel_for((j.n + CHUNK - 1) / CHUNK, 1, fill_chunks, &j);
    }
    return SDC_OK;
}
