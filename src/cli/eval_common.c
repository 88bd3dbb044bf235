/* eval_common.c — model and feature loading for sdc report / sdc probe
 * (see eval_common.h). */
#include "eval_common.h"
#include "cli.h"

#include "../core/sha256.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

sdc_status eval_model_open(const char *clip, const char *cache, const char *dataset, bool need_model, int batch,
                           eval_model *em, sdc_err *err) {
    *em = (eval_model){0};
    sdc_status s = SDC_OK;
    if (!clip) {
        char root[PATH_MAX];
        if (!(s = feat_cache_root(cache, root, sizeof root, err)))
            s = feat_cache_model(root, dataset, &em->name, em->sha, &em->dim, err);
        if (s || !need_model) return s;
    } else if (!(em->name = strdup(clip))) {
        return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    char sha[65] = "";
    if (!(em->be = sdc_cpu_backend_create(err))) s = err->code;
    if (!s && !(em->arena = sdc_arena_create(em->be, 0, err))) s = err->code;
    if (!s && !(em->m = sdc_clip_model_open(em->name, em->be, err))) s = err->code;
    if (!s) s = sdc_sha256_file(em->m->weights, sha, err);
    if (!s && clip) snprintf(em->sha, sizeof em->sha, "%s", sha);
    else if (!s && strcmp(sha, em->sha))
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: the features of %s were made with weights of sha256 %.12s..., "
                        "this file has %.12s... (give --clip)", em->name, dataset, em->sha, sha);
    if (!s) {
        em->dim = em->m->cfg.proj;
        em->enc = (emb_encoder){.m = em->m, .be = em->be, .arena = em->arena, .batch = batch};
    }
    if (s) eval_model_close(em);
    return s;
}

void eval_model_close(eval_model *em) {
    sdc_clip_model_close(em->m);
    sdc_arena_destroy(em->arena);
    sdc_backend_destroy(em->be);
    free(em->name);
    *em = (eval_model){0};
}

typedef struct ui {
    const char *cmd;
    bool quiet, started;
    cli_progress pr;
    char label[96];
} ui;

static void on_folder(void *ctx, const char *dir, int64_t n, bool starting) {
    ui *u = ctx;
    if (starting) {
        const char *base = strrchr(dir, '/');
        snprintf(u->label, sizeof u->label, "features %s", base && base[1] ? base + 1 : dir);
        cli_progress_start(&u->pr, u->label, "img", (int)(n > INT32_MAX ? INT32_MAX : n), u->quiet || n == 0);
        u->started = true;
    } else if (u->started) {
        cli_progress_end(&u->pr);
        u->started = false;
    }
}

static void on_progress(void *ctx, int64_t done, int64_t total) {
    ui *u = ctx;
    if (u->started) cli_progress_update(&u->pr, (int)(done > INT32_MAX ? INT32_MAX : done));
}

static void on_skip(void *ctx, const char *why) {
    ui *u = ctx;
    if (!u->quiet) fprintf(stderr, "\nsdc %s: skipped %s\n", u->cmd, why);
}

sdc_status eval_load_features(const char *cmd, const char *dataset, const char *const *outs, int n_outs,
                              const char *cache, const char *class_names, const eval_model *em, bool quiet,
                              feat_set *fs, sdc_err *err) {
    ui u = {.cmd = cmd, .quiet = quiet};
    feat_opts o = {.cache_root = cache, .class_names = class_names, .enc = em->m ? &em->enc : NULL,
                   .model = em->name, .model_sha256 = em->sha, .dim = em->dim,
                   .hooks = {.progress = on_progress, .skipped = on_skip, .ctx = &u}, .folder = on_folder};
    return feat_set_load(dataset, outs, n_outs, &o, fs, err);
}
