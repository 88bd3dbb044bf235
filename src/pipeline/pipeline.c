/* pipeline.c — txt2img / img2img (see pipeline.h). Latents live on the host
 * as plain float arrays for the samplers; each UNet call uploads x and
 * downloads the prediction (unet_call.c), which costs nothing on the CPU
 * backend and 2 x 64 KB per step at 512² on a GPU. */
#include "pipeline.h"
#include "unet_call.h"

#include "../image/image.h"

#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

sdc_pipeline *sdc_pipeline_open(const char *model, const char *vocab_path, sdc_backend *be,
                                sdc_err *err) {
    return sdc_pipeline_open_opts(model, vocab_path, be, 0, err);
}

sdc_pipeline *sdc_pipeline_open_opts(const char *model, const char *vocab_path, sdc_backend *be,
                                     int clip_heads, sdc_err *err) {
    sdc_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        sdc_err_set(err, SDC_ERR_OOM, "pipeline: out of memory");
        return NULL;
    }
    p->be = be;
    const char *graph = getenv("SDC_CUDA_GRAPH");
    p->cuda_graph = !graph || strcmp(graph, "0");
    bool ok = (p->arena = sdc_arena_create(be, 0, err)) && (p->ck = sdc_checkpoint_open(model, err)) &&
              !sdc_sched_file_for_model(model, &p->sched, err) &&
              (clip_heads < 1 || !sdc_checkpoint_set_clip_heads(p->ck, clip_heads, err));
    if (ok && vocab_path) {
        ok = (p->tok = sdc_tokenizer_load_bpe_gz(vocab_path, err)) != NULL;
    } else if (ok) {
        char vj[4096], mt[4096];
        snprintf(vj, sizeof vj, "%s/tokenizer/vocab.json", model);
        snprintf(mt, sizeof mt, "%s/tokenizer/merges.txt", model);
        ok = (p->tok = sdc_tokenizer_load_files(vj, mt, err)) != NULL;
    }
    if (ok) ok = !sdc_clip_text_load(&p->clip, p->ck, be, err);
    if (ok) ok = !sdc_unet_load(&p->unet, p->ck, be, err);
    if (ok) ok = !sdc_vae_load(&p->vae, p->ck, be, err);
    if (!ok) {
        sdc_pipeline_free(p);
        return NULL;
    }
    return p;
}

void sdc_pipeline_free(sdc_pipeline *p) {
    if (!p) return;
    sdc_vae_free(&p->vae);
    sdc_unet_free(&p->unet);
    sdc_clip_text_free(&p->clip);
    sdc_tokenizer_free(p->tok);
    sdc_checkpoint_close(p->ck);
    sdc_sched_file_free(p->sched);
    sdc_arena_destroy(p->arena);
    free(p);
}

void sdc_generate_result_free(sdc_generate_result *r) {
    free(r->latents);
    free(r->rgb);
    memset(r, 0, sizeof *r);
}

/* 16 MiB: the 512² CFG feed-forward (2 x 4096 rows) in 6 chunks of ~1365 rows, at
 * the same speed; a GPU keeps whole-tensor GEMMs unless memory is asked for. */
#define CHUNK_BYTES ((size_t)16 << 20)

sdc_exec sdc_pipeline_exec(const sdc_pipeline *p, sdc_dtype act, sdc_err *err) {
    sdc_exec ex = sdc_exec_begin(p->be, p->arena, err);
    ex.drop_weights = p->low_memory;
    ex.chunk_bytes = p->low_memory || p->be->device == SDC_DEVICE_CPU ? CHUNK_BYTES : 0;
    ex.act = act;
    return ex;
}

