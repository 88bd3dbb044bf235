/* test_report.c — sdc probe and sdc report end to end: a planted test
 * through the CLI (features imported into the per-folder caches with sdc
 * embed --import-npy, so the probe and the report see known geometry: good
 * outputs near their class mean must raise top-1 and lower FID, mislabelled
 * ones must lower top-1; outputs made from held-out images are left out),
 * the caches reused by reruns, and the report of real generated outputs,
 * its files, and its HTML page rendered in headless Chromium (when the
 * chromium package is installed; tests/report_view.sh requires it). */
#include "cli_run.h"
#include "suites.h"
#include "test_util.h"

#include "../src/eval/features.h"
#include "../src/eval/stats.h"
#include "../src/image/image.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLIP "tests/fixtures/tiny/clip"
#define VOCAB "weights/bpe_simple_vocab_16e6.txt.gz"
#define SD "--model tests/fixtures/tiny/diffusers --vocab " VOCAB " --size 64 --steps 2 -q"

enum { K = 4, D = 16, REAL = 15, SYN = 40 };

static void write_png(const char *path, int w, int h, int salt) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 7 + salt * 31 + (i / (w * 3)) * 13 + salt * i / 97);
    sdc_err err = {0};
    ck_assert_msg(sdc_image_save_png(path, rgb, w, h, NULL, &err) == SDC_OK, "%s", err.msg);
    free(rgb);
}

static void put_text(const char *path, const char *text, const char *mode) {
    FILE *f = fopen(path, mode);
    ck_assert_msg(f != NULL, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* An NPY v1 file of float32 rows. */
static void write_npy(const char *path, const float *x, int n, int d) {
    char hdr[128];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, d);
    int total = (10 + len + 1 + 63) / 64 * 64;
    memset(hdr + len, ' ', (size_t)(total - 10 - len - 1));
    hdr[total - 10 - 1] = '\n';
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    uint16_t hl = (uint16_t)(total - 10);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hl, 2, 1, f);
    fwrite(hdr, 1, (size_t)hl, f);
    fwrite(x, sizeof *x, (size_t)n * d, f);
    fclose(f);
}

