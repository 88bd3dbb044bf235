/* test_filter.c — sdc augment --filter clip end to end on the tiny models:
 * the manifest's fields and seeds (a kept image was made with the planned
 * seed plus its rejected attempts, and says so in its PNG metadata), items
 * rejected after --max-tries recorded without a file, the near-duplicate
 * rules (source, earlier outputs), resume after kill -9 equal to an
 * uninterrupted run, and shards merged. The decision itself is tested on
 * planted features in test_eval.c. */
#include "cli_run.h"
#include "suites.h"
#include "test_util.h"

#include "../src/image/image.h"

#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SD "--model tests/fixtures/tiny/diffusers --vocab weights/bpe_simple_vocab_16e6.txt.gz --size 64 --steps 2 -q"
#define FILTER "--filter clip --filter-clip tests/fixtures/tiny/clip"
/* The tiny CLIP puts its 'dog' outputs at class probabilities 0.91-0.95 and
 * 'cat' ones at 0.05-0.14 (measured): 0.94 keeps about half the dogs at the
 * first attempt, regenerates the rest, and rejects every cat. */
#define MIXED FILTER " --filter-threshold 0.94 --filter-dedup 1 --max-tries 3"
#define BOOM "--method boomerang --per-image 2 --strength 0.5,0.8"

static const char *make_data(const char *dir) {
    static char root[700];
    char path[1200];
    snprintf(root, sizeof root, "%s/data", dir);
    mkdir(root, 0755);
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/%s", root, c ? "dog" : "cat");
        mkdir(path, 0755);
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s/img%d.png", root, c ? "dog" : "cat", i);
            tu_write_png(path, 64 + 8 * i, 48, c * 10 + i);
        }
    }
    return root;
}

static cJSON *manifest(const char *out, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", out, name);
    return tu_read_manifest(path);
}

static const char *str(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    ck_assert_msg(cJSON_IsNumber(v), "manifest field '%s' missing", k);
    return v->valuedouble;
}

START_TEST(filter_manifest_seeds_and_rejections) {
    const char *dir = test_tmpdir();
    const char *root = make_data(dir);
    char out[800], path[1600];
    snprintf(out, sizeof out, "%s/out", dir);
    const cli_result *r = cli_run("augment %s " SD " " BOOM " " MIXED " --out %s", root, out);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    cJSON *m = manifest(out, "manifest.jsonl"), *j;
    int kept = 0, kept_later = 0, rejected = 0;
    cJSON_ArrayForEach(j, m) {
        const char *o = str(j, "output"), *st = str(j, "status");
        snprintf(path, sizeof path, "%s/%s", out, o);
        ck_assert_str_eq(str(j, "filter"), "clip");
        ck_assert_msg(str(j, "filter_model_sha256") && num(j, "clip_score") >= 0, "%s", o);
        double prob = num(j, "class_prob"), tries = num(j, "filter_rejected");
        /* The name keeps the planned seed; the manifest has the one kept. */
        unsigned planned = (unsigned)strtoul(strrchr(o, '-') + 1, NULL, 16);
        uint32_t seed = (uint32_t)num(j, "seed");
        if (!strcmp(st, "ok")) {
            kept++;
            kept_later += tries > 0;
            ck_assert_msg(access(path, F_OK) == 0 && prob > 0.94 && tries < 3, "%s: p %g, %g rejected", o, prob, tries);
            ck_assert_msg(seed == (uint32_t)(planned + (uint32_t)tries), "%s: seed %u, planned %u + %g", o, seed, planned, tries);
            char *params = NULL;
            sdc_err err = {0};
            ck_assert_int_eq(sdc_png_read_text(path, "parameters", &params, &err), SDC_OK);
            char want[64];
            snprintf(want, sizeof want, "Seed: %u,", seed);
            ck_assert_msg(strstr(params, want), "%s: %s", o, params);
            free(params);
        } else {
            rejected++;
            ck_assert_str_eq(st, "rejected");
            ck_assert_msg(access(path, F_OK) != 0 && tries == 3 && num(j, "filter_rejected_class") == 3, "%s", o);
            ck_assert_str_eq(str(j, "filter_reason"), "class probability");
            ck_assert_msg(!strcmp(str(j, "class"), "cat") || prob <= 0.94, "%s", o);
        }
    }
    fprintf(stderr, "filter: %d kept (%d after a rejected attempt), %d rejected after 3 tries\n", kept, kept_later, rejected);
    ck_assert_msg(kept + rejected == 12 && kept_later > 0 && rejected >= 6, "%d kept, %d later, %d rejected", kept,
                  kept_later, rejected);
    cJSON_Delete(m);
    /* A rerun has nothing to do: rejected items are done too. */
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    char *before = tu_slurp(path, NULL);
    r = cli_run("augment %s " SD " " BOOM " " MIXED " --out %s", root, out);
    ck_assert_msg(r->code == 0, "%s", r->err);
    char *after = tu_slurp(path, NULL);
    ck_assert_str_eq(before, after);
    free(before), free(after);
    /* Other filter settings are another plan. */
    r = cli_run("augment %s " SD " " BOOM " " FILTER " --filter-threshold 0.9 --filter-dedup 1 --max-tries 3 --out %s",
                root, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "--filter-threshold was 0.94") && strstr(r->err, "now 0.9"),
                  "%s", r->err);
}
END_TEST

