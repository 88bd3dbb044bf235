/* test_eval_cli.c — the reference-harness commands end to end: sdc eval on
 * the fixtures in both layouts, sdc compare, sdc make-random, and their
 * refusals of bad arguments and non-SD-1.x checkpoints. */
#include "cli_run.h"
#include "suites.h"

#include "sdc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX "tests/fixtures/"

static const char *const models[] = {FIX "tiny/diffusers", FIX "tiny/original.safetensors"};

START_TEST(eval_unet_with_dump_matches_fixture) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("eval unet --model %s --in " FIX "unet_io.safetensors "
                                  "--out %s/out.safetensors --dump %s/dump",
                                  models[_i], dir, dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    /* A's tensors against B's: out vs the fixture's out. */
    r = cli_run("compare %s/out.safetensors " FIX "unet_io.safetensors --tol 1e-5", dir);
    ck_assert_msg(r->code == 0, "exit %d: %s%s", r->code, r->out, r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "out"));
    r = cli_run("info %s/dump/mid_block.safetensors", dir);
    ck_assert_msg(r->code == 0, "mid_block dump missing: %s", r->err);
}
END_TEST

START_TEST(eval_text_and_vae_match_fixtures) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("eval text --model %s --in " FIX "clip_text_io.safetensors "
                                  "--out %s/t.safetensors", models[_i], dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    r = cli_run("compare %s/t.safetensors " FIX "clip_text_io.safetensors --tol 1e-5", dir);
    ck_assert_msg(r->code == 0, "%s%s", r->out, r->err);
    /* vae-encode reads `sample`; vae_io's sample is the image, its latents
     * go through vae-decode (written as `sample` too, compared below). */
    r = cli_run("eval vae-encode --model %s --in " FIX "vae_io.safetensors --out %s/e.safetensors",
                models[_i], dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    r = cli_run("compare %s/e.safetensors " FIX "vae_io.safetensors --tol 1e-5 --json", dir);
    ck_assert_msg(r->code == 0, "%s%s", r->out, r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "\"failed\": 0"));
    r = cli_run("eval vae-decode --model %s --in " FIX "vae_io.safetensors --out %s/d.safetensors",
                models[_i], dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
}
END_TEST

/* A single file whose text-encoder width (8) is not a multiple of 64 and that
 * names no head count: the UNet and VAE still evaluate; text asks for
 * --clip-heads and then matches transformers. */
START_TEST(eval_without_text_heads_and_clip_heads) {
    const char *dir = test_tmpdir();
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(FIX "tiny/original.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    size_t n = sdc_safetensors_count(st);
    sdc_st_write_item *items = calloc(n, sizeof *items);
    sdc_tensor *ts = calloc(n, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        ck_assert(sdc_tensor_init(&ts[i], e->dtype, e->ndim, e->shape, (void *)e->data, &err) == SDC_OK);
        items[i] = (sdc_st_write_item){e->name, &ts[i]};
    }
    char path[700];
    snprintf(path, sizeof path, "%s/nohead.safetensors", dir);
    /* unet heads only: the CLIP head count is left for the loader to infer */
    const char *meta[] = {"sdc.unet.heads", "8"};
    ck_assert_msg(sdc_safetensors_write(path, items, n, meta, 1, &err) == SDC_OK, "%s", err.msg);
    free(items);
    free(ts);
    sdc_safetensors_close(st);
    const cli_result *r = cli_run("eval unet --model %s --in " FIX "unet_io.safetensors --out %s/u.safetensors", path, dir);
    ck_assert_msg(r->code == 0, "unet needs no text encoder: %s", r->err);
    r = cli_run("compare %s/u.safetensors " FIX "unet_io.safetensors --pair out=out --tol 1e-5", dir);
    ck_assert_msg(r->code == 0, "%s%s", r->out, r->err);
    r = cli_run("eval vae-decode --model %s --in " FIX "vae_io.safetensors --out %s/d.safetensors", path, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("eval text --model %s --in " FIX "clip_text_io.safetensors --out %s/t.safetensors", path, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "--clip-heads"), "%s", r->err);
    r = cli_run("eval text --model %s --clip-heads 3 --in " FIX "clip_text_io.safetensors --out %s/t.safetensors", path, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "do not divide its width 8"), "%d %s", r->code, r->err);
    r = cli_run("eval text --model %s --clip-heads 2 --in " FIX "clip_text_io.safetensors --out %s/t.safetensors", path, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("compare %s/t.safetensors " FIX "clip_text_io.safetensors --tol 1e-5", dir);
    ck_assert_msg(r->code == 0, "%s%s", r->out, r->err);
}
END_TEST

START_TEST(compare_flags_mismatch_and_missing) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("eval text --model %s --in " FIX "clip_text_io.safetensors "
                                  "--out %s/t.safetensors --clip-skip 1", models[0], dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    /* last_hidden_state of clip skip 1 is not the fixture's last_hidden_state */
    r = cli_run("compare %s/t.safetensors " FIX "clip_text_io.safetensors", dir);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->out, "OVER"));
    /* The fixture's tensors are mostly missing from the eval output. */
    r = cli_run("compare " FIX "clip_text_io.safetensors %s/t.safetensors", dir);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->out, "missing from B"));
}
END_TEST

