/* unet_backward.c — the UNet forward that keeps its per-layer checkpoints,
 * and the walk back through it to d loss / d context (see unet_backward.h).
 * Both mirror sdc_unet_forward (unet.c) step for step. */
#include "unet_backward.h"
#include "unet_blocks.h"

#include <string.h>

static void push_skip(sdc_unet_tape *tp, sdc_tensor h, bool dep) {
    tp->skip_dep[tp->nskip] = dep;
    tp->skip[tp->nskip++] = h;
}

sdc_tensor sdc_unet_forward_tape(sdc_exec *ex, const sdc_unet *m, sdc_tensor x, sdc_tensor t,
                                 sdc_tensor ctx, sdc_unet_tape *tp) {
    const sdc_unet_config *c = &m->cfg;
    int n = c->levels, L = c->layers_per_block;
    sdc_tensor none = {0};
    memset(tp, 0, sizeof *tp);
    if (!sdc_unet_inputs_ok(ex, m, x, t, ctx)) return none;
    tp->ctx = ctx;
    sdc_tensor e = tp->temb = sdc_unet_time_embedding(ex, m, t);

    /* Down: every layer's output is a skip (and the next layer's input). */
    sdc_tensor h = sdc_x_conv2d(ex, x, &m->conv_in_w, &m->conv_in_b, 1, 1);
    bool dep = false; /* whether h depends on the context yet */
    push_skip(tp, h, dep);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) {
            h = sdc_unet_resnet_forward(ex, &m->down[i].res[j], c, h, e);
            if (c->attn[i]) {
                tp->down_res[i][j] = h;
                h = sdc_unet_transformer_forward(ex, &m->down[i].attn[j], c, h, ctx);
                dep = true;
            }
            push_skip(tp, h, dep);
        }
        if (i < n - 1) {
            h = sdc_x_conv2d(ex, h, &m->down[i].sample_w, &m->down[i].sample_b, 2, 1);
            push_skip(tp, h, dep);
        }
    }
    h = tp->mid_res0 = sdc_unet_resnet_forward(ex, &m->mid_res[0], c, h, e);
    h = tp->mid_attn = sdc_unet_transformer_forward(ex, &m->mid_attn, c, h, ctx);
    h = sdc_unet_resnet_forward(ex, &m->mid_res[1], c, h, e);

    /* Up: the concats are rebuilt in the backward, the upsamplers' outputs
     * too; the last level keeps its layers' activations. */
    int k = tp->nskip;
    for (int i = 0; i < n; i++) {
        int lvl = n - 1 - i;
        bool keep = i == n - 1;
        for (int j = 0; j <= L; j++) {
            tp->up_h[i][j] = h;
            sdc_tensor cat = sdc_x_concat(ex, h, tp->skip[--k]);
            const sdc_resnet *r = &m->up[i].res[j];
            h = keep ? sdc_unet_resnet_forward_acts(ex, r, c, cat, e, true, &tp->last_res[j])
                     : sdc_unet_resnet_forward(ex, r, c, cat, e);
            sdc_x_free(ex, &cat);
            if (c->attn[lvl]) {
                const unet_transformer *tr = &m->up[i].attn[j];
                tp->up_res[i][j] = h;
                h = keep ? sdc_unet_transformer_forward_acts(ex, tr, c, h, ctx, true, true,
                                                             &tp->last_attn[j])
                         : sdc_unet_transformer_forward(ex, tr, c, h, ctx);
            }
        }
        if (i < n - 1) {
            tp->up_sample[i] = h;
            const sdc_tensor *next = &tp->skip[k - 1];
            sdc_tensor u = sdc_x_upsample_to(ex, h, next->shape[2], next->shape[3]);
            h = sdc_x_conv2d(ex, u, &m->up[i].sample_w, &m->up[i].sample_b, 1, 1);
            sdc_x_free(ex, &u);
        }
    }
    tp->out_in = h;
    sdc_tensor g = sdc_x_group_norm(ex, h, &m->norm_out_w, &m->norm_out_b, c->groups, c->norm_eps,
                                    true);
    sdc_tensor y = sdc_x_conv2d(ex, g, &m->conv_out_w, &m->conv_out_b, 1, 1);
    sdc_x_free(ex, &g);
    if (ex->status) sdc_unet_tape_free(ex, tp);
    return y;
}

void sdc_unet_tape_free(sdc_exec *ex, sdc_unet_tape *tp) {
    sdc_x_free(ex, &tp->temb);
    for (int k = 0; k < tp->nskip; k++) sdc_x_free(ex, &tp->skip[k]);
    for (int i = 0; i < UNET_MAX_LEVELS; i++) {
        for (int j = 0; j <= UNET_MAX_LAYERS; j++) {
            if (j < UNET_MAX_LAYERS) sdc_x_free(ex, &tp->down_res[i][j]);
            sdc_x_free(ex, &tp->up_h[i][j]);
            sdc_x_free(ex, &tp->up_res[i][j]);
        }
        sdc_x_free(ex, &tp->up_sample[i]);
    }
    sdc_x_free(ex, &tp->mid_res0);
    sdc_x_free(ex, &tp->mid_attn);
    sdc_x_free(ex, &tp->out_in);
    for (int j = 0; j <= UNET_MAX_LAYERS; j++) {
        sdc_unet_resnet_acts_free(ex, &tp->last_res[j]);
        sdc_unet_transformer_acts_free(ex, &tp->last_attn[j]);
    }
    tp->nskip = 0;
}

