/* textinv_train.c — see textinv_train.h: the trainer's draws, updates,
 * fixed-draw evaluation and its checkpoint file. */
#include "textinv_train.h"

#include "../pipeline/schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- create */

static sdc_status check_config(const sdc_pipeline *p, const sdc_ti_config *c, sdc_err *err) {
    const sdc_clip_text_config *cc = &p->clip.cfg;
    if (!c->token || !*c->token) return sdc_err_set(err, SDC_ERR_ARG, "textual inversion: no placeholder token");
    if (c->num_vectors < 1 || c->num_vectors > SDC_EMB_MAX_VECTORS)
        return sdc_err_set(err, SDC_ERR_ARG, "--num-vectors %d outside [1, %d]", c->num_vectors,
                           SDC_EMB_MAX_VECTORS);
    for (int i = 0; i < c->num_vectors; i++)
        if (c->init_ids[i] < 0 || c->init_ids[i] >= cc->vocab)
            return sdc_err_set(err, SDC_ERR_ARG, "initializer token id %d outside the vocabulary [0, %d)",
                               (int)c->init_ids[i], cc->vocab);
    if (c->steps < 1 || c->steps > 10000000)
        return sdc_err_set(err, SDC_ERR_ARG, "--steps %d outside [1, 10000000]", c->steps);
    if (c->batch < 1 || c->batch > SDC_TI_MAX_BATCH || c->accum < 1 || c->accum > 10000)
        return sdc_err_set(err, SDC_ERR_ARG, "batch %d / accumulation %d outside [1, %d] / [1, 10000]",
                           c->batch, c->accum, SDC_TI_MAX_BATCH);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return sdc_err_set(err, SDC_ERR_ARG, "learning rate %g is not a positive number", c->lr);
    if (c->clip_skip < 0 || c->clip_skip >= cc->layers)
        return sdc_err_set(err, SDC_ERR_ARG, "clip skip %d outside [0, %d)", c->clip_skip, cc->layers);
    if (cc->width != p->unet.cfg.context_dim)
        return sdc_err_set(err, SDC_ERR_SHAPE, "text encoder width %d but UNet context %d", cc->width,
                           p->unet.cfg.context_dim);
    return SDC_OK;
}

/* Row id of the token table as F32, from wherever the weights live. */
static sdc_status token_row(sdc_pipeline *p, int32_t id, float *out, sdc_err *err) {
    const sdc_tensor *te = &p->clip.token_emb;
    int D = p->clip.cfg.width;
    size_t esz = sdc_dtype_size(te->dtype), bytes = esz * (size_t)D;
    void *buf = malloc(bytes);
    if (!buf) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    sdc_status s = p->be->download(p->be, buf, (const char *)te->data + (size_t)id * bytes, bytes, err);
    if (!s) s = sdc_convert(out, SDC_F32, buf, te->dtype, (size_t)D, err);
    free(buf);
    return s;
}

/* Each template's ids; the placeholder's vectors must all fit in the 75 tokens. */
static sdc_status make_prompts(sdc_ti_trainer *t, sdc_err *err) {
    sdc_embedding_set *ph = NULL;
    sdc_status s = sdc_embeddings_from_memory(&ph, t->cfg.token, t->init, t->cfg.num_vectors, t->dim, err);
    for (int k = 0; !s && k < SDC_TI_N_TEMPLATES; k++) {
        if ((s = sdc_ti_prompt_ids(t->p->tok, ph, k, t->prompt_ids[k], err))) break;
        int found = 0;
        for (int i = 0; i < 77; i++) found += t->prompt_ids[k][i] >= SDC_EMB_ID_BASE;
        if (found != t->cfg.num_vectors)
            s = sdc_err_set(err, SDC_ERR_ARG, "--num-vectors %d: the template '%s' leaves room for only "
                            "%d of them in CLIP's 75 tokens", t->cfg.num_vectors, sdc_ti_template(k), found);
    }
    sdc_embeddings_free(ph);
    return s;
}

