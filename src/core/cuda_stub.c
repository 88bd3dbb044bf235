/* cuda_stub.c — the CUDA entry points when sdc is built without CUDA: each
 * says so with SDC_ERR_UNSUPPORTED (kernels/cuda_backend.cu has the real ones). */
#include "sdc_ops.h"
#include "sdc_cuda.h"

#ifndef SDC_WITH_CUDA
static sdc_status no_cuda(sdc_err *err) {
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                       "this sdc was built without CUDA (rebuild with make CUDA=1)");
}

sdc_backend *sdc_cuda_backend_create(int device_index, sdc_err *err) {
    (void)device_index;
    no_cuda(err);
    return NULL;
}

sdc_status sdc_cuda_info_get(sdc_backend *be, sdc_cuda_info *info, sdc_err *err) {
    (void)be;
    (void)info;
    return no_cuda(err);
}

sdc_status sdc_cuda_reset_peak(sdc_backend *be, sdc_err *err) {
    (void)be;
    return no_cuda(err);
}

sdc_status sdc_cuda_set_algos(sdc_backend *be, sdc_cuda_conv_algo conv, sdc_cuda_attn_algo attn,
                              sdc_err *err) {
    (void)be;
    (void)conv;
    (void)attn;
    return no_cuda(err);
}

sdc_status sdc_cuda_count_nonfinite(sdc_backend *be, const sdc_tensor *t, int64_t *count,
                                    sdc_err *err) {
    (void)be;
    (void)t;
    *count = 0;
    return no_cuda(err);
}

sdc_status sdc_cuda_timer_start(sdc_backend *be, sdc_err *err) {
    (void)be;
    return no_cuda(err);
}

sdc_status sdc_cuda_timer_stop(sdc_backend *be, double *ms, sdc_err *err) {
    (void)be;
    *ms = 0;
    return no_cuda(err);
}

sdc_status sdc_cuda_graph_begin(sdc_backend *be, sdc_err *err) {
    (void)be;
    return no_cuda(err);
}

sdc_status sdc_cuda_graph_end(sdc_backend *be, sdc_cuda_graph **graph, sdc_err *err) {
    (void)be;
    *graph = NULL;
    return no_cuda(err);
}

sdc_status sdc_cuda_graph_launch(sdc_backend *be, sdc_cuda_graph *graph, sdc_err *err) {
    (void)be;
    (void)graph;
    return no_cuda(err);
}

void sdc_cuda_graph_free(sdc_backend *be, sdc_cuda_graph *graph) {
    (void)be;
    (void)graph;
}
#else
/* ISO C forbids an empty translation unit. */
typedef int sdc_cuda_stub_unused;
#endif
