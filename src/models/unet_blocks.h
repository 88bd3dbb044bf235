/* unet_blocks.h — the UNet's layers, shared by its forward (unet.c) and its
 * reverse mode (unet_backward.c), which reruns them to rebuild checkpoints.
 * Internal to src/models. */
#ifndef SDC_UNET_BLOCKS_H
#define SDC_UNET_BLOCKS_H

#include "unet.h"

/* False (with ex->status set) unless x [B, in, h, w], t [B], ctx [B, T, context]. */
bool sdc_unet_inputs_ok(sdc_exec *ex, const sdc_unet *m, sdc_tensor x, sdc_tensor t,
                        sdc_tensor ctx);
/* t: [B] -> SiLU(time_embedding(t)) [B, 4·C0], as every resnet takes it. */
sdc_tensor sdc_unet_time_embedding(sdc_exec *ex, const sdc_unet *m, sdc_tensor t);
/* x: [B, in, H, W], temb_act: [B, 4·C0] -> [B, out, H, W] */
sdc_tensor sdc_unet_resnet_forward(sdc_exec *ex, const sdc_resnet *r, const sdc_unet_config *c,
                                   sdc_tensor x, sdc_tensor temb_act);
/* out [B, out, H, W] += the resnet's shortcut of x [B, in, H, W] (x itself
 * when in == out): the last step of both resnet forwards. */
void sdc_unet_resnet_add_skip(sdc_exec *ex, const sdc_resnet *r, sdc_tensor x, sdc_tensor out);
/* x: [B, C, H, W], ctx: [B, T, context] -> x + transformer(x) [B, C, H, W] */
sdc_tensor sdc_unet_transformer_forward(sdc_exec *ex, const unet_transformer *t,
                                        const sdc_unet_config *c, sdc_tensor x, sdc_tensor ctx);

/* What the adjoints (unet_blocks_backward.c) read from a layer's forward. */
typedef struct unet_resnet_acts {
    sdc_tensor h1;                /* [B, out, H, W] the second norm's input */
} unet_resnet_acts;
typedef struct unet_transformer_acts {
    sdc_tensor h0, h1, h2;        /* [B, HW, C] the residual stream before each block */
    sdc_tensor q, k, v;           /* [B, HW, C] self-attention projections */
    sdc_tensor q2;                /* [B, HW, C] cross-attention queries */
    sdc_tensor k2, v2;            /* [B, T, C] its keys and values, from the context */
    sdc_tensor f;                 /* [B, HW, 8C] ff1's output (GEGLU's input) */
} unet_transformer_acts;

/* The layers' forwards keeping their acts (the plain forwards' ops, so the
 * same output bits); the output only with want_out (the backward's rerun
 * needs none). need_dx false drops what only the input's gradient reads. */
sdc_tensor sdc_unet_resnet_forward_acts(sdc_exec *ex, const sdc_resnet *r,
                                        const sdc_unet_config *c, sdc_tensor x,
                                        sdc_tensor temb_act, bool want_out, unet_resnet_acts *a);
sdc_tensor sdc_unet_transformer_forward_acts(sdc_exec *ex, const unet_transformer *t,
                                             const sdc_unet_config *c, sdc_tensor x,
                                             sdc_tensor ctx, bool need_dx, bool want_out,
                                             unet_transformer_acts *a);
void sdc_unet_resnet_acts_free(sdc_exec *ex, unet_resnet_acts *a);
void sdc_unet_transformer_acts_free(sdc_exec *ex, unet_transformer_acts *a);

/* Adjoints. a: the layer's acts from its forward (consumed), or NULL to
 * rerun the layer from x first. resnet: dy [B, out, H, W] -> dx [B, in, H, W]. */
sdc_tensor sdc_unet_resnet_backward(sdc_exec *ex, const sdc_resnet *r, const sdc_unet_config *c,
                                    sdc_tensor x, sdc_tensor temb_act, sdc_tensor dy,
                                    unet_resnet_acts *a);
/* transformer: dy [B, C, H, W] -> dx [B, C, H, W] (empty without need_dx);
 * d/d ctx [B, T, context] is added into *dctx (which an empty one takes). */
sdc_tensor sdc_unet_transformer_backward(sdc_exec *ex, const unet_transformer *t,
                                         const sdc_unet_config *c, sdc_tensor x, sdc_tensor ctx,
                                         sdc_tensor dy, sdc_tensor *dctx, bool need_dx,
                                         unet_transformer_acts *a);

#endif
