/* test_retrieve.c — CLIP retrieval: exact top-K and the class assignment on
 * synthetic pools with planted neighbours (against a brute-force reference),
 * the embedding cache's recovery, resume and append (simulated tears and
 * kill -9), NPY export/import round trips and refusals, and `sdc augment
 * --method retrieve` end to end with the tiny CLIP fixture. */
#include "cli_run.h"
#include "suites.h"
#include "test_util.h"

#include "../src/augment/augment.h"
#include "../src/augment/embcache.h"
#include "../src/augment/retrieve.h"
#include "../src/image/clip_preprocess.h"
#include "../src/image/image.h"
#include "../src/models/clip_model.h"

#include <cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIP "tests/fixtures/tiny/clip"

/* ---------------------------------------------------------------- synthetic pools */

static uint64_t rng_state;
static double uniform(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double gauss(void) {
    double u = uniform() + 1e-12, v = uniform();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}
static void normalize(float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)v[i] * v[i];
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(s));
}
static void random_unit(float *v, int d) {
    for (int i = 0; i < d; i++) v[i] = (float)gauss();
    normalize(v, d);
}
/* v = normalize(cos(t) q + sin(t) u), u a random direction orthogonal-ish to q:
 * similarity to q close to cos(t). */
static void near(float *v, const float *q, double t, int d) {
    float u[256];
    random_unit(u, d);
    double qu = 0;
    for (int i = 0; i < d; i++) qu += q[i] * u[i];
    for (int i = 0; i < d; i++) u[i] = (float)(u[i] - qu * q[i]);
    normalize(u, d);
    for (int i = 0; i < d; i++) v[i] = (float)(cos(t) * q[i] + sin(t) * u[i]);
    normalize(v, d);
}

static double dotd(const float *a, const float *b, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s;
}

/* The brute-force reference of retrieve.h's rule: every (class, row) pair
 * sorted by the same F32 scores, greedy assignment, dedup within a class. */
typedef struct { float s; int64_t row; int c; } ref_pair;
static int cmp_ref(const void *a, const void *b) {
    const ref_pair *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    if (x->row != y->row) return x->row < y->row ? -1 : 1;
    return x->c - y->c;
}
static void reference(const float *pool, int64_t n, const float *q, int C, int d, int k, float dedup,
                      int64_t *out /* [C, k], -1 padded */) {
    ref_pair *p = malloc(sizeof *p * (size_t)n * C);
    size_t np = 0;
    for (int c = 0; c < C; c++)
        for (int64_t i = 0; i < n; i++) {
            /* Scores rounded to F32 like the search's (which sums in F32:
             * the planted gaps are far wider than that rounding). */
            float s = (float)dotd(q + (size_t)c * d, pool + (size_t)i * d, d);
            p[np++] = (ref_pair){s, i, c};
        }
    qsort(p, np, sizeof *p, cmp_ref);
    char *taken = calloc((size_t)n, 1), *dropped = calloc((size_t)n, 1);
    int *cnt = calloc((size_t)C, sizeof *cnt);
    for (int i = 0; i < C * k; i++) out[i] = -1;
    for (size_t i = 0; i < np; i++) {
        int c = p[i].c;
        int64_t row = p[i].row;
        if (cnt[c] == k || taken[row] || dropped[row]) continue;
        bool dup = false;
        for (int j = 0; j < cnt[c] && !dup; j++)
            dup = dotd(pool + (size_t)row * d, pool + (size_t)out[c * k + j] * d, d) > dedup;
        if (dup) { dropped[row] = 1; continue; }
        taken[row] = 1;
        out[c * k + cnt[c]++] = row;
    }
    free(p), free(taken), free(dropped), free(cnt);
}

START_TEST(retrieve_planted_neighbours_top_k) {
    enum { D = 64, N = 20000, C = 3, K = 5 };
    rng_state = 12345;
    float *pool = malloc(sizeof *pool * N * D), q[C * D];
    for (int c = 0; c < C; c++) random_unit(q + c * D, D);
    for (int i = 0; i < N; i++) random_unit(pool + (size_t)i * D, D);
    /* Planted: class c's neighbours at rows 1000c + 17j, similarity ~cos(0.2 + 0.1j). */
    for (int c = 0; c < C; c++)
        for (int j = 0; j < K; j++) near(pool + (size_t)(1000 * c + 17 * j) * D, q + c * D, 0.2 + 0.1 * j, D);
    for (int dt = 0; dt < 2; dt++) {
        /* F32 and F16 storage; blocks of 777 rows so the planted rows straddle blocks. */
        uint16_t *h = NULL;
        ret_pool rp = {pool, SDC_F32, N, D, NULL};
        if (dt) {
            h = malloc(sizeof *h * N * D);
            sdc_convert(h, SDC_F16, pool, SDC_F32, (size_t)N * D, NULL);
            rp = (ret_pool){h, SDC_F16, N, D, NULL};
        }
        ret_hit hits[C * K];
        int cnt[C];
        sdc_err err = {0};
        ck_assert_msg(ret_topk(&rp, q, C, K, 777, hits, cnt, &err) == SDC_OK, "%s", err.msg);
        for (int c = 0; c < C; c++) {
            ck_assert_int_eq(cnt[c], K);
            for (int j = 0; j < K; j++) {
                ck_assert_msg(hits[c * K + j].row == 1000 * c + 17 * j, "%s class %d rank %d: row %lld",
                              dt ? "F16" : "F32", c, j, (long long)hits[c * K + j].row);
                /* F16 storage: |score error| <= ~1e-3 (measured below 5e-4). */
                double want = dotd(q + c * D, pool + (size_t)hits[c * K + j].row * D, D);
                ck_assert_msg(fabs(hits[c * K + j].score - want) < (dt ? 2e-3 : 1e-5), "score %g vs %g",
                              hits[c * K + j].score, want);
            }
        }
        free(h);
    }
    free(pool);
}
END_TEST

