/* test_vulkan_models.c — the tiny fixture model on the Vulkan backend
 * against the CPU backend: the text encoder, one UNet step (the fixture's
 * latent and an odd 9x13 one), VAE encode and decode, with F32 and F16
 * activations, and a 4-step txt2img (F32, as the pipeline runs). Validation
 * errors fail these too. */
#include "suites.h"
#include "test_vulkan.h"
#include "backend_models.h"
#include "test_util.h"

#include "cli_run.h"

#include "../src/image/image.h"
#include "../src/pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/"
#define TINY FIXTURES "tiny/diffusers"
#define VOCAB "weights/bpe_simple_vocab_16e6.txt.gz"

/* Model tolerances, Vulkan vs CPU, rel-L2, the same as CUDA's. F32: only
 * the summation order differs (the shaders' F32 GEMM vs the CPU's
 * Winograd/BLAS). F16 activations: one rounding per op over the tiny models'
 * few dozen ops. Measured on lavapipe (Mesa 22.3.6), 2026-12-04: */
#define MODEL_TOL_F32 1e-5 /* 2.3e-7 (clip text) .. 2.1e-6 (vae encode logvar) */
#define MODEL_TOL_F16 2e-2 /* 6.6e-4 (clip text) .. 3.3e-3 (unet, 9x13 latent) */

typedef bm_side side;

static side side_open(bool vulkan) {
    sdc_err err = {0};
    return bm_side_open(vulkan ? vk_test_backend() : sdc_cpu_backend_create(&err), TINY);
}

static void side_close(side *s) {
    if (s->be->device == SDC_DEVICE_VULKAN) vk_assert_no_validation_errors(s->be, "model");
    bm_side_close(s);
}

#define take_host bm_take_host
#define unet_run bm_unet_run
#define vae_run bm_vae_run

static sdc_tensor *fixture(const char *file, const char *name, sdc_dtype dt) {
    return tu_fixture(file, name, dt, "build/venv/bin/python tests/make_fixtures.py");
}

static void expect_close(const char *what, sdc_dtype act, const sdc_tensor *got,
                         const sdc_tensor *want) {
    bm_expect_close("vulkan", what, act, got, want, act == SDC_F32 ? MODEL_TOL_F32 : MODEL_TOL_F16);
}

static sdc_dtype act_of(int i) { return i == 0 ? SDC_F32 : SDC_F16; }

