/* cmd_eval.c — sdc eval: run one SD component on named tensors from a
 * safetensors file and write its outputs to another (the reference harness).
 *
 *   sdc eval text       in input_ids [B,77] (I32/I64)   out last_hidden_state [B,77,D]
 *   sdc eval unet       in sample, timestep, encoder_hidden_states   out out
 *   sdc eval vae-decode in latents [B,4,h,w]            out sample [B,3,8h,8w]
 *   sdc eval vae-encode in sample [B,3,H,W]             out mean, logvar */
#include "cli.h"

#include "../core/exec.h"
#include "../models/checkpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "usage: sdc eval text|unet|vae-decode|vae-encode --model M --in IN.safetensors\n"
    "                --out OUT.safetensors [--clip-skip N] [--dump DIR]\n\n"
    "Runs one component of the SD 1.x checkpoint M (a single .safetensors file\n"
    "or a diffusers folder) on the named tensors of IN and writes OUT:\n"
    "  text        in input_ids [B,77] (I32 or I64)\n"
    "              out last_hidden_state [B,77,D] (after --clip-skip N final layers\n"
    "              are skipped, diffusers' convention; the final layer norm is applied)\n"
    "  unet        in sample [B,4,h,w], timestep [B] (any numeric dtype; one value\n"
    "              broadcasts), encoder_hidden_states [B,77,C]; out out [B,4,h,w]\n"
    "  vae-decode  in latents [B,4,h,w] (already divided by the scaling factor)\n"
    "              out sample [B,3,8h,8w], unclamped\n"
    "  vae-encode  in sample [B,3,H,W] in [-1,1]; out mean, logvar [B,4,H/8,W/8]\n"
    "--dump DIR (unet) writes every block's output to DIR/<block>.safetensors.\n";

typedef struct {
    const char *component, *model, *in, *out, *dump_dir;
    int clip_skip;
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

static sdc_status run_eval(const eval_args *a, sdc_err *err) {
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
    if (!(be = sdc_cpu_backend_create(err)) || !(arena = sdc_arena_create(be, 0, err)) ||
        !(ck = sdc_checkpoint_open(a->model, err))) {
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
        out[0] = sdc_clip_text_forward(&ex, &clip, x->data, (int)x->shape[0], a->clip_skip, NULL, 0);
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
        if (a->dump_dir) {
            ex.dump = dump_block;
            ex.dump_ctx = &dctx;
            if (mkdir(a->dump_dir, 0777) != 0 && errno != EEXIST) {
                s = sdc_err_set(err, SDC_ERR_IO, "%s: %s", a->dump_dir, strerror(errno));
                goto done;
            }
        }
        out[0] = sdc_unet_forward(&ex, &unet, *x, *t, *c);
        out_names[0] = "out";
    } else if (strcmp(a->component, "vae-decode") == 0) {
        if (!(x = sdc_safetensors_load(in, "latents", SDC_F32, err))) goto fail;
        if ((s = sdc_vae_load(&vae, ck, be, err))) goto done;
        have_vae = true;
        out[0] = sdc_vae_decode(&ex, &vae, *x);
        out_names[0] = "sample";
    } else {
        if (!(x = sdc_safetensors_load(in, "sample", SDC_F32, err))) goto fail;
        if ((s = sdc_vae_load(&vae, ck, be, err))) goto done;
        have_vae = true;
        sdc_vae_encode(&ex, &vae, *x, &out[0], &out[1]);
        out_names[0] = "mean";
        out_names[1] = "logvar";
    }
    if (!ex.status && dctx.status) ex.status = dctx.status;
    if ((s = ex.status)) goto done;
    sdc_st_write_item items[2] = {{out_names[0], &out[0]}, {out_names[1], &out[1]}};
    s = sdc_safetensors_write(a->out, items, out_names[1] ? 2 : 1, NULL, 0, err);
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
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (cli_is_help(arg)) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        const char **slot = strcmp(arg, "--model") == 0 ? &a.model
                            : strcmp(arg, "--in") == 0  ? &a.in
                            : strcmp(arg, "--out") == 0 ? &a.out
                            : strcmp(arg, "--dump") == 0 ? &a.dump_dir : NULL;
        if (slot || strcmp(arg, "--clip-skip") == 0) {
            if (i + 1 >= argc) return cli_usage_error("eval", "%s needs a value", arg);
            if (slot) {
                *slot = argv[++i];
            } else {
                long long v;
                if (!cli_parse_int("eval", arg, argv[++i], 0, 1000, &v)) return EXIT_USAGE;
                a.clip_skip = (int)v;
            }
        } else if (arg[0] == '-') {
            return cli_usage_error("eval", "unknown option '%s'", arg);
        } else if (!a.component) {
            a.component = arg;
        } else {
            return cli_usage_error("eval", "unexpected argument '%s'", arg);
        }
    }
    if (!a.component) return cli_usage_error("eval", "missing the component");
    if (strcmp(a.component, "text") && strcmp(a.component, "unet") &&
        strcmp(a.component, "vae-decode") && strcmp(a.component, "vae-encode"))
        return cli_usage_error("eval", "unknown component '%s'", a.component);
    if (!a.model || !a.in || !a.out)
        return cli_usage_error("eval", "--model, --in and --out are required");
    if (strcmp(a.in, a.out) == 0)
        return cli_usage_error("eval", "--out must differ from --in");
    if (a.dump_dir && strcmp(a.component, "unet") != 0)
        return cli_usage_error("eval", "--dump is supported for unet only");
    sdc_err err = {0};
    return run_eval(&a, &err) ? cli_error("eval", &err) : EXIT_OK;
}
