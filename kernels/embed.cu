/* embed.cu — sinusoidal timestep embedding (rounded step by step as the CPU
 * backend and diffusers do it in F32) and table lookup. The ids live on the
 * device, so an id outside [0, V) is found there: a check kernel records the
 * first bad position and the op reads it back (one small copy, which waits for
 * the GPU; CLIP does this twice per prompt) to report the id and position as
 * the CPU backend does. */
#include "cuda_common.cuh"

/* t [N] (F32) -> y [N, dim]; sin then cos halves ([cos, sin] when flip). */
template <typename T>
__global__ void timestep_kernel(const float *t, T *y, int n, int dim, bool flip, float neg_log,
                                float denom) {
    int half = dim / 2;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n * dim; i += gridDim.x * blockDim.x) {
        int r = i / dim, c = i - r * dim;
        float v = 0.0f; /* an odd dim's last column */
        if (c < 2 * half) {
            int k = c < half ? c : c - half;
            bool first = c < half; /* the first half holds sin, or cos when flip */
            float freq = expf(neg_log * (float)k / denom);
            float arg = t[r] * freq;
            v = first != flip ? sinf(arg) : cosf(arg);
        }
        cu_st(y, i, v);
    }
}

sdc_status sdc_cuda_timestep_embedding(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    const sdc_tensor *t = op->src[0];
    int64_t n = t->shape[0];
    int dim = op->p.timestep.dim;
    if (n == 0) return SDC_OK;
    if (cu_check_elems(n * dim, "timestep_embedding", err)) return err->code;
    float neg_log = (float)-log((double)op->p.timestep.max_period);
    float denom = (float)(dim / 2) - op->p.timestep.freq_shift;
    CU_DISPATCH(op->dst->dtype, T, "timestep_embedding", err,
                timestep_kernel<T><<<cu_blocks(n * dim, 256), 256, 0, cu_stream>>>(
                    (const float *)t->data, (T *)op->dst->data, (int)n, dim,
                    op->p.timestep.flip_sin_to_cos, neg_log, denom));
    return cu_check_launch(err, "timestep_embedding");
}

/* Lowers *bad to the first position whose id is outside [0, v). */
__global__ void check_ids_kernel(const int32_t *ids, int64_t rows, int64_t v,
                                 unsigned long long *bad) {
    for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
         r += (int64_t)gridDim.x * blockDim.x)
        if (ids[r] < 0 || ids[r] >= v) atomicMin(bad, (unsigned long long)r);
}

/* ids [rows] (I32), table [V, D] of dtype tdt -> y [rows, D]; a bad id
 * (reported by check_ids_kernel) gathers zeros instead of reading outside. */
template <typename T>
__global__ void embedding_kernel(const int32_t *ids, const void *tab, int tdt, T *y, int rows,
                                 int d, int64_t v) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < rows * d; i += gridDim.x * blockDim.x) {
        int r = i / d, c = i - r * d;
        int32_t id = ids[r];
        cu_st(y, i, id >= 0 && id < v ? cu_ld_any(tab, tdt, (int64_t)id * d + c) : 0.0f);
    }
}

/* ids [...] (I32), table [V, D] -> y [..., D] */
sdc_status sdc_cuda_embedding(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *ids = op->src[0], *tab = op->src[1];
    int64_t rows = sdc_tensor_numel(ids), d = tab->shape[1], v = tab->shape[0];
    if (rows == 0) return SDC_OK;
    if (cu_check_elems(rows * (d > 0 ? d : 1), "embedding", err)) return err->code;
    unsigned long long *bad = cu_impl(be)->flag;
    sdc_status s = cu_check(cudaMemsetAsync(bad, 0xff, sizeof *bad, cu_stream), err,
                            "embedding (cudaMemsetAsync)");
    if (s) return s;
    check_ids_kernel<<<cu_blocks(rows, 256), 256, 0, cu_stream>>>((const int32_t *)ids->data, rows, v, bad);
    if ((s = cu_check_launch(err, "embedding (id check)"))) return s;
    if (d > 0) {
        CU_DISPATCH(op->dst->dtype, T, "embedding", err,
                    embedding_kernel<T><<<cu_blocks(rows * d, 256), 256, 0, cu_stream>>>(
                        (const int32_t *)ids->data, tab->data, (int)tab->dtype,
                        (T *)op->dst->data, (int)rows, (int)d, v));
        if ((s = cu_check_launch(err, "embedding"))) return s;
    }
    /* The id check reads the flag back: the one op that waits for the
     * device (so a text encoder is never recorded as a graph). */
    unsigned long long first = 0;
    if ((s = be->download(be, &first, bad, sizeof first, err))) {
        sdc_err_wrap(err, "embedding (the id check)");
        return s;
    }
    if (first < (unsigned long long)rows) {
        int32_t id = 0;
        if ((s = be->download(be, &id, (const int32_t *)ids->data + first, sizeof id, err)))
            return s;
        return sdc_err_set(err, SDC_ERR_ARG,
                           "embedding: id %d at position %lld is outside [0, %lld)", (int)id,
                           (long long)first, (long long)v);
    }
    return SDC_OK;
}