START_TEST(eval_refuses_bad_arguments) {
    const char *dir = test_tmpdir();
    struct { const char *args; int code; const char *msg; } cases[] = {
        {"eval", 2, "missing the component"},
        {"eval bogus --model x --in y --out z", 2, "unknown component 'bogus'"},
        {"eval unet --model x --in y", 2, "--out are required"},
        {"eval unet --model x --in y --out y", 2, "must differ"},
        {"eval text --clip-skip -1 --model x --in y --out z", 2, "--clip-skip"},
        {"eval text --clip-skip", 2, "needs a value"},
        {"eval text --frob", 2, "unknown option '--frob'"},
        {"eval vae-decode --dump d --model x --in y --out z", 2, "unet only"},
        {"eval unet --model /nonexistent --in " FIX "unet_io.safetensors --out %s/o", 1,
         "/nonexistent"},
        {"eval unet --model " FIX "tiny/diffusers --in " FIX "clip_text_io.safetensors --out %s/o",
         1, "no tensor 'sample'"},
        {"eval text --model " FIX "unet_io.safetensors --in " FIX "clip_text_io.safetensors --out %s/o",
         1, "not an SD 1.x checkpoint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[1024];
        snprintf(args, sizeof args, cases[i].args, dir);
        const cli_result *r = cli_run("%s", args);
        ck_assert_msg(r->code == cases[i].code, "'%s' exited %d, want %d (%s)", args, r->code,
                      cases[i].code, r->err);
        ck_assert_msg(strstr(r->err, cases[i].msg), "'%s': message '%s' lacks '%s'", args, r->err,
                      cases[i].msg);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/o", dir);
    ck_assert_msg(fopen(path, "r") == NULL, "a failed eval left %s behind", path);
}
END_TEST

START_TEST(make_random_tiny_round_trips_through_eval) {
    const char *dir = test_tmpdir();
    const char *layout = _i == 0 ? "original" : "diffusers";
    const char *dtype = _i == 0 ? "bf16" : "f32";
    const cli_result *r = cli_run("make-random --config tiny --layout %s --dtype %s --seed 3 "
                                  "%s/ck%s", layout, dtype, dir, _i == 0 ? ".safetensors" : "");
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    r = cli_run("info %s/ck%s --json", dir, _i == 0 ? ".safetensors" : "");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, layout));
    r = cli_run("eval unet --model %s/ck%s --in " FIX "unet_io.safetensors --out %s/o.safetensors",
                dir, _i == 0 ? ".safetensors" : "", dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
}
END_TEST

START_TEST(make_random_refuses_bad_arguments) {
    const char *const bad[] = {"make-random", "make-random --layout weird x",
                               "make-random --dtype f8 x", "make-random --seed -3 x",
                               "make-random --config huge x", "make-random a b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const cli_result *r = cli_run("%s", bad[i]);
        ck_assert_msg(r->code == 2, "'%s' exited %d (%s)", bad[i], r->code, r->err);
    }
}
END_TEST

Suite *suite_eval_cli(void) {
    Suite *s = suite_create("eval_cli");
    TCase *tc = tcase_create("eval_cli");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, eval_unet_with_dump_matches_fixture, 0, 2);
    tcase_add_loop_test(tc, eval_text_and_vae_match_fixtures, 0, 2);
    tcase_add_test(tc, eval_without_text_heads_and_clip_heads);
    tcase_add_test(tc, compare_flags_mismatch_and_missing);
    tcase_add_test(tc, eval_refuses_bad_arguments);
    tcase_add_loop_test(tc, make_random_tiny_round_trips_through_eval, 0, 2);
    tcase_add_test(tc, make_random_refuses_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