static double gauss(eval_rng *r) {
    double u = ((double)(eval_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
    double v = (double)(eval_rng_next(r) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static void near_vec(float *v, const float *mean, double sigma, eval_rng *r) {
    double s = 0;
    for (int i = 0; i < D; i++) v[i] = (float)(mean[i] + sigma * gauss(r) / sqrt(D)), s += (double)v[i] * v[i];
    for (int i = 0; i < D; i++) v[i] = (float)(v[i] / sqrt(s));
}

/* Images of folder/<class>/<prefix><i>.png (and a manifest line each when
 * method is set) with features x, imported into the folder's cache. */
typedef struct planted_folder {
    const char *name, *method, *prefix;
    int per_class;
    bool with_source;   /* one output per real image, its source */
} planted_folder;

static void import_folder(const char *dir, const char *root, const char *folder, const float *x, char **paths, int n) {
    char npy[1200], csv[1200], cache[4096], list[1 << 16] = "path\n";
    snprintf(npy, sizeof npy, "%s/%s.npy", dir, strrchr(folder, '/') + 1);
    snprintf(csv, sizeof csv, "%s/%s.csv", dir, strrchr(folder, '/') + 1);
    write_npy(npy, x, n, D);
    for (int i = 0; i < n; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s\n", paths[i]);
    put_text(csv, list, "w");
    sdc_err err = {0};
    char made[4096]; /* the root, created as sdc probe would */
    ck_assert_msg(feat_cache_root(root, made, sizeof made, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(feat_cache_dir(root, folder, cache, sizeof cache, &err) == SDC_OK, "%s", err.msg);
    const cli_result *r = cli_run("embed --import-npy %s --files %s --images %s --clip " CLIP " --out %s -q", npy, csv,
                                  folder, cache);
    ck_assert_msg(r->code == 0, "import into %s: %s", cache, r->err);
}

static int index_lines(const char *root, const char *folder) {
    char cache[4096], path[4200];
    sdc_err err = {0};
    ck_assert_int_eq(feat_cache_dir(root, folder, cache, sizeof cache, &err), SDC_OK);
    snprintf(path, sizeof path, "%s/index.jsonl", cache);
    char *t = tu_slurp_ok(path, NULL);
    int n = 0;
    for (char *p = t; *p; p++) n += *p == '\n';
    free(t);
    return n;
}

static const cJSON *method_named(const cJSON *methods, const char *label) {
    const cJSON *m;
    cJSON_ArrayForEach(m, methods) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(m, "label");
        if (cJSON_IsString(l) && !strcmp(l->valuestring, label)) return m;
    }
    ck_abort_msg("no method '%s'", label);
    return NULL;
}

static double num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    ck_assert_msg(cJSON_IsNumber(v), "'%s' is not a number", k);
    return v->valuedouble;
}

START_TEST(report_probe_planted_through_the_cli) {
    const char *dir = test_tmpdir();
    char root[1024], data[1024], path[2048], line[4096];
    snprintf(root, sizeof root, "%s/cache", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    mkdir(data, 0755);
    eval_rng rng = eval_rng_seed(1717, 0);
    float means[K * D], zero[D] = {0};
    for (int c = 0; c < K; c++) near_vec(means + c * D, zero, sqrt(D), &rng);
    /* Real: noisy features, REAL per class. */
    static float xr[K * REAL * D], xs[K * REAL * D], xg[K * SYN * D], xb[K * SYN * D];
    char *pr[K * REAL], *ps[K * REAL], *pg[K * SYN], *pb[K * SYN];
    const char *outs[3] = {"good", "bad", "src"};
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, outs[f]);
        mkdir(path, 0755);
    }
    for (int c = 0; c < K; c++) {
        for (int f = -1; f < 3; f++) {
            snprintf(path, sizeof path, "%s/%s/c%d", dir, f < 0 ? "data" : outs[f], c);
            mkdir(path, 0755);
        }
        for (int i = 0; i < REAL; i++) {
            int at = c * REAL + i;
            near_vec(xr + (size_t)at * D, means + c * D, 2.5, &rng);
            near_vec(xs + (size_t)at * D, xr + (size_t)at * D, 0.1, &rng); /* cos ~0.995 to its source */
            char rel[64];
            snprintf(rel, sizeof rel, "c%d/r%02d.png", c, i);
            pr[at] = strdup(rel);
            snprintf(path, sizeof path, "%s/data/%s", dir, rel);
            write_png(path, 16, 16, at);
            snprintf(rel, sizeof rel, "c%d/s%02d.png", c, i);
            ps[at] = strdup(rel);
            snprintf(path, sizeof path, "%s/src/%s", dir, rel);
            write_png(path, 16, 16, 1000 + at);
            snprintf(line, sizeof line, "{\"output\":\"%s\",\"class\":\"c%d\",\"method\":\"boomerang\","
                     "\"source\":\"%s\",\"status\":\"ok\"}\n", rel, c, pr[at]);
            snprintf(path, sizeof path, "%s/src/manifest.jsonl", dir);
            put_text(path, line, "a");
        }
        for (int i = 0; i < SYN; i++) {
            int at = c * SYN + i;
            near_vec(xg + (size_t)at * D, means + c * D, 0.5, &rng);
            near_vec(xb + (size_t)at * D, means + ((c + 1) % K) * D, 0.5, &rng);
            for (int f = 0; f < 2; f++) {
                char rel[64];
                snprintf(rel, sizeof rel, "c%d/%c%02d.png", c, f ? 'b' : 'g', i);
                (f ? pb : pg)[at] = strdup(rel);
                snprintf(path, sizeof path, "%s/%s/%s", dir, outs[f], rel);
                write_png(path, 16, 16, 5000 + 1000 * f + at);
                snprintf(line, sizeof line, "{\"output\":\"%s\",\"class\":\"c%d\",\"method\":\"prompt\","
                         "\"source\":null,\"status\":\"ok\"}\n", rel, c);
                snprintf(path, sizeof path, "%s/%s/manifest.jsonl", dir, outs[f]);
                put_text(path, line, "a");
            }
        }
    }
    /* A filter-rejected item: counted by the report, no file. */
    snprintf(path, sizeof path, "%s/good/manifest.jsonl", dir);
    put_text(path, "{\"output\":\"c1/gone.png\",\"class\":\"c1\",\"method\":\"prompt\",\"source\":null,"
                   "\"status\":\"rejected\"}\n", "a");
    char f_good[1100], f_bad[1100], f_src[1100];
    snprintf(f_good, sizeof f_good, "%s/good", dir);
    snprintf(f_bad, sizeof f_bad, "%s/bad", dir);
    snprintf(f_src, sizeof f_src, "%s/src", dir);
    import_folder(dir, root, data, xr, pr, K * REAL);
    import_folder(dir, root, f_good, xg, pg, K * SYN);
    import_folder(dir, root, f_bad, xb, pb, K * SYN);
    import_folder(dir, root, f_src, xs, ps, K * REAL);
    int lines_before = index_lines(root, data) + index_lines(root, f_good);

    /* No --clip: the caches hold every feature, and the model is theirs. */
    const cli_result *r = cli_run("probe %s --aug %s %s %s --cache %s --json -q", data, f_good, f_bad, f_src, root);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    cJSON *j = cJSON_Parse(r->out);
    ck_assert_msg(j != NULL, "not JSON: %s", r->out);
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(j, "methods");
    const cJSON *real = method_named(methods, "real only"), *good = method_named(methods, "prompt (good)");
    const cJSON *bad = method_named(methods, "prompt (bad)"), *src = method_named(methods, "boomerang");
    fprintf(stderr, "planted probe (CLI): real only %.3f, good %+.3f, bad %+.3f, from-source %+.3f\n", num(real, "top1_mean"),
            num(good, "gain_mean"), num(bad, "gain_mean"), num(src, "gain_mean"));
    /* Measured: real only 0.467, good +0.100, bad -0.283 (5 seeds of 12 held-out images). */
    ck_assert_msg(num(good, "gain_mean") > 0.05 && num(bad, "gain_mean") < -0.2, "%s", r->out);
    /* One output per real image: exactly the held-out images' outputs stay out. */
    double held = num(j, "held_out_per_seed");
    ck_assert_msg(held == K * 3 && num(src, "left_out_source") == held, "held %g, left out %g", held,
                  num(src, "left_out_source"));
    ck_assert_msg(num(src, "train_mean") == 2 * num(j, "train_real_per_seed"), "%s", r->out);
    ck_assert_int_eq((int)num(good, "images"), K * SYN);
    cJSON_Delete(j);

    /* The report on the same caches (its text queries need the model: the caches' own). */
    char rep[1100];
    snprintf(rep, sizeof rep, "%s/rep", dir);
    r = cli_run("report %s %s %s %s --cache %s --out %s --kid-subsets 10 -q", data, f_good, f_bad, f_src, root, rep);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    ck_assert_msg(strstr(r->out, "| prompt (good) |") && strstr(r->out, "## Per class"), "%s", r->out);
    snprintf(path, sizeof path, "%s/report.json", rep);
    char *t = tu_slurp_ok(path, NULL);
    j = cJSON_Parse(t);
    free(t);
    ck_assert(j != NULL);
    methods = cJSON_GetObjectItemCaseSensitive(j, "methods");
    good = method_named(methods, "prompt (good)"), bad = method_named(methods, "prompt (bad)");
    src = method_named(methods, "boomerang");
    const cJSON *gall = cJSON_GetObjectItemCaseSensitive(good, "all"), *ball = cJSON_GetObjectItemCaseSensitive(bad, "all");
    const cJSON *sall = cJSON_GetObjectItemCaseSensitive(src, "all");
    ck_assert_msg(num(gall, "count") == K * SYN && num(gall, "rejected") == 1, "good counts");
    /* Near each source: every one a near-duplicate; the others none. */
    ck_assert_msg(num(sall, "near_dup_rate") == 1 && num(gall, "near_dup_rate") == 0, "near-dup %g %g",
                  num(sall, "near_dup_rate"), num(gall, "near_dup_rate"));
    for (int c = 0; c < K; c++) { /* per class, the mislabelled set is the farther one */
        const cJSON *gc = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(good, "per_class"), c);
        const cJSON *bc = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(bad, "per_class"), c);
        ck_assert_msg(num(gc, "fid") < num(bc, "fid") && num(gc, "kid") < num(bc, "kid"), "class %d: FID %g vs %g", c,
                      num(gc, "fid"), num(bc, "fid"));
        ck_assert_msg(num(gc, "diversity_mean_cos") > 0 && num(gc, "kid_subsets") == 10, "class %d", c);
    }
    ck_assert_msg(num(gall, "fid") < num(ball, "fid") && num(gall, "fid_class_mean") < num(ball, "fid_class_mean"), "pooled FID");
    cJSON_Delete(j);

    /* Reruns read the caches: nothing embedded again. One more output is
     * one more row, and needs the model to embed it. */
    ck_assert_int_eq(index_lines(root, data) + index_lines(root, f_good), lines_before);
    snprintf(path, sizeof path, "%s/good/c0/new.png", dir);
    write_png(path, 40, 40, 77);
    snprintf(path, sizeof path, "%s/good/manifest.jsonl", dir);
    put_text(path, "{\"output\":\"c0/new.png\",\"class\":\"c0\",\"method\":\"prompt\",\"source\":null,\"status\":\"ok\"}\n", "a");
    r = cli_run("probe %s --aug %s --cache %s -q", data, f_good, root);
    ck_assert_msg(r->code == 1 && strstr(r->err, "new.png") && strstr(r->err, "--clip"), "%d %s", r->code, r->err);
    r = cli_run("probe %s --aug %s --cache %s --clip " CLIP " -q --seeds 2", data, f_good, root);
    ck_assert_msg(r->code == 0 && strstr(r->out, "real only"), "%d %s", r->code, r->err);
    ck_assert_int_eq(index_lines(root, data) + index_lines(root, f_good), lines_before + 1);
    for (int i = 0; i < K * REAL; i++) free(pr[i]), free(ps[i]);
    for (int i = 0; i < K * SYN; i++) free(pg[i]), free(pb[i]);
}
END_TEST

/* ---------------------------------------------------------------- generated outputs */

/* dir/data (2 classes x 3 images), dir/boom and dir/prompt from the tiny SD,
 * and the report of them in dir/rep. */
static void make_report(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/data", dir);
    mkdir(path, 0755);
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/data/%s", dir, c ? "dog" : "cat");
        mkdir(path, 0755);
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/data/%s/img%d.png", dir, c ? "dog" : "cat", i);
            write_png(path, 64 + 8 * i, 48, c * 10 + i);
        }
    }
    const cli_result *r = cli_run("augment %s/data " SD " --method boomerang --out %s/boom", dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("augment %s/data " SD " --method prompt --per-class 3 --out %s/prompt", dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("report %s/data %s/boom %s/prompt --clip " CLIP " --cache %s/cache --out %s/rep --vocab " VOCAB
                " --kid-subsets 5 -q --json", dir, dir, dir, dir, dir);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    cJSON *j = cJSON_Parse(r->out);
    ck_assert_msg(j != NULL, "--json printed no JSON");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "methods")), 2);
    cJSON_Delete(j);
}

