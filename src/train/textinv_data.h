/* textinv_data.h — the training images of textual inversion: a folder's PNG
 * and JPEG files, each center-cropped and resized to size x size, encoded
 * by the VAE once per orientation (as loaded and mirrored) on first use and
 * cached as a seeded posterior sample times the scaling factor (0.18215).
 *
 *     sdc_ti_data d;
 *     if (sdc_ti_data_scan("cat/", 512, 0, &d, &err)) ...   // no VAE yet: cheap checks
 *     const float *z;                                       // [4, 64, 64]
 *     sdc_ti_data_latent(&d, pipeline, 3, true, &z, &err);  // image 3, mirrored
 *     sdc_ti_data_free(&d);
 *
 * diffusers' textual_inversion.py encodes every sample again at every step
 * with a fresh posterior draw; encoding once per image and orientation costs
 * 2 VAE encodes per image in all and keeps a step to the UNet and text
 * encoder. Each (image, orientation) draws its posterior noise from its own
 * generator, seeded from (seed, image, orientation), so the cache does not
 * depend on the order in which training first uses the images. */
#ifndef SDC_TRAIN_TEXTINV_DATA_H
#define SDC_TRAIN_TEXTINV_DATA_H

#include "../pipeline/pipeline.h"

typedef struct sdc_ti_data {
    char *dir;
    int size;         /* pixels per side, a multiple of 8 */
    int n;            /* usable images */
    char **names;     /* [n] file names in dir, sorted bytewise */
    char **skipped;   /* [n_skipped] "name: reason" of image files that did not decode */
    int n_skipped;
    char sha256[65];  /* over the usable images' names and bytes, in order */
    uint64_t seed;
    float **cache;    /* [2n] latents [4, size/8, size/8] (2i: as loaded, 2i+1: mirrored), NULL until used */
} sdc_ti_data;

/* Lists dir's .png/.jpg/.jpeg files (hidden files and other names ignored),
 * decodes each to check it (unusable ones are listed in skipped) and hashes
 * the usable ones. No usable image is SDC_ERR_ARG naming the folder. */
sdc_status sdc_ti_data_scan(const char *dir, int size, uint64_t seed, sdc_ti_data *d, sdc_err *err);
void sdc_ti_data_free(sdc_ti_data *d);

/* The cached latents of image i (mirrored when flip), encoding them with p's
 * VAE on first use. */
sdc_status sdc_ti_data_latent(sdc_ti_data *d, sdc_pipeline *p, int i, bool flip, const float **z,
                              sdc_err *err);

#endif
