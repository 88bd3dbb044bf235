/* test_grad.c — reverse mode through the frozen models against torch
 * autograd (tests/fixtures/grad_io.safetensors, tests/make_grad_fixtures.py),
 * on the tiny SD-structured model:
 *   text      d/d placeholder rows through the CLIP text encoder alone;
 *   unet      d/d encoder_hidden_states through the UNet (even and odd latents);
 *   e2e       sdc_ti_loss_grad (eps and v prediction) with fixed t and noise;
 *   memory    the checkpointed backward's arena peak against the forward's;
 *   refusals  bad batches get a status naming the problem.
 * The requirement is rel-L2 <= 1e-4 in F32 against autograd; each check's
 * measured value is in its comment. */
#include "suites.h"
#include "test_util.h"

#include "../src/models/checkpoint.h"
#include "../src/models/clip_text_backward.h"
#include "../src/models/unet_backward.h"
#include "../src/pipeline/schedule.h"
#include "../src/train/textinv_grad.h"
#include "op_cases.h" /* OP_SANITIZED */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRAD_IO "tests/fixtures/grad_io.safetensors"
#define TINY "tests/fixtures/tiny/diffusers"
#define REGEN "build/venv/bin/python tests/make_grad_fixtures.py"

static sdc_tensor *fixture(const char *name, sdc_dtype dt) { return tu_fixture(GRAD_IO, name, dt, REGEN); }

/* I64/I32 timesteps as F32. */
static sdc_tensor *timesteps_f32(const char *name) { return tu_timesteps_f32(GRAD_IO, name, REGEN); }

static void expect_close(const char *what, const sdc_tensor *got, const sdc_tensor *want,
                         double tol) {
    sdc_compare_result r;
    sdc_err err = {0};
    ck_assert_msg(sdc_compare(got, want, &r, &err) == SDC_OK, "%s: %s", what, err.msg);
    printf("grad: %-40s max-abs %.3g  rel-L2 %.3g  (tol %.1e)\n", what, r.max_abs, r.rel_l2, tol);
    fflush(stdout);
    ck_assert_msg(r.rel_l2 <= tol, "%s: rel-L2 %.3g over %.1e (max-abs %.3g)", what, r.rel_l2, tol,
                  r.max_abs);
}

typedef struct env {
    sdc_backend *be;
    sdc_arena *arena;
    sdc_checkpoint *ck;
    sdc_clip_text clip;
    sdc_unet unet;
    sdc_err err;
} env;

static void env_open(env *e) {
    memset(e, 0, sizeof *e);
    e->be = sdc_cpu_backend_create(&e->err);
    ck_assert_ptr_nonnull(e->be);
    e->arena = sdc_arena_create(e->be, 0, &e->err);
    ck_assert_ptr_nonnull(e->arena);
    e->ck = sdc_checkpoint_open(TINY, &e->err);
    ck_assert_msg(e->ck, "%s", e->err.msg);
    ck_assert_msg(sdc_clip_text_load(&e->clip, e->ck, e->be, &e->err) == SDC_OK, "%s", e->err.msg);
    ck_assert_msg(sdc_unet_load(&e->unet, e->ck, e->be, &e->err) == SDC_OK, "%s", e->err.msg);
}

static void env_close(env *e) {
    ck_assert_uint_eq(sdc_arena_in_use(e->arena), 0); /* every activation was released */
    sdc_clip_text_free(&e->clip);
    sdc_unet_free(&e->unet);
    sdc_checkpoint_close(e->ck);
    sdc_arena_destroy(e->arena);
    sdc_backend_destroy(e->be);
}

/* ---------------------------------------------------------------- text */

START_TEST(text_encoder_grad_matches_torch) {
    env e;
    env_open(&e);
    sdc_tensor *ids = fixture("te.ids", SDC_I32), *extra = fixture("te.extra", SDC_F32);
    sdc_tensor *dy = fixture("te.dy", SDC_F32), *want_out = fixture("te.out", SDC_F32);
    sdc_tensor *want = fixture("te.grad", SDC_F32);
    int n_extra = (int)extra->shape[0], B = (int)ids->shape[0];
    sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
    sdc_clip_tape tape;
    sdc_tensor y = sdc_clip_text_forward_tape(&ex, &e.clip, ids->data, B, 0, extra->data, n_extra,
                                              &tape);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    /* measured rel-L2: 1.9e-7 */
    expect_close("text: last_hidden_state", &y, want_out, 1e-5);
    /* The taped forward is the plain forward, bit for bit. */
    sdc_tensor y0 = sdc_clip_text_forward(&ex, &e.clip, ids->data, B, 0, extra->data, n_extra);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    ck_assert_msg(!memcmp(y.data, y0.data, sdc_tensor_nbytes(&y)), "taped forward differs");
    sdc_x_free(&ex, &y0);
    sdc_tensor *grad = sdc_tensor_new(SDC_F32, 2, want->shape, &e.err);
    sdc_tensor dyt = sdc_x_from_host(&ex, dy->data, SDC_F32, 3, dy->shape);
    ck_assert_msg(sdc_clip_text_backward(&ex, &e.clip, &tape, dyt, grad->data) == SDC_OK, "%s",
                  e.err.msg);
    /* measured rel-L2: 4.6e-7 */
    expect_close("text: d/d extra rows", grad, want, 1e-4);
    sdc_x_free(&ex, &dyt);
    sdc_x_free(&ex, &y);
    sdc_tensor_free(grad);
    sdc_tensor_free(ids), sdc_tensor_free(extra), sdc_tensor_free(dy);
    sdc_tensor_free(want_out), sdc_tensor_free(want);
    env_close(&e);
}
END_TEST

