/* cuda.c — the CUDA benchmark. Per op: the rows of the op table
 * (tests/op_cases.c) at SD shapes, each first checked against the double
 * reference, then timed with CUDA events (a warm-up, median of N), reported
 * as TFLOP/s (conv, linear, attention) or GB/s (the rest) and as a fraction
 * of ceilings measured in the same run: an 8192³ GEMM through the linear op,
 * and a streaming pass through the add op. Conv rows run with both conv
 * algorithms, attention rows with both attention kernels. With a full-size
 * checkpoint (sdc make-random): one UNet CFG step at 512² (batch 2), eager
 * and replayed as a CUDA graph, a VAE decode at 512² (F32, the pipeline's
 * default, and F16), and with --image whole 512² txt2img runs through the
 * pipeline as it runs by default (F16 text encoder and UNet, graphs, F32
 * VAE; 50 DDIM steps, the peer's scheduler), each with its peak device memory.
 *
 *   bench_cuda [--op NAME] [--case SUBSTR] [--dtype f16|bf16|f32] [--reps N]
 *              [--no-check] [--no-ops] [--all] [--model M [--vae-dtype f32|f16|bf16]
 *              [--image] [--steps 50] [--batch 1,8] [--vocab F]] [--json [FILE]]
 *
 * Without a CUDA device it prints why and exits 77 (the "skipped" code of
 * automake test drivers); any failure exits 1. */
#include "sdc_cuda.h"
#include "../src/pipeline/pipeline.h"
#include "../tests/op_cases.h"
#include "bench_util.h"
#include "../src/cpu/cpu_features.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_SKIP 77

typedef struct options {
    const char *op, *sub, *json_path, *model, *vocab;
    sdc_dtype act, vae_act;
    int reps, steps, batches[8], n_batches;
    bool check, all, json, image, no_ops;
} options;

static void usage(void) {
    fprintf(stderr,
            "usage: bench_cuda [--op NAME] [--case SUBSTR] [--dtype f16|bf16|f32] [--reps N]\n"
            "                  [--no-check] [--no-ops] [--all] [--model M [--vae-dtype f32|f16|bf16]\n"
            "                  [--image] [--steps 50] [--batch 1,8] [--vocab F]] [--json [FILE]]\n"
            "  Rows come from tests/op_cases.c; edge rows (\"_edge_\") only with --all or\n"
            "  --case; --no-ops: none. --model (a full-size checkpoint, e.g. from sdc\n"
            "  make-random) adds a UNet CFG step and a VAE decode at 512^2; --image adds\n"
            "  whole txt2img runs.\n");
}

static bool parse_dtype(const char *s, sdc_dtype *out) {
    if (!strcmp(s, "f32")) *out = SDC_F32;
    else if (!strcmp(s, "f16")) *out = SDC_F16;
    else if (!strcmp(s, "bf16")) *out = SDC_BF16;
    else return false;
    return true;
}

static bool parse(int argc, char **argv, options *o) {
    *o = (options){.act = SDC_F16, .vae_act = SDC_F32, .reps = 10, .steps = 50,
                   .batches = {1, 8}, .n_batches = 2, .check = true,
                   .vocab = "weights/bpe_simple_vocab_16e6.txt.gz"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-check")) o->check = false;
        else if (!strcmp(a, "--no-ops")) o->no_ops = true;
        else if (!strcmp(a, "--all")) o->all = true;
        else if (!strcmp(a, "--image")) o->image = true;
        else if (!strcmp(a, "--json")) {
            o->json = true;
            if (v && strncmp(v, "--", 2)) o->json_path = argv[++i];
        } else if (!v) return false;
        else if (!strcmp(a, "--op")) o->op = argv[++i];
        else if (!strcmp(a, "--case")) o->sub = argv[++i];
        else if (!strcmp(a, "--model")) o->model = argv[++i];
        else if (!strcmp(a, "--vocab")) o->vocab = argv[++i];
        else if (!strcmp(a, "--reps")) o->reps = atoi(argv[++i]);
        else if (!strcmp(a, "--steps")) o->steps = atoi(argv[++i]);
        else if (!strcmp(a, "--dtype")) {
            if (!parse_dtype(argv[++i], &o->act)) return false;
        } else if (!strcmp(a, "--vae-dtype")) {
            if (!parse_dtype(argv[++i], &o->vae_act)) return false;
        } else if (!strcmp(a, "--batch")) {
            o->n_batches = 0;
            for (char *s = argv[++i]; *s && o->n_batches < 8;) {
                o->batches[o->n_batches++] = (int)strtol(s, &s, 10);
                if (*s == ',') s++;
                else if (*s) return false;
            }
        } else return false;
    }
    for (int i = 0; i < o->n_batches; i++)
        if (o->batches[i] < 1 || o->batches[i] > 64) return false;
    return o->reps >= 1 && o->reps <= 1000 && o->steps >= 1 && o->steps <= 1000 &&
           o->n_batches >= 1;
}

