/* cmd_eval.c — sdc eval: run one SD component on named tensors from a
 * safetensors file and write its outputs to another (the reference harness).
 *
 *   sdc eval text       in input_ids [B,77] (I32/I64)   out last_hidden_state [B,77,D]
 *   sdc eval unet       in sample, timestep, encoder_hidden_states   out out
 *   sdc eval vae-decode in latents [B,4,h,w]            out sample [B,3,8h,8w]
 *   sdc eval vae-encode in sample [B,3,H,W]             out mean, logvar
 *   sdc eval clip-image in pixel_values [B,3,S,S]       out image_embeds [B,P] (a CLIPModel)
 *   sdc eval clip-text  in input_ids [B,T]              out text_embeds [B,P] */
#include "cli.h"
#include "preflight.h"

#include "../core/exec.h"
#include "../models/checkpoint.h"
#include "../models/clip_model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const cli_spec spec = {
    "eval", "text|unet|vae-decode|vae-encode|clip-image|clip-text --model M --in IN.safetensors\n"
    "                --out OUT.safetensors [options]",
    "Runs one component of the SD 1.x checkpoint M (a single .safetensors file\n"
    "or a diffusers folder) on the named tensors of IN and writes OUT; only that\n"
    "component is loaded:\n"
    "  text        in input_ids [B,77] (I32 or I64)\n"
    "              out last_hidden_state [B,77,D] (after --clip-skip N final layers\n"
    "              are skipped, diffusers' convention; the final layer norm is applied)\n"
    "  unet        in sample [B,4,h,w], timestep [B] (any numeric dtype; one value\n"
    "              broadcasts), encoder_hidden_states [B,77,C]; out out [B,4,h,w]\n"
    "  vae-decode  in latents [B,4,h,w] (already divided by the scaling factor)\n"
    "              out sample [B,3,8h,8w], unclamped\n"
    "  vae-encode  in sample [B,3,H,W] in [-1,1]; out mean, logvar [B,4,H/8,W/8]\n"
    "With M a CLIPModel (a transformers folder or one .safetensors, see sdc embed):\n"
    "  clip-image  in pixel_values [B,3,S,S] (preprocessed, S = the vision image_size)\n"
    "              out image_embeds [B,P] (L2-normalized, CLIPModel's image_embeds),\n"
    "              image_features [B,P] (get_image_features, unnormalized),\n"
    "              image_pooled [B,Dv] (post-LN class token)\n"
    "  clip-text   in input_ids [B,T] (I32/I64, 1 <= T <= 77)\n"
    "              out text_embeds, text_features [B,P], text_pooled [B,Dt] (EOS token)",
    "--backend (SD components): activations stay F32 on every backend."};

typedef struct {
    const char *component, *model, *in, *out, *dump_dir, *backend;
    long long clip_skip, clip_heads, threads;
} eval_args;

typedef struct {
    const char *dir;
    sdc_status status;
    sdc_err *err;
} dump_ctx;

static void dump_block(void *ctx, const char *name, const sdc_tensor *t) {
    dump_ctx *d = ctx;
    if (d->status) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.safetensors", d->dir, name);
    sdc_st_write_item item = {name, t};
    d->status = sdc_safetensors_write(path, &item, 1, NULL, 0, d->err);
}