/* ---------------------------------------------------------------- unet */

/* _i: 0 the [2, 4, 16, 24] latent, 1 the odd [1, 4, 9, 13] one. */
START_TEST(unet_ctx_grad_matches_torch) {
    const char *name = _i ? "unet_odd" : "unet";
    char key[64];
#define KEY(s) (snprintf(key, sizeof key, "%s.%s", name, s), key)
    env e;
    env_open(&e);
    sdc_tensor *x = fixture(KEY("x"), SDC_F32), *ctx = fixture(KEY("ctx"), SDC_F32);
    sdc_tensor *dy = fixture(KEY("dy"), SDC_F32), *want_out = fixture(KEY("out"), SDC_F32);
    sdc_tensor *want = fixture(KEY("dctx"), SDC_F32), *t = timesteps_f32(KEY("t"));
#undef KEY
    sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
    sdc_unet_tape tape;
    sdc_tensor y = sdc_unet_forward_tape(&ex, &e.unet, *x, *t, *ctx, &tape);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    char what[96];
    snprintf(what, sizeof what, "%s: prediction", name);
    /* measured rel-L2: 1.3e-6 (as the plain forward in test_models.c) */
    expect_close(what, &y, want_out, 1e-5);
    sdc_tensor y0 = sdc_unet_forward(&ex, &e.unet, *x, *t, *ctx);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    ck_assert_msg(!memcmp(y.data, y0.data, sdc_tensor_nbytes(&y)), "taped forward differs");
    sdc_x_free(&ex, &y0);
    sdc_x_free(&ex, &y);
    sdc_tensor dctx = sdc_unet_backward(&ex, &e.unet, &tape, *dy);
    ck_assert_msg(ex.status == SDC_OK, "%s", e.err.msg);
    snprintf(what, sizeof what, "%s: d/d encoder_hidden_states", name);
    /* measured rel-L2: 3.1e-6 (16x24), 2.7e-6 (9x13) */
    expect_close(what, &dctx, want, 1e-4);
    sdc_x_free(&ex, &dctx);
    sdc_tensor_free(x), sdc_tensor_free(ctx), sdc_tensor_free(dy), sdc_tensor_free(t);
    sdc_tensor_free(want_out), sdc_tensor_free(want);
    env_close(&e);
}
END_TEST

/* ---------------------------------------------------------------- end to end */

typedef struct e2e {
    sdc_tensor *ids, *extra, *latents, *noise, *ts;
    float ac[SDC_TRAIN_STEPS];
    sdc_ti_batch batch;
} e2e;

static void e2e_load(e2e *d) {
    d->ids = fixture("e2e.ids", SDC_I32);
    d->extra = fixture("e2e.extra", SDC_F32);
    d->latents = fixture("e2e.latents", SDC_F32);
    d->noise = fixture("e2e.noise", SDC_F32);
    d->ts = fixture("e2e.timesteps", SDC_I32);
    sdc_schedule_alphas_cumprod(d->ac);
    d->batch = (sdc_ti_batch){.batch = (int)d->ids->shape[0], .h = (int)d->latents->shape[2],
                              .w = (int)d->latents->shape[3], .ids = d->ids->data,
                              .latents = d->latents->data, .noise = d->noise->data,
                              .timesteps = d->ts->data};
}

static void e2e_free(e2e *d) {
    sdc_tensor_free(d->ids), sdc_tensor_free(d->extra), sdc_tensor_free(d->latents);
    sdc_tensor_free(d->noise), sdc_tensor_free(d->ts);
}

