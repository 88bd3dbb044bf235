/* test_models.c — every SD 1.x component against reference tensors from
 * transformers/diffusers (tests/make_fixtures.py), in both checkpoint layouts
 * and in F16 (as committed), F32 and BF16 (copies written here). */
#include "suites.h"
#include "test_util.h"

#include "../src/models/checkpoint.h"
#include "../src/pipeline/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/"
#define TINY FIXTURES "tiny/"

#define REGEN_FIXTURES "build/venv/bin/python tests/make_fixtures.py"
/* Reads fixture tensor `name` from `file` as dtype (F32 or I32), host-owned. */
static sdc_tensor *fixture(const char *file, const char *name, sdc_dtype dtype) {
    return tu_fixture(file, name, dtype, REGEN_FIXTURES);
}

static void expect_close(const char *what, const sdc_tensor *got, const sdc_tensor *want,
                         double tol) {
    sdc_compare_result r;
    sdc_err err = {0};
    ck_assert_msg(sdc_compare(got, want, &r, &err) == SDC_OK, "%s: %s", what, err.msg);
    printf("  %-44s max-abs %.3g  rel-L2 %.3g  (tol %.1e)\n", what, r.max_abs, r.rel_l2, tol);
    ck_assert_msg(r.rel_l2 <= tol, "%s: rel-L2 %.3g over %.1e (max-abs %.3g)", what, r.rel_l2, tol,
                  r.max_abs);
}

/* Copies `src` to `dst` with every float tensor converted to dtype. */
static void convert_file(const char *src, const char *dst, sdc_dtype dtype) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(src, &err);
    ck_assert_msg(st, "%s", err.msg);
    size_t n = sdc_safetensors_count(st);
    sdc_st_write_item *items = calloc(n, sizeof *items);
    sdc_tensor **ts = calloc(n, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        ck_assert_int_le(e->ndim, 4);
        ts[i] = sdc_tensor_new(dtype, e->ndim, e->shape, &err);
        ck_assert_int_eq(sdc_safetensors_read(st, e, ts[i]->data, dtype, &err), SDC_OK);
        items[i] = (sdc_st_write_item){e->name, ts[i]};
    }
    const char *meta[] = {"sdc.clip.heads", sdc_safetensors_meta(st, "sdc.clip.heads"),
                          "sdc.unet.heads", sdc_safetensors_meta(st, "sdc.unet.heads")};
    size_t n_meta = meta[1] && meta[3] ? 2 : 0;
    ck_assert_msg(sdc_safetensors_write(dst, items, n, meta, n_meta, &err) == SDC_OK, "%s",
                  err.msg);
    for (size_t i = 0; i < n; i++) sdc_tensor_free(ts[i]);
    free(ts);
    free(items);
    sdc_safetensors_close(st);
}

static void copy_file(const char *src, const char *dst) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, dst);
    ck_assert_int_eq(system(cmd), 0);
}

/* The checkpoint variants under test: index -> path (made on demand). */
static const char *variant_path(int v, char *buf, size_t cap) {
    static const char *const names[] = {"diffusers-f16", "original-f16", "diffusers-f32",
                                        "original-bf16"};
    ck_assert_int_lt(v, 4);
    if (v == 0) return TINY "diffusers";
    if (v == 1) return TINY "original.safetensors";
    const char *dir = test_tmpdir();
    sdc_dtype dt = v == 2 ? SDC_F32 : SDC_BF16;
    if (v == 2) {
        static const char *const parts[][2] = {
            {"unet", "diffusion_pytorch_model.safetensors"},
            {"vae", "diffusion_pytorch_model.safetensors"},
            {"text_encoder", "model.safetensors"}};
        for (int i = 0; i < 3; i++) {
            char src[512], dst[512], cmd[600];
            snprintf(cmd, sizeof cmd, "mkdir -p '%s/%s'", dir, parts[i][0]);
            ck_assert_int_eq(system(cmd), 0);
            snprintf(src, sizeof src, TINY "diffusers/%s/config.json", parts[i][0]);
            snprintf(dst, sizeof dst, "%s/%s/config.json", dir, parts[i][0]);
            copy_file(src, dst);
            snprintf(src, sizeof src, TINY "diffusers/%s/%s", parts[i][0], parts[i][1]);
            snprintf(dst, sizeof dst, "%s/%s/%s", dir, parts[i][0], parts[i][1]);
            convert_file(src, dst, dt);
        }
        snprintf(buf, cap, "%s", dir);
    } else {
        snprintf(buf, cap, "%s/original-bf16.safetensors", dir);
        convert_file(TINY "original.safetensors", buf, dt);
    }
    printf("%s: %s\n", names[v], buf);
    return buf;
}