sdc_status sdc_pipeline_dtype(const sdc_pipeline *p, sdc_precision precision, sdc_dtype *out,
                              sdc_err *err) {
    static const sdc_dtype of[] = {SDC_F16, SDC_F32, SDC_F16, SDC_BF16};
    if ((unsigned)precision > SDC_PRECISION_BF16)
        return sdc_err_set(err, SDC_ERR_ARG, "precision %d is not auto, f32, f16 or bf16",
                           (int)precision);
    sdc_dtype dt = of[precision];
    /* Every op the backend has must take it (CUDA takes all three for all
     * ops; Vulkan has no backward ops, which generation never runs). */
    bool ok = true;
    for (int k = 0; k < SDC_OP_COUNT; k++)
        ok = ok && (!p->be->op[k] || sdc_backend_supports(p->be, k, dt));
    /* AUTO: F16 on CUDA, F32 elsewhere (Vulkan's F16 is there on request). */
    if (precision == SDC_PRECISION_AUTO) {
        *out = ok && p->be->device == SDC_DEVICE_CUDA ? dt : SDC_F32;
        return SDC_OK;
    }
    if (ok) {
        *out = dt;
        return SDC_OK;
    }
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "precision %s: the %s backend computes F32 "
                       "activations only (use cuda, or precision f32)",
                       sdc_precision_name(precision), p->be->name);
}

/* ------------------------------------------------------------ conditioning */

/* Hidden states of a prompt: [n_chunks*77, D] on the host (weighted for the
 * A1111 syntax). */
typedef struct {
    float *z;
    int n_tokens;
} encoded;

static sdc_status encode(sdc_pipeline *p, const sdc_generate_opts *o, sdc_dtype act,
                         const sdc_embedding_set *emb, const char *text, int min_chunks,
                         encoded *out, bool *truncated, sdc_err *err) {
    sdc_cond_plan plan = {0};
    sdc_status s = sdc_prompt_plan(p->tok, text, o->syntax, emb, &plan, err);
    /* Extra chunks (to match the other prompt's length) are the empty
     * prompt's, as A1111 pads. */
    if (!s && plan.n_chunks < min_chunks) s = sdc_cond_plan_pad(&plan, p->tok, min_chunks, err);
    if (s) return s;
    *truncated |= plan.truncated;
    int D = p->clip.cfg.width;
    out->n_tokens = plan.n_chunks * 77;
    out->z = malloc(sizeof *out->z * (size_t)out->n_tokens * D);
    if (!out->z) s = sdc_err_set(err, SDC_ERR_OOM, "prompt: out of memory");
    /* Textual-inversion tokens are ids vocab + row of the embedding table. */
    size_t n_extra = 0;
    int dim = D;
    const float *extra = emb ? sdc_embeddings_table(emb, &n_extra, &dim) : NULL;
    if (!s && extra && dim != D)
        s = sdc_err_set(err, SDC_ERR_SHAPE, "embeddings have %d dimensions but the text encoder "
                        "has %d", dim, D);
    if (!s) {
        sdc_exec ex = sdc_pipeline_exec(p, act, err);
        sdc_tensor h = sdc_clip_text_forward(&ex, &p->clip, plan.ids, plan.n_chunks, o->clip_skip,
                                             extra, (int)n_extra);
        sdc_x_to_host(&ex, &h, out->z);
        sdc_x_free(&ex, &h);
        s = ex.status;
    }
    /* A1111 restores each 77-token chunk's own mean. */
    for (int c = 0; !s && o->syntax == SDC_PROMPT_A1111 && c < plan.n_chunks; c++)
        sdc_prompt_apply_weights(out->z + (size_t)c * 77 * D, plan.weights + c * 77, 77, D);
    sdc_cond_plan_free(&plan);
    if (s) {
        free(out->z);
        out->z = NULL;
    }
    return s;
}

/* A prompt and its negative, padded to the same number of 77-token chunks. */
static sdc_status encode_pair(sdc_pipeline *p, const sdc_generate_opts *o, sdc_dtype act,
                              const sdc_embedding_set *emb, const char *prompt, bool cfg,
                              encoded *cond, encoded *uncond, bool *truncated, sdc_err *err) {
    sdc_status s = encode(p, o, act, emb, prompt, 1, cond, truncated, err);
    if (!s && cfg) {
        s = encode(p, o, act, emb, o->negative ? o->negative : "", cond->n_tokens / 77, uncond,
                   truncated, err);
        if (s == SDC_ERR_ARG) sdc_err_wrap(err, "negative prompt"); /* which text is bad */
        /* A longer negative prompt pads the prompt in turn. */
        if (!s && uncond->n_tokens > cond->n_tokens) {
            free(cond->z);
            cond->z = NULL;
            s = encode(p, o, act, emb, prompt, uncond->n_tokens / 77, cond, truncated, err);
        }
    }
    return s;
}

