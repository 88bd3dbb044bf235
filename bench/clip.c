/* clip.c — CLIP retrieval benchmarks: image embedding throughput of a
 * ViT-L/14 CLIPModel at random F16 weights (images/s, GFLOP/s against the
 * in-run sgemm ceiling), and exact top-K search over a synthetic pool of
 * L2-normalized F16 embeddings (GB/s of pool read, with the sgemm and the
 * per-class heaps included).
 *
 *   build/bench_clip [--batch 2] [--reps 2] [--pool 1000000] [--dim 768]
 *                    [--classes 10,100,1000] [--k 100] [--skip-model] [--skip-search] */
#include "bench_util.h"
#include "../src/cpu/cpu_features.h"

#include "../src/augment/retrieve.h"
#include "../src/models/clip_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int batch, reps, dim, k, classes[8], n_classes;
    long long pool;
    bool skip_model, skip_search;
} options;

static int usage(void) {
    fprintf(stderr, "usage: bench_clip [--batch 2] [--reps 2] [--pool 1000000] [--dim 768]\n"
                    "                  [--classes 10,100,1000] [--k 100] [--skip-model] [--skip-search]\n");
    return 2;
}

static bool parse(int argc, char **argv, options *o) {
    *o = (options){.batch = 2, .reps = 2, .dim = 768, .k = 100, .classes = {10, 100, 1000},
                   .n_classes = 3, .pool = 1000000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--skip-model")) { o->skip_model = true; continue; }
        if (!strcmp(a, "--skip-search")) { o->skip_search = true; continue; }
        if (!v) return false;
        i++;
        if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--reps")) o->reps = atoi(v);
        else if (!strcmp(a, "--pool")) o->pool = atoll(v);
        else if (!strcmp(a, "--dim")) o->dim = atoi(v);
        else if (!strcmp(a, "--k")) o->k = atoi(v);
        else if (!strcmp(a, "--classes")) {
            o->n_classes = 0;
            for (char *s = (char *)v; *s && o->n_classes < 8;) {
                o->classes[o->n_classes++] = (int)strtol(s, &s, 10);
                if (*s == ',') s++;
                else if (*s) return false;
            }
        } else return false;
    }
    for (int c = 0; c < o->n_classes; c++)
        if (o->classes[c] < 1) return false;
    return o->batch >= 1 && o->reps >= 1 && o->reps <= 50 && o->pool >= 1 && o->dim >= 1 &&
           o->dim <= 4096 && o->k >= 1;
}

static uint32_t rng = 2463534242u;
static float uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

/* n unit vectors of dim d (F32). */
static void unit_rows(float *v, int64_t n, int d) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) {
            v[i * d + j] = uniform();
            s += (double)v[i * d + j] * v[i * d + j];
        }
        float inv = (float)(1.0 / sqrt(s));
        for (int j = 0; j < d; j++) v[i * d + j] *= inv;
    }
}

static int bench_model(const options *o, double ceiling) {
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_arena *arena = be ? sdc_arena_create(be, 0, &err) : NULL;
    double t0 = bench_now();
    sdc_clip_model *m = arena ? sdc_clip_model_random(&sdc_clip_vit_l14, be, SDC_F16, 1, &err) : NULL;
    if (!m) {
        fprintf(stderr, "bench_clip: %s\n", err.msg);
        return 1;
    }
    int64_t params = sdc_params_count(&m->vision.params) + sdc_params_count(&m->text.params) +
                     sdc_params_count(&m->params);
    printf("model: ViT-L/14 CLIPModel, random F16 weights (%.1f M parameters, made in %.1f s)\n",
           params / 1e6, bench_now() - t0);
    int B = o->batch, S = m->cfg.vision.image_size;
    size_t plane = (size_t)3 * S * S;
    float *px = malloc(sizeof *px * plane * B), *emb = malloc(sizeof *emb * (size_t)B * m->cfg.proj);
    for (size_t i = 0; i < plane * B; i++) px[i] = 2.0f * uniform();
    double times[64], flops = 0;
    sdc_status s = SDC_OK;
    for (int r = -1; r < o->reps && !s; r++) { /* r = -1: warm-up */
        sdc_exec ex = sdc_exec_begin(be, arena, &err);
        double t = bench_now();
        s = sdc_clip_encode_image(&ex, m, px, B, true, emb, NULL);
        if (r >= 0) times[r] = bench_now() - t;
        flops = ex.flops;
    }
    if (s) {
        fprintf(stderr, "bench_clip: %s\n", err.msg);
    } else {
        double sec = bench_median(times, o->reps), gf = flops / sec / 1e9;
        printf("image embedding, batch %d: %.2f s per batch, %.2f images/s, %.1f GFLOP per image, "
               "%.1f GFLOP/s (%.0f%% of sgemm), peak RSS %.0f MB\n", B, sec, B / sec, flops / B / 1e9,
               gf, 100 * gf / ceiling, bench_peak_rss() / 1e6);
    }
    free(px);
    free(emb);
    sdc_clip_model_close(m);
    sdc_arena_destroy(arena);
    sdc_backend_destroy(be);
    return s ? 1 : 0;
}

