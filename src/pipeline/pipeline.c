/* pipeline.c — txt2img / img2img (see pipeline.h). Latents live on the host
 * as plain float arrays for the samplers; each UNet call uploads x and
 * downloads the prediction, which costs nothing on the CPU backend. */
#include "pipeline.h"

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

/* An op sequence on the pipeline's backend; in low-memory mode each weight's
 * pages are dropped after use. */
static sdc_exec begin(sdc_pipeline *p, sdc_err *err) {
    sdc_exec ex = sdc_exec_begin(p->be, p->arena, err);
    ex.drop_weights = p->low_memory;
    return ex;
}

/* ------------------------------------------------------------ conditioning */

/* Hidden states of a prompt: [n_chunks*77, D] on the host (weighted for the
 * A1111 syntax). */
typedef struct {
    float *z;
    int n_tokens;
} encoded;

static sdc_status encode(sdc_pipeline *p, const sdc_generate_opts *o,
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
        sdc_exec ex = begin(p, err);
        sdc_tensor h = sdc_clip_text_forward(&ex, &p->clip, plan.ids, plan.n_chunks, o->clip_skip,
                                             extra, (int)n_extra);
        if (!ex.status)
            ex.status = p->be->download(p->be, out->z, h.data,
                                        sizeof(float) * (size_t)out->n_tokens * D, err);
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
static sdc_status encode_pair(sdc_pipeline *p, const sdc_generate_opts *o,
                              const sdc_embedding_set *emb, const char *prompt, bool cfg,
                              encoded *cond, encoded *uncond, bool *truncated, sdc_err *err) {
    sdc_status s = encode(p, o, emb, prompt, 1, cond, truncated, err);
    if (!s && cfg) {
        s = encode(p, o, emb, o->negative ? o->negative : "", cond->n_tokens / 77, uncond,
                   truncated, err);
        if (s == SDC_ERR_ARG) sdc_err_wrap(err, "negative prompt"); /* which text is bad */
        /* A longer negative prompt pads the prompt in turn. */
        if (!s && uncond->n_tokens > cond->n_tokens) {
            free(cond->z);
            cond->z = NULL;
            s = encode(p, o, emb, prompt, uncond->n_tokens / 77, cond, truncated, err);
        }
    }
    return s;
}

/* The cross-attention context [rows, T, D] on the device: with CFG the
 * first batch rows are the negative prompt's, then the prompts' (diffusers'
 * order), else only the prompts'. Without per-row prompts one encoding
 * serves every row. */
static sdc_status make_context(sdc_pipeline *p, const sdc_generate_opts *o, bool cfg,
                               sdc_tensor *ctx, bool *truncated, sdc_err *err) {
    int B = o->batch, distinct = o->rows ? B : 1;
    encoded *cond = calloc((size_t)distinct, sizeof *cond), *uncond = calloc((size_t)distinct, sizeof *uncond);
    sdc_status s = cond && uncond ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "prompt: out of memory");
    for (int r = 0; !s && r < distinct; r++) {
        const sdc_generate_row *row = o->rows ? &o->rows[r] : NULL;
        const char *prompt = row && row->prompt ? row->prompt : o->prompt;
        const sdc_embedding_set *emb = row && row->embeddings ? row->embeddings : o->embeddings;
        if ((s = encode_pair(p, o, emb, prompt, cfg, &cond[r], &uncond[r], truncated, err)))
            sdc_err_wrap(err, "batch row %d", r);
        /* Rows share one context tensor; padding a row would change its image. */
        else if (cond[r].n_tokens != cond[0].n_tokens)
            s = sdc_err_set(err, SDC_ERR_ARG, "batch row %d: its prompts take %d chunks of 77 "
                            "tokens, row 0's take %d (batch only prompts of equal length)", r,
                            cond[r].n_tokens / 77, cond[0].n_tokens / 77);
    }
    int D = p->clip.cfg.width, T = s ? 0 : cond[0].n_tokens, rows = (cfg ? 2 : 1) * B;
    sdc_exec ex = begin(p, err);
    if (!s) *ctx = sdc_x_new(&ex, SDC_F32, 3, (const int64_t[]){rows, T, D});
    s = s ? s : ex.status;
    size_t row = sizeof(float) * (size_t)T * D;
    for (int r = 0; !s && r < rows; r++) {
        int b = (cfg && r >= B ? r - B : r) % distinct;
        const float *src = cfg && r < B ? uncond[b].z : cond[b].z;
        s = p->be->upload(p->be, (char *)ctx->data + (size_t)r * row, src, row, err);
    }
    if (s && ctx->data) sdc_x_free(&ex, ctx);
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

/* img2img's starting point: each row's init image through the VAE encoder,
 * a posterior sample, scaled, noised to the first remaining timestep. With
 * one generator the batch repeats one sample (diffusers' order: the sample,
 * then the noise of the whole batch); with a generator per row each row
 * draws its own. */
static sdc_status img2img_latents(sdc_pipeline *p, const sdc_generate_opts *o, sdc_sampler *smp,
                                  sdc_rng *rngs, int n_rngs, float *x, sdc_err *err) {
    int h = o->height / 8, w = o->width / 8;
    size_t per = (size_t)4 * h * w, n = per * o->batch;
    float *mu = malloc(sizeof *mu * per), *lv = malloc(sizeof *lv * per);
    float *eps = malloc(sizeof *eps * n), *x0 = malloc(sizeof *x0 * n);
    sdc_status s = mu && lv && eps && x0 ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "img2img: out of memory");
    for (int b = 0; !s && b < n_rngs; b++) {
        sdc_exec ex = begin(p, err);
        sdc_tensor img = sdc_x_new(&ex, SDC_F32, 4, (const int64_t[]){1, 3, o->height, o->width});
        if (!ex.status)
            ex.status = p->be->upload(p->be, img.data, init_image_of(o, b),
                                      sizeof(float) * 3 * (size_t)o->height * o->width, err);
        sdc_tensor mean = {0}, logvar = {0};
        if (!ex.status) sdc_vae_encode(&ex, &p->vae, img, &mean, &logvar);
        sdc_x_free(&ex, &img);
        if (!ex.status) ex.status = p->be->download(p->be, mu, mean.data, sizeof *mu * per, err);
        if (!ex.status) ex.status = p->be->download(p->be, lv, logvar.data, sizeof *lv * per, err);
        sdc_x_free(&ex, &mean);
        sdc_x_free(&ex, &logvar);
        if ((s = ex.status)) break;
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

/* One model evaluation with CFG: eps [B, 4, h, w] from x [B, 4, h, w]. */
static sdc_status predict(sdc_pipeline *p, const sdc_generate_opts *o, bool cfg, sdc_tensor ctx,
                          const float *x, float scale, float t, float *eps, float *buf,
                          sdc_err *err) {
    int h = o->height / 8, w = o->width / 8, B = o->batch, rows = (cfg ? 2 : 1) * B;
    size_t n = (size_t)B * 4 * h * w;
    for (size_t i = 0; i < n; i++) buf[i] = x[i] * scale;
    if (cfg) memcpy(buf + n, buf, sizeof *buf * n);
    sdc_exec ex = begin(p, err);
    sdc_tensor xt = sdc_x_new(&ex, SDC_F32, 4, (const int64_t[]){rows, 4, h, w});
    sdc_tensor tt = sdc_x_new(&ex, SDC_F32, 1, (const int64_t[]){rows});
    float tv[2 * 256];
    for (int r = 0; r < rows; r++) tv[r] = t;
    if (!ex.status) ex.status = p->be->upload(p->be, xt.data, buf, sizeof *buf * n * (cfg ? 2 : 1), err);
    if (!ex.status) ex.status = p->be->upload(p->be, tt.data, tv, sizeof *tv * rows, err);
    sdc_tensor y = sdc_unet_forward(&ex, &p->unet, xt, tt, ctx);
    if (!ex.status) ex.status = p->be->download(p->be, buf, y.data, sizeof *buf * n * (cfg ? 2 : 1), err);
    sdc_x_free(&ex, &y);
    sdc_x_free(&ex, &tt);
    sdc_x_free(&ex, &xt);
    if (ex.status) return ex.status;
    if (!cfg) {
        memcpy(eps, buf, sizeof *eps * n);
    } else {
        float g = o->cfg;
        for (size_t i = 0; i < n; i++) eps[i] = buf[i] + g * (buf[n + i] - buf[i]);
    }
    return SDC_OK;
}

static sdc_status decode(sdc_pipeline *p, const sdc_generate_opts *o, const float *latents,
                         uint8_t *rgb, sdc_err *err) {
    int h = o->height / 8, w = o->width / 8;
    size_t per = (size_t)4 * h * w, pix = (size_t)3 * o->height * o->width;
    float *z = malloc(sizeof *z * per), *img = malloc(sizeof *img * pix);
    sdc_status s = z && img ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "decode: out of memory");
    /* One image at a time bounds the VAE's memory; samples are independent. */
    for (int b = 0; !s && b < o->batch; b++) {
        for (size_t i = 0; i < per; i++) z[i] = latents[b * per + i] / p->vae.cfg.scaling_factor;
        sdc_exec ex = begin(p, err);
        sdc_tensor zt = sdc_x_new(&ex, SDC_F32, 4, (const int64_t[]){1, 4, h, w});
        if (!ex.status) ex.status = p->be->upload(p->be, zt.data, z, sizeof *z * per, err);
        sdc_tensor y = sdc_vae_decode(&ex, &p->vae, zt);
        if (!ex.status) ex.status = p->be->download(p->be, img, y.data, sizeof *img * pix, err);
        sdc_x_free(&ex, &y);
        sdc_x_free(&ex, &zt);
        s = ex.status;
        /* diffusers' postprocess; NaN/Inf is an error, never a black image. */
        if (!s && (s = sdc_image_from_tensor(img, o->width, o->height, rgb + (size_t)b * pix, err)))
            sdc_err_wrap(err, "image %d of the batch", b);
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

sdc_status sdc_generate(sdc_pipeline *p, const sdc_generate_opts *o, sdc_generate_result *r,
                        sdc_err *err) {
    memset(r, 0, sizeof *r);
    sdc_status s = check_opts(o, err);
    if (s) return s;
    int h = o->height / 8, w = o->width / 8;
    size_t n = (size_t)o->batch * 4 * h * w;
    bool cfg = o->cfg > 1.0f; /* diffusers: guidance only above 1 */
    r->batch = o->batch, r->width = o->width, r->height = o->height;
    r->latents = malloc(sizeof *r->latents * n);
    r->rgb = malloc((size_t)o->batch * 3 * o->width * o->height);
    float *eps = malloc(sizeof *eps * n), *buf = malloc(sizeof *buf * 2 * n);
    sdc_sampler *smp = NULL;
    sdc_tensor ctx = {0};
    sdc_rng *rngs = NULL;
    int n_rngs = 1;
    if (!r->latents || !r->rgb || !eps || !buf) {
        s = sdc_err_set(err, SDC_ERR_OOM, "generate: out of memory");
        goto done;
    }
    if ((s = make_context(p, o, cfg, &ctx, &r->truncated, err))) goto done;
    /* Each model's weight pages are dropped when its phase ends (mmap'ed
     * weights come back from the page cache on the next image): the peak is
     * one model's weights plus its activations, not all three models. */
    sdc_params_release_pages(&p->clip.params);
    sdc_sampler_opts so = o->sampler;
    if (!so.config) so.config = p->sched;
    if (!(smp = sdc_sampler_create(&so, n, err))) {
        s = err->code;
        goto done;
    }
    /* One generator for the batch, or one per row (each row then gives the
     * image it gives alone). */
    n_rngs = o->rows ? o->batch : 1;
    if (!(rngs = malloc(sizeof *rngs * (size_t)n_rngs))) {
        s = sdc_err_set(err, SDC_ERR_OOM, "generate: out of memory");
        goto done;
    }
    for (int b = 0; b < n_rngs; b++) sdc_rng_seed(&rngs[b], o->rows ? o->rows[b].seed : o->seed);
    float *x = r->latents;
    if (init_image_of(o, 0)) {
        if ((s = sdc_sampler_set_strength(smp, o->strength, err)) ||
            (s = img2img_latents(p, o, smp, rngs, n_rngs, x, err)))
            goto done;
    } else {
        if (o->init_noise) memcpy(x, o->init_noise, sizeof *x * n);
        else sdc_rng_randn_rows(rngs, n_rngs, x, n);
        float sigma = sdc_sampler_init_noise_sigma(smp);
        for (size_t i = 0; i < n; i++) x[i] *= sigma;
    }
    int iters = sdc_sampler_iterations(smp);
    for (int i = 0; i < iters; i++) {
        if ((s = predict(p, o, cfg, ctx, x, sdc_sampler_input_scale(smp, i),
                         sdc_sampler_timestep(smp, i), eps, buf, err)) ||
            (s = sdc_sampler_step_rows(smp, i, eps, x, rngs, n_rngs, err)))
            goto done;
        r->iterations++;
        if (o->progress) o->progress(o->progress_ctx, i + 1, iters);
    }
    if (!all_finite(x, n)) {
        s = sdc_err_set(err, SDC_ERR_NUMERIC, "generate: the latents hold NaN or Inf after "
                        "sampling (refusing to decode a broken image)");
        goto done;
    }
    sdc_params_release_pages(&p->unet.params);
    s = decode(p, o, x, r->rgb, err);
    sdc_params_release_pages(&p->vae.params);
done:
    if (ctx.data) sdc_arena_release(p->arena, ctx.data);
    sdc_sampler_free(smp);
    free(rngs);
    free(eps);
    free(buf);
    if (s) sdc_generate_result_free(r);
    return s;
}

sdc_status sdc_pipeline_time_unet(sdc_pipeline *p, int rows, int width, int height,
                                  double *seconds, sdc_err *err) {
    int h = height / 8, w = width / 8, C = p->unet.cfg.context_dim;
    size_t nx = (size_t)rows * 4 * h * w, nc = (size_t)rows * 77 * C;
    float *buf = malloc(sizeof *buf * (nx + nc + (size_t)rows));
    if (!buf) return sdc_err_set(err, SDC_ERR_OOM, "timing: out of memory");
    for (size_t i = 0; i < nx + nc; i++) buf[i] = sinf(0.37f * (float)i); /* never zeros */
    for (int r = 0; r < rows; r++) buf[nx + nc + r] = 500.0f;
    sdc_exec ex = begin(p, err);
    sdc_tensor x = sdc_x_new(&ex, SDC_F32, 4, (const int64_t[]){rows, 4, h, w});
    sdc_tensor c = sdc_x_new(&ex, SDC_F32, 3, (const int64_t[]){rows, 77, C});
    sdc_tensor t = sdc_x_new(&ex, SDC_F32, 1, (const int64_t[]){rows});
    if (!ex.status) ex.status = p->be->upload(p->be, x.data, buf, sizeof *buf * nx, err);
    if (!ex.status) ex.status = p->be->upload(p->be, c.data, buf + nx, sizeof *buf * nc, err);
    if (!ex.status) ex.status = p->be->upload(p->be, t.data, buf + nx + nc, sizeof *buf * rows, err);
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