sdc_status sdc_ti_trainer_create(sdc_pipeline *p, const sdc_ti_config *c, sdc_ti_data *data,
                                 sdc_ti_trainer **out, sdc_err *err) {
    *out = NULL;
    sdc_status s = check_config(p, c, err);
    if (s) return s;
    sdc_ti_trainer *t = calloc(1, sizeof *t);
    if (!t) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    t->cfg = *c;
    t->p = p;
    t->data = data;
    t->dim = p->clip.cfg.width;
    t->init_eval = NAN;
    size_t nv = (size_t)c->num_vectors * (size_t)t->dim;
    t->cfg.token = strdup(c->token);
    t->emb = malloc(sizeof *t->emb * nv);
    t->init = malloc(sizeof *t->init * nv);
    t->exp_avg = calloc(nv, sizeof *t->exp_avg);
    t->exp_avg_sq = calloc(nv, sizeof *t->exp_avg_sq);
    t->loss = calloc((size_t)c->steps, sizeof *t->loss);
    t->order = calloc((size_t)data->n, sizeof *t->order);
    if (!t->cfg.token || !t->emb || !t->init || !t->exp_avg || !t->exp_avg_sq || !t->loss || !t->order)
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int i = 0; !s && i < c->num_vectors; i++)
        s = token_row(p, c->init_ids[i], t->init + (size_t)i * t->dim, err);
    if (!s) {
        memcpy(t->emb, t->init, sizeof *t->emb * nv);
        s = make_prompts(t, err);
    }
    if (s) {
        sdc_ti_trainer_free(t);
        return s;
    }
    sdc_schedule_alphas_cumprod(t->alphas_cumprod);
    t->opt = sdc_adamw_defaults(c->lr);
    sdc_rng_seed(&t->rng, c->seed + 1); /* seed itself keys the VAE posterior draws */
    t->order_pos = data->n;             /* the first draw starts a pass */
    *out = t;
    return SDC_OK;
}

void sdc_ti_trainer_free(sdc_ti_trainer *t) {
    if (!t) return;
    free((char *)t->cfg.token);
    free(t->emb);
    free(t->init);
    free(t->exp_avg);
    free(t->exp_avg_sq);
    free(t->loss);
    free(t->order);
    free(t);
}

/* ---------------------------------------------------------------- steps */

/* One micro-batch's inputs. */
typedef struct {
    int32_t ids[SDC_TI_MAX_BATCH * 77];
    int32_t ts[SDC_TI_MAX_BATCH];
    float *lat, *noise; /* [B, 4, h, w] */
} micro;

/* Next image of the pass; a new pass shuffles them (Fisher-Yates from the
 * identity, so the pass's order depends on the generator alone). */
static int next_image(sdc_ti_trainer *t) {
    int n = t->data->n;
    if (t->order_pos >= n) {
        for (int i = 0; i < n; i++) t->order[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(sdc_rng_u32(&t->rng) % (uint32_t)(i + 1)), tmp = t->order[i];
            t->order[i] = t->order[j];
            t->order[j] = tmp;
        }
        t->order_pos = 0;
    }
    return t->order[t->order_pos++];
}

static sdc_status draw(sdc_ti_trainer *t, micro *m, sdc_err *err) {
    int B = t->cfg.batch, h = t->data->size / 8;
    size_t per = (size_t)4 * h * h;
    for (int b = 0; b < B; b++) {
        int img = next_image(t);
        int k = (int)(sdc_rng_u32(&t->rng) % SDC_TI_N_TEMPLATES);
        bool flip = sdc_rng_u32(&t->rng) & 1;
        m->ts[b] = (int32_t)(sdc_rng_u32(&t->rng) % 1000);
        memcpy(m->ids + 77 * b, t->prompt_ids[k], sizeof *m->ids * 77);
        const float *z;
        sdc_status s = sdc_ti_data_latent(t->data, t->p, img, flip, &z, err);
        if (s) return s;
        memcpy(m->lat + b * per, z, sizeof *z * per);
    }
    sdc_rng_randn(&t->rng, m->noise, (size_t)B * per);
    return SDC_OK;
}

static bool all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

static sdc_ti_model model_of(const sdc_ti_trainer *t) {
    return (sdc_ti_model){.clip = &t->p->clip, .unet = &t->p->unet,
                          .alphas_cumprod = t->alphas_cumprod, .prediction = t->cfg.prediction,
                          .clip_skip = t->cfg.clip_skip};
}

