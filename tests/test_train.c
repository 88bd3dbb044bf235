/* test_train.c — textual-inversion training (src/train/, sdc train-embedding,
 * augment --train) on the tiny model: ten updates fed the draws of
 * tests/make_train_fixtures.py against the embedding torch/diffusers reaches
 * (and the template prompts' ids, AdamW alone on torch's gradients); kill -9
 * and resume to the same bytes; NaN after good steps; a folder's other
 * settings and damage refused; the driver with class shards; a planted
 * concept (tcase "planted"). */
#include "cli_run.h"
#include "suites.h"
#include "test_util.h"

#include "../src/core/sha256.h"
#include "../src/image/image.h"
#include "../src/train/adamw.h"
#include "../src/train/textinv_train.h"

#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIX "tests/fixtures/"
#define VOCAB "weights/bpe_simple_vocab_16e6.txt.gz"
#define TRAIN_FIX FIX "train_io.safetensors"
#define REGEN "(regenerate: build/venv/bin/python tests/make_train_fixtures.py)"

static sdc_safetensors *train_fixture(void) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(TRAIN_FIX, &err);
    ck_assert_msg(st, "%s %s", err.msg, REGEN);
    return st;
}

static sdc_tensor *fx(const sdc_safetensors *st, const char *prefix, const char *name, sdc_dtype dt) {
    char key[128];
    sdc_err err = {0};
    snprintf(key, sizeof key, "%s%s", prefix, name);
    sdc_tensor *t = sdc_safetensors_load(st, key, dt, &err);
    ck_assert_msg(t, "%s %s", err.msg, REGEN);
    return t;
}

static int meta_int(const sdc_safetensors *st, const char *prefix, const char *key) {
    char k[128];
    snprintf(k, sizeof k, "%s%s", prefix, key);
    const char *v = sdc_safetensors_meta(st, k);
    ck_assert_msg(v, "fixture metadata %s missing %s", k, REGEN);
    return atoi(v);
}

/* ||a - b|| / ||b|| in double. */
static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

typedef struct {
    sdc_backend *be;
    sdc_pipeline *p;
} tiny;

static tiny tiny_open(void) {
    sdc_err err = {0};
    tiny t = {.be = sdc_cpu_backend_create(&err)};
    ck_assert_msg(t.be, "%s", err.msg);
    t.p = sdc_pipeline_open(FIX "tiny/diffusers", VOCAB, t.be, &err);
    ck_assert_msg(t.p, "%s", err.msg);
    return t;
}

static void tiny_close(tiny *t) {
    sdc_pipeline_free(t->p);
    sdc_backend_destroy(t->be);
}

/* ---------------------------------------------------------------- torch */

/* Tolerances: the embedding after the steps within rel-L2 1e-3 (issue 15);
 * measured 2.6e-6 (eps, 10 steps) and 1.7e-6 (v, 3 steps). The gradient:
 * against the float64 gradient of the first step (same draws) 4.4e-6 (eps)
 * and 4.1e-5 (v), held to issue 15's 1e-4; against torch's float32
 * gradients along the run up to 1.9e-4 and 3.2e-4, which is torch's own
 * rounding: its float32 gradient is 2.8e-5 and 3.4e-4 from float64 (the
 * gradient is a small sum of large, cancelling terms). */
#define TOL_EMB 1e-3
#define TOL_GRAD 1e-3
#define TOL_GRAD64 1e-4

