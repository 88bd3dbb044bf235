/* test_augment.c — sdc augment and sdc manifest merge end to end on the tiny
 * model: each method, the manifest's schema, resume after kill -9 at several
 * moments (byte-identical to an uninterrupted run), shards merged, a corrupt
 * source recorded and skipped, the lock, and the plan's seed derivation. */
#include "cli_run.h"
#include "suites.h"
#include "test_util.h"

#include "../src/augment/augment.h"
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

#define MODEL "--model tests/fixtures/tiny/diffusers --vocab weights/bpe_simple_vocab_16e6.txt.gz"
#define FAST "--size 64 --steps 2 -q"

/* dir/data/<class>/imgK.png for each class, n images each. */
static char *make_dataset(const char *dir, const char *const *classes, int nc, int n) {
    static char root[600];
    char path[1024];
    snprintf(root, sizeof root, "%s/data", dir);
    mkdir(root, 0755);
    for (int c = 0; c < nc; c++) {
        snprintf(path, sizeof path, "%s/%s", root, classes[c]);
        mkdir(path, 0755);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s/img%d.png", root, classes[c], i);
            tu_write_png(path, 64 + 8 * i, 48, c * 10 + i);
        }
    }
    return root;
}

/* Every file of out (top level and class folders; not the lock files) is
 * equal in name and bytes to ref's. */
static void same_tree(const char *ref, const char *out, const char *rel) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/%s", ref, rel);
    snprintf(b, sizeof b, "%s/%s", out, rel);
    struct dirent **ea, **eb;
    int na = scandir(a, &ea, NULL, alphasort), nb = scandir(b, &eb, NULL, alphasort);
    ck_assert_msg(na > 0 && nb > 0, "%s or %s unreadable", a, b);
    int i = 0, j = 0;
    for (;;) {
        while (i < na && (ea[i]->d_name[0] == '.')) i++;
        while (j < nb && (eb[j]->d_name[0] == '.')) j++;
        if (i == na || j == nb) break;
        ck_assert_msg(!strcmp(ea[i]->d_name, eb[j]->d_name), "%s/%s vs %s", rel, ea[i]->d_name, eb[j]->d_name);
        ck_assert_msg(!strstr(eb[j]->d_name, ".tmp."), "leftover temp file %s", eb[j]->d_name);
        char pa[1500], pb[1500];
        snprintf(pa, sizeof pa, "%s/%s", a, ea[i]->d_name);
        snprintf(pb, sizeof pb, "%s/%s", b, eb[j]->d_name);
        struct stat st;
        stat(pa, &st);
        if (S_ISDIR(st.st_mode)) {
            char sub[600];
            snprintf(sub, sizeof sub, "%s/%s", rel, ea[i]->d_name);
            same_tree(ref, out, sub);
        } else {
            size_t la, lb;
            char *da = tu_slurp(pa, &la), *db = tu_slurp(pb, &lb);
            ck_assert_msg(da && db && la == lb && !memcmp(da, db, la), "%s differs", pb);
            free(da);
            free(db);
        }
        i++, j++;
    }
    ck_assert_msg(i == na && j == nb, "%s: file sets differ", rel);
    for (int k = 0; k < na; k++) free(ea[k]);
    for (int k = 0; k < nb; k++) free(eb[k]);
    free(ea);
    free(eb);
}

