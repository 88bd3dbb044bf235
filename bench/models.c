/* models.c — times SD 1.x components on a checkpoint (use a full-size one
 * from `sdc make-random`): median of N after a warm-up, FLOPs counted per op,
 * GFLOP/s, the fraction of the sgemm ceiling measured in the same run, peak
 * RSS, and with --profile each op kind's share of the time.
 *
 *   build/bench_models --model sd15.safetensors [--component unet|vae-decode|
 *       vae-encode|text] [--latent 32,64] [--batch 2] [--reps 3] [--profile] [--json F] */
#include "bench_util.h"

#include "../src/models/checkpoint.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *component, *json_path;
    int latents[8], n_latents, batch, reps;
    bool profile;
} options;

static int usage(void) {
    fprintf(stderr, "usage: bench_models --model M [--component unet|vae-decode|vae-encode|text]\n"
                    "       [--latent 32,64] [--batch 2] [--reps 3] [--profile] [--json FILE]\n");
    return 2;
}

static bool parse(int argc, char **argv, options *o) {
    *o = (options){.component = "unet", .latents = {32, 64}, .n_latents = 2, .batch = 2, .reps = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--profile")) { o->profile = true; continue; }
        if (!v) return false;
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--component")) o->component = v;
        else if (!strcmp(a, "--json")) o->json_path = v;
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--reps")) o->reps = atoi(v);
        else if (!strcmp(a, "--latent")) {
            o->n_latents = 0;
            for (char *s = (char *)v; *s && o->n_latents < 8;) {
                o->latents[o->n_latents++] = (int)strtol(s, &s, 10);
                if (*s == ',') s++;
                else if (*s) return false;
            }
        } else return false;
    }
    return o->model && o->batch >= 1 && o->reps >= 1 && o->reps <= 100 && o->n_latents >= 1;
}