/* F16 and F32 copies hold the fixture weights exactly (they were rounded to
 * F16 when made): fp32 tolerance. BF16 rounds every weight again (relative
 * 2^-9), so its outputs differ from the F32 reference by ~1e-2: its bound is
 * set at ~3x the measured value, per component. */
static double tol_for(int v, double fp32_tol, double bf16_tol) {
    return v == 3 ? bf16_tol : fp32_tol;
}

typedef struct {
    sdc_backend *be;
    sdc_arena *arena;
    sdc_checkpoint *ck;
    sdc_err err;
} env;

static void env_open(env *e, int v) {
    char buf[1024];
    memset(e, 0, sizeof *e);
    const char *path = variant_path(v, buf, sizeof buf);
    e->be = sdc_cpu_backend_create(&e->err);
    ck_assert_ptr_nonnull(e->be);
    e->arena = sdc_arena_create(e->be, 0, &e->err);
    e->ck = sdc_checkpoint_open(path, &e->err);
    ck_assert_msg(e->ck, "%s", e->err.msg);
}

static void env_close(env *e) {
    ck_assert_uint_eq(sdc_arena_in_use(e->arena), 0); /* every activation was released */
    sdc_checkpoint_close(e->ck);
    sdc_arena_destroy(e->arena);
    sdc_backend_destroy(e->be);
}

START_TEST(clip_text_matches_transformers) {
    env e;
    env_open(&e, _i);
    sdc_clip_text m;
    ck_assert_msg(sdc_clip_text_load(&m, e.ck, e.be, &e.err) == SDC_OK, "%s", e.err.msg);
    sdc_tensor *ids = fixture(FIXTURES "clip_text_io.safetensors", "input_ids", SDC_I32);
    const char *want_names[] = {"last_hidden_state", "last_hidden_state_skip1"};
    for (int skip = 0; skip < 2; skip++) {
        sdc_tensor *want = fixture(FIXTURES "clip_text_io.safetensors", want_names[skip], SDC_F32);
        sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
        sdc_tensor y = sdc_clip_text_forward(&ex, &m, ids->data, (int)ids->shape[0], skip, NULL, 0);
        ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
        /* measured rel-L2: 2.2e-7 (F16/F32 weights); 4.7e-3 with BF16 weights */
        expect_close(want_names[skip], &y, want, tol_for(_i, 1e-5, 1.5e-2));
        sdc_x_free(&ex, &y);
        sdc_tensor_free(want);
        /* The pipeline drops a finished model's mmap'ed pages; the next pass
         * reads the same weights back from the file. */
        sdc_params_release_pages(&m.params);
    }
    sdc_tensor_free(ids);
    sdc_clip_text_free(&m);
    env_close(&e);
}
END_TEST

/* Timesteps arrive as any numeric dtype; the UNet takes them as F32. */
static sdc_tensor *timesteps_f32(void) {
    return tu_timesteps_f32(FIXTURES "unet_io.safetensors", "timestep", REGEN_FIXTURES);
}

typedef struct {
    int n;
    char names[16][32];
    sdc_tensor *copies[16];
} dump_sink;

static void collect(void *ctx, const char *name, const sdc_tensor *t) {
    dump_sink *d = ctx;
    sdc_err err = {0};
    if (d->n == 16) return;
    snprintf(d->names[d->n], sizeof d->names[0], "%s", name);
    d->copies[d->n] = sdc_tensor_new(t->dtype, t->ndim, t->shape, &err);
    memcpy(d->copies[d->n]->data, t->data, sdc_tensor_nbytes(t));
    d->n++;
}

