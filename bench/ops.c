/* ops.c — the op benchmark, driven by the op table of tests/op_cases.c: each
 * selected row is first checked against the double reference, then timed on
 * the CPU backend (warm-up, median of N), and reported against the sgemm
 * ceiling measured at startup in the same run.
 *
 *   bench_ops [--op NAME] [--case SUBSTR] [--shape AxBxCxD] [--reps N]
 *             [--no-check] [--all] [--json [FILE]] [--backend cpu|vulkan|vulkan:N]
 * With --backend vulkan the rows run on a Vulkan device (a real GPU for
 * figures; lavapipe only as a smoke test); the %ceil column stays relative
 * to the CPU's sgemm.
 *   bench_ops --sgemm [--json [FILE]]    only the ceiling: OpenBLAS sgemm 2048³,
 *                                        median of 3 after a warm-up
 */
#include "../tests/op_cases.h"
#include "bench_util.h"
#include "../src/cpu/cpu_features.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_shape(const char *s, op_opts *o) {
    o->ndim = 0;
    while (*s && o->ndim < 4) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0) return -1;
        o->shape[o->ndim++] = v;
        s = *end == 'x' ? end + 1 : end;
        if (*end && *end != 'x') return -1;
    }
    return *s ? -1 : 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_ops [--op NAME] [--case SUBSTR] [--shape AxBxCxD] [--reps N]\n"
            "                 [--no-check] [--all] [--json [FILE]] [--backend cpu|vulkan|vulkan:N]\n"
            "       bench_ops --sgemm [--json [FILE]]   only the sgemm 2048^3 ceiling\n"
            "  Rows come from tests/op_cases.c; edge rows (\"_edge_\") only with --all or\n"
            "  --case. --shape replaces the first source's shape (x, q, a, t or ids).\n");
}