/* Accumulates one micro-batch: gsum += grad / n_micro, *lsum += loss. */
static sdc_status accumulate(sdc_ti_trainer *t, const sdc_ti_batch *b, int n_micro, float *g,
                             float *gsum, double *lsum, sdc_err *err) {
    sdc_ti_model m = model_of(t);
    sdc_exec ex = sdc_exec_begin(t->p->be, t->p->arena, err);
    float loss = 0;
    size_t nv = (size_t)t->cfg.num_vectors * t->dim;
    if (sdc_ti_loss_grad(&ex, &m, t->emb, t->cfg.num_vectors, b, &loss, g)) return ex.status;
    for (size_t i = 0; i < nv; i++) gsum[i] += g[i] / (float)n_micro;
    *lsum += loss;
    return SDC_OK;
}

/* The update after the micro-batches: checks, AdamW, the loss record. */
static sdc_status apply(sdc_ti_trainer *t, const float *gsum, double lsum, int n_micro, sdc_err *err) {
    size_t nv = (size_t)t->cfg.num_vectors * t->dim;
    float loss = (float)(lsum / n_micro);
    if (!isfinite(loss) || !all_finite(gsum, nv))
        return sdc_err_set(err, SDC_ERR_NUMERIC, "step %d: the %s is %s (training diverged: a "
                           "smaller --lr may help)", t->step + 1, isfinite(loss) ? "gradient" : "loss",
                           isnan(loss) ? "NaN" : isfinite(loss) ? "not finite" : "infinite");
    if (t->step >= t->cfg.steps)
        return sdc_err_set(err, SDC_ERR_ARG, "textual inversion: all %d steps are done", t->cfg.steps);
    /* On copies: an update that overflows leaves the state as it was. */
    float *e = malloc(sizeof *e * nv * 3), *m = e + nv, *v = e + 2 * nv;
    if (!e) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    memcpy(e, t->emb, sizeof *e * nv);
    memcpy(m, t->exp_avg, sizeof *m * nv);
    memcpy(v, t->exp_avg_sq, sizeof *v * nv);
    sdc_adamw_step(&t->opt, t->step + 1, e, m, v, gsum, nv);
    if (!all_finite(e, nv)) {
        free(e);
        return sdc_err_set(err, SDC_ERR_NUMERIC, "step %d: the update overflows the vectors to Inf or NaN "
                           "(training diverged: a smaller --lr may help)", t->step + 1);
    }
    memcpy(t->emb, e, sizeof *e * nv);
    memcpy(t->exp_avg, m, sizeof *m * nv);
    memcpy(t->exp_avg_sq, v, sizeof *v * nv);
    free(e);
    t->loss[t->step++] = loss;
    return SDC_OK;
}