static const char *str(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

START_TEST(augment_boomerang_manifest_and_corrupt_source) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"cat", "dog"};
    char *root = make_dataset(dir, cls, 2, 2), path[1200];
    snprintf(path, sizeof path, "%s/dog/broken.png", root); /* corrupt source */
    FILE *f = fopen(path, "w");
    fputs("\x89PNG not really", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/cat/.hidden.png", root);
    tu_write_png(path, 64, 64, 9);
    snprintf(path, sizeof path, "%s/cat/notes.txt", root);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof path, "%s/names.txt", dir);
    f = fopen(path, "w");
    fputs("house cat\nfriendly dog\n", f);
    fclose(f);
    const cli_result *r = cli_run("augment %s " MODEL " --method boomerang --per-image 2 "
                                  "--strength 0.25,0.75 --class-names %s/names.txt --out %s/out " FAST,
                                  root, dir, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "2 items failed"), "%d %s", r->code, r->err);
    snprintf(path, sizeof path, "%s/out/manifest.jsonl", dir);
    cJSON *m = tu_read_manifest(path);
    ck_assert_int_eq(cJSON_GetArraySize(m), 10);
    const char *keys[] = {"output", "class", "class_name", "method", "source", "prompt",
                          "negative_prompt", "seed", "strength", "steps", "sampler", "cfg", "width",
                          "height", "model", "model_sha256", "sdc_version", "status", "error"};
    int failed = 0;
    for (const cJSON *j = m->child; j; j = j->next) {
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            ck_assert_msg(cJSON_HasObjectItem(j, keys[k]), "no '%s'", keys[k]);
        const char *out = str(j, "output"), *cl = str(j, "class"), *src = str(j, "source");
        double seed = cJSON_GetObjectItem(j, "seed")->valuedouble;
        double s = cJSON_GetObjectItem(j, "strength")->valuedouble;
        ck_assert(s == 0.25 || s == 0.75);
        ck_assert_str_eq(str(j, "prompt"), !strcmp(cl, "cat") ? "a photo of a house cat" : "a photo of a friendly dog");
        /* The seed is the documented hash; the name carries it. */
        const char *file = strchr(src, '/') + 1;
        int k = out[strlen(out) - 14] - '0';
        uint32_t want = aug_item_seed(0, "boomerang", cl, file, k);
        ck_assert_msg((uint32_t)seed == want, "%s: seed %.0f vs %u", out, seed, want);
        char hex[16];
        snprintf(hex, sizeof hex, "-%08x.png", want);
        ck_assert_msg(strstr(out, hex), "%s lacks %s", out, hex);
        snprintf(path, sizeof path, "%s/out/%s", dir, out);
        if (!strcmp(str(j, "status"), "ok")) ck_assert_msg(access(path, F_OK) == 0, "%s", path);
        else {
            failed++;
            ck_assert_msg(strstr(src, "broken.png") && strstr(str(j, "error"), "broken.png"), "%s", str(j, "error"));
            ck_assert(access(path, F_OK) != 0);
        }
    }
    ck_assert_int_eq(failed, 2);
    cJSON_Delete(m);
    /* The PNG carries A1111 parameters with the item's seed. */
    r = cli_run("augment %s " MODEL " --method boomerang --per-image 2 --strength 0.25,0.75 "
                "--class-names %s/names.txt --out %s/out " FAST, root, dir, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "2 items failed"), "rerun: %d %s", r->code, r->err);
    snprintf(path, sizeof path, "%s/out/manifest.jsonl", dir);
    m = tu_read_manifest(path);
    ck_assert_int_eq(cJSON_GetArraySize(m), 10); /* failed lines replaced, not doubled */
    cJSON_Delete(m);
}
END_TEST