/* Fills a host tensor with a fixed pseudo-random pattern (never zeros). */
static sdc_tensor *pattern(int ndim, const int64_t *shape, float scale) {
    sdc_err err = {0};
    sdc_tensor *t = sdc_tensor_new(SDC_F32, ndim, shape, &err);
    if (!t) return NULL;
    uint32_t s = 2463534242u;
    for (int64_t i = 0; i < sdc_tensor_numel(t); i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        ((float *)t->data)[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
    return t;
}

typedef struct {
    sdc_clip_text clip;
    sdc_unet unet;
    sdc_vae vae;
} models;

/* One forward of the component at latent size n; returns its status. */
static sdc_status run_once(sdc_exec *ex, const options *o, models *m, int n) {
    int64_t B = o->batch;
    sdc_status s = SDC_OK;
    if (!strcmp(o->component, "unet")) {
        sdc_tensor *x = pattern(4, (const int64_t[]){B, 4, n, n}, 1.0f);
        sdc_tensor *t = pattern(1, (const int64_t[]){B}, 1.0f);
        sdc_tensor *c = pattern(3, (const int64_t[]){B, 77, m->unet.cfg.context_dim}, 1.0f);
        for (int64_t i = 0; i < B; i++) ((float *)t->data)[i] = 500.0f + (float)i;
        sdc_tensor y = sdc_unet_forward(ex, &m->unet, *x, *t, *c);
        sdc_x_free(ex, &y);
        sdc_tensor_free(x), sdc_tensor_free(t), sdc_tensor_free(c);
    } else if (!strcmp(o->component, "vae-decode")) {
        sdc_tensor *z = pattern(4, (const int64_t[]){B, 4, n, n}, 3.0f);
        sdc_tensor y = sdc_vae_decode(ex, &m->vae, *z);
        sdc_x_free(ex, &y);
        sdc_tensor_free(z);
    } else if (!strcmp(o->component, "vae-encode")) {
        sdc_tensor *x = pattern(4, (const int64_t[]){B, 3, 8 * n, 8 * n}, 1.0f);
        sdc_tensor mean, logvar;
        sdc_vae_encode(ex, &m->vae, *x, &mean, &logvar);
        sdc_x_free(ex, &mean), sdc_x_free(ex, &logvar);
        sdc_tensor_free(x);
    } else {
        int32_t *ids = malloc(sizeof *ids * (size_t)B * 77);
        for (int64_t i = 0; i < B * 77; i++) ids[i] = (int32_t)((i * 7919) % 49406);
        sdc_tensor y = sdc_clip_text_forward(ex, &m->clip, ids, (int)B, 0, NULL, 0);
        sdc_x_free(ex, &y);
        free(ids);
    }
    if (!s) s = ex->status;
    return s;
}

int main(int argc, char **argv) {
    options o;
    if (!parse(argc, argv, &o)) return usage();
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_arena *arena = be ? sdc_arena_create(be, 0, &err) : NULL;
    double t0 = bench_now();
    sdc_checkpoint *ck = arena ? sdc_checkpoint_open(o.model, &err) : NULL;
    models m;
    memset(&m, 0, sizeof m);
    bool is_unet = !strcmp(o.component, "unet"), is_text = !strcmp(o.component, "text");
    sdc_status s = !ck ? SDC_ERR_IO
                   : is_unet ? sdc_unet_load(&m.unet, ck, be, &err)
                   : is_text ? sdc_clip_text_load(&m.clip, ck, be, &err)
                             : sdc_vae_load(&m.vae, ck, be, &err);
    if (s) {
        fprintf(stderr, "bench_models: %s\n", err.msg);
        return 1;
    }
    double load_s = bench_now() - t0;
    double ceiling = bench_sgemm_ceiling();
    printf("bench_models: %s on %s, %d threads, batch %d, load %.2f s, sgemm 2048^3 %.1f GFLOP/s\n",
           o.component, o.model, sdc_get_threads(), o.batch, load_s, ceiling);
    printf("%-8s %10s %10s %10s %9s %10s\n", "latent", "ms", "GFLOP", "GFLOP/s", "of sgemm",
           "peak RSS");
    cJSON *root = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(root, "runs");
    cJSON_AddStringToObject(root, "component", o.component);
    cJSON_AddNumberToObject(root, "threads", sdc_get_threads());
    cJSON_AddNumberToObject(root, "batch", o.batch);
    cJSON_AddNumberToObject(root, "sgemm_ceiling_gflops", ceiling);
    cJSON_AddNumberToObject(root, "load_seconds", load_s);
    for (int li = 0; li < o.n_latents && !s; li++) {
        int n = o.latents[li];
        double times[100], flops = 0;
        sdc_exec prof = sdc_exec_begin(be, arena, &err);
        for (int r = -1; r < o.reps && !s; r++) { /* r = -1 is the warm-up */
            sdc_exec ex = sdc_exec_begin(be, arena, &err);
            ex.profile = o.profile && r == o.reps - 1;
            double t = bench_now();
            s = run_once(&ex, &o, &m, n);
            if (r >= 0) times[r] = bench_now() - t;
            flops = ex.flops;
            if (ex.profile) prof = ex;
        }
        if (s) break;
        double sec = bench_median(times, o.reps), gf = flops / sec / 1e9;
        printf("%3dx%-4d %10.1f %10.1f %10.1f %8.0f%% %8.0f MB\n", n, n, 1e3 * sec, flops / 1e9, gf,
               100 * gf / ceiling, bench_peak_rss() / 1e6);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "latent", n);
        cJSON_AddNumberToObject(row, "ms", 1e3 * sec);
        cJSON_AddNumberToObject(row, "gflop", flops / 1e9);
        cJSON_AddNumberToObject(row, "gflops", gf);
        cJSON_AddNumberToObject(row, "fraction_of_sgemm", gf / ceiling);
        cJSON_AddNumberToObject(row, "peak_rss_bytes", bench_peak_rss());
        if (o.profile) {
            cJSON *ops = cJSON_AddObjectToObject(row, "op_seconds");
            double total = 0;
            for (int k = 0; k < SDC_OP_COUNT; k++) total += prof.op_seconds[k];
            for (int k = 0; k < SDC_OP_COUNT; k++) {
                if (!prof.op_calls[k]) continue;
                printf("    %-20s %8.1f ms %5.1f%% (%lld calls)\n", sdc_op_name(k),
                       1e3 * prof.op_seconds[k], 100 * prof.op_seconds[k] / total,
                       (long long)prof.op_calls[k]);
                cJSON_AddNumberToObject(ops, sdc_op_name(k), prof.op_seconds[k]);
            }
        }
        cJSON_AddItemToArray(rows, row);
    }
    if (s) fprintf(stderr, "bench_models: %s\n", err.msg);
    if (o.json_path && !s) {
        char *text = cJSON_Print(root);
        FILE *f = fopen(o.json_path, "w");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0) s = SDC_ERR_IO;
        free(text);
    }
    cJSON_Delete(root);
    sdc_unet_free(&m.unet);
    sdc_vae_free(&m.vae);
    sdc_clip_text_free(&m.clip);
    sdc_checkpoint_close(ck);
    sdc_arena_destroy(arena);
    sdc_backend_destroy(be);
    return s ? 1 : 0;
}
