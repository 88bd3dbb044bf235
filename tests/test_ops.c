/* test_ops.c — every row of the op table (tests/op_cases.c) on the CPU
 * backend against the double reference, one Check case per op kind, and the
 * argument checks of sdc_op_run(). A stub op (SDC_ERR_UNSUPPORTED) fails.
 * The rows run on the CPU path SDC_CPU_PATH picks (make test-cpu-paths runs
 * the suite on each); cpu_paths checks the AVX-512 path's bits = AVX2's. */
#include "suites.h"

#include "../src/cpu/cpu_avx512.h"
#include "../src/cpu/cpu_isa.h"
#include "op_cases.h"
#include "op_fd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t seed;
static bool reduced; /* big rows at their san_shape: sanitized, unless $SDC_OPS_FULL=1 */

START_TEST(op_row) {
    const op_case *c = &op_cases[_i];
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    ck_assert_msg(be != NULL, "cpu backend: %s", err.msg);
    op_opts o = {.seed = seed, .act = SDC_F32, .reduced = reduced};
    op_inst in;
    op_error e = {0};
    sdc_status s = op_inst_build(&in, c, &o, be, &err);
    if (!s) s = op_inst_exec(&in, &err);
    if (!s) s = op_inst_check(&in, &e, &err);
    char shape[96];
    op_inst_shape(&in, shape, sizeof shape);
    op_tol t = op_case_tol(c);
    bool pass = !s && e.rel_l2 <= t.rel_l2 && e.max_abs <= t.max_abs;
    if (s)
        printf("ops: %-34s %-20s %s: %s\n", c->name, shape, sdc_status_name(s), err.msg);
    else
        printf("ops: %-34s %-20s max_abs %.3g (tol %.3g)  rel_l2 %.3g (tol %.3g)%s%s\n", c->name,
               shape, e.max_abs, t.max_abs, e.rel_l2, t.rel_l2,
               o.reduced && c->san_shape[0] ? "  [reduced: sanitizers]" : "",
               pass ? "" : "  FAIL");
    fflush(stdout);
    op_inst_free(&in);
    sdc_backend_destroy(be);
    ck_assert_msg(s == SDC_OK, "%s %s: %s: %s", c->name, shape, sdc_status_name(s), err.msg);
    ck_assert_msg(pass,
                  "%s %s: max_abs %.3g (tol %.3g), rel_l2 %.3g (tol %.3g), %zu non-finite "
                  "mismatches; worst at %zu: got %.9g, want %.9g (seed %llu)",
                  c->name, shape, e.max_abs, t.max_abs, e.rel_l2, t.rel_l2, e.nonfinite, e.worst,
                  e.worst_got, e.worst_ref, (unsigned long long)seed);
}
END_TEST

/* ---------------------------------------------------------------- finite differences */

/* The backward references against central differences of the forward
 * references, on the _edge_ rows of every backward kind (small, so every
 * element, or 96 per output, is probed). Both sides are double: the
 * differences carry O(h²) truncation (h = 1e-5·(1+|x|)) and rounding of
 * ~1e-16·|L|/h. Measured worst over 9 seeds: rel-L2 1.7e-8; max-abs 9.4e-7
 * on attnb_edge_peaky (gradients ~50), at most 6.1e-8 on the other rows. */
#define FD_TOL_REL 1e-7
#define FD_TOL_ABS 3e-6

START_TEST(fd_row) {
    const op_case *c = &op_cases[_i];
    sdc_err err = {0};
    op_error e;
    bool ok = op_fd_check(c, seed, 96, &e, &err);
    printf("ops-fd: %-34s max_abs %.3g (tol %.3g)  rel_l2 %.3g (tol %.3g)%s\n", c->name,
           e.max_abs, FD_TOL_ABS, e.rel_l2, FD_TOL_REL,
           ok && e.max_abs <= FD_TOL_ABS && e.rel_l2 <= FD_TOL_REL ? "" : "  FAIL");
    fflush(stdout);
    ck_assert_msg(ok, "%s: %s", c->name, err.msg);
    ck_assert_msg(e.max_abs <= FD_TOL_ABS && e.rel_l2 <= FD_TOL_REL,
                  "%s: backward reference vs central differences: max_abs %.3g, rel_l2 %.3g; "
                  "worst: output %d element %zu analytic %.12g, differences %.12g (seed %llu)",
                  c->name, e.max_abs, e.rel_l2, e.worst_out, e.worst, e.worst_got, e.worst_ref,
                  (unsigned long long)seed);
}
END_TEST

