/* backend_models.c — see backend_models.h. */
#include "backend_models.h"

#include "../src/core/arena.h"

#include <check.h>
#include <stdio.h>

bm_side bm_side_open(sdc_backend *be, const char *model) {
    bm_side s = {.be = be};
    sdc_err err = {0};
    ck_assert_ptr_nonnull(be);
    s.arena = sdc_arena_create(be, 0, &err);
    ck_assert_msg(s.arena, "%s", err.msg);
    s.ck = sdc_checkpoint_open(model, &err);
    ck_assert_msg(s.ck, "%s", err.msg);
    return s;
}

void bm_side_close(bm_side *s) {
    ck_assert_uint_eq(sdc_arena_in_use(s->arena), 0); /* every activation was released */
    sdc_checkpoint_close(s->ck);
    sdc_arena_destroy(s->arena);
    sdc_backend_destroy(s->be);
}

sdc_tensor *bm_take_host(sdc_exec *ex, sdc_tensor *t) {
    ck_assert_msg(ex->status == SDC_OK, "%s", ex->err->msg);
    sdc_err err = {0};
    sdc_tensor *h = sdc_tensor_new(SDC_F32, t->ndim, t->shape, &err);
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(sdc_x_to_host(ex, t, h->data) == SDC_OK, "%s", ex->err->msg);
    sdc_x_free(ex, t);
    return h;
}

void bm_expect_close(const char *backend, const char *what, sdc_dtype act, const sdc_tensor *got,
                     const sdc_tensor *want, double tol) {
    sdc_compare_result r;
    sdc_err err = {0};
    ck_assert_msg(sdc_compare(got, want, &r, &err) == SDC_OK, "%s: %s", what, err.msg);
    printf("%s: %-28s %-4s vs cpu: max-abs %.3g  rel-L2 %.3g  (tol %.1e)\n", backend, what,
           sdc_dtype_name(act), r.max_abs, r.rel_l2, tol);
    fflush(stdout);
    ck_assert_msg(r.rel_l2 <= tol, "%s (%s): rel-L2 %.3g over %.1e (max-abs %.3g)", what,
                  sdc_dtype_name(act), r.rel_l2, tol, r.max_abs);
}

sdc_tensor *bm_unet_run(bm_side *sd, const sdc_unet *m, sdc_dtype act, const sdc_tensor *x,
                        const sdc_tensor *t, const sdc_tensor *c) {
    sdc_err err = {0};
    sdc_exec ex = sdc_exec_begin(sd->be, sd->arena, &err);
    ex.act = act;
    sdc_tensor xd = sdc_x_from_host(&ex, x->data, act, x->ndim, x->shape);
    sdc_tensor td = sdc_x_from_host(&ex, t->data, SDC_F32, t->ndim, t->shape); /* always F32 */
    sdc_tensor cd = sdc_x_from_host(&ex, c->data, act, c->ndim, c->shape);
    sdc_tensor y = sdc_unet_forward(&ex, m, xd, td, cd);
    sdc_tensor *h = bm_take_host(&ex, &y);
    sdc_x_free(&ex, &xd);
    sdc_x_free(&ex, &td);
    sdc_x_free(&ex, &cd);
    return h;
}

void bm_vae_run(bm_side *sd, const sdc_vae *m, sdc_dtype act, const sdc_tensor *img,
                const sdc_tensor *z, sdc_tensor *out[3]) {
    sdc_err err = {0};
    sdc_exec ex = sdc_exec_begin(sd->be, sd->arena, &err);
    ex.act = act;
    sdc_tensor xd = sdc_x_from_host(&ex, img->data, act, img->ndim, img->shape);
    sdc_tensor mean, logvar;
    ck_assert_msg(sdc_vae_encode(&ex, m, xd, &mean, &logvar) == SDC_OK, "%s", err.msg);
    sdc_x_free(&ex, &xd);
    out[0] = bm_take_host(&ex, &mean);
    out[1] = bm_take_host(&ex, &logvar);
    sdc_tensor zd = sdc_x_from_host(&ex, z->data, act, z->ndim, z->shape);
    sdc_tensor dec = sdc_vae_decode(&ex, m, zd);
    sdc_x_free(&ex, &zd);
    out[2] = bm_take_host(&ex, &dec);
}
