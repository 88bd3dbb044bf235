/* fuzz_png_text.c — libFuzzer target: A1111 infotext parsing
 * (sdc_a1111_parse) on the input as a NUL-terminated string, then writing the
 * parsed fields back with sdc_a1111_parameters and parsing that again. */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    sdc_gen_meta m;
    char *storage = NULL;
    sdc_err err = {0};
    if (sdc_a1111_parse(s, &m, &storage, &err) == SDC_OK) {
        char *text = sdc_a1111_parameters(&m);
        if (text) {
            sdc_gen_meta m2;
            char *storage2 = NULL;
            sdc_err e2 = {0};
            (void)sdc_a1111_parse(text, &m2, &storage2, &e2);
            free(storage2);
            free(text);
        }
    }
    free(storage);
    free(s);
    return 0;
}
