/* unet_call.c — a sampling step's UNet call, eager or as a replayed CUDA
 * graph (see unet_call.h). */
#include "unet_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sdc_status sdc_unet_call_init(sdc_unet_call *c, sdc_pipeline *p, sdc_dtype act, int rows, int h,
                              int w, sdc_tensor ctx, sdc_err *err) {
    memset(c, 0, sizeof *c);
    c->p = p, c->act = act, c->rows = rows, c->h = h, c->w = w, c->ctx = ctx;
    c->try_graph = p->be->device == SDC_DEVICE_CUDA && p->cuda_graph;
    sdc_exec ex = sdc_exec_begin(p->be, p->arena, err);
    c->x = sdc_x_new(&ex, SDC_F32, 4, (const int64_t[]){rows, 4, h, w});
    c->t = sdc_x_new(&ex, SDC_F32, 1, (const int64_t[]){rows});
    if (ex.status) sdc_unet_call_free(c);
    return ex.status;
}

void sdc_unet_call_free(sdc_unet_call *c) {
    if (!c->p) return;
    sdc_exec ex = sdc_exec_begin(c->p->be, c->p->arena, NULL);
    if (c->graph) sdc_cuda_graph_free(c->p->be, c->graph);
    sdc_x_free(&ex, &c->y);
    sdc_x_free(&ex, &c->t);
    sdc_x_free(&ex, &c->x);
    c->graph = NULL;
    c->p = NULL;
}

/* The forward on c's inputs: *y [rows, 4, h, w] F32 from the arena. */
static sdc_status forward(sdc_unet_call *c, sdc_tensor *y, sdc_err *err) {
    sdc_pipeline *p = c->p;
    sdc_exec ex = sdc_pipeline_exec(p, c->act, err);
    bool f32 = c->act == SDC_F32;
    sdc_tensor xa = f32 ? c->x : sdc_x_convert(&ex, c->x, c->act);
    sdc_tensor ya = sdc_unet_forward(&ex, &p->unet, xa, c->t, c->ctx);
    if (!f32) {
        sdc_x_free(&ex, &xa);
        *y = sdc_x_convert(&ex, ya, SDC_F32);
        sdc_x_free(&ex, &ya);
    } else {
        *y = ya;
    }
    return ex.status;
}

/* Records the forward; on success c->graph and c->y are set. Any failure
 * turns graphs off for this call's lifetime, with the reason in p->graph_note. */
static void record(sdc_unet_call *c) {
    sdc_pipeline *p = c->p;
    sdc_err e = {0};
    sdc_tensor y = {0};
    sdc_status s = sdc_cuda_graph_begin(p->be, &e);
    if (!s) {
        s = forward(c, &y, &e);
        sdc_err end_err = {0};
        sdc_cuda_graph *g = NULL;
        /* End even after a failure: it leaves recording mode. */
        sdc_status se = sdc_cuda_graph_end(p->be, &g, &end_err);
        if (!s && se) {
            s = se;
            e = end_err;
        }
        if (!s) c->graph = g, c->y = y;
        else sdc_cuda_graph_free(p->be, g);
    }
    if (s) {
        if (y.data) sdc_arena_release(p->arena, y.data);
        c->try_graph = false;
        snprintf(p->graph_note, sizeof p->graph_note, "cuda graph off, steps run eagerly: %.400s",
                 e.msg);
    }
}

sdc_status sdc_unet_call_run(sdc_unet_call *c, const float *x, float t, float *eps,
                             sdc_err *err) {
    sdc_pipeline *p = c->p;
    sdc_backend *be = p->be;
    size_t n = (size_t)c->rows * 4 * c->h * c->w;
    float tv[512];
    if (c->rows > (int)(sizeof tv / sizeof *tv))
        return sdc_err_set(err, SDC_ERR_ARG, "unet: %d rows (at most 512)", c->rows);
    for (int r = 0; r < c->rows; r++) tv[r] = t;
    sdc_status s = be->upload(be, c->x.data, x, sizeof *x * n, err);
    if (!s) s = be->upload(be, c->t.data, tv, sizeof *tv * (size_t)c->rows, err);
    if (s) return s;
    /* The first call runs eagerly: it grows the arena and scratch to their
     * peak, which recording then finds in place. */
    if (!c->graph && c->try_graph && c->calls >= 1) record(c);
    c->calls++;
    if (c->graph) {
        c->replays++;
        s = sdc_cuda_graph_launch(be, c->graph, err);
        return s ? s : be->download(be, eps, c->y.data, sizeof *eps * n, err);
    }
    sdc_tensor y = {0};
    s = forward(c, &y, err);
    if (!s) s = be->download(be, eps, y.data, sizeof *eps * n, err);
    if (y.data) sdc_arena_release(p->arena, y.data);
    return s;
}