START_TEST(retrieve_conflict_goes_to_the_best_class_and_dedup) {
    enum { D = 32, N = 3000, C = 2, K = 4 };
    rng_state = 777;
    float *pool = malloc(sizeof *pool * N * D), q[C * D];
    for (int i = 0; i < N; i++) random_unit(pool + (size_t)i * D, D);
    random_unit(q, D);
    /* q1 = q0 rotated a little: shared neighbours. */
    near(q + D, q, 0.3, D);
    /* Row 50: near both, closer to class 1. Row 60: near both, closer to class 0. */
    for (int i = 0; i < D; i++) pool[50 * D + i] = 0.3f * q[i] + 0.7f * q[D + i];
    normalize(pool + 50 * D, D);
    for (int i = 0; i < D; i++) pool[60 * D + i] = 0.7f * q[i] + 0.3f * q[D + i];
    normalize(pool + 60 * D, D);
    /* Rows 70 and 71: near-duplicates of each other (cos ~0.995), both close to q0. */
    near(pool + 70 * D, q, 0.15, D);
    near(pool + 71 * D, pool + 70 * D, 0.1, D);
    /* Row 80: the best match of class 1 but dead (superseded in its cache). */
    memcpy(pool + 80 * D, q + D, sizeof(float) * D);
    bool *dead = calloc(N, sizeof *dead);
    dead[80] = true;
    ret_pool rp = {pool, SDC_F32, N, D, dead};
    ret_result r;
    sdc_err err = {0};
    for (int pass = 0; pass < 2; pass++) {
        float dedup = pass ? 1.0f : 0.94f;
        ret_opts o = {.k = K, .dedup = dedup, .block_rows = 500};
        ck_assert_msg(ret_search(&rp, q, C, NULL, &o, &r, &err) == SDC_OK, "%s", err.msg);
        int64_t want[C * K];
        float *live = malloc(sizeof *live * N * D);
        memcpy(live, pool, sizeof *live * N * D);
        memset(live + 80 * D, 0, sizeof(float) * D); /* dead: scores 0, never near the top */
        reference(live, N, q, C, D, K, dedup, want);
        free(live);
        bool has50[2] = {0}, has60[2] = {0}, has70 = false, has71 = false;
        for (int c = 0; c < C; c++) {
            ck_assert_int_eq(r.count[c], K);
            for (int j = 0; j < K; j++) {
                int64_t row = r.hits[c][j].row;
                ck_assert_msg(row == want[c * K + j], "dedup %g class %d rank %d: %lld, reference %lld",
                              dedup, c, j, (long long)row, (long long)want[c * K + j]);
                ck_assert(row != 80);
                if (j) ck_assert(r.hits[c][j].score <= r.hits[c][j - 1].score);
                has50[c] |= row == 50, has60[c] |= row == 60;
                has70 |= row == 70, has71 |= row == 71;
            }
        }
        ck_assert_msg(has50[1] && !has50[0] && has60[0] && !has60[1], "conflicts not resolved to the best class");
        ck_assert_msg(r.conflicts >= 2, "conflicts %lld", (long long)r.conflicts);
        if (!pass) ck_assert_msg(!(has70 && has71) && r.duplicates >= 1, "near-duplicate kept");
        else ck_assert_msg(has70 && has71 && r.duplicates == 0, "dedup 1.0 dropped something");
        ret_result_free(&r);
    }
    free(dead);
    free(pool);
}
END_TEST

START_TEST(retrieve_matches_brute_force_with_growing_lists) {
    /* Many classes with near-identical queries fight over the same rows, so
     * the first candidate lists (2K + 16) run dry and the search goes round
     * again: the result must still equal the greedy over full lists. */
    enum { D = 16, N = 400, C = 6, K = 30 };
    rng_state = 4242;
    float *pool = malloc(sizeof *pool * N * D), q[C * D];
    random_unit(q, D);
    for (int c = 1; c < C; c++) near(q + c * D, q, 0.05, D);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) near(pool + (size_t)i * D, q, 0.3 + 0.002 * i, D);
        else random_unit(pool + (size_t)i * D, D);
    }
    ret_pool rp = {pool, SDC_F32, N, D, NULL};
    ret_opts o = {.k = K, .dedup = 0.999f, .block_rows = 64};
    ret_result r;
    sdc_err err = {0};
    ck_assert_msg(ret_search(&rp, q, C, NULL, &o, &r, &err) == SDC_OK, "%s", err.msg);
    int64_t want[C * K];
    reference(pool, N, q, C, D, K, 0.999f, want);
    printf("  %d classes x %d from %d rows: %d passes, %lld conflicts, %lld duplicates\n", C, K, N,
           r.passes, (long long)r.conflicts, (long long)r.duplicates);
    ck_assert_msg(r.passes > 1, "expected the candidate lists to grow (passes %d)", r.passes);
    for (int c = 0; c < C; c++) {
        ck_assert_int_eq(r.count[c], K);
        for (int j = 0; j < K; j++) ck_assert_int_eq(r.hits[c][j].row, want[c * K + j]);
    }
    ret_result_free(&r);
    /* A pool smaller than C x K: every row goes somewhere, classes come up short. */
    rp.n = 100;
    ck_assert_int_eq(ret_search(&rp, q, C, NULL, &o, &r, &err), SDC_OK);
    int total = 0;
    for (int c = 0; c < C; c++) total += r.count[c];
    ck_assert_int_eq(total, 100 - (int)r.duplicates);
    ret_result_free(&r);
    o.k = 0;
    ck_assert_int_eq(ret_search(&rp, q, C, NULL, &o, &r, &err), SDC_ERR_ARG);
    free(pool);
}
END_TEST

