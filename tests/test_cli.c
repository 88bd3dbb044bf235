/* test_cli.c — the sdc command as a user runs it (fork/exec of $SDC_BIN):
 * exit codes 0/1/2, --help and --version, and `sdc info` on valid files,
 * diffusers folders and every malformed file of st_malformed.c. */
#include "suites.h"
#include "test_util.h"
#include "st_malformed.h"

#include <cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct run_result {
    int code;         /* exit status, or 128 + signal */
    char out[65536];  /* stdout (truncated) */
    char err[8192];   /* stderr (truncated) */
} run_result;

/* Runs `sdc args...` (args NULL-terminated) with stdout and stderr captured
 * in files, so neither pipe can fill up and block. */
static run_result *run_sdc(const char *const *args) {
    static run_result r;
    const char *dir = test_tmpdir();
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    const char *argv[16] = {test_sdc_bin()};
    int argc = 1;
    while (args[argc - 1] && argc < 15) argv[argc] = args[argc - 1], argc++;
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ck_assert_msg(r.code != 127, "cannot run %s (set SDC_BIN)", argv[0]);
    tu_slurp_into(out_path, r.out, sizeof r.out);
    tu_slurp_into(err_path, r.err, sizeof r.err);
    return &r;
}

#define RUN(...) run_sdc((const char *const[]){__VA_ARGS__, NULL})

static void expect(const run_result *r, int code, const char *in_out, const char *in_err) {
    ck_assert_msg(r->code == code, "exit %d, want %d; stderr: %s", r->code, code, r->err);
    if (in_out) ck_assert_msg(strstr(r->out, in_out), "stdout lacks '%s': %s", in_out, r->out);
    if (in_err) ck_assert_msg(strstr(r->err, in_err), "stderr lacks '%s': %s", in_err, r->err);
}

/* A small original-layout checkpoint: 2 UNet tensors (F32, F16), 1 VAE (I64). */
static const char *write_checkpoint(const char *dir) {
    static char path[512];
    static float w[6] = {1, 2, 3, 4, 5, 6};
    static uint16_t h[4];
    static int64_t ids[3] = {0, 1, 2};
    int64_t s23[] = {2, 3}, s4[] = {4}, s3[] = {3};
    sdc_tensor t[3];
    ck_assert_int_eq(sdc_tensor_init(&t[0], SDC_F32, 2, s23, w, NULL), SDC_OK);
    ck_assert_int_eq(sdc_tensor_init(&t[1], SDC_F16, 1, s4, h, NULL), SDC_OK);
    ck_assert_int_eq(sdc_tensor_init(&t[2], SDC_I64, 1, s3, ids, NULL), SDC_OK);
    sdc_st_write_item items[3] = {{"model.diffusion_model.input_blocks.0.0.weight", &t[0]},
                                  {"model.diffusion_model.out.2.bias", &t[1]},
                                  {"first_stage_model.ids", &t[2]}};
    const char *meta[] = {"format", "pt", "ss_note", "line1\nline2 \"q\""};
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    sdc_err err = {0};
    ck_assert_msg(sdc_safetensors_write(path, items, 3, meta, 2, &err) == SDC_OK, "%s", err.msg);
    return path;
}

/* ---------------------------------------------------------------- top level */

START_TEST(top_level_help_version_unknown) {
    expect(RUN("--help"), 0, "usage: sdc <command>", NULL);
    expect(RUN("--version"), 0, SDC_VERSION, NULL);
    expect(RUN("bogus"), 2, NULL, "unknown command 'bogus'");
    const char *none[] = {NULL};
    expect(run_sdc(none), 2, NULL, "usage");
}
END_TEST

START_TEST(info_usage_errors) {
    run_result *r = RUN("info");
    expect(r, 2, NULL, "sdc info: missing FILE or DIR");
    ck_assert_str_eq(r->out, "");
    expect(RUN("info", "--bogus", "x"), 2, NULL, "sdc info: unknown option '--bogus'");
    expect(RUN("info", "a", "b"), 2, NULL, "more than one input");
    expect(RUN("info", "--help"), 0, "usage: sdc info FILE|DIR|IMAGE [--json] [--tensors]", NULL);
    expect(RUN("info", "x", "-h"), 0, "usage: sdc info", NULL);
    expect(RUN("info", "--jsn", "x"), 2, NULL, "did you mean --json?");
    expect(RUN("info", "--json=1", "x"), 2, NULL, "--json takes no value");
}
END_TEST