START_TEST(unet_matches_diffusers) {
    env e;
    env_open(&e, _i);
    sdc_unet m;
    ck_assert_msg(sdc_unet_load(&m, e.ck, e.be, &e.err) == SDC_OK, "%s", e.err.msg);
    sdc_tensor *x = fixture(FIXTURES "unet_io.safetensors", "sample", SDC_F32);
    sdc_tensor *ctx = fixture(FIXTURES "unet_io.safetensors", "encoder_hidden_states", SDC_F32);
    sdc_tensor *want = fixture(FIXTURES "unet_io.safetensors", "out", SDC_F32);
    sdc_tensor *t = timesteps_f32();
    dump_sink dumps = {0};
    sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ex.dump = collect;
    ex.dump_ctx = &dumps;
    sdc_tensor y = sdc_unet_forward(&ex, &m, *x, *t, *ctx);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    /* measured rel-L2: 1.3e-6 (F16/F32 weights; blocks 0.7-1.3e-6); 1.0e-2 with BF16 */
    expect_close("unet out", &y, want, tol_for(_i, 1e-5, 3e-2));
    ck_assert_int_eq(dumps.n, 9); /* 4 down, mid, 4 up */
    for (int i = 0; i < dumps.n; i++) {
        char key[64];
        snprintf(key, sizeof key, "dump.%s", dumps.names[i]);
        sdc_tensor *w = fixture(FIXTURES "unet_io.safetensors", key, SDC_F32);
        expect_close(key, dumps.copies[i], w, tol_for(_i, 1e-5, 3e-2));
        sdc_tensor_free(w);
        sdc_tensor_free(dumps.copies[i]);
    }
    sdc_x_free(&ex, &y);
    /* A 9x13 latent: the up path meets odd skip sizes. */
    sdc_tensor *odd = fixture(FIXTURES "unet_io.safetensors", "sample_odd", SDC_F32);
    sdc_tensor *want_odd = fixture(FIXTURES "unet_io.safetensors", "out_odd", SDC_F32);
    ex.dump = NULL;
    y = sdc_unet_forward(&ex, &m, *odd, *t, *ctx);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    /* measured rel-L2: 1.2e-6 (F16/F32 weights); 1.0e-2 with BF16 */
    expect_close("unet out, 9x13 latent", &y, want_odd, tol_for(_i, 1e-5, 3e-2));
    sdc_x_free(&ex, &y);
    /* The feed-forward in chunks gives the same bits as over whole tensors,
     * as the taped forward of training needs: on a 32x48 latent, level 0's
     * 1536 tokens run in 3 parts of 512 rows, each batch item apart. */
    sdc_tensor *big = sdc_tensor_new(SDC_F32, 4, (const int64_t[]){odd->shape[0], 4, 32, 48},
                                     &e.err);
    ck_assert_msg(big, "%s", e.err.msg);
    sdc_rng r;
    sdc_rng_seed(&r, 7);
    sdc_rng_randn(&r, big->data, (size_t)sdc_tensor_numel(big));
    y = sdc_unet_forward(&ex, &m, *big, *t, *ctx);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    ex.chunk_bytes = 1;
    sdc_tensor yc = sdc_unet_forward(&ex, &m, *big, *t, *ctx);
    ex.chunk_bytes = 0;
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    ck_assert(memcmp(yc.data, y.data, sdc_tensor_nbytes(&y)) == 0);
    sdc_x_free(&ex, &yc);
    sdc_x_free(&ex, &y);
    sdc_tensor_free(big);
    sdc_tensor_free(odd);
    sdc_tensor_free(want_odd);
    sdc_tensor_free(x);
    sdc_tensor_free(ctx);
    sdc_tensor_free(want);
    sdc_tensor_free(t);
    sdc_unet_free(&m);
    env_close(&e);
}
END_TEST