START_TEST(augment_prompt_and_textinv) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"ant", "bee"};
    char *root = make_dataset(dir, cls, 2, 1), path[1200];
    snprintf(path, sizeof path, "%s/t.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("a {} on grass\na drawing of a {}\nthe {} at night\n", f);
    fclose(f);
    const cli_result *r = cli_run("augment %s --model tests/fixtures/tiny/original.safetensors "
                                  "--vocab weights/bpe_simple_vocab_16e6.txt.gz --method prompt --per-class 3 --templates "
                                  "%s/t.txt --out %s/p " FAST, root, dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(path, sizeof path, "%s/p/manifest.jsonl", dir);
    cJSON *m = tu_read_manifest(path);
    ck_assert_int_eq(cJSON_GetArraySize(m), 6);
    ck_assert_str_eq(str(cJSON_GetArrayItem(m, 1), "prompt"), "a drawing of a ant");
    ck_assert_str_eq(str(cJSON_GetArrayItem(m, 5), "prompt"), "the bee at night");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "source")));
    ck_assert(strstr(str(cJSON_GetArrayItem(m, 0), "output"), "ant/prompt-gen-0-"));
    /* A checkpoint file is hashed once and named without its extension. */
    const char *sha = str(cJSON_GetArrayItem(m, 3), "model_sha256");
    ck_assert_msg(sha && strlen(sha) == 64 && strspn(sha, "0123456789abcdef") == 64, "%s", sha ? sha : "null");
    ck_assert_str_eq(str(cJSON_GetArrayItem(m, 3), "model"), "original");
    cJSON_Delete(m);
    /* textinv: one embedding per class folder, width 8 for the tiny model. */
    char emb[1024];
    snprintf(emb, sizeof emb, "%s/emb", dir);
    mkdir(emb, 0755);
    for (int c = 0; c < 2; c++) {
        sdc_err err = {0};
        sdc_tensor *t = sdc_tensor_new(SDC_F32, 2, (const int64_t[]){1, 8}, &err);
        for (int i = 0; i < 8; i++) ((float *)t->data)[i] = 0.1f * (float)(i - c * 3);
        sdc_st_write_item it = {"emb_params", t};
        snprintf(path, sizeof path, "%s/%s.safetensors", emb, cls[c]);
        ck_assert_msg(sdc_safetensors_write(path, &it, 1, NULL, 0, &err) == SDC_OK, "%s", err.msg);
        sdc_tensor_free(t);
    }
    r = cli_run("augment %s " MODEL " --method textinv --embeddings %s --per-class 2 --out %s/t " FAST,
                root, emb, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("augment %s " MODEL " --method textinv --embeddings %s --init real --strength 0.5 "
                "--preview %s/grid.png --out %s/tr " FAST, root, emb, dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("info %s/grid.png", dir); /* the contact sheet is a valid PNG */
    ck_assert_msg(r->code == 0 && strstr(r->out, "1026x"), "%s%s", r->out, r->err); /* 10 tiles */
    snprintf(path, sizeof path, "%s/tr/manifest.jsonl", dir);
    m = tu_read_manifest(path);
    ck_assert_int_eq(cJSON_GetArraySize(m), 2);
    ck_assert_str_eq(str(cJSON_GetArrayItem(m, 0), "source"), "ant/img0.png");
    cJSON_Delete(m);
    /* A class without its embedding file is named. */
    snprintf(path, sizeof path, "%s/bee.safetensors", emb);
    unlink(path);
    r = cli_run("augment %s " MODEL " --method textinv --embeddings %s --out %s/t2 " FAST, root, emb, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "bee.safetensors"), "%s", r->err);
}
END_TEST

/* Starts the CLI, kills it with SIGKILL after us microseconds. */
static void run_and_kill(const char *root, const char *out, useconds_t us) {
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(dn, 2);
        execl(test_sdc_bin(), "sdc", "augment", root, "--model", "tests/fixtures/tiny/diffusers",
              "--vocab", "weights/bpe_simple_vocab_16e6.txt.gz", "--method", "boomerang",
              "--per-image", "4", "--strength", "0.5,0.8", "--out", out, "--size", "64",
              "--steps", "2", "-q", (char *)NULL);
        _exit(127);
    }
    usleep(us);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

#define KILL_ARGS MODEL " --method boomerang --per-image 4 --strength 0.5,0.8 " FAST

