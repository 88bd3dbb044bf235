/* unet_blocks_backward.c — the adjoints of the UNet's resnet and
 * cross-attention transformer (see unet.c for their forwards). Each reruns
 * its layer's forward from the layer input (gradient checkpointing), keeping
 * just the activations its backward reads, then walks the layer in reverse.
 * Only data gradients: the conditioning's, and the layer input's. */
#include "unet_blocks.h"

#define SHAPE(...) (const int64_t[]){__VA_ARGS__}

/* Forward (unet.c):
 *   h1  = conv1(GN+SiLU(x)) + temb_proj(temb)
 *   out = conv2(GN+SiLU(h1)) + skip(x)         skip: 1x1 conv or identity
 * x [B, in, H, W], temb_act [B, 4·C0], dy [B, out, H, W] -> dx [B, in, H, W] */
sdc_tensor sdc_unet_resnet_backward(sdc_exec *ex, const unet_resnet *r, const sdc_unet_config *c,
                                    sdc_tensor x, sdc_tensor temb_act, sdc_tensor dy) {
    /* Rebuild h1, the second norm's input. */
    sdc_tensor n = sdc_x_group_norm(ex, x, &r->norm1_w, &r->norm1_b, c->groups, c->norm_eps, true);
    sdc_tensor h1 = sdc_x_conv2d(ex, n, &r->conv1_w, &r->conv1_b, 1, 1);
    sdc_x_free(ex, &n);
    sdc_tensor t = sdc_x_linear(ex, temb_act, &r->temb_w, &r->temb_b); /* [B, out] */
    sdc_x_add_inplace(ex, h1, sdc_x_reshape(ex, t, 4, SHAPE(t.shape[0], t.shape[1], 1, 1)));
    sdc_x_free(ex, &t);

    sdc_tensor g = sdc_x_conv2d_backward(ex, dy, &r->conv2_w, 1, 1, 0, 0);
    sdc_tensor gh = sdc_x_group_norm_backward(ex, h1, &r->norm2_w, &r->norm2_b, g, c->groups,
                                              c->norm_eps, true); /* d h1; temb is constant */
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &h1);
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

/* The three projections of an attention's input: q from q_in, k and v from kv_in. */
typedef struct qkv {
    sdc_tensor q, k, v;
} qkv;

/* Forward (unet.c), h tokens-major [B, HW, C]:
 *   h0 = (proj_in(GN(x)))ᵀ
 *   h1 = h0 + o1(attn(q1(n1), k1(n1), v1(n1))),  n1 = LN1(h0)
 *   h2 = h1 + o2(attn(q2(LN2(h1)), k2(ctx), v2(ctx)))
 *   h3 = h2 + ff2(geglu(ff1(LN3(h2))))
 *   out = proj_out(h3ᵀ) + x
 * x, dy [B, C, H, W], ctx [B, T, context]. Adds d/d ctx into *dctx and
 * returns dx, or nothing without need_dx (the first transformer, whose input
 * does not depend on the context: its self-attention needs no adjoint). */