/* The cross-attention context [rows, T, D] on the device, in dtype act: with
 * CFG the first batch rows are the negative prompt's, then the prompts'
 * (diffusers' order), else only the prompts'. Without per-row prompts one
 * encoding serves every row. The host-side weighting (A1111 syntax) runs in
 * F32 between the text encoder and the UNet. */
static sdc_status make_context(sdc_pipeline *p, const sdc_generate_opts *o, sdc_dtype act,
                               bool cfg, sdc_tensor *ctx, bool *truncated, sdc_err *err) {
    int B = o->batch, distinct = o->rows ? B : 1;
    encoded *cond = calloc((size_t)distinct, sizeof *cond), *uncond = calloc((size_t)distinct, sizeof *uncond);
    sdc_status s = cond && uncond ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "prompt: out of memory");
    for (int r = 0; !s && r < distinct; r++) {
        const sdc_generate_row *row = o->rows ? &o->rows[r] : NULL;
        const char *prompt = row && row->prompt ? row->prompt : o->prompt;
        const sdc_embedding_set *emb = row && row->embeddings ? row->embeddings : o->embeddings;
        if ((s = encode_pair(p, o, act, emb, prompt, cfg, &cond[r], &uncond[r], truncated, err)))
            sdc_err_wrap(err, "batch row %d", r);
        /* Rows share one context tensor; padding a row would change its image. */
        else if (cond[r].n_tokens != cond[0].n_tokens)
            s = sdc_err_set(err, SDC_ERR_ARG, "batch row %d: its prompts take %d chunks of 77 "
                            "tokens, row 0's take %d (batch only prompts of equal length)", r,
                            cond[r].n_tokens / 77, cond[0].n_tokens / 77);
    }
    int D = p->clip.cfg.width, T = s ? 0 : cond[0].n_tokens, rows = (cfg ? 2 : 1) * B;
    sdc_exec ex = sdc_pipeline_exec(p, act, err);
    sdc_tensor c32 = {0};
    if (!s) c32 = sdc_x_new(&ex, SDC_F32, 3, (const int64_t[]){rows, T, D});
    s = s ? s : ex.status;
    size_t row = sizeof(float) * (size_t)T * D;
    for (int r = 0; !s && r < rows; r++) {
        int b = (cfg && r >= B ? r - B : r) % distinct;
        const float *src = cfg && r < B ? uncond[b].z : cond[b].z;
        s = p->be->upload(p->be, (char *)c32.data + (size_t)r * row, src, row, err);
    }
    if (!s && act != SDC_F32) {
        *ctx = sdc_x_convert(&ex, c32, act);
        sdc_x_free(&ex, &c32);
        s = ex.status;
    } else if (!s) {
        *ctx = c32;
    } else {
        sdc_x_free(&ex, &c32);
    }
    for (int r = 0; cond && uncond && r < distinct; r++) {
        free(cond[r].z);
        free(uncond[r].z);
    }
    free(cond);
    free(uncond);
    return s;
}

/* ------------------------------------------------------------ latents */

static bool all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* The init image of batch row b (the row's own, else the options'). */
static const float *init_image_of(const sdc_generate_opts *o, int b) {
    const float *img = o->rows ? o->rows[b].init_image : NULL;
    return img ? img : o->init_image;
}

/* The VAE encoder on image b's init image at dtype act: mean and logvar
 * [4, h, w] on the host. */
