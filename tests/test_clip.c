/* test_clip.c — the CLIP model of retrieval against transformers 4.46.3
 * (tests/fixtures/fx_clip.py): Pillow's bicubic resize and CLIPImageProcessor
 * byte for byte, image and text embeddings of the tiny CLIPModel in both
 * checkpoint forms, the legacy EOS pooling rule, config.json rules, refusals
 * of files that are not a CLIPModel, and `sdc eval clip-image|clip-text`. */
#include "cli_run.h"
#include "suites.h"
#include "test_util.h"

#include "../src/image/clip_preprocess.h"
#include "../src/models/clip_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX "tests/fixtures/"
#define CLIP_DIR FIX "tiny/clip"
#define IO FIX "clip_io.safetensors"

static const char *const images[] = {"landscape.png", "portrait_gray.png", "wide_rgba.png"};

static sdc_tensor *fixture(const char *name, sdc_dtype dtype) {
    return tu_fixture(IO, name, dtype, "build/venv/bin/python tests/fixtures/fx_clip.py");
}

static sdc_compare_result expect_close(const char *what, const sdc_tensor *got,
                                       const sdc_tensor *want, double tol) {
    sdc_compare_result r;
    sdc_err err = {0};
    ck_assert_msg(sdc_compare(got, want, &r, &err) == SDC_OK, "%s: %s", what, err.msg);
    printf("  %-36s max-abs %.3g  rel-L2 %.3g  (tol %.1e)\n", what, r.max_abs, r.rel_l2, tol);
    ck_assert_msg(r.rel_l2 <= tol, "%s: rel-L2 %.3g over %.1e (max-abs %.3g)", what, r.rel_l2, tol,
                  r.max_abs);
    return r;
}

/* Host F32 tensor [rows, cols] over data (not owned). */
static sdc_tensor view(float *data, int64_t rows, int64_t cols) {
    sdc_tensor t;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_tensor_init(&t, SDC_F32, 2, (const int64_t[]){rows, cols}, data, &err), SDC_OK);
    return t;
}

/* transformers' rescale + normalize of 8-bit crops [n, S, S, 3] into
 * [n, 3, S, S], written out here independently of the library: float64
 * product by 1/255 cast to float32, then (x - mean) / std in float32.
 * fx_clip.py asserts this equals CLIPImageProcessor's pixel_values exactly. */
static float *reference_pixels(const sdc_tensor *crop) {
    int64_t n = crop->shape[0], S = crop->shape[1];
    float *px = malloc(sizeof *px * (size_t)(n * 3 * S * S));
    const uint8_t *c = crop->data;
    const float *mean = sdc_clip_vit_l14.mean, *std = sdc_clip_vit_l14.std;
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < S * S; i++)
            for (int k = 0; k < 3; k++) {
                float x = (float)((double)c[(b * S * S + i) * 3 + k] * (1.0 / 255.0));
                px[((b * 3 + k) * S * S) + i] = (x - mean[k]) / std[k];
            }
    return px;
}

typedef struct {
    sdc_backend *be;
    sdc_arena *arena;
    sdc_clip_model *m;
    sdc_err err;
} env;

static void env_open(env *e, const char *path) {
    memset(e, 0, sizeof *e);
    e->be = sdc_cpu_backend_create(&e->err);
    ck_assert_msg(e->be, "%s", e->err.msg);
    e->arena = sdc_arena_create(e->be, 0, &e->err);
    e->m = sdc_clip_model_open(path, e->be, &e->err);
    ck_assert_msg(e->m, "%s", e->err.msg);
}

static void env_close(env *e) {
    sdc_clip_model_close(e->m);
    sdc_arena_destroy(e->arena);
    sdc_backend_destroy(e->be);
}

/* ---------------------------------------------------------------- preprocessing */

