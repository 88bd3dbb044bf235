/* unet_blocks_backward.c — the adjoints of the UNet's resnet and
 * cross-attention transformer (see unet.c for their forwards). Each layer's
 * forward is written once more here in a form that keeps the activations its
 * adjoint reads (the *_acts structs): the backward reruns it from the layer
 * input (gradient checkpointing), or the taped forward runs it that way from
 * the start for the layers whose activations it keeps. Only data gradients:
 * the conditioning's, and the layer input's. The ops are the forward's, in
 * the same order, so a kept layer's output is the plain forward's bit for bit. */
#include "unet_blocks.h"

#define SHAPE(...) (const int64_t[]){__VA_ARGS__}

void sdc_unet_resnet_acts_free(sdc_exec *ex, unet_resnet_acts *a) { sdc_x_free(ex, &a->h1); }

void sdc_unet_transformer_acts_free(sdc_exec *ex, unet_transformer_acts *a) {
    sdc_tensor *all[] = {&a->h0, &a->h1, &a->h2, &a->q, &a->k, &a->v,
                         &a->q2, &a->k2, &a->v2, &a->f};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sdc_x_free(ex, all[i]);
}

/* Forward (unet.c):
 *   h1  = conv1(GN+SiLU(x)) + temb_proj(temb)
 *   out = conv2(GN+SiLU(h1)) + skip(x)         skip: 1x1 conv or identity
 * x [B, in, H, W], temb_act [B, 4·C0]; keeps h1; out [B, out, H, W] with want_out. */
sdc_tensor sdc_unet_resnet_forward_acts(sdc_exec *ex, const sdc_resnet *r,
                                        const sdc_unet_config *c, sdc_tensor x,
                                        sdc_tensor temb_act, bool want_out, unet_resnet_acts *a) {
    sdc_tensor n = sdc_x_group_norm(ex, x, &r->norm1_w, &r->norm1_b, c->groups, c->norm_eps, true);
    a->h1 = sdc_x_conv2d(ex, n, &r->conv1_w, &r->conv1_b, 1, 1);
    sdc_x_free(ex, &n);
    sdc_tensor t = sdc_x_linear(ex, temb_act, &r->temb_w, &r->temb_b); /* [B, out] */
    sdc_x_add_inplace(ex, a->h1, sdc_x_reshape(ex, t, 4, SHAPE(t.shape[0], t.shape[1], 1, 1)));
    sdc_x_free(ex, &t);
    sdc_tensor out = {0};
    if (!want_out) return out;
    n = sdc_x_group_norm(ex, a->h1, &r->norm2_w, &r->norm2_b, c->groups, c->norm_eps, true);
    out = sdc_x_conv2d(ex, n, &r->conv2_w, &r->conv2_b, 1, 1);
    sdc_x_free(ex, &n);
    sdc_unet_resnet_add_skip(ex, r, x, out);
    return out;
}

/* dy [B, out, H, W] -> dx [B, in, H, W]; a: the forward's activations
 * (consumed), or NULL to rebuild them from x. */
sdc_tensor sdc_unet_resnet_backward(sdc_exec *ex, const sdc_resnet *r, const sdc_unet_config *c,
                                    sdc_tensor x, sdc_tensor temb_act, sdc_tensor dy,
                                    unet_resnet_acts *a) {
    unet_resnet_acts rebuilt = {0};
    if (!a) {
        a = &rebuilt;
        sdc_unet_resnet_forward_acts(ex, r, c, x, temb_act, false, a);
    }
    sdc_tensor g = sdc_x_conv2d_backward(ex, dy, &r->conv2_w, 1, 1, 0, 0);
    sdc_tensor gh = sdc_x_group_norm_backward(ex, a->h1, &r->norm2_w, &r->norm2_b, g, c->groups,
                                              c->norm_eps, true); /* d h1; temb is constant */
    sdc_x_free(ex, &g);
    sdc_unet_resnet_acts_free(ex, a);
    g = sdc_x_conv2d_backward(ex, gh, &r->conv1_w, 1, 1, 0, 0);
    sdc_x_free(ex, &gh);
    sdc_tensor dx = sdc_x_group_norm_backward(ex, x, &r->norm1_w, &r->norm1_b, g, c->groups,
                                              c->norm_eps, true);
    sdc_x_free(ex, &g);
    if (r->in != r->out) {
        sdc_tensor s = sdc_x_conv2d_backward(ex, dy, &r->skip_w, 1, 0, 0, 0);
        sdc_x_accumulate(ex, &dx, &s);
    } else {
        sdc_x_add_inplace(ex, dx, dy);
    }
    return dx;
}