sdc_status sdc_ti_trainer_step(sdc_ti_trainer *t, sdc_err *err) {
    int B = t->cfg.batch, h = t->data->size / 8, n = t->data->n;
    size_t per = (size_t)4 * h * h, nv = (size_t)t->cfg.num_vectors * t->dim;
    micro *m = malloc(sizeof *m);
    float *g = malloc(sizeof *g * nv), *gsum = calloc(nv, sizeof *gsum);
    int32_t *order0 = malloc(sizeof *order0 * (size_t)n);
    sdc_status s = m && g && gsum && order0 ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (m) {
        m->lat = malloc(sizeof *m->lat * per * B);
        m->noise = malloc(sizeof *m->noise * per * B);
        if (!s && (!m->lat || !m->noise)) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    /* A failed step leaves the draws where they were. */
    sdc_rng rng0 = t->rng;
    int pos0 = t->order_pos;
    if (!s) memcpy(order0, t->order, sizeof *order0 * (size_t)n);
    double lsum = 0;
    for (int a = 0; !s && a < t->cfg.accum; a++) {
        s = draw(t, m, err);
        sdc_ti_batch b = {.batch = B, .h = h, .w = h, .ids = m->ids, .latents = m->lat,
                          .noise = m->noise, .timesteps = m->ts};
        if (!s) s = accumulate(t, &b, t->cfg.accum, g, gsum, &lsum, err);
    }
    if (!s) s = apply(t, gsum, lsum, t->cfg.accum, err);
    if (s && order0) {
        t->rng = rng0;
        t->order_pos = pos0;
        memcpy(t->order, order0, sizeof *order0 * (size_t)n);
    }
    if (m) free(m->lat), free(m->noise);
    free(m);
    free(g);
    free(gsum);
    free(order0);
    return s;
}

sdc_status sdc_ti_trainer_update(sdc_ti_trainer *t, const sdc_ti_batch *micro_b, int n_micro,
                                 sdc_err *err) {
    if (n_micro < 1 || !micro_b) return sdc_err_set(err, SDC_ERR_ARG, "textual inversion: no micro-batch");
    size_t nv = (size_t)t->cfg.num_vectors * t->dim;
    float *g = malloc(sizeof *g * nv), *gsum = calloc(nv, sizeof *gsum);
    sdc_status s = g && gsum ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    double lsum = 0;
    for (int a = 0; !s && a < n_micro; a++) s = accumulate(t, &micro_b[a], n_micro, g, gsum, &lsum, err);
    if (!s) s = apply(t, gsum, lsum, n_micro, err);
    free(g);
    free(gsum);
    return s;
}

sdc_status sdc_ti_trainer_eval(sdc_ti_trainer *t, const float *emb, int n_samples, float *loss,
                               sdc_err *err) {
    int B = t->cfg.batch, h = t->data->size / 8, n = t->data->n;
    size_t per = (size_t)4 * h * h;
    micro *m = malloc(sizeof *m);
    sdc_status s = m ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (m) {
        m->lat = malloc(sizeof *m->lat * per * B);
        m->noise = malloc(sizeof *m->noise * per * B);
        if (!s && (!m->lat || !m->noise)) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    sdc_rng g;
    sdc_rng_seed(&g, t->cfg.seed + 2); /* apart from the posterior (seed) and training (seed + 1) draws */
    sdc_ti_model md = model_of(t);
    double sum = 0;
    for (int j0 = 0; !s && j0 < n_samples; j0 += B) {
        int nb = n_samples - j0 < B ? n_samples - j0 : B;
        for (int b = 0; !s && b < nb; b++) {
            int j = j0 + b;
            const float *z;
            m->ts[b] = (int32_t)(((int64_t)2 * j + 1) * 1000 / (2 * n_samples)); /* mid-points */
            memcpy(m->ids + 77 * b, t->prompt_ids[j % SDC_TI_N_TEMPLATES], sizeof *m->ids * 77);
            s = sdc_ti_data_latent(t->data, t->p, j % n, (j / n) % 2, &z, err);
            if (!s) memcpy(m->lat + b * per, z, sizeof *z * per);
        }
        if (s) break;
        sdc_rng_randn(&g, m->noise, (size_t)nb * per);
        sdc_ti_batch b = {.batch = nb, .h = h, .w = h, .ids = m->ids, .latents = m->lat,
                          .noise = m->noise, .timesteps = m->ts};
        sdc_exec ex = sdc_exec_begin(t->p->be, t->p->arena, err);
        float l = 0;
        if (!(s = sdc_ti_loss(&ex, &md, emb, t->cfg.num_vectors, &b, &l))) sum += (double)l * nb;
    }
    if (m) free(m->lat), free(m->noise);
    free(m);
    if (!s && !isfinite(sum))
        s = sdc_err_set(err, SDC_ERR_NUMERIC, "the loss on the %d fixed draws is %s", n_samples,
                        isnan(sum) ? "NaN" : "infinite");
    if (!s) *loss = (float)(sum / n_samples);
    return s;
}

/* ---------------------------------------------------------------- checkpoint */

enum { N_CONFIG = SDC_TI_N_CONFIG };

void sdc_ti_trainer_config(const sdc_ti_trainer *t, const char *kv[2 * N_CONFIG], char buf[N_CONFIG][1024]) {
    const sdc_ti_config *c = &t->cfg;
    int k = 0;
#define KV(key, ...) (snprintf(buf[k], sizeof buf[k], __VA_ARGS__), kv[2 * k] = key, kv[2 * k + 1] = buf[k], k++)
    KV("sdc.textinv", "1");
    KV("token", "%s", c->token);
    char ids[1024] = "";
    for (int i = 0; i < c->num_vectors; i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? "," : "", (int)c->init_ids[i]);
    KV("init_ids", "%s", ids);
    KV("num_vectors", "%d", c->num_vectors);
    KV("steps", "%d", c->steps);
    KV("batch", "%d", c->batch);
    KV("accum", "%d", c->accum);
    KV("lr", "%.17g", c->lr);
    KV("seed", "%llu", (unsigned long long)c->seed);
    KV("prediction", "%s", c->prediction == SDC_PREDICT_V ? "v" : "epsilon");
    KV("clip_skip", "%d", c->clip_skip);
    KV("size", "%d", t->data->size);
    KV("images_sha256", "%s (%d images)", t->data->sha256, t->data->n);
#undef KV
}

sdc_status sdc_ti_trainer_save(const sdc_ti_trainer *t, const char *path, sdc_err *err) {
    enum { N_STATE = 7 };
    const char *kv[2 * (N_CONFIG + N_STATE)];
    char buf[N_CONFIG][1024], st[N_STATE][64];
    sdc_ti_trainer_config(t, kv, buf);
    const char *names[N_STATE] = {"step", "order_pos", "rng_next", "rng_left", "rng_has_normal",
                                  "rng_cached_normal", "init_eval"};
    snprintf(st[0], 64, "%d", t->step);
    snprintf(st[1], 64, "%d", t->order_pos);
    snprintf(st[2], 64, "%d", t->rng.next);
    snprintf(st[3], 64, "%d", t->rng.left);
    snprintf(st[4], 64, "%d", t->rng.has_normal ? 1 : 0);
    snprintf(st[5], 64, "%a", t->rng.cached_normal); /* hex: exact */
    snprintf(st[6], 64, "%a", (double)t->init_eval);
    for (int i = 0; i < N_STATE; i++) kv[2 * (N_CONFIG + i)] = names[i], kv[2 * (N_CONFIG + i) + 1] = st[i];
    int64_t nv = t->cfg.num_vectors, D = t->dim;
    sdc_tensor emb, m, v, init, loss, rng, order;
    sdc_status s = SDC_OK;
    s = s ? s : sdc_tensor_init(&emb, SDC_F32, 2, (const int64_t[]){nv, D}, t->emb, err);
    s = s ? s : sdc_tensor_init(&m, SDC_F32, 2, (const int64_t[]){nv, D}, t->exp_avg, err);
    s = s ? s : sdc_tensor_init(&v, SDC_F32, 2, (const int64_t[]){nv, D}, t->exp_avg_sq, err);
    s = s ? s : sdc_tensor_init(&init, SDC_F32, 2, (const int64_t[]){nv, D}, t->init, err);
    s = s ? s : sdc_tensor_init(&loss, SDC_F32, 1, (const int64_t[]){t->step}, t->loss, err);
    s = s ? s : sdc_tensor_init(&rng, SDC_I32, 1, (const int64_t[]){SDC_MT_N}, (void *)t->rng.state, err);
    s = s ? s : sdc_tensor_init(&order, SDC_I32, 1, (const int64_t[]){t->data->n}, t->order, err);
    if (s) return s;
    sdc_st_write_item items[] = {{"embedding", &emb}, {"exp_avg", &m}, {"exp_avg_sq", &v},
                                 {"init", &init}, {"loss", &loss}, {"rng_state", &rng},
                                 {"order", &order}};
    return sdc_safetensors_write(path, items, sizeof items / sizeof *items, kv, N_CONFIG + N_STATE, err);
}

/* Reads tensor name (F32 or I32, numel elements) into dst. */
static sdc_status read_tensor(const sdc_safetensors *st, const char *path, const char *name,
                              sdc_dtype dt, int64_t numel, void *dst, sdc_err *err) {
    const sdc_st_entry *e = sdc_safetensors_find(st, name);
    if (!e) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: no tensor '%s' (not a training checkpoint)", path, name);
    if (e->dtype != dt || (int64_t)sdc_st_entry_numel(e) != numel)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: tensor '%s' is %s of %llu values; expected %s of %lld",
                           path, name, sdc_dtype_name(e->dtype), (unsigned long long)sdc_st_entry_numel(e),
                           sdc_dtype_name(dt), (long long)numel);
    return numel ? sdc_safetensors_read(st, e, dst, dt, err) : SDC_OK;
}

static sdc_status meta_int(const sdc_safetensors *st, const char *path, const char *key, long lo,
                           long hi, long *out, sdc_err *err) {
    const char *v = sdc_safetensors_meta(st, key);
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < lo || x > hi)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: metadata '%s' is %s%s%s (expected an integer in [%ld, %ld])",
                           path, key, v ? "'" : "missing", v ? v : "", v ? "'" : "", lo, hi);
    *out = x;
    return SDC_OK;
}