static sdc_status encode_image(sdc_pipeline *p, const sdc_generate_opts *o, int b, sdc_dtype act,
                               float *mu, float *lv, sdc_err *err) {
    int h = o->height / 8, w = o->width / 8;
    size_t per = (size_t)4 * h * w;
    sdc_exec ex = sdc_pipeline_exec(p, act, err);
    sdc_tensor img = sdc_x_from_host(&ex, init_image_of(o, b), act, 4,
                                     (const int64_t[]){1, 3, o->height, o->width});
    sdc_tensor mean = {0}, logvar = {0};
    if (!ex.status) sdc_vae_encode(&ex, &p->vae, img, &mean, &logvar);
    sdc_x_free(&ex, &img);
    sdc_x_to_host(&ex, &mean, mu);
    sdc_x_to_host(&ex, &logvar, lv);
    sdc_x_free(&ex, &mean);
    sdc_x_free(&ex, &logvar);
    if (!ex.status && (!all_finite(mu, per) || !all_finite(lv, per)))
        return sdc_err_set(err, SDC_ERR_NUMERIC, "the VAE encoder gave NaN or Inf at %s",
                           sdc_dtype_name(act));
    return ex.status;
}

/* img2img's starting point: each row's init image through the VAE encoder,
 * a posterior sample, scaled, noised to the first remaining timestep. With
 * one generator the batch repeats one sample (diffusers' order: the sample,
 * then the noise of the whole batch); with a generator per row each row
 * draws its own. An F16 encode that overflows runs again at F32. */
static sdc_status img2img_latents(sdc_pipeline *p, const sdc_generate_opts *o, sdc_dtype vae_act,
                                  sdc_sampler *smp, sdc_rng *rngs, int n_rngs, float *x,
                                  int *upcasts, sdc_err *err) {
    int h = o->height / 8, w = o->width / 8;
    size_t per = (size_t)4 * h * w, n = per * o->batch;
    float *mu = malloc(sizeof *mu * per), *lv = malloc(sizeof *lv * per);
    float *eps = malloc(sizeof *eps * n), *x0 = malloc(sizeof *x0 * n);
    sdc_status s = mu && lv && eps && x0 ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "img2img: out of memory");
    for (int b = 0; !s && b < n_rngs; b++) {
        s = encode_image(p, o, b, vae_act, mu, lv, err);
        if (s == SDC_ERR_NUMERIC && vae_act == SDC_F16) {
            (*upcasts)++;
            s = encode_image(p, o, b, SDC_F32, mu, lv, err);
        }
        if (s) {
            sdc_err_wrap(err, "img2img: init image %d", b);
            break;
        }
        /* latent_dist.sample(generator): mean + exp(0.5 logvar) * randn */
        sdc_rng_randn(&rngs[b], eps, per);
        float sf = p->vae.cfg.scaling_factor, *xb = x0 + b * per;
        for (size_t i = 0; i < per; i++) xb[i] = sf * (mu[i] + expf(0.5f * lv[i]) * eps[i]);
    }
    if (!s) {
        for (int b = n_rngs; b < o->batch; b++) memcpy(x0 + b * per, x0, sizeof *x0 * per);
        sdc_rng_randn_rows(rngs, n_rngs, eps, n);
        sdc_sampler_add_noise(smp, x0, eps, x, n);
    }
    free(mu);
    free(lv);
    free(eps);
    free(x0);
    return s;
}

/* ------------------------------------------------------------ denoising */

/* One model evaluation with CFG: eps [B, 4, h, w] from x [B, 4, h, w]; buf
 * holds 2 B·4·h·w floats. A non-finite prediction stops the run here,
 * naming the step, rather than as a broken image at the end. */
static sdc_status predict(sdc_unet_call *uc, const sdc_generate_opts *o, bool cfg,
                          const float *x, float scale, float t, int step, float *eps, float *buf,
                          sdc_err *err) {
    size_t n = (size_t)o->batch * 4 * (o->height / 8) * (o->width / 8);
    for (size_t i = 0; i < n; i++) buf[i] = x[i] * scale;
    if (cfg) memcpy(buf + n, buf, sizeof *buf * n);
    sdc_status s = sdc_unet_call_run(uc, buf, t, buf, err);
    if (s) return s;
    if (!all_finite(buf, n * (cfg ? 2 : 1)))
        return sdc_err_set(err, SDC_ERR_NUMERIC, "generate: the UNet's prediction holds NaN or "
                           "Inf at step %d (activations %s%s)", step + 1,
                           sdc_dtype_name(uc->act),
                           uc->act == SDC_F16 ? "; precision f32 or bf16 avoids F16 overflow" : "");
    if (!cfg) {
        memcpy(eps, buf, sizeof *eps * n);
    } else {
        float g = o->cfg;
        for (size_t i = 0; i < n; i++) eps[i] = buf[i] + g * (buf[n + i] - buf[i]);
    }
    return SDC_OK;
}

