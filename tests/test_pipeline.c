/* test_pipeline.c — txt2img and img2img end to end on the tiny model against
 * diffusers' StableDiffusionPipeline / StableDiffusionImg2ImgPipeline runs
 * (tests/make_fixtures.py pipelines): every sampler, seeded and with injected
 * latents, batch 2 with CFG, a generator per image, sizes down to 8 px, and
 * the same model with a scheduler config that is not SD 1.5's (v prediction,
 * leading spacing). Final latents within fp32 rel-L2 1e-4; decoded 8-bit
 * images within mean-abs 0.5 and max 2 levels. */
#include "suites.h"
#include "test_util.h"

#include "../src/pipeline/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX "tests/fixtures/"
#define VOCAB "weights/bpe_simple_vocab_16e6.txt.gz"

static const char *const samplers[] = {"ddim", "pndm", "euler", "euler_a", "dpmpp_2m",
                                       "dpmpp_2m_karras", "dpmpp_2m_sde", "lms", "heun"};
#define N_SAMPLERS (int)(sizeof samplers / sizeof samplers[0])
static const char *const runs[] = {"seed", "latents", "img2img"};

static sdc_tensor *fixture(const char *name, sdc_dtype dt) {
    return tu_fixture(FIX "pipeline_io.safetensors", name, dt,
                      "build/venv/bin/python tests/make_fixtures.py pipelines");
}

/* Final latents, fp32: measured rel-L2 1.1e-5 to 4.7e-5 over the SD 1.5
 * config runs (CFG 7.5 amplifies the ~1e-6 UNet differences over the steps).
 * The v-prediction runs (other.*) measure 2.8e-5 to 2.2e-4 (DPM++ 2M SDE;
 * PLMS, here with the PRK warm-up, 1.3e-4): no larger absolute differences
 * (max-abs <= 1.5e-3, against <= 4.5e-3 for epsilon) on latents of 1/6 to
 * 1/15 the norm (rms 1.2-1.4 against 7-21, the random tiny model's epsilon x0
 * being large). Images: within 1 level, mean-abs <= 0.011. */
#define TOL_LATENTS_REL_L2 1e-4
#define TOL_LATENTS_V_REL_L2 5e-4

/* r's latents and images against the fixture's <key>.latents / <key>.image. */
static void check_against(const char *key, const sdc_generate_result *r) {
    sdc_err err = {0};
    char name[128];
    snprintf(name, sizeof name, "%s.latents", key);
    sdc_tensor *want = fixture(name, SDC_F32);
    sdc_tensor got;
    sdc_tensor_init(&got, SDC_F32, 4, want->shape, r->latents, &err);
    sdc_compare_result c;
    ck_assert_int_eq(sdc_compare(&got, want, &c, &err), SDC_OK);
    snprintf(name, sizeof name, "%s.image", key);
    sdc_tensor *img = fixture(name, SDC_U8);
    size_t n = (size_t)sdc_tensor_numel(img);
    double sum = 0;
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)r->rgb[i] - (int)((uint8_t *)img->data)[i]);
        sum += d;
        if (d > worst) worst = d;
    }
    printf("  %-28s %2d iters  latents max-abs %.3g rel-L2 %.3g  image mean-abs %.4f max %d\n", key,
           r->iterations, c.max_abs, c.rel_l2, sum / (double)n, worst);
    double tol = strncmp(key, "other.", 6) ? TOL_LATENTS_REL_L2 : TOL_LATENTS_V_REL_L2;
    ck_assert_msg(c.rel_l2 <= tol, "%s: latents rel-L2 %.3g", key, c.rel_l2);
    ck_assert_msg(sum / (double)n < 0.5 && worst <= 2, "%s: image mean-abs %.3f max %d", key,
                  sum / (double)n, worst);
    sdc_tensor_free(img);
    sdc_tensor_free(want);
}