START_TEST(vae_matches_diffusers) {
    env e;
    env_open(&e, _i);
    sdc_vae m;
    ck_assert_msg(sdc_vae_load(&m, e.ck, e.be, &e.err) == SDC_OK, "%s", e.err.msg);
    sdc_tensor *img = fixture(FIXTURES "vae_io.safetensors", "sample", SDC_F32);
    sdc_tensor *z = fixture(FIXTURES "vae_io.safetensors", "latents", SDC_F32);
    const char *names[] = {"mean", "logvar", "decoded"};
    sdc_tensor *want[3];
    for (int i = 0; i < 3; i++) want[i] = fixture(FIXTURES "vae_io.safetensors", names[i], SDC_F32);
    sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
    sdc_tensor mean, logvar;
    ck_assert_msg(sdc_vae_encode(&ex, &m, *img, &mean, &logvar) == SDC_OK, "%s", e.err.msg);
    /* measured rel-L2: mean 1.4e-6, logvar 1.5e-6, decode 1.8e-6 (F16/F32
     * weights); 8.5e-3, 9.5e-3, 8.8e-3 with BF16 weights */
    expect_close("vae encode mean", &mean, want[0], tol_for(_i, 1e-5, 3e-2));
    expect_close("vae encode logvar", &logvar, want[1], tol_for(_i, 1e-5, 3e-2));
    sdc_tensor dec = sdc_vae_decode(&ex, &m, *z);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    expect_close("vae decode", &dec, want[2], tol_for(_i, 1e-5, 3e-2));
    sdc_x_free(&ex, &mean);
    sdc_x_free(&ex, &logvar);
    sdc_x_free(&ex, &dec);
    for (int i = 0; i < 3; i++) sdc_tensor_free(want[i]);
    sdc_tensor_free(img);
    sdc_tensor_free(z);
    sdc_vae_free(&m);
    env_close(&e);
}
END_TEST