/* _i: 0 epsilon prediction, 1 v prediction. */
START_TEST(ti_loss_grad_matches_torch) {
    const char *pt = _i ? "v" : "eps";
    env e;
    env_open(&e);
    e2e d;
    e2e_load(&d);
    char key[64];
    snprintf(key, sizeof key, "e2e.%s.loss", pt);
    sdc_tensor *want_loss = fixture(key, SDC_F32);
    snprintf(key, sizeof key, "e2e.%s.grad", pt);
    sdc_tensor *want = fixture(key, SDC_F32);
    sdc_ti_model m = {.clip = &e.clip, .unet = &e.unet, .alphas_cumprod = d.ac,
                      .prediction = _i ? SDC_PREDICT_V : SDC_PREDICT_EPSILON};
    int n_extra = (int)d.extra->shape[0];
    sdc_tensor *grad = sdc_tensor_new(SDC_F32, 2, want->shape, &e.err);
    memset(grad->data, 0xff, sdc_tensor_nbytes(grad)); /* NaN: every element must be written */
    float loss = NAN, loss2 = NAN;
    sdc_exec ex = sdc_exec_begin(e.be, e.arena, &e.err);
    ck_assert_msg(sdc_ti_loss_grad(&ex, &m, d.extra->data, n_extra, &d.batch, &loss, grad->data) ==
                  SDC_OK, "%s", e.err.msg);
    ck_assert_msg(sdc_ti_loss(&ex, &m, d.extra->data, n_extra, &d.batch, &loss2) == SDC_OK, "%s",
                  e.err.msg);
    double want_l = ((float *)want_loss->data)[0];
    printf("grad: e2e %-3s loss %.9g, torch %.9g (rel %.2g); sdc_ti_loss %.9g\n", pt, loss, want_l,
           fabs(loss - want_l) / want_l, loss2);
    /* measured: equal (eps and v) */
    ck_assert_msg(fabs(loss - want_l) <= 1e-5 * want_l, "loss %.9g, torch %.9g", loss, want_l);
    ck_assert_msg(loss == loss2, "sdc_ti_loss %.9g differs from sdc_ti_loss_grad's %.9g", loss2,
                  loss);
    snprintf(key, sizeof key, "e2e %s: d loss/d extra", pt);
    /* measured rel-L2: 1.5e-6 (eps), 8.6e-7 (v) */
    expect_close(key, grad, want, 1e-4);
    /* The same against float64 autograd (torch's float32 is within 2.2e-6
     * / 3.3e-6 of it, see make_grad_fixtures.py): measured 2.1e-6, 8.7e-7. */
    snprintf(key, sizeof key, "e2e.%s.grad64", pt);
    sdc_tensor *want64 = fixture(key, SDC_F32);
    snprintf(key, sizeof key, "e2e %s: d loss/d extra vs float64", pt);
    expect_close(key, grad, want64, 1e-4);
    sdc_tensor_free(want64);
    sdc_tensor_free(grad), sdc_tensor_free(want), sdc_tensor_free(want_loss);
    e2e_free(&d);
    env_close(&e);
}
END_TEST

/* ---------------------------------------------------------------- memory */

/* Checkpointing bounds the backward's activation memory: on the tiny model
 * at a 64x64 latent (a 512² image; 32x32 under the sanitizers, which make
 * it minutes), the arena peak of a whole loss-and-gradient call against that
 * of one plain loss (text encoder + UNet forward): the checkpoints, the last
 * up level's kept activations (unet_backward.h), one layer's rebuilt ones and
 * the gradients. Measured 4.78x at 64x64 (8.46 -> 40.4 MB), 4.80x at 32x32
 * (2.12 -> 10.2 MB); rerunning every layer it was 2.73x. Keeping every
 * activation would take about 9x (an estimate from the tensor sizes: the
 * tiny model's 16 transformers alone hold ~60 MB at 64x64). */
#define PEAK_RATIO_MAX 5.5
#define PEAK_LATENT (OP_SANITIZED ? 32 : 64)