/* Every backward kind with a forward has an _edge_ row for fd_row. */
START_TEST(fd_covers_every_backward_kind) {
    for (int k = 0; k < SDC_OP_COUNT; k++) {
        if (!op_fd_applies((sdc_op_kind)k)) continue;
        bool found = false;
        for (size_t i = 0; i < op_case_count && !found; i++)
            found = op_cases[i].op.kind == (sdc_op_kind)k && strstr(op_cases[i].name, "_edge_");
        ck_assert_msg(found, "%s has no _edge_ row to check by finite differences",
                      sdc_op_name((sdc_op_kind)k));
    }
}
END_TEST

/* ---------------------------------------------------------------- validation */

/* Host tensors over one scratch buffer (the checks never run an op). */
static float scratch[4096];

static sdc_tensor tens(sdc_dtype dt, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    sdc_tensor t;
    int64_t s[4] = {a, b, c, d};
    sdc_tensor_init(&t, dt, ndim, s, scratch, NULL);
    return t;
}

static void expect(sdc_op *op, sdc_status want, const char *needle) {
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    ck_assert_ptr_nonnull(be);
    sdc_status s = sdc_op_run(be, op, &err);
    sdc_backend_destroy(be);
    ck_assert_msg(s == want, "%s: got %s (%s), want %s", sdc_op_name(op->kind),
                  sdc_status_name(s), err.msg, sdc_status_name(want));
    ck_assert_msg(strstr(err.msg, needle), "message \"%s\" lacks \"%s\"", err.msg, needle);
}

START_TEST(reject_wrong_dst_shape) {
    sdc_tensor x = tens(SDC_F32, 4, 1, 4, 5, 5), w = tens(SDC_F32, 4, 6, 4, 3, 3);
    sdc_tensor y = tens(SDC_F32, 4, 1, 6, 4, 5);
    sdc_op op = {.kind = SDC_OP_CONV2D, .src = {&x, &w}, .dst = &y,
                 .p.conv2d = {1, 1, 1, 1, 1, 0, 0}};
    expect(&op, SDC_ERR_SHAPE, "expected F32 [1, 6, 5, 5]");
}
END_TEST

START_TEST(reject_channel_mismatch) {
    sdc_tensor x = tens(SDC_F32, 4, 1, 4, 5, 5), w = tens(SDC_F32, 4, 6, 3, 3, 3);
    sdc_tensor y = tens(SDC_F32, 4, 1, 6, 5, 5);
    sdc_op op = {.kind = SDC_OP_CONV2D, .src = {&x, &w}, .dst = &y,
                 .p.conv2d = {1, 1, 1, 1, 1, 0, 0}};
    expect(&op, SDC_ERR_SHAPE, "w has 3 input channels, x has 4");
    sdc_tensor a = tens(SDC_F32, 3, 2, 7, 16, 1), wl = tens(SDC_F32, 2, 8, 15, 1, 1);
    sdc_tensor yl = tens(SDC_F32, 3, 2, 7, 8, 1);
    sdc_op lin = {.kind = SDC_OP_LINEAR, .src = {&a, &wl}, .dst = &yl};
    expect(&lin, SDC_ERR_SHAPE, "x's last dim is 16");
}
END_TEST

START_TEST(reject_groups_not_dividing) {
    sdc_tensor x = tens(SDC_F32, 4, 1, 10, 2, 2), g = tens(SDC_F32, 1, 10, 1, 1, 1);
    sdc_tensor y = x;
    sdc_op op = {.kind = SDC_OP_GROUP_NORM, .src = {&x, &g, &g}, .dst = &y,
                 .p.group_norm = {4, 1e-5f, false}};
    expect(&op, SDC_ERR_SHAPE, "10 channels do not split into 4 groups");
}
END_TEST