/* clip-image / clip-text on a CLIPModel, 8 rows at a time. */
static sdc_status run_eval_clip(const eval_args *a, sdc_err *err) {
    bool image = !strcmp(a->component, "clip-image");
    sdc_backend *be = NULL;
    sdc_arena *arena = NULL;
    sdc_clip_model *m = NULL;
    sdc_tensor *x = NULL, *out[3] = {NULL, NULL, NULL};
    sdc_safetensors *in = sdc_safetensors_open(a->in, err);
    if (!in) return err->code;
    sdc_status s = SDC_OK;
    if (!(x = sdc_safetensors_load(in, image ? "pixel_values" : "input_ids",
                                   image ? SDC_F32 : SDC_I32, err)) ||
        !(be = sdc_cpu_backend_create(err)) || !(arena = sdc_arena_create(be, 0, err)) ||
        !(m = sdc_clip_model_open(a->model, be, err))) {
        s = err->code;
        goto done;
    }
    const sdc_clip_config *c = &m->cfg;
    int S = c->vision.image_size;
    if (image ? x->ndim != 4 || x->shape[1] != c->vision.channels || x->shape[2] != S ||
                    x->shape[3] != S
              : x->ndim != 2 || x->shape[1] < 1 || x->shape[1] > c->text.max_pos) {
        char shape[64];
        s = image ? sdc_err_set(err, SDC_ERR_SHAPE, "%s: pixel_values is %s, must be [B, %d, %d, %d]",
                                a->in, sdc_shape_str(x, shape, sizeof shape), c->vision.channels, S, S)
                  : sdc_err_set(err, SDC_ERR_SHAPE, "%s: input_ids is %s, must be [B, T] with "
                                "1 <= T <= %d", a->in, sdc_shape_str(x, shape, sizeof shape),
                                c->text.max_pos);
        goto done;
    }
    int64_t B = x->shape[0], P = c->proj, D = image ? c->vision.width : c->text.width;
    int64_t row = sdc_tensor_numel(x) / (B ? B : 1);
    if (B < 1) {
        s = sdc_err_set(err, SDC_ERR_SHAPE, "%s: empty batch", a->in);
        goto done;
    }
    for (int i = 0; i < 3; i++)
        if (!(out[i] = sdc_tensor_new(SDC_F32, 2, (const int64_t[]){B, i < 2 ? P : D}, err))) {
            s = err->code;
            goto done;
        }
    float *emb = out[0]->data, *feat = out[1]->data, *pooled = out[2]->data;
    for (int64_t b = 0; b < B && !s; b += 8) {
        int n = (int)(B - b < 8 ? B - b : 8);
        sdc_exec ex = sdc_exec_begin(be, arena, err);
        s = image ? sdc_clip_encode_image(&ex, m, (const float *)x->data + b * row, n, false,
                                          feat + b * P, pooled + b * D)
                  : sdc_clip_encode_text(&ex, m, (const int32_t *)x->data + b * row, n, (int)row,
                                         false, feat + b * P, pooled + b * D);
    }
    memcpy(emb, feat, sizeof *emb * (size_t)(B * P));
    for (int64_t b = 0; b < B && !s; b++)
        if ((s = sdc_l2_normalize(emb + b * P, (int)P, err))) sdc_err_wrap(err, "row %lld", (long long)b);
    if (!s) {
        sdc_st_write_item items[3] = {{image ? "image_embeds" : "text_embeds", out[0]},
                                      {image ? "image_features" : "text_features", out[1]},
                                      {image ? "image_pooled" : "text_pooled", out[2]}};
        s = sdc_safetensors_write(a->out, items, 3, NULL, 0, err);
    }
done:
    for (int i = 0; i < 3; i++) sdc_tensor_free(out[i]);
    sdc_tensor_free(x);
    sdc_clip_model_close(m);
    sdc_safetensors_close(in);
    sdc_arena_destroy(arena);
    sdc_backend_destroy(be);
    return s;
}

/* t on ex's backend: t itself on the CPU, else an F32 copy in the arena. */
static sdc_tensor on_backend(sdc_exec *ex, const sdc_tensor *t) {
    if (ex->be->device == SDC_DEVICE_CPU) return *t;
    return sdc_x_from_host(ex, t->data, SDC_F32, t->ndim, t->shape);
}