/* One fixture run (prefix "" or "v."): the trainer fed torch's batches. */
static void ten_steps_like_torch(const char *prefix, sdc_ti_prediction pred, double tol_emb,
                                 double tol_grad) {
    sdc_safetensors *st = train_fixture();
    int S = meta_int(st, prefix, "steps"), A = meta_int(st, prefix, "accum"), B = meta_int(st, prefix, "batch");
    int nv = meta_int(st, prefix, "num_vectors");
    char key[64];
    snprintf(key, sizeof key, "%slr", prefix);
    double lr = strtod(sdc_safetensors_meta(st, key), NULL);
    sdc_tensor *ids = fx(st, prefix, "ids", SDC_I32), *lat = fx(st, prefix, "latents", SDC_F32);
    sdc_tensor *noise = fx(st, prefix, "noise", SDC_F32), *ts = fx(st, prefix, "timesteps", SDC_I32);
    sdc_tensor *init = fx(st, prefix, "init", SDC_F32), *emb = fx(st, prefix, "emb", SDC_F32);
    sdc_tensor *grad = fx(st, prefix, "grad", SDC_F32), *loss = fx(st, prefix, "loss", SDC_F32);
    sdc_tensor *tmpl = fx(st, prefix, "template_ids", SDC_I32), *grad64 = fx(st, prefix, "grad64", SDC_F32);
    tiny m = tiny_open();
    sdc_err err = {0};
    sdc_ti_data data = {.size = 64, .n = 1}; /* update() takes its batches from the fixture */
    sdc_ti_config c = {.token = sdc_safetensors_meta(st, "token"), .num_vectors = nv, .steps = S,
                       .batch = B, .accum = A, .lr = lr, .prediction = pred};
    for (int i = 0; i < nv; i++) c.init_ids[i] = meta_int(st, prefix, "init_id");
    sdc_ti_trainer *t;
    ck_assert_msg(sdc_ti_trainer_create(m.p, &c, &data, &t, &err) == SDC_OK, "%s", err.msg);
    size_t n = (size_t)nv * t->dim;
    ck_assert_msg(!memcmp(t->init, init->data, sizeof(float) * n), "initial vectors differ from torch's");
    for (int k = 0; k < SDC_TI_N_TEMPLATES; k++)
        ck_assert_msg(!memcmp(t->prompt_ids[k], (int32_t *)tmpl->data + 77 * k, sizeof(int32_t) * 77),
                      "template %d ('%s'): ids differ from transformers' tokenizer", k, sdc_ti_template(k));
    size_t per = (size_t)4 * 8 * 8;
    sdc_ti_batch *mb = calloc((size_t)A, sizeof *mb);
    double worst_grad = 0, worst_loss = 0, first_grad = 0;
    float *g = malloc(sizeof *g * n), *gacc = malloc(sizeof *gacc * n);
    for (int s = 0; s < S; s++) {
        for (int a = 0; a < A; a++) {
            size_t row = (size_t)(s * A + a) * B;
            mb[a] = (sdc_ti_batch){.batch = B, .h = 8, .w = 8, .ids = (int32_t *)ids->data + row * 77,
                                   .latents = (float *)lat->data + row * per,
                                   .noise = (float *)noise->data + row * per,
                                   .timesteps = (int32_t *)ts->data + row};
        }
        /* The gradient at this step's starting point against autograd's. */
        memset(gacc, 0, sizeof *gacc * n);
        sdc_ti_model md = {.clip = &m.p->clip, .unet = &m.p->unet, .alphas_cumprod = t->alphas_cumprod,
                           .prediction = pred};
        for (int a = 0; a < A; a++) {
            sdc_exec ex = sdc_exec_begin(m.be, m.p->arena, &err);
            float l;
            ck_assert_msg(sdc_ti_loss_grad(&ex, &md, t->emb, nv, &mb[a], &l, g) == SDC_OK, "%s", err.msg);
            for (size_t i = 0; i < n; i++) gacc[i] += g[i] / (float)A;
            float want = ((float *)loss->data)[s * A + a];
            worst_loss = fmax(worst_loss, fabs(l - want) / want);
        }
        worst_grad = fmax(worst_grad, rel_l2(gacc, (float *)grad->data + s * n, n));
        if (s == 0) first_grad = rel_l2(gacc, grad64->data, n);
        ck_assert_msg(sdc_ti_trainer_update(t, mb, A, &err) == SDC_OK, "step %d: %s", s + 1, err.msg);
    }
    double e = rel_l2(t->emb, (float *)emb->data + (size_t)(S - 1) * n, n);
    printf("train: %s%d torch steps (batch %d x %d, %d vectors): embedding rel-L2 %.2e, gradient "
           "rel-L2 up to %.2e (first step vs float64 %.2e), loss rel up to %.2e\n", prefix, S, B, A, nv, e,
           worst_grad, first_grad, worst_loss);
    ck_assert_msg(worst_loss < 1e-5, "loss rel %.3g", worst_loss); /* measured 1.3e-6 */
    ck_assert_msg(first_grad < TOL_GRAD64, "first gradient rel-L2 %.3g against float64", first_grad);
    ck_assert_msg(worst_grad < tol_grad, "gradient rel-L2 %.3g", worst_grad);
    ck_assert_msg(e < tol_emb, "embedding after %d steps: rel-L2 %.3g against torch", S, e);
    ck_assert_int_eq(t->step, S);
    free(g);
    free(gacc);
    free(mb);
    sdc_ti_trainer_free(t);
    tiny_close(&m);
    sdc_tensor *all[] = {ids, lat, noise, ts, init, emb, grad, loss, tmpl, grad64};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) sdc_tensor_free(all[i]);
    sdc_safetensors_close(st);
}


START_TEST(train_ten_steps_match_torch) {
    ten_steps_like_torch("", SDC_PREDICT_EPSILON, TOL_EMB, TOL_GRAD);
}
END_TEST

START_TEST(train_v_prediction_matches_torch) {
    ten_steps_like_torch("v.", SDC_PREDICT_V, TOL_EMB, TOL_GRAD);
}
END_TEST

/* AdamW alone: fed autograd's gradients, it must retrace torch's updates
 * (any difference is float rounding order, not the formula). */
START_TEST(adamw_retraces_torch_with_its_gradients) {
    sdc_safetensors *st = train_fixture();
    int S = meta_int(st, "", "steps"), nv = meta_int(st, "", "num_vectors");
    double lr = strtod(sdc_safetensors_meta(st, "lr"), NULL);
    sdc_tensor *init = fx(st, "", "init", SDC_F32), *emb = fx(st, "", "emb", SDC_F32);
    sdc_tensor *grad = fx(st, "", "grad", SDC_F32);
    size_t n = (size_t)sdc_tensor_numel(init);
    float *p = malloc(sizeof *p * n), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    memcpy(p, init->data, sizeof *p * n);
    sdc_adamw o = sdc_adamw_defaults(lr);
    double worst = 0;
    for (int s = 0; s < S; s++) {
        sdc_adamw_step(&o, s + 1, p, m, v, (float *)grad->data + s * n, n);
        const float *want = (float *)emb->data + s * n;
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)p[i] - want[i]));
    }
    printf("train: AdamW on torch's gradients, %d steps of %d vectors: max-abs %.2e from torch\n", S, nv, worst);
    ck_assert_msg(worst < 1e-6, "AdamW max-abs %.3g", worst); /* measured 0: the same bits */
    free(p), free(m), free(v);
    sdc_tensor_free(init), sdc_tensor_free(emb), sdc_tensor_free(grad);
    sdc_safetensors_close(st);
}
END_TEST

/* ---------------------------------------------------------------- kill -9 */

/* n patterned 64x48 PNGs in dir/imgs. */
static void make_images(const char *dir, int n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/imgs", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    for (int k = 0; k < n; k++) {
        uint8_t rgb[64 * 48 * 3];
        for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)((i / 3 % 64) * 3 + (i / 192) * 2 + k * 50 + i % 3 * 60);
        snprintf(path, sizeof path, "%s/imgs/i%d.png", dir, k);
        sdc_err err = {0};
        ck_assert_msg(sdc_image_save_png(path, rgb, 64, 48, NULL, &err) == SDC_OK, "%s", err.msg);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Starts $SDC_BIN with cmd split at spaces (no shell), output to /dev/null. */