static int bench_search(const options *o) {
    int64_t n = o->pool;
    int d = o->dim;
    uint16_t *pool = malloc(sizeof *pool * (size_t)n * d);
    float *tmp = malloc(sizeof *tmp * 4096 * (size_t)d);
    if (!pool || !tmp) {
        fprintf(stderr, "bench_clip: cannot allocate a %lld x %d pool\n", (long long)n, d);
        return 1;
    }
    double t0 = bench_now();
    for (int64_t i = 0; i < n; i += 4096) {
        int64_t m = n - i < 4096 ? n - i : 4096;
        unit_rows(tmp, m, d);
        sdc_convert(pool + (size_t)i * d, SDC_F16, tmp, SDC_F32, (size_t)m * d, NULL);
    }
    double gb = (double)n * d * 2 / 1e9;
    printf("pool: %lld x %d F16 unit vectors (%.2f GB), made in %.1f s\n", (long long)n, d, gb,
           bench_now() - t0);
    ret_pool rp = {pool, SDC_F16, n, d, NULL};
    int rc = 0;
    for (int ci = 0; ci < o->n_classes && !rc; ci++) {
        int C = o->classes[ci];
        float *q = malloc(sizeof *q * (size_t)C * d);
        ret_hit *hits = malloc(sizeof *hits * (size_t)C * o->k);
        int *cnt = malloc(sizeof *cnt * (size_t)C);
        unit_rows(q, C, d);
        sdc_err err = {0};
        double times[64];
        for (int r = 0; r < o->reps && !rc; r++) {
            double t = bench_now();
            if (ret_topk(&rp, q, C, o->k, 0, hits, cnt, &err)) {
                fprintf(stderr, "bench_clip: %s\n", err.msg);
                rc = 1;
            }
            times[r] = bench_now() - t;
        }
        if (!rc) {
            double sec = bench_median(times, o->reps);
            printf("top-%d search, %4d classes: %.3f s, %.2f GB/s of pool, %.1f GFLOP/s, %.1f M rows/s\n",
                   o->k, C, sec, gb / sec, 2.0 * n * d * C / sec / 1e9, n / sec / 1e6);
        }
        /* The full assignment (one pass when the lists suffice, dedup 0.94). */
        ret_opts opt = {.k = o->k, .dedup = 0.94f};
        ret_result res;
        double t = bench_now();
        if (!rc && ret_search(&rp, q, C, NULL, &opt, &res, &err) == SDC_OK) {
            printf("  retrieve (assignment + dedup 0.94), %4d classes x %d: %.3f s, %d pass(es)\n", C,
                   o->k, bench_now() - t, res.passes);
            ret_result_free(&res);
        }
        free(q);
        free(hits);
        free(cnt);
    }
    printf("peak RSS %.0f MB\n", bench_peak_rss() / 1e6);
    free(pool);
    free(tmp);
    return rc;
}

int main(int argc, char **argv) {
    sdc_blas_select(argv); /* OpenBLAS's best kernels here, as the sdc command gets */
    options o;
    if (!parse(argc, argv, &o)) return usage();
    double ceiling = bench_sgemm_ceiling();
    printf("bench_clip: %d threads, sgemm 2048^3 %.1f GFLOP/s\n", sdc_get_threads(), ceiling);
    int rc = 0;
    if (!o.skip_model) rc |= bench_model(&o, ceiling);
    if (!o.skip_search) rc |= bench_search(&o);
    return rc;
}
