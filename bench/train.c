/* train.c — times one textual-inversion training step (sdc_ti_loss_grad:
 * text encoder and UNet forward, then the backward to the placeholder row,
 * with per-layer checkpointing) against one plain UNet forward at the same
 * size, on a checkpoint (use a full-size one from `sdc make-random`). Batch 1
 * by default, as diffusers' textual_inversion.py trains; medians of --reps
 * after a warm-up; FLOPs counted per op; peak RSS of the process so far.
 *
 *   build/bench_train --model sd15.safetensors [--size 256,512] [--batch 1]
 *       [--reps 2] [--profile] [--json F]
 *
 * The "at most 3x one UNet forward" goal of issue 15 is the step / forward
 * ratio printed per size. bench/train_compare.py runs this next to the same
 * step in PyTorch (bench/train_peer.py) and reads peak RSS per process. */
#include "bench_util.h"

#include "../src/cpu/cpu_features.h"
#include "../src/models/checkpoint.h"
#include "../src/pipeline/schedule.h"
#include "../src/train/textinv_grad.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *json_path;
    int sizes[8], n_sizes, batch, reps;
    bool profile;
} options;

static int usage(void) {
    fprintf(stderr, "usage: bench_train --model M [--size 256,512] [--batch 1] [--reps 2]\n"
                    "       [--profile] [--json FILE]\n");
    return 2;
}

static bool parse(int argc, char **argv, options *o) {
    *o = (options){.sizes = {256, 512}, .n_sizes = 2, .batch = 1, .reps = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--profile")) { o->profile = true; continue; }
        if (!v) return false;
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--json")) o->json_path = v;
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--reps")) o->reps = atoi(v);
        else if (!strcmp(a, "--size")) {
            o->n_sizes = 0;
            for (char *s = (char *)v; *s && o->n_sizes < 8;) {
                o->sizes[o->n_sizes++] = (int)strtol(s, &s, 10);
                if (*s == ',') s++;
                else if (*s) return false;
            }
        } else return false;
    }
    for (int i = 0; i < o->n_sizes; i++)
        if (o->sizes[i] < 64 || o->sizes[i] % 64) return false;
    return o->model && o->batch >= 1 && o->batch <= 8 && o->reps >= 1 && o->reps <= 50;
}