/* The VAE decoder on z [1, 4, h, w] (host, already divided by the scaling
 * factor) at dtype act: img [3, H, W] on the host; NaN/Inf is SDC_ERR_NUMERIC. */
static sdc_status decode_one(sdc_pipeline *p, const sdc_generate_opts *o, const float *z,
                             sdc_dtype act, float *img, sdc_err *err) {
    int h = o->height / 8, w = o->width / 8;
    sdc_exec ex = sdc_pipeline_exec(p, act, err);
    sdc_tensor zt = sdc_x_from_host(&ex, z, act, 4, (const int64_t[]){1, 4, h, w});
    sdc_tensor y = sdc_vae_decode(&ex, &p->vae, zt);
    sdc_x_to_host(&ex, &y, img);
    sdc_x_free(&ex, &y);
    sdc_x_free(&ex, &zt);
    if (!ex.status && !all_finite(img, (size_t)3 * o->height * o->width))
        return sdc_err_set(err, SDC_ERR_NUMERIC, "the VAE decoder gave NaN or Inf at %s",
                           sdc_dtype_name(act));
    return ex.status;
}

static sdc_status decode(sdc_pipeline *p, const sdc_generate_opts *o, sdc_dtype act,
                         const float *latents, uint8_t *rgb, int *upcasts, sdc_err *err) {
    int h = o->height / 8, w = o->width / 8;
    size_t per = (size_t)4 * h * w, pix = (size_t)3 * o->height * o->width;
    float *z = malloc(sizeof *z * per), *img = malloc(sizeof *img * pix);
    sdc_status s = z && img ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "decode: out of memory");
    /* One image at a time bounds the VAE's memory; samples are independent. */
    for (int b = 0; !s && b < o->batch; b++) {
        for (size_t i = 0; i < per; i++) z[i] = latents[b * per + i] / p->vae.cfg.scaling_factor;
        s = decode_one(p, o, z, act, img, err);
        /* SD's VAE can overflow F16 (A1111's "revert VAE to 32-bit"): again at F32. */
        if (s == SDC_ERR_NUMERIC && act == SDC_F16) {
            (*upcasts)++;
            s = decode_one(p, o, z, SDC_F32, img, err);
        }
        /* diffusers' postprocess; NaN/Inf is an error, never a black image. */
        if (!s) s = sdc_image_from_tensor(img, o->width, o->height, rgb + (size_t)b * pix, err);
        if (s) sdc_err_wrap(err, "image %d of the batch", b);
    }
    free(z);
    free(img);
    return s;
}

static sdc_status check_opts(const sdc_generate_opts *o, sdc_err *err) {
    if (!o->prompt) return sdc_err_set(err, SDC_ERR_ARG, "generate: no prompt");
    if (o->width < SDC_SIZE_MIN || o->width > SDC_SIZE_MAX || o->width % 8 ||
        o->height < SDC_SIZE_MIN || o->height > SDC_SIZE_MAX || o->height % 8)
        return sdc_err_set(err, SDC_ERR_ARG, "generate: size %dx%d must be multiples of 8 in "
                           "[%d, %d]", o->width, o->height, SDC_SIZE_MIN, SDC_SIZE_MAX);
    if (o->batch < 1 || o->batch > 256)
        return sdc_err_set(err, SDC_ERR_ARG, "generate: batch %d outside [1, 256]", o->batch);
    if (!(o->cfg >= 0 && o->cfg <= 100))
        return sdc_err_set(err, SDC_ERR_ARG, "generate: cfg %g outside [0, 100]", o->cfg);
    bool img2img = init_image_of(o, 0) != NULL;
    if (img2img && !(o->strength >= 0 && o->strength <= 1))
        return sdc_err_set(err, SDC_ERR_ARG, "generate: strength %g outside [0, 1]", o->strength);
    for (int b = 1; o->rows && b < o->batch; b++)
        if ((init_image_of(o, b) != NULL) != img2img)
            return sdc_err_set(err, SDC_ERR_ARG, "generate: batch row %d %s an init image and row "
                               "0 %s (rows share one schedule)", b, img2img ? "lacks" : "has",
                               img2img ? "has" : "lacks");
    if (o->rows && o->init_noise)
        return sdc_err_set(err, SDC_ERR_ARG, "generate: init_noise and per-row generators "
                           "exclude each other");
    return SDC_OK;
}

