/* textinv_run.c — see textinv_run.h: the output folder's life (lock, temp
 * leftovers, resume, the finished marker) around the trainer's updates. */
#include "textinv_run.h"

#include "../core/atomic_file.h"
#include "../core/sha256.h"
#include "../image/image.h"
#include "loss_plot.h"
#include "textinv_output.h"
#include "textinv_prompts.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4352

static void note(const sdc_ti_run_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const sdc_ti_run_opts *o, const char *fmt, ...) {
    if (!o->note) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->note(o->ctx, msg);
}

static sdc_status check_opts(const sdc_ti_run_opts *o, sdc_err *err) {
    if (!o->images || !o->out || !*o->out) return sdc_err_set(err, SDC_ERR_ARG, "training: no image or output folder");
    if (o->checkpoint_every < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "--checkpoint-every %d must be at least 1", o->checkpoint_every);
    if (o->eval_samples < 0 || o->eval_samples > 4096)
        return sdc_err_set(err, SDC_ERR_ARG, "--eval-samples %d outside [0, 4096]", o->eval_samples);
    if (o->validate_every < 0 || (o->validate_every && (!o->validation_prompt || o->validation_steps < 1)))
        return sdc_err_set(err, SDC_ERR_ARG, "validation needs a prompt and at least one step");
    return SDC_OK;
}

/* ---------------------------------------------------------------- the folder */

static void path_in(char *buf, const char *dir, const char *name) { snprintf(buf, PATH_CAP, "%s/%s", dir, name); }

/* flock on dir/.sdc-train.lock; -1 with err when another run holds it. */
static int lock_folder(const char *dir, sdc_err *err) {
    char path[PATH_CAP];
    path_in(path, dir, ".sdc-train.lock");
    int fd = sdc_lock_file(path, false);
    if (fd == -1) sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
    else if (fd == -2)
        sdc_err_set(err, SDC_ERR_IO, "%s: another training run is using this folder (%s)", dir,
                    strerror(errno));
    if (fd < 0) return -1;
    return fd;
}

/* Temp files a killed run left ("NAME.tmp.PID.N" of atomic_file.c). */
static void remove_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[PATH_CAP];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strstr(e->d_name, ".tmp.")) {
            path_in(path, dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

/* A fresh folder that got nothing is taken back (rmdir only removes it empty). */
static void undo_fresh(const char *dir) {
    char path[PATH_CAP];
    path_in(path, dir, ".sdc-train.lock");
    unlink(path);
    path_in(path, dir, "validation");
    rmdir(path);
    rmdir(dir);
}

/* ---------------------------------------------------------------- train.json */

static char *build_json(const sdc_ti_run_opts *o, const sdc_ti_trainer *t, const sdc_ti_data *d,
                        const sdc_ti_run_result *r) {
    const sdc_ti_config *c = &t->cfg;
    const char *kv[2 * SDC_TI_N_CONFIG];
    char buf[SDC_TI_N_CONFIG][1024], a1111[256];
    sdc_ti_trainer_config(t, kv, buf);
    sdc_ti_a1111_name(c->token, a1111, sizeof a1111);
    cJSON *j = cJSON_CreateObject(), *ids = cJSON_CreateArray(), *sk = cJSON_CreateArray();
    cJSON *cfg = cJSON_CreateObject();
    if (!j || !ids || !sk || !cfg) {
        cJSON_Delete(j), cJSON_Delete(ids), cJSON_Delete(sk), cJSON_Delete(cfg);
        return NULL;
    }
    cJSON_AddStringToObject(j, "token", c->token);
    cJSON_AddStringToObject(j, "learned_embeds", SDC_TI_LEARNED_EMBEDS);
    cJSON_AddStringToObject(j, "learned_embeds_sha256", r->learned_sha256);
    cJSON_AddStringToObject(j, "a1111_embedding", a1111);
    cJSON_AddNumberToObject(j, "num_vectors", c->num_vectors);
    if (o->init_word) cJSON_AddStringToObject(j, "init", o->init_word);
    else cJSON_AddNullToObject(j, "init");
    for (int i = 0; i < c->num_vectors; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(c->init_ids[i]));
    cJSON_AddItemToObject(j, "init_ids", ids);
    cJSON_AddNumberToObject(j, "steps", c->steps);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "accum", c->accum);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "base_lr", o->base_lr);
    cJSON_AddBoolToObject(j, "scale_lr", o->scale_lr);
    cJSON_AddNumberToObject(j, "size", d->size);
    cJSON_AddNumberToObject(j, "seed", (double)c->seed);
    cJSON_AddStringToObject(j, "prediction", c->prediction == SDC_PREDICT_V ? "v" : "epsilon");
    cJSON_AddNumberToObject(j, "clip_skip", c->clip_skip);
    cJSON_AddNumberToObject(j, "images", d->n);
    cJSON_AddStringToObject(j, "images_sha256", d->sha256);
    for (int i = 0; i < d->n_skipped; i++) cJSON_AddItemToArray(sk, cJSON_CreateString(d->skipped[i]));
    cJSON_AddItemToObject(j, "skipped", sk);
    cJSON_AddStringToObject(j, "loss_csv", "loss.csv");
    cJSON_AddNumberToObject(j, "last_step_loss", t->loss[t->step - 1]);
    cJSON_AddNumberToObject(j, "eval_samples", o->eval_samples);
    if (isfinite(r->init_loss)) cJSON_AddNumberToObject(j, "init_loss", r->init_loss);
    else cJSON_AddNullToObject(j, "init_loss");
    if (isfinite(r->final_loss)) cJSON_AddNumberToObject(j, "final_loss", r->final_loss);
    else cJSON_AddNullToObject(j, "final_loss");
    for (int i = 0; i < SDC_TI_N_CONFIG; i++) cJSON_AddStringToObject(cfg, kv[2 * i], kv[2 * i + 1]);
    cJSON_AddItemToObject(j, "config", cfg);
    cJSON_AddStringToObject(j, "sdc_version", SDC_VERSION);
    char *text = cJSON_Print(j), *out = text ? malloc(strlen(text) + 2) : NULL;
    if (out) sprintf(out, "%s\n", text);
    free(text);
    cJSON_Delete(j);
    return out;
}

