/* unet_backward.h — reverse mode through the frozen UNet with respect to its
 * conditioning: d loss / d encoder_hidden_states, for textual inversion. No
 * weight gradient is computed.
 *
 *     sdc_unet_tape tape;
 *     sdc_tensor pred = sdc_unet_forward_tape(ex, unet, x, t, ctx, &tape);
 *     ... dpred = d loss / d pred [B, out, h, w] ...
 *     sdc_tensor dctx = sdc_unet_backward(ex, unet, &tape, dpred);  // frees the tape
 *
 * Checkpointing per layer: the forward keeps only each layer's input (the
 * skips, which the up path needs anyway, the resnets' outputs that feed a
 * transformer, the up path's pre-concat inputs, the upsamplers' inputs), and
 * the backward reruns one resnet or transformer at a time from its input to
 * get the activations its adjoint needs, so memory beyond the checkpoints is
 * one layer's. The exception is the last up level, which the backward meets
 * first: its layers keep their activations from the forward instead of
 * rerunning (at 512², ~3 s of a ~49 s step for ~0.3 GB; see bench/RESULTS.md).
 * Layers before the first transformer (conv_in, the first resnets) never see
 * the conditioning, so the backward stops there. */
#ifndef SDC_UNET_BACKWARD_H
#define SDC_UNET_BACKWARD_H

#include "unet_blocks.h"

#define UNET_MAX_SKIPS (1 + UNET_MAX_LEVELS * (UNET_MAX_LAYERS + 1))

/* The forward's checkpoints, all arena tensors owned by the tape (but ctx). */
typedef struct sdc_unet_tape {
    sdc_tensor ctx;                             /* [B, T, context], the caller's */
    sdc_tensor temb;                            /* [B, 4·C0], SiLU'd */
    sdc_tensor skip[UNET_MAX_SKIPS];            /* down path outputs; skip[0] is conv_in's */
    bool skip_dep[UNET_MAX_SKIPS];              /* skip k depends on the context */
    int nskip;
    sdc_tensor down_res[UNET_MAX_LEVELS][UNET_MAX_LAYERS];  /* resnet out = transformer in */
    sdc_tensor mid_res0, mid_attn;              /* mid resnet 0's and transformer's outputs */
    sdc_tensor up_h[UNET_MAX_LEVELS][UNET_MAX_LAYERS + 1];  /* h before concat(h, skip) */
    sdc_tensor up_res[UNET_MAX_LEVELS][UNET_MAX_LAYERS + 1];
    sdc_tensor up_sample[UNET_MAX_LEVELS];      /* upsampler inputs */
    sdc_tensor out_in;                          /* conv_norm_out's input */
    /* The last up level's layers, as their forward left them. */
    unet_resnet_acts last_res[UNET_MAX_LAYERS + 1];
    unet_transformer_acts last_attn[UNET_MAX_LAYERS + 1];
} sdc_unet_tape;

/* sdc_unet_forward (the same result, bit for bit) that fills *tape. ctx must
 * stay alive until sdc_unet_backward. On failure the tape is released. */
sdc_tensor sdc_unet_forward_tape(sdc_exec *ex, const sdc_unet *m, sdc_tensor x, sdc_tensor t,
                                 sdc_tensor ctx, sdc_unet_tape *tape);

/* dy: d loss / d prediction [B, out, h, w]. Returns d loss / d ctx
 * [B, T, context] from the arena, and releases the tape (also on failure). */
sdc_tensor sdc_unet_backward(sdc_exec *ex, const sdc_unet *m, sdc_unet_tape *tape, sdc_tensor dy);

/* Releases every checkpoint still held (safe on a released tape). */
void sdc_unet_tape_free(sdc_exec *ex, sdc_unet_tape *tape);

#endif
