/* resnet.h — the ResnetBlock2D that the UNet and the VAE share: its weights
 * and their parameter-table rows under both layouts' names (the diffusers
 * names are the same in both models; LDM named them per model). Internal to
 * src/models; each model runs it in its own forward. */
#ifndef SDC_RESNET_H
#define SDC_RESNET_H

#include "../weights/params.h"

typedef struct sdc_resnet {
    int in, out;
    sdc_tensor norm1_w, norm1_b;       /* [in] */
    sdc_tensor conv1_w, conv1_b;       /* [out, in, 3, 3], [out] */
    sdc_tensor temb_w, temb_b;         /* [out, T], [out]; the UNet's only (T = 4*C0) */
    sdc_tensor norm2_w, norm2_b;       /* [out] */
    sdc_tensor conv2_w, conv2_b;       /* [out, out, 3, 3], [out] */
    sdc_tensor skip_w, skip_b;         /* [out, in, 1, 1], [out]; only when in != out */
} sdc_resnet;

/* The original layout's names of a resnet's layers, relative to the block;
 * temb NULL: the block takes no time embedding. */
typedef struct sdc_resnet_names {
    const char *norm1, *conv1, *temb, *norm2, *conv2, *skip;
} sdc_resnet_names;

/* Adds the rows of a resnet from in to out channels (temb: the time
 * embedding's width when names->temb is set) under the diffusers prefix d
 * ("down_blocks.0.resnets.1") and the original prefix o. */
void sdc_resnet_params(sdc_params *P, sdc_resnet *r, int in, int out, int temb,
                       const sdc_resnet_names *names, const char *d, const char *o);

#endif