static sdc_status run_eval(const eval_args *a, sdc_err *err) {
    if (!strncmp(a->component, "clip-", 5)) return run_eval_clip(a, err);
    sdc_status s = SDC_OK;
    sdc_backend *be = NULL;
    sdc_arena *arena = NULL;
    sdc_checkpoint *ck = NULL;
    sdc_safetensors *in = NULL;
    sdc_tensor *x = NULL, *t = NULL, *c = NULL;
    sdc_tensor out[2] = {{0}};
    const char *out_names[2] = {NULL, NULL};
    sdc_clip_text clip = {0};
    sdc_unet unet = {0};
    sdc_vae vae = {0};
    bool have_clip = false, have_unet = false, have_vae = false;

    if (!(in = sdc_safetensors_open(a->in, err))) return err->code;
    if (!(be = cli_backend_create("eval", a->backend, false, err)) ||
        !(arena = sdc_arena_create(be, 0, err)) ||
        !(ck = sdc_checkpoint_open(a->model, err)) ||
        (a->clip_heads && sdc_checkpoint_set_clip_heads(ck, (int)a->clip_heads, err))) {
        s = err->code;
        goto done;
    }
    sdc_exec ex = sdc_exec_begin(be, arena, err);
    dump_ctx dctx = {a->dump_dir, SDC_OK, err};
    if (strcmp(a->component, "text") == 0) {
        if (!(x = sdc_safetensors_load(in, "input_ids", SDC_I32, err))) goto fail;
        if (x->ndim != 2 || x->shape[1] != ck->clip.max_pos) {
            s = sdc_err_set(err, SDC_ERR_SHAPE, "%s: input_ids must be [B, %d]", a->in,
                            ck->clip.max_pos);
            goto done;
        }
        if ((s = sdc_clip_text_load(&clip, ck, be, err))) goto done;
        have_clip = true;
        out[0] = sdc_clip_text_forward(&ex, &clip, x->data, (int)x->shape[0], (int)a->clip_skip, NULL, 0);
        out_names[0] = "last_hidden_state";
    } else if (strcmp(a->component, "unet") == 0) {
        if (!(x = sdc_safetensors_load(in, "sample", SDC_F32, err)) ||
            !(t = sdc_safetensors_load(in, "timestep", SDC_F32, err)) ||
            !(c = sdc_safetensors_load(in, "encoder_hidden_states", SDC_F32, err)))
            goto fail;
        int64_t B = x->shape[0];
        if (sdc_tensor_numel(t) == 1 && B > 1) { /* one timestep for the whole batch */
            sdc_tensor *tb = sdc_tensor_new(SDC_F32, 1, &B, err);
            if (!tb) goto fail;
            for (int64_t i = 0; i < B; i++) ((float *)tb->data)[i] = ((float *)t->data)[0];
            sdc_tensor_free(t);
            t = tb;
        } else if (t->ndim != 1) {
            t->ndim = 1;
            t->shape[0] = sdc_tensor_numel(t);
        }
        if ((s = sdc_unet_load(&unet, ck, be, err))) goto done;
        have_unet = true;
        if (a->dump_dir && be->device != SDC_DEVICE_CPU) {
            s = sdc_err_set(err, SDC_ERR_UNSUPPORTED, "--dump needs --backend cpu");
            goto done;
        }
        if (a->dump_dir) {
            ex.dump = dump_block;
            ex.dump_ctx = &dctx;
            if (mkdir(a->dump_dir, 0777) != 0 && errno != EEXIST) {
                s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", a->dump_dir, strerror(errno));
                goto done;
            }
        }
        out[0] = sdc_unet_forward(&ex, &unet, on_backend(&ex, x), on_backend(&ex, t),
                                  on_backend(&ex, c));
        out_names[0] = "out";
    } else if (strcmp(a->component, "vae-decode") == 0) {
        if (!(x = sdc_safetensors_load(in, "latents", SDC_F32, err))) goto fail;
        if ((s = sdc_vae_load(&vae, ck, be, err))) goto done;
        have_vae = true;
        out[0] = sdc_vae_decode(&ex, &vae, on_backend(&ex, x));
        out_names[0] = "sample";
    } else {
        if (!(x = sdc_safetensors_load(in, "sample", SDC_F32, err))) goto fail;
        if ((s = sdc_vae_load(&vae, ck, be, err))) goto done;
        have_vae = true;
        sdc_vae_encode(&ex, &vae, on_backend(&ex, x), &out[0], &out[1]);
        out_names[0] = "mean";
        out_names[1] = "logvar";
    }
    if (!ex.status && dctx.status) ex.status = dctx.status;
    if ((s = ex.status)) goto done;
    sdc_tensor *host[2] = {NULL, NULL}; /* device outputs copied to the host */
    for (int i = 0; i < 2 && !s && out_names[i] && be->device != SDC_DEVICE_CPU; i++)
        if (!(host[i] = sdc_tensor_new(SDC_F32, out[i].ndim, out[i].shape, err)) ||
            sdc_x_to_host(&ex, &out[i], host[i]->data))
            s = err->code ? err->code : SDC_ERR_OOM;
    sdc_st_write_item items[2] = {{out_names[0], host[0] ? host[0] : &out[0]},
                                  {out_names[1], host[1] ? host[1] : &out[1]}};
    if (!s) s = sdc_safetensors_write(a->out, items, out_names[1] ? 2 : 1, NULL, 0, err);
    sdc_tensor_free(host[0]);
    sdc_tensor_free(host[1]);
    for (int i = 0; i < 2; i++) sdc_x_free(&ex, &out[i]);
    goto done;
fail:
    s = err->code ? err->code : SDC_ERR_ARG;
done:
    if (have_clip) sdc_clip_text_free(&clip);
    if (have_unet) sdc_unet_free(&unet);
    if (have_vae) sdc_vae_free(&vae);
    sdc_tensor_free(x);
    sdc_tensor_free(t);
    sdc_tensor_free(c);
    sdc_checkpoint_close(ck);
    sdc_safetensors_close(in);
    sdc_arena_destroy(arena);
    sdc_backend_destroy(be);
    return s;
}