static pid_t start(const char *cmd) {
    static char buf[4096];
    char *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", cmd);
    argv[argc++] = (char *)test_sdc_bin();
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int dn = open("/dev/null", O_RDWR);
        dup2(dn, 0), dup2(dn, 1), dup2(dn, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Every file under a (recursively; lock files skipped) is in b with the same
 * bytes and vice versa; b holds no temp file. Returns the files compared. */
static int same_tree(const char *a, const char *b) {
    int n = 0;
    const char *dirs[2] = {a, b};
    for (int side = 0; side < 2; side++) {
        DIR *d = opendir(dirs[side]);
        ck_assert_msg(d != NULL, "%s missing", dirs[side]);
        for (struct dirent *e; (e = readdir(d));) {
            size_t len = strlen(e->d_name);
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
                (len > 5 && !strcmp(e->d_name + len - 5, ".lock")))
                continue;
            ck_assert_msg(!strstr(e->d_name, ".tmp."), "temp file %s/%s left", dirs[side], e->d_name);
            char pa[1400], pb[1400];
            snprintf(pa, sizeof pa, "%s/%s", dirs[side], e->d_name);
            snprintf(pb, sizeof pb, "%s/%s", dirs[1 - side], e->d_name);
            struct stat sb;
            ck_assert_int_eq(stat(pa, &sb), 0);
            if (S_ISDIR(sb.st_mode)) {
                if (side == 0) n += same_tree(pa, pb);
                continue;
            }
            size_t la = 0, lb = 0;
            uint8_t *x = tu_slurp(pa, &la), *y = tu_slurp(pb, &lb);
            ck_assert_msg(y != NULL, "%s exists, %s does not", pa, pb);
            ck_assert_msg(la == lb && !memcmp(x, y, la), "%s and %s differ", pa, pb);
            free(x), free(y);
            n += side == 0;
        }
        closedir(d);
    }
    return n;
}

#define TRAIN_KILL "train-embedding --model tests/fixtures/tiny/diffusers --vocab " VOCAB \
    " --images %s/imgs --token <kill> --init cat --steps 16 --batch 2 --size 64 --checkpoint-every 2" \
    " --eval-samples 4 --validate-every 8 --validation-steps 2 -q -o %s"

/* kill -9 at random moments, each run resuming the last (started without a
 * shell: the token's <> stay literal): the folder ends
 * equal, byte for byte, to an uninterrupted run's (embeddings, checkpoint,
 * loss.csv, loss.png, validation images, train.json), with no temp file. */
START_TEST(train_kill_9_resumes_to_the_same_bytes) {
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *env = getenv("SDC_TEST_SEED");
    if (env && *env) seed = (unsigned)strtoul(env, NULL, 10);
    printf("train: kill test seed %u (SDC_TEST_SEED=%u reproduces it)\n", seed, seed);
    const char *dir = test_tmpdir();
    make_images(dir, 3);
    char ref[700], out[700], cmd[4096];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(cmd, sizeof cmd, TRAIN_KILL, dir, ref);
    double t0 = now_s();
    int st;
    pid_t pid = start(cmd);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    double t_full = now_s() - t0;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reference run: status %d", st);
    snprintf(cmd, sizeof cmd, TRAIN_KILL, dir, out);
    int kills = 0, finished = 0;
    double window = 0.6 * t_full; /* shrinks when a run got to finish first */
    for (int k = 0; k < 8; k++) {
        double frac = (double)rand_r(&seed) / RAND_MAX;
        pid = start(cmd);
        usleep((useconds_t)(frac * window * 1e6));
        kill(pid, SIGKILL); /* a zombie if it already finished: no effect */
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st)) {
            ck_assert_msg(WEXITSTATUS(st) == 0, "kill %d: the run exited %d", k, WEXITSTATUS(st));
            finished++;
            window *= 0.7;
        } else {
            kills++;
        }
    }
    pid = start(cmd);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "final resume: status %d", st);
    int files = same_tree(ref, out);
    printf("train: %d kills (%d runs finished first; a run takes %.1f s): %d files equal the "
           "uninterrupted run's\n", kills, finished, t_full, files);
    ck_assert_int_ge(files, 8);
}
END_TEST

#define TRAIN_SHORT "train-embedding --model " FIX "tiny/diffusers --vocab " VOCAB " --images %s/imgs " \
    "--token '<s>' --init cat --batch 1 --size 64 --checkpoint-every 2 --eval-samples 2 -q -o %s"

/* A finished folder is left alone; other settings on it, a checkpoint of
 * other settings, and a damaged checkpoint are refused, naming the cause. */