START_TEST(augment_resume_after_kill_is_identical) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"a", "b"};
    char *root = strdup(make_dataset(dir, cls, 2, 3)), ref[700], out[700], path[1200];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    const cli_result *r = cli_run("augment %s " KILL_ARGS " --out %s", root, ref);
    ck_assert_msg(r->code == 0, "%s", r->err);
    const useconds_t delays[] = {30000, 150000, 300000, 500000, 800000};
    for (size_t i = 0; i < sizeof delays / sizeof *delays; i++) run_and_kill(root, out, delays[i]);
    /* A torn last line (a crash mid-append) is dropped on resume. */
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    FILE *f = fopen(path, "a");
    fputs("{\"index\":3,\"output\":\"a/boo", f);
    fclose(f);
    r = cli_run("augment %s " KILL_ARGS " --out %s", root, out);
    ck_assert_msg(r->code == 0, "%s", r->err);
    same_tree(ref, out, ".");
    /* A corrupt line in the middle is an error naming it. */
    size_t len;
    char *buf = tu_slurp(path, &len);
    buf[strchr(buf, '\n') - buf + 2] = '#';
    f = fopen(path, "w");
    fwrite(buf, 1, len, f);
    fclose(f);
    free(buf);
    r = cli_run("augment %s " KILL_ARGS " --out %s", root, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "line 2"), "%s", r->err);
    /* Other arguments in the same folder are refused, naming the argument;
     * --force-new-plan starts the folder over, keeping the old files aside. */
    r = cli_run("augment %s " MODEL " --method boomerang --per-image 4 --strength 0.5,0.8 "
                "--size 64 --steps 3 -q --out %s", root, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "--steps was 2 when this folder was planned, now 3") &&
                  strstr(r->err, "--force-new-plan"), "%s", r->err);
    r = cli_run("augment %s " MODEL " --method boomerang --per-image 4 --strength 0.5,0.8 "
                "--size 64 --steps 3 -q --force-new-plan --out %s", root, out);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(path, sizeof path, "%s/plan.old-1.json", out);
    ck_assert_msg(access(path, F_OK) == 0, "%s missing", path);
    snprintf(path, sizeof path, "%s/manifest.old-1.jsonl", out);
    ck_assert_msg(access(path, F_OK) == 0, "%s missing", path);
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    cJSON *m2 = tu_read_manifest(path);
    ck_assert_int_eq(cJSON_GetArraySize(m2), 24); /* every item redone with --steps 3 */
    for (int i = 0; i < 24; i++)
        ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m2, i), "steps")), 3);
    cJSON_Delete(m2);
    /* The noise source decides the images too: --rng cuda on this folder,
     * planned with the CPU generator, is refused naming it. */
    r = cli_run("augment %s " MODEL " --method boomerang --per-image 4 --strength 0.5,0.8 "
                "--size 64 --steps 3 -q --rng cuda --out %s", root, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "--rng") && strstr(r->err, "--force-new-plan"), "%s", r->err);
    free(root);
}
END_TEST

START_TEST(augment_shards_merge_to_the_whole_run) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"x", "y", "z"};
    char *root = strdup(make_dataset(dir, cls, 3, 1)), a[700], b[700], path[1200];
    snprintf(a, sizeof a, "%s/whole", dir);
    snprintf(b, sizeof b, "%s/sharded", dir);
    const cli_result *r = cli_run("augment %s " KILL_ARGS " --out %s", root, a);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("augment %s " KILL_ARGS " --shard 0/2 --out %s", root, b);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("manifest merge --out %s", b);
    ck_assert_msg(r->code == 1 && strstr(r->err, "missing item 1"), "%s", r->err);
    setenv("SLURM_ARRAY_TASK_ID", "2", 1); /* --array=1-2: the second task is shard 1 */
    setenv("SLURM_ARRAY_TASK_COUNT", "2", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
    r = cli_run("augment %s " KILL_ARGS " --shard auto --out %s", root, b);
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    unsetenv("SLURM_ARRAY_TASK_MIN");
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(path, sizeof path, "%s/manifest.shard-1-of-2.jsonl", b);
    ck_assert(access(path, F_OK) == 0);
    r = cli_run("manifest merge --out %s", b);
    ck_assert_msg(r->code == 0, "%s", r->err);
    for (int i = 0; i < 2; i++) { /* the merged folder minus shard logs equals the whole run */
        snprintf(path, sizeof path, "%s/manifest.shard-%d-of-2.jsonl", b, i);
        unlink(path);
    }
    same_tree(a, b, ".");
    /* A doubled line is named. */
    snprintf(path, sizeof path, "%s/manifest.jsonl", b);
    size_t len;
    char *buf = tu_slurp(path, &len);
    char p2[1200];
    snprintf(p2, sizeof p2, "%s/manifest.shard-0-of-2.jsonl", b);
    FILE *f = fopen(p2, "w");
    fwrite(buf, 1, len, f);
    fwrite(buf, 1, strchr(buf, '\n') - buf + 1, f);
    fclose(f);
    free(buf);
    r = cli_run("manifest merge --out %s", b);
    ck_assert_msg(r->code == 1 && strstr(r->err, "item 0 listed 2 times"), "%s", r->err);
    free(root);
}
END_TEST

