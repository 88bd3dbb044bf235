/* test_util.h — helpers the test suites share: whole files read into memory,
 * fixture tensors (a missing fixture names the command that makes it),
 * augment manifests, timesteps as F32, patterned PNG inputs.
 *
 *     size_t n;
 *     char *text = tu_slurp("tests/fixtures/x.txt", &n);   // NULL if unreadable
 *     sdc_tensor *t = tu_fixture(FIX "unet_io.safetensors", "out", SDC_F32,
 *                                "build/venv/bin/python tests/make_fixtures.py");
 */
#ifndef SDC_TEST_UTIL_H
#define SDC_TEST_UTIL_H

#include "sdc.h"

#include <cJSON.h>
#include <stddef.h>

/* The whole file, malloc'd and NUL-terminated (so text can be used as a
 * string), its length in *len when len is not NULL; NULL when it cannot be
 * read (missing, not a regular file, over 1 GiB). */
void *tu_slurp(const char *path, size_t *len);
/* tu_slurp that fails the test (naming the path and the reason) when the
 * file cannot be read. */
void *tu_slurp_ok(const char *path, size_t *len);
/* At most cap - 1 bytes of the file into buf, NUL-terminated; "" when it
 * cannot be opened. */
void tu_slurp_into(const char *path, char *buf, size_t cap);

/* Tensor `name` of the safetensors file `file` as dtype, host-owned (free
 * with sdc_tensor_free). Fails the test when the file or the tensor is
 * missing, with `regen`, the command that writes the fixture. */
sdc_tensor *tu_fixture(const char *file, const char *name, sdc_dtype dtype, const char *regen);
/* The I32 timesteps tensor `name` of `file` as F32 [N]. */
sdc_tensor *tu_timesteps_f32(const char *file, const char *name, const char *regen);

/* The JSON lines of an augment manifest as one array; fails the test when
 * the file is missing or a line is not JSON. Free with cJSON_Delete. */
cJSON *tu_read_manifest(const char *path);

/* A patterned (never constant) RGB PNG of w x h; salt varies the pattern. */
void tu_write_png(const char *path, int w, int h, int salt);

#endif
