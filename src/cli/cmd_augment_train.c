/* cmd_augment_train.c — see augment_train.h. A class's training run is an
 * ordinary textinv_run.h folder (OUT/<class>/.textinv/: hidden, and without
 * images, so torchvision's ImageFolder(OUT) reads the same classes and
 * files as before), so it resumes after a kill and a finished one is reused. */
#include "augment_train.h"
#include "cli.h"
#include "progress.h"

#include "../train/textinv_run.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void aug_train_token(const char *folder, char *token, size_t cap) {
    snprintf(token, cap, "<%s>", folder);
    for (char *p = token + 1; *p && p[1]; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("/\\{}", *p)) *p = '-';
}

typedef struct {
    cli_progress pr;
    bool quiet;
} train_progress;

static void on_step(void *ctx, int step, int steps, float loss) {
    train_progress *t = ctx;
    cli_progress_note(&t->pr, "loss %.4f", loss);
    cli_progress_update(&t->pr, step);
    (void)steps;
}

static void on_note(void *ctx, const char *msg) {
    train_progress *t = ctx;
    if (!t->quiet) fprintf(stderr, "sdc augment: %s\n", msg);
}

/* Whether class c has an item in this shard. */
static bool class_in_shard(const aug_plan *plan, int c, long long sk, long long sn) {
    for (int i = 0; i < plan->n; i++)
        if (plan->items[i].cls == c && aug_plan_in_shard(plan, i, sk, sn)) return true;
    return false;
}

/* The run options of class c (init ids filled from its name or --train-init). */
static sdc_status class_opts(const aug_train_opts *o, const sdc_tokenizer *tok, const aug_dataset *d, int c,
                             const char *data, const char *out, uint64_t seed, char *token, char *images,
                             char *dir, sdc_ti_run_opts *r, sdc_err *err) {
    const aug_class *k = &d->classes[c];
    aug_train_token(k->folder, token, 512);
    snprintf(images, 4096, "%s/%s", data, k->folder);
    snprintf(dir, 4200, "%s/%s/.textinv", out, k->folder);
    *r = (sdc_ti_run_opts){.images = images, .size = (int)o->size, .out = dir,
                           .checkpoint_every = (int)o->ckpt_every, .eval_samples = (int)o->eval_samples,
                           .init_word = o->init_token ? o->init_token : k->name, .base_lr = o->lr,
                           .scale_lr = !o->no_scale};
    r->cfg = (sdc_ti_config){.token = token, .steps = (int)o->steps, .batch = (int)o->batch,
                             .accum = (int)o->accum, .seed = seed,
                             .lr = o->no_scale ? o->lr : o->lr * (double)(o->batch * o->accum)};
    int n = 0;
    sdc_status s = sdc_ti_init_ids(tok, r->init_word, o->init_token != NULL, r->cfg.init_ids, &n, err);
    if (s) return sdc_err_wrap(err, "class %s", k->folder);
    if (o->init_token) {
        for (int i = 1; i < o->num_vectors; i++) r->cfg.init_ids[i] = r->cfg.init_ids[0];
        n = (int)o->num_vectors;
    }
    r->cfg.num_vectors = n;
    return sdc_ti_check_placeholder(tok, token, err);
}

/* The manifest fields of a finished class. */
static cJSON *class_extra(const char *folder, const char *token, const sdc_ti_run_result *r) {
    cJSON *j = cJSON_CreateObject();
    char file[4200];
    snprintf(file, sizeof file, "%s/.textinv/learned_embeds.safetensors", folder);
    cJSON_AddStringToObject(j, "token", token);
    cJSON_AddStringToObject(j, "token_file", file);
    cJSON_AddStringToObject(j, "token_sha256", r->learned_sha256);
    cJSON_AddNumberToObject(j, "token_steps", r->steps);
    if (isfinite(r->final_loss)) cJSON_AddNumberToObject(j, "token_loss", r->final_loss);
    else cJSON_AddNullToObject(j, "token_loss");
    if (isfinite(r->init_loss)) cJSON_AddNumberToObject(j, "token_init_loss", r->init_loss);
    else cJSON_AddNullToObject(j, "token_init_loss");
    return j;
}

sdc_status aug_train_classes(const aug_train_opts *o, const char *data, const char *out,
                             const char *model, const char *vocab, uint64_t seed,
                             const aug_dataset *d, const aug_plan *plan, long long sk, long long sn,
                             bool quiet, sdc_embedding_set **sets, cJSON **extra, sdc_err *err) {
    sdc_backend *be = sdc_cpu_backend_create(err);
    sdc_pipeline *p = be ? sdc_pipeline_open(model, vocab, be, err) : NULL;
    sdc_status s = p ? SDC_OK : err->code;
    char token[512], images[4096], dir[4200];
    /* Every class of the shard is checked before the first is trained. */
    for (int c = 0; !s && c < d->n_classes; c++) {
        if (!class_in_shard(plan, c, sk, sn)) continue;
        sdc_ti_run_opts r;
        sdc_ti_data probe;
        if (!(s = class_opts(o, p->tok, d, c, data, out, seed, token, images, dir, &r, err)) &&
            !(s = sdc_ti_data_scan(images, r.size, seed, &probe, err)))
            sdc_ti_data_free(&probe);
    }
    for (int c = 0; !s && c < d->n_classes; c++) {
        if (!class_in_shard(plan, c, sk, sn)) continue;
        sdc_ti_run_opts r;
        if ((s = class_opts(o, p->tok, d, c, data, out, seed, token, images, dir, &r, err))) break;
        char cls_dir[4200];
        snprintf(cls_dir, sizeof cls_dir, "%s/%s", out, d->classes[c].folder);
        if (mkdir(cls_dir, 0755) && errno != EEXIST) {
            s = sdc_err_set(err, SDC_ERR_IO, "%s: cannot create: %s", cls_dir, strerror(errno));
            break;
        }
        train_progress tp = {.quiet = quiet};
        char label[600];
        snprintf(label, sizeof label, "training %s", token);
        cli_progress_start(&tp.pr, label, "step", r.cfg.steps, quiet);
        r.progress = on_step, r.note = on_note, r.ctx = &tp;
        sdc_ti_run_result res;
        if ((s = sdc_ti_run(p, &r, &res, err))) {
            sdc_err_wrap(err, "class %s", d->classes[c].folder);
            break;
        }
        if (!res.already_done && res.resumed_at < res.steps) cli_progress_end(&tp.pr);
        char file[4300];
        snprintf(file, sizeof file, "%s/learned_embeds.safetensors", dir);
        s = sdc_embeddings_load(&sets[c], file, p->clip.cfg.width, err);
        if (!s && !(extra[c] = class_extra(d->classes[c].folder, token, &res)))
            s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        sdc_ti_run_result_free(&res);
    }
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
    return s;
}