START_TEST(augment_lock_dry_run_and_usage) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"cat", "dog"};
    char *root = strdup(make_dataset(dir, cls, 2, 2)), path[1200];
    snprintf(path, sizeof path, "%s/out", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/out/.sdc-augment.lock", dir);
    sdc_err err = {0};
    int fd = aug_lock(path, &err);
    ck_assert_msg(fd >= 0, "%s", err.msg);
    const cli_result *r = cli_run("augment %s " MODEL " --method prompt --out %s/out " FAST, root, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "another sdc augment"), "%s", r->err);
    close(fd);
    r = cli_run("augment %s --method boomerang --per-image 3 --strength 0.5 --steps 10 --cfg 7.5 "
                "--dry-run --out %s/o2", root, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "total: 12 images, 120 UNet evaluations"), "%s", r->out);
    ck_assert(access(path, F_OK) == 0 && strstr(r->out, "cat") && strstr(r->out, "6 images"));
    /* With a model, a quick measurement gives a time estimate. */
    r = cli_run("augment %s " MODEL " --method prompt --dry-run --out %s/o4 " FAST, root, dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "estimate: ") && strstr(r->out, "per UNet evaluation"),
                  "%s%s", r->out, r->err);
    ck_assert_msg(access(dir, F_OK) == 0, "dir");
    setenv("JOB_COMPLETION_INDEX", "1", 1);
    r = cli_run("augment %s --method prompt --per-class 5 --shard auto --shard-count 3 --dry-run "
                "--out %s/o2", root, dir);
    unsetenv("JOB_COMPLETION_INDEX");
    ck_assert_msg(r->code == 0 && strstr(r->out, "shard 1/3") && strstr(r->out, "total: 3 images"),
                  "%s%s", r->out, r->err);
    static const struct { const char *args; const char *msg; } bad[] = {
        {"--method magic", "--method"},
        {"--method prompt --shard 2/2", "--shard"},
        {"--method prompt --size 100", "--size"},
        {"--method boomerang --strength 0.5,2", "--strength"},
        {"--method textinv", "--embeddings"},
        {"--method prompt --classes cat,cow", "cow"},
        {"--method prompt --templates /nonexistent", "/nonexistent"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = cli_run("augment %s %s --dry-run --out %s/o3", root, bad[i].args, dir);
        ck_assert_msg(r->code != 0 && strstr(r->err, bad[i].msg), "%s: %d %s", bad[i].args, r->code, r->err);
    }
    free(root);
}
END_TEST

