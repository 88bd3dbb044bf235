/* clip_text_backward.c — the CLIP text encoder forward that keeps each
 * layer's input, and its adjoint down to the token embeddings (see
 * clip_text_backward.h; the forward is clip_text.c). */
#include "clip_text_backward.h"

#include <stdlib.h>
#include <string.h>

sdc_tensor sdc_clip_text_forward_tape(sdc_exec *ex, const sdc_clip_text *m, const int32_t *ids,
                                      int batch, int skip, const float *extra, int n_extra,
                                      sdc_clip_tape *tp) {
    const sdc_clip_text_config *c = &m->cfg;
    sdc_tensor none = {0};
    memset(tp, 0, sizeof *tp);
    sdc_tensor x = sdc_clip_text_embed(ex, m, ids, batch, skip, extra, n_extra);
    if (ex->status) return none;
    int layers = c->layers - skip;
    tp->x = calloc((size_t)layers + 1, sizeof *tp->x);
    if (!tp->x) {
        sdc_x_free(ex, &x);
        ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "clip text backward: out of memory");
        return none;
    }
    tp->batch = batch;
    tp->ids = ids;
    tp->n_extra = n_extra;
    /* The layers update x in place: each one's input is kept as a copy. */
    for (int i = 0; i < layers; i++) {
        tp->x[tp->nx++] = sdc_x_copy(ex, x);
        sdc_clip_layer_forward(ex, &m->layer[i], c->heads, c->eps, true, x);
    }
    tp->x[tp->nx++] = x;
    sdc_tensor y = sdc_x_layer_norm(ex, x, &m->final_ln_w, &m->final_ln_b, c->eps);
    if (ex->status) sdc_clip_tape_free(ex, tp);
    return y;
}

void sdc_clip_tape_free(sdc_exec *ex, sdc_clip_tape *tp) {
    for (int i = 0; i < tp->nx; i++) sdc_x_free(ex, &tp->x[i]);
    free(tp->x);
    memset(tp, 0, sizeof *tp);
}

/* Forward (clip_text.c), x [B, T, D]:
 *   x1 = x + out(attn(q(h), k(h), v(h), causal)),  h = LN1(x)
 *   y  = x1 + fc2(quick_gelu(fc1(LN2(x1))))
 * dy [B, T, D] -> dx. The layer is rerun from x first. */
static sdc_tensor layer_backward(sdc_exec *ex, const clip_text_layer *L, int heads, float eps,
                                 sdc_tensor x, sdc_tensor dy) {
    sdc_tensor q, k, v;
    sdc_clip_layer_qkv(ex, L, eps, x, &q, &k, &v);
    sdc_tensor a = sdc_x_attention(ex, q, k, v, heads, true);
    sdc_tensor o = sdc_x_linear(ex, a, &L->out_w, &L->out_b);
    sdc_x_free(ex, &a);
    sdc_tensor x1 = sdc_x_add(ex, x, o);
    sdc_x_free(ex, &o);
    sdc_tensor h = sdc_x_layer_norm(ex, x1, &L->ln2_w, &L->ln2_b, eps);
    sdc_tensor f = sdc_x_linear(ex, h, &L->fc1_w, &L->fc1_b); /* [B, T, F] */
    sdc_x_free(ex, &h);

    /* MLP: dx1 = dy + LN2ᵀ(fc1ᵀ(quick_gelu'(f)·fc2ᵀ(dy))) */
    sdc_tensor g = sdc_x_linear_backward(ex, dy, &L->fc2_w);
    sdc_tensor gf = sdc_x_act_backward(ex, SDC_OP_QUICK_GELU_BACKWARD, f, g);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &f);
    g = sdc_x_linear_backward(ex, gf, &L->fc1_w);
    sdc_x_free(ex, &gf);
    sdc_tensor dx = sdc_x_layer_norm_backward(ex, x1, &L->ln2_w, g, eps);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &x1);
    sdc_x_add_inplace(ex, dx, dy); /* dx: d x1 */

    /* Attention: dx = dx1 + LN1ᵀ(q, k, v projections' adjoints) */
    g = sdc_x_linear_backward(ex, dx, &L->out_w);
    sdc_tensor dq, dk, dv;
    sdc_x_attention_backward(ex, q, k, v, g, heads, true, &dq, &dk, &dv);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &q), sdc_x_free(ex, &k), sdc_x_free(ex, &v);
    g = sdc_x_linear_backward(ex, dq, &L->q_w);
    sdc_tensor gk = sdc_x_linear_backward(ex, dk, &L->k_w);
    sdc_x_accumulate(ex, &g, &gk);
    gk = sdc_x_linear_backward(ex, dv, &L->v_w);
    sdc_x_accumulate(ex, &g, &gk);
    sdc_x_free(ex, &dq), sdc_x_free(ex, &dk), sdc_x_free(ex, &dv);
    sdc_tensor gn = sdc_x_layer_norm_backward(ex, x, &L->ln1_w, g, eps);
    sdc_x_free(ex, &g);
    sdc_x_accumulate(ex, &dx, &gn);
    return dx;
}

sdc_status sdc_clip_text_backward(sdc_exec *ex, const sdc_clip_text *m, sdc_clip_tape *tp,
                                  sdc_tensor dy, float *grad) {
    const sdc_clip_text_config *c = &m->cfg;
    int D = c->width, T = c->max_pos;
    if (!ex->status && (tp->nx < 1 || dy.ndim != 3 || dy.shape[0] != tp->batch ||
                        dy.shape[1] != T || dy.shape[2] != D))
        ex->status = sdc_err_set(ex->err, SDC_ERR_SHAPE, "clip text backward: dy must be "
                                 "[%d, %d, %d] after a taped forward", tp->batch, T, D);
    /* y = LN_final(x_L), then the layers last to first. */
    sdc_tensor g = {0};
    if (!ex->status)
        g = sdc_x_layer_norm_backward(ex, tp->x[tp->nx - 1], &m->final_ln_w, dy, c->eps);
    for (int i = tp->nx - 2; i >= 0 && !ex->status; i--) {
        sdc_tensor next = layer_backward(ex, &m->layer[i], c->heads, c->eps, tp->x[i], g);
        sdc_x_free(ex, &g);
        sdc_x_free(ex, &tp->x[i + 1]);
        g = next;
    }
    /* x0 = token_embedding[ids] + position_embedding: an extra row's gradient
     * is the sum over the positions that use it. */
    size_t n = (size_t)tp->batch * (size_t)T;
    float *host = ex->status ? NULL : malloc(n * (size_t)D * sizeof *host);
    if (!ex->status && !host)
        ex->status = sdc_err_set(ex->err, SDC_ERR_OOM, "clip text backward: out of memory");
    if (!ex->status && sdc_x_to_host(ex, &g, host) == SDC_OK) {
        memset(grad, 0, (size_t)tp->n_extra * (size_t)D * sizeof *grad);
        for (size_t i = 0; i < n; i++) {
            int r = tp->ids[i] - c->vocab;
            if (r < 0 || r >= tp->n_extra) continue;
            for (int d = 0; d < D; d++) grad[(size_t)r * D + d] += host[i * D + d];
        }
    }
    free(host);
    sdc_x_free(ex, &g);
    sdc_clip_tape_free(ex, tp);
    return ex->status;
}
