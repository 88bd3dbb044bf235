/* probe.c — the linear probe's scale benchmark: multinomial logistic
 * regression (src/eval/logreg.h) on synthetic CLIP-like features, by
 * default 100k rows x 768 dimensions x 1000 classes (the bar: under
 * a minute on 2 cores). Prints the training time, L-BFGS iterations and
 * evaluations, GFLOP/s of the objective's two GEMMs (4 n k d FLOP per
 * evaluation) against the in-run sgemm ceiling, validation top-1, and the
 * peak RSS next to the memory the data and the optimizer need by formula.
 *
 *   build/bench_probe [--n 100000] [--classes 1000] [--dim 768] [--val 10000]
 *                     [--C 1] [--tol 1e-4] [--max-iter 1000] [--noise 3.0] */
#include "bench_util.h"
#include "../src/cpu/cpu_features.h"

#include "../src/eval/logreg.h"
#include "../src/eval/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct {
    long long n, val;
    int k, d, max_iter;
    double C, tol, noise;
} options;

static bool parse(int argc, char **argv, options *o) {
    *o = (options){.n = 100000, .val = 10000, .k = 1000, .d = 768, .max_iter = 1000, .C = 1.0,
                   .tol = logreg_defaults().tol, .noise = 3.0};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--n")) o->n = atoll(v);
        else if (!strcmp(a, "--val")) o->val = atoll(v);
        else if (!strcmp(a, "--classes")) o->k = atoi(v);
        else if (!strcmp(a, "--dim")) o->d = atoi(v);
        else if (!strcmp(a, "--max-iter")) o->max_iter = atoi(v);
        else if (!strcmp(a, "--C")) o->C = atof(v);
        else if (!strcmp(a, "--tol")) o->tol = atof(v);
        else if (!strcmp(a, "--noise")) o->noise = atof(v);
        else return false;
    }
    return o->n >= 2 && o->val >= 1 && o->k >= 2 && o->d >= 1 && o->C > 0;
}

static double gauss(eval_rng *r) {
    double u = ((double)(eval_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
    double v = (double)(eval_rng_next(r) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* Rows near their class's mean, all in a cone around a shared direction
 * (as CLIP embeddings are), L2-normalized; labels round robin. */
static void make_rows(float *x, int *y, long long n, const float *means, const float *common, int k,
                      int d, double noise, eval_rng *r) {
    for (long long i = 0; i < n; i++) {
        int c = (int)(i % k);
        double s = 0;
        float *row = x + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            row[j] = (float)(0.6 * means[(size_t)c * d + j] + 0.8 * common[j] + noise * gauss(r) / sqrt(d));
            s += (double)row[j] * row[j];
        }
        for (int j = 0; j < d; j++) row[j] = (float)(row[j] / sqrt(s));
        y[i] = c;
    }
}

int main(int argc, char **argv) {
    sdc_blas_select(argv); /* OpenBLAS's best kernels here, as the sdc command gets */
    options o;
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: bench_probe [--n 100000] [--classes 1000] [--dim 768] [--val 10000]\n"
                        "                   [--C 1] [--tol 1e-4] [--max-iter 1000] [--noise 3.0]\n");
        return 2;
    }
    int k = o.k, d = o.d;
    float *means = malloc(sizeof *means * (size_t)k * d), *common = malloc(sizeof *common * (size_t)d);
    float *x = malloc(sizeof *x * (size_t)o.n * d), *xv = malloc(sizeof *xv * (size_t)o.val * d);
    int *y = malloc(sizeof *y * (size_t)o.n), *yv = malloc(sizeof *yv * (size_t)o.val);
    int *pred = malloc(sizeof *pred * (size_t)o.val);
    if (!means || !common || !x || !xv || !y || !yv || !pred) {
        fprintf(stderr, "bench_probe: out of memory\n");
        return 1;
    }
    eval_rng r = eval_rng_seed(2024, 0);
    for (int c = 0; c <= k; c++) { /* k class directions, then the shared one */
        float *v = c < k ? means + (size_t)c * d : common;
        double s = 0;
        for (int j = 0; j < d; j++) v[j] = (float)gauss(&r), s += (double)v[j] * v[j];
        for (int j = 0; j < d; j++) v[j] = (float)(v[j] / sqrt(s));
    }
    make_rows(x, y, o.n, means, common, k, d, o.noise, &r);
    make_rows(xv, yv, o.val, means, common, k, d, o.noise, &r);
    double ceiling = bench_sgemm_ceiling();
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    logreg_data data = {x, y, o.n, d, k};
    logreg_opts lo = {.C = o.C, .max_iter = o.max_iter, .tol = o.tol};
    logreg_model m;
    lbfgs_result info;
    sdc_err err = {0};
    double t0 = bench_now();
    if (logreg_fit(&data, &lo, &m, &info, &err)) {
        fprintf(stderr, "bench_probe: %s\n", err.msg);
        return 1;
    }
    double t = bench_now() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    /* CPU time: on a shared machine the wall time says more about the neighbours. */
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 1e-6 * (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    if (logreg_predict(&m, xv, o.val, pred, &err)) {
        fprintf(stderr, "bench_probe: %s\n", err.msg);
        return 1;
    }
    long long right = 0;
    for (long long i = 0; i < o.val; i++) right += pred[i] == yv[i];
    double flop = 4.0 * (double)o.n * k * d * info.evals;
    double data_mb = (double)o.n * d * 4 / 1e6;
    double opt_mb = (2.0 * 10 + 6) * ((double)k * (d + 1)) * 8 / 1e6; /* 10 pairs + 6 vectors, double */
    double work_mb = (16.0 * 1024 * 1024 + 2.0 * k * d * 4) / 1e6;    /* logit block, float W and gradient */
    printf("probe: %lld rows x %d dims x %d classes, C %g, tol %g\n", o.n, d, k, o.C, o.tol);
    printf("  train  %.1f s wall, %.1f s CPU on %d threads: %d iterations, %d evaluations (%s; max|g| %.2e of %.2e)\n",
           t, cpu, sdc_get_threads(), info.iters, info.evals, lbfgs_stop_name(info.stop), info.gmax, info.gmax0);
    printf("  GEMMs  %.1f GFLOP/s (%.0f GFLOP; sgemm ceiling %.1f GFLOP/s, %.0f %%)\n", flop / t / 1e9, flop / 1e9,
           ceiling, 100 * flop / t / 1e9 / ceiling);
    printf("  top-1  %.4f on %lld validation rows\n", (double)right / o.val, o.val);
    printf("  memory peak RSS %.0f MB; by formula: features %.0f MB + optimizer %.0f MB + work %.0f MB"
           " (+ %.0f MB of validation rows here)\n", bench_peak_rss() / 1e6, data_mb, opt_mb, work_mb,
           (double)o.val * d * 4 / 1e6);
    logreg_free(&m);
    free(means), free(common), free(x), free(xv), free(y), free(yv), free(pred);
    return 0;
}