START_TEST(pipeline_matches_diffusers) {
    const char *sampler = samplers[_i / 3], *run = runs[_i % 3];
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_pipeline *p = sdc_pipeline_open(FIX "tiny/diffusers", VOCAB, be, &err);
    ck_assert_msg(p, "%s", err.msg);
    sdc_generate_opts o = {.prompt = "a photo of a cat", .negative = "", .cfg = 7.5f,
                           .width = 64, .height = 64, .batch = 2, .syntax = SDC_PROMPT_PLAIN};
    ck_assert(sdc_sampler_from_name(sampler, &o.sampler));
    o.sampler.steps = 6;
    o.seed = 1234;
    sdc_tensor *inj = NULL, *init = NULL;
    if (!strcmp(run, "latents")) {
        inj = fixture("injected_latents", SDC_F32);
        o.init_noise = inj->data;
        o.seed = 5;
    } else if (!strcmp(run, "img2img")) {
        init = fixture("init_image", SDC_F32);
        o.init_image = init->data;
        o.strength = 0.75f;
        o.sampler.steps = 8;
        o.seed = 77;
    }
    sdc_generate_result r;
    ck_assert_msg(sdc_generate(p, &o, &r, &err) == SDC_OK, "%s %s: %s", sampler, run, err.msg);
    char key[96];
    snprintf(key, sizeof key, "%s.%s", sampler, run);
    check_against(key, &r);
    sdc_tensor_free(inj);
    sdc_tensor_free(init);
    sdc_generate_result_free(&r);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
}
END_TEST

static sdc_generate_opts cat_opts(void) {
    return (sdc_generate_opts){.prompt = "a photo of a cat", .negative = "", .cfg = 7.5f, .width = 64,
                               .height = 64, .batch = 2, .syntax = SDC_PROMPT_PLAIN,
                               .sampler = {.steps = 6}};
}

/* A generator per image (A1111's seed, seed + 1 of a batch), and sizes other
 * than 64 down to diffusers' smallest, 8 px (a 1x1 latent). */
START_TEST(generator_per_row_and_sizes) {
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_pipeline *p = sdc_pipeline_open(FIX "tiny/diffusers", VOCAB, be, &err);
    ck_assert_msg(p, "%s", err.msg);
    sdc_generate_opts o = cat_opts();
    sdc_generate_row rows[2] = {{.seed = 1234}, {.seed = 1235}};
    o.rows = rows;
    ck_assert(sdc_sampler_from_name("euler_a", &o.sampler));
    sdc_generate_result r;
    ck_assert_msg(sdc_generate(p, &o, &r, &err) == SDC_OK, "%s", err.msg);
    check_against("rows.euler_a", &r);
    sdc_generate_result_free(&r);
    static const struct { const char *key, *sampler; int w, h; uint64_t seed; } sizes[] = {
        {"size48x64.ddim", "ddim", 48, 64, 4864}, {"size8x8.euler", "euler", 8, 8, 88}};
    for (int i = 0; i < 2; i++) {
        o = cat_opts();
        o.width = sizes[i].w, o.height = sizes[i].h, o.seed = sizes[i].seed;
        ck_assert(sdc_sampler_from_name(sizes[i].sampler, &o.sampler));
        ck_assert_msg(sdc_generate(p, &o, &r, &err) == SDC_OK, "%s: %s", sizes[i].key, err.msg);
        check_against(sizes[i].key, &r);
        sdc_generate_result_free(&r);
    }
    o = cat_opts();
    o.width = 4; /* below 8 px and not a multiple of 8: refused, named */
    ck_assert_int_eq(sdc_generate(p, &o, &r, &err), SDC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "4x64"));
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
}
END_TEST

/* The tiny model in a folder whose scheduler_config.json is not SD 1.5's
 * (tests/make_fixtures.py other_scheduler_config: DDIM, v prediction, leading
 * spacing): its own sampler by default, every other as from_config. */