START_TEST(backward_memory_is_bounded) {
    env e;
    env_open(&e);
    e2e d;
    e2e_load(&d);
    int B = 1, h = PEAK_LATENT, w = PEAK_LATENT;
    size_t n = (size_t)4 * h * w;
    float *lat = malloc(n * sizeof *lat), *noise = malloc(n * sizeof *noise);
    for (size_t i = 0; i < n; i++) {
        lat[i] = 0.5f * sinf(0.37f * (float)i);
        noise[i] = cosf(0.11f * (float)i * (float)(i % 7));
    }
    int32_t ts[1] = {500};
    sdc_ti_batch b = {.batch = B, .h = h, .w = w, .ids = d.ids->data, .latents = lat,
                      .noise = noise, .timesteps = ts};
    sdc_ti_model m = {.clip = &e.clip, .unet = &e.unet, .alphas_cumprod = d.ac};
    /* One plain forward on a fresh arena. */
    sdc_arena *fa = sdc_arena_create(e.be, 1 << 20, &e.err);
    sdc_exec ex = sdc_exec_begin(e.be, fa, &e.err);
    float loss;
    ck_assert_msg(sdc_ti_loss(&ex, &m, d.extra->data, 2, &b, &loss) == SDC_OK, "%s", e.err.msg);
    size_t fwd = sdc_arena_peak(fa);
    sdc_arena_destroy(fa);
    sdc_arena *ba = sdc_arena_create(e.be, 1 << 20, &e.err);
    ex = sdc_exec_begin(e.be, ba, &e.err);
    float grad[16];
    ck_assert_msg(sdc_ti_loss_grad(&ex, &m, d.extra->data, 2, &b, &loss, grad) == SDC_OK, "%s",
                  e.err.msg);
    size_t bwd = sdc_arena_peak(ba);
    ck_assert_uint_eq(sdc_arena_in_use(ba), 0);
    sdc_arena_destroy(ba);
    printf("grad: arena peak at %dx%d: forward %.2f MB, loss+gradient %.2f MB (%.2fx, max %.1fx)\n",
           h, w, fwd / 1e6, bwd / 1e6, (double)bwd / (double)fwd, PEAK_RATIO_MAX);
    fflush(stdout);
    ck_assert_msg((double)bwd <= PEAK_RATIO_MAX * (double)fwd, "backward peak %zu vs forward %zu",
                  bwd, fwd);
    free(lat), free(noise);
    e2e_free(&d);
    env_close(&e);
}
END_TEST

/* ---------------------------------------------------------------- refusals */

static void expect_refused(env *e, const sdc_ti_model *m, const sdc_ti_batch *b, int n_extra,
                           const float *extra, sdc_status want, const char *needle) {
    sdc_exec ex = sdc_exec_begin(e->be, e->arena, &e->err);
    float loss = 0, grad[16];
    sdc_status s = sdc_ti_loss_grad(&ex, m, extra, n_extra, b, &loss, grad);
    ck_assert_msg(s == want, "got %s (%s), want %s", sdc_status_name(s), e->err.msg,
                  sdc_status_name(want));
    ck_assert_msg(strstr(e->err.msg, needle), "message \"%s\" lacks \"%s\"", e->err.msg, needle);
    ck_assert_uint_eq(sdc_arena_in_use(e->arena), 0);
}

START_TEST(bad_batches_are_refused) {
    env e;
    env_open(&e);
    e2e d;
    e2e_load(&d);
    sdc_ti_model m = {.clip = &e.clip, .unet = &e.unet, .alphas_cumprod = d.ac};
    const float *x = d.extra->data;
    sdc_ti_batch b = d.batch;
    int32_t bad_t[2] = {5, 1000};
    b.timesteps = bad_t;
    expect_refused(&e, &m, &b, 2, x, SDC_ERR_ARG, "timestep 1000 outside [0, 1000)");
    b = d.batch;
    b.batch = 0;
    expect_refused(&e, &m, &b, 2, x, SDC_ERR_ARG, "batch 0");
    b = d.batch;
    b.noise = NULL;
    expect_refused(&e, &m, &b, 2, x, SDC_ERR_ARG, "missing input");
    /* ids name extra rows 0 and 1: with one row, id vocab + 1 is out of range. */
    expect_refused(&e, &m, &d.batch, 1, x, SDC_ERR_ARG, "token id 49409");
    sdc_ti_model bad = m;
    bad.prediction = (sdc_ti_prediction)7;
    expect_refused(&e, &bad, &d.batch, 2, x, SDC_ERR_ARG, "prediction type 7");
    bad = m;
    bad.clip_skip = 5;
    expect_refused(&e, &bad, &d.batch, 2, x, SDC_ERR_ARG, "clip skip 5");
    e2e_free(&d);
    env_close(&e);
}
END_TEST

Suite *suite_grad(void) {
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("torch");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, text_encoder_grad_matches_torch);
    tcase_add_loop_test(tc, unet_ctx_grad_matches_torch, 0, 2);
    tcase_add_loop_test(tc, ti_loss_grad_matches_torch, 0, 2);
    suite_add_tcase(s, tc);
    TCase *mem = tcase_create("memory");
    tcase_set_timeout(mem, 300);
    tcase_add_test(mem, backward_memory_is_bounded);
    suite_add_tcase(s, mem);
    TCase *bad = tcase_create("refusals");
    tcase_add_test(bad, bad_batches_are_refused);
    suite_add_tcase(s, bad);
    return s;
}
