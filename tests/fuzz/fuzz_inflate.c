/* fuzz_inflate.c — libFuzzer target: sdc_gunzip (gzip + DEFLATE decoder of
 * src/text/inflate.c) on the input with a 16 MiB output cap, and sdc_crc32. */
#include "text/inflate.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_err err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (sdc_gunzip(data, size, 16u << 20, "fuzz", &out, &out_len, &err) == SDC_OK) {
        if (!out || out[out_len] != 0) __builtin_trap();   /* documented NUL terminator */
        (void)sdc_crc32(0, out, out_len);
    } else if (out) {
        __builtin_trap();   /* nothing returned on failure */
    }
    free(out);
    return 0;
}