START_TEST(filter_near_duplicates) {
    const char *dir = test_tmpdir();
    const char *root = make_data(dir);
    char out[800];
    /* The tiny CLIP's images all lie within cosine ~0.85-0.999 of each
     * other: at 0.5 every later output copies an earlier one, and every
     * boomerang output its source. */
    snprintf(out, sizeof out, "%s/prompt", dir);
    const cli_result *r = cli_run("augment %s " SD " --method prompt --per-class 3 " FILTER " --filter-threshold 0 "
                                  "--filter-dedup 0.5 --max-tries 2 --out %s", root, out);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    cJSON *m = manifest(out, "manifest.jsonl"), *j;
    int first[2] = {0, 0};
    cJSON_ArrayForEach(j, m) {
        int c = !strcmp(str(j, "class"), "dog");
        if (!first[c]++) {
            ck_assert_msg(!strcmp(str(j, "status"), "ok") && cJSON_IsNull(cJSON_GetObjectItem(j, "dup_cos")), "%s",
                          str(j, "output"));
        } else {
            ck_assert_str_eq(str(j, "status"), "rejected");
            ck_assert_str_eq(str(j, "filter_reason"), "near-duplicate of an earlier output");
            ck_assert_msg(num(j, "filter_rejected_dup") == 2 && num(j, "dup_cos") >= 0.5, "%s", str(j, "output"));
        }
    }
    cJSON_Delete(m);
    snprintf(out, sizeof out, "%s/boom", dir);
    r = cli_run("augment %s " SD " --method boomerang " FILTER " --filter-threshold 0 --filter-dedup 0.5 --max-tries 2 "
                "--out %s", root, out);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    m = manifest(out, "manifest.jsonl");
    cJSON_ArrayForEach(j, m) {
        ck_assert_str_eq(str(j, "status"), "rejected");
        ck_assert_str_eq(str(j, "filter_reason"), "near-duplicate of the source");
    }
    ck_assert_int_eq(cJSON_GetArraySize(m), 6);
    cJSON_Delete(m);
}
END_TEST

static void run_and_kill(const char *root, const char *out, useconds_t us) {
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(dn, 2);
        execl(test_sdc_bin(), "sdc", "augment", root, "--model", "tests/fixtures/tiny/diffusers", "--vocab",
              "weights/bpe_simple_vocab_16e6.txt.gz", "--size", "64", "--steps", "2", "-q", "--method", "boomerang",
              "--per-image", "2", "--strength", "0.5,0.8", "--filter", "clip", "--filter-clip", "tests/fixtures/tiny/clip",
              "--filter-threshold", "0.94", "--filter-dedup", "1", "--max-tries", "3", "--out", out, (char *)NULL);
        _exit(127);
    }
    usleep(us);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Every non-hidden file of a equals b's, and b has no others. */
