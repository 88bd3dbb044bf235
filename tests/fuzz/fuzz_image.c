/* fuzz_image.c — libFuzzer target: sdc_image_decode (PNG/JPEG via stb_image,
 * default limits) on the input; for small images also sdc_image_to_tensor at
 * 8x8 in both fit modes; then sdc_png_parse for the "parameters" text and
 * sdc_a1111_parse on it. */
#include "image/image.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_err err = {0};
    sdc_image im = {0};
    if (sdc_image_decode(data, size, "fuzz", NULL, &im, &err) == SDC_OK) {
        if (im.w <= 0 || im.h <= 0 || !im.rgb) __builtin_trap();
        if ((long long)im.w * im.h <= (1 << 16)) {
            static float x[3 * 8 * 8];
            sdc_err e2 = {0};
            (void)sdc_image_to_tensor(&im, 8, 8, SDC_FIT_RESIZE, x, 3 * 8 * 8, &e2);
            (void)sdc_image_to_tensor(&im, 8, 8, SDC_FIT_CROP, x, 3 * 8 * 8, &e2);
        }
        sdc_image_free(&im);
    }
    sdc_png_header hdr;
    char *value = NULL;
    sdc_err e3 = {0};
    if (sdc_png_parse(data, size, "fuzz", &hdr, "parameters", &value, &e3) == SDC_OK && value) {
        sdc_gen_meta m;
        char *storage = NULL;
        sdc_err e4 = {0};
        (void)sdc_a1111_parse(value, &m, &storage, &e4);
        free(storage);
    }
    free(value);
    return 0;
}