START_TEST(train_folder_refuses_other_settings_and_damage) {
    const char *dir = test_tmpdir();
    make_images(dir, 2);
    char a[800], b[800], ck[900], js[900];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    const cli_result *r = cli_run(TRAIN_SHORT " --steps 4", dir, a);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(js, sizeof js, "%s/train.json", a);
    size_t n0, n1;
    uint8_t *before = tu_slurp(js, &n0);
    r = cli_run(TRAIN_SHORT " --steps 4 --json", dir, a);
    ck_assert_msg(r->code == 0 && strstr(r->out, "\"already_done\":\ttrue"), "%s %s", r->out, r->err);
    uint8_t *after = tu_slurp(js, &n1);
    ck_assert_msg(n0 == n1 && !memcmp(before, after, n0), "a finished run was rewritten");
    free(before), free(after);
    r = cli_run(TRAIN_SHORT " --steps 5", dir, a);
    ck_assert_msg(r->code == 1 && strstr(r->err, "holds a finished run with steps '4'; this run has '5'"), "%s", r->err);
    /* An unfinished run (train.json gone) resumes only with its settings. */
    ck_assert_int_eq(unlink(js), 0);
    r = cli_run(TRAIN_SHORT " --steps 4 --seed 3", dir, a);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", a);
    ck_assert_msg(r->code == 1 && strstr(r->err, ck) && strstr(r->err, "seed '0'; this run has '3'"), "%s", r->err);
    r = cli_run(TRAIN_SHORT " --steps 4", dir, a); /* the same settings finish it again */
    ck_assert_msg(r->code == 0 && access(js, F_OK) == 0, "%s", r->err);
    /* A damaged checkpoint: named, not overwritten. */
    r = cli_run(TRAIN_SHORT " --steps 4", dir, b);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(js, sizeof js, "%s/train.json", b);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", b);
    ck_assert_int_eq(unlink(js), 0);
    struct stat sb;
    ck_assert_int_eq(stat(ck, &sb), 0);
    ck_assert_int_eq(truncate(ck, sb.st_size / 2), 0);
    r = cli_run(TRAIN_SHORT " --steps 4", dir, b);
    ck_assert_msg(r->code == 1 && strstr(r->err, ck), "%s", r->err);
    ck_assert_int_eq(stat(ck, &sb), 0);
    printf("train: finished folder kept; other settings and a cut checkpoint refused (%s)\n", r->err);
}
END_TEST

/* ---------------------------------------------------------------- NaN */

/* dst: the tiny diffusers model (text encoder and VAE linked) with an F32
 * UNet whose time embedding overflows to Inf, and the prediction to NaN, for
 * timesteps above about 660 only: row 0 of time_embedding.linear_1 reads
 * sin(0.001 t) (column 28, flip_sin_to_cos) as 3e38 sin - 1.5e38, and
 * linear_2 takes it times 10, past FLT_MAX once sin(0.001 t) > 0.613. */
static void make_nan_above_660_model(const char *dst) {
    char path[1200], src[PATH_MAX];
    ck_assert_msg(realpath(FIX "tiny/diffusers", src), "tiny model missing");
    const char *links[] = {"text_encoder", "vae", "model_index.json", "unet/config.json"};
    snprintf(path, sizeof path, "%s/unet", dst);
    ck_assert_int_eq(mkdir(dst, 0755), 0);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    for (int i = 0; i < 4; i++) {
        char from[PATH_MAX + 64];
        snprintf(from, sizeof from, "%s/%s", src, links[i]);
        snprintf(path, sizeof path, "%s/%s", dst, links[i]);
        ck_assert_int_eq(symlink(from, path), 0);
    }
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(FIX "tiny/diffusers/unet/diffusion_pytorch_model.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    size_t n = sdc_safetensors_count(st);
    sdc_tensor **ts = calloc(n, sizeof *ts);
    sdc_st_write_item *items = calloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        ts[i] = sdc_safetensors_load(st, e->name, SDC_F32, &err);
        ck_assert_msg(ts[i], "%s", err.msg);
        float *v = ts[i]->data;
        if (!strcmp(e->name, "time_embedding.linear_1.weight")) {
            ck_assert_int_eq(ts[i]->shape[1], 32);
            for (int k = 0; k < 32; k++) v[k] = k == 28 ? 3e38f : 0.0f;
        } else if (!strcmp(e->name, "time_embedding.linear_1.bias")) {
            v[0] = -1.5e38f;
        } else if (!strcmp(e->name, "time_embedding.linear_2.weight")) {
            for (int64_t r = 0; r < ts[i]->shape[0]; r++) v[r * ts[i]->shape[1]] = 10.0f;
        }
        items[i] = (sdc_st_write_item){e->name, ts[i]};
    }
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", dst);
    ck_assert_msg(sdc_safetensors_write(path, items, n, NULL, 0, &err) == SDC_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++) sdc_tensor_free(ts[i]);
    free(ts);
    free(items);
    sdc_safetensors_close(st);
}

/* A NaN loss after some good steps stops the run, says so, keeps the last
 * good checkpoint as it was (and writes no embedding); a rerun stops at the
 * same step. The first seed whose first step draws t below 660 is used. */
START_TEST(train_nan_loss_keeps_the_last_good_checkpoint) {
    const char *dir = test_tmpdir();
    char model[800], out[800], ck[900];
    snprintf(model, sizeof model, "%s/model", dir);
    make_nan_above_660_model(model);
    make_images(dir, 2);
    int found = -1, at = 0;
    for (int seed = 0; seed < 20 && found < 0; seed++) {
        snprintf(out, sizeof out, "%s/out%d", dir, seed);
        const char *fmt = "train-embedding --model %s --vocab " VOCAB " --images %s/imgs --token '<n>' --init cat "
                          "--steps 30 --batch 1 --size 64 --checkpoint-every 1 --eval-samples 0 --seed %d -q -o %s";
        const cli_result *r = cli_run(fmt, model, dir, seed, out);
        ck_assert_msg(r->code == 1 && strstr(r->err, "the loss is NaN"), "seed %d: exit %d: %s", seed, r->code, r->err);
        const char *kept = strstr(r->err, "the last good checkpoint (step ");
        if (!kept) continue; /* NaN at step 1: nothing kept (the bad-input suite's case) */
        at = atoi(kept + strlen("the last good checkpoint (step "));
        found = seed;
        snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", out);
        ck_assert_msg(strstr(r->err, ck), "the message does not name %s: %s", ck, r->err);
        sdc_err err = {0};
        sdc_safetensors *st = sdc_safetensors_open(ck, &err);
        ck_assert_msg(st, "%s", err.msg);
        ck_assert_int_eq(atoi(sdc_safetensors_meta(st, "step")), at);
        sdc_safetensors_close(st);
        char path[1000];
        snprintf(path, sizeof path, "%s/learned_embeds.safetensors", out);
        ck_assert_msg(access(path, F_OK) != 0, "an embedding was written after NaN");
        snprintf(path, sizeof path, "%s/train.json", out);
        ck_assert_msg(access(path, F_OK) != 0, "train.json was written after NaN");
        r = cli_run(fmt, model, dir, seed, out); /* deterministic: the resume meets it again */
        ck_assert_msg(r->code == 1 && strstr(r->err, "the loss is NaN") && strstr(r->err, ck), "%s", r->err);
        printf("train: NaN loss at step %d (seed %d): stopped, checkpoint of step %d kept\n", at + 1, seed, at);
    }
    ck_assert_msg(found >= 0, "no seed in 0..19 reached a good step before NaN");
}
END_TEST