START_TEST(reject_bad_params) {
    sdc_tensor q = tens(SDC_F32, 3, 1, 4, 8, 1), k = tens(SDC_F32, 3, 1, 5, 8, 1);
    sdc_tensor y = q;
    sdc_op causal = {.kind = SDC_OP_ATTENTION, .src = {&q, &k, &k}, .dst = &y,
                     .p.attention = {2, true, 0}};
    expect(&causal, SDC_ERR_SHAPE, "causal mask needs as many keys as queries");
    sdc_op heads = {.kind = SDC_OP_ATTENTION, .src = {&q, &k, &k}, .dst = &y,
                    .p.attention = {3, false, 0}};
    expect(&heads, SDC_ERR_SHAPE, "does not split into 3 heads");
    sdc_tensor x = tens(SDC_F32, 2, 3, 5, 1, 1), yg = tens(SDC_F32, 2, 3, 2, 1, 1);
    sdc_op geglu = {.kind = SDC_OP_GEGLU, .src = {&x}, .dst = &yg};
    expect(&geglu, SDC_ERR_SHAPE, "last dim must be even");
    sdc_tensor b = tens(SDC_F32, 2, 2, 5, 1, 1);
    sdc_op add = {.kind = SDC_OP_ADD, .src = {&x, &b}, .dst = &x};
    expect(&add, SDC_ERR_SHAPE, "does not broadcast");
    sdc_op null_dst = {.kind = SDC_OP_SILU, .src = {&x}};
    expect(&null_dst, SDC_ERR_ARG, "NULL");
}
END_TEST

START_TEST(reject_dtypes) {
    /* The CPU backend computes F32 activations only; mixing is a shape error. */
    sdc_tensor x = tens(SDC_F32, 2, 3, 4, 1, 1), y16 = tens(SDC_F16, 2, 3, 4, 1, 1);
    sdc_op mixed = {.kind = SDC_OP_SILU, .src = {&x}, .dst = &y16};
    expect(&mixed, SDC_ERR_SHAPE, "source 0 is F32 but dst is F16");
    sdc_tensor x16 = tens(SDC_F16, 2, 3, 4, 1, 1);
    sdc_op half = {.kind = SDC_OP_SILU, .src = {&x16}, .dst = &y16};
    expect(&half, SDC_ERR_UNSUPPORTED, "does not implement it for F16");
    sdc_tensor ids = tens(SDC_F32, 1, 3, 1, 1, 1), tab = tens(SDC_F32, 2, 10, 4, 1, 1);
    sdc_tensor ye = tens(SDC_F32, 2, 3, 4, 1, 1);
    sdc_op emb = {.kind = SDC_OP_EMBEDDING, .src = {&ids, &tab}, .dst = &ye};
    expect(&emb, SDC_ERR_SHAPE, "ids must be I32");
}
END_TEST