/* Forward (unet.c), h tokens-major [B, HW, C]:
 *   h0 = (proj_in(GN(x)))ᵀ
 *   h1 = h0 + o1(attn(q1(n1), k1(n1), v1(n1))),  n1 = LN1(h0)
 *   h2 = h1 + o2(attn(q2(LN2(h1)), k2(ctx), v2(ctx)))
 *   h3 = h2 + ff2(geglu(ff1(LN3(h2))))
 *   out = proj_out(h3ᵀ) + x
 * x [B, C, H, W], ctx [B, T, context]. Keeps what the adjoint reads (h0 and
 * the self-attention's projections only with need_dx); out with want_out. */
sdc_tensor sdc_unet_transformer_forward_acts(sdc_exec *ex, const unet_transformer *t,
                                             const sdc_unet_config *c, sdc_tensor x,
                                             sdc_tensor ctx, bool need_dx, bool want_out,
                                             unet_transformer_acts *a) {
    int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    int heads = c->heads;
    sdc_tensor n = sdc_x_group_norm(ex, x, &t->norm_w, &t->norm_b, c->groups, 1e-6f, false);
    sdc_tensor p = sdc_x_conv2d(ex, n, &t->proj_in_w, &t->proj_in_b, 1, 0);
    sdc_x_free(ex, &n);
    a->h0 = sdc_x_transpose(ex, sdc_x_reshape(ex, p, 3, SHAPE(B, C, H * W)));
    sdc_x_free(ex, &p);

    n = sdc_x_layer_norm(ex, a->h0, &t->ln1_w, &t->ln1_b, 1e-5f);
    a->q = sdc_x_linear(ex, n, &t->q1_w, NULL);
    a->k = sdc_x_linear(ex, n, &t->k1_w, NULL);
    a->v = sdc_x_linear(ex, n, &t->v1_w, NULL);
    sdc_x_free(ex, &n);
    sdc_tensor at = sdc_x_attention(ex, a->q, a->k, a->v, heads, false);
    sdc_tensor o = sdc_x_linear(ex, at, &t->o1_w, &t->o1_b);
    sdc_x_free(ex, &at);
    a->h1 = sdc_x_add(ex, a->h0, o);
    sdc_x_free(ex, &o);
    if (!need_dx) { /* the self-attention needs no adjoint */
        sdc_x_free(ex, &a->h0);
        sdc_x_free(ex, &a->q), sdc_x_free(ex, &a->k), sdc_x_free(ex, &a->v);
    }

    n = sdc_x_layer_norm(ex, a->h1, &t->ln2_w, &t->ln2_b, 1e-5f);
    a->q2 = sdc_x_linear(ex, n, &t->q2_w, NULL);
    sdc_x_free(ex, &n);
    a->k2 = sdc_x_linear(ex, ctx, &t->k2_w, NULL);
    a->v2 = sdc_x_linear(ex, ctx, &t->v2_w, NULL);
    at = sdc_x_attention(ex, a->q2, a->k2, a->v2, heads, false);
    o = sdc_x_linear(ex, at, &t->o2_w, &t->o2_b);
    sdc_x_free(ex, &at);
    a->h2 = sdc_x_add(ex, a->h1, o);
    sdc_x_free(ex, &o);

    n = sdc_x_layer_norm(ex, a->h2, &t->ln3_w, &t->ln3_b, 1e-5f);
    a->f = sdc_x_linear(ex, n, &t->ff1_w, &t->ff1_b); /* [B, HW, 8C] */
    sdc_x_free(ex, &n);
    sdc_tensor out = {0};
    if (!want_out) return out;
    sdc_tensor g = sdc_x_geglu(ex, a->f); /* [B, HW, 4C] */
    o = sdc_x_linear(ex, g, &t->ff2_w, &t->ff2_b);
    sdc_x_free(ex, &g);
    sdc_tensor h3 = sdc_x_add(ex, a->h2, o);
    sdc_x_free(ex, &o);
    sdc_tensor back = sdc_x_transpose(ex, h3); /* [B, C, HW] */
    sdc_x_free(ex, &h3);
    out = sdc_x_conv2d(ex, sdc_x_reshape(ex, back, 4, SHAPE(B, C, H, W)), &t->proj_out_w,
                       &t->proj_out_b, 1, 0);
    sdc_x_free(ex, &back);
    sdc_x_add_inplace(ex, out, x);
    return out;
}

/* dy [B, C, H, W] -> dx [B, C, H, W] (empty without need_dx); adds d/d ctx
 * into *dctx. a: the forward's activations (consumed, taken with the same
 * need_dx), or NULL to rebuild them from x. */
