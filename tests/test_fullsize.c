/* test_fullsize.c — a full-size random SD 1.5 checkpoint (sdc make-random) in
 * both layouts loads with the real shapes, and one UNet forward at an 8x8
 * latent, a text encoding and a VAE decode of a 1x1 latent run and stay
 * finite. (Numerics are checked on the tiny fixtures; this checks scale.) */
#include "cli_run.h"
#include "suites.h"

#include "../src/models/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void expect_finite(const char *what, const sdc_tensor *t) {
    const float *p = t->data;
    for (int64_t i = 0; i < sdc_tensor_numel(t); i++)
        ck_assert_msg(isfinite(p[i]), "%s: element %lld is %g", what, (long long)i, p[i]);
}

START_TEST(full_size_random_checkpoint_runs) {
    const char *dir = test_tmpdir();
    const char *layout = _i == 0 ? "original" : "diffusers";
    char path[600];
    snprintf(path, sizeof path, "%s/sd15%s", dir, _i == 0 ? ".safetensors" : "");
    const cli_result *r = cli_run("make-random --layout %s --seed 5 %s", layout, path);
    ck_assert_msg(r->code == 0, "make-random: %s", r->err);

    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_arena *arena = sdc_arena_create(be, 0, &err);
    sdc_checkpoint *ck = sdc_checkpoint_open(path, &err);
    ck_assert_msg(ck, "%s", err.msg);
    /* The configs read back are SD 1.5's. */
    ck_assert_int_eq(ck->unet.channels[3], 1280);
    ck_assert_int_eq(ck->unet.heads, 8);
    ck_assert_int_eq(ck->clip.heads, 12);
    ck_assert_int_eq(ck->clip.layers, 12);
    ck_assert_int_eq(ck->vae.channels[0], 128);

    sdc_clip_text clip;
    sdc_unet unet;
    sdc_vae vae;
    ck_assert_msg(sdc_clip_text_load(&clip, ck, be, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(sdc_unet_load(&unet, ck, be, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(sdc_vae_load(&vae, ck, be, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(sdc_params_count(&unet.params), 859520964);
    ck_assert_int_eq(sdc_params_count(&vae.params), 83653863);
    ck_assert_int_eq(sdc_params_count(&clip.params), 123060480);

    sdc_exec ex = sdc_exec_begin(be, arena, &err);
    int32_t ids[77] = {49406, 320, 1125, 539, 320, 2368, 49407};
    for (int i = 7; i < 77; i++) ids[i] = 49407;
    sdc_tensor ctx = sdc_clip_text_forward(&ex, &clip, ids, 1, 0, NULL, 0); /* [1, 77, 768] */
    ck_assert_msg(ex.status == SDC_OK, "%s", err.msg);
    expect_finite("text", &ctx);

    float xs[4 * 8 * 8], ts[1] = {999};
    for (int i = 0; i < 4 * 8 * 8; i++) xs[i] = sinf((float)i);
    sdc_tensor x, t;
    sdc_tensor_init(&x, SDC_F32, 4, (const int64_t[]){1, 4, 8, 8}, xs, &err);
    sdc_tensor_init(&t, SDC_F32, 1, (const int64_t[]){1}, ts, &err);
    sdc_tensor y = sdc_unet_forward(&ex, &unet, x, t, ctx);
    ck_assert_msg(ex.status == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(y.shape[1], 4);
    expect_finite("unet", &y);
    printf("full-size %s: unet forward at 8x8 ran, %.1f GFLOP\n", layout, ex.flops / 1e9);

    sdc_tensor z;
    sdc_tensor_init(&z, SDC_F32, 4, (const int64_t[]){1, 4, 1, 1}, xs, &err);
    sdc_tensor img = sdc_vae_decode(&ex, &vae, z); /* [1, 3, 8, 8] */
    ck_assert_msg(ex.status == SDC_OK, "%s", err.msg);
    expect_finite("vae", &img);
    sdc_x_free(&ex, &img);
    sdc_x_free(&ex, &y);
    sdc_x_free(&ex, &ctx);
    ck_assert_uint_eq(sdc_arena_in_use(arena), 0);
    sdc_vae_free(&vae);
    sdc_unet_free(&unet);
    sdc_clip_text_free(&clip);
    sdc_checkpoint_close(ck);
    sdc_arena_destroy(arena);
    sdc_backend_destroy(be);
}
END_TEST

Suite *suite_fullsize(void) {
    Suite *s = suite_create("fullsize");
    TCase *tc = tcase_create("fullsize");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, full_size_random_checkpoint_runs, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