START_TEST(clip_resize_matches_pillow) {
    static const char *const cases[] = {"down3", "up", "down_x_only", "up_y_only", "mixed", "down_big"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[64];
        snprintf(name, sizeof name, "resize.%s.in", cases[i]);
        sdc_tensor *in = fixture(name, SDC_U8);
        snprintf(name, sizeof name, "resize.%s.out", cases[i]);
        sdc_tensor *want = fixture(name, SDC_U8);
        int w = (int)in->shape[1], h = (int)in->shape[0], ow = (int)want->shape[1], oh = (int)want->shape[0];
        uint8_t *got = malloc((size_t)ow * oh * 3);
        sdc_err err = {0};
        ck_assert_msg(sdc_resize_bicubic_pil(in->data, w, h, got, ow, oh, &err) == SDC_OK, "%s", err.msg);
        int max = 0;
        for (int k = 0; k < ow * oh * 3; k++) {
            int d = abs((int)got[k] - ((uint8_t *)want->data)[k]);
            if (d > max) max = d;
        }
        /* Pillow's integer arithmetic is reproduced exactly: measured 0 levels. */
        printf("  resize %-12s %3dx%-3d -> %3dx%-3d max-abs %d levels\n", cases[i], w, h, ow, oh, max);
        ck_assert_msg(max == 0, "resize %s differs from Pillow by %d levels", cases[i], max);
        free(got);
        sdc_tensor_free(in);
        sdc_tensor_free(want);
    }
}
END_TEST

START_TEST(clip_preprocess_matches_transformers) {
    sdc_tensor *crop = fixture("crop", SDC_U8); /* [3, 224, 224, 3] */
    float *want = reference_pixels(crop);
    const sdc_clip_config *c = &sdc_clip_vit_l14;
    size_t plane = (size_t)3 * 224 * 224;
    float *px = malloc(sizeof *px * plane);
    uint8_t *got = malloc(224 * 224 * 3);
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, FIX "clip_images/%s", images[i]);
        sdc_image im;
        sdc_err err = {0};
        ck_assert_msg(sdc_image_load(path, NULL, &im, &err) == SDC_OK, "%s", err.msg);
        ck_assert_msg(sdc_clip_preprocess(&im, c->resize, c->crop, c->mean, c->std, got, px, &err) == SDC_OK,
                      "%s", err.msg);
        int max = 0;
        const uint8_t *w8 = (const uint8_t *)crop->data + (size_t)i * 224 * 224 * 3;
        for (int k = 0; k < 224 * 224 * 3; k++)
            if (abs((int)got[k] - w8[k]) > max) max = abs((int)got[k] - w8[k]);
        double fmax = 0;
        for (size_t k = 0; k < plane; k++) fmax = fmax > fabs(px[k] - want[i * plane + k]) ? fmax : fabs(px[k] - want[i * plane + k]);
        /* Resize, crop and normalization all exact: measured 0 levels and 0.0. */
        printf("  %-20s %dx%d: crop max-abs %d levels, pixel_values max-abs %g\n", images[i], im.w, im.h,
               max, fmax);
        ck_assert_msg(max == 0 && fmax == 0, "%s: crop off by %d levels, pixels by %g", images[i], max, fmax);
        sdc_image_free(&im);
    }
    free(got);
    free(px);
    free(want);
    sdc_tensor_free(crop);
}
END_TEST

START_TEST(clip_preprocess_edge_sizes) {
    /* 1x1 (upscale x224), a thin 3000x3 strip, and an exact 224x224 (a copy). */
    static const int sizes[][2] = {{1, 1}, {3000, 3}, {224, 224}, {225, 224}};
    const sdc_clip_config *c = &sdc_clip_vit_l14;
    float *px = malloc(sizeof *px * 3 * 224 * 224);
    uint8_t *crop = malloc(224 * 224 * 3);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        sdc_image im = {sizes[i][0], sizes[i][1], malloc((size_t)sizes[i][0] * sizes[i][1] * 3)};
        for (int k = 0; k < im.w * im.h * 3; k++) im.rgb[k] = (uint8_t)(k * 37 + 11);
        sdc_err err = {0};
        ck_assert_msg(sdc_clip_preprocess(&im, 224, 224, c->mean, c->std, crop, px, &err) == SDC_OK,
                      "%dx%d: %s", im.w, im.h, err.msg);
        if (im.w == 224) ck_assert(memcmp(crop, im.rgb, 224 * 224 * 3) == 0);
        for (int k = 0; k < 3 * 224 * 224; k++) ck_assert(isfinite(px[k]));
        free(im.rgb);
    }
    sdc_image bad = {0};
    sdc_err err = {0};
    ck_assert_int_eq(sdc_clip_preprocess(&bad, 224, 224, c->mean, c->std, crop, px, &err), SDC_ERR_ARG);
    ck_assert_int_ne(sdc_resize_bicubic_pil(crop, 0, 4, crop, 4, 4, &err), SDC_OK);
    free(px);
    free(crop);
}
END_TEST