sdc_tensor sdc_unet_transformer_backward(sdc_exec *ex, const unet_transformer *t,
                                         const sdc_unet_config *c, sdc_tensor x, sdc_tensor ctx,
                                         sdc_tensor dy, sdc_tensor *dctx, bool need_dx) {
    int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    int heads = c->heads;
    sdc_tensor none = {0};
    if (ex->status) return none;

    /* ---- Rebuild h0, h1, h2, the attentions' projections and ff1's output. */
    sdc_tensor n = sdc_x_group_norm(ex, x, &t->norm_w, &t->norm_b, c->groups, 1e-6f, false);
    sdc_tensor p = sdc_x_conv2d(ex, n, &t->proj_in_w, &t->proj_in_b, 1, 0);
    sdc_x_free(ex, &n);
    sdc_tensor h0 = sdc_x_transpose(ex, sdc_x_reshape(ex, p, 3, SHAPE(B, C, H * W)));
    sdc_x_free(ex, &p);

    n = sdc_x_layer_norm(ex, h0, &t->ln1_w, &t->ln1_b, 1e-5f);
    qkv s = {sdc_x_linear(ex, n, &t->q1_w, NULL), sdc_x_linear(ex, n, &t->k1_w, NULL),
             sdc_x_linear(ex, n, &t->v1_w, NULL)};
    sdc_x_free(ex, &n);
    sdc_tensor a = sdc_x_attention(ex, s.q, s.k, s.v, heads, false);
    sdc_tensor o = sdc_x_linear(ex, a, &t->o1_w, &t->o1_b);
    sdc_x_free(ex, &a);
    sdc_tensor h1 = sdc_x_add(ex, h0, o);
    sdc_x_free(ex, &o);
    if (!need_dx) { /* h0 and the self-attention's projections are not needed */
        sdc_x_free(ex, &h0);
        sdc_x_free(ex, &s.q), sdc_x_free(ex, &s.k), sdc_x_free(ex, &s.v);
    }

    n = sdc_x_layer_norm(ex, h1, &t->ln2_w, &t->ln2_b, 1e-5f);
    qkv x2 = {sdc_x_linear(ex, n, &t->q2_w, NULL), sdc_x_linear(ex, ctx, &t->k2_w, NULL),
              sdc_x_linear(ex, ctx, &t->v2_w, NULL)};
    sdc_x_free(ex, &n);
    a = sdc_x_attention(ex, x2.q, x2.k, x2.v, heads, false);
    o = sdc_x_linear(ex, a, &t->o2_w, &t->o2_b);
    sdc_x_free(ex, &a);
    sdc_tensor h2 = sdc_x_add(ex, h1, o);
    sdc_x_free(ex, &o);

    n = sdc_x_layer_norm(ex, h2, &t->ln3_w, &t->ln3_b, 1e-5f);
    sdc_tensor f = sdc_x_linear(ex, n, &t->ff1_w, &t->ff1_b); /* [B, HW, 8C] */
    sdc_x_free(ex, &n);

    /* ---- out = proj_out(h3ᵀ) + x: d h3 */
    sdc_tensor g = sdc_x_conv2d_backward(ex, dy, &t->proj_out_w, 1, 0, 0, 0);
    sdc_tensor dh = sdc_x_transpose(ex, sdc_x_reshape(ex, g, 3, SHAPE(B, C, H * W)));
    sdc_x_free(ex, &g); /* dh: [B, HW, C] */

    /* ---- h3 = h2 + FF(h2) */
    g = sdc_x_linear_backward(ex, dh, &t->ff2_w);              /* [B, HW, 4C] */
    sdc_tensor gf = sdc_x_act_backward(ex, SDC_OP_GEGLU_BACKWARD, f, g); /* [B, HW, 8C] */
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &f);
    g = sdc_x_linear_backward(ex, gf, &t->ff1_w);
    sdc_x_free(ex, &gf);
    sdc_tensor gn = sdc_x_layer_norm_backward(ex, h2, &t->ln3_w, g, 1e-5f);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &h2);
    sdc_x_accumulate(ex, &dh, &gn); /* dh: d h2 */

    /* ---- h2 = h1 + cross-attention(LN2(h1), ctx) */
    g = sdc_x_linear_backward(ex, dh, &t->o2_w);
    qkv d2;
    sdc_x_attention_backward(ex, x2.q, x2.k, x2.v, g, heads, false, &d2.q, &d2.k, &d2.v);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &x2.q), sdc_x_free(ex, &x2.k), sdc_x_free(ex, &x2.v);
    sdc_tensor gc = sdc_x_linear_backward(ex, d2.k, &t->k2_w);
    sdc_x_accumulate(ex, dctx, &gc);
    gc = sdc_x_linear_backward(ex, d2.v, &t->v2_w);
    sdc_x_accumulate(ex, dctx, &gc);
    sdc_x_free(ex, &d2.k), sdc_x_free(ex, &d2.v);
    if (!need_dx) {
        sdc_x_free(ex, &d2.q);
        sdc_x_free(ex, &h1);
        sdc_x_free(ex, &dh);
        return none;
    }
    g = sdc_x_linear_backward(ex, d2.q, &t->q2_w);
    sdc_x_free(ex, &d2.q);
    gn = sdc_x_layer_norm_backward(ex, h1, &t->ln2_w, g, 1e-5f);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &h1);
    sdc_x_accumulate(ex, &dh, &gn); /* dh: d h1 */

    /* ---- h1 = h0 + self-attention(LN1(h0)) */
    g = sdc_x_linear_backward(ex, dh, &t->o1_w);
    qkv d1;
    sdc_x_attention_backward(ex, s.q, s.k, s.v, g, heads, false, &d1.q, &d1.k, &d1.v);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &s.q), sdc_x_free(ex, &s.k), sdc_x_free(ex, &s.v);
    g = sdc_x_linear_backward(ex, d1.q, &t->q1_w);
    sdc_tensor gk = sdc_x_linear_backward(ex, d1.k, &t->k1_w);
    sdc_x_accumulate(ex, &g, &gk);
    gk = sdc_x_linear_backward(ex, d1.v, &t->v1_w);
    sdc_x_accumulate(ex, &g, &gk);
    sdc_x_free(ex, &d1.q), sdc_x_free(ex, &d1.k), sdc_x_free(ex, &d1.v);
    gn = sdc_x_layer_norm_backward(ex, h0, &t->ln1_w, g, 1e-5f);
    sdc_x_free(ex, &g);
    sdc_x_free(ex, &h0);
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