/* ---------------------------------------------------------------- planted concept */

/* Writes the safetensors file at src into dst with every tensor F32 and
 * edit() applied to each (name, data, numel). */
static void rewrite_weights(const char *src, const char *dst, void (*edit)(const char *, float *, int64_t)) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(src, &err);
    ck_assert_msg(st, "%s", err.msg);
    size_t n = sdc_safetensors_count(st);
    sdc_tensor **ts = calloc(n, sizeof *ts);
    sdc_st_write_item *items = calloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        ts[i] = sdc_safetensors_load(st, e->name, SDC_F32, &err);
        ck_assert_msg(ts[i], "%s", err.msg);
        edit(e->name, ts[i]->data, sdc_tensor_numel(ts[i]));
        items[i] = (sdc_st_write_item){e->name, ts[i]};
    }
    ck_assert_msg(sdc_safetensors_write(dst, items, n, NULL, 0, &err) == SDC_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++) sdc_tensor_free(ts[i]);
    free(ts);
    free(items);
    sdc_safetensors_close(st);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Sharper cross-attention: keys x4, outputs x12. */
static void edit_unet(const char *name, float *v, int64_t n) {
    float f = ends_with(name, "attn2.to_k.weight") ? 4.0f : ends_with(name, "attn2.to_out.0.weight") ? 12.0f : 1.0f;
    for (int64_t i = 0; f != 1.0f && i < n; i++) v[i] *= f;
}

/* A sharp posterior: logvar (quant_conv's channels 4..7) near -20. */
static void edit_vae(const char *name, float *v, int64_t n) {
    if (!strcmp(name, "quant_conv.bias"))
        for (int64_t i = 4; i < n; i++) v[i] = -20.0f;
}

/* dst: the tiny model made one where a token can matter. Its random UNet
 * barely listens to the text (the context moves the loss by well under 1%)
 * and its random VAE's posterior noise (std ~1.2 before scaling) buries an
 * image's mean encoding (std ~0.6): cross-attention is sharpened (keys x4,
 * outputs x12; keys x16 made the loss so rough at Adam's step size that the
 * exact gradient's updates bounced: finite differences at h 1e-2 disagreed
 * in sign with h 1e-4, which agreed with the analytic gradient), the posterior made sharp (logvar -20) and the scaling factor
 * 1, as a trained model's small posterior variance and unit-variance latents. */
static void make_concept_model(const char *dst) {
    char path[1200], src[PATH_MAX], from[PATH_MAX + 64];
    ck_assert_msg(realpath(FIX "tiny/diffusers", src), "tiny model missing");
    ck_assert_int_eq(mkdir(dst, 0755), 0);
    const char *dirs[] = {"unet", "vae"}, *links[] = {"text_encoder", "model_index.json", "unet/config.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dst, dirs[i]);
        ck_assert_int_eq(mkdir(path, 0755), 0);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(from, sizeof from, "%s/%s", src, links[i]);
        snprintf(path, sizeof path, "%s/%s", dst, links[i]);
        ck_assert_int_eq(symlink(from, path), 0);
    }
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", dst);
    rewrite_weights(FIX "tiny/diffusers/unet/diffusion_pytorch_model.safetensors", path, edit_unet);
    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", dst);
    rewrite_weights(FIX "tiny/diffusers/vae/diffusion_pytorch_model.safetensors", path, edit_vae);
    size_t n;
    char *cfg = (char *)tu_slurp(FIX "tiny/diffusers/vae/config.json", &n), *sf = strstr(cfg, "0.18215");
    ck_assert(sf != NULL);
    snprintf(path, sizeof path, "%s/vae/config.json", dst);
    FILE *f = fopen(path, "w");
    fprintf(f, "%.*s1.0%s", (int)(sf - cfg), cfg, sf + 7);
    fclose(f);
    free(cfg);
}

/* n 64x64 PNGs in dir: pattern 0 a red square (side 24-34, moving) on blue,
 * pattern 1 green horizontal stripes (period 8, shifting) on black. */
static void make_pattern(const char *dir, int pattern, int n) {
    char path[1200];
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (int k = 0; k < n; k++) {
        uint8_t rgb[64 * 64 * 3];
        int side = 24 + 3 * k, x0 = 6 + 7 * k, y0 = 30 - 5 * k;
        for (int i = 0; i < 64 * 64; i++) {
            int x = i % 64, y = i / 64;
            bool sq = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
            bool stripe = ((y + 2 * k) / 4) % 2 == 0;
            uint8_t *p = rgb + 3 * i;
            if (pattern == 0) p[0] = sq ? 230 : 20, p[1] = sq ? 40 : 30, p[2] = sq ? 40 : 160;
            else p[0] = 10, p[1] = stripe ? 210 : 15, p[2] = 10;
        }
        snprintf(path, sizeof path, "%s/p%d.png", dir, k);
        sdc_err err = {0};
        ck_assert_msg(sdc_image_save_png(path, rgb, 64, 64, NULL, &err) == SDC_OK, "%s", err.msg);
    }
}

/* Mean squared distance between the latents of img2img (DA-Fusion's use of a
 * token: strength 0.5 from each real image) and the real image's latents,
 * over the images of d and 2 seeds, with vectors v as the token (or the
 * initializer's word when v is NULL). */