/* ---------------------------------------------------------------- embeddings */

/* The fixture's pixel_values through the model at path; every output checked. */
static void check_image(const char *path) {
    env e;
    env_open(&e, path);
    sdc_tensor *crop = fixture("crop", SDC_U8);
    sdc_tensor *feat = fixture("image_features", SDC_F32), *emb = fixture("image_embeds", SDC_F32);
    sdc_tensor *pool = fixture("image_pooled", SDC_F32);
    float *px = reference_pixels(crop);
    int B = 3, P = e.m->cfg.proj, D = e.m->cfg.vision.width;
    float *f = malloc(sizeof *f * B * P), *n = malloc(sizeof *n * B * P), *p = malloc(sizeof *p * B * D);
    sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_msg(sdc_clip_encode_image(&ex, e.m, px, B, false, f, p) == SDC_OK, "%s", e.err.msg);
    ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_msg(sdc_clip_encode_image(&ex, e.m, px, B, true, n, NULL) == SDC_OK, "%s", e.err.msg);
    sdc_tensor tf = view(f, B, P), tn = view(n, B, P), tp = view(p, B, D);
    /* fp32 against fp32 (weights F16-exact): measured rel-L2 2.5e-7
     * (features), 2.3e-7 (embeds, pooled); 1e-5 is the bound. */
    expect_close("image_features", &tf, feat, 1e-5);
    expect_close("image_embeds (normalized)", &tn, emb, 1e-5);
    expect_close("image_pooled (post-LN class token)", &tp, pool, 1e-5);
    free(f), free(n), free(p), free(px);
    sdc_tensor_free(crop), sdc_tensor_free(feat), sdc_tensor_free(emb), sdc_tensor_free(pool);
    env_close(&e);
}

