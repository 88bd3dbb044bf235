/* models.c — times SD 1.x components on a checkpoint (use a full-size one
 * from `sdc make-random`): median of N after a warm-up, FLOPs counted per op,
 * GFLOP/s, the fraction of the sgemm ceiling measured in the same run, peak
 * RSS, and with --profile each op kind's share of the time, also grouped as
 * conv / attention / linear / norm / elementwise (+ what no op accounts for).
 *
 *   build/bench_models --model sd15.safetensors [--component unet|vae-decode|
 *       vae-encode|text] [--latent 32,64] [--batch 2] [--reps 3] [--profile] [--json F]
 *
 * --serve: the worker mode of bench/compare. Reads commands from stdin, one a
 * line, and answers each with one JSON line on stdout:
 *
 *   COMPONENT LATENT BATCH [profile]   one forward (models load lazily, on
 *                                      first use; the answer says how long)
 *   quit                               exit (so does EOF)
 *
 * The answer: {"component", "latent", "batch", "seconds", "gflop", "load_seconds",
 * and with profile "op_seconds" {kind: s} and "group_seconds" {group: s}}. */
#include "bench_util.h"
#include "../src/cpu/cpu_features.h"

#include "../src/models/checkpoint.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *component, *json_path;
    int latents[8], n_latents, batch, reps;
    bool profile, serve;
} options;

static int usage(void) {
    fprintf(stderr, "usage: bench_models --model M [--component unet|vae-decode|vae-encode|text]\n"
                    "       [--latent 32,64] [--batch 2] [--reps 3] [--profile] [--json FILE]\n"
                    "       bench_models --model M --serve   (commands on stdin; see models.c)\n");
    return 2;
}