/* ---------------------------------------------------------------- the cache */

static void write_png(const char *path, int w, int h, int salt) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)((x * (salt + 3)) ^ (y * 5));
            p[1] = (uint8_t)(((x / (4 + salt % 5)) + (y / 6)) % 2 ? 200 : 30 + 20 * salt);
            p[2] = (uint8_t)(y * 255 / h + salt * 17);
        }
    sdc_err err = {0};
    ck_assert_msg(sdc_image_save_png(path, rgb, w, h, NULL, &err) == SDC_OK, "%s", err.msg);
    free(rgb);
}

static void append_bytes(const char *path, const char *bytes, size_t n) {
    FILE *f = fopen(path, "ab");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static emb_entry entry(const char *path, int salt) {
    emb_entry e = {.path = (char *)path, .bytes = 100 + salt, .mtime_ns = 1700000000000000000LL + salt};
    for (int i = 0; i < 64; i++) e.sha256[i] = "0123456789abcdef"[(i * 7 + salt) % 16];
    e.sha256[64] = 0;
    return e;
}

START_TEST(embcache_recovers_torn_batches_and_locks) {
    const char *dir = test_tmpdir();
    char cache[600], path[700];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    emb_cache_meta meta = {.dim = 4, .dtype = SDC_F32, .root = "/data/pool", .model = "m",
                           .model_sha256 = "ab"};
    emb_cache c, c2;
    sdc_err err = {0};
    ck_assert_msg(emb_cache_open_writer(cache, &meta, &c, &err) == SDC_OK, "%s", err.msg);
    /* One writer only. */
    ck_assert_int_eq(emb_cache_open_writer(cache, &meta, &c2, &err), SDC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "another sdc embed"));
    float rows[3 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0.6f, 0.8f};
    emb_entry e[3] = {entry("a.png", 1), entry("sub/b.jpg", 2), entry("c,d \"q\".png", 3)};
    ck_assert_msg(emb_cache_append(&c, rows, e, 3, &err) == SDC_OK, "%s", err.msg);
    /* A changed file: a new row for the same path, the old one dies. */
    float r2[4] = {0, 0, 1, 0};
    emb_entry e2 = entry("a.png", 9);
    ck_assert_int_eq(emb_cache_append(&c, r2, &e2, 1, &err), SDC_OK);
    ck_assert_int_eq(c.n, 4);
    ck_assert_int_eq(c.n_live, 3);
    ck_assert_int_eq(emb_cache_find(&c, "a.png"), 3);
    emb_cache_close(&c);
    /* A run killed between its rows and its index lines, or mid-line. */
    snprintf(path, sizeof path, "%s/embeddings.bin", cache);
    float extra[6] = {9, 9, 9, 9, 9, 9}; /* one whole row and half of another */
    append_bytes(path, (const char *)extra, sizeof extra);
    snprintf(path, sizeof path, "%s/index.jsonl", cache);
    append_bytes(path, "{\"path\": \"torn.png\", \"sha2", 26);
    ck_assert_int_eq(emb_cache_open_writer(cache, &meta, &c, &err), SDC_OK);
    ck_assert_int_eq(c.n, 4);
    ck_assert_int_eq(c.recovered_rows, 2);
    ck_assert(c.recovered_tail);
    float got[4];
    ck_assert_int_eq(emb_cache_row(&c, 2, got, &err), SDC_OK);
    ck_assert(got[2] == 0.6f && got[3] == 0.8f);
    emb_cache_close(&c);
    /* Recovered for good: the files end at the last complete row and line. */
    struct stat st;
    snprintf(path, sizeof path, "%s/embeddings.bin", cache);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 4 * 4 * 4);
    /* Readers see the same, and the CSV-hostile name survives the index. */
    ck_assert_int_eq(emb_cache_open_reader(cache, &c, &err), SDC_OK);
    ck_assert_int_eq(c.n_live, 3);
    ck_assert_int_ge(emb_cache_find(&c, "c,d \"q\".png"), 0);
    ck_assert_int_eq(emb_cache_find_sha(&c, e[1].sha256), 1);
    emb_cache_close(&c);
    /* Other parameters are refused, naming the difference. */
    emb_cache_meta other = meta;
    other.dim = 8;
    ck_assert_int_eq(emb_cache_open_writer(cache, &other, &c, &err), SDC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "4-d"));
    other = meta;
    other.model_sha256 = "cd";
    ck_assert_int_eq(emb_cache_open_writer(cache, &other, &c, &err), SDC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "another model"));
    other = meta;
    other.root = "/elsewhere";
    ck_assert_int_eq(emb_cache_open_writer(cache, &other, &c, &err), SDC_ERR_ARG);
    /* A corrupt line in the middle is an error, not a silent cut. */
    snprintf(path, sizeof path, "%s/index.jsonl", cache);
    size_t len;
    char *text = tu_slurp(path, &len);
    text[0] = '#';
    FILE *f = fopen(path, "wb");
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
    ck_assert_int_eq(emb_cache_open_writer(cache, &meta, &c, &err), SDC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "line 1"));
    ck_assert_int_eq(emb_cache_open_reader(cache, &c, &err), SDC_ERR_FORMAT);
    /* Fewer rows than index lines: damaged, refused. */
    snprintf(path, sizeof path, "%s/cache2", dir);
    ck_assert_int_eq(emb_cache_open_writer(path, &meta, &c, &err), SDC_OK);
    ck_assert_int_eq(emb_cache_append(&c, rows, e, 2, &err), SDC_OK);
    emb_cache_close(&c);
    char p2[800];
    snprintf(p2, sizeof p2, "%s/embeddings.bin", path);
    ck_assert_int_eq(truncate(p2, 20), 0);
    ck_assert_int_eq(emb_cache_open_writer(path, &meta, &c, &err), SDC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "damaged"));
    /* Not a cache at all. */
    ck_assert_int_ne(emb_cache_open_reader(dir, &c, &err), SDC_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "meta.json"));
}
END_TEST