static double img2img_distance(sdc_pipeline *p, sdc_ti_data *d, const char *token, const float *v) {
    sdc_err err = {0};
    sdc_embedding_set *set = NULL;
    if (v) ck_assert_msg(sdc_embeddings_from_memory(&set, token, v, 1, 8, &err) == SDC_OK, "%s", err.msg);
    char prompt[128];
    snprintf(prompt, sizeof prompt, "a photo of a %s", v ? token : "cat");
    double sum = 0;
    int cnt = 0;
    float *img = malloc(sizeof *img * 3 * 64 * 64);
    for (int i = 0; i < d->n; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", d->dir, d->names[i]);
        sdc_image im;
        ck_assert_int_eq(sdc_image_load(path, NULL, &im, &err), SDC_OK);
        ck_assert_int_eq(sdc_image_to_tensor(&im, 64, 64, SDC_FIT_CROP, img, 3 * 64 * 64, &err), SDC_OK);
        sdc_image_free(&im);
        const float *z;
        ck_assert_int_eq(sdc_ti_data_latent(d, p, i, false, &z, &err), SDC_OK);
        for (int seed = 1; seed <= 2; seed++) {
            sdc_generate_opts o = {.prompt = prompt, .negative = "", .embeddings = set, .cfg = 1.0f, .seed = (uint64_t)seed,
                                   .width = 64, .height = 64, .batch = 1, .init_image = img, .strength = 0.5f};
            ck_assert(sdc_sampler_from_name("ddim", &o.sampler));
            o.sampler.steps = 4;
            sdc_generate_result r;
            ck_assert_msg(sdc_generate(p, &o, &r, &err) == SDC_OK, "%s", err.msg);
            for (int k = 0; k < 4 * 8 * 8; k++, cnt++) sum += ((double)r.latents[k] - z[k]) * ((double)r.latents[k] - z[k]);
            sdc_generate_result_free(&r);
        }
    }
    free(img);
    sdc_embeddings_free(set);
    return sum / cnt;
}

/* The fixed draws of a planted-pattern folder: n_mb micro-batches of 4
 * (every image, both orientations, timesteps spread over [0, 1000), the
 * templates in turn, seeded noise) from trainer t's data. */
typedef struct {
    int32_t ids[4 * 77], ts[4];
    float lat[4 * 256], noise[4 * 256];
} fixed_mb;

static void fixed_draws(sdc_ti_trainer *t, fixed_mb *mb, sdc_ti_batch *b, int n_mb) {
    sdc_err err = {0};
    sdc_rng g;
    sdc_rng_seed(&g, 77);
    for (int m = 0; m < n_mb; m++) {
        for (int k = 0; k < 4; k++) {
            int j = 4 * m + k;
            const float *z;
            ck_assert_int_eq(sdc_ti_data_latent(t->data, t->p, j % t->data->n, (j / t->data->n) % 2, &z, &err), SDC_OK);
            memcpy(mb[m].lat + 256 * k, z, sizeof(float) * 256);
            memcpy(mb[m].ids + 77 * k, t->prompt_ids[j % SDC_TI_N_TEMPLATES], sizeof(int32_t) * 77);
            mb[m].ts[k] = (int32_t)((2 * j + 1) * 1000 / (8 * n_mb));
        }
        sdc_rng_randn(&g, mb[m].noise, 4 * 256);
        b[m] = (sdc_ti_batch){.batch = 4, .h = 8, .w = 8, .ids = mb[m].ids, .latents = mb[m].lat,
                              .noise = mb[m].noise, .timesteps = mb[m].ts};
    }
}

/* The mean loss of vectors v on the batches. */
static float loss_on(sdc_ti_trainer *t, const float *v, const sdc_ti_batch *b, int n_mb) {
    sdc_err err = {0};
    sdc_ti_model m = {.clip = &t->p->clip, .unet = &t->p->unet, .alphas_cumprod = t->alphas_cumprod};
    double sum = 0;
    for (int i = 0; i < n_mb; i++) {
        sdc_exec ex = sdc_exec_begin(t->p->be, t->p->arena, &err);
        float l;
        ck_assert_msg(sdc_ti_loss(&ex, &m, v, 1, &b[i], &l) == SDC_OK, "%s", err.msg);
        sum += l;
    }
    return (float)(sum / n_mb);
}

enum { CONCEPT_MB = 2, CONCEPT_STEPS = 40 };

/* A token ("<tok>", from "cat") trained for CONCEPT_STEPS updates on the
 * fixed draws of folder dir; its vectors into v, the draws into b. */
static sdc_ti_trainer *train_on(sdc_pipeline *p, sdc_ti_data *d, const char *dir, fixed_mb *mb, sdc_ti_batch *b,
                                float *v) {
    sdc_err err = {0};
    ck_assert_msg(sdc_ti_data_scan(dir, 64, 0, d, &err) == SDC_OK, "%s", err.msg);
    sdc_ti_config c = {.token = "<tok>", .init_ids = {2368}, .num_vectors = 1, .steps = CONCEPT_STEPS,
                       .batch = 4, .accum = CONCEPT_MB, .lr = 0.01};
    sdc_ti_trainer *t;
    ck_assert_msg(sdc_ti_trainer_create(p, &c, d, &t, &err) == SDC_OK, "%s", err.msg);
    fixed_draws(t, mb, b, CONCEPT_MB);
    for (int s = 0; s < CONCEPT_STEPS; s++)
        ck_assert_msg(sdc_ti_trainer_update(t, b, CONCEPT_MB, &err) == SDC_OK, "%s", err.msg);
    memcpy(v, t->emb, sizeof *v * 8);
    return t;
}