sdc_status sdc_ti_trainer_load(sdc_ti_trainer *t, const char *path, sdc_err *err) {
    sdc_safetensors *st = sdc_safetensors_open(path, err);
    if (!st) return err->code;
    const char *kv[2 * N_CONFIG];
    char buf[N_CONFIG][1024];
    sdc_ti_trainer_config(t, kv, buf);
    sdc_status s = SDC_OK;
    for (int i = 0; !s && i < N_CONFIG; i++) {
        const char *have = sdc_safetensors_meta(st, kv[2 * i]);
        if (!have || strcmp(have, kv[2 * i + 1]))
            s = sdc_err_set(err, SDC_ERR_ARG, "%s was made with %s '%s'; this run has '%s' (use the same "
                            "settings to resume, or another output folder)", path, kv[2 * i],
                            have ? have : "(none)", kv[2 * i + 1]);
    }
    int64_t nv = (int64_t)t->cfg.num_vectors * t->dim;
    long step = 0, pos = 0, next = 0, left = 0, hasn = 0;
    if (!s) s = meta_int(st, path, "step", 0, t->cfg.steps, &step, err);
    if (!s) s = meta_int(st, path, "order_pos", 0, t->data->n, &pos, err);
    if (!s) s = meta_int(st, path, "rng_next", 0, SDC_MT_N, &next, err);
    if (!s) s = meta_int(st, path, "rng_left", 1, SDC_MT_N, &left, err);
    if (!s) s = meta_int(st, path, "rng_has_normal", 0, 1, &hasn, err);
    /* The generator's counters as rng.c leaves them: just seeded (left 1,
     * next 0) or next + left == 625; anything else would index past state. */
    if (!s && !(left == 1 && next == 0) && next + left != SDC_MT_N + 1)
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: generator counters next %ld / left %ld are inconsistent",
                        path, next, left);
    const char *cn = sdc_safetensors_meta(st, "rng_cached_normal"), *ie = sdc_safetensors_meta(st, "init_eval");
    if (!s && (!cn || !ie))
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: metadata 'rng_cached_normal' or 'init_eval' missing", path);
    float *init = malloc(sizeof *init * (size_t)nv);
    if (!s && !init) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s) s = read_tensor(st, path, "init", SDC_F32, nv, init, err);
    if (!s && memcmp(init, t->init, sizeof *init * (size_t)nv))
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: its initial vectors differ from this model's for the "
                        "same initializer (made with another model?)", path);
    /* Into copies first: a bad file leaves the trainer as it was. */
    sdc_ti_trainer c = *t;
    float *emb = malloc(sizeof *emb * (size_t)nv), *m = malloc(sizeof *m * (size_t)nv);
    float *v = malloc(sizeof *v * (size_t)nv);
    int32_t *order = malloc(sizeof *order * (size_t)t->data->n);
    if (!s && (!emb || !m || !v || !order)) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s) s = read_tensor(st, path, "embedding", SDC_F32, nv, emb, err);
    if (!s) s = read_tensor(st, path, "exp_avg", SDC_F32, nv, m, err);
    if (!s) s = read_tensor(st, path, "exp_avg_sq", SDC_F32, nv, v, err);
    float *loss = malloc(sizeof *loss * (size_t)(step ? step : 1));
    if (!s && !loss) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s) s = read_tensor(st, path, "loss", SDC_F32, step, loss, err);
    if (!s) s = read_tensor(st, path, "rng_state", SDC_I32, SDC_MT_N, c.rng.state, err);
    if (!s) s = read_tensor(st, path, "order", SDC_I32, t->data->n, order, err);
    for (int i = 0; !s && i < t->data->n; i++)
        if (order[i] < 0 || order[i] >= t->data->n)
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: image order entry %d is %d", path, i, (int)order[i]);
    if (!s) {
        char *end;
        c.rng.cached_normal = strtod(cn, &end);
        double e = strtod(ie, &end);
        c.rng.next = (int)next;
        c.rng.left = (int)left;
        c.rng.has_normal = hasn != 0;
        t->rng = c.rng;
        t->init_eval = (float)e;
        t->step = (int)step;
        t->order_pos = (int)pos;
        memcpy(t->emb, emb, sizeof *emb * (size_t)nv);
        memcpy(t->exp_avg, m, sizeof *m * (size_t)nv);
        memcpy(t->exp_avg_sq, v, sizeof *v * (size_t)nv);
        memcpy(t->order, order, sizeof *order * (size_t)t->data->n);
        memcpy(t->loss, loss, sizeof *loss * (size_t)step);
    }
    free(init);
    free(emb);
    free(m);
    free(v);
    free(order);
    free(loss);
    sdc_safetensors_close(st);
    return s;
}
