/* embed.c — CPU timestep embedding (sinusoidal, as diffusers computes it in
 * fp32) and table lookup embedding (F32/F16/BF16 table rows widened to F32;
 * an out-of-range id is an error naming the id and its position). */
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

/* t [N] (F32) -> y [N, dim]. Each step rounds to float where torch's does,
 * so the result tracks diffusers' get_timestep_embedding, not the exact
 * value: exponent = (float)(-ln max_period) · (float)i / (half - shift),
 * freq = expf(exponent), arg = t · freq in float, then sinf/cosf. */
sdc_status sdc_cpu_timestep_embedding(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const float *t = op->src[0]->data;
    float *y = op->dst->data;
    int64_t n = op->src[0]->shape[0];
    int dim = op->p.timestep.dim, half = dim / 2;
    bool flip = op->p.timestep.flip_sin_to_cos;
    float neg_log = (float)-log((double)op->p.timestep.max_period);
    float denom = (float)half - op->p.timestep.freq_shift;
    for (int64_t r = 0; r < n; r++) {
        float *row = y + r * dim;
        float *sin_part = row + (flip ? half : 0), *cos_part = row + (flip ? 0 : half);
        for (int i = 0; i < half; i++) {
            float freq = expf(neg_log * (float)i / denom);
            float arg = t[r] * freq;
            sin_part[i] = sinf(arg);
            cos_part[i] = cosf(arg);
        }
        if (dim % 2) row[dim - 1] = 0.0f;
    }
    return SDC_OK;
}

typedef struct emb_ctx {
    const int32_t *ids;      /* [rows] */
    const unsigned char *tab; /* [V, D] of dtype tdt, maybe unaligned */
    sdc_dtype tdt;
    float *y;                /* [rows, D] */
    int64_t d;
} emb_ctx;

static void embedding_range(void *arg, int64_t begin, int64_t end) {
    const emb_ctx *k = arg;
    size_t row_bytes = (size_t)k->d * sdc_dtype_size(k->tdt);
    for (int64_t r = begin; r < end; r++) {
        const unsigned char *src = k->tab + (size_t)k->ids[r] * row_bytes;
        /* Cannot fail: the dtype pair was checked before the split. */
        (void)sdc_convert(k->y + r * k->d, SDC_F32, src, k->tdt, (size_t)k->d, NULL);
    }
}

/* ids [...] (I32), table [V, D] -> y [..., D] */
sdc_status sdc_cpu_embedding(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *ids = op->src[0], *tab = op->src[1];
    const int32_t *id = ids->data;
    int64_t rows = sdc_tensor_numel(ids), v = tab->shape[0];
    for (int64_t i = 0; i < rows; i++)
        if (id[i] < 0 || id[i] >= v)
            return sdc_err_set(err, SDC_ERR_ARG,
                               "embedding: id %d at position %lld is outside [0, %lld)", (int)id[i],
                               (long long)i, (long long)v);
    if (sdc_convert(op->dst->data, SDC_F32, tab->data, tab->dtype, 0, err))
        return sdc_err_wrap(err, "embedding");
    emb_ctx k = {.ids = id, .tab = tab->data, .tdt = tab->dtype, .y = op->dst->data,
                 .d = tab->shape[1]};
    if (rows == 0 || k.d == 0) return SDC_OK;
    sdc_parallel_for(rows, 32768 / k.d + 1, embedding_range, &k);
    return SDC_OK;
}