/* Planted concepts: a token trained on images of red squares (from "cat")
 * lowers its training loss on them clearly below the initializer's, and
 * below what a token trained the same way on green stripes reaches on the
 * squares: it learned the squares, not just a better word. img2img from the
 * squares with it (DA-Fusion's use) is measured and printed, not asserted
 * (see below). The draws are fixed (each update sees the same 8 samples), so
 * the check is deterministic: with the random tiny model a step's loss
 * varies by ~10% with its timestep, and a short seeded run's token effect
 * (~1%) drowns in that (measured: 80 seeded steps left the squares token
 * +0.4% on fixed draws). */
START_TEST(train_planted_concept_is_learned) {
    const char *dir = test_tmpdir();
    char model[800], sq[800], st[800];
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(sq, sizeof sq, "%s/squares", dir);
    snprintf(st, sizeof st, "%s/stripes", dir);
    make_concept_model(model);
    make_pattern(sq, 0, 4);
    make_pattern(st, 1, 4);
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_pipeline *p = sdc_pipeline_open(model, VOCAB, be, &err);
    ck_assert_msg(p, "%s", err.msg);
    sdc_ti_data d_sq, d_st;
    fixed_mb mb_sq[CONCEPT_MB], mb_st[CONCEPT_MB];
    sdc_ti_batch b_sq[CONCEPT_MB], b_st[CONCEPT_MB];
    float v_sq[8], v_st[8];
    double t0 = now_s();
    sdc_ti_trainer *t_sq = train_on(p, &d_sq, sq, mb_sq, b_sq, v_sq);
    sdc_ti_trainer *t_st = train_on(p, &d_st, st, mb_st, b_st, v_st);
    float init = loss_on(t_sq, t_sq->init, b_sq, CONCEPT_MB), own = loss_on(t_sq, v_sq, b_sq, CONCEPT_MB);
    float other = loss_on(t_sq, v_st, b_sq, CONCEPT_MB);
    float st_own = loss_on(t_st, v_st, b_st, CONCEPT_MB), st_init = loss_on(t_st, t_st->init, b_st, CONCEPT_MB);
    printf("train: planted squares, %d updates (%.0f s): their loss with the initializer %.5f, the squares token "
           "%.5f (%+.2f%%), the stripes token %.5f (%+.2f%%); stripes: initializer %.5f, stripes token %.5f\n",
           CONCEPT_STEPS, now_s() - t0, init, own, 100 * (own / init - 1), other, 100 * (other / init - 1), st_init, st_own);
    fflush(stdout);
    double g_init = img2img_distance(p, &d_sq, "<tok>", NULL), g_sq = img2img_distance(p, &d_sq, "<tok>", v_sq);
    double g_st = img2img_distance(p, &d_sq, "<tok>", v_st);
    printf("train: img2img from the squares (strength 0.5): latents' distance to them with the initializer %.5f, "
           "the squares token %.5f (%+.2f%%), the stripes token %.5f (%+.2f%%)\n", g_init, g_sq,
           100 * (g_sq / g_init - 1), g_st, 100 * (g_st / g_init - 1));
    fflush(stdout);
    /* Measured: squares token -1.50% on the squares, the stripes token -0.08%
     * there, stripes token -0.89% on the stripes. Not asserted: img2img
     * closeness. Over 12 settings (keys x2-x16, outputs x6-x48, lr 3e-4 to
     * 1e-2, 25-80 updates, 2-16 fixed micro-batches, 2-8 seeds, 1-4 DDIM
     * steps) the squares token's img2img latents landed between -2.1% and
     * +0.9% from the initializer's (this setting: -2.08%), and the stripes
     * token's as close or closer about half the time: what this random model generates barely
     * follows its text. An earlier assertion of -0.5% passed with the
     * finite-difference gradient by chance (the stripes token was closer
     * still). Issue 15's generation criterion needs a model that listens to
     * its prompt. */
    ck_assert_msg(own < 0.99f * init, "the squares token's loss %.5f is not clearly below the initializer's %.5f",
                  own, init);
    ck_assert_msg(own < other - 0.5f * (init - own), "the squares token (%.5f) is no better on squares than the "
                  "stripes token (%.5f)", own, other);
    ck_assert_msg(st_own < 0.995f * st_init, "the stripes token did not learn its pattern either");
    sdc_ti_trainer_free(t_sq);
    sdc_ti_trainer_free(t_st);
    sdc_ti_data_free(&d_sq);
    sdc_ti_data_free(&d_st);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
}
END_TEST

/* ---------------------------------------------------------------- driver */

/* An ImageFolder root/<c>/img<k>.png: classes "red square" (with a space)
 * and "stripes", two images each. */
static void make_folder(const char *root) {
    const char *cls[] = {"red square", "stripes"};
    char path[1200];
    ck_assert_int_eq(mkdir(root, 0755), 0);
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/%s", root, cls[c]);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        for (int k = 0; k < 2; k++) {
            uint8_t rgb[64 * 64 * 3];
            for (int i = 0; i < 64 * 64; i++) {
                int x = i % 64, y = i / 64;
                bool on = c == 0 ? (x > 16 + 4 * k && x < 48 && y > 16 && y < 48) : ((y + 3 * k) / 4) % 2;
                rgb[3 * i] = on && c == 0 ? 230 : 20;
                rgb[3 * i + 1] = on && c == 1 ? 200 : 30;
                rgb[3 * i + 2] = c == 0 ? 140 : 10;
            }
            snprintf(path, sizeof path, "%s/%s/img%d.png", root, cls[c], k);
            sdc_err err = {0};
            ck_assert_msg(sdc_image_save_png(path, rgb, 64, 64, NULL, &err) == SDC_OK, "%s", err.msg);
        }
    }
}

static cJSON *read_json(const char *path) {
    size_t n;
    char *b = (char *)tu_slurp(path, &n);
    ck_assert_msg(b, "%s missing", path);
    cJSON *j = cJSON_Parse(b);
    free(b);
    ck_assert_msg(j, "%s: not JSON", path);
    return j;
}