int main(int argc, char **argv) {
    sdc_blas_select(argv); /* OpenBLAS's best kernels here, as the sdc command gets */
    const char *op_name = NULL, *sub = NULL, *json_path = NULL, *backend = "cpu";
    bool check = true, all = false, json = false, sgemm_only = false;
    int reps = 5;
    op_opts o = {.seed = op_seed()};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--op") && v) op_name = argv[++i];
        else if (!strcmp(a, "--case") && v) sub = argv[++i];
        else if (!strcmp(a, "--reps") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--backend") && v) backend = argv[++i];
        else if (!strcmp(a, "--shape") && v) {
            if (parse_shape(argv[++i], &o)) {
                fprintf(stderr, "bench_ops: bad --shape '%s' (want e.g. 2x320x64x64)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--no-check")) check = false;
        else if (!strcmp(a, "--all")) all = true;
        else if (!strcmp(a, "--sgemm")) sgemm_only = true;
        else if (!strcmp(a, "--json")) {
            json = true;
            if (v && strncmp(v, "--", 2)) json_path = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (sgemm_only) {
        int threads = sdc_get_threads(); /* also sets OpenBLAS's thread count */
        double gf = bench_sgemm_ceiling();
        fprintf(json && !json_path ? stderr : stdout,
                "bench_ops: sgemm 2048^3 %.1f GFLOP/s (OpenBLAS, %d threads)\n", gf, threads);
        if (!json) return gf > 0 ? 0 : 1;
        FILE *f = json_path ? fopen(json_path, "w") : stdout;
        if (!f || fprintf(f, "{\"sgemm_ceiling_gflops\": %.3f, \"threads\": %d}\n", gf, threads) < 0) {
            fprintf(stderr, "bench_ops: cannot write %s\n", json_path ? json_path : "stdout");
            return 1;
        }
        if (f != stdout) fclose(f);
        return gf > 0 ? 0 : 1;
    }

    sdc_err err = {0};
    sdc_backend *be = NULL;
    if (!strcmp(backend, "cpu")) be = sdc_cpu_backend_create(&err);
    else if (!strcmp(backend, "vulkan")) be = sdc_vulkan_backend_create(-1, &err);
    else if (!strncmp(backend, "vulkan:", 7) && backend[7] >= '0' && backend[7] <= '9')
        be = sdc_vulkan_backend_create(atoi(backend + 7), &err);
    else {
        usage();
        return 2;
    }
    if (!be) {
        fprintf(stderr, "bench_ops: %s\n", err.msg);
        return 1;
    }
    double ceil_gf = bench_sgemm_ceiling();
    FILE *out = json && !json_path ? stderr : stdout; /* the table goes where JSON does not */
    fprintf(out, "bench_ops: backend %s, %d threads, seed %llu, sgemm 2048^3 ceiling %.1f GFLOP/s\n",
            be->name, sdc_get_threads(), (unsigned long long)o.seed, ceil_gf);
    fprintf(out, "%-34s %-20s %9s %9s %8s %7s  %s\n", "case", "shape", "ms", "GFLOP/s", "GB/s",
            "%ceil", check ? "check (max_abs, rel_l2)" : "");

    cJSON *root = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(root, "cases");
    cJSON_AddStringToObject(root, "backend", be->name);
    cJSON_AddNumberToObject(root, "threads", sdc_get_threads());
    cJSON_AddNumberToObject(root, "seed", (double)o.seed);
    cJSON_AddNumberToObject(root, "sgemm_ceiling_gflops", ceil_gf);
    double *t = malloc(sizeof(double) * (size_t)reps);
    int failed = 0, ran = 0;
    for (size_t i = 0; i < op_case_count && t; i++) {
        const op_case *c = &op_cases[i];
        if (op_name && strcmp(op_name, sdc_op_name(c->op.kind))) continue;
        if (sub ? !strstr(c->name, sub) : (!all && strstr(c->name, "_edge_"))) continue;
        ran++;
        op_inst in;
        op_error e = {0};
        bool pass = true;
        sdc_status s = op_inst_build(&in, c, &o, be, &err);
        if (!s) s = op_inst_exec(&in, &err); /* also the warm-up */
        if (!s && check && !(s = op_inst_check(&in, &e, &err))) {
            op_tol tol = op_case_tol(c);
            pass = e.rel_l2 <= tol.rel_l2 && e.max_abs <= tol.max_abs;
        }
        for (int r = 0; r < reps && !s; r++) {
            double t0 = bench_now();
            s = op_inst_exec(&in, &err);
            t[r] = bench_now() - t0;
        }
        char shape[96];
        op_inst_shape(&in, shape, sizeof shape);
        if (s) {
            fprintf(out, "%-34s %-20s %s: %s\n", c->name, shape, sdc_status_name(s), err.msg);
            failed++;
            op_inst_free(&in);
            continue;
        }
        double sec = bench_median(t, reps), flops = op_inst_flops(&in), bytes = op_inst_bytes(&in);
        bool cb = op_case_compute_bound(c->op.kind);
        double gf = flops / sec / 1e9, gb = bytes / sec / 1e9;
        char chk[96] = "";
        if (check)
            snprintf(chk, sizeof chk, "%.2g, %.2g %s", e.max_abs, e.rel_l2, pass ? "ok" : "FAIL");
        if (cb)
            fprintf(out, "%-34s %-20s %9.3f %9.1f %8.1f %6.1f%%  %s\n", c->name, shape, sec * 1e3,
                    gf, gb, 100 * gf / ceil_gf, chk);
        else
            fprintf(out, "%-34s %-20s %9.3f %9s %8.1f %7s  %s\n", c->name, shape, sec * 1e3, "-",
                    gb, "-", chk);
        failed += !pass;
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "case", c->name);
        cJSON_AddStringToObject(row, "op", sdc_op_name(c->op.kind));
        cJSON_AddStringToObject(row, "shape", shape);
        cJSON_AddNumberToObject(row, "ms", sec * 1e3);
        cJSON_AddNumberToObject(row, "flops", flops);
        cJSON_AddNumberToObject(row, "bytes", bytes);
        cJSON_AddBoolToObject(row, "compute_bound", cb);
        cJSON_AddNumberToObject(row, cb ? "gflops" : "gbps", cb ? gf : gb);
        if (cb) cJSON_AddNumberToObject(row, "fraction_of_sgemm", gf / ceil_gf);
        if (check) {
            cJSON_AddNumberToObject(row, "max_abs", e.max_abs);
            cJSON_AddNumberToObject(row, "rel_l2", e.rel_l2);
            cJSON_AddBoolToObject(row, "pass", pass);
        }
        cJSON_AddItemToArray(rows, row);
        op_inst_free(&in);
    }
    free(t);
    if (!ran) fprintf(stderr, "bench_ops: no row matches\n");
    if (json) {
        char *txt = cJSON_Print(root);
        FILE *f = json_path ? fopen(json_path, "w") : stdout;
        if (!f || !txt || fprintf(f, "%s\n", txt) < 0) {
            fprintf(stderr, "bench_ops: cannot write %s\n", json_path ? json_path : "stdout");
            failed++;
        }
        if (f && f != stdout) fclose(f);
        free(txt);
    }
    cJSON_Delete(root);
    sdc_backend_destroy(be);
    return failed || !ran ? 1 : 0;
}
