/* sdc_cuda.h — what the CUDA backend offers beyond the op contract of
 * sdc_ops.h: device information and memory statistics (the peak is what a
 * txt2img run needed), a choice between kernel variants, a device-side
 * NaN/Inf count, event timing for benchmarks, and CUDA graphs.
 *
 *     sdc_err err = {0};
 *     sdc_backend *be = sdc_cuda_backend_create(0, &err);
 *     if (!be) printf("no CUDA: %s\n", err.msg);   // SDC_ERR_UNSUPPORTED
 *     ...
 *     sdc_cuda_info info;
 *     sdc_cuda_info_get(be, &info, &err);          // info.peak_bytes
 *
 * In a build without CUDA (src/core/cuda_stub.c) every function here returns
 * SDC_ERR_UNSUPPORTED, so callers need no #ifdef. */
#ifndef SDC_CUDA_H
#define SDC_CUDA_H

#include "sdc_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* conv2d: im2col + cublasGemmEx (the default, any dtype), or the implicit
 * GEMM on tensor cores with the bias fused (F16/BF16 activations; F32 falls
 * back to im2col). $SDC_CUDA_CONV=im2col|implicit sets it at creation. */
typedef enum sdc_cuda_conv_algo {
    SDC_CUDA_CONV_IM2COL = 0,
    SDC_CUDA_CONV_IMPLICIT,
} sdc_cuda_conv_algo;

/* attention: tensor cores (WMMA) where the head dim and dtype allow (F16/BF16,
 * D % 8 == 0) else the scalar FP32 kernel; or always the scalar kernel.
 * $SDC_CUDA_ATTN=auto|simple sets it at creation. */
typedef enum sdc_cuda_attn_algo {
    SDC_CUDA_ATTN_AUTO = 0,
    SDC_CUDA_ATTN_SIMPLE,
} sdc_cuda_attn_algo;

typedef struct sdc_cuda_info {
    char name[256];        /* "NVIDIA H100 80GB HBM3" */
    int device, cc_major, cc_minor, sm_count;
    size_t total_bytes;    /* device memory */
    size_t in_use_bytes;   /* allocated through this backend now (weights, arena, scratch) */
    size_t peak_bytes;     /* the most that was ever allocated at once (since the last reset) */
    sdc_cuda_conv_algo conv;
    sdc_cuda_attn_algo attn;
} sdc_cuda_info;

sdc_status sdc_cuda_info_get(sdc_backend *be, sdc_cuda_info *info, sdc_err *err);
/* Starts a new peak measurement from what is in use now. */
sdc_status sdc_cuda_reset_peak(sdc_backend *be, sdc_err *err);
sdc_status sdc_cuda_set_algos(sdc_backend *be, sdc_cuda_conv_algo conv, sdc_cuda_attn_algo attn,
                              sdc_err *err);
/* Number of NaN and Inf elements of a float tensor on the device (waits). */
sdc_status sdc_cuda_count_nonfinite(sdc_backend *be, const sdc_tensor *t, int64_t *count,
                                    sdc_err *err);
/* Event timing of the work queued between start and stop (stop waits for it). */
sdc_status sdc_cuda_timer_start(sdc_backend *be, sdc_err *err);
sdc_status sdc_cuda_timer_stop(sdc_backend *be, double *ms, sdc_err *err);

/* CUDA graphs: the ops run between begin and end are recorded, not run, and
 * the graph replays them with the same kernels, arguments and addresses:
 *
 *     sdc_cuda_graph_begin(be, &err);
 *     y = forward(...);                        // recorded
 *     sdc_cuda_graph *g;
 *     if (sdc_cuda_graph_end(be, &g, &err) == SDC_OK)
 *         sdc_cuda_graph_launch(be, g, &err);  // runs it; again with new inputs
 *     sdc_cuda_graph_free(be, g);
 *
 * While recording nothing may wait for the device (download, synchronize,
 * the embedding op's id check) or grow a scratch buffer: such a call fails
 * and so does end, which always leaves recording mode. Run the forward once
 * first so that the arena and the scratch buffers have their size. The caller
 * keeps every address the graph uses (inputs, output, weights) alive and
 * unchanged while it replays. */
typedef struct sdc_cuda_graph sdc_cuda_graph;
sdc_status sdc_cuda_graph_begin(sdc_backend *be, sdc_err *err);
sdc_status sdc_cuda_graph_end(sdc_backend *be, sdc_cuda_graph **graph, sdc_err *err);
sdc_status sdc_cuda_graph_launch(sdc_backend *be, sdc_cuda_graph *graph, sdc_err *err);
void sdc_cuda_graph_free(sdc_backend *be, sdc_cuda_graph *graph);

#ifdef __cplusplus
}
#endif
#endif /* SDC_CUDA_H */