START_TEST(report_generated_outputs_files) {
    const char *dir = test_tmpdir();
    make_report(dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/rep/report.json", dir);
    char *t = tu_slurp_ok(path, NULL);
    cJSON *j = cJSON_Parse(t);
    free(t);
    ck_assert(j != NULL);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "format")->valuestring, "sdc-report");
    const cJSON *real = cJSON_GetObjectItemCaseSensitive(j, "real"), *m;
    ck_assert_int_eq((int)num(cJSON_GetObjectItemCaseSensitive(real, "all"), "count"), 6);
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "methods")) {
        const cJSON *all = cJSON_GetObjectItemCaseSensitive(m, "all");
        ck_assert_int_eq((int)num(all, "count"), 6);
        double zs = num(all, "zero_shot_acc"), fid = num(all, "fid"), kid = num(all, "kid");
        ck_assert_msg(zs >= 0 && zs <= 1 && fid > 0 && isfinite(kid) && num(all, "kid_std") >= 0, "zs %g fid %g", zs, fid);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "per_class")), 2);
    }
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/rep/report.md", dir);
    t = tu_slurp_ok(path, NULL);
    ck_assert_msg(strstr(t, "| class | method |") && strstr(t, "| dog | boomerang |"), "%s", t);
    free(t);
    /* The page stands alone: no script, nothing fetched. */
    snprintf(path, sizeof path, "%s/rep/report.html", dir);
    t = tu_slurp_ok(path, NULL);
    ck_assert_msg(!strncmp(t, "<!DOCTYPE html>", 15) && strstr(t, "<svg") && strstr(t, "data:image/png;base64,") &&
                  !strstr(t, "<script") && !strstr(t, "src=\"http") && !strstr(t, "href=") && strstr(t, "</html>"),
                  "HTML page");
    int imgs = 0;
    for (const char *p = t; (p = strstr(p, "<img ")); p++) imgs++;
    ck_assert_msg(imgs == 2 * (3 + 3 + 3), "%d thumbnails", imgs); /* per class: real, boom, prompt */
    free(t);
}
END_TEST