Suite *suite_models(void) {
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("models");
    tcase_set_timeout(tc, 600);
    /* Variants: diffusers F16, original F16, diffusers F32, original BF16. */
    tcase_add_loop_test(tc, clip_text_matches_transformers, 0, 4);
    tcase_add_loop_test(tc, unet_matches_diffusers, 0, 4);
    tcase_add_loop_test(tc, vae_matches_diffusers, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

/* ------------------------------------------------------------ refusals */

/* Writes a safetensors file holding the given (name, shape) F16 tensors. */
static void write_keys(const char *path, const char *const *names, const int64_t (*shapes)[4],
                       const int *ranks, size_t n) {
    sdc_err err = {0};
    sdc_st_write_item items[16];
    sdc_tensor *ts[16];
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++) {
        ts[i] = sdc_tensor_new(SDC_F16, ranks[i], shapes[i], &err);
        memset(ts[i]->data, 0x3c, sdc_tensor_nbytes(ts[i])); /* F16 ~1.0, not zeros */
        items[i] = (sdc_st_write_item){names[i], ts[i]};
    }
    ck_assert_msg(sdc_safetensors_write(path, items, n, NULL, 0, &err) == SDC_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++) sdc_tensor_free(ts[i]);
}

START_TEST(non_sd1_checkpoints_are_refused) {
    const char *dir = test_tmpdir();
    static const struct {
        const char *file, *keys[3];
        int64_t shapes[3][4];
        int ranks[3];
        size_t n;
        const char *expect;
    } cases[] = {
        {"empty", {NULL}, {{0}}, {0}, 0, "an empty file"},
        {"lora", {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"}, {{4, 320}},
         {2}, 1, "a LoRA"},
        {"sdxl", {"conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
                  "model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.post_quant_conv.weight"},
         {{768}, {320, 4, 3, 3}, {4, 4, 1, 1}}, {1, 4, 4}, 3, "SDXL"},
        {"sd2", {"cond_stage_model.model.ln_final.weight",
                 "model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.post_quant_conv.weight"},
         {{1024}, {320, 4, 3, 3}, {4, 4, 1, 1}}, {1, 4, 4}, 3, "SD 2.x"},
        {"unet_only", {"model.diffusion_model.input_blocks.0.0.weight"}, {{320, 4, 3, 3}}, {4}, 1,
         "not an SD 1.x checkpoint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, cases[i].file);
        write_keys(path, cases[i].keys, cases[i].shapes, cases[i].ranks, cases[i].n);
        sdc_err err = {0};
        sdc_checkpoint *ck = sdc_checkpoint_open(path, &err);
        ck_assert_msg(!ck, "%s was accepted", cases[i].file);
        ck_assert_msg(strstr(err.msg, cases[i].expect) && strstr(err.msg, path),
                      "%s: message '%s' lacks '%s' or the path", cases[i].file, err.msg,
                      cases[i].expect);
        printf("  refused %-10s %s\n", cases[i].file, err.msg);
    }
}
END_TEST

/* The tiny original checkpoint with one tensor changed: an inpainting UNet
 * (9 input channels), a mis-shaped weight, a missing weight. */
START_TEST(damaged_checkpoints_name_the_tensor) {
    const char *dir = test_tmpdir();
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(TINY "original.safetensors", &err);
    ck_assert_ptr_nonnull(st);
    size_t n = sdc_safetensors_count(st);
    static const struct { const char *key; int64_t dim1; const char *expect; } cases[] = {
        {"model.diffusion_model.input_blocks.0.0.weight", 9, "(an inpainting model)"},
        {"model.diffusion_model.middle_block.0.in_layers.2.weight", 31,
         "tensor 'model.diffusion_model.middle_block.0.in_layers.2.weight' is [32, 31, 3, 3], "
         "expected [32, 32, 3, 3]"},
        {"first_stage_model.decoder.up.0.block.0.conv1.weight", 0, "1 of"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        sdc_st_write_item *items = calloc(n, sizeof *items);
        sdc_tensor **ts = calloc(n, sizeof *ts);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const sdc_st_entry *e = sdc_safetensors_entry(st, i);
            bool target = strcmp(e->name, cases[c].key) == 0;
            if (target && cases[c].dim1 == 0) continue; /* drop it */
            int64_t shape[4];
            memcpy(shape, e->shape, sizeof shape);
            if (target) shape[1] = cases[c].dim1;
            ts[k] = sdc_tensor_new(SDC_F32, e->ndim, shape, &err);
            for (int64_t j = 0; j < sdc_tensor_numel(ts[k]); j++) ((float *)ts[k]->data)[j] = 0.01f;
            items[k] = (sdc_st_write_item){e->name, ts[k]};
            k++;
        }
        char path[600];
        snprintf(path, sizeof path, "%s/damaged%zu.safetensors", dir, c);
        const char *meta[] = {"sdc.clip.heads", "2", "sdc.unet.heads", "8"};
        ck_assert_int_eq(sdc_safetensors_write(path, items, k, meta, 2, &err), SDC_OK);
        for (size_t i = 0; i < k; i++) sdc_tensor_free(ts[i]);
        free(ts);
        free(items);
        sdc_checkpoint *ck = sdc_checkpoint_open(path, &err);
        sdc_status s = ck ? SDC_OK : err.code;
        if (ck) { /* opened: the damage shows when binding */
            sdc_backend *be = sdc_cpu_backend_create(&err);
            sdc_unet unet;
            sdc_vae vae;
            s = c == 2 ? sdc_vae_load(&vae, ck, be, &err) : sdc_unet_load(&unet, ck, be, &err);
            sdc_backend_destroy(be);
            sdc_checkpoint_close(ck);
        }
        ck_assert_msg(s != SDC_OK, "damage %zu went unnoticed", c);
        ck_assert_msg(strstr(err.msg, cases[c].expect), "message '%s' lacks '%s'", err.msg,
                      cases[c].expect);
        printf("  refused: %s\n", err.msg);
    }
    sdc_safetensors_close(st);
}
END_TEST

Suite *suite_model_refusals(void) {
    Suite *s = suite_create("model_refusals");
    TCase *tc = tcase_create("model_refusals");
    tcase_add_test(tc, non_sd1_checkpoints_are_refused);
    tcase_add_test(tc, damaged_checkpoints_name_the_tensor);
    suite_add_tcase(s, tc);
    return s;
}