START_TEST(reject_backward_args) {
    /* conv2d_backward: a given input size must give dy's size. */
    sdc_tensor dy = tens(SDC_F32, 4, 1, 6, 4, 4), w = tens(SDC_F32, 4, 6, 3, 3, 3);
    sdc_tensor dx = tens(SDC_F32, 4, 1, 3, 9, 8);
    sdc_op conv = {.kind = SDC_OP_CONV2D_BACKWARD, .src = {&dy, &w}, .dst = &dx,
                   .p.conv2d = {2, 1, 1, 1, 1, 8, 5}};
    expect(&conv, SDC_ERR_SHAPE, "no input width of 5 gives an output of 4");
    conv.p.conv2d.in_w = 8;
    conv.p.conv2d.in_h = 9; /* 9 -> 5 with stride 2, pad 1 */
    expect(&conv, SDC_ERR_SHAPE, "no input height of 9 gives an output of 4");
    conv.p.conv2d.in_h = 8;
    expect(&conv, SDC_ERR_SHAPE, "expected F32 [1, 3, 8, 8]");
    sdc_tensor bias = tens(SDC_F32, 1, 6, 1, 1, 1);
    conv.src[2] = &bias;
    expect(&conv, SDC_ERR_SHAPE, "takes only dy and w");
    /* attention_backward: three outputs, each shaped like its input. */
    sdc_tensor q = tens(SDC_F32, 3, 1, 4, 8, 1), k = tens(SDC_F32, 3, 1, 5, 8, 1);
    sdc_tensor dq = q, dk = k, dv = k, bad = q;
    sdc_op attn = {.kind = SDC_OP_ATTENTION_BACKWARD, .src = {&q, &k, &k, &q}, .dst = &dq,
                   .dst_more = {&dk, NULL}, .p.attention = {2, false, 0}};
    expect(&attn, SDC_ERR_ARG, "output 2 is NULL");
    attn.dst_more[1] = &bad;
    expect(&attn, SDC_ERR_SHAPE, "dst_more[1] is F32 [1, 4, 8], expected F32 [1, 5, 8]");
    attn.dst_more[1] = &dv;
    attn.src[3] = &k;
    expect(&attn, SDC_ERR_SHAPE, "dy is [1, 5, 8], expected [1, 4, 8]");
    /* geglu_backward: dy is x's shape with the last dim halved. */
    sdc_tensor x = tens(SDC_F32, 2, 3, 8, 1, 1), dyg = tens(SDC_F32, 2, 3, 8, 1, 1);
    sdc_op geglu = {.kind = SDC_OP_GEGLU_BACKWARD, .src = {&x, &dyg}, .dst = &x};
    expect(&geglu, SDC_ERR_SHAPE, "last dim halved");
    /* group_norm_backward needs beta (SiLU's input is recomputed). */
    sdc_tensor xg = tens(SDC_F32, 4, 1, 8, 2, 2), g8 = tens(SDC_F32, 1, 8, 1, 1, 1);
    sdc_op gn = {.kind = SDC_OP_GROUP_NORM_BACKWARD, .src = {&xg, &g8, NULL, &xg}, .dst = &xg,
                 .p.group_norm = {4, 1e-5f, true}};
    expect(&gn, SDC_ERR_SHAPE, "missing beta");
    /* slice: the range must lie inside dim 1. */
    sdc_tensor xs = tens(SDC_F32, 3, 2, 5, 3, 1), ys = tens(SDC_F32, 3, 2, 3, 3, 1);
    sdc_op sl = {.kind = SDC_OP_SLICE, .src = {&xs}, .dst = &ys, .p.slice = {3, 3}};
    expect(&sl, SDC_ERR_SHAPE, "outside dim 1 of size 5");
}
END_TEST

/* An id outside [0, V) is only visible in the data: the backend's check. */
START_TEST(reject_embedding_id_out_of_range) {
    static const int32_t bad[][3] = {{0, 10, 1}, {2, -1, 3}};
    for (int i = 0; i < 2; i++) {
        int32_t idv[3];
        memcpy(idv, bad[i], sizeof idv);
        float table[40], out[12];
        for (int j = 0; j < 40; j++) table[j] = (float)j + 1;
        sdc_tensor ids, tab, y;
        sdc_tensor_init(&ids, SDC_I32, 1, (int64_t[]){3}, idv, NULL);
        sdc_tensor_init(&tab, SDC_F32, 2, (int64_t[]){10, 4}, table, NULL);
        sdc_tensor_init(&y, SDC_F32, 2, (int64_t[]){3, 4}, out, NULL);
        sdc_op op = {.kind = SDC_OP_EMBEDDING, .src = {&ids, &tab}, .dst = &y};
        expect(&op, SDC_ERR_ARG, i == 0 ? "10" : "-1");
    }
}
END_TEST

/* ---------------------------------------------------------------- invariance */

/* The matrix ops must give the same bits for a sample whatever its batch and
 * the thread count (gemm_tiles.h): reproducible seeds on any machine size,
 * and augment's --batch never changes an image. */
