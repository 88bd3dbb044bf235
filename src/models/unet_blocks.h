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
sdc_tensor sdc_unet_resnet_forward(sdc_exec *ex, const unet_resnet *r, const sdc_unet_config *c,
                                   sdc_tensor x, sdc_tensor temb_act);
/* x: [B, C, H, W], ctx: [B, T, context] -> x + transformer(x) [B, C, H, W] */
sdc_tensor sdc_unet_transformer_forward(sdc_exec *ex, const unet_transformer *t,
                                        const sdc_unet_config *c, sdc_tensor x, sdc_tensor ctx);

/* Adjoints (unet_blocks_backward.c), each rerunning its layer from x.
 * resnet: dy [B, out, H, W] -> dx [B, in, H, W]. */
sdc_tensor sdc_unet_resnet_backward(sdc_exec *ex, const unet_resnet *r, const sdc_unet_config *c,
                                    sdc_tensor x, sdc_tensor temb_act, sdc_tensor dy);
/* transformer: dy [B, C, H, W] -> dx [B, C, H, W] (empty without need_dx);
 * d/d ctx [B, T, context] is added into *dctx (which an empty one takes). */
sdc_tensor sdc_unet_transformer_backward(sdc_exec *ex, const unet_transformer *t,
                                         const sdc_unet_config *c, sdc_tensor x, sdc_tensor ctx,
                                         sdc_tensor dy, sdc_tensor *dctx, bool need_dx);

#endif