static void same_files(const char *a, const char *b, const char *rel) {
    char pa[1600], pb[1600];
    snprintf(pa, sizeof pa, "%s/%s", a, rel);
    snprintf(pb, sizeof pb, "%s/%s", b, rel);
    struct dirent **ea, **eb;
    int na = scandir(pa, &ea, NULL, alphasort), nb = scandir(pb, &eb, NULL, alphasort), i = 0, k = 0;
    ck_assert_msg(na > 0 && nb > 0, "%s or %s unreadable", pa, pb);
    for (;;) {
        while (i < na && ea[i]->d_name[0] == '.') i++;
        while (k < nb && eb[k]->d_name[0] == '.') k++;
        if (i == na || k == nb) break;
        ck_assert_msg(!strcmp(ea[i]->d_name, eb[k]->d_name), "%s/%s vs %s", rel, ea[i]->d_name, eb[k]->d_name);
        char fa[2000], fb[2000], sub[1000];
        snprintf(fa, sizeof fa, "%s/%s", pa, ea[i]->d_name);
        snprintf(fb, sizeof fb, "%s/%s", pb, eb[k]->d_name);
        struct stat st;
        stat(fa, &st);
        if (S_ISDIR(st.st_mode)) {
            snprintf(sub, sizeof sub, "%s/%s", rel, ea[i]->d_name);
            same_files(a, b, sub);
        } else {
            size_t la = 0, lb = 0;
            char *da = tu_slurp(fa, &la), *db = tu_slurp(fb, &lb);
            ck_assert_msg(da && db && la == lb && !memcmp(da, db, la), "%s differs", fb);
            free(da), free(db);
        }
        i++, k++;
    }
    ck_assert_msg(i == na && k == nb, "%s: file sets differ", rel);
    for (int t = 0; t < na; t++) free(ea[t]);
    for (int t = 0; t < nb; t++) free(eb[t]);
    free(ea), free(eb);
}

START_TEST(filter_resume_after_kill_is_identical) {
    const char *dir = test_tmpdir();
    const char *root = make_data(dir);
    char ref[800], out[800];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    const cli_result *r = cli_run("augment %s " SD " " BOOM " " MIXED " --out %s", root, ref);
    ck_assert_msg(r->code == 0, "%s", r->err);
    const useconds_t delays[] = {40000, 150000, 300000, 500000, 700000};
    for (size_t i = 0; i < sizeof delays / sizeof *delays; i++) run_and_kill(root, out, delays[i]);
    r = cli_run("augment %s " SD " " BOOM " " MIXED " --out %s", root, out);
    ck_assert_msg(r->code == 0, "%s", r->err);
    same_files(ref, out, ".");
}
END_TEST

START_TEST(filter_shards_merge) {
    const char *dir = test_tmpdir();
    const char *root = make_data(dir);
    char out[800];
    snprintf(out, sizeof out, "%s/out", dir);
    for (int k = 0; k < 2; k++) {
        const cli_result *r = cli_run("augment %s " SD " " BOOM " " MIXED " --shard %d/2 --out %s", root, k, out);
        ck_assert_msg(r->code == 0, "shard %d: %s", k, r->err);
    }
    const cli_result *r = cli_run("manifest merge --out %s", out);
    ck_assert_msg(r->code == 0 && strstr(r->out, "12 items"), "%d %s %s", r->code, r->out, r->err);
    cJSON *m = manifest(out, "manifest.jsonl"), *j;
    int rejected = 0;
    cJSON_ArrayForEach(j, m) rejected += !strcmp(str(j, "status"), "rejected");
    ck_assert_msg(rejected >= 6, "%d rejected", rejected); /* every cat, at least */
    cJSON_Delete(m);
}
END_TEST

Suite *suite_filter(void) {
    Suite *s = suite_create("filter");
    TCase *tc = tcase_create("filter");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, filter_manifest_seeds_and_rejections);
    tcase_add_test(tc, filter_near_duplicates);
    tcase_add_test(tc, filter_resume_after_kill_is_identical);
    tcase_add_test(tc, filter_shards_merge);
    suite_add_tcase(s, tc);
    return s;
}