/* Ends a model's phase. Its weight pages are dropped (mmap'ed weights come
 * back from the page cache on the next image), and the memory its
 * activations grew goes back: the arena's empty blocks and the backend's
 * scratch. So the peak is one model's weights plus its own activations, on
 * every image of a run, not the UNet's weights plus the VAE's 0.8 GB of
 * activations from the image before. */
static void end_phase(sdc_pipeline *p, const sdc_params *weights) {
    sdc_params_release_pages(weights);
    sdc_arena_trim(p->arena);
    if (p->be->trim) p->be->trim(p->be);
}

sdc_status sdc_generate(sdc_pipeline *p, const sdc_generate_opts *o, sdc_generate_result *r,
                        sdc_err *err) {
    memset(r, 0, sizeof *r);
    sdc_status s = check_opts(o, err);
    sdc_dtype act = SDC_F32, vae_act = SDC_F32;
    /* The VAE's AUTO is F32: SD's VAE decoder can overflow F16. */
    sdc_precision vae_prec = o->vae_precision ? o->vae_precision : SDC_PRECISION_F32;
    if (!s && (s = sdc_pipeline_dtype(p, o->precision, &act, err))) sdc_err_wrap(err, "generate");
    if (!s && (s = sdc_pipeline_dtype(p, vae_prec, &vae_act, err))) sdc_err_wrap(err, "generate: VAE");
    if (s) return s;
    int h = o->height / 8, w = o->width / 8;
    size_t n = (size_t)o->batch * 4 * h * w;
    bool cfg = o->cfg > 1.0f; /* diffusers: guidance only above 1 */
    r->batch = o->batch, r->width = o->width, r->height = o->height;
    r->act = act, r->vae_act = vae_act;
    r->latents = malloc(sizeof *r->latents * n);
    r->rgb = malloc((size_t)o->batch * 3 * o->width * o->height);
    float *eps = malloc(sizeof *eps * n), *buf = malloc(sizeof *buf * 2 * n);
    sdc_sampler *smp = NULL;
    sdc_tensor ctx = {0};
    sdc_rng *rngs = NULL;
    sdc_unet_call uc = {0};
    int n_rngs = 1;
    p->graph_note[0] = '\0';
    if (!r->latents || !r->rgb || !eps || !buf) {
        s = sdc_err_set(err, SDC_ERR_OOM, "generate: out of memory");
        goto done;
    }
    if ((s = make_context(p, o, act, cfg, &ctx, &r->truncated, err))) goto done;
    end_phase(p, &p->clip.params);
    sdc_sampler_opts so = o->sampler;
    if (!so.config) so.config = p->sched;
    if (!(smp = sdc_sampler_create(&so, n, err))) {
        s = err->code;
        goto done;
    }
    /* One generator for the batch (diffusers), or one per row (each row then
     * gives the image it gives alone). The CUDA generator draws a batch as
     * A1111 does: image b from its own generator, seeded seed + b. */
    bool a1111_seeds = o->rng == SDC_RNG_CUDA && !o->rows;
    n_rngs = o->rows || a1111_seeds ? o->batch : 1;
    if (!(rngs = malloc(sizeof *rngs * (size_t)n_rngs))) {
        s = sdc_err_set(err, SDC_ERR_OOM, "generate: out of memory");
        goto done;
    }
    for (int b = 0; b < n_rngs; b++)
        sdc_rng_seed_as(&rngs[b], o->rng, o->rows ? o->rows[b].seed : o->seed + (uint64_t)b,
                        o->rng_grid_cap);
    float *x = r->latents;
    if (init_image_of(o, 0)) {
        if ((s = sdc_sampler_set_strength(smp, o->strength, err)) ||
            (s = img2img_latents(p, o, vae_act, smp, rngs, n_rngs, x, &r->vae_upcasts, err)))
            goto done;
        end_phase(p, &p->vae.params);
    } else {
        if (o->init_noise) memcpy(x, o->init_noise, sizeof *x * n);
        else sdc_rng_randn_rows(rngs, n_rngs, x, n);
        float sigma = sdc_sampler_init_noise_sigma(smp);
        for (size_t i = 0; i < n; i++) x[i] *= sigma;
    }
    if ((s = sdc_unet_call_init(&uc, p, act, (cfg ? 2 : 1) * o->batch, h, w, ctx, err))) goto done;
    int iters = sdc_sampler_iterations(smp);
    for (int i = 0; i < iters; i++) {
        if ((s = predict(&uc, o, cfg, x, sdc_sampler_input_scale(smp, i),
                         sdc_sampler_timestep(smp, i), i, eps, buf, err)) ||
            (s = sdc_sampler_step_rows(smp, i, eps, x, rngs, n_rngs, err)))
            goto done;
        r->iterations++;
        if (o->progress) o->progress(o->progress_ctx, i + 1, iters);
    }
    r->graph_replays = uc.replays;
    /* The graph's output and inputs, and the context, go back to the arena
     * before the VAE runs. */
    sdc_unet_call_free(&uc);
    sdc_arena_release(p->arena, ctx.data);
    ctx.data = NULL;
    if (!all_finite(x, n)) {
        s = sdc_err_set(err, SDC_ERR_NUMERIC, "generate: the latents hold NaN or Inf after "
                        "sampling (refusing to decode a broken image)");
        goto done;
    }
    end_phase(p, &p->unet.params);
    s = decode(p, o, vae_act, x, r->rgb, &r->vae_upcasts, err);
    end_phase(p, &p->vae.params);
done:
    sdc_unet_call_free(&uc);
    if (ctx.data) sdc_arena_release(p->arena, ctx.data);
    sdc_sampler_free(smp);
    free(rngs);
    free(eps);
    free(buf);
    if (s) sdc_generate_result_free(r);
    return s;
}