static void check_text(const char *path) {
    env e;
    env_open(&e, path);
    sdc_tensor *ids = fixture("input_ids", SDC_I32), *feat = fixture("text_features", SDC_F32);
    sdc_tensor *emb = fixture("text_embeds", SDC_F32), *pool = fixture("text_pooled", SDC_F32);
    sdc_tensor *legacy = fixture("text_embeds_legacy", SDC_F32);
    sdc_tensor *sids = fixture("input_ids_short", SDC_I32), *semb = fixture("text_embeds_short", SDC_F32);
    int B = 3, P = e.m->cfg.proj, D = e.m->cfg.text.width;
    ck_assert_int_eq(e.m->cfg.eos_id, 49407);
    float *f = malloc(sizeof *f * B * P), *n = malloc(sizeof *n * B * P), *p = malloc(sizeof *p * B * D);
    sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_msg(sdc_clip_encode_text(&ex, e.m, ids->data, B, 77, false, f, p) == SDC_OK, "%s", e.err.msg);
    ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_msg(sdc_clip_encode_text(&ex, e.m, ids->data, B, 77, true, n, NULL) == SDC_OK, "%s", e.err.msg);
    sdc_tensor tf = view(f, B, P), tn = view(n, B, P), tp = view(p, B, D);
    /* Measured rel-L2 3.0e-7 (features), 2.9e-7 (embeds), 3.9e-7 (pooled). */
    expect_close("text_features", &tf, feat, 1e-5);
    expect_close("text_embeds (normalized)", &tn, emb, 1e-5);
    expect_close("text_pooled (EOS token)", &tp, pool, 1e-5);
    /* eos_token_id 2: transformers' legacy argmax pooling (row 3 has no EOS,
     * so it pools elsewhere). */
    e.m->cfg.eos_id = 2;
    ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_msg(sdc_clip_encode_text(&ex, e.m, ids->data, B, 77, true, n, NULL) == SDC_OK, "%s", e.err.msg);
    expect_close("text_embeds, legacy eos_token_id 2", &tn, legacy, 1e-5);
    ck_assert_int_ne(sdc_clip_eos_index(&e.m->cfg, (int32_t *)ids->data + 2 * 77, 77), 0);
    e.m->cfg.eos_id = 49407;
    ck_assert_int_eq(sdc_clip_eos_index(&e.m->cfg, (int32_t *)ids->data + 2 * 77, 77), 0);
    /* Rows shorter than 77 (transformers runs them unpadded). */
    ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_msg(sdc_clip_encode_text(&ex, e.m, sids->data, 2, 9, true, n, NULL) == SDC_OK, "%s", e.err.msg);
    sdc_tensor ts = view(n, 2, P);
    expect_close("text_embeds of 9-token rows", &ts, semb, 1e-5);
    free(f), free(n), free(p);
    sdc_tensor_free(ids), sdc_tensor_free(feat), sdc_tensor_free(emb), sdc_tensor_free(pool);
    sdc_tensor_free(legacy), sdc_tensor_free(sids), sdc_tensor_free(semb);
    env_close(&e);
}

START_TEST(clip_image_embeddings_match_transformers) { check_image(CLIP_DIR); }
END_TEST

START_TEST(clip_text_embeddings_match_transformers) { check_text(CLIP_DIR); }
END_TEST

/* A single-file F32 copy of the fixture (head counts in __metadata__, as a
 * file without config.json needs for widths that are not multiples of 64). */