/* A pool folder of n patterned PNGs (pool/img<i>.png, some in sub/). */
static void make_pool(const char *pool, int from, int n) {
    char path[800];
    mkdir(pool, 0755);
    snprintf(path, sizeof path, "%s/sub", pool);
    mkdir(path, 0755);
    for (int i = from; i < from + n; i++) {
        snprintf(path, sizeof path, "%s/%simg%02d.png", pool, i % 3 ? "" : "sub/", i);
        write_png(path, 40 + 7 * (i % 5), 30 + 5 * (i % 4), i);
    }
}

/* The rows of a cache by path, as F32 (for comparing two caches). */
static void same_cache(const char *a, const char *b, double tol) {
    emb_cache x, y;
    sdc_err err = {0};
    ck_assert_msg(emb_cache_open_reader(a, &x, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(emb_cache_open_reader(b, &y, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(x.n_live, y.n_live);
    float u[64], v[64];
    for (int64_t i = 0; i < x.n; i++) {
        if (x.dead[i]) continue;
        int64_t j = emb_cache_find(&y, x.entries[i].path);
        ck_assert_msg(j >= 0, "%s missing from %s", x.entries[i].path, b);
        ck_assert_str_eq(x.entries[i].sha256, y.entries[j].sha256);
        emb_cache_row(&x, i, u, &err);
        emb_cache_row(&y, j, v, &err);
        for (int k = 0; k < x.dim; k++) ck_assert_msg(fabs(u[k] - v[k]) <= tol, "%s: %g vs %g", x.entries[i].path, u[k], v[k]);
    }
    emb_cache_close(&x);
    emb_cache_close(&y);
}

static void run_and_kill(const char *pool, const char *cache, useconds_t us) {
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(dn, 2);
        execl(test_sdc_bin(), "sdc", "embed", "--clip", CLIP, "--images", pool, "--out", cache,
              "--batch", "2", "--dtype", "f32", "-q", (char *)NULL);
        _exit(127);
    }
    usleep(us);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

START_TEST(embed_cli_appends_resumes_and_matches_the_model) {
    const char *dir = test_tmpdir();
    char pool[600], cache[600], ref[600], path[2048];
    snprintf(pool, sizeof pool, "%s/pool", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    make_pool(pool, 0, 12);
    snprintf(path, sizeof path, "%s/notes.txt", pool);
    append_bytes(path, "x", 1);
    const cli_result *r = cli_run("embed --clip " CLIP " --images %s --out %s --dtype f32 -q", pool, ref);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    /* The cache rows are the model's normalized embeddings (F32 storage: exact). */
    emb_cache c;
    sdc_err err = {0};
    ck_assert_int_eq(emb_cache_open_reader(ref, &c, &err), SDC_OK);
    ck_assert_int_eq(c.n_live, 12);
    ck_assert_int_eq(c.dim, 16);
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_arena *arena = sdc_arena_create(be, 0, &err);
    sdc_clip_model *m = sdc_clip_model_open(CLIP, be, &err);
    ck_assert_msg(m, "%s", err.msg);
    snprintf(path, sizeof path, "%s/sub/img03.png", pool);
    sdc_image im;
    ck_assert_int_eq(sdc_image_load(path, NULL, &im, &err), SDC_OK);
    float *px = malloc(sizeof *px * 3 * 224 * 224), want[16], got[16];
    ck_assert_int_eq(sdc_clip_preprocess(&im, 224, 224, m->cfg.mean, m->cfg.std, NULL, px, &err), SDC_OK);
    sdc_exec ex = sdc_exec_begin(be, arena, &err);
    ck_assert_int_eq(sdc_clip_encode_image(&ex, m, px, 1, true, want, NULL), SDC_OK);
    ck_assert_int_eq(emb_cache_row(&c, emb_cache_find(&c, "sub/img03.png"), got, &err), SDC_OK);
    /* Batch 8 in the cache vs batch 1 here: measured max-abs ~1e-7. */
    for (int k = 0; k < 16; k++) ck_assert_msg(fabs(got[k] - want[k]) < 1e-5, "%g vs %g", got[k], want[k]);
    sdc_image_free(&im);
    free(px);
    sdc_clip_model_close(m);
    sdc_arena_destroy(arena);
    sdc_backend_destroy(be);
    emb_cache_close(&c);

    /* kill -9 at several moments, then a clean rerun: the same cache as one
     * uninterrupted run, nothing lost or doubled. */
    const useconds_t delays[] = {20000, 60000, 120000, 250000};
    for (size_t i = 0; i < sizeof delays / sizeof *delays; i++) run_and_kill(pool, cache, delays[i]);
    r = cli_run("embed --clip " CLIP " --images %s --out %s --dtype f32", pool, cache);
    ck_assert_msg(r->code == 0, "exit %d: %s", r->code, r->err);
    same_cache(cache, ref, 1e-6);
    /* Appending: only the new files are embedded; a copy reuses its row. */
    make_pool(pool, 12, 3);
    snprintf(path, sizeof path, "cp %s/img01.png %s/copy-of-01.png", pool, pool);
    ck_assert_int_eq(system(path), 0);
    r = cli_run("embed --clip " CLIP " --images %s --out %s", pool, cache);
    ck_assert_msg(r->code == 0 && strstr(r->err, "3 embedded, 1 reused (same content), 12 unchanged"),
                  "%s", r->err);
    r = cli_run("embed --clip " CLIP " --images %s --out %s", pool, cache);
    ck_assert_msg(r->code == 0 && strstr(r->err, "0 embedded, 0 reused (same content), 16 unchanged"),
                  "%s", r->err);
    /* A changed file gets a new row; the cache keeps one live row per path. */
    snprintf(path, sizeof path, "%s/img01.png", pool);
    write_png(path, 50, 50, 99);
    r = cli_run("embed --clip " CLIP " --images %s --out %s", pool, cache);
    ck_assert_msg(r->code == 0 && strstr(r->err, "1 embedded") && strstr(r->err, "holds 16 images"), "%s", r->err);
    /* Broken images are reported and retried, the rest goes in: exit 1. */
    snprintf(path, sizeof path, "%s/broken.png", pool);
    append_bytes(path, "\x89PNG\r\n\x1a\n trailing garbage", 24);
    r = cli_run("embed --clip " CLIP " --images %s --out %s", pool, cache);
    ck_assert_msg(r->code == 1 && strstr(r->err, "broken.png") && strstr(r->err, "1 files could not"), "%s", r->err);
    /* The default F16 cache of the same pool: within F16 rounding of F32. */
    char c16[600];
    snprintf(c16, sizeof c16, "%s/c16", dir);
    unlink(path);
    r = cli_run("embed --clip " CLIP " --images %s --out %s -q", pool, c16);
    ck_assert_msg(r->code == 0, "%s", r->err);
    same_cache(c16, cache, 1e-3); /* unit-norm values: F16 step <= 2^-11 */
    /* Usage and refusals. */
    static const struct { const char *args; int code; const char *want; } bad[] = {
        {"embed --clip " CLIP " --images /nonexistent --out %s/x", 1, "/nonexistent"},
        {"embed --clip tests/fixtures/tiny/original.safetensors --images %s/pool --out %s/x", 1, "Stable Diffusion"},
        {"embed --images %s/pool --out %s/x", 2, "--clip"},
        {"embed --clip " CLIP " --images %s/pool --out %s/x --dtype f64", 2, "--dtype"},
        {"embed --clip " CLIP " --images %s/pool --out %s/x --batch 0", 2, "--batch"},
        {"embed --clip " CLIP " --images %s/pool --out %s/x --bogus", 2, "unknown option"},
        {"embed --clip " CLIP " --images %s/pool --out %s/cache --dtype f16", 1, "stores F32"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[1200];
        if (strstr(bad[i].args, "%s/pool")) snprintf(args, sizeof args, bad[i].args, dir, dir);
        else snprintf(args, sizeof args, bad[i].args, dir);
        r = cli_run("%s", args);
        ck_assert_msg(r->code == bad[i].code && strstr(r->err, bad[i].want), "%s: exit %d: %s", args, r->code, r->err);
    }
    /* The lock: a second writer on the same cache is refused. */
    int lk = open(strcat(strcpy(path, cache), "/.lock"), O_RDWR);
    ck_assert_int_ge(lk, 0);
    ck_assert_int_eq(flock(lk, LOCK_EX | LOCK_NB), 0);
    r = cli_run("embed --clip " CLIP " --images %s --out %s", pool, cache);
    ck_assert_msg(r->code == 1 && strstr(r->err, "another sdc embed"), "%s", r->err);
    close(lk);
}
END_TEST

/* ---------------------------------------------------------------- .npy */

START_TEST(npy_export_import_round_trip) {
    const char *dir = test_tmpdir();
    char pool[600], cache[600], npy[600], csv[600], txt[600], back[600], path[900];
    snprintf(pool, sizeof pool, "%s/pool", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    make_pool(pool, 0, 6);
    snprintf(path, sizeof path, "%s/odd, \"name\".png", pool);
    write_png(path, 33, 33, 40);
    const cli_result *r = cli_run("embed --clip " CLIP " --images %s --out %s -q", pool, cache);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(npy, sizeof npy, "%s/emb.npy", dir);
    snprintf(csv, sizeof csv, "%s/emb.csv", dir);
    r = cli_run("embed --export-npy %s --pool %s --dtype f32", npy, cache);
    ck_assert_msg(r->code == 0 && strstr(r->err, "7 x 16 F32"), "%s", r->err);
    /* The NPY header is numpy's v1 layout, 64-byte aligned. */
    size_t len;
    char *b = tu_slurp(npy, &len);
    ck_assert(!memcmp(b, "\x93NUMPY\x01\x00", 8));
    int hl = (unsigned char)b[8] | (unsigned char)b[9] << 8;
    ck_assert_int_eq((10 + hl) % 64, 0);
    ck_assert_ptr_nonnull(strstr(b + 10, "'descr': '<f4', 'fortran_order': False, 'shape': (7, 16)"));
    ck_assert_int_eq(len, 10 + hl + 7 * 16 * 4);
    free(b);
    b = tu_slurp(csv, &len);
    ck_assert_msg(!strncmp(b, "row,path,sha256,bytes\n", 22) && strstr(b, "\"odd, \"\"name\"\".png\""), "%s", b);
    free(b);
    emb_npy a;
    sdc_err err = {0};
    ck_assert_int_eq(emb_npy_open(npy, &a, &err), SDC_OK);
    ck_assert_int_eq(a.rows, 7);
    ck_assert_int_eq(a.cols, 16);
    emb_npy_close(&a);
    /* Import the CSV into a new cache: the same cache. */
    snprintf(back, sizeof back, "%s/back", dir);
    r = cli_run("embed --import-npy %s --files %s --images %s --clip " CLIP " --out %s", npy, csv, pool, back);
    ck_assert_msg(r->code == 0 && strstr(r->err, "imported 7 rows"), "%s", r->err);
    same_cache(back, cache, 1e-3);
    /* Again: nothing new. */
    r = cli_run("embed --import-npy %s --files %s --images %s --clip " CLIP " --out %s", npy, csv, pool, back);
    ck_assert_msg(r->code == 0 && strstr(r->err, "imported 0 rows (7 already present)"), "%s", r->err);
    /* A plain path list (hashes computed) and an F16 export. */
    snprintf(txt, sizeof txt, "%s/list.txt", dir);
    snprintf(path, sizeof path, "%s/h.npy", dir);
    r = cli_run("embed --export-npy %s --pool %s --files %s", path, cache, txt);
    ck_assert_msg(r->code == 0 && strstr(r->err, "F16"), "%s", r->err);
    snprintf(back, sizeof back, "%s/back2", dir);
    r = cli_run("embed --import-npy %s --files %s --images %s --clip " CLIP " --out %s --dtype f32", path, txt, pool, back);
    ck_assert_msg(r->code == 0, "%s", r->err);
    same_cache(back, cache, 1e-3);
    /* Refusals: nothing is written. */
    char bad_npy[700], bad_list[700], out[700];
    snprintf(bad_npy, sizeof bad_npy, "%s/bad.npy", dir);
    snprintf(bad_list, sizeof bad_list, "%s/bad.txt", dir);
    snprintf(out, sizeof out, "%s/never", dir);
    static const struct { const char *npy_hdr; const char *want; } npys[] = {
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (7, 16), }", "float16/32/64"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (7, 16), }", "Fortran"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (7, 16, 1), }", "2-D"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 16), }", "header says"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (7, 12), }", "header says"},
    };
    float data[7 * 16];
    for (int i = 0; i < 7 * 16; i++) data[i] = (float)(i % 5) - 1.5f;
    for (size_t i = 0; i < sizeof npys / sizeof *npys; i++) {
        FILE *f = fopen(bad_npy, "wb");
        char hdr[128];
        int n = snprintf(hdr, sizeof hdr, "%s", npys[i].npy_hdr);
        while ((10 + n + 1) % 64) hdr[n++] = ' ';
        hdr[n++] = '\n';
        fwrite("\x93NUMPY\x01\x00", 1, 8, f);
        fputc(n & 0xff, f);
        fputc(n >> 8, f);
        fwrite(hdr, 1, (size_t)n, f);
        fwrite(data, sizeof data, 1, f);
        fclose(f);
        r = cli_run("embed --import-npy %s --files %s --images %s --clip " CLIP " --out %s", bad_npy, csv, pool, out);
        ck_assert_msg(r->code == 1 && strstr(r->err, npys[i].want), "%s: %s", npys[i].npy_hdr, r->err);
        ck_assert_msg(access(out, F_OK) != 0, "a refused import created %s", out);
    }
    append_bytes(bad_list, "img01.png\n", 10);
    r = cli_run("embed --import-npy %s --files %s --images %s --clip " CLIP " --out %s", npy, bad_list, pool, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "lists 1 files but"), "%s", r->err);
    append_bytes(bad_list, "../etc/passwd\n", 14);
    r = cli_run("embed --import-npy %s --files %s --images %s --clip " CLIP " --out %s", npy, bad_list, pool, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "not a relative path"), "%s", r->err);
    snprintf(path, sizeof path, "%s/notnpy.npy", dir);
    append_bytes(path, "hello, this is text", 19);
    r = cli_run("embed --import-npy %s --files %s --images %s --clip " CLIP " --out %s", path, csv, pool, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "magic"), "%s", r->err);
    ck_assert(access(out, F_OK) != 0);
    r = cli_run("embed --export-npy %s/x.npy --pool %s/nothing", dir, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "nothing"), "%s", r->err);
}
END_TEST