START_TEST(clip_text_vs_cpu) {
    sdc_dtype act = act_of(_i);
    side cpu = side_open(false), gpu = side_open(true);
    sdc_err err = {0};
    sdc_clip_text mc, mg;
    ck_assert_msg(sdc_clip_text_load(&mc, cpu.ck, cpu.be, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(sdc_clip_text_load(&mg, gpu.ck, gpu.be, &err) == SDC_OK, "%s", err.msg);
    sdc_tensor *ids = fixture(FIXTURES "clip_text_io.safetensors", "input_ids", SDC_I32);
    int batch = (int)ids->shape[0];
    sdc_exec ec = sdc_exec_begin(cpu.be, cpu.arena, &err);
    sdc_tensor yc = sdc_clip_text_forward(&ec, &mc, ids->data, batch, 0, NULL, 0);
    sdc_tensor *want = take_host(&ec, &yc);
    sdc_exec eg = sdc_exec_begin(gpu.be, gpu.arena, &err);
    eg.act = act;
    sdc_tensor yg = sdc_clip_text_forward(&eg, &mg, ids->data, batch, 0, NULL, 0);
    sdc_tensor *got = take_host(&eg, &yg);
    expect_close("clip text", act, got, want);
    sdc_tensor_free(want);
    sdc_tensor_free(got);
    sdc_tensor_free(ids);
    sdc_clip_text_free(&mc);
    sdc_clip_text_free(&mg);
    side_close(&cpu);
    side_close(&gpu);
}
END_TEST

START_TEST(unet_vs_cpu) {
    sdc_dtype act = act_of(_i);
    side cpu = side_open(false), gpu = side_open(true);
    sdc_err err = {0};
    sdc_unet mc, mg;
    ck_assert_msg(sdc_unet_load(&mc, cpu.ck, cpu.be, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(sdc_unet_load(&mg, gpu.ck, gpu.be, &err) == SDC_OK, "%s", err.msg);
    sdc_tensor *ts = fixture(FIXTURES "unet_io.safetensors", "timestep", SDC_I32);
    sdc_tensor *t = sdc_tensor_new(SDC_F32, 1, ts->shape, &err);
    for (int64_t i = 0; i < ts->shape[0]; i++)
        ((float *)t->data)[i] = (float)((int32_t *)ts->data)[i];
    sdc_tensor *c = fixture(FIXTURES "unet_io.safetensors", "encoder_hidden_states", SDC_F32);
    const char *samples[] = {"sample", "sample_odd"};
    for (int i = 0; i < 2; i++) {
        sdc_tensor *x = fixture(FIXTURES "unet_io.safetensors", samples[i], SDC_F32);
        sdc_tensor *want = unet_run(&cpu, &mc, SDC_F32, x, t, c);
        sdc_tensor *got = unet_run(&gpu, &mg, act, x, t, c);
        expect_close(i ? "unet step (9x13 latent)" : "unet step", act, got, want);
        sdc_tensor_free(want);
        sdc_tensor_free(got);
        sdc_tensor_free(x);
    }
    sdc_tensor_free(ts);
    sdc_tensor_free(t);
    sdc_tensor_free(c);
    sdc_unet_free(&mc);
    sdc_unet_free(&mg);
    side_close(&cpu);
    side_close(&gpu);
}
END_TEST

START_TEST(vae_vs_cpu) {
    sdc_dtype act = act_of(_i);
    side cpu = side_open(false), gpu = side_open(true);
    sdc_err err = {0};
    sdc_vae mc, mg;
    ck_assert_msg(sdc_vae_load(&mc, cpu.ck, cpu.be, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(sdc_vae_load(&mg, gpu.ck, gpu.be, &err) == SDC_OK, "%s", err.msg);
    sdc_tensor *img = fixture(FIXTURES "vae_io.safetensors", "sample", SDC_F32);
    sdc_tensor *z = fixture(FIXTURES "vae_io.safetensors", "latents", SDC_F32);
    sdc_tensor *want[3], *got[3];
    vae_run(&cpu, &mc, SDC_F32, img, z, want);
    vae_run(&gpu, &mg, act, img, z, got);
    const char *names[] = {"vae encode mean", "vae encode logvar", "vae decode"};
    for (int i = 0; i < 3; i++) {
        expect_close(names[i], act, got[i], want[i]);
        sdc_tensor_free(want[i]);
        sdc_tensor_free(got[i]);
    }
    sdc_tensor_free(img);
    sdc_tensor_free(z);
    sdc_vae_free(&mc);
    sdc_vae_free(&mg);
    side_close(&cpu);
    side_close(&gpu);
}
END_TEST

/* A 4-step euler_a txt2img (batch 2 with CFG, 64x64) on both backends: the
 * final latents within the pipeline's own bound (rel-L2 1e-4, as
 * tests/test_pipeline.c holds the CPU to diffusers), images within 2 levels.
 * lavapipe: rel-L2 4.6e-6, images 1 level apart at most. */
START_TEST(txt2img_vs_cpu) {
    sdc_err err = {0};
    sdc_backend *cpu = sdc_cpu_backend_create(&err), *gpu = vk_test_backend();
    sdc_pipeline *pc = sdc_pipeline_open(TINY, VOCAB, cpu, &err);
    ck_assert_msg(pc, "%s", err.msg);
    sdc_pipeline *pg = sdc_pipeline_open(TINY, VOCAB, gpu, &err);
    ck_assert_msg(pg, "%s", err.msg);
    sdc_generate_opts o = {.prompt = "a photo of a cat", .negative = "", .cfg = 7.5f,
                           .width = 64, .height = 64, .batch = 2, .syntax = SDC_PROMPT_PLAIN,
                           .seed = 1234};
    ck_assert(sdc_sampler_from_name("euler_a", &o.sampler));
    o.sampler.steps = 4;
    sdc_generate_result rc, rg;
    ck_assert_msg(sdc_generate(pc, &o, &rc, &err) == SDC_OK, "cpu: %s", err.msg);
    ck_assert_msg(sdc_generate(pg, &o, &rg, &err) == SDC_OK, "vulkan: %s", err.msg);
    int64_t shape[4] = {2, 4, 8, 8};
    sdc_tensor lc, lg;
    sdc_tensor_init(&lc, SDC_F32, 4, shape, rc.latents, &err);
    sdc_tensor_init(&lg, SDC_F32, 4, shape, rg.latents, &err);
    sdc_compare_result r;
    ck_assert_int_eq(sdc_compare(&lg, &lc, &r, &err), SDC_OK);
    int worst = 0;
    for (size_t i = 0; i < (size_t)2 * 64 * 64 * 3; i++) {
        int d = abs((int)rg.rgb[i] - (int)rc.rgb[i]);
        if (d > worst) worst = d;
    }
    printf("vulkan: txt2img euler_a 4 steps latents vs cpu: max-abs %.3g  rel-L2 %.3g (tol 1e-4); "
           "image max %d levels (tol 2)\n", r.max_abs, r.rel_l2, worst);
    fflush(stdout);
    ck_assert_msg(r.rel_l2 <= 1e-4, "latents rel-L2 %.3g", r.rel_l2);
    ck_assert_int_le(worst, 2);
    vk_assert_no_validation_errors(gpu, "txt2img");
    sdc_generate_result_free(&rc);
    sdc_generate_result_free(&rg);
    sdc_pipeline_free(pc);
    sdc_pipeline_free(pg);
    sdc_backend_destroy(cpu);
    sdc_backend_destroy(gpu);
}
END_TEST

/* The CLI on Vulkan: --backend vulkan --device 0 generates what the CPU
 * does (within the pipeline's 2-level bound above). */
START_TEST(generate_cli_on_vulkan) {
    const char *dir = test_tmpdir();
    const char *args = "generate --model " TINY " --vocab " VOCAB " -p 'a red fox' --size 64 --steps 3 "
                       "--sampler euler -s 7 -q";
    const cli_result *r = cli_run("%s --backend vulkan --device 0 -o %s/vk.png", args, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("%s --backend cpu -o %s/cpu.png", args, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    char a[900], b[900];
    snprintf(a, sizeof a, "%s/vk.png", dir);
    snprintf(b, sizeof b, "%s/cpu.png", dir);
    sdc_err err = {0};
    sdc_image ia, ib;
    ck_assert_msg(sdc_image_load(a, NULL, &ia, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(sdc_image_load(b, NULL, &ib, &err) == SDC_OK, "%s", err.msg);
    int worst = 0;
    for (size_t i = 0; i < (size_t)64 * 64 * 3; i++) {
        int d = abs((int)ia.rgb[i] - (int)ib.rgb[i]);
        if (d > worst) worst = d;
    }
    printf("vulkan: sdc generate --backend vulkan --device 0 vs cpu: image max %d levels (tol 2)\n", worst);
    ck_assert_int_le(worst, 2);
    sdc_image_free(&ia);
    sdc_image_free(&ib);
}
END_TEST

void vk_add_model_tests(Suite *s) {
    TCase *models = tcase_create("models");
    tcase_set_timeout(models, 600);
    tcase_add_loop_test(models, clip_text_vs_cpu, 0, 2);
    tcase_add_loop_test(models, unet_vs_cpu, 0, 2);
    tcase_add_loop_test(models, vae_vs_cpu, 0, 2);
    tcase_add_test(models, txt2img_vs_cpu);
    tcase_add_test(models, generate_cli_on_vulkan);
    suite_add_tcase(s, models);
}