/* Where the vocabulary is found: next to the binary, via $SDC_VOCAB (a wrong
 * one is an error), and a message that says every place when it is nowhere. */
START_TEST(vocab_lookup) {
    const char *dir = test_tmpdir();
    char cmd[4096], bin[600];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    mkdir(bin, 0755);
    snprintf(cmd, sizeof cmd, "cp %s %s/sdc", test_sdc_bin(), bin);
    ck_assert_int_eq(system(cmd), 0);
    /* nowhere: the copied binary run from a folder without weights/ */
    snprintf(cmd, sizeof cmd, "cd %s && env -u SDC_VOCAB %s/sdc tokenize cat >out.txt 2>err.txt; "
             "echo $? >rc.txt", dir, bin);
    ck_assert_int_eq(system(cmd), 0);
    char path[700], text[4096];
    snprintf(path, sizeof path, "%s/rc.txt", dir);
    tu_slurp_into(path, text, sizeof text);
    ck_assert_msg(atoi(text) == 1, "rc %s", text);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    tu_slurp_into(path, text, sizeof text);
    ck_assert_msg(strstr(text, "not found") && strstr(text, "make install") && strstr(text, "$SDC_VOCAB") &&
                  strstr(text, "--vocab") && strstr(text, "share/sdc"), "%s", text);
    /* next to the binary */
    snprintf(cmd, sizeof cmd, "cp weights/bpe_simple_vocab_16e6.txt.gz %s/ && cd %s && env -u SDC_VOCAB "
             "%s/sdc tokenize cat >out.txt 2>err.txt", bin, dir, bin);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    tu_slurp_into(path, text, sizeof text);
    ck_assert_msg(!strncmp(text, "49406 2368 49407", 16), "%s", text);
    /* $SDC_VOCAB, right and wrong */
    snprintf(cmd, sizeof cmd, "cd %s && SDC_VOCAB=%s/bpe_simple_vocab_16e6.txt.gz %s/sdc tokenize cat "
             ">out.txt 2>err.txt && ! SDC_VOCAB=%s/none.gz %s/sdc tokenize cat 2>err.txt", dir, bin, bin, dir, bin);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    tu_slurp_into(path, text, sizeof text);
    ck_assert_msg(strstr(text, "$SDC_VOCAB=") && strstr(text, "none.gz") && strstr(text, "No such file"), "%s", text);
}
END_TEST

/* sdc info says an image is an image: a PNG's parameters, a JPEG's size,
 * other formats named; --tensors lists names, dtypes and shapes. */
START_TEST(info_images_and_tensors) {
    const char *dir = test_tmpdir();
    char path[700];
    snprintf(path, sizeof path, "%s/x.gif", dir);
    FILE *f = fopen(path, "wb");
    fputs("GIF89a\x01\x00\x01\x00", f);
    fclose(f);
    run_result *r = RUN("info", path);
    expect(r, 0, "GIF image", NULL);
    r = RUN("info", "tests/fixtures/clip_images/landscape.png");
    expect(r, 0, "PNG image", NULL);
    const char *ckpt = write_checkpoint(test_tmpdir());
    r = RUN("info", "--tensors", ckpt);
    expect(r, 0, "tensor list:", NULL);
    ck_assert_msg(strstr(r->out, "model.diffusion_model.") && strstr(r->out, " F16 ["), "%s", r->out);
    r = RUN("info", "--tensors", "--json", ckpt);
    expect(r, 0, "\"tensor_list\":[{\"name\":", NULL);
}
END_TEST

/* One parser for every command: --help from the table, --opt=value, the
 * nearest known option for a typo, aliases, and a nearest command. */