sdc_tensor sdc_unet_transformer_backward(sdc_exec *ex, const unet_transformer *t,
                                         const sdc_unet_config *c, sdc_tensor x, sdc_tensor ctx,
                                         sdc_tensor dy, sdc_tensor *dctx, bool need_dx,
                                         unet_transformer_acts *a) {
    int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    int heads = c->heads;
    sdc_tensor none = {0};
    unet_transformer_acts rebuilt = {0};
    if (!a) {
        a = &rebuilt;
        sdc_unet_transformer_forward_acts(ex, t, c, x, ctx, need_dx, false, a);
    }
    if (ex->status) {
        sdc_unet_transformer_acts_free(ex, a);
        return none;
    }

    /* ---- out = proj_out(h3ᵀ) + x: d h3 */
    sdc_tensor g = sdc_x_conv2d_backward(ex, dy, &t->proj_out_w, 1, 0, 0, 0);
    sdc_tensor dh = sdc_x_transpose(ex, sdc_x_reshape(ex, g, 3, SHAPE(B, C, H * W)));
    sdc_x_free(ex, &g); /* dh: [B, HW, C] */

    /* ---- h3 = h2 + FF(h2) */
    g = sdc_x_linear_backward(ex, dh, &t->ff2_w);                       /* [B, HW, 4C] */
    sdc_tensor gf = sdc_x_act_backward(ex, SDC_OP_GEGLU_BACKWARD, a->f, g); /* [B, HW, 8C] */
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &a->f);
    g = sdc_x_linear_backward(ex, gf, &t->ff1_w);
    sdc_x_free(ex, &gf);
    sdc_tensor gn = sdc_x_layer_norm_backward(ex, a->h2, &t->ln3_w, g, 1e-5f);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &a->h2);
    sdc_x_accumulate(ex, &dh, &gn); /* dh: d h2 */

    /* ---- h2 = h1 + cross-attention(LN2(h1), ctx) */
    g = sdc_x_linear_backward(ex, dh, &t->o2_w);
    sdc_tensor dq, dk, dv;
    sdc_x_attention_backward(ex, a->q2, a->k2, a->v2, g, heads, false, &dq, &dk, &dv);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &a->q2), sdc_x_free(ex, &a->k2), sdc_x_free(ex, &a->v2);
    sdc_tensor gc = sdc_x_linear_backward(ex, dk, &t->k2_w);
    sdc_x_accumulate(ex, dctx, &gc);
    gc = sdc_x_linear_backward(ex, dv, &t->v2_w);
    sdc_x_accumulate(ex, dctx, &gc);
    sdc_x_free(ex, &dk), sdc_x_free(ex, &dv);
    if (!need_dx) {
        sdc_x_free(ex, &dq);
        sdc_x_free(ex, &dh);
        sdc_unet_transformer_acts_free(ex, a);
        return none;
    }
    g = sdc_x_linear_backward(ex, dq, &t->q2_w);
    sdc_x_free(ex, &dq);
    gn = sdc_x_layer_norm_backward(ex, a->h1, &t->ln2_w, g, 1e-5f);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &a->h1);
    sdc_x_accumulate(ex, &dh, &gn); /* dh: d h1 */

    /* ---- h1 = h0 + self-attention(LN1(h0)) */
    g = sdc_x_linear_backward(ex, dh, &t->o1_w);
    sdc_x_attention_backward(ex, a->q, a->k, a->v, g, heads, false, &dq, &dk, &dv);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &a->q), sdc_x_free(ex, &a->k), sdc_x_free(ex, &a->v);
    g = sdc_x_linear_backward(ex, dq, &t->q1_w);
    sdc_tensor gk = sdc_x_linear_backward(ex, dk, &t->k1_w);
    sdc_x_accumulate(ex, &g, &gk);
    gk = sdc_x_linear_backward(ex, dv, &t->v1_w);
    sdc_x_accumulate(ex, &g, &gk);
    sdc_x_free(ex, &dq), sdc_x_free(ex, &dk), sdc_x_free(ex, &dv);
    gn = sdc_x_layer_norm_backward(ex, a->h0, &t->ln1_w, g, 1e-5f);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &a->h0);
    sdc_x_accumulate(ex, &dh, &gn); /* dh: d h0 */

    /* ---- h0 = proj_in(GN(x))ᵀ, out = ... + x */
    g = sdc_x_transpose(ex, dh); /* [B, C, HW] */
    sdc_x_free(ex, &dh);
    gn = sdc_x_conv2d_backward(ex, sdc_x_reshape(ex, g, 4, SHAPE(B, C, H, W)), &t->proj_in_w, 1, 0,
                               0, 0);
    sdc_x_free(ex, &g);
    sdc_tensor dx = sdc_x_group_norm_backward(ex, x, &t->norm_w, &t->norm_b, gn, c->groups, 1e-6f,
                                              false);
    sdc_x_free(ex, &gn);
    sdc_x_add_inplace(ex, dx, dy);
    return dx;
}