int cmd_eval(int argc, char **argv) {
    eval_args a = {0};
    cli_opt opts[] = {
        CLI_MODEL(&a.model, 0),
        {"in", 0, CLI_STRING, &a.in, .metavar = "IN", .help = "input tensors (.safetensors; required)"},
        CLI_OUT(&a.out, 0, "output tensors (.safetensors; required)"),
        {"clip-skip", 0, CLI_INT, &a.clip_skip, .lo = 0, .hi = 1000, .metavar = "N",
         .help = "text: skip the last N encoder layers"},
        {"clip-heads", 0, CLI_INT, &a.clip_heads, .lo = 1, .hi = 4096, .metavar = "N",
         .help = "text: the head count of a single file whose width is not a multiple of 64"},
        {"dump", 0, CLI_STRING, &a.dump_dir, .metavar = "DIR",
         .help = "unet: write every block's output to DIR/<block>.safetensors"},
        CLI_BACKEND(&a.backend),
        CLI_THREADS(&a.threads),
        CLI_END};
    cli_positional pos = {&a.component, 1, 0, "COMPONENT"};
    int rc = cli_parse(&spec, opts, argc, argv, &pos);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!a.component) return cli_usage_error("eval", "missing the component");
    static const char *const comps[] = {"text", "unet", "vae-decode", "vae-encode", "clip-image",
                                        "clip-text"};
    int k = 0;
    while (k < 6 && strcmp(a.component, comps[k])) k++;
    if (k == 6) return cli_usage_error("eval", "unknown component '%s' (text, unet, vae-decode, "
                                       "vae-encode, clip-image or clip-text)", a.component);
    if (!a.model || !a.in || !a.out)
        return cli_usage_error("eval", "--model, --in and --out are required");
    if (strcmp(a.in, a.out) == 0)
        return cli_usage_error("eval", "--out must differ from --in");
    if (a.dump_dir && strcmp(a.component, "unet") != 0)
        return cli_usage_error("eval", "--dump is supported for unet only");
    if (!cli_backend_valid("eval", a.backend)) return EXIT_USAGE;
    if ((a.clip_skip || a.clip_heads) && strcmp(a.component, "text"))
        return cli_usage_error("eval", "--%s applies to the SD text encoder (text) only",
                               a.clip_skip ? "clip-skip" : "clip-heads");
    cli_apply_threads(a.threads);
    sdc_err err = {0};
    /* Before loading: the part this component needs, and a writable --out. */
    unsigned part = k == 0 ? 1u << SDC_COMPONENT_TEXT : k == 1 ? 1u << SDC_COMPONENT_UNET
                    : k < 4 ? 1u << SDC_COMPONENT_VAE : 0;
    if ((part && cli_check_model_parts(a.model, part, &err)) ||
        cli_check_writable(a.out, "--out", &err))
        return cli_error("eval", &err);
    return run_eval(&a, &err) ? cli_error("eval", &err) : EXIT_OK;
}