/* Replaces *g by f(*g), freeing the old gradient. */
#define BACK(g, expr)              \
    do {                           \
        sdc_tensor next_ = (expr); \
        sdc_x_free(ex, &(g));      \
        (g) = next_;               \
    } while (0)

sdc_tensor sdc_unet_backward(sdc_exec *ex, const sdc_unet *m, sdc_unet_tape *tp, sdc_tensor dy) {
    const sdc_unet_config *c = &m->cfg;
    int n = c->levels, L = c->layers_per_block;
    sdc_tensor e = tp->temb, ctx = tp->ctx, dctx = {0}, gskip[UNET_MAX_SKIPS] = {{0}};
    if (ex->status || tp->nskip < 1) {
        if (!ex->status)
            ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "unet backward: no taped forward");
        sdc_unet_tape_free(ex, tp);
        return dctx;
    }

    /* y = conv_out(GN+SiLU(out_in)) */
    sdc_tensor g = sdc_x_conv2d_backward(ex, dy, &m->conv_out_w, 1, 1, 0, 0);
    BACK(g, sdc_x_group_norm_backward(ex, tp->out_in, &m->norm_out_w, &m->norm_out_b, g,
                                      c->groups, c->norm_eps, true));
    sdc_x_free(ex, &tp->out_in);

    /* Up levels last to first; each level's upsampler ran after its layers. */
    for (int i = n - 1; i >= 0; i--) {
        int lvl = n - 1 - i;
        if (i < n - 1) {
            BACK(g, sdc_x_conv2d_backward(ex, g, &m->up[i].sample_w, 1, 1, 0, 0));
            BACK(g, sdc_x_upsample2x_backward(ex, g)); /* to up_sample[i]'s size */
            sdc_x_free(ex, &tp->up_sample[i]);
        }
        bool kept = i == n - 1; /* the forward kept this level's activations */
        for (int j = L; j >= 0; j--) {
            if (c->attn[lvl]) {
                BACK(g, sdc_unet_transformer_backward(ex, &m->up[i].attn[j], c, tp->up_res[i][j],
                                                      ctx, g, &dctx, true,
                                                      kept ? &tp->last_attn[j] : NULL));
                sdc_x_free(ex, &tp->up_res[i][j]);
            }
            /* resnet(concat(h, skip)): the concat rebuilt, its adjoint two slices */
            int k = tp->nskip - 1 - (i * (L + 1) + j);
            sdc_tensor *hin = &tp->up_h[i][j];
            sdc_tensor cat = sdc_x_concat(ex, *hin, tp->skip[k]);
            sdc_tensor gc = sdc_unet_resnet_backward(ex, &m->up[i].res[j], c, cat, e, g,
                                                     kept ? &tp->last_res[j] : NULL);
            sdc_x_free(ex, &cat);
            sdc_x_free(ex, &g);
            int64_t ch = hin->shape[1];
            g = sdc_x_slice(ex, gc, 0, ch);
            if (tp->skip_dep[k]) {
                sdc_tensor gs = sdc_x_slice(ex, gc, ch, tp->skip[k].shape[1]);
                sdc_x_accumulate(ex, &gskip[k], &gs);
            }
            sdc_x_free(ex, &gc);
            sdc_x_free(ex, hin);
        }
    }

    /* Mid block, then the down path from its last skip. */
    BACK(g, sdc_unet_resnet_backward(ex, &m->mid_res[1], c, tp->mid_attn, e, g, NULL));
    BACK(g, sdc_unet_transformer_backward(ex, &m->mid_attn, c, tp->mid_res0, ctx, g, &dctx, true,
                                          NULL));
    int k = tp->nskip - 1;
    BACK(g, sdc_unet_resnet_backward(ex, &m->mid_res[0], c, tp->skip[k], e, g, NULL));
    sdc_x_accumulate(ex, &g, &gskip[k]);
    /* Step k made skip[k] from skip[k-1]; stop where skip[k-1] no longer
     * depends on the context (nothing before it can). */
    bool more = k > 0 && tp->skip_dep[k];
    for (int i = n - 1; i >= 0 && more; i--) {
        if (i < n - 1) {
            if (!(more = tp->skip_dep[k - 1])) break;
            const sdc_tensor *in = &tp->skip[k - 1];
            BACK(g, sdc_x_conv2d_backward(ex, g, &m->down[i].sample_w, 2, 1, in->shape[2],
                                          in->shape[3]));
            sdc_x_accumulate(ex, &g, &gskip[--k]);
        }
        for (int j = L - 1; j >= 0 && more; j--) {
            more = tp->skip_dep[k - 1];
            if (c->attn[i])
                BACK(g, sdc_unet_transformer_backward(ex, &m->down[i].attn[j], c,
                                                      tp->down_res[i][j], ctx, g, &dctx, more,
                                                      NULL));
            if (!more) break;
            BACK(g, sdc_unet_resnet_backward(ex, &m->down[i].res[j], c, tp->skip[k - 1], e, g,
                                             NULL));
            sdc_x_accumulate(ex, &g, &gskip[--k]);
        }
    }
    sdc_x_free(ex, &g);
    for (int s = 0; s < UNET_MAX_SKIPS; s++) sdc_x_free(ex, &gskip[s]);
    sdc_unet_tape_free(ex, tp);
    if (ex->status) {
        sdc_x_free(ex, &dctx);
        return dctx;
    }
    if (!dctx.data) /* a UNet without cross-attention (not SD): no dependence */
        ex->status = sdc_err_set(ex->err, SDC_ERR_ARG, "unet backward: no layer reads the context");
    return dctx;
}