/* ---------------------------------------------------------------- timing */

/* Median ms of reps runs of op (after one warm-up), each between CUDA events. */
static sdc_status time_op(sdc_backend *be, const sdc_op *op, int reps, double *ms, sdc_err *err) {
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!t) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    sdc_status s = sdc_op_run(be, op, err);
    if (!s) s = be->synchronize(be, err);
    for (int r = 0; r < reps && !s; r++) {
        if (!(s = sdc_cuda_timer_start(be, err)) && !(s = sdc_op_run(be, op, err)))
            s = sdc_cuda_timer_stop(be, &t[r], err);
    }
    if (!s) *ms = bench_median(t, reps);
    free(t);
    return s;
}

/* A device tensor of dtype dt filled with a fixed non-zero pattern. */
static sdc_status pattern_tensor(sdc_backend *be, sdc_dtype dt, int ndim, const int64_t *shape,
                                 float scale, sdc_tensor *t, sdc_err *err) {
    sdc_status s = sdc_tensor_init(t, dt, ndim, shape, NULL, err);
    if (s) return s;
    size_t n = (size_t)sdc_tensor_numel(t);
    float *h = malloc(sizeof *h * (n ? n : 1));
    void *c = malloc(sdc_tensor_nbytes(t) + 1);
    t->data = be->alloc(be, sdc_tensor_nbytes(t));
    t->device = be->device;
    if (!h || !c || !t->data) s = sdc_err_set(err, SDC_ERR_OOM, "cannot allocate %zu bytes", n);
    uint32_t x = 2463534242u;
    for (size_t i = 0; !s && i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        h[i] = scale * ((float)(x >> 8) / 8388608.0f - 1.0f);
    }
    if (!s) s = sdc_convert(c, dt, h, SDC_F32, n, err);
    if (!s) s = be->upload(be, t->data, c, sdc_tensor_nbytes(t), err);
    free(h);
    free(c);
    return s;
}

typedef struct ceilings {
    double gemm_tflops, copy_gbps;
} ceilings;

/* An 8192³ GEMM (linear op) and a streaming add of 2^27 elements. */
static sdc_status measure_ceilings(sdc_backend *be, sdc_dtype dt, int reps, ceilings *c,
                                   sdc_err *err) {
    const int64_t n = 8192, big = (int64_t)1 << 27;
    sdc_tensor x = {0}, w = {0}, y = {0}, a = {0}, b = {0};
    double ms = 0;
    sdc_status s = pattern_tensor(be, dt, 2, (const int64_t[]){n, n}, 1.0f, &x, err);
    if (!s) s = pattern_tensor(be, dt, 2, (const int64_t[]){n, n}, 0.01f, &w, err);
    if (!s) s = pattern_tensor(be, dt, 2, (const int64_t[]){n, n}, 0.0f, &y, err);
    sdc_op lin = {.kind = SDC_OP_LINEAR, .src = {&x, &w}, .dst = &y};
    if (!s) s = time_op(be, &lin, reps, &ms, err);
    if (!s) c->gemm_tflops = 2.0 * (double)n * n * n / (ms * 1e-3) / 1e12;
    be->free(be, x.data), be->free(be, w.data), be->free(be, y.data);
    if (!s) s = pattern_tensor(be, dt, 1, &big, 1.0f, &a, err);
    if (!s) s = pattern_tensor(be, dt, 1, (const int64_t[]){1}, 1.0f, &b, err);
    sdc_op add = {.kind = SDC_OP_ADD, .src = {&a, &b}, .dst = &a}; /* in place: read + write */
    if (!s) s = time_op(be, &add, reps, &ms, err);
    if (!s) c->copy_gbps = 2.0 * (double)big * (double)sdc_dtype_size(dt) / (ms * 1e-3) / 1e9;
    be->free(be, a.data), be->free(be, b.data);
    return s;
}