static const char *single_file(const char *dir, const char *drop, bool heads) {
    static char path[512];
    snprintf(path, sizeof path, "%s/clip%s.safetensors", dir, drop ? "-broken" : "");
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(CLIP_DIR "/model.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    size_t n = sdc_safetensors_count(st), k = 0;
    sdc_st_write_item *items = calloc(n, sizeof *items);
    sdc_tensor **ts = calloc(n, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        if (drop && !strcmp(e->name, drop)) continue;
        ts[k] = sdc_tensor_new(SDC_F32, e->ndim, e->shape, &err);
        ck_assert_int_eq(sdc_safetensors_read(st, e, ts[k]->data, SDC_F32, &err), SDC_OK);
        items[k] = (sdc_st_write_item){e->name, ts[k]};
        k++;
    }
    const char *meta[] = {"sdc.clip.text_heads", "2", "sdc.clip.vision_heads", "4"};
    ck_assert_msg(sdc_safetensors_write(path, items, k, meta, heads ? 2 : 0, &err) == SDC_OK, "%s", err.msg);
    for (size_t i = 0; i < k; i++) sdc_tensor_free(ts[i]);
    free(ts);
    free(items);
    sdc_safetensors_close(st);
    return path;
}

START_TEST(clip_single_file_f32_matches) {
    const char *dir = test_tmpdir();
    const char *path = single_file(dir, NULL, true);
    sdc_clip_config a, b;
    sdc_err err = {0};
    ck_assert_msg(sdc_clip_config_read(path, &a, NULL, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(sdc_clip_config_read(CLIP_DIR, &b, NULL, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(a.text.width, 8);
    ck_assert_int_eq(a.text.layers, b.text.layers);
    ck_assert_int_eq(a.text.heads, b.text.heads);
    ck_assert_int_eq(a.text.vocab, 49408);
    ck_assert_int_eq(a.vision.width, 32);
    ck_assert_int_eq(a.vision.image_size, 224);
    ck_assert_int_eq(a.vision.patch, 14);
    ck_assert_int_eq(a.vision.heads, b.vision.heads);
    ck_assert_int_eq(a.vision.layers, b.vision.layers);
    ck_assert_int_eq(a.vision.ffn, b.vision.ffn);
    ck_assert_int_eq(a.proj, b.proj);
    check_image(path);
    check_text(path);
    /* Without the head counts a 32-wide tower is ambiguous: refused, named. */
    path = single_file(dir, NULL, false);
    ck_assert_int_eq(sdc_clip_config_read(path, &a, NULL, &err), SDC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "sdc.clip.vision_heads"));
}
END_TEST

/* ---------------------------------------------------------------- configs and refusals */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(clip_config_json_rules) {
    const char *dir = test_tmpdir();
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    sdc_clip_config c;
    sdc_err err = {0};
    /* A legacy *_config_dict replaces *_config whole (defaults for the rest),
     * as transformers' CLIPConfig does: text eos 2 and width 64 are dropped. */
    write_text(cfg, "{\"model_type\": \"clip\", \"projection_dim\": 768,"
                    " \"text_config\": {\"hidden_size\": 64, \"eos_token_id\": 2, \"num_attention_heads\": 4},"
                    " \"text_config_dict\": {\"hidden_size\": 768, \"num_attention_heads\": 12,"
                    "   \"intermediate_size\": 3072, \"num_hidden_layers\": 12},"
                    " \"vision_config\": {\"hidden_size\": 1024, \"num_attention_heads\": 16,"
                    "   \"num_hidden_layers\": 24, \"intermediate_size\": 4096, \"patch_size\": 14}}");
    char w[512];
    snprintf(w, sizeof w, "%s/model.safetensors", dir);
    write_text(w, "x");
    ck_assert_msg(sdc_clip_config_read(dir, &c, NULL, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(c.text.width, 768);
    ck_assert_int_eq(c.text.heads, 12);
    ck_assert_int_eq(c.eos_id, 49407);
    ck_assert_int_eq(c.vision.width, 1024);
    ck_assert_int_eq(c.vision.image_size, 224);
    ck_assert_int_eq(c.vision.patch, 14);
    ck_assert_int_eq(c.proj, 768);
    /* Absent keys take CLIPConfig's defaults (ViT-B/32 sizes). */
    write_text(cfg, "{\"model_type\": \"clip\"}");
    ck_assert_msg(sdc_clip_config_read(dir, &c, NULL, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(c.text.width, 512);
    ck_assert_int_eq(c.vision.patch, 32);
    ck_assert_int_eq(c.proj, 512);
    static const struct { const char *json, *want; } bad[] = {
        {"{\"model_type\": \"clip_text_model\"}", "both towers"},
        {"{\"text_config\": {\"hidden_act\": \"gelu\"}}", "gelu"},
        {"{\"vision_config\": {\"image_size\": 225, \"patch_size\": 14}}", "multiple of patch_size"},
        {"{\"vision_config\": {\"hidden_size\": 30, \"num_attention_heads\": 4}}", "multiple of"},
        {"{\"text_config\": {\"num_hidden_layers\": -1}}", "num_hidden_layers"},
        {"[1, 2]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text(cfg, bad[i].json);
        ck_assert_msg(sdc_clip_config_read(dir, &c, NULL, &err) != SDC_OK, "%s accepted", bad[i].json);
        ck_assert_msg(strstr(err.msg, bad[i].want), "%s: '%s' lacks '%s'", bad[i].json, err.msg, bad[i].want);
    }
    write_text(cfg, "{}");
    char pp[512];
    snprintf(pp, sizeof pp, "%s/preprocessor_config.json", dir);
    static const struct { const char *json, *want; } badp[] = {
        {"{\"resample\": 2}", "not bicubic"},
        {"{\"crop_size\": {\"height\": 256, \"width\": 256}}", "crop_size 256"},
        {"{\"do_center_crop\": false}", "do_center_crop"},
        {"{\"image_std\": [0.5, 0, 0.5]}", "positive"},
        {"{\"image_mean\": [0.5, 0.5]}", "3 numbers"},
        {"{\"size\": {\"shortest_edge\": 100}}", "below crop_size"},
    };
    for (size_t i = 0; i < sizeof badp / sizeof *badp; i++) {
        write_text(pp, badp[i].json);
        ck_assert_msg(sdc_clip_config_read(dir, &c, NULL, &err) != SDC_OK, "%s accepted", badp[i].json);
        ck_assert_msg(strstr(err.msg, badp[i].want), "%s: '%s' lacks '%s'", badp[i].json, err.msg, badp[i].want);
    }
    write_text(pp, "{\"size\": {\"shortest_edge\": 256}, \"image_mean\": [0.5, 0.5, 0.5]}");
    ck_assert_msg(sdc_clip_config_read(dir, &c, NULL, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(c.resize, 256);
    ck_assert(c.mean[1] == 0.5f);
    remove(w);
    ck_assert_int_eq(sdc_clip_config_read(dir, &c, NULL, &err), SDC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "model.safetensors"));
    remove(cfg);
    ck_assert_int_eq(sdc_clip_config_read(dir, &c, NULL, &err), SDC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "config.json"));
}
END_TEST

START_TEST(clip_refuses_what_is_not_a_clip_model) {
    const char *dir = test_tmpdir();
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    typedef struct { const char *path, *want; } refusal;
    refusal cases[6];
    int n = 0;
    cases[n++] = (refusal){FIX "tiny/original.safetensors", "Stable Diffusion"};
    cases[n++] = (refusal){FIX "tiny/diffusers", "diffusers pipeline"};
    static char p1[512], p2[512], p3[512];
    snprintf(p1, sizeof p1, "%s", single_file(dir, "visual_projection.weight", true));
    cases[n++] = (refusal){p1, "visual_projection.weight"};
    snprintf(p2, sizeof p2, "%s/truncated.safetensors", dir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "head -c 5000 %s/model.safetensors > %s", CLIP_DIR, p2);
    ck_assert_int_eq(system(cmd), 0);
    cases[n++] = (refusal){p2, "truncated.safetensors"};
    snprintf(p3, sizeof p3, "%s/notes.txt", dir);
    write_text(p3, "these are not weights\n");
    cases[n++] = (refusal){p3, "notes.txt"};
    cases[n++] = (refusal){"/nonexistent/clip", "No such file"};
    for (int i = 0; i < n; i++) {
        sdc_clip_model *m = sdc_clip_model_open(cases[i].path, be, &err);
        ck_assert_msg(!m, "%s accepted", cases[i].path);
        printf("  %s -> %s\n", cases[i].path, err.msg);
        ck_assert_msg(strstr(err.msg, cases[i].want), "%s: '%s' lacks '%s'", cases[i].path, err.msg,
                      cases[i].want);
    }
    /* A folder whose weights lack a tower: the missing tensors are named. */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/notext && cp " CLIP_DIR "/config.json %s/notext/", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    {
        sdc_safetensors *src = sdc_safetensors_open(CLIP_DIR "/model.safetensors", &err);
        size_t cnt = sdc_safetensors_count(src), k = 0;
        sdc_st_write_item *it = calloc(cnt, sizeof *it);
        sdc_tensor **tt = calloc(cnt, sizeof *tt);
        for (size_t i = 0; i < cnt; i++) {
            const sdc_st_entry *e = sdc_safetensors_entry(src, i);
            if (!strncmp(e->name, "text_model.", 11)) continue;
            tt[k] = sdc_tensor_new(e->dtype, e->ndim, e->shape, &err);
            ck_assert_int_eq(sdc_safetensors_read(src, e, tt[k]->data, e->dtype, &err), SDC_OK);
            it[k] = (sdc_st_write_item){e->name, tt[k]};
            k++;
        }
        snprintf(cmd, sizeof cmd, "%s/notext/model.safetensors", dir);
        ck_assert_int_eq(sdc_safetensors_write(cmd, it, k, NULL, 0, &err), SDC_OK);
        for (size_t i = 0; i < k; i++) sdc_tensor_free(tt[i]);
        free(tt);
        free(it);
        sdc_safetensors_close(src);
        snprintf(cmd, sizeof cmd, "%s/notext", dir);
        ck_assert_ptr_null(sdc_clip_model_open(cmd, be, &err));
        printf("  %s -> %s\n", cmd, err.msg);
        ck_assert_msg(strstr(err.msg, "tensors missing") && strstr(err.msg, "text_model.") &&
                      strstr(err.msg, "vision-only") && !strstr(err.msg, "SD 1.x"), "%s", err.msg);
    }
    /* A mis-shaped tensor is named with both shapes. */
    snprintf(cmd, sizeof cmd, "%s/shape", dir);
    sdc_safetensors *st = sdc_safetensors_open(CLIP_DIR "/model.safetensors", &err);
    size_t cnt = sdc_safetensors_count(st);
    sdc_st_write_item *items = calloc(cnt, sizeof *items);
    sdc_tensor **ts = calloc(cnt, sizeof *ts);
    for (size_t i = 0; i < cnt; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        int64_t shape[4] = {e->shape[0], e->shape[1], e->shape[2], e->shape[3]};
        if (!strcmp(e->name, "text_projection.weight")) shape[1] = 9;
        ts[i] = sdc_tensor_new(SDC_F16, e->ndim, shape, &err);
        memset(ts[i]->data, 0x3c, sdc_tensor_nbytes(ts[i]));
        items[i] = (sdc_st_write_item){e->name, ts[i]};
    }
    const char *meta[] = {"sdc.clip.text_heads", "2", "sdc.clip.vision_heads", "4"};
    snprintf(cmd, sizeof cmd, "%s/shape.safetensors", dir);
    ck_assert_int_eq(sdc_safetensors_write(cmd, items, cnt, meta, 2, &err), SDC_OK);
    ck_assert_ptr_null(sdc_clip_model_open(cmd, be, &err));
    ck_assert_msg(strstr(err.msg, "text_projection.weight") && strstr(err.msg, "[16, 9]"), "%s", err.msg);
    for (size_t i = 0; i < cnt; i++) sdc_tensor_free(ts[i]);
    free(ts);
    free(items);
    sdc_safetensors_close(st);
    sdc_backend_destroy(be);
}
END_TEST

START_TEST(clip_encoders_refuse_bad_inputs) {
    env e;
    env_open(&e, CLIP_DIR);
    int32_t ids[2 * 78];
    for (int i = 0; i < 2 * 78; i++) ids[i] = 49407;
    float out[2 * 16];
    sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_int_eq(sdc_clip_encode_text(&ex, e.m, ids, 2, 78, true, out, NULL), SDC_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(e.err.msg, "1 to 77"));
    ids[5] = 49408; /* one past the vocabulary */
    ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_int_eq(sdc_clip_encode_text(&ex, e.m, ids, 2, 77, true, out, NULL), SDC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(e.err.msg, "49408"));
    /* NaN pixels: a numeric error, never a silent embedding. */
    float *px = calloc(3 * 224 * 224, sizeof *px);
    px[7] = NAN;
    ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_int_eq(sdc_clip_encode_image(&ex, e.m, px, 1, true, out, NULL), SDC_ERR_NUMERIC);
    free(px);
    float z[4] = {0, 0, 0, 0};
    ck_assert_int_eq(sdc_l2_normalize(z, 4, &e.err), SDC_ERR_NUMERIC);
    env_close(&e);
}
END_TEST

/* ---------------------------------------------------------------- sdc eval */

START_TEST(eval_clip_image_and_text_match_fixtures) {
    const char *dir = test_tmpdir();
    sdc_tensor *crop = fixture("crop", SDC_U8);
    float *px = reference_pixels(crop);
    sdc_tensor t;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_tensor_init(&t, SDC_F32, 4, (const int64_t[]){3, 3, 224, 224}, px, &err), SDC_OK);
    char in[512];
    snprintf(in, sizeof in, "%s/px.safetensors", dir);
    sdc_st_write_item item = {"pixel_values", &t};
    ck_assert_int_eq(sdc_safetensors_write(in, &item, 1, NULL, 0, &err), SDC_OK);
    const cli_result *r = cli_run("eval clip-image --model " CLIP_DIR " --in %s --out %s/i.safetensors", in, dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    /* Measured rel-L2 2.3e-7 / 2.5e-7 / 2.3e-7. */
    r = cli_run("compare %s/i.safetensors " IO " --tol 1e-5", dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "image_embeds") && strstr(r->out, "image_pooled"),
                  "%s%s", r->out, r->err);
    r = cli_run("eval clip-text --model " CLIP_DIR " --in " IO " --out %s/t.safetensors", dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    r = cli_run("compare %s/t.safetensors " IO " --tol 1e-5", dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "text_embeds"), "%s%s", r->out, r->err);
    /* Bad inputs: clear message, exit 1 (runtime) or 2 (usage), no output. */
    static const struct { const char *args; int code; const char *want; } bad[] = {
        {"eval clip-image --model " CLIP_DIR " --in " IO " --out %s/o.safetensors", 1, "no tensor 'pixel_values'"},
        {"eval clip-text --model " CLIP_DIR " --in %s/px.safetensors --out %s/o.safetensors", 1, "no tensor 'input_ids'"},
        {"eval clip-image --model " CLIP_DIR " --in " FIX "vae_io.safetensors --out %s/o.safetensors", 1, "no tensor"},
        {"eval clip-text --model " FIX "tiny/original.safetensors --in " IO " --out %s/o.safetensors", 1, "Stable Diffusion"},
        {"eval clip-text --clip-skip 1 --model " CLIP_DIR " --in " IO " --out %s/o.safetensors", 2, "--clip-skip"},
        {"eval clip-vision --model " CLIP_DIR " --in " IO " --out %s/o.safetensors", 2, "unknown component"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[1024];
        if (strstr(bad[i].args, "px.safetensors")) snprintf(args, sizeof args, bad[i].args, dir, dir);
        else snprintf(args, sizeof args, bad[i].args, dir);
        r = cli_run("%s", args);
        ck_assert_msg(r->code == bad[i].code && strstr(r->err, bad[i].want), "%s: exit %d: %s", args, r->code, r->err);
        char o[600];
        snprintf(o, sizeof o, "%s/o.safetensors", dir);
        ck_assert_msg(access(o, F_OK) != 0, "%s left an output", args);
    }
    /* pixel_values of the wrong size. */
    ck_assert_int_eq(sdc_tensor_init(&t, SDC_F32, 4, (const int64_t[]){1, 3, 112, 112}, px, &err), SDC_OK);
    ck_assert_int_eq(sdc_safetensors_write(in, &item, 1, NULL, 0, &err), SDC_OK);
    r = cli_run("eval clip-image --model " CLIP_DIR " --in %s --out %s/o.safetensors", in, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "[1, 3, 112, 112]") && strstr(r->err, "[B, 3, 224, 224]"),
                  "%s", r->err);
    free(px);
    sdc_tensor_free(crop);
}
END_TEST

Suite *suite_clip(void) {
    Suite *s = suite_create("clip");
    TCase *tc = tcase_create("clip");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, clip_resize_matches_pillow);
    tcase_add_test(tc, clip_preprocess_matches_transformers);
    tcase_add_test(tc, clip_preprocess_edge_sizes);
    tcase_add_test(tc, clip_image_embeddings_match_transformers);
    tcase_add_test(tc, clip_text_embeddings_match_transformers);
    tcase_add_test(tc, clip_single_file_f32_matches);
    tcase_add_test(tc, clip_config_json_rules);
    tcase_add_test(tc, clip_refuses_what_is_not_a_clip_model);
    tcase_add_test(tc, clip_encoders_refuse_bad_inputs);
    tcase_add_test(tc, eval_clip_image_and_text_match_fixtures);
    suite_add_tcase(s, tc);
    return s;
}