static bool parse(int argc, char **argv, options *o) {
    *o = (options){.component = "unet", .latents = {32, 64}, .n_latents = 2, .batch = 2, .reps = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--profile")) { o->profile = true; continue; }
        if (!strcmp(a, "--serve")) { o->serve = true; continue; }
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

typedef enum { C_UNET, C_VAE_DECODE, C_VAE_ENCODE, C_TEXT, C_COUNT } component;
static const char *const component_names[C_COUNT] = {"unet", "vae-decode", "vae-encode", "text"};

static int component_of(const char *name) {
    for (int c = 0; c < C_COUNT; c++)
        if (!strcmp(name, component_names[c])) return c;
    return -1;
}

typedef struct {
    sdc_backend *be;
    sdc_checkpoint *ck;
    sdc_clip_text clip;
    sdc_unet unet;
    sdc_vae vae;
    bool have_clip, have_unet, have_vae;
} models;

/* Loads what component c needs unless it is loaded already; *load_s gets the
 * time it took (0 when nothing was loaded). */
static sdc_status ensure_loaded(models *m, int c, double *load_s, sdc_err *err) {
    double t0 = bench_now();
    sdc_status s = SDC_OK;
    if (c == C_UNET && !m->have_unet) {
        if (!(s = sdc_unet_load(&m->unet, m->ck, m->be, err))) m->have_unet = true;
    } else if (c == C_TEXT && !m->have_clip) {
        if (!(s = sdc_clip_text_load(&m->clip, m->ck, m->be, err))) m->have_clip = true;
    } else if ((c == C_VAE_DECODE || c == C_VAE_ENCODE) && !m->have_vae) {
        if (!(s = sdc_vae_load(&m->vae, m->ck, m->be, err))) m->have_vae = true;
    }
    *load_s = bench_now() - t0;
    return s;
}

/* The inputs of one forward, made before the clock starts. */
typedef struct {
    sdc_tensor *a, *b, *c;
    int32_t *ids;
} inputs;

static bool make_inputs(inputs *in, const models *m, int c, int64_t B, int n) {
    memset(in, 0, sizeof *in);
    switch (c) {
    case C_UNET:
        in->a = pattern(4, (const int64_t[]){B, 4, n, n}, 1.0f);
        in->b = pattern(1, (const int64_t[]){B}, 1.0f);
        in->c = pattern(3, (const int64_t[]){B, 77, m->unet.cfg.context_dim}, 1.0f);
        if (!in->a || !in->b || !in->c) return false;
        for (int64_t i = 0; i < B; i++) ((float *)in->b->data)[i] = 500.0f + (float)i;
        return true;
    case C_VAE_DECODE: return (in->a = pattern(4, (const int64_t[]){B, 4, n, n}, 3.0f)) != NULL;
    case C_VAE_ENCODE:
        return (in->a = pattern(4, (const int64_t[]){B, 3, 8 * n, 8 * n}, 1.0f)) != NULL;
    default:
        if (!(in->ids = malloc(sizeof *in->ids * (size_t)B * 77))) return false;
        for (int64_t i = 0; i < B * 77; i++) in->ids[i] = (int32_t)((i * 7919) % 49406);
        return true;
    }
}

static void free_inputs(inputs *in) {
    sdc_tensor_free(in->a), sdc_tensor_free(in->b), sdc_tensor_free(in->c);
    free(in->ids);
}

/* One forward of component c; returns its status. */
static sdc_status run_once(sdc_exec *ex, models *m, int c, int64_t B, const inputs *in) {
    switch (c) {
    case C_UNET: {
        sdc_tensor y = sdc_unet_forward(ex, &m->unet, *in->a, *in->b, *in->c);
        sdc_x_free(ex, &y);
        break;
    }
    case C_VAE_DECODE: {
        sdc_tensor y = sdc_vae_decode(ex, &m->vae, *in->a);
        sdc_x_free(ex, &y);
        break;
    }
    case C_VAE_ENCODE: {
        sdc_tensor mean, logvar;
        sdc_vae_encode(ex, &m->vae, *in->a, &mean, &logvar);
        sdc_x_free(ex, &mean), sdc_x_free(ex, &logvar);
        break;
    }
    default: {
        sdc_tensor y = sdc_clip_text_forward(ex, &m->clip, in->ids, (int)B, 0, NULL, 0);
        sdc_x_free(ex, &y);
    }
    }
    return ex->status;
}

/* Op kinds grouped the way the per-op share table reports them. */
enum { G_CONV, G_ATTENTION, G_LINEAR, G_NORM, G_ELEMENTWISE, G_COUNT };
static const char *const group_names[G_COUNT] = {"conv", "attention", "linear", "norm",
                                                 "elementwise"};

static int group_of(int kind) {
    switch (kind) {
    case SDC_OP_CONV2D: return G_CONV;
    case SDC_OP_ATTENTION:
    case SDC_OP_SOFTMAX: return G_ATTENTION;
    case SDC_OP_LINEAR: return G_LINEAR;
    case SDC_OP_GROUP_NORM:
    case SDC_OP_LAYER_NORM: return G_NORM;
    default: return G_ELEMENTWISE; /* activations, add/mul, upsample, concat, convert, ... */
    }
}

/* Adds op_seconds / group_seconds (and "other": wall time no op accounts for)
 * to obj; prints the table when print is set. */
static void report_profile(const sdc_exec *prof, double wall, cJSON *obj, bool print) {
    double total = 0, group[G_COUNT] = {0};
    cJSON *ops = cJSON_AddObjectToObject(obj, "op_seconds");
    for (int k = 0; k < SDC_OP_COUNT; k++) {
        if (!prof->op_calls[k]) continue;
        total += prof->op_seconds[k];
        group[group_of(k)] += prof->op_seconds[k];
        cJSON_AddNumberToObject(ops, sdc_op_name(k), prof->op_seconds[k]);
    }
    double other = wall > total ? wall - total : 0;
    cJSON *groups = cJSON_AddObjectToObject(obj, "group_seconds");
    for (int g = 0; g < G_COUNT; g++) cJSON_AddNumberToObject(groups, group_names[g], group[g]);
    cJSON_AddNumberToObject(groups, "other", other);
    if (!print) return;
    for (int k = 0; k < SDC_OP_COUNT; k++)
        if (prof->op_calls[k])
            printf("    %-20s %8.1f ms %5.1f%% (%lld calls)\n", sdc_op_name(k),
                   1e3 * prof->op_seconds[k], 100 * prof->op_seconds[k] / wall,
                   (long long)prof->op_calls[k]);
    printf("    share of the step:");
    for (int g = 0; g < G_COUNT; g++) printf(" %s %.1f%%,", group_names[g], 100 * group[g] / wall);
    printf(" other %.1f%%\n", 100 * other / wall);
}

/* --serve: one command a line on stdin, one JSON line on stdout. */
static int serve(models *m, sdc_arena *arena) {
    char line[256];
    sdc_err err = {0};
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        char name[32] = "", flag[32] = "";
        int n = 0, B = 0;
        int got = sscanf(line, "%31s %d %d %31s", name, &n, &B, flag);
        if (got >= 1 && !strcmp(name, "quit")) break;
        cJSON *out = cJSON_CreateObject();
        int c = got >= 3 ? component_of(name) : -1;
        inputs in = {0};
        double load_s = 0;
        sdc_status s = SDC_OK;
        if (c < 0 || n < 1 || n > 512 || B < 1 || B > 16) {
            cJSON_AddStringToObject(out, "error", "bad command (want: COMPONENT LATENT BATCH [profile])");
        } else if ((s = ensure_loaded(m, c, &load_s, &err))) {
            cJSON_AddStringToObject(out, "error", err.msg);
        } else if (!make_inputs(&in, m, c, B, n)) {
            cJSON_AddStringToObject(out, "error", "out of memory");
        } else {
            sdc_exec ex = sdc_exec_begin(m->be, arena, &err);
            ex.profile = !strcmp(flag, "profile");
            double t0 = bench_now();
            s = run_once(&ex, m, c, B, &in);
            double sec = bench_now() - t0;
            cJSON_AddStringToObject(out, "component", name);
            cJSON_AddNumberToObject(out, "latent", n);
            cJSON_AddNumberToObject(out, "batch", B);
            cJSON_AddNumberToObject(out, "load_seconds", load_s);
            if (s) {
                cJSON_AddStringToObject(out, "error", err.msg);
            } else {
                cJSON_AddNumberToObject(out, "seconds", sec);
                cJSON_AddNumberToObject(out, "gflop", ex.flops / 1e9);
                cJSON_AddNumberToObject(out, "threads", sdc_get_threads());
                if (ex.profile) report_profile(&ex, sec, out, false);
            }
        }
        free_inputs(&in);
        char *text = cJSON_PrintUnformatted(out);
        printf("%s\n", text ? text : "{\"error\":\"out of memory\"}");
        free(text);
        cJSON_Delete(out);
    }
    return 0;
}

int main(int argc, char **argv) {
    sdc_blas_select(argv); /* OpenBLAS's best kernels here, as the sdc command gets */
    options o;
    if (!parse(argc, argv, &o)) return usage();
    int c = component_of(o.component);
    if (c < 0) return usage();
    sdc_err err = {0};
    models m;
    memset(&m, 0, sizeof m);
    m.be = sdc_cpu_backend_create(&err);
    sdc_arena *arena = m.be ? sdc_arena_create(m.be, 0, &err) : NULL;
    double t0 = bench_now(), load_s = 0;
    m.ck = arena ? sdc_checkpoint_open(o.model, &err) : NULL;
    sdc_status s = !m.ck ? SDC_ERR_IO : o.serve ? SDC_OK : ensure_loaded(&m, c, &load_s, &err);
    if (s) {
        fprintf(stderr, "bench_models: %s\n", err.msg);
        return 1;
    }
    if (o.serve) {
        int rc = serve(&m, arena);
        if (m.have_unet) sdc_unet_free(&m.unet);
        if (m.have_vae) sdc_vae_free(&m.vae);
        if (m.have_clip) sdc_clip_text_free(&m.clip);
        sdc_checkpoint_close(m.ck);
        sdc_arena_destroy(arena);
        sdc_backend_destroy(m.be);
        return rc;
    }
    load_s = bench_now() - t0;
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
        double times[100], flops = 0, prof_wall = 0;
        sdc_exec prof = sdc_exec_begin(m.be, arena, &err);
        inputs in;
        if (!make_inputs(&in, &m, c, o.batch, n)) {
            s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
            free_inputs(&in);
            break;
        }
        for (int r = -1; r < o.reps && !s; r++) { /* r = -1 is the warm-up */
            sdc_exec ex = sdc_exec_begin(m.be, arena, &err);
            ex.profile = o.profile && r == o.reps - 1;
            double t = bench_now();
            s = run_once(&ex, &m, c, o.batch, &in);
            double dt = bench_now() - t;
            if (r >= 0) times[r] = dt;
            flops = ex.flops;
            if (ex.profile) prof = ex, prof_wall = dt;
        }
        free_inputs(&in);
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
            cJSON_AddNumberToObject(row, "profiled_seconds", prof_wall);
            report_profile(&prof, prof_wall, row, true);
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
    if (m.have_unet) sdc_unet_free(&m.unet);
    if (m.have_vae) sdc_vae_free(&m.vae);
    if (m.have_clip) sdc_clip_text_free(&m.clip);
    sdc_checkpoint_close(m.ck);
    sdc_arena_destroy(arena);
    sdc_backend_destroy(m.be);
    return s ? 1 : 0;
}
