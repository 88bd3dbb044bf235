/* test_generate_cli.c — sdc generate end to end on the tiny model: numbered
 * batch outputs with A1111 parameters and per-image seeds (each image's
 * parameters regenerate it alone; the batch equals diffusers with a
 * generator per image), img2img from a PNG, injected noise, the sizes
 * diffusers accepts, the model folder's scheduler config, the A1111 and
 * stable-diffusion.cpp spellings of options and sampler names, --seed -1,
 * and refusals of bad arguments with nothing written. */
#include "cli_run.h"
#include "suites.h"

#include "../src/pipeline/rng.h"
#include "sdc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TINY "tests/fixtures/tiny/"
#define VOCAB "--vocab weights/bpe_simple_vocab_16e6.txt.gz"

static bool exists(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

START_TEST(generate_batch_writes_numbered_pngs_with_parameters) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("generate --model " TINY "original.safetensors " VOCAB
                                  " --prompt 'a red fox' --negative 'blurry' --steps 3 "
                                  "--sampler euler_a --seed 42 --width 64 --height 72 --batch 2 "
                                  "--save-latents %s/lat.safetensors -o %s/fox.png -q",
                                  dir, dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    ck_assert(exists(dir, "fox-0.png") && exists(dir, "fox-1.png") && !exists(dir, "fox.png"));
    r = cli_run("info %s/fox-1.png --json", dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    const char *want[] = {"a red fox", "Negative prompt: blurry", "Steps: 3", "Sampler: Euler a",
                          "CFG scale: 7.5", "Seed: 43", "Size: 64x72", "Model hash: ",
                          "Model: original", "RNG: CPU"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(r->out, want[i]), "'%s' missing from %s", want[i], r->out);
    r = cli_run("info %s/lat.safetensors", dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "tensors:     1"), "%s%s", r->out, r->err);
    /* Image 1 of the batch (Seed 43) is regenerated alone from its parameters. */
    r = cli_run("generate --model " TINY "original.safetensors " VOCAB
                " --prompt 'a red fox' --negative 'blurry' --steps 3 --sampler 'Euler a' --seed 43 "
                "--width 64 --height 72 -o %s/alone.png -q", dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s %s/fox-1.png %s/alone.png", dir, dir);
    ck_assert_msg(system(cmd) == 0, "image 1 of a batch differs from its seed run alone");
}
END_TEST

/* A batch is diffusers' pipeline with a generator per image seeded SEED + i
 * (tests/make_fixtures.py rows.euler_a): latents within the pipeline suite's
 * rel-L2 1e-4 (measured 4.3e-5 there). */
START_TEST(generate_batch_matches_diffusers_generator_list) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("generate -m " TINY "diffusers " VOCAB " -p 'a photo of a cat' "
                                  "--negative-prompt '' --steps 6 --sampler k_euler_a -s 1234 "
                                  "-W 64 -H 64 -b 2 --cfg-scale=7.5 --save-latents=%s/l.safetensors "
                                  "-o %s/c.PNG -q", dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert(exists(dir, "c-0.PNG") && exists(dir, "c-1.PNG"));
    r = cli_run("compare %s/l.safetensors tests/fixtures/pipeline_io.safetensors --tol 1e-4 "
                "--pair latents=rows.euler_a.latents", dir);
    ck_assert_msg(r->code == 0, "%s%s", r->out, r->err);
}
END_TEST

/* The PNG parameters paste into A1111: a plain prompt's emphasis characters
 * escaped and its AND/BREAK keywords lowercased (same CLIP tokens), A1111's
 * sampler and schedule names, RNG: CPU. */
START_TEST(generate_parameters_paste_into_a1111) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("generate -m " TINY "diffusers " VOCAB " -p 'a (red) fox AND [cat] \\ BREAK' "
                                  "-n 'blur (x)' --steps 2 --size 8 --sampler euler_karras -o %s/k.png -q", dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("info %s/k.png", dir);
    const char *want[] = {"a \\(red\\) fox and \\[cat\\] \\\\ break", "Negative prompt: blur \\(x\\)",
                          "Sampler: Euler", "Schedule type: Karras", "RNG: CPU"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(r->out, want[i]), "'%s' missing from %s", want[i], r->out);
    /* with the a1111 syntax the prompt is already A1111's: written as given */
    r = cli_run("generate -m " TINY "diffusers " VOCAB " -p '(red:1.2) fox' --prompt-syntax a1111 "
                "--steps 2 --size 8 --sampler 'DPM++ 2M Karras' -o %s/a.png -q", dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("info %s/a.png", dir);
    ck_assert_msg(strstr(r->out, "(red:1.2) fox") && strstr(r->out, "Sampler: DPM++ 2M Karras"), "%s", r->out);
}
END_TEST

/* --seed -1 (or none) is random and printed before the work, also with -q. */
START_TEST(generate_random_seed_is_printed_first) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("generate -m " TINY "diffusers " VOCAB " -p cat --steps 1 -s -1 "
                                  "--size 48x64 -o %s/r.png -q", dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    unsigned long long seed;
    ck_assert_msg(sscanf(r->err, "seed: %llu", &seed) == 1, "%s", r->err);
    r = cli_run("info %s/r.png", dir);
    char want[64];
    snprintf(want, sizeof want, "Seed: %llu", seed);
    ck_assert_msg(strstr(r->out, want) && strstr(r->out, "Size: 48x64"), "%s", r->out);
}
END_TEST

/* The model folder's scheduler config picks the sampler and its settings;
 * flags override; --help says so. */
START_TEST(generate_follows_the_scheduler_config) {
    const char *dir = test_tmpdir(), *model = test_other_scheduler_model();
    const cli_result *r = cli_run("generate -m %s " VOCAB " -p cat --steps 2 --size 8 --json "
                                  "-o %s/v.png", model, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "\"sampler\": \"ddim\"") &&
                  strstr(r->out, "\"prediction_type\": \"v_prediction\"") &&
                  strstr(r->out, "\"timestep_spacing\": \"leading\""), "%s", r->out);
    r = cli_run("generate -m %s " VOCAB " -p cat --steps 2 --size 8 --json --sampler euler "
                "--spacing trailing --prediction-type epsilon -o %s/e.png", model, dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "\"sampler\": \"euler\"") &&
                  strstr(r->out, "\"prediction_type\": \"epsilon\"") &&
                  strstr(r->out, "\"timestep_spacing\": \"trailing\""), "%s%s", r->out, r->err);
    /* A single file has SD 1.5's config; --scheduler-config gives it another. */
    r = cli_run("generate -m " TINY "original.safetensors " VOCAB " -p cat --steps 2 --size 8 --json "
                "--scheduler-config %s/scheduler/scheduler_config.json -o %s/f.png", model, dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "v_prediction"), "%s%s", r->out, r->err);
    r = cli_run("generate --help");
    ck_assert_msg(r->code == 0 && strstr(r->out, "scheduler_config.json") &&
                  strstr(r->out, "override"), "%s", r->out);
}
END_TEST