/* A fixed pseudo-random pattern in (-scale, scale), never zeros. */
static void pattern(float *x, size_t n, float scale, uint32_t s) {
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        x[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
}

/* Op kinds grouped as bench/models.c reports them, backward ops with their forward. */
static const char *group_of(int k) {
    switch (k) {
    case SDC_OP_CONV2D:
    case SDC_OP_CONV2D_BACKWARD: return "conv";
    case SDC_OP_ATTENTION:
    case SDC_OP_ATTENTION_BACKWARD: return "attention";
    case SDC_OP_LINEAR:
    case SDC_OP_LINEAR_BACKWARD: return "linear";
    case SDC_OP_GROUP_NORM:
    case SDC_OP_LAYER_NORM:
    case SDC_OP_GROUP_NORM_BACKWARD:
    case SDC_OP_LAYER_NORM_BACKWARD: return "norm";
    default: return "elementwise";
    }
}

static void print_profile(const sdc_exec *p, double wall) {
    for (int k = 0; k < SDC_OP_COUNT; k++)
        if (p->op_calls[k])
            printf("    %-20s %9.1f ms %5.1f%% (%lld calls, %s)\n", sdc_op_name(k),
                   1e3 * p->op_seconds[k], 100 * p->op_seconds[k] / wall,
                   (long long)p->op_calls[k], group_of(k));
}

typedef struct {
    sdc_backend *be;
    sdc_arena *arena;
    sdc_clip_text clip;
    sdc_unet unet;
    float ac[SDC_TRAIN_STEPS];
} env;

/* One size: the UNet forward and the step, each a warm-up then reps. */
static sdc_status run_size(env *e, const options *o, int size, cJSON *row, sdc_err *err) {
    int B = o->batch, h = size / 8, D = e->clip.cfg.width, V = e->clip.cfg.vocab;
    size_t nl = (size_t)B * 4 * h * h;
    float *lat = malloc(nl * sizeof *lat), *noise = malloc(nl * sizeof *noise);
    float *extra = malloc((size_t)D * sizeof *extra), *grad = malloc((size_t)D * sizeof *grad);
    int32_t *ids = malloc((size_t)B * 77 * sizeof *ids), ts[8];
    if (!lat || !noise || !extra || !grad || !ids) {
        free(lat), free(noise), free(extra), free(grad), free(ids);
        return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    pattern(lat, nl, 1.0f, 1234567u);
    pattern(noise, nl, 1.7f, 7654321u);
    pattern(extra, (size_t)D, 0.02f, 55555u);
    /* "a photo of a <placeholder>", EOS-padded */
    static const int32_t prompt[] = {49406, 320, 1125, 539, 320, -1, 49407};
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < 77; i++) ids[b * 77 + i] = i < 7 ? prompt[i] : 49407;
        ids[b * 77 + 5] = V;
        ts[b] = 500 + 37 * b;
    }
    sdc_ti_batch batch = {.batch = B, .h = h, .w = h, .ids = ids, .latents = lat, .noise = noise,
                          .timesteps = ts};
    sdc_ti_model m = {.clip = &e->clip, .unet = &e->unet, .alphas_cumprod = e->ac};

    /* The UNet forward alone, on the same latents and the text states. */
    double tf[50], ts_[50], fwd_flops = 0, step_flops = 0, step_prof_wall = 0;
    sdc_exec prof = sdc_exec_begin(e->be, e->arena, err);
    sdc_exec ex = sdc_exec_begin(e->be, e->arena, err);
    float tv[8];
    for (int b = 0; b < B; b++) tv[b] = (float)ts[b];
    sdc_tensor ctx = sdc_clip_text_forward(&ex, &e->clip, ids, B, 0, extra, 1);
    sdc_tensor x = sdc_x_from_host(&ex, lat, SDC_F32, 4, (const int64_t[]){B, 4, h, h});
    sdc_tensor t = sdc_x_from_host(&ex, tv, SDC_F32, 1, (const int64_t[]){B});
    /* Forward and step alternate, so that load from elsewhere on the
     * machine hits both alike; r = -1 is the warm-up. */
    float loss = 0;
    for (int r = -1; r < o->reps && !ex.status; r++) {
        sdc_exec one = sdc_exec_begin(e->be, e->arena, err);
        double t0 = bench_now();
        sdc_tensor y = sdc_unet_forward(&one, &e->unet, x, t, ctx);
        if (r >= 0) tf[r] = bench_now() - t0;
        fwd_flops = one.flops;
        sdc_x_free(&one, &y);
        if ((ex.status = one.status)) break;
        one = sdc_exec_begin(e->be, e->arena, err);
        one.profile = o->profile && r == o->reps - 1;
        t0 = bench_now();
        sdc_ti_loss_grad(&one, &m, extra, 1, &batch, &loss, grad);
        double dt = bench_now() - t0;
        if (r >= 0) ts_[r] = dt;
        step_flops = one.flops;
        if (one.profile) prof = one, step_prof_wall = dt;
        ex.status = one.status;
    }
    sdc_x_free(&ex, &ctx), sdc_x_free(&ex, &x), sdc_x_free(&ex, &t);
    free(lat), free(noise), free(extra), free(grad), free(ids);
    if (ex.status) return ex.status;
    double f = bench_median(tf, o->reps), s = bench_median(ts_, o->reps);
    printf("%4d² batch %d: UNet forward %8.2f s (%6.0f GFLOP, %5.1f GFLOP/s)  step %8.2f s "
           "(%6.0f GFLOP, %5.1f GFLOP/s)  step/forward %.2f  loss %.4f  peak RSS %.0f MB\n",
           size, B, f, fwd_flops / 1e9, fwd_flops / f / 1e9, s, step_flops / 1e9,
           step_flops / s / 1e9, s / f, loss, bench_peak_rss() / 1e6);
    if (o->profile) print_profile(&prof, step_prof_wall);
    cJSON_AddNumberToObject(row, "size", size);
    cJSON_AddNumberToObject(row, "batch", B);
    cJSON_AddNumberToObject(row, "unet_forward_seconds", f);
    cJSON_AddNumberToObject(row, "unet_forward_gflop", fwd_flops / 1e9);
    cJSON_AddNumberToObject(row, "step_seconds", s);
    cJSON_AddNumberToObject(row, "step_gflop", step_flops / 1e9);
    cJSON_AddNumberToObject(row, "step_over_forward", s / f);
    cJSON_AddNumberToObject(row, "loss", loss);
    cJSON_AddNumberToObject(row, "peak_rss_bytes", bench_peak_rss());
    cJSON_AddNumberToObject(row, "arena_peak_bytes", (double)sdc_arena_peak(e->arena));
    return SDC_OK;
}

int main(int argc, char **argv) {
    sdc_blas_select(argv); /* OpenBLAS's best kernels here, as the sdc command gets */
    options o;
    if (!parse(argc, argv, &o)) return usage();
    sdc_err err = {0};
    env e;
    memset(&e, 0, sizeof e);
    sdc_schedule_alphas_cumprod(e.ac);
    double t0 = bench_now();
    e.be = sdc_cpu_backend_create(&err);
    e.arena = e.be ? sdc_arena_create(e.be, 0, &err) : NULL;
    sdc_checkpoint *ck = e.arena ? sdc_checkpoint_open(o.model, &err) : NULL;
    sdc_status s = !ck ? SDC_ERR_IO : sdc_clip_text_load(&e.clip, ck, e.be, &err);
    if (!s) s = sdc_unet_load(&e.unet, ck, e.be, &err);
    if (s) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    printf("bench_train: %s, %d threads, load %.1f s\n", o.model, sdc_get_threads(),
           bench_now() - t0);
    cJSON *root = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(root, "runs");
    cJSON_AddNumberToObject(root, "threads", sdc_get_threads());
    for (int i = 0; i < o.n_sizes && !s; i++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(rows, row);
        fflush(stdout);
        s = run_size(&e, &o, o.sizes[i], row, &err);
    }
    if (s) fprintf(stderr, "bench_train: %s\n", err.msg);
    if (!s && o.json_path) {
        char *text = cJSON_Print(root);
        FILE *f = fopen(o.json_path, "w");
        if (!f || !text || fputs(text, f) < 0) s = SDC_ERR_IO;
        if (f && fclose(f)) s = SDC_ERR_IO;
        if (s) fprintf(stderr, "bench_train: cannot write %s\n", o.json_path);
        free(text);
    }
    cJSON_Delete(root);
    sdc_clip_text_free(&e.clip);
    sdc_unet_free(&e.unet);
    sdc_checkpoint_close(ck);
    sdc_arena_destroy(e.arena);
    sdc_backend_destroy(e.be);
    return s ? 1 : 0;
}