START_TEST(augment_plan_is_stable_under_subsets) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"c1", "c2", "c3"};
    char *root = make_dataset(dir, cls, 3, 2);
    sdc_err err = {0};
    aug_dataset all, sub;
    ck_assert_msg(aug_dataset_scan(root, NULL, NULL, &all, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(aug_dataset_scan(root, NULL, "c3,c2", &sub, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(sub.n_classes, 2);
    ck_assert_str_eq(sub.classes[0].folder, "c2"); /* sorted, whatever the list's order */
    const char *t[] = {"one {}", "two {}", "three {}"}, *w[] = {"x", "y", "z"};
    double st[] = {0.2, 0.4, 0.6};
    aug_plan_opts o = {.method = AUG_BOOMERANG, .from_real = true, .base_seed = 7, .per_image = 3,
                       .strengths = st, .n_strengths = 3, .templates = t, .n_templates = 3,
                       .random_order = true, .words = w};
    aug_plan pa, ps;
    ck_assert(aug_plan_build(&all, &o, &pa, &err) == SDC_OK);
    const char *wsub[] = {"y", "z"}; /* words are per class of the scanned set */
    o.words = wsub;
    ck_assert(aug_plan_build(&sub, &o, &ps, &err) == SDC_OK);
    o.words = w;
    ck_assert_int_eq(pa.n, 18);
    ck_assert_int_eq(ps.n, 12);
    /* The subset's items are the full plan's items (same seed, name, strength). */
    for (int i = 0; i < ps.n; i++) {
        const aug_item *a = &pa.items[6 + i], *b = &ps.items[i];
        ck_assert_str_eq(a->output, b->output);
        ck_assert_uint_eq(a->seed, b->seed);
        ck_assert(a->strength == b->strength);
        ck_assert_str_eq(a->prompt, b->prompt);
        ck_assert(b->strength == st[(b->seed >> 8) % 3]);
        static const char *want[] = {"one y", "two y", "three y", "one z", "two z", "three z"};
        ck_assert_str_eq(b->prompt, want[(b->seed >> 16) % 3 + 3 * (b->cls == 1)]);
    }
    aug_plan_free(&ps);
    o.limit = 5;
    ck_assert(aug_plan_build(&all, &o, &ps, &err) == SDC_OK);
    ck_assert_int_eq(ps.n, 5);
    for (int i = 0; i < 5; i++) ck_assert_str_eq(ps.items[i].output, pa.items[i].output);
    aug_plan_free(&ps);
    aug_plan_free(&pa);
    aug_dataset_free(&all);
    aug_dataset_free(&sub);
}
END_TEST

/* EIO on the first image's fsync (strace fault injection; skipped without
 * strace): that item is recorded as failed, the run goes on, and a rerun
 * redoes just it, ending equal to a clean run. */
/* A disk error on an image (EIO on the fsync of the second PNG) stops the
 * run there, naming it, instead of computing every remaining item; the rerun
 * finishes the job equal to an undisturbed run. */
START_TEST(augment_disk_error_stops_and_heals) {
    if (system("command -v strace >/dev/null 2>&1") != 0) return;
    const char *dir = test_tmpdir();
    const char *cls[] = {"p", "q"};
    char *root = strdup(make_dataset(dir, cls, 2, 1)), cmd[4096], path[1200];
    const cli_result *r = cli_run("augment %s " MODEL " --method prompt --per-class 2 " FAST
                                  " --out %s/ref", root, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    /* fsyncs: plan.json and its folder, the first PNG and its folder, the
     * manifest, then the second PNG (6th). */
    /* LeakSanitizer cannot stop the world under strace (both use ptrace). */
    snprintf(cmd, sizeof cmd, "ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace=fsync "
             "-e inject=fsync:error=EIO:when=6 "
             "%s augment %s " MODEL " --method prompt --per-class 2 " FAST " --out %s/out "
             "2>%s/err.txt", test_sdc_bin(), root, dir, dir);
    int st = system(cmd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    size_t len;
    char *err = tu_slurp(path, &len);
    ck_assert_msg(strstr(err, "Input/output error") && strstr(err, "stopped after 1 images") &&
                  strstr(err, "rerun the same command to resume"), "%s", err);
    free(err);
    snprintf(path, sizeof path, "%s/out/manifest.jsonl", dir);
    cJSON *m = tu_read_manifest(path);
    ck_assert_int_eq(cJSON_GetArraySize(m), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(m, 0), "status"), "ok");
    cJSON_Delete(m);
    r = cli_run("augment %s " MODEL " --method prompt --per-class 2 " FAST " --out %s/out", root, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/ref", dir);
    snprintf(b, sizeof b, "%s/out", dir);
    same_tree(a, b, ".");
    free(root);
}
END_TEST

/* One contact sheet over two methods' folders: per class the real images
 * beside their augmentations, then the txt2img ones (1026 px wide: 10 tiles). */
START_TEST(augment_contact_sheet_over_methods) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"cat", "dog"};
    char *root = strdup(make_dataset(dir, cls, 2, 2));
    const cli_result *r = cli_run("augment %s " MODEL " --method boomerang --per-image 1 " FAST
                                  " --out %s/b --preview %s/b.png", root, dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("augment %s " MODEL " --method prompt --per-class 2 " FAST " --out %s/p", root, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("manifest preview %s %s/b %s/p -o %s/all.png", root, dir, dir, dir);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("info %s/all.png", dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "1026x"), "%s", r->out);
    r = cli_run("info %s/b.png", dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "PNG image"), "%s", r->out);
    r = cli_run("manifest preview %s -o %s/none.png", root, dir);
    ck_assert_msg(r->code == 2 && strstr(r->err, "preview DATASET DIR"), "%s", r->err);
    free(root);
}
END_TEST

/* SIGINT stops augment with the resume hint; the rerun finishes the job.
 * The signal goes as soon as the first manifest line is there, 39 items
 * before the end, not after a fixed delay: on a fast machine the whole job
 * took 1.2 s, and a 1.5 s delay let it finish (CI, 2026-12-06). */
START_TEST(augment_interrupt_says_rerun) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"cat"};
    char *root = strdup(make_dataset(dir, cls, 1, 2)), cmd[3000], path[1200];
    snprintf(cmd, sizeof cmd, "%s augment %s " MODEL " --method prompt --per-class 40 --size 64 "
             "--steps 4 --out %s/o 2>%s/err.txt & pid=$!; i=0; "
             "while [ ! -s %s/o/manifest.jsonl ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i + 1)); done; "
             "kill -INT $pid; wait $pid",
             test_sdc_bin(), root, dir, dir, dir);
    int st = system(cmd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 130, "status %d", st);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    size_t len;
    char *err = tu_slurp(path, &len);
    ck_assert_msg(strstr(err, "interrupted; rerun the same command to resume"), "%s", err);
    free(err);
    const cli_result *r = cli_run("augment %s " MODEL " --method prompt --per-class 40 --size 64 "
                                  "--steps 4 -q --json --out %s/o", root, dir);
    ck_assert_msg(r->code == 0 && strstr(r->out, "\"failed\": 0"), "%s%s", r->out, r->err);
    free(root);
}
END_TEST

/* --batch shares UNet calls between items but not generators: every method
 * gives byte-identical files and manifest at batch 1 and batch 4 (boomerang's
 * two strengths split the batches). */
START_TEST(augment_batch_gives_the_same_images) {
    const char *dir = test_tmpdir();
    const char *cls[] = {"ant", "bee"};
    char *root = strdup(make_dataset(dir, cls, 2, 3)), emb[1024], path[1200];
    snprintf(emb, sizeof emb, "%s/emb", dir);
    mkdir(emb, 0755);
    for (int c = 0; c < 2; c++) {
        sdc_err err = {0};
        sdc_tensor *t = sdc_tensor_new(SDC_F32, 2, (const int64_t[]){1, 8}, &err);
        for (int i = 0; i < 8; i++) ((float *)t->data)[i] = 0.2f * (float)(i - c * 4) + 0.05f;
        sdc_st_write_item it = {"emb_params", t};
        snprintf(path, sizeof path, "%s/%s.safetensors", emb, cls[c]);
        ck_assert_msg(sdc_safetensors_write(path, &it, 1, NULL, 0, &err) == SDC_OK, "%s", err.msg);
        sdc_tensor_free(t);
    }
    const char *methods[] = {
        "--method prompt --per-class 3 --templates clip7 --sampler euler_a",
        "--method boomerang --per-image 2 --strength 0.5,0.8",
        "--method textinv --per-class 3 --sampler ddim",
    };
    for (int m = 0; m < 3; m++) {
        char one[700], four[700];
        snprintf(one, sizeof one, "%s/one%d", dir, m);
        snprintf(four, sizeof four, "%s/four%d", dir, m);
        char with[2100];
        snprintf(with, sizeof with, "%s%s%s", methods[m], m == 2 ? " --embeddings " : "", m == 2 ? emb : "");
        const cli_result *r = cli_run("augment %s " MODEL " %s --out %s " FAST, root, with, one);
        ck_assert_msg(r->code == 0, "%s: %s", methods[m], r->err);
        r = cli_run("augment %s " MODEL " %s --batch 4 --out %s " FAST, root, with, four);
        ck_assert_msg(r->code == 0, "%s: %s", methods[m], r->err);
        same_tree(one, four, ".");
    }
    free(root);
}
END_TEST

Suite *suite_augment(void) {
    Suite *s = suite_create("augment");
    TCase *tc = tcase_create("augment");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, augment_plan_is_stable_under_subsets);
    tcase_add_test(tc, augment_boomerang_manifest_and_corrupt_source);
    tcase_add_test(tc, augment_prompt_and_textinv);
    tcase_add_test(tc, augment_resume_after_kill_is_identical);
    tcase_add_test(tc, augment_shards_merge_to_the_whole_run);
    tcase_add_test(tc, augment_lock_dry_run_and_usage);
    tcase_add_test(tc, augment_disk_error_stops_and_heals);
    tcase_add_test(tc, augment_batch_gives_the_same_images);
    tcase_add_test(tc, augment_contact_sheet_over_methods);
    tcase_add_test(tc, augment_interrupt_says_rerun);
    suite_add_tcase(s, tc);
    return s;
}