START_TEST(generate_img2img_and_injected_noise) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("generate --model " TINY "diffusers " VOCAB " --prompt cat "
                                  "--steps 2 --seed 1 --width 64 --height 64 -o %s/a.png -q", dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("generate --model " TINY "diffusers " VOCAB " --prompt cat --init %s/a.png "
                "--strength 0.5 --steps 4 --fit crop --width 64 --height 80 -o %s/b.png -q", dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("info %s/b.png", dir);
    ck_assert_msg(strstr(r->out, "Denoising strength: 0.5") && strstr(r->out, "64x80"), "%s", r->out);
    /* --init-noise wants tensor 'noise' of the right shape. */
    r = cli_run("generate --model " TINY "diffusers " VOCAB " --prompt cat --steps 2 --width 64 "
                "--height 64 --init-noise tests/fixtures/pipeline_io.safetensors -o %s/c.png", dir);
    ck_assert_int_eq(r->code, 1);
    ck_assert_msg(strstr(r->err, "no tensor 'noise'"), "%s", r->err);
    ck_assert(!exists(dir, "c.png"));
}
END_TEST

/* --rng cuda: torch's CUDA generator on the CPU backend. The seed's noise
 * is the Philox one (not the CPU generator's), the PNG says nothing about
 * the source (A1111's default, GPU), and with a deterministic sampler the
 * image is the one its initial noise gives (--init-noise with the same
 * Philox draw, made here through the library). */
START_TEST(generate_rng_cuda) {
    const char *dir = test_tmpdir();
    const cli_result *r;
    for (int cuda = 0; cuda < 2; cuda++) {
        r = cli_run("generate --model " TINY "diffusers " VOCAB " --prompt 'a fox' --steps 3 "
                    "--sampler ddim --seed 4242 --width 64 --height 72 %s "
                    "--save-latents %s/rl%d.safetensors -o %s/r%d.png -q",
                    cuda ? "--rng cuda" : "", dir, cuda, dir, cuda);
        ck_assert_msg(r->code == 0, "%s", r->err);
        r = cli_run("info %s/r%d.png", dir, cuda);
        ck_assert_msg(r->code == 0, "%s", r->err);
        ck_assert_msg((strstr(r->out, "RNG:") == NULL) == (cuda == 1), "%s", r->out);
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s %s/rl0.safetensors %s/rl1.safetensors", dir, dir);
    ck_assert_msg(system(cmd) != 0, "--rng cuda gave the CPU generator's latents");
    /* The same image from the Philox noise passed in. */
    float noise[4 * 9 * 8];
    sdc_rng g;
    sdc_rng_seed_cuda(&g, 4242, 0);
    sdc_rng_randn(&g, noise, sizeof noise / sizeof *noise);
    sdc_tensor t;
    sdc_err err = {0};
    sdc_tensor_init(&t, SDC_F32, 4, (const int64_t[]){1, 4, 9, 8}, noise, &err);
    sdc_st_write_item it = {"noise", &t};
    char path[1024];
    snprintf(path, sizeof path, "%s/noise.safetensors", dir);
    ck_assert_int_eq(sdc_safetensors_write(path, &it, 1, NULL, 0, &err), SDC_OK);
    r = cli_run("generate --model " TINY "diffusers " VOCAB " --prompt 'a fox' --steps 3 "
                "--sampler ddim --seed 4242 --width 64 --height 72 --init-noise %s "
                "--save-latents %s/rl2.safetensors -o %s/r2.png -q", path, dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(cmd, sizeof cmd, "cmp -s %s/rl1.safetensors %s/rl2.safetensors", dir, dir);
    ck_assert_msg(system(cmd) == 0, "--rng cuda's latents differ from its noise injected");
}
END_TEST

/* --low-memory drops every weight's pages after use: the same bytes out,
 * from the single file (text, UNet and VAE share one mapping) and the folder. */
START_TEST(generate_low_memory_gives_the_same_image) {
    const char *dir = test_tmpdir();
    const char *models[] = {"original.safetensors", "diffusers"};
    for (int m = 0; m < 2; m++) {
        for (int low = 0; low < 2; low++) {
            const cli_result *r = cli_run("generate --model " TINY "%s " VOCAB " --prompt 'a fox' "
                                          "--steps 2 --seed 5 --width 64 --height 64 %s "
                                          "--save-latents %s/lat%d%d.safetensors -o %s/i%d%d.png -q",
                                          models[m], low ? "--low-memory" : "", dir, m, low,
                                          dir, m, low);
            ck_assert_msg(r->code == 0, "%s", r->err);
        }
        char a[1200], b[1200];
        snprintf(a, sizeof a, "cmp -s %s/i%d0.png %s/i%d1.png && cmp -s %s/lat%d0.safetensors "
                 "%s/lat%d1.safetensors", dir, m, dir, m, dir, m, dir, m);
        snprintf(b, sizeof b, "%s", models[m]);
        ck_assert_msg(system(a) == 0, "%s: --low-memory changed the output", b);
    }
}
END_TEST

/* textinv-init writes an A1111 embedding that generate then uses. */
START_TEST(generate_with_textinv_init_embedding) {
    const char *dir = test_tmpdir();
    const cli_result *r = cli_run("textinv-init --model " TINY "diffusers " VOCAB
                                  " --word 'red fox' -o %s/foxy.safetensors", dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "2 vector(s) of width 8"), "%s%s", r->out, r->err);
    r = cli_run("generate --model " TINY "diffusers " VOCAB " --embeddings %s/foxy.safetensors "
                "--prompt 'a photo of foxy' --steps 2 --width 64 --height 64 -o %s/e.png -q",
                dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert(exists(dir, "e.png"));
    r = cli_run("textinv-init --model " TINY "diffusers " VOCAB " --word '' -o %s/x.safetensors", dir);
    ck_assert_int_eq(r->code, 1);
    ck_assert(!exists(dir, "x.safetensors"));
}
END_TEST

START_TEST(generate_refuses_bad_arguments) {
    const char *dir = test_tmpdir();
    static const struct { const char *args; int code; const char *msg; } cases[] = {
        {"--prompt x -o %s/o.png", 2, "required"},
        {"--model m --prompt x -o %s/o.jpg", 2, ".png"},
        {"--model m --prompt x --steps 0 -o %s/o.png", 2, "--steps"},
        {"--model m --prompt x --steps 12abc -o %s/o.png", 2, "--steps"},
        {"--model m --prompt x --batch 0 -o %s/o.png", 2, "--batch"},
        {"--model m --prompt x --width 100 -o %s/o.png", 2, "multiples of 8"},
        {"--model m --prompt x --width 99999999999999999999 -o %s/o.png", 2, "--width"},
        {"--model m --prompt x --cfg nan -o %s/o.png", 2, "--cfg"},
        {"--model m --prompt x --strength 1.5 -o %s/o.png", 2, "--strength"},
        {"--model m --prompt x --seed -2 -o %s/o.png", 2, "--seed"},
        {"--model m --prompt x --stpes 3 -o %s/o.png", 2, "did you mean --steps?"},
        {"--model m --prompt x --strength 0.5 -o %s/o.png", 2, "--strength applies to img2img"},
        {"--model m --prompt x --size 64 --width 64 -o %s/o.png", 2, "--size or --width"},
        {"--model m --prompt x --size 4x64 -o %s/o.png", 2, "--size"},
        {"--model m --prompt x --quiet=yes -o %s/o.png", 2, "takes no value"},
        {"--model m --prompt x --sampler euler --eta 0.5 -o %s/o.png", 2, "eta applies to ddim"},
        {"--model m --prompt x --sampler euler_a_karras -o %s/o.png", 2, "Euler a"},
        {"--model m --prompt x --sampler magic -o %s/o.png", 2, "unknown sampler 'magic'"},
        {"--model m --prompt x --prompt-syntax fancy -o %s/o.png", 2, "--prompt-syntax"},
        {"--model m --prompt x --bogus -o %s/o.png", 2, "unknown option '--bogus'"},
        {"--model m --prompt x --steps", 2, "needs a value"},
        {"--model m --prompt x --rng gpu -o %s/o.png", 2, "--rng must be cpu, cuda"},
        {"--model m --prompt x --rng cuda:0 -o %s/o.png", 2, "--rng must be"},
        {"--model m --prompt x --rng cuda:12x -o %s/o.png", 2, "--rng must be"},
        {"--model m --prompt x --precision f8 -o %s/o.png", 2, "--precision must be"},
        {"--model m --prompt x --backend cpu --device 1 -o %s/o.png", 2, "--device 1 applies to --backend cuda or vulkan"},
        {"--model m --prompt x --backend vulkan:0 --device 0 -o %s/o.png", 2, "without ':N'"},
        {"--model m --prompt x --vae-precision half -o %s/o.png", 2, "--vae-precision must be"},
        {"--model m --prompt x -o %s/o.png --rng", 2, "needs a value"},
        {"--model " TINY "diffusers " VOCAB " --prompt x --width 64 --height 64 --precision f16 "
         "--backend cpu -o %s/o.png", 1, "precision f16: the cpu backend computes F32"},
        {"--model " TINY "diffusers " VOCAB " --prompt x --width 64 --height 64 --vae-precision "
         "bf16 --backend cpu -o %s/o.png", 1, "VAE: precision bf16"},
        {"--model m --prompt x --init %s/o.png -o %s/o.png", 2, "overwrite --init"},
        {"--model /nonexistent " VOCAB " --prompt x -o %s/o.png", 1, "/nonexistent"},
        {"--model " TINY "diffusers --vocab /nonexistent.gz --prompt x -o %s/o.png", 1,
         "/nonexistent.gz"},
        {"--model " TINY "diffusers " VOCAB " --prompt x --init /nonexistent.png -o %s/o.png", 1,
         "/nonexistent.png"},
        {"--model " TINY "diffusers " VOCAB " --prompt \"$(printf '\\377')\" --width 64 --height 64 -o %s/o.png", 1, "UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[1024];
        snprintf(args, sizeof args, cases[i].args, dir, dir);
        const cli_result *r = cli_run("generate %s", args);
        ck_assert_msg(r->code == cases[i].code, "'%s' exited %d, want %d (%s)", args, r->code,
                      cases[i].code, r->err);
        ck_assert_msg(strstr(r->err, cases[i].msg), "'%s': '%s' lacks '%s'", args, r->err,
                      cases[i].msg);
        ck_assert_msg(!exists(dir, "o.png"), "'%s' wrote an output", args);
    }
}
END_TEST

Suite *suite_generate_cli(void) {
    Suite *s = suite_create("generate_cli");
    TCase *tc = tcase_create("generate_cli");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, generate_batch_writes_numbered_pngs_with_parameters);
    tcase_add_test(tc, generate_batch_matches_diffusers_generator_list);
    tcase_add_test(tc, generate_random_seed_is_printed_first);
    tcase_add_test(tc, generate_parameters_paste_into_a1111);
    tcase_add_test(tc, generate_follows_the_scheduler_config);
    tcase_add_test(tc, generate_img2img_and_injected_noise);
    tcase_add_test(tc, generate_with_textinv_init_embedding);
    tcase_add_test(tc, generate_refuses_bad_arguments);
    tcase_add_test(tc, generate_low_memory_gives_the_same_image);
    tcase_add_test(tc, generate_rng_cuda);
    suite_add_tcase(s, tc);
    return s;
}