/* ---------------------------------------------------------------- augment --method retrieve */

START_TEST(augment_retrieve_end_to_end) {
    const char *dir = test_tmpdir();
    char pool[600], cache[600], data[600], out[600], path[2048];
    snprintf(pool, sizeof pool, "%s/pool", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    make_pool(pool, 0, 18);
    /* The dataset: two classes; one real image also sits in the pool. */
    mkdir(data, 0755);
    snprintf(path, sizeof path, "%s/cat", data);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/dog", data);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/cat/c0.png", data);
    write_png(path, 48, 40, 1);
    snprintf(path, sizeof path, "cp %s/cat/c0.png %s/real-copy.png", data, pool);
    ck_assert_int_eq(system(path), 0);
    snprintf(path, sizeof path, "%s/dog/d0.png", data);
    write_png(path, 44, 52, 2);
    const cli_result *r = cli_run("embed --clip " CLIP " --images %s --out %s -q", pool, cache);
    ck_assert_msg(r->code == 0, "%s", r->err);

    for (int qi = 0; qi < 3; qi++) {
        const char *query = qi == 0 ? "text" : qi == 1 ? "image" : "both";
        snprintf(out, sizeof out, "%s/out-%s", dir, query);
        /* The tiny random CLIP maps these patterns close together (pool pairs
         * up to cos 0.9996): --dedup 0.9999 still catches exact copies. */
        r = cli_run("augment %s --method retrieve --pool %s --per-class 4 --query %s --out %s "
                    "--dedup 0.9999 --preview %s/grid-%s.png -q", data, cache, query, out, dir, query);
        ck_assert_msg(r->code == 0, "%s: exit %d: %s", query, r->code, r->err);
        snprintf(path, sizeof path, "%s/manifest.jsonl", out);
        cJSON *m = tu_read_manifest(path);
        ck_assert_int_eq(cJSON_GetArraySize(m), 8);
        int ranks[2] = {0, 0}, ns = 0;
        double last[2] = {2, 2};
        const char *seen[8];
        for (const cJSON *j = m->child; j; j = j->next) {
            const char *cls = cJSON_GetStringValue(cJSON_GetObjectItem(j, "class"));
            const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(j, "output"));
            const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(j, "source"));
            const char *pf = cJSON_GetStringValue(cJSON_GetObjectItem(j, "pool_file"));
            double sim = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "similarity"));
            int c = !strcmp(cls, "dog");
            ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "method")), "retrieve");
            ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "query")), query);
            ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), "ok");
            ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "rank")), ++ranks[c]);
            ck_assert_msg(sim <= last[c] + 1e-7 && sim >= -1 && sim <= 1, "similarity order");
            last[c] = sim;
            ck_assert(strstr(src, pf) && pf[0] != '/');
            /* With image queries the pool's copy of the real cat image is a
             * near-duplicate of the class's own image: never retrieved. */
            if (qi) ck_assert_msg(strcmp(pf, "real-copy.png"), "%s retrieved a copy of a real image", query);
            for (int k = 0; k < ns; k++) ck_assert_msg(strcmp(seen[k], pf), "%s in two classes", pf);
            seen[ns++] = pf; /* no pool image in two classes */
            size_t la, lb;
            char op[1500];
            snprintf(op, sizeof op, "%s/%s", out, o);
            char *x = tu_slurp(src, &la), *y = tu_slurp(op, &lb);
            ck_assert_msg(x && y && la == lb && !memcmp(x, y, la), "%s is not a copy of %s", op, src);
            free(x), free(y);
        }
        cJSON_Delete(m);
        /* A rerun resumes: nothing left to do. */
        r = cli_run("augment %s --method retrieve --pool %s --per-class 4 --query %s --out %s --dedup 0.9999",
                    data, cache, query, out);
        ck_assert_msg(r->code == 0 && strstr(r->err, "0 retrieved, 8 already done"), "%s", r->err);
    }
    /* Dry run: counts, nothing written. */
    snprintf(out, sizeof out, "%s/dry", dir);
    r = cli_run("augment %s --method retrieve --pool %s --per-class 3 --dedup 0.9999 --out %s --dry-run", data, cache, out);
    ck_assert_msg(r->code == 0 && strstr(r->out, "plan: 6 images") && strstr(r->out, "cat"), "%s", r->out);
    ck_assert(access(out, F_OK) != 0);
    /* --link: hard links; a deleted output comes back on resume, no doubles. */
    snprintf(out, sizeof out, "%s/linked", dir);
    r = cli_run("augment %s --method retrieve --pool %s --per-class 3 --dedup 0.9999 --out %s --link -q", data, cache, out);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    cJSON *m = tu_read_manifest(path);
    const cJSON *first = m->child;
    struct stat s1, s2;
    snprintf(path, sizeof path, "%s/%s", out, cJSON_GetStringValue(cJSON_GetObjectItem(first, "output")));
    ck_assert_int_eq(stat(path, &s1), 0);
    ck_assert_int_eq(stat(cJSON_GetStringValue(cJSON_GetObjectItem(first, "source")), &s2), 0);
    ck_assert_msg(s1.st_ino == s2.st_ino, "not a hard link");
    ck_assert_int_eq(unlink(path), 0);
    cJSON_Delete(m);
    r = cli_run("augment %s --method retrieve --pool %s --per-class 3 --dedup 0.9999 --out %s --link", data, cache, out);
    ck_assert_msg(r->code == 0 && strstr(r->err, "1 retrieved, 5 already done"), "%s", r->err);
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    m = tu_read_manifest(path);
    ck_assert_int_eq(cJSON_GetArraySize(m), 6);
    cJSON_Delete(m);
    /* Other arguments in the same folder: a different plan, refused. */
    r = cli_run("augment %s --method retrieve --pool %s --per-class 2 --out %s", data, cache, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "--per-class was 3 when this folder was planned, now 2"),
                  "%s", r->err);
    /* A pool file changed since it was embedded: that item fails, the run goes on. */
    snprintf(out, sizeof out, "%s/changed", dir);
    r = cli_run("augment %s --method retrieve --pool %s --per-class 9 --dedup 1 --out %s --dry-run", data, cache, out);
    ck_assert_int_eq(r->code, 0);
    snprintf(path, sizeof path, "%s/img01.png", pool);
    append_bytes(path, "X", 1);
    r = cli_run("augment %s --method retrieve --pool %s --per-class 9 --dedup 1 --out %s -q", data, cache, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "1 items failed"), "%d %s", r->code, r->err);
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    size_t len;
    char *text = tu_slurp(path, &len);
    ck_assert_msg(strstr(text, "changed since it was embedded"), "%s", text);
    free(text);
    /* Refusals. */
    static const struct { const char *args; int code; const char *want; } bad[] = {
        {"augment %s --method retrieve --pool %s --out %s/x", 2, "--per-class"},
        {"augment %s --method retrieve --pool %s --per-class 2 --out %s/x --query sound", 2, "--query"},
        {"augment %s --method retrieve --pool %s --per-class 2 --out %s/x --steps 3", 2,
         "--steps does not apply to --method retrieve"},
        {"augment %s --method retrieve --pool %s --per-class 2 --out %s/x --dedup 1.5", 2, "--dedup"},
        {"augment %s --method retrieve --pool %s/nope --per-class 2 --out %s/x", 1, "nope"},
        {"augment %s --method retrieve --pool %s --per-class 2 --out %s/x --clip tests/fixtures/tiny/original.safetensors", 1, "Stable Diffusion"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[1500];
        snprintf(args, sizeof args, bad[i].args, data, cache, dir);
        r = cli_run("%s", args);
        ck_assert_msg(r->code == bad[i].code && strstr(r->err, bad[i].want), "%s: exit %d: %s", args, r->code, r->err);
    }
    r = cli_run("augment %s --method retrieve --pool %s --per-class 2 --out %s/cat/x", data, cache, data);
    ck_assert_msg(r->code == 2 && strstr(r->err, "inside the dataset"), "%s", r->err);
    /* A pool embedded with other weights is refused (a copy with one value changed). */
    snprintf(path, sizeof path, "cp -r " CLIP " %s/other && printf '\\x01' | dd of=%s/other/model.safetensors "
             "bs=1 seek=20000 conv=notrunc 2>/dev/null", dir, dir);
    ck_assert_int_eq(system(path), 0);
    r = cli_run("augment %s --method retrieve --pool %s --per-class 2 --out %s/y --clip %s/other", data, cache, dir, dir);
    ck_assert_msg(r->code == 1 && strstr(r->err, "do not compare"), "%s", r->err);
    r = cli_run("augment --method retrieve --help");
    ck_assert_msg(r->code == 0 && strstr(r->out, "--per-class K"), "%s", r->out);
    /* The cache records the model's absolute path (it was given relative). */
    snprintf(path, sizeof path, "%s/meta.json", cache);
    text = tu_slurp(path, &len);
    const char *mv = strstr(text, "\"model\":");
    ck_assert_msg(mv, "%s", text);
    mv += 8;
    while (*mv == ' ' || *mv == '\t') mv++;
    ck_assert_msg(!strncmp(mv, "\"/", 2), "the cache's model path is not absolute: %s", text);
    free(text);
    /* A class that gets nothing: no empty folder (torchvision refuses one),
     * the shortfall named per class, exit 1. A pool of only the copy of the
     * cat's own image: a near-duplicate for cat's image query (and, in the
     * tiny random CLIP's space, for dog's too). */
    char pool2[1200], cache2[1200];
    snprintf(pool2, sizeof pool2, "%s/pool2", dir);
    snprintf(cache2, sizeof cache2, "%s/cache2", dir);
    mkdir(pool2, 0755);
    snprintf(path, sizeof path, "cp %s/real-copy.png %s/", pool, pool2);
    ck_assert_int_eq(system(path), 0);
    r = cli_run("embed -m " CLIP " --images %s -o %s -q", pool2, cache2);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(out, sizeof out, "%s/short", dir);
    r = cli_run("augment %s --method retrieve --pool %s --per-class 1 --query image --dedup 0.9999 "
                "--out %s -q", data, cache2, out);
    ck_assert_msg(r->code == 1 && strstr(r->err, "class cat: 0 of 1 images") &&
                  strstr(r->err, "got no image: no folder was made"), "%d %s", r->code, r->err);
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/%s", out, c ? "dog" : "cat");
        ck_assert_msg(access(path, F_OK) != 0, "an empty class folder %s was made", path);
    }
}
END_TEST

Suite *suite_retrieve(void) {
    Suite *s = suite_create("retrieve");
    TCase *tc = tcase_create("retrieve");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, retrieve_planted_neighbours_top_k);
    tcase_add_test(tc, retrieve_conflict_goes_to_the_best_class_and_dedup);
    tcase_add_test(tc, retrieve_matches_brute_force_with_growing_lists);
    tcase_add_test(tc, embcache_recovers_torn_batches_and_locks);
    tcase_add_test(tc, embed_cli_appends_resumes_and_matches_the_model);
    tcase_add_test(tc, npy_export_import_round_trip);
    tcase_add_test(tc, augment_retrieve_end_to_end);
    suite_add_tcase(s, tc);
    return s;
}
