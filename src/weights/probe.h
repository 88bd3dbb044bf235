/* probe.h — looking into a safetensors file before binding it, shared by the
 * checkpoint opener (models/checkpoint.c), the CLIPModel opener
 * (models/clip_model.c) and the layout detection (layout_detect.c):
 *
 *     if (sdc_st_findf(st, "%s.layers.%d.mlp.fc1.weight", prefix, 0)) ...
 *     if (sdc_st_has_prefix(st, "conditioner.embedders.")) ... // SDXL
 */
#ifndef SDC_WEIGHTS_PROBE_H
#define SDC_WEIGHTS_PROBE_H

#include "sdc.h"

/* The entry whose name is the printf-formatted key (at most 255 bytes), or NULL. */
const sdc_st_entry *sdc_st_findf(const sdc_safetensors *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True when some key of st starts with prefix. */
bool sdc_st_has_prefix(const sdc_safetensors *st, const char *prefix);

/* A diffusers folder's weights file of component c: the first of
 * <sub>/<name>.safetensors and its .fp16 variant that is a regular file under
 * dir, its path written to path (cap bytes); returns it relative to dir
 * ("unet/diffusion_pytorch_model.safetensors", static), or NULL. */
const char *sdc_component_file(const char *dir, sdc_component c, char *path, size_t cap);
/* The preferred weights file name of component c ("model.safetensors"). */
const char *sdc_component_weights_name(sdc_component c);

#endif