START_TEST(every_command_parses_alike) {
    static const char *const cmds[] = {"info", "generate", "augment", "manifest", "eval", "compare",
                                       "make-random", "textinv-init", "tokenize", "embed"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        run_result *r = RUN(cmds[i], "--help");
        expect(r, 0, "usage: sdc ", NULL);
        ck_assert_msg(strstr(r->out, "-h, --help"), "%s --help: %s", cmds[i], r->out);
        expect(RUN(cmds[i], "--hlep"), 2, NULL, "did you mean --help?");
    }
    expect(RUN("generat"), 2, NULL, "did you mean generate?");
    expect(RUN("tokenize", "--vocab=weights/bpe_simple_vocab_16e6.txt.gz", "-p", "a cat"), 0,
           "49406 320 2368 49407", NULL);
    expect(RUN("tokenize", "--vocab", "weights/bpe_simple_vocab_16e6.txt.gz", "--", "-a cat"), 0,
           "49406", NULL);
    expect(RUN("compare", "a", "b", "c"), 2, NULL, "unexpected argument 'c'");
    expect(RUN("manifest", "split", "--out", "x"), 2, NULL, "expected: merge --out DIR");
    expect(RUN("eval", "unet", "--clip=x", "--in", "y", "-o", "z", "--clip-skip=1"), 2, NULL,
           "--clip-skip applies to the SD text encoder");
}
END_TEST

/* ---------------------------------------------------------------- valid input */

START_TEST(info_text_output) {
    const char *path = write_checkpoint(test_tmpdir());
    run_result *r = RUN("info", path);
    expect(r, 0, "tensors:     3", NULL);
    ck_assert_str_eq(r->err, "");
    ck_assert_ptr_nonnull(strstr(r->out, "layout:      original (unet, vae)"));
    ck_assert_ptr_nonnull(strstr(r->out, "parameters:  13"));
    ck_assert_ptr_nonnull(strstr(r->out, "F32   6 parameters in 1 tensors, 24 bytes"));
    ck_assert_ptr_nonnull(strstr(r->out, "bytes:       56"));
    ck_assert_ptr_nonnull(strstr(r->out, "metadata:    format, ss_note"));
}
END_TEST

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsNumber(v), "'%s' is not a number", k);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsString(v), "'%s' is not a string", k);
    return v->valuestring;
}

START_TEST(info_json_output) {
    const char *path = write_checkpoint(test_tmpdir());
    run_result *r = RUN("info", "--json", path);
    expect(r, 0, NULL, NULL);
    cJSON *j = cJSON_Parse(r->out);
    ck_assert_msg(cJSON_IsObject(j), "not JSON: %s", r->out);
    ck_assert_str_eq(str(j, "path"), path);
    ck_assert_str_eq(str(j, "format"), "safetensors");
    ck_assert_str_eq(str(j, "layout"), "original");
    ck_assert(num(j, "tensors") == 3 && num(j, "parameters") == 13 && num(j, "bytes") == 56);
    const cJSON *comps = cJSON_GetObjectItemCaseSensitive(j, "components");
    ck_assert_int_eq(cJSON_GetArraySize(comps), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(comps, 0)->valuestring, "unet");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtypes");
    ck_assert(num(cJSON_GetObjectItemCaseSensitive(dt, "F16"), "parameters") == 4);
    ck_assert(num(cJSON_GetObjectItemCaseSensitive(dt, "I64"), "bytes") == 24);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    ck_assert_str_eq(str(meta, "format"), "pt");
    ck_assert_str_eq(str(meta, "ss_note"), "line1\nline2 \"q\"");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "files")), 1);
    cJSON_Delete(j);
}
END_TEST