/* ---------------------------------------------------------------- ops */

typedef struct algo {
    sdc_cuda_conv_algo conv;
    sdc_cuda_attn_algo attn;
    const char *label;
} algo;

static int bench_ops(sdc_backend *be, const options *o, const ceilings *ceil, FILE *out,
                     cJSON *rows) {
    sdc_err err = {0};
    op_opts oo = {.seed = op_seed(), .act = o->act};
    int failed = 0, ran = 0;
    fprintf(out, "%-34s %-8s %-20s %9s %9s %8s %7s  %s\n", "case", "variant", "shape", "ms",
            "TFLOP/s", "GB/s", "%ceil", o->check ? "check (max_abs, rel_l2)" : "");
    for (size_t i = 0; i < op_case_count; i++) {
        const op_case *c = &op_cases[i];
        if (o->op && strcmp(o->op, sdc_op_name(c->op.kind))) continue;
        if (o->sub ? !strstr(c->name, o->sub) : (!o->all && strstr(c->name, "_edge_"))) continue;
        algo algos[2] = {{SDC_CUDA_CONV_IM2COL, SDC_CUDA_ATTN_AUTO, "default"}};
        int na = 1;
        bool half = o->act != SDC_F32;
        if (c->op.kind == SDC_OP_CONV2D && half)
            algos[na++] = (algo){SDC_CUDA_CONV_IMPLICIT, SDC_CUDA_ATTN_AUTO, "igemm"};
        if (c->op.kind == SDC_OP_ATTENTION)
            algos[na++] = (algo){SDC_CUDA_CONV_IM2COL, SDC_CUDA_ATTN_SIMPLE, "simple"};
        for (int ai = 0; ai < na; ai++) {
            ran++;
            op_inst in;
            memset(&in, 0, sizeof in);
            op_error e = {0};
            bool pass = true;
            double ms = 0;
            sdc_status s = sdc_cuda_set_algos(be, algos[ai].conv, algos[ai].attn, &err);
            if (!s) s = op_inst_build(&in, c, &oo, be, &err);
            if (!s) s = op_inst_exec(&in, &err);
            if (!s && o->check && !(s = op_inst_check(&in, &e, &err))) {
                /* The F32 table's bounds, or a loose 1e-2 for half precision:
                 * the test suite (tests/test_cuda.c) holds the real per-op bounds. */
                op_tol t = op_case_tol(c);
                if (half && c->op.kind != SDC_OP_CONVERT) t = (op_tol){1e-2, 1e-1};
                pass = e.rel_l2 <= t.rel_l2 && e.max_abs <= t.max_abs * (c->xscale > 1 ? c->xscale : 1);
            }
            if (!s) s = time_op(be, &in.op, o->reps, &ms, &err);
            char shape[96] = "?";
            op_inst_shape(&in, shape, sizeof shape);
            if (s) {
                fprintf(out, "%-34s %-8s %-20s %s: %s\n", c->name, algos[ai].label, shape,
                        sdc_status_name(s), err.msg);
                failed++;
                op_inst_free(&in);
                continue;
            }
            double flops = op_inst_flops(&in), bytes = op_inst_bytes(&in), sec = ms * 1e-3;
            bool cb = op_case_compute_bound(c->op.kind);
            double tf = flops / sec / 1e12, gb = bytes / sec / 1e9;
            double frac = cb ? tf / ceil->gemm_tflops : gb / ceil->copy_gbps;
            char chk[96] = "";
            if (o->check)
                snprintf(chk, sizeof chk, "%.2g, %.2g %s", e.max_abs, e.rel_l2, pass ? "ok" : "FAIL");
            if (cb)
                fprintf(out, "%-34s %-8s %-20s %9.4f %9.1f %8.1f %6.1f%%  %s\n", c->name,
                        algos[ai].label, shape, ms, tf, gb, 100 * frac, chk);
            else
                fprintf(out, "%-34s %-8s %-20s %9.4f %9s %8.1f %6.1f%%  %s\n", c->name,
                        algos[ai].label, shape, ms, "-", gb, 100 * frac, chk);
            failed += !pass;
            cJSON *row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "case", c->name);
            cJSON_AddStringToObject(row, "op", sdc_op_name(c->op.kind));
            cJSON_AddStringToObject(row, "variant", algos[ai].label);
            cJSON_AddStringToObject(row, "shape", shape);
            cJSON_AddNumberToObject(row, "ms", ms);
            cJSON_AddNumberToObject(row, "flops", flops);
            cJSON_AddNumberToObject(row, "bytes", bytes);
            cJSON_AddBoolToObject(row, "compute_bound", cb);
            cJSON_AddNumberToObject(row, cb ? "tflops" : "gbps", cb ? tf : gb);
            cJSON_AddNumberToObject(row, cb ? "fraction_of_gemm" : "fraction_of_copy", frac);
            if (o->check) {
                cJSON_AddNumberToObject(row, "max_abs", e.max_abs);
                cJSON_AddNumberToObject(row, "rel_l2", e.rel_l2);
                cJSON_AddBoolToObject(row, "pass", pass);
            }
            cJSON_AddItemToArray(rows, row);
            op_inst_free(&in);
        }
    }
    sdc_cuda_set_algos(be, SDC_CUDA_CONV_IM2COL, SDC_CUDA_ATTN_AUTO, &err);
    if (!ran) fprintf(stderr, "bench_cuda: no row matches\n");
    return failed + !ran;
}

