/* fuzz_safetensors.c — libFuzzer target: sdc_safetensors_open_memory on the
 * input, then every entry, the metadata, find() by name, and
 * sdc_safetensors_read / sdc_safetensors_load of small tensors into bounded
 * buffers. Seeds: tests/fuzz/corpus/fuzz_safetensors, dict: safetensors.dict. */
#include "sdc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define READ_CAP_BYTES (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open_memory(data, size, "fuzz", &err);
    if (!st) return 0;
    static uint8_t buf[READ_CAP_BYTES];
    size_t n = sdc_safetensors_count(st);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        if (!e || !e->name) __builtin_trap();
        if (sdc_safetensors_find(st, e->name) != e) __builtin_trap();
        (void)sdc_dtype_name(e->dtype);
        uint64_t numel = sdc_st_entry_numel(e);
        static const sdc_dtype targets[] = {SDC_F32, SDC_F16, SDC_BF16, SDC_I64, SDC_I32};
        for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
            if (numel * 8 > sizeof buf) break;
            sdc_err e2 = {0};
            (void)sdc_safetensors_read(st, e, buf, targets[t], &e2);
        }
        if (numel * 4 <= sizeof buf) {
            sdc_err e2 = {0};
            sdc_tensor *t = sdc_safetensors_load(st, e->name, SDC_F32, &e2);
            sdc_tensor_free(t);
        }
    }
    for (size_t i = 0, m = sdc_safetensors_meta_count(st); i < m; i++) {
        const char *k = NULL, *v = NULL;
        if (!sdc_safetensors_meta_at(st, i, &k, &v) || !k || !v) __builtin_trap();
        if (!sdc_safetensors_meta(st, k)) __builtin_trap();
    }
    (void)sdc_safetensors_find(st, "model.diffusion_model.input_blocks.0.0.weight");
    sdc_layout_info info;
    sdc_layout_of_file(st, &info);
    sdc_safetensors_close(st);
    return 0;
}