#define AUG_TRAIN "augment '%s' --model " FIX "tiny/diffusers --vocab " VOCAB " --method textinv --train " \
                  "--train-steps 3 --train-batch 1 --train-eval-samples 2 --per-class 2 --size 64 --steps 2 -q " \
                  "--out '%s'"

/* augment --method textinv --train: each class's token is learned into
 * OUT/<class>/.textinv/, every manifest line records its file, hash, steps
 * and losses, a rerun changes nothing, and two class shards merged equal the
 * whole run. */
START_TEST(augment_train_learns_each_class_then_generates) {
    const char *dir = test_tmpdir();
    char data[800], whole[800], sh[800], path[1400];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(whole, sizeof whole, "%s/whole", dir);
    snprintf(sh, sizeof sh, "%s/sharded", dir);
    make_folder(data);
    const cli_result *r = cli_run(AUG_TRAIN, data, whole);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(path, sizeof path, "%s/manifest.jsonl", whole);
    size_t n;
    char *m = (char *)tu_slurp(path, &n);
    ck_assert(m != NULL);
    int lines = 0;
    for (char *line = m, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
        *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        ck_assert(j != NULL);
        const char *cls = cJSON_GetObjectItem(j, "class")->valuestring;
        const char *tok = cJSON_GetObjectItem(j, "token")->valuestring;
        const char *prompt = cJSON_GetObjectItem(j, "prompt")->valuestring;
        const char *file = cJSON_GetObjectItem(j, "token_file")->valuestring;
        const char *sha = cJSON_GetObjectItem(j, "token_sha256")->valuestring;
        ck_assert_msg(strstr(prompt, tok), "prompt '%s' lacks the token %s", prompt, tok);
        ck_assert_str_eq(tok, !strcmp(cls, "red square") ? "<red-square>" : "<stripes>");
        ck_assert_int_eq(cJSON_GetObjectItem(j, "token_steps")->valueint, 3);
        ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "token_loss")));
        char fp[1600], have[65];
        snprintf(fp, sizeof fp, "%s/%s", whole, file);
        sdc_err err = {0};
        ck_assert_msg(sdc_sha256_file(fp, have, &err) == SDC_OK, "%s", err.msg);
        ck_assert_str_eq(have, sha);
        snprintf(fp, sizeof fp, "%s/%s/.textinv/train.json", whole, cls);
        cJSON *tj = read_json(fp);
        ck_assert_str_eq(cJSON_GetObjectItem(tj, "learned_embeds_sha256")->valuestring, sha);
        cJSON_Delete(tj);
        cJSON_Delete(j);
    }
    free(m);
    ck_assert_int_eq(lines, 4);
    /* A rerun: nothing to train, nothing to generate. */
    r = cli_run(AUG_TRAIN " --dry-run", data, whole);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = cli_run("augment '%s' --model " FIX "tiny/diffusers --vocab " VOCAB " --method textinv --train "
                "--train-steps 3 --train-batch 1 --train-eval-samples 2 --per-class 2 --size 64 --steps 2 --out '%s'",
                data, whole);
    ck_assert_msg(r->code == 0 && strstr(r->err, "0 generated, 4 already done") && !strstr(r->err, "training <"),
                  "%s", r->err);
    /* Class shards, then the merge: the whole run's files. */
    for (int k = 0; k < 2; k++) {
        r = cli_run(AUG_TRAIN " --shard %d/2", data, sh, k);
        ck_assert_msg(r->code == 0, "shard %d: %s", k, r->err);
        snprintf(path, sizeof path, "%s/%s/.textinv/train.json", sh, k == 0 ? "red square" : "stripes");
        ck_assert_msg(access(path, F_OK) == 0, "shard %d did not train its class", k);
        snprintf(path, sizeof path, "%s/%s/.textinv", sh, k == 0 ? "stripes" : "red square");
        ck_assert_msg(k == 1 || access(path, F_OK) != 0, "shard 0 trained the other shard's class");
    }
    r = cli_run("manifest merge --out '%s'", sh);
    ck_assert_msg(r->code == 0, "%s", r->err);
    const char *sub[] = {"red square", "stripes"};
    int files = 0;
    for (int c = 0; c < 2; c++) {
        char a[1400], b[1400];
        snprintf(a, sizeof a, "%s/%s", whole, sub[c]);
        snprintf(b, sizeof b, "%s/%s", sh, sub[c]);
        files += same_tree(a, b);
    }
    size_t la, lb;
    char pa[1400], pb[1400];
    snprintf(pa, sizeof pa, "%s/manifest.jsonl", whole);
    snprintf(pb, sizeof pb, "%s/manifest.jsonl", sh);
    uint8_t *x = tu_slurp(pa, &la), *y = tu_slurp(pb, &lb);
    ck_assert_msg(x && y && la == lb && !memcmp(x, y, la), "merged manifest differs from the whole run's");
    free(x), free(y);
    printf("train: augment --train: 2 classes, 4 images; class shards merged equal the whole run (%d files)\n", files);
}
END_TEST

Suite *suite_train(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, train_ten_steps_match_torch);
    tcase_add_test(tc, train_v_prediction_matches_torch);
    tcase_add_test(tc, adamw_retraces_torch_with_its_gradients);
    tcase_add_test(tc, train_kill_9_resumes_to_the_same_bytes);
    tcase_add_test(tc, train_nan_loss_keeps_the_last_good_checkpoint);
    tcase_add_test(tc, train_folder_refuses_other_settings_and_damage);
    tcase_add_test(tc, augment_train_learns_each_class_then_generates);
    suite_add_tcase(s, tc);
    TCase *planted = tcase_create("planted");
    tcase_set_timeout(planted, 600);
    tcase_add_test(planted, train_planted_concept_is_learned);
    suite_add_tcase(s, planted);
    return s;
}
