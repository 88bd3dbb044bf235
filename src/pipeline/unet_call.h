/* unet_call.h — the UNet evaluation of each sampling step: x and t go in as
 * F32 at fixed device addresses, the prediction comes out as F32, and the
 * activations in between are the pipeline's dtype (F16 on CUDA by default).
 *
 * On CUDA the second call records the forward (input conversion, UNet,
 * output conversion) as a CUDA graph and every later call replays it: one
 * launch per step instead of ~1000, and no host work between kernels. A graph
 * replays fixed addresses, so the inputs, the context and the graph's output
 * stay allocated here across steps, and the first (eager) call has grown the
 * arena and the scratch buffers to the forward's needs, so recording gives
 * the same layout without allocating. If recording fails the calls stay
 * eager and p->graph_note says why.
 *
 *     sdc_unet_call c;
 *     sdc_unet_call_init(&c, p, SDC_F16, rows, h, w, ctx, &err);
 *     for each step: sdc_unet_call_run(&c, x, t, eps, &err);  // x, eps: [rows, 4, h, w]
 *     sdc_unet_call_free(&c);
 */
#ifndef SDC_UNET_CALL_H
#define SDC_UNET_CALL_H

#include "sdc_cuda.h"
#include "pipeline.h"

typedef struct sdc_unet_call {
    sdc_pipeline *p;
    sdc_dtype act;
    int rows, h, w;
    sdc_tensor x, t;       /* [rows, 4, h, w], [rows]: F32 inputs on the device */
    sdc_tensor ctx;        /* [rows, T, D]: the context (act dtype), borrowed */
    sdc_tensor y;          /* [rows, 4, h, w] F32: the output the graph writes */
    sdc_cuda_graph *graph; /* NULL until recorded */
    bool try_graph;        /* CUDA, enabled, not failed yet */
    int calls, replays;
} sdc_unet_call;

/* ctx: [rows, T, D] of dtype act on p's backend, alive until free. */
sdc_status sdc_unet_call_init(sdc_unet_call *c, sdc_pipeline *p, sdc_dtype act, int rows, int h,
                              int w, sdc_tensor ctx, sdc_err *err);
/* eps [rows, 4, h, w] (host) = UNet(x [rows, 4, h, w] (host), t for every row). */
sdc_status sdc_unet_call_run(sdc_unet_call *c, const float *x, float t, float *eps,
                             sdc_err *err);
void sdc_unet_call_free(sdc_unet_call *c);

#endif