static uint32_t lcg = 12345;
static float rnd(void) {
    lcg = lcg * 1664525u + 1013904223u;
    return (float)((lcg >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* y = op(x[first : first+nb]) with the given thread count; x [N, ...]. */
static void run_matrix_op(sdc_op_kind kind, const sdc_tensor *x, int64_t first, int64_t nb,
                          const sdc_tensor *w, const sdc_tensor *b, int threads, float *y,
                          int64_t y_item) {
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    ck_assert_ptr_nonnull(be);
    int64_t item = sdc_tensor_numel(x) / x->shape[0];
    sdc_tensor xs = *x, ys;
    xs.shape[0] = nb;
    xs.data = (float *)x->data + first * item;
    sdc_op op = {.kind = kind, .src = {&xs, w, b}};
    if (kind == SDC_OP_CONV2D) {
        op.p.conv2d.stride = 1;
        op.p.conv2d.pad_top = op.p.conv2d.pad_bottom = op.p.conv2d.pad_left = 1;
        op.p.conv2d.pad_right = 1;
    }
    ck_assert_int_eq(sdc_op_infer(&op, SDC_F32, &ys, &err), SDC_OK);
    ck_assert_int_eq(sdc_tensor_numel(&ys), nb * y_item);
    ys.data = y;
    op.dst = &ys;
    sdc_set_threads(threads);
    sdc_status s = sdc_op_run(be, &op, &err);
    sdc_backend_destroy(be);
    ck_assert_msg(s == SDC_OK, "%s", err.msg);
}

static void check_invariance(sdc_op_kind kind, int ndim, const int64_t *xs, const int64_t *ws,
                             int64_t y_item) {
    sdc_tensor x, w, b;
    int64_t bs[1] = {ws[0]};
    int64_t nx = 1, nw = 1;
    for (int i = 0; i < ndim; i++) nx *= xs[i];
    for (int i = 0; i < (kind == SDC_OP_CONV2D ? 4 : 2); i++) nw *= ws[i];
    float *xd = malloc((size_t)nx * sizeof *xd), *bd = malloc((size_t)ws[0] * sizeof *bd);
    uint16_t *wd = malloc((size_t)nw * sizeof *wd);
    int64_t ny = xs[0] * y_item;
    float *all = malloc((size_t)ny * sizeof *all), *other = malloc((size_t)ny * sizeof *other);
    ck_assert(xd && bd && wd && all && other);
    for (int64_t i = 0; i < nx; i++) xd[i] = rnd();
    for (int64_t i = 0; i < nw; i++) wd[i] = sdc_f32_to_f16(0.05f * rnd());
    for (int64_t i = 0; i < ws[0]; i++) bd[i] = rnd();
    sdc_tensor_init(&x, SDC_F32, ndim, xs, xd, NULL);
    sdc_tensor_init(&w, SDC_F16, kind == SDC_OP_CONV2D ? 4 : 2, ws, wd, NULL);
    sdc_tensor_init(&b, SDC_F32, 1, bs, bd, NULL);
    int saved = sdc_get_threads();
    run_matrix_op(kind, &x, 0, xs[0], &w, &b, 2, all, y_item);
    for (int t = 1; t <= 3; t++) {
        run_matrix_op(kind, &x, 0, xs[0], &w, &b, t, other, y_item);
        ck_assert_msg(!memcmp(all, other, (size_t)ny * sizeof *all), "%s: %d threads differ",
                      sdc_op_name(kind), t);
    }
    for (int64_t i = 0; i < xs[0]; i++) { /* each sample alone */
        run_matrix_op(kind, &x, i, 1, &w, &b, 2, other, y_item);
        ck_assert_msg(!memcmp(all + i * y_item, other, (size_t)y_item * sizeof *all),
                      "%s: sample %lld alone differs from its batch", sdc_op_name(kind),
                      (long long)i);
    }
    sdc_set_threads(saved);
    free(xd), free(bd), free(wd), free(all), free(other);
}

START_TEST(linear_same_bits_any_batch_or_threads) {
    /* 77 text tokens, 1100 features (wgemm: several tasks, partial panel
     * and tile); then 300 rows per sample (OpenBLAS tiles, one partial) */
    int64_t xs[3] = {3, 77, 768}, ws[2] = {1100, 768};
    check_invariance(SDC_OP_LINEAR, 3, xs, ws, 77 * 1100);
    int64_t xs2[3] = {3, 300, 256}, ws2[2] = {200, 256};
    check_invariance(SDC_OP_LINEAR, 3, xs2, ws2, 300 * 200);
}
END_TEST

START_TEST(conv2d_same_bits_any_batch_or_threads) {
    /* Winograd F(2,3) and F(4,3), im2col (few channels; see wino_tile), and
     * wgemm (a small image, K = 432: wgemm.h's sdc_wgemm_pays) */
    static const int64_t shapes[][3] = {{64, 24, 20}, {40, 32, 32}, {16, 9, 11}, {48, 7, 6}};
    for (int i = 0; i < 4; i++) {
        int64_t c = shapes[i][0], h = shapes[i][1], w = shapes[i][2];
        int64_t xs[4] = {3, c, h, w}, ws[4] = {96, c, 3, 3};
        check_invariance(SDC_OP_CONV2D, 4, xs, ws, 96 * h * w);
    }
}
END_TEST

/* The backward ops, too: every output the same bits at 1-3 threads, and each
 * sample's alone as in a batch of 3. Rows of the table, rebuilt at batch 3:
 * conv (Winograd and col2im paths), linear, group norm, attention (causal,
 * and over 1024 keys, where dq is summed from per-chunk partials). */
static const char *const invariant_rows[] = {
    "convb_edge_wino2_19x17_c40", "convb_edge_s2_odd", "linearb_edge_odd",
    "gnb32_1280_8x8_b2_silu", "attnb_edge_causal_blocks", "attnb_chunks_300x2500_2x16"};

static const op_case *row_named(const char *name) {
    for (size_t i = 0; i < op_case_count; i++)
        if (!strcmp(op_cases[i].name, name)) return &op_cases[i];
    ck_abort_msg("no op row %s", name);
    return NULL;
}

/* Runs op (CPU tensors) at `threads`; copies every output into out[i]. */
static void run_copy(sdc_backend *be, const sdc_op *op, int threads, void *out[]) {
    sdc_err err = {0};
    sdc_set_threads(threads);
    ck_assert_msg(sdc_op_run(be, op, &err) == SDC_OK, "%s: %s", sdc_op_name(op->kind), err.msg);
    for (int i = 0; i < sdc_op_dst_count(op->kind); i++) {
        const sdc_tensor *d = i ? op->dst_more[i - 1] : op->dst;
        memcpy(out[i], d->data, sdc_tensor_nbytes(d));
    }
}

/* Whether source i of kind has the batch as its dim 0 (the others are weights). */
static bool batched_src(sdc_op_kind k, int i) {
    if (k == SDC_OP_ATTENTION_BACKWARD) return true;          /* q, k, v, dy */
    if (k == SDC_OP_GROUP_NORM_BACKWARD) return i == 0 || i == 3; /* x, dy */
    return i == 0;                                           /* dy */
}

/* Sample b of a batched tensor, as a batch of one (a view). */
static sdc_tensor sample_of(const sdc_tensor *t, int64_t b) {
    sdc_tensor v = *t;
    v.shape[0] = 1;
    v.data = (char *)t->data + (size_t)b * sdc_tensor_nbytes(t) / (size_t)t->shape[0];
    return v;
}

START_TEST(backward_same_bits_any_batch_or_threads) {
    const op_case *c = row_named(invariant_rows[_i]);
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    ck_assert_ptr_nonnull(be);
    op_opts o = {.seed = seed, .act = SDC_F32, .ndim = c->ndim};
    memcpy(o.shape, c->shape, sizeof o.shape);
    o.shape[0] = 3;
    op_inst in;
    ck_assert_msg(op_inst_build(&in, c, &o, be, &err) == SDC_OK, "%s", err.msg);
    void *ref[SDC_OP_MAX_DST], *other[SDC_OP_MAX_DST];
    for (int i = 0; i < in.ndst; i++) {
        ref[i] = malloc(sdc_tensor_nbytes(&in.hdst[i]));
        other[i] = malloc(sdc_tensor_nbytes(&in.hdst[i]));
        ck_assert(ref[i] && other[i]);
    }
    int saved = sdc_get_threads();
    run_copy(be, &in.op, 2, ref);
    for (int t = 1; t <= 3; t++) {
        run_copy(be, &in.op, t, other);
        for (int i = 0; i < in.ndst; i++)
            ck_assert_msg(!memcmp(ref[i], other[i], sdc_tensor_nbytes(&in.hdst[i])),
                          "%s: output %d differs at %d threads", c->name, i, t);
    }
    for (int64_t b = 0; b < 3; b++) {
        sdc_op one = in.op;
        sdc_tensor src[SDC_OP_MAX_SRC], dst[SDC_OP_MAX_DST];
        for (int i = 0; i < in.nsrc; i++) {
            src[i] = batched_src(c->op.kind, i) ? sample_of(in.op.src[i], b) : *in.op.src[i];
            one.src[i] = &src[i];
        }
        for (int i = 0; i < in.ndst; i++) {
            dst[i] = sample_of(i ? in.op.dst_more[i - 1] : in.op.dst, b);
            if (i) one.dst_more[i - 1] = &dst[i];
            else one.dst = &dst[0];
        }
        sdc_set_threads(2);
        ck_assert_msg(sdc_op_run(be, &one, &err) == SDC_OK, "%s", err.msg);
        for (int i = 0; i < in.ndst; i++)
            ck_assert_msg(!memcmp((char *)ref[i] + (size_t)b * sdc_tensor_nbytes(&dst[i]),
                                  dst[i].data, sdc_tensor_nbytes(&dst[i])),
                          "%s: sample %lld alone differs from its batch (output %d)", c->name,
                          (long long)b, i);
    }
    sdc_set_threads(saved);
    for (int i = 0; i < in.ndst; i++) free(ref[i]), free(other[i]);
    op_inst_free(&in);
    sdc_backend_destroy(be);
}
END_TEST

/* The AVX-512 path (cpu_isa.h) against the AVX2 one: every row of the
 * table, forward and backward, gives the same bits on both (each AVX-512
 * kernel keeps its AVX2 form's per-element arithmetic). Rows at their
 * reduced shape, 2 threads. Skipped, saying so, without AVX-512. */
START_TEST(avx512_path_same_bits_as_avx2) {
    sdc_cpu_features f;
    sdc_cpu_features_detect(&f);
    if (!sdc_cpu_isa_avx512_ok(&f)) {
        printf("ops: cpu paths: no AVX-512 F/BW/VL/DQ here: the avx512 = avx2 bits check skipped\n");
        return;
    }
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    ck_assert_ptr_nonnull(be);
    int saved_threads = sdc_get_threads();
    sdc_set_threads(2);
    sdc_cpu_isa saved = sdc_cpu_isa_override(SDC_CPU_ISA_AVX2);
    size_t rows = 0;
    for (size_t r = 0; r < op_case_count; r++) {
        const op_case *c = &op_cases[r];
        op_opts o = {.seed = seed, .act = SDC_F32, .reduced = true};
        /* Built afresh for each path: in-place ops overwrite an input. */
        op_inst in;
        ck_assert_msg(op_inst_build(&in, c, &o, be, &err) == SDC_OK, "%s: %s", c->name, err.msg);
        void *ref[SDC_OP_MAX_DST];
        int nref = in.ndst;
        sdc_cpu_isa_override(SDC_CPU_ISA_AVX2);
        sdc_status s = sdc_op_run(be, &in.op, &err);
        for (int i = 0; i < nref; i++) {
            const sdc_tensor *d = i ? in.op.dst_more[i - 1] : in.op.dst;
            ref[i] = malloc(sdc_tensor_nbytes(d));
            ck_assert_ptr_nonnull(ref[i]);
            memcpy(ref[i], d->data, sdc_tensor_nbytes(d));
        }
        op_inst_free(&in);
        ck_assert_msg(op_inst_build(&in, c, &o, be, &err) == SDC_OK, "%s: %s", c->name, err.msg);
        sdc_cpu_isa_override(SDC_CPU_ISA_AVX512);
        sdc_status s2 = sdc_op_run(be, &in.op, &err);
        ck_assert_msg(s == s2, "%s: status %d on avx2, %d on avx512", c->name, s, s2);
        for (int i = 0; !s && i < nref; i++) {
            const sdc_tensor *d = i ? in.op.dst_more[i - 1] : in.op.dst;
            ck_assert_msg(!memcmp(ref[i], d->data, sdc_tensor_nbytes(d)),
                          "%s: output %d differs between the avx2 and avx512 paths (seed %llu)",
                          c->name, i, (unsigned long long)seed);
        }
        for (int i = 0; i < nref; i++) free(ref[i]);
        op_inst_free(&in);
        rows++;
    }
    /* F16 -> F32 over all 65536 halves (subnormals, Inf, NaNs): the AVX-512
     * widening against sdc_convert's F16C path. */
    uint16_t *h = malloc(65536 * sizeof *h);
    float *w0 = malloc(65536 * sizeof *w0), *w1 = malloc(65536 * sizeof *w1);
    ck_assert(h && w0 && w1);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    ck_assert_int_eq(sdc_convert(w0, SDC_F32, h, SDC_F16, 65536, &err), SDC_OK);
    sdc_cpu_f16_to_f32_avx512(w1, h, 65533); /* a masked tail too */
    memcpy(w1 + 65533, w0 + 65533, 3 * sizeof *w1);
    ck_assert_msg(!memcmp(w0, w1, 65536 * sizeof *w0), "F16 -> F32 differs on the avx512 path");
    free(h), free(w0), free(w1);
    printf("ops: cpu paths: %zu rows and all 65536 F16 values, the same bits on avx512 as on "
           "avx2\n", rows);
    sdc_cpu_isa_override(saved);
    sdc_set_threads(saved_threads);
    sdc_backend_destroy(be);
}
END_TEST

Suite *suite_ops(void) {
    Suite *s = suite_create("ops");
    seed = op_seed();
    const char *full = getenv("SDC_OPS_FULL");
    reduced = OP_SANITIZED && !(full && !strcmp(full, "1"));
    const char *only = getenv("CK_RUN_SUITE");
    if (!only || !strcmp(only, "ops"))
        printf("ops: seed %llu (rerun with SDC_TEST_SEED=%llu)%s\n", (unsigned long long)seed,
               (unsigned long long)seed,
               reduced ? "; sanitizers: big rows at a reduced shape (SDC_OPS_FULL=1: full)" : "");
    /* One case per op kind (CK_RUN_CASE=conv2d picks one); a loop test per
     * run of consecutive rows of that kind. */
    TCase *tc_of[SDC_OP_COUNT] = {0};
    for (size_t i = 0; i < op_case_count;) {
        sdc_op_kind k = op_cases[i].op.kind;
        size_t j = i;
        while (j < op_case_count && op_cases[j].op.kind == k) j++;
        if (!tc_of[k]) {
            tc_of[k] = tcase_create(sdc_op_name(k));
            tcase_set_timeout(tc_of[k], 900); /* the naive references at full SD shapes */
            suite_add_tcase(s, tc_of[k]);
        }
        tcase_add_loop_test(tc_of[k], op_row, (int)i, (int)j);
        i = j;
    }
    TCase *fd = tcase_create("fd");
    tcase_set_timeout(fd, 300);
    for (size_t i = 0; i < op_case_count; i++)
        if (op_fd_applies(op_cases[i].op.kind) && strstr(op_cases[i].name, "_edge_"))
            tcase_add_loop_test(fd, fd_row, (int)i, (int)i + 1);
    tcase_add_test(fd, fd_covers_every_backward_kind);
    suite_add_tcase(s, fd);
    TCase *v = tcase_create("validation");
    tcase_add_test(v, reject_wrong_dst_shape);
    tcase_add_test(v, reject_channel_mismatch);
    tcase_add_test(v, reject_groups_not_dividing);
    tcase_add_test(v, reject_bad_params);
    tcase_add_test(v, reject_dtypes);
    tcase_add_test(v, reject_embedding_id_out_of_range);
    tcase_add_test(v, reject_backward_args);
    suite_add_tcase(s, v);
    TCase *inv = tcase_create("invariance");
    tcase_add_test(inv, linear_same_bits_any_batch_or_threads);
    tcase_add_test(inv, conv2d_same_bits_any_batch_or_threads);
    tcase_add_loop_test(inv, backward_same_bits_any_batch_or_threads, 0,
                        (int)(sizeof invariant_rows / sizeof invariant_rows[0]));
    suite_add_tcase(s, inv);
    TCase *paths = tcase_create("cpu_paths");
    tcase_set_timeout(paths, 600);
    tcase_add_test(paths, avx512_path_same_bits_as_avx2);
    suite_add_tcase(s, paths);
    return s;
}