sdc_status sdc_pipeline_time_unet(sdc_pipeline *p, sdc_precision precision, int rows, int width,
                                  int height, double *seconds, sdc_err *err) {
    sdc_dtype act;
    sdc_status s = sdc_pipeline_dtype(p, precision, &act, err);
    if (s) return s;
    int h = height / 8, w = width / 8, C = p->unet.cfg.context_dim;
    size_t nx = (size_t)rows * 4 * h * w, nc = (size_t)rows * 77 * C;
    float *buf = malloc(sizeof *buf * (nx + nc + (size_t)rows));
    if (!buf) return sdc_err_set(err, SDC_ERR_OOM, "timing: out of memory");
    for (size_t i = 0; i < nx + nc; i++) buf[i] = sinf(0.37f * (float)i); /* never zeros */
    for (int r = 0; r < rows; r++) buf[nx + nc + r] = 500.0f;
    sdc_exec ex = sdc_pipeline_exec(p, act, err);
    sdc_tensor x = sdc_x_from_host(&ex, buf, act, 4, (const int64_t[]){rows, 4, h, w});
    sdc_tensor c = sdc_x_from_host(&ex, buf + nx, act, 3, (const int64_t[]){rows, 77, C});
    sdc_tensor t = sdc_x_from_host(&ex, buf + nx + nc, SDC_F32, 1, (const int64_t[]){rows});
    if (!ex.status) ex.status = p->be->synchronize(p->be, err);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sdc_tensor y = sdc_unet_forward(&ex, &p->unet, x, t, c);
    if (!ex.status) ex.status = p->be->synchronize(p->be, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    sdc_x_free(&ex, &y);
    sdc_x_free(&ex, &t);
    sdc_x_free(&ex, &c);
    sdc_x_free(&ex, &x);
    free(buf);
    return ex.status;
}