static float json_loss(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? (float)v->valuedouble : NAN;
}

/* 1: the folder holds this finished run (r filled), 0: not finished (or its
 * embedding file no longer matches: rebuilt from the checkpoint), -1: err. */
static int finished(const sdc_ti_run_opts *o, const sdc_ti_trainer *t, sdc_ti_run_result *r, sdc_err *err) {
    char path[PATH_CAP];
    path_in(path, o->out, "train.json");
    if (access(path, F_OK) != 0) return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (sdc_read_file_capped(path, (size_t)1 << 20, &buf, &len, err)) return -1;
    cJSON *j = cJSON_ParseWithLength((const char *)buf, len);
    const cJSON *cfg = j ? cJSON_GetObjectItemCaseSensitive(j, "config") : NULL;
    const cJSON *sha = j ? cJSON_GetObjectItemCaseSensitive(j, "learned_embeds_sha256") : NULL;
    int rc = 1;
    if (!cJSON_IsObject(cfg) || !cJSON_IsString(sha)) {
        sdc_err_set(err, SDC_ERR_FORMAT, "%s: not a training summary (remove it to train again)", path);
        rc = -1;
    }
    const char *kv[2 * SDC_TI_N_CONFIG];
    char vals[SDC_TI_N_CONFIG][1024];
    sdc_ti_trainer_config(t, kv, vals);
    for (int i = 0; rc == 1 && i < SDC_TI_N_CONFIG; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, kv[2 * i]);
        if (!cJSON_IsString(v) || strcmp(v->valuestring, kv[2 * i + 1])) {
            sdc_err_set(err, SDC_ERR_ARG, "%s holds a finished run with %s '%s'; this run has '%s' (use "
                        "another output folder)", o->out, kv[2 * i], cJSON_IsString(v) ? v->valuestring : "(none)",
                        kv[2 * i + 1]);
            rc = -1;
        }
    }
    char have[65] = "";
    path_in(path, o->out, SDC_TI_LEARNED_EMBEDS);
    sdc_err ignored = {0};
    if (rc == 1 && (sdc_sha256_file(path, have, &ignored) || strcmp(have, sha->valuestring))) {
        note(o, "%s is missing or differs from train.json: rebuilding it from the checkpoint", path);
        rc = 0;
    }
    if (rc == 1) {
        r->already_done = true;
        r->steps = t->cfg.steps;
        r->init_loss = json_loss(j, "init_loss");
        r->final_loss = json_loss(j, "final_loss");
        snprintf(r->learned_sha256, sizeof r->learned_sha256, "%s", sha->valuestring);
        if (!(r->json = strdup((const char *)buf))) rc = -1, sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    cJSON_Delete(j);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- files */

/* loss.csv (and loss.png) of the updates so far. */
static sdc_status write_losses(const sdc_ti_run_opts *o, const sdc_ti_trainer *t, sdc_err *err) {
    char path[PATH_CAP];
    path_in(path, o->out, "loss.csv");
    sdc_status s = sdc_ti_write_loss_csv(path, t->loss, t->step, err);
    path_in(path, o->out, "loss.png");
    if (!s && o->plot) s = sdc_ti_loss_plot(path, t->loss, t->step, err);
    return s;
}

static sdc_status checkpoint(const sdc_ti_run_opts *o, const sdc_ti_trainer *t, sdc_err *err) {
    char path[PATH_CAP];
    path_in(path, o->out, "checkpoint.safetensors");
    sdc_status s = sdc_ti_trainer_save(t, path, err);
    return s ? s : write_losses(o, t, err);
}

/* validation/step-NNNNNN.png: the validation prompt with the current vectors. */
static sdc_status validate(sdc_pipeline *p, const sdc_ti_run_opts *o, const sdc_ti_trainer *t, sdc_err *err) {
    sdc_embedding_set *set = NULL;
    char *prompt = sdc_ti_format(o->validation_prompt, t->cfg.token), *params = NULL;
    sdc_generate_result res = {0};
    sdc_status s = prompt ? sdc_embeddings_from_memory(&set, t->cfg.token, t->emb, t->cfg.num_vectors, t->dim, err)
                          : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    int S = t->data->size;
    if (!s) {
        sdc_generate_opts g = {.prompt = prompt, .negative = "", .embeddings = set, .cfg = 7.5f,
                               .seed = t->cfg.seed, .width = S, .height = S, .batch = 1,
                               .syntax = SDC_PROMPT_PLAIN, .clip_skip = t->cfg.clip_skip};
        sdc_sampler_from_name("dpmpp_2m", &g.sampler);
        g.sampler.steps = o->validation_steps;
        s = sdc_generate(p, &g, &res, err);
    }
    char path[PATH_CAP], name[64];
    path_in(path, o->out, "validation");
    if (!s && mkdir(path, 0755) && errno != EEXIST)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (!s) {
        sdc_gen_meta m = {.prompt = prompt, .steps = o->validation_steps, .sampler = "DPM++ 2M",
                          .cfg_scale = 7.5, .seed = (int64_t)t->cfg.seed, .has_seed = true,
                          .width = S, .height = S};
        params = sdc_a1111_parameters(&m);
        snprintf(name, sizeof name, "validation/step-%06d.png", t->step);
        path_in(path, o->out, name);
        s = sdc_image_save_png(path, res.rgb, S, S, params, err);
    }
    if (s) sdc_err_wrap(err, "validation image at step %d", t->step);
    free(params);
    free(prompt);
    sdc_generate_result_free(&res);
    sdc_embeddings_free(set);
    return s;
}

/* The run's end: learned vectors' loss, both embedding files, the losses,
 * the final state, and train.json last. */
static sdc_status finish(const sdc_ti_run_opts *o, sdc_ti_trainer *t, sdc_ti_data *d, sdc_ti_run_result *r,
                         sdc_err *err) {
    sdc_status s = SDC_OK;
    r->init_loss = t->init_eval;
    if (o->eval_samples) s = sdc_ti_trainer_eval(t, t->emb, o->eval_samples, &r->final_loss, err);
    if (!s) s = sdc_ti_write_embeddings(o->out, t->cfg.token, t->emb, t->cfg.num_vectors, t->dim,
                                        r->learned_sha256, err);
    if (!s) s = checkpoint(o, t, err);
    if (!s && !(r->json = build_json(o, t, d, r))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    char path[PATH_CAP];
    path_in(path, o->out, "train.json");
    if (!s) s = sdc_write_file_atomic(path, r->json, strlen(r->json), err);
    r->steps = t->step;
    return s;
}

/* ---------------------------------------------------------------- the run */

sdc_status sdc_ti_run(sdc_pipeline *p, const sdc_ti_run_opts *o, sdc_ti_run_result *r, sdc_err *err) {
    memset(r, 0, sizeof *r);
    r->init_loss = r->final_loss = NAN;
    sdc_ti_data d = {0};
    sdc_ti_trainer *t = NULL;
    /* Every input is checked before anything is written. */
    sdc_status s = check_opts(o, err);
    if (!s) s = sdc_ti_check_placeholder(p->tok, o->cfg.token, err);
    if (!s) s = sdc_ti_data_scan(o->images, o->size, o->cfg.seed, &d, err);
    for (int i = 0; !s && i < d.n_skipped; i++) note(o, "skipped %s", d.skipped[i]);
    if (!s) s = sdc_ti_trainer_create(p, &o->cfg, &d, &t, err);
    if (s) {
        sdc_ti_data_free(&d);
        return s;
    }
    struct stat sb;
    bool fresh = stat(o->out, &sb) != 0;
    int lock = -1, last_ckpt = 0;
    if (mkdir(o->out, 0755) && errno != EEXIST)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: cannot create: %s", o->out, strerror(errno));
    if (!s && (lock = lock_folder(o->out, err)) < 0) s = err->code;
    if (!s) {
        remove_temps(o->out);
        char v[PATH_CAP];
        path_in(v, o->out, "validation");
        remove_temps(v);
    }
    int done = s ? -1 : finished(o, t, r, err);
    if (done < 0 && !s) s = err->code;
    char ck[PATH_CAP];
    path_in(ck, o->out, "checkpoint.safetensors");
    if (!s && !done && access(ck, F_OK) == 0) {
        if (!(s = sdc_ti_trainer_load(t, ck, err))) {
            r->resumed_at = last_ckpt = t->step;
            if (t->step < t->cfg.steps) note(o, "resuming %s at step %d of %d", o->out, t->step, t->cfg.steps);
        }
    }
    if (!s && !done && o->eval_samples && isnan(t->init_eval)) {
        float l = NAN;
        if (!(s = sdc_ti_trainer_eval(t, t->init, o->eval_samples, &l, err))) t->init_eval = l;
    }
    bool wrote = !fresh;
    while (!s && !done && t->step < t->cfg.steps) {
        if ((s = sdc_ti_trainer_step(t, err))) break;
        if (o->progress) o->progress(o->ctx, t->step, t->cfg.steps, t->loss[t->step - 1]);
        /* The validation image before the checkpoint of the same step: a run
         * killed between the two redoes the step and the image. */
        if (o->validate_every && t->step % o->validate_every == 0)
            if (!(s = validate(p, o, t, err))) wrote = true;
        if (!s && t->step % o->checkpoint_every == 0 && t->step < t->cfg.steps)
            if (!(s = checkpoint(o, t, err))) last_ckpt = t->step, wrote = true;
    }
    if (s == SDC_ERR_NUMERIC) {
        char why[SDC_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        if (last_ckpt) sdc_err_set(err, s, "%s; training stopped, the last good checkpoint (step %d) is kept "
                                   "in %s", why, last_ckpt, ck);
        else sdc_err_set(err, s, "%s; training stopped before its first checkpoint (none to resume from in %s)",
                         why, o->out);
    }
    if (!s && !done) s = finish(o, t, &d, r, err);
    if (s && fresh && !wrote && lock >= 0) undo_fresh(o->out); /* still holding the lock */
    if (lock >= 0) close(lock);
    sdc_ti_trainer_free(t);
    sdc_ti_data_free(&d);
    return s;
}

void sdc_ti_run_result_free(sdc_ti_run_result *r) {
    free(r->json);
    r->json = NULL;
}