START_TEST(info_diffusers_folder) {
    const char *dir = test_tmpdir();
    char root[512], sub[1024], path[1100];
    snprintf(root, sizeof root, "%s/model", dir);
    mkdir(root, 0777);
    const char *ck = write_checkpoint(dir);
    /* The same small file serves as UNet (fp32) and VAE (fp16 variant only). */
    size_t len;
    unsigned char *bytes;
    {
        FILE *f = fopen(ck, "rb");
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        bytes = malloc(len);
        ck_assert(fread(bytes, 1, len, f) == len);
        fclose(f);
    }
    const char *files[] = {"unet", "unet/diffusion_pytorch_model.safetensors", "vae",
                           "vae/diffusion_pytorch_model.fp16.safetensors"};
    for (int i = 0; i < 4; i += 2) {
        snprintf(sub, sizeof sub, "%s/%s", root, files[i]);
        mkdir(sub, 0777);
        snprintf(path, sizeof path, "%s/%s", root, files[i + 1]);
        ck_assert(st_write_bytes(path, bytes, len));
    }
    free(bytes);
    run_result *r = RUN("info", root, "--json");
    expect(r, 0, NULL, NULL);
    cJSON *j = cJSON_Parse(r->out);
    ck_assert_msg(cJSON_IsObject(j), "not JSON: %s", r->out);
    ck_assert_str_eq(str(j, "layout"), "diffusers");
    ck_assert_str_eq(str(j, "format"), "diffusers-folder");
    ck_assert(num(j, "tensors") == 6);
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(j, "files");
    ck_assert_int_eq(cJSON_GetArraySize(fl), 2);
    ck_assert_str_eq(str(cJSON_GetArrayItem(fl, 1), "file"), files[3]);
    ck_assert_str_eq(str(cJSON_GetArrayItem(fl, 1), "component"), "vae");
    cJSON_Delete(j);

    r = RUN("info", root);
    expect(r, 0, "layout:      diffusers (unet, vae)", NULL);
    ck_assert_ptr_nonnull(strstr(r->out, "files:       2"));

    /* A malformed component fails the whole folder, naming that file. */
    snprintf(path, sizeof path, "%s/%s", root, files[1]);
    ck_assert(st_write_bytes(path, "short", 5));
    expect(RUN("info", root), 1, NULL, "unet/diffusion_pytorch_model.safetensors: file is 5 bytes");

    /* A folder that is not a checkpoint. */
    expect(RUN("info", dir), 1, NULL, "not a diffusers checkpoint folder");
}
END_TEST

START_TEST(info_missing_and_png) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/nope.safetensors", dir);
    run_result *r = RUN("info", path);
    expect(r, 1, NULL, "No such file or directory");
    ck_assert_ptr_nonnull(strstr(r->err, path));
    snprintf(path, sizeof path, "%s/x.png", dir);
    ck_assert(st_write_bytes(path, "\x89PNG\r\n\x1a\n\0\0\0\0", 12));
    expect(RUN("info", path), 1, NULL, "truncated PNG");
}
END_TEST

/* ---------------------------------------------------------------- malformed input */

/* "sdc info: <path>: <reason>" on stderr, exit 1, nothing on stdout. */
START_TEST(info_malformed_exits_1) {
    const st_case *c = &st_cases[_i];
    char path[512], prefix[600];
    ck_assert(st_case_write(c, test_tmpdir(), path, sizeof path));
    run_result *r = RUN("info", path);
    expect(r, 1, NULL, c->expect);
    snprintf(prefix, sizeof prefix, "sdc info: %s: ", path);
    ck_assert_msg(strncmp(r->err, prefix, strlen(prefix)) == 0, "%s: stderr '%s'", c->name, r->err);
    ck_assert_str_eq(r->out, "");
}
END_TEST

START_TEST(info_malformed_messages_distinct) {
    static char msgs[128][600];
    ck_assert_uint_le(st_n_cases, 128);
    ck_assert_uint_ge(st_n_cases, 15);
    const char *dir = test_tmpdir();
    for (size_t i = 0; i < st_n_cases; i++) {
        char path[512];
        ck_assert(st_case_write(&st_cases[i], dir, path, sizeof path));
        run_result *r = RUN("info", path);
        ck_assert_int_eq(r->code, 1);
        /* Compare the reasons, without the (always different) file name. */
        const char *reason = r->err + strlen("sdc info: ") + strlen(path);
        snprintf(msgs[i], sizeof msgs[i], "%s", reason);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(msgs[i], msgs[j]) != 0, "%s and %s share '%s'",
                          st_cases[i].name, st_cases[j].name, msgs[i]);
    }
}
END_TEST

Suite *suite_cli(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, top_level_help_version_unknown);
    tcase_add_test(tc, info_usage_errors);
    tcase_add_test(tc, every_command_parses_alike);
    tcase_add_test(tc, vocab_lookup);
    tcase_add_test(tc, info_images_and_tensors);
    tcase_add_test(tc, info_text_output);
    tcase_add_test(tc, info_json_output);
    tcase_add_test(tc, info_diffusers_folder);
    tcase_add_test(tc, info_missing_and_png);
    tcase_add_loop_test(tc, info_malformed_exits_1, 0, (int)st_n_cases);
    tcase_add_test(tc, info_malformed_messages_distinct);
    suite_add_tcase(s, tc);
    return s;
}