const char *test_other_scheduler_model(void) {
    static char dir[512];
    if (dir[0]) return dir;
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(FIX "pipeline_io.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    const char *cfg = sdc_safetensors_meta(st, "other_scheduler_config");
    ck_assert_msg(cfg, "pipeline_io.safetensors: no other_scheduler_config (regenerate: "
                  "build/venv/bin/python tests/make_fixtures.py pipelines)");
    snprintf(dir, sizeof dir, "%s/other-scheduler-model", test_tmpdir());
    char path[700], cwd[400];
    ck_assert(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    static const char *const parts[] = {"unet", "vae", "text_encoder"};
    for (int i = 0; i < 3; i++) {
        char target[600];
        snprintf(target, sizeof target, "%s/" FIX "tiny/diffusers/%s", cwd, parts[i]);
        snprintf(path, sizeof path, "%s/%s", dir, parts[i]);
        ck_assert_int_eq(symlink(target, path), 0);
    }
    snprintf(path, sizeof path, "%s/scheduler", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert(f && fputs(cfg, f) >= 0 && fclose(f) == 0);
    sdc_safetensors_close(st);
    return dir;
}

START_TEST(other_scheduler_config) {
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_pipeline *p = sdc_pipeline_open(test_other_scheduler_model(), VOCAB, be, &err);
    ck_assert_msg(p, "%s", err.msg);
    sdc_generate_opts o = cat_opts();
    o.seed = 1234;
    char key[96];
    if (_i == N_SAMPLERS) { /* no name: the folder's own scheduler */
        ck_assert(sdc_sampler_default(p->sched, &o.sampler) && o.sampler.kind == SDC_SAMPLER_DDIM);
        snprintf(key, sizeof key, "other.default.seed");
    } else {
        ck_assert(sdc_sampler_from_name(samplers[_i], &o.sampler));
        snprintf(key, sizeof key, "other.%s.seed", samplers[_i]);
    }
    o.sampler.steps = 6;
    sdc_generate_result r;
    ck_assert_msg(sdc_generate(p, &o, &r, &err) == SDC_OK, "%s: %s", key, err.msg);
    check_against(key, &r);
    sdc_generate_result_free(&r);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
}
END_TEST

/* The public API (sdc.h) gives the same image as the pipeline. */
START_TEST(public_api_matches_fixture) {
    sdc_err err = {0};
    sdc_model *m = sdc_model_open(FIX "tiny/original.safetensors", VOCAB, &err);
    ck_assert_msg(m, "%s", err.msg);
    sdc_request r = {.prompt = "a photo of a cat", .sampler = "euler_a", .steps = 6, .cfg = 7.5f,
                     .seed = 1234, .width = 64, .height = 64, .batch = 2};
    uint8_t *rgb;
    ck_assert_msg(sdc_model_generate(m, &r, &rgb, &err) == SDC_OK, "%s", err.msg);
    sdc_tensor *want = fixture("euler_a.seed.image", SDC_U8);
    int worst = 0;
    for (int64_t i = 0; i < sdc_tensor_numel(want); i++) {
        int d = abs((int)rgb[i] - (int)((uint8_t *)want->data)[i]);
        if (d > worst) worst = d;
    }
    ck_assert_int_le(worst, 2);
    r.sampler = "warp";
    free(rgb);
    ck_assert_int_eq(sdc_model_generate(m, &r, &rgb, &err), SDC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "'warp'"));
    ck_assert_ptr_null(rgb);
    sdc_tensor_free(want);
    sdc_model_close(m);
    ck_assert_ptr_null(sdc_model_open("/nonexistent.safetensors", VOCAB, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent.safetensors"));
}
END_TEST

/* The CUDA generator through every draw of a run: with a generator per row
 * (augment's rows), each row's image is the one it gives alone, for the
 * ancestral (euler_a) and eta (ddim) noise and img2img's posterior sample
 * and noise; and it is not the CPU generator's. Without rows, A1111's seeds. */
START_TEST(rng_cuda_rows_invariant) {
    static const char *const samplers2[] = {"euler_a", "ddim"};
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_pipeline *p = sdc_pipeline_open(FIX "tiny/diffusers", VOCAB, be, &err);
    ck_assert_msg(p, "%s", err.msg);
    sdc_tensor *init = fixture("init_image", SDC_F32);
    for (int k = 0; k < 4; k++) {
        sdc_generate_row rows[2] = {{.prompt = "a photo of a cat", .seed = 11},
                                    {.prompt = "a red fox", .seed = 2u << 31}};
        sdc_generate_opts o = {.prompt = "unused", .negative = "", .cfg = 7.5f, .width = 64,
                               .height = 64, .batch = 2, .rows = rows, .rng = SDC_RNG_CUDA};
        ck_assert(sdc_sampler_from_name(samplers2[k % 2], &o.sampler));
        o.sampler.steps = 4;
        o.sampler.eta = k % 2 ? 1.0f : 0.0f;
        if (k >= 2) {
            rows[0].init_image = rows[1].init_image = init->data;
            o.strength = 0.75f;
        }
        sdc_generate_result both, one, cpu;
        ck_assert_msg(sdc_generate(p, &o, &both, &err) == SDC_OK, "%s", err.msg);
        size_t per = (size_t)4 * 8 * 8;
        for (int b = 0; b < 2; b++) {
            sdc_generate_opts o1 = o;
            o1.batch = 1;
            o1.rows = &rows[b];
            ck_assert_msg(sdc_generate(p, &o1, &one, &err) == SDC_OK, "%s", err.msg);
            ck_assert_msg(memcmp(one.latents, both.latents + b * per, per * sizeof(float)) == 0,
                          "%s row %d: differs from the row alone", samplers2[k % 2], b);
            sdc_generate_result_free(&one);
        }
        o.rng = SDC_RNG_CPU;
        ck_assert_msg(sdc_generate(p, &o, &cpu, &err) == SDC_OK, "%s", err.msg);
        ck_assert(memcmp(cpu.latents, both.latents, 2 * per * sizeof(float)) != 0);
        sdc_generate_result_free(&cpu);
        sdc_generate_result_free(&both);
    }
    /* Without rows, a batch is A1111's: image b from seed + b, so image 1 of
     * seed 77 is seed 78's image alone. */
    sdc_generate_opts o = {.prompt = "a photo of a cat", .negative = "", .cfg = 7.5f,
                           .width = 64, .height = 64, .batch = 2, .seed = 77,
                           .rng = SDC_RNG_CUDA};
    ck_assert(sdc_sampler_from_name("euler_a", &o.sampler));
    o.sampler.steps = 3;
    sdc_generate_result both, one;
    ck_assert_msg(sdc_generate(p, &o, &both, &err) == SDC_OK, "%s", err.msg);
    o.batch = 1;
    o.seed = 78;
    ck_assert_msg(sdc_generate(p, &o, &one, &err) == SDC_OK, "%s", err.msg);
    ck_assert(memcmp(one.latents, both.latents + 4 * 8 * 8, 4 * 8 * 8 * sizeof(float)) == 0);
    sdc_generate_result_free(&both);
    sdc_generate_result_free(&one);
    sdc_tensor_free(init);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
}
END_TEST

/* The CPU backend computes F32 activations: auto means F32 there, and f16
 * or bf16 (UNet or VAE) is an error naming the backend, before any work. */
START_TEST(precision_on_the_cpu) {
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_pipeline *p = sdc_pipeline_open(FIX "tiny/diffusers", VOCAB, be, &err);
    ck_assert_msg(p, "%s", err.msg);
    sdc_generate_opts o = {.prompt = "a cat", .cfg = 7.5f, .width = 64, .height = 64, .batch = 1};
    ck_assert(sdc_sampler_from_name("euler", &o.sampler));
    o.sampler.steps = 2;
    sdc_generate_result r;
    ck_assert_msg(sdc_generate(p, &o, &r, &err) == SDC_OK, "%s", err.msg);
    ck_assert(r.act == SDC_F32 && r.vae_act == SDC_F32 && r.graph_replays == 0);
    sdc_generate_result_free(&r);
    o.precision = SDC_PRECISION_F16;
    ck_assert_int_eq(sdc_generate(p, &o, &r, &err), SDC_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "precision f16") && strstr(err.msg, "cpu"), "%s", err.msg);
    ck_assert_ptr_null(r.rgb);
    o.precision = SDC_PRECISION_F32;
    o.vae_precision = SDC_PRECISION_BF16;
    ck_assert_int_eq(sdc_generate(p, &o, &r, &err), SDC_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "VAE"), "%s", err.msg);
    o.vae_precision = (sdc_precision)9;
    ck_assert_int_eq(sdc_generate(p, &o, &r, &err), SDC_ERR_ARG);
    sdc_precision pr;
    ck_assert(sdc_precision_from_name("bf16", &pr) && pr == SDC_PRECISION_BF16);
    ck_assert(!sdc_precision_from_name("F16", &pr) && !sdc_precision_from_name(NULL, &pr));
    ck_assert_str_eq(sdc_precision_name(SDC_PRECISION_AUTO), "auto");
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
    /* The public API's CUDA model: unsupported without a GPU or CUDA build,
     * or it opens. */
    sdc_model *m = sdc_model_open_on(FIX "tiny/original.safetensors", VOCAB, SDC_DEVICE_CUDA, &err);
    ck_assert(m != NULL || err.code == SDC_ERR_UNSUPPORTED);
    sdc_model_close(m);
    ck_assert_ptr_null(sdc_model_open_on(FIX "tiny/original.safetensors", VOCAB, (sdc_device)7, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
}
END_TEST

Suite *suite_pipeline(void) {
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, pipeline_matches_diffusers, 0, 3 * N_SAMPLERS);
    tcase_add_test(tc, generator_per_row_and_sizes);
    tcase_add_loop_test(tc, other_scheduler_config, 0, N_SAMPLERS + 1);
    tcase_add_test(tc, public_api_matches_fixture);
    tcase_add_test(tc, rng_cuda_rows_invariant);
    tcase_add_test(tc, precision_on_the_cpu);
    suite_add_tcase(s, tc);
    return s;
}
