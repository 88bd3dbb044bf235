/* clip_preprocess.h — CLIP's image preprocessing, step for step as
 * transformers' CLIPImageProcessor: shortest side resized to `resize` with
 * PIL's bicubic filter, a centre crop, x / 255, then (x - mean) / std.
 *
 *     float px[3 * 224 * 224];                                  // [3, 224, 224]
 *     sdc_clip_preprocess(&im, 224, 224, mean, std, NULL, px, &err);
 *
 * The resize reproduces Pillow's Image.resize(BICUBIC) on 8-bit RGB
 * (libImaging/Resample.c): separable Keys cubic (a = -0.5); when shrinking,
 * the support is widened by the scale factor (antialiasing); per output
 * pixel the weights are normalized to sum 1 and then turned into 22-bit
 * fixed point; a horizontal pass, then a vertical pass, each rounded and
 * clipped to 8 bits; a pass whose size does not change is skipped. The tests
 * hold it equal to Pillow's output byte for byte. */
#ifndef SDC_CLIP_PREPROCESS_H
#define SDC_CLIP_PREPROCESS_H

#include "image.h"

/* Pillow's bicubic resize of in[h, w, 3] into out[oh, ow, 3] (8-bit RGB). */
sdc_status sdc_resize_bicubic_pil(const uint8_t *in, int w, int h, uint8_t *out, int ow, int oh,
                                  sdc_err *err);

/* transformers' get_resize_output_image_size(default_to_square=False): the
 * short side becomes `size`, the long one int(size * long / short). */
void sdc_clip_resize_size(int w, int h, int size, int *ow, int *oh);

/* The whole pipeline on an 8-bit RGB image: crop (may be NULL) receives the
 * resized and cropped [crop, crop, 3] bytes, out the normalized [3, crop,
 * crop] floats. resize >= crop >= 1. */
sdc_status sdc_clip_preprocess(const sdc_image *im, int resize, int crop, const float mean[3],
                               const float std[3], uint8_t *crop_rgb, float *out, sdc_err *err);

/* rgb[n, n, 3] bytes -> out[3, n, n]: float32(v * (1/255.0)) then (x - mean) / std,
 * in float32 as transformers' rescale and normalize compute it. */
void sdc_clip_normalize(const uint8_t *rgb, int n, const float mean[3], const float std[3],
                        float *out);

#endif