/* ---------------------------------------------------------------- models */

static void add_run(cJSON *runs, const char *what, double ms, double flops, double peak,
                    const ceilings *ceil) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "what", what);
    cJSON_AddNumberToObject(r, "ms", ms);
    if (flops > 0) {
        cJSON_AddNumberToObject(r, "tflop", flops / 1e12);
        cJSON_AddNumberToObject(r, "tflops", flops / (ms * 1e-3) / 1e12);
        cJSON_AddNumberToObject(r, "fraction_of_gemm", flops / (ms * 1e-3) / 1e12 / ceil->gemm_tflops);
    }
    cJSON_AddNumberToObject(r, "peak_device_bytes", peak);
    cJSON_AddItemToArray(runs, r);
}

/* One forward (UNet CFG step or VAE decode) timed: warm-up, median of reps.
 * With graph (the UNet), the forward after the warm-up is recorded as a CUDA
 * graph and the replays are timed, as the pipeline runs its steps. */
static sdc_status time_forward(sdc_backend *be, sdc_arena *arena, bool unet, const sdc_unet *um,
                               const sdc_vae *vm, sdc_dtype act, bool graph, int reps, double *ms,
                               double *flops, double *peak, sdc_err *err) {
    sdc_exec ex = sdc_exec_begin(be, arena, err);
    ex.act = act;
    sdc_tensor x = {0}, t = {0}, c = {0};
    sdc_status s = SDC_OK;
    double *times = malloc(sizeof *times * (size_t)reps);
    if (!times) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    /* Inputs: a fixed pattern made on the host (never zeros). */
    int64_t B = unet ? 2 : 1, n = 64;
    size_t nx = (size_t)(B * 4 * n * n), nc = (size_t)(B * 77 * 768);
    float *h = malloc(sizeof *h * (nx + nc + 2));
    if (!h) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (size_t i = 0; !s && i < nx + nc; i++) h[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    if (!s) {
        h[nx + nc] = 500.0f, h[nx + nc + 1] = 500.0f;
        x = sdc_x_from_host(&ex, h, act, 4, (const int64_t[]){B, 4, n, n});
        if (unet) {
            t = sdc_x_from_host(&ex, h + nx + nc, SDC_F32, 1, (const int64_t[]){B});
            c = sdc_x_from_host(&ex, h + nx, act, 3, (const int64_t[]){B, 77, 768});
        }
        s = ex.status;
    }
    free(h);
    if (!s) s = sdc_cuda_reset_peak(be, err);
    sdc_cuda_graph *g = NULL;
    sdc_tensor gy = {0}; /* the graph's output stays allocated while it replays */
    for (int r = -1; r < reps && !s; r++) { /* r = -1: the warm-up (grows the arena) */
        if (graph && r == 0) {
            ex.flops = 0;
            if ((s = sdc_cuda_graph_begin(be, err))) break;
            gy = sdc_unet_forward(&ex, um, x, t, c);
            sdc_err end_err = {0};
            sdc_status se = sdc_cuda_graph_end(be, &g, &end_err);
            if ((s = ex.status)) break;
            if ((s = se)) {
                *err = end_err;
                break;
            }
            *flops = ex.flops;
        }
        if (!graph || r < 0) ex.flops = 0;
        if ((s = sdc_cuda_timer_start(be, err))) break;
        sdc_tensor y = {0};
        if (g) s = sdc_cuda_graph_launch(be, g, err);
        else y = unet ? sdc_unet_forward(&ex, um, x, t, c) : sdc_vae_decode(&ex, vm, x);
        sdc_x_free(&ex, &y);
        if (s || (s = ex.status)) break;
        double t_ms;
        if ((s = sdc_cuda_timer_stop(be, &t_ms, err))) break;
        if (r >= 0) times[r] = t_ms;
        if (!g) *flops = ex.flops;
    }
    sdc_cuda_graph_free(be, g);
    sdc_x_free(&ex, &gy);
    sdc_cuda_info info;
    if (!s && !(s = sdc_cuda_info_get(be, &info, err))) *peak = (double)info.peak_bytes;
    if (!s) *ms = bench_median(times, reps);
    free(times);
    sdc_x_free(&ex, &x), sdc_x_free(&ex, &t), sdc_x_free(&ex, &c);
    return s;
}

static int bench_models(sdc_backend *be, const options *o, const ceilings *ceil, FILE *out,
                        cJSON *runs) {
    sdc_err err = {0};
    sdc_checkpoint *ck = sdc_checkpoint_open(o->model, &err);
    sdc_arena *arena = ck ? sdc_arena_create(be, 0, &err) : NULL;
    if (!arena) {
        fprintf(stderr, "bench_cuda: %s\n", err.msg);
        sdc_checkpoint_close(ck);
        return 1;
    }
    int failed = 0;
    double ms = 0, flops = 0, peak = 0;
    int reps = o->reps < 5 ? o->reps : 5;
    sdc_unet unet;
    sdc_status s = sdc_unet_load(&unet, ck, be, &err);
    bool loaded = !s;
    for (int graph = 0; loaded && graph < 2; graph++) {
        s = time_forward(be, arena, true, &unet, NULL, o->act, graph, reps, &ms, &flops, &peak, &err);
        if (!s) {
            fprintf(out, "unet CFG step 512^2 (batch 2, %s, %s): %.2f ms, %.2f TFLOP, %.1f TFLOP/s "
                         "(%.1f%% of the GEMM ceiling), peak device memory %.2f GB\n",
                    sdc_dtype_name(o->act), graph ? "CUDA graph" : "eager", ms, flops / 1e12,
                    flops / (ms * 1e-3) / 1e12,
                    100 * flops / (ms * 1e-3) / 1e12 / ceil->gemm_tflops, peak / 1e9);
            add_run(runs, graph ? "unet_cfg_step_512_b2_graph" : "unet_cfg_step_512_b2", ms, flops,
                    peak, ceil);
        } else {
            fprintf(stderr, "bench_cuda: unet (%s): %s\n", graph ? "graph" : "eager", err.msg);
            failed++;
        }
    }
    if (loaded) sdc_unet_free(&unet);
    /* A fresh arena, so the VAE's peak is its own. */
    sdc_arena_destroy(arena);
    if (!(arena = sdc_arena_create(be, 0, &err))) {
        sdc_checkpoint_close(ck);
        return failed + 1;
    }
    sdc_vae vae;
    s = sdc_vae_load(&vae, ck, be, &err);
    loaded = !s;
    /* The pipeline's default (F32, or --vae-dtype), then F16 (what PyTorch runs). */
    sdc_dtype vae_acts[2] = {o->vae_act, SDC_F16};
    for (int i = 0; loaded && i < (o->vae_act == SDC_F16 ? 1 : 2); i++) {
        s = time_forward(be, arena, false, NULL, &vae, vae_acts[i], false, reps, &ms, &flops, &peak,
                         &err);
        if (!s) {
            fprintf(out, "vae decode 512^2 (%s): %.2f ms, %.2f TFLOP, %.1f TFLOP/s (%.1f%% of the "
                         "GEMM ceiling), peak device memory %.2f GB\n",
                    sdc_dtype_name(vae_acts[i]), ms, flops / 1e12, flops / (ms * 1e-3) / 1e12,
                    100 * flops / (ms * 1e-3) / 1e12 / ceil->gemm_tflops, peak / 1e9);
            add_run(runs, i ? "vae_decode_512_f16" : "vae_decode_512", ms, flops, peak, ceil);
        } else {
            fprintf(stderr, "bench_cuda: vae (%s): %s\n", sdc_dtype_name(vae_acts[i]), err.msg);
            failed++;
        }
    }
    if (loaded) sdc_vae_free(&vae);
    sdc_arena_destroy(arena);
    sdc_checkpoint_close(ck);
    if (!o->image) return failed;

    /* Whole images through the pipeline as it runs by default on CUDA. */
    sdc_pipeline *p = sdc_pipeline_open(o->model, o->vocab, be, &err);
    if (!p) {
        fprintf(stderr, "bench_cuda: %s\n", err.msg);
        return failed + 1;
    }
    /* Each batch: a short warm-up run (arena growth, cuBLAS and kernel
     * loading; the peer warms up too), then the timed run with the VAE at
     * the pipeline's default F32 and at F16 (what the peer runs). */
    for (int bi = 0; bi < o->n_batches && !s; bi++) {
        for (int vi = -1; vi < 2 && !s; vi++) {
            sdc_generate_opts g = {.prompt = "a photo of an astronaut riding a horse",
                                   .negative = "", .cfg = 7.5f, .seed = 42, .width = 512,
                                   .height = 512, .batch = o->batches[bi],
                                   .syntax = SDC_PROMPT_PLAIN};
            sdc_sampler_from_name("ddim", &g.sampler); /* the peer's scheduler: steps UNet calls */
            g.sampler.steps = vi < 0 ? 2 : o->steps;
            g.precision = o->act == SDC_F32 ? SDC_PRECISION_F32
                          : o->act == SDC_BF16 ? SDC_PRECISION_BF16 : SDC_PRECISION_F16;
            sdc_precision vae_def = o->vae_act == SDC_F16 ? SDC_PRECISION_F16
                                : o->vae_act == SDC_BF16 ? SDC_PRECISION_BF16 : SDC_PRECISION_F32;
            g.vae_precision = vi == 1 ? SDC_PRECISION_F16 : vae_def;
            if (vi == 1 && vae_def == SDC_PRECISION_F16) break;
            sdc_generate_result r;
            sdc_cuda_reset_peak(be, &err);
            double t0 = bench_now();
            s = sdc_generate(p, &g, &r, &err);
            double sec = bench_now() - t0;
            sdc_cuda_info info = {0};
            sdc_cuda_info_get(be, &info, &err);
            if (s) {
                fprintf(stderr, "bench_cuda: txt2img: %s\n", err.msg);
                failed++;
                break;
            }
            if (vi >= 0) {
                char what[80];
                snprintf(what, sizeof what, "txt2img_512_%dsteps_b%d%s", o->steps,
                         o->batches[bi], vi == 1 ? "_vae_f16" : "");
                fprintf(out, "txt2img 512^2, %d steps, batch %d (pipeline: %s text/UNet, %s VAE%s, "
                             "%d of %d UNet calls replayed as a CUDA graph%s%s): %.3f s, %.3f "
                             "s/image, peak device memory %.2f GB\n",
                        o->steps, o->batches[bi], sdc_dtype_name(r.act), sdc_dtype_name(r.vae_act),
                        r.vae_upcasts ? " (some redone at F32)" : "", r.graph_replays,
                        r.iterations, p->graph_note[0] ? "; " : "", p->graph_note, sec,
                        sec / o->batches[bi], (double)info.peak_bytes / 1e9);
                add_run(runs, what, sec * 1e3, 0, (double)info.peak_bytes, ceil);
            }
            sdc_generate_result_free(&r);
        }
    }
    sdc_pipeline_free(p);
    return failed;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    sdc_blas_select(argv); /* OpenBLAS's best kernels here, as the sdc command gets */
    options o;
    if (!parse(argc, argv, &o)) {
        usage();
        return 2;
    }
    sdc_err err = {0};
    sdc_backend *be = sdc_cuda_backend_create(0, &err);
    if (!be) {
        fprintf(o.json && !o.json_path ? stderr : stdout, "bench_cuda: SKIPPED — %s\n", err.msg);
        if (o.json) {
            FILE *f = o.json_path ? fopen(o.json_path, "w") : stdout;
            if (f) {
                fprintf(f, "{\"skipped\": true, \"reason\": ");
                cJSON *r = cJSON_CreateString(err.msg);
                char *txt = cJSON_PrintUnformatted(r);
                fprintf(f, "%s}\n", txt ? txt : "\"\"");
                free(txt);
                cJSON_Delete(r);
                if (f != stdout) fclose(f);
            }
        }
        return err.code == SDC_ERR_UNSUPPORTED ? EXIT_SKIP : 1;
    }
    sdc_cuda_info info;
    sdc_cuda_info_get(be, &info, &err);
    FILE *out = o.json && !o.json_path ? stderr : stdout; /* the table goes where JSON does not */
    ceilings ceil = {0};
    if (measure_ceilings(be, o.act, o.reps, &ceil, &err)) {
        fprintf(stderr, "bench_cuda: ceilings: %s\n", err.msg);
        sdc_backend_destroy(be);
        return 1;
    }
    fprintf(out, "bench_cuda: %s (sm_%d%d, %d SMs, %.1f GiB), activations %s; ceilings: "
                 "GEMM 8192^3 %.1f TFLOP/s, streaming %.0f GB/s\n",
            info.name, info.cc_major, info.cc_minor, info.sm_count,
            (double)info.total_bytes / (1 << 30), sdc_dtype_name(o.act), ceil.gemm_tflops,
            ceil.copy_gbps);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "device", info.name);
    cJSON_AddStringToObject(root, "dtype", sdc_dtype_name(o.act));
    cJSON_AddNumberToObject(root, "gemm_ceiling_tflops", ceil.gemm_tflops);
    cJSON_AddNumberToObject(root, "copy_ceiling_gbps", ceil.copy_gbps);
    cJSON_AddNumberToObject(root, "reps", o.reps);
    cJSON *cases = cJSON_AddArrayToObject(root, "cases");
    int failed = o.no_ops ? 0 : bench_ops(be, &o, &ceil, out, cases);
    if (o.model) failed += bench_models(be, &o, &ceil, out, cJSON_AddArrayToObject(root, "models"));
    if (o.json) {
        char *txt = cJSON_Print(root);
        FILE *f = o.json_path ? fopen(o.json_path, "w") : stdout;
        if (!f || !txt || fprintf(f, "%s\n", txt) < 0) {
            fprintf(stderr, "bench_cuda: cannot write %s\n", o.json_path ? o.json_path : "stdout");
            failed++;
        }
        if (f && f != stdout) fclose(f);
        free(txt);
    }
    cJSON_Delete(root);
    sdc_backend_destroy(be);
    return failed ? 1 : 0;
}