/* The page in headless Chromium: a screenshot with the report's content
 * (not blank, the charts' colours present). Skipped without chromium,
 * unless SDC_REQUIRE_CHROMIUM=1 (tests/report_view.sh). */
START_TEST(report_html_in_chromium) {
    const char *need = getenv("SDC_REQUIRE_CHROMIUM");
    bool required = need && !strcmp(need, "1");
    if (system("command -v chromium >/dev/null 2>&1") != 0) {
        ck_assert_msg(!required, "chromium is not installed (apt-get install chromium)");
        fprintf(stderr, "report_html_in_chromium: skipped: chromium is not installed (apt-get install chromium)\n");
        return;
    }
    const char *dir = test_tmpdir();
    make_report(dir);
    char cmd[4096], shot[1200];
    snprintf(shot, sizeof shot, "%s/shot.png", dir);
    /* --no-sandbox: CI runs as root; a fresh profile dir: nothing shared with a user's browser. */
    snprintf(cmd, sizeof cmd, "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
             "--user-data-dir=%s/profile --window-size=1000,1600 --screenshot=%s file://%s/rep/report.html "
             ">%s/chromium.log 2>&1", dir, shot, dir, dir);
    ck_assert_msg(system(cmd) == 0, "chromium failed (see %s/chromium.log)", dir);
    sdc_image im;
    sdc_err err = {0};
    ck_assert_msg(sdc_image_load(shot, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(im.w == 1000 && im.h == 1600, "screenshot %dx%d", im.w, im.h);
    long ink = 0, blue = 0, orange = 0;
    for (long i = 0; i < (long)im.w * im.h; i++) {
        const uint8_t *p = im.rgb + 3 * i;
        ink += p[0] < 200 || p[1] < 200 || p[2] < 200;
        blue += abs(p[0] - 31) < 6 && abs(p[1] - 119) < 6 && abs(p[2] - 180) < 6;   /* the first method's bars */
        orange += abs(p[0] - 255) < 6 && abs(p[1] - 127) < 6 && abs(p[2] - 14) < 6; /* the second's */
    }
    fprintf(stderr, "chromium screenshot: %.1f %% ink, %ld px of the first method's colour, %ld of the second's\n",
            100.0 * ink / ((double)im.w * im.h), blue, orange);
    /* Measured: 9.8 % ink, thousands of bar pixels in each colour. */
    ck_assert_msg(ink > (long)im.w * im.h / 50 && blue > 500 && orange > 500, "blank or chartless screenshot");
    sdc_image_free(&im);
}
END_TEST

Suite *suite_report(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, report_probe_planted_through_the_cli);
    tcase_add_test(tc, report_generated_outputs_files);
    tcase_add_test(tc, report_html_in_chromium);
    suite_add_tcase(s, tc);
    return s;
}
