/* test_util.c — helpers the test suites share (test_util.h). */
#include "test_util.h"

#include "../src/image/image.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *tu_slurp(const char *path, size_t *len) {
    uint8_t *buf = NULL;
    size_t n = 0;
    sdc_err err = {0};
    sdc_status s = sdc_read_file_capped(path, (size_t)1 << 30, &buf, &n, &err);
    if (len) *len = n; /* 0 when unreadable */
    return s ? NULL : buf;
}

void *tu_slurp_ok(const char *path, size_t *len) {
    uint8_t *buf = NULL;
    size_t n = 0;
    sdc_err err = {0};
    ck_assert_msg(sdc_read_file_capped(path, (size_t)1 << 30, &buf, &n, &err) == SDC_OK, "%s",
                  err.msg);
    if (len) *len = n;
    return buf;
}

void tu_slurp_into(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
}

sdc_tensor *tu_fixture(const char *file, const char *name, sdc_dtype dtype, const char *regen) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(file, &err);
    ck_assert_msg(st, "%s (regenerate with: %s)", err.msg, regen);
    sdc_tensor *t = sdc_safetensors_load(st, name, dtype, &err);
    ck_assert_msg(t, "%s (regenerate with: %s)", err.msg, regen);
    sdc_safetensors_close(st);
    return t;
}

sdc_tensor *tu_timesteps_f32(const char *file, const char *name, const char *regen) {
    sdc_tensor *t = tu_fixture(file, name, SDC_I32, regen);
    sdc_err err = {0};
    sdc_tensor *f = sdc_tensor_new(SDC_F32, 1, t->shape, &err);
    ck_assert_msg(f, "%s", err.msg);
    for (int64_t i = 0; i < t->shape[0]; i++) ((float *)f->data)[i] = (float)((int32_t *)t->data)[i];
    sdc_tensor_free(t);
    return f;
}

cJSON *tu_read_manifest(const char *path) {
    char *buf = tu_slurp(path, NULL);
    ck_assert_msg(buf != NULL, "%s missing", path);
    cJSON *arr = cJSON_CreateArray();
    for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        ck_assert_msg(j != NULL, "bad manifest line: %s", line);
        cJSON_AddItemToArray(arr, j);
    }
    free(buf);
    return arr;
}

void tu_write_png(const char *path, int w, int h, int salt) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(rgb);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 7 + salt * 31 + (i / (w * 3)) * 13);
    sdc_err err = {0};
    ck_assert_msg(sdc_image_save_png(path, rgb, w, h, NULL, &err) == SDC_OK, "%s", err.msg);
    free(rgb);
}
