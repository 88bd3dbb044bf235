/* augment_run.c — the generation driver of sdc augment: plan.json checked
 * argument by argument, batches of pending items through the pipeline, each
 * PNG durable before its manifest line, a stop at the first disk error, the
 * dry run and the summary. */
#include "augment_cli.h"
#include "progress.h"

#include "../core/atomic_file.h"
#include "../core/sha256.h"
#include "../image/image.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- plan.json */

/* The value of a parameter as the user would write it, for messages. */
static void value_text(const cJSON *v, char *buf, size_t cap) {
    if (!v) snprintf(buf, cap, "(not set)");
    else if (cJSON_IsString(v)) snprintf(buf, cap, "'%s'", v->valuestring);
    else {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(buf, cap, "%s", s ? s : "?");
        free(s);
    }
}

/* The first parameter that differs between two plan.json "parameters". */
static bool first_difference(const cJSON *old, const cJSON *now, const char **key,
                             const cJSON **ov, const cJSON **nv) {
    const cJSON *it;
    cJSON_ArrayForEach(it, now) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, it->string);
        if (!o || !cJSON_Compare(o, it, true)) {
            *key = it->string, *ov = o, *nv = it;
            return true;
        }
    }
    cJSON_ArrayForEach(it, old)
        if (!cJSON_GetObjectItemCaseSensitive(now, it->string)) {
            *key = it->string, *ov = it, *nv = NULL;
            return true;
        }
    return false;
}

/* Moves NAME to NAME-stem.old-N.ext for the first free N. */
static sdc_status move_aside(const char *dir, const char *name, int n, sdc_err *err) {
    char from[PATH_MAX], to[PATH_MAX + 32];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    const char *dot = strrchr(name, '.');
    int stem = dot ? (int)(dot - name) : (int)strlen(name);
    snprintf(to, sizeof to, "%s/%.*s.old-%d%s", dir, stem, name, n, dot ? dot : "");
    if (rename(from, to) != 0 && errno != ENOENT)
        return sdc_err_set(err, SDC_ERR_IO, "%s: cannot move aside: %s", from, strerror(errno));
    return SDC_OK;
}

/* --force-new-plan: the old plan and every manifest go aside together. */
static sdc_status start_over(const char *out, sdc_err *err) {
    char probe[PATH_MAX];
    int n = 1;
    for (; n < 100000; n++) {
        snprintf(probe, sizeof probe, "%s/plan.old-%d.json", out, n);
        if (access(probe, F_OK) != 0) break;
    }
    sdc_status s = move_aside(out, "plan.json", n, err);
    DIR *dp = s ? NULL : opendir(out);
    if (!s && !dp) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", out, strerror(errno));
    for (struct dirent *e; !s && dp && (e = readdir(dp));) {
        const char *f = e->d_name;
        size_t l = strlen(f);
        if (!strncmp(f, "manifest", 8) && l > 6 && !strcmp(f + l - 6, ".jsonl") && !strstr(f, ".old-"))
            s = move_aside(out, f, n, err);
    }
    if (dp) closedir(dp);
    return s;
}

sdc_status augment_plan_check(const char *out, const aug_plan *plan, const char *params, bool force,
                              bool quiet, sdc_err *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.sdc-plan.lock", out);
    int lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
    flock(lock, LOCK_EX); /* shards check and replace the plan one at a time */
    snprintf(path, sizeof path, "%s/plan.json", out);
    uint8_t *have = NULL;
    size_t len = 0;
    sdc_err e2 = {0};
    sdc_status s = SDC_OK;
    char *want = aug_plan_json(plan, params);
    if (!want) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    else if (access(path, F_OK) != 0) s = sdc_write_file_atomic(path, want, strlen(want), err);
    else if (sdc_read_file_capped(path, (size_t)1 << 30, &have, &len, &e2) == SDC_OK &&
             len == strlen(want) && !memcmp(have, want, len))
        s = SDC_OK; /* the same plan: resume */
    else {
        char *text = have ? strndup((const char *)have, len) : NULL;
        cJSON *old = text ? cJSON_Parse(text) : NULL, *now = cJSON_Parse(want);
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(old, "parameters");
        const cJSON *np = cJSON_GetObjectItemCaseSensitive(now, "parameters");
        const char *key = NULL;
        const cJSON *ov = NULL, *nv = NULL;
        char why[1024], a[256], b[256];
        if (!old) snprintf(why, sizeof why, "it is unreadable (%s)", e2.msg[0] ? e2.msg : "not JSON");
        else if (first_difference(op, np, &key, &ov, &nv)) {
            value_text(ov, a, sizeof a);
            value_text(nv, b, sizeof b);
            snprintf(why, sizeof why, "%s was %s when this folder was planned, now %s", key, a, b);
        } else {
            snprintf(why, sizeof why, "its items differ (the dataset's classes or images changed)");
        }
        if (force) {
            if (!quiet) fprintf(stderr, "sdc augment: %s: %s; --force-new-plan: starting over "
                                "(the old plan and manifests kept as *.old-N.*)\n", path, why);
            s = start_over(out, err);
            if (!s) s = sdc_write_file_atomic(path, want, strlen(want), err);
        } else {
            s = sdc_err_set(err, SDC_ERR_ARG, "%s: %s. Rerun with the same arguments, use a new "
                            "--out, or pass --force-new-plan to start this folder over", path, why);
        }
        cJSON_Delete(old);
        cJSON_Delete(now);
        free(text);
    }
    free(have);
    free(want);
    close(lock);
    return s;
}

/* Everything that decides the images, keyed by the flag that sets it. */
static char *plan_params(const aug_args *a, const char *model_abs, const aug_filter *flt) {
    cJSON *j = cJSON_CreateObject();
    bool real = !strcmp(a->method, "boomerang") || a->init;
    const sdc_sched_config *c = &a->sched_resolved;
    char buf[256];
    cJSON_AddStringToObject(j, "--method", a->method);
    cJSON_AddNumberToObject(j, "--seed", (double)a->seed);
    /* Written only when not the default, so that older plans still match. */
    if (a->gen.rng == SDC_RNG_CUDA) cJSON_AddStringToObject(j, "--rng", a->gen.rng_arg);
    cJSON_AddStringToObject(j, "--model", model_abs);
    cJSON_AddNumberToObject(j, "--steps", (double)a->steps);
    cJSON_AddStringToObject(j, "--sampler", sdc_sampler_canonical(a->sampler_opts.kind, c));
    snprintf(buf, sizeof buf, "%s, %s spacing, steps_offset %d, %d train steps%s%s",
             sdc_prediction_name(c->prediction), sdc_spacing_name(c->spacing), c->steps_offset,
             c->train_steps, c->rescale_zero_snr ? ", zero SNR" : "",
             c->final_sigma == SDC_FINAL_SIGMA_MIN ? ", final sigma_min" : "");
    cJSON_AddStringToObject(j, "scheduler", buf);
    cJSON_AddNumberToObject(j, "--cfg", a->cfg);
    snprintf(buf, sizeof buf, "%lldx%lld", a->width, a->height);
    cJSON_AddStringToObject(j, "--size", buf);
    cJSON_AddStringToObject(j, "--negative", a->negative);
    if (real) {
        cJSON_AddStringToObject(j, "--strength", a->strength);
        cJSON_AddNumberToObject(j, "--per-image", (double)a->per_image);
    } else {
        cJSON_AddNumberToObject(j, "--per-class", (double)a->per_class);
    }
    if (!strcmp(a->method, "boomerang")) cJSON_AddStringToObject(j, "--prompt-template", a->tmpl);
    else {
        cJSON_AddStringToObject(j, "--templates", a->templates);
        cJSON_AddStringToObject(j, "--template-order", a->order);
    }
    if (a->emb) cJSON_AddStringToObject(j, "--embeddings", a->emb);
    if (a->classes) cJSON_AddStringToObject(j, "--classes", a->classes);
    if (a->names) cJSON_AddStringToObject(j, "--class-names", a->names);
    if (a->limit) cJSON_AddNumberToObject(j, "--limit", (double)a->limit);
    if (a->train.on) cJSON_AddBoolToObject(j, "--train", true); /* other prompts, class shards */
    if (flt) augment_filter_plan_params(&a->filter, flt, j);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* ---------------------------------------------------------------- manifest */

/* The manifest line of one item (cJSON escapes everything: pandas reads it). */
static char *manifest_line(const aug_args *a, const aug_dataset *d, const aug_item *it,
                           const char *model_name, const char *model_sha, int w, int h,
                           const cJSON *extra, const char *error, const aug_filter *flt,
                           const aug_filter_result *fr) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "index", it->index);
    cJSON_AddStringToObject(j, "output", it->output);
    cJSON_AddStringToObject(j, "class", d->classes[it->cls].folder);
    cJSON_AddStringToObject(j, "class_name", d->classes[it->cls].name);
    cJSON_AddStringToObject(j, "method", a->method);
    if (it->source) cJSON_AddStringToObject(j, "source", it->source);
    else cJSON_AddNullToObject(j, "source");
    cJSON_AddStringToObject(j, "prompt", it->prompt);
    cJSON_AddStringToObject(j, "negative_prompt", a->negative);
    cJSON_AddNumberToObject(j, "seed", it->seed);
    if (it->strength >= 0) cJSON_AddNumberToObject(j, "strength", it->strength);
    else cJSON_AddNullToObject(j, "strength");
    cJSON_AddNumberToObject(j, "steps", (double)a->steps);
    cJSON_AddStringToObject(j, "sampler", sdc_sampler_canonical(a->sampler_opts.kind, &a->sched_resolved));
    cJSON_AddNumberToObject(j, "cfg", a->cfg);
    cJSON_AddNumberToObject(j, "width", w);
    cJSON_AddNumberToObject(j, "height", h);
    cJSON_AddStringToObject(j, "model", model_name);
    if (model_sha) cJSON_AddStringToObject(j, "model_sha256", model_sha);
    else cJSON_AddNullToObject(j, "model_sha256");
    cJSON_AddStringToObject(j, "sdc_version", SDC_VERSION);
    cJSON_AddStringToObject(j, "status", error ? "failed" : fr && !fr->kept ? "rejected" : "ok");
    if (error) cJSON_AddStringToObject(j, "error", error);
    else cJSON_AddNullToObject(j, "error");
    if (!error && fr) aug_filter_manifest_fields(flt, fr, j);
    for (const cJSON *x = extra ? extra->child : NULL; x; x = x->next) /* --train: the token's record */
        cJSON_AddItemToObject(j, x->string, cJSON_Duplicate(x, 1));
    char *s = cJSON_PrintUnformatted(j), *line = s ? malloc(strlen(s) + 2) : NULL;
    if (line) sprintf(line, "%s\n", s);
    free(s);
    cJSON_Delete(j);
    return line;
}

/* Appends each finished item's manifest line: only after its PNG is durable,
 * and for a failed item too (the run goes on; a rerun retries it). A
 * manifest write or fsync error stops the run (the line taken back, the PNG
 * removed): the item is redone on resume. */
typedef struct {
    const aug_args *a;
    const aug_dataset *d;
    const aug_filter *flt;
    const char *model_name, *model_sha;
    cJSON *const *extra;
    int w, h, fd, done, failed;
    cli_progress pr;
    sdc_err *err;
} recorder;

static sdc_status record(recorder *r, const aug_item *it, const char *error,
                         const aug_filter_result *fr) {
    char *line = manifest_line(r->a, r->d, it, r->model_name, r->model_sha, r->w, r->h,
                               r->extra ? r->extra[it->cls] : NULL, error, r->flt, fr);
    sdc_status s = line ? aug_manifest_append(r->fd, line, r->err)
                        : sdc_err_set(r->err, SDC_ERR_OOM, "out of memory");
    free(line);
    if (s && !error) { /* not recorded: its PNG goes too, so files and manifest agree */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", r->a->out, it->output);
        unlink(path);
    }
    if (s) return s;
    if (error) {
        r->failed++;
        if (!r->a->quiet) fprintf(stderr, "\nsdc augment: %s: %s\n", it->output, error);
    }
    cli_progress_update(&r->pr, ++r->done);
    return SDC_OK;
}

/* ---------------------------------------------------------------- dry run */

static int unet_evals(const aug_args *a, const aug_item *it) {
    int steps = it->strength >= 0 ? (int)(a->steps * it->strength) : (int)a->steps;
    int per = a->sampler_opts.kind == SDC_SAMPLER_HEUN ? 2 : 1;
    return steps * per * (a->cfg > 1 ? 2 : 1);
}

static void dry_run(const aug_args *a, const aug_dataset *d, const aug_plan *p, long long sk,
                    long long sn, int w, int h) {
    long long evals = 0, total = 0;
    FILE *f = stdout;
    const char *sampler = sdc_sampler_canonical(a->sampler_opts.kind, &a->sched_resolved);
    if (a->json) fprintf(f, "{\"method\": \"%s\", \"width\": %d, \"height\": %d, \"steps\": %lld, "
                            "\"sampler\": \"%s\", \"classes\": {", a->method, w, h, a->steps, sampler);
    else fprintf(f, "plan: %d items (%s, %dx%d, %lld steps, %s, cfg %g)\n", p->n, a->method, w, h,
                 a->steps, sampler, a->cfg);
    for (int c = 0; c < d->n_classes; c++) {
        int n = 0;
        for (int i = 0; i < p->n; i++) n += p->items[i].cls == c && aug_plan_in_shard(p, i, sk, sn);
        if (a->json) {
            fprintf(f, "%s", c ? ", " : "");
            cli_json_string(f, d->classes[c].folder);
            fprintf(f, ": %d", n);
        } else {
            fprintf(f, "  %-24s %6d images\n", d->classes[c].folder, n);
        }
    }
    for (int i = 0; i < p->n; i++)
        if (aug_plan_in_shard(p, i, sk, sn)) total++, evals += unet_evals(a, &p->items[i]);
    if (a->json) fprintf(f, "}, \"samples\": [");
    else fprintf(f, "samples:\n");
    for (int i = 0, shown = 0; i < p->n && shown < 4; i++) {
        if (!aug_plan_in_shard(p, i, sk, sn)) continue;
        const aug_item *it = &p->items[i];
        if (a->json) {
            fprintf(f, "%s{\"output\": ", shown ? ", " : "");
            cli_json_string(f, it->output);
            fprintf(f, ", \"prompt\": ");
            cli_json_string(f, it->prompt);
            fprintf(f, ", \"seed\": %u}", it->seed);
        } else {
            fprintf(f, "  %s\n      \"%s\"  seed %u", it->output, it->prompt, it->seed);
            if (it->strength >= 0) fprintf(f, "  strength %g  from %s", it->strength, it->source);
            fputc('\n', f);
        }
        shown++;
    }
    if (a->json) fprintf(f, "], \"images\": %lld, \"unet_evaluations\": %lld", total, evals);
    else {
        if (sn > 1) fprintf(f, "shard %lld/%lld\n", sk, sn);
        fprintf(f, "total: %lld images, %lld UNet evaluations\n", total, evals);
    }
    double t = 0, est = -1;
    sdc_err err = {0};
    if (a->model && total > 0) {
        /* One UNet evaluation measured at this size; the VAE decoder costs
         * about 3 batch-1 UNet forwards per image (2.5 vs 0.8 TFLOP at 512
         * px), the encoder about 1.4 (img2img only). */
        sdc_backend *be = cli_backend_create("augment", a->backend, true, &err);
        sdc_pipeline *pl = be ? sdc_pipeline_open_opts(a->model, a->vocab_path, be, (int)a->clip_heads, &err) : NULL;
        int rows = a->cfg > 1 ? 2 : 1;
        if (pl && !sdc_pipeline_time_unet(pl, a->gen.precision, rows, w, h, &t, &err)) {
            bool real = !strcmp(a->method, "boomerang") || a->init;
            double per_row = t / rows, vae = 3.0 * per_row + (real ? 1.4 * per_row : 0);
            est = (double)evals / rows * t + (double)total * vae;
        }
        sdc_pipeline_free(pl);
        sdc_backend_destroy(be);
    } else if (!a->model) {
        snprintf(err.msg, sizeof err.msg, "give --model to measure it");
    }
    if (a->json) {
        fprintf(f, ", \"estimate_seconds\": ");
        if (est >= 0) fprintf(f, "%.1f}\n", est);
        else fprintf(f, "null}\n");
    } else if (est >= 0) {
        fprintf(f, "estimate: %.2f s per UNet evaluation here, about %.0f s (%.1f h) in all\n", t, est,
                est / 3600);
    } else if (total > 0) {
        fprintf(f, "estimate: unavailable (%s)\n", err.msg);
    }
}

/* ---------------------------------------------------------------- the run */

/* A fresh run that failed before its first item (a bad --model, say) takes
 * back what it created: the folder is left as if it had never run. */
static void undo_fresh(const char *out, const aug_dataset *d, const char *mpath, const char *tag) {
    char path[4200];
    struct stat sb;
    static const char *const files[] = {"plan.json", ".sdc-plan.lock"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        unlink(path);
    }
    if (stat(mpath, &sb) == 0 && sb.st_size == 0) unlink(mpath);
    snprintf(path, sizeof path, "%s/.sdc-augment%s.lock", out, tag);
    unlink(path);
    for (int c = 0; c < d->n_classes; c++) {
        snprintf(path, sizeof path, "%s/%s", out, d->classes[c].folder);
        rmdir(path); /* only when empty */
    }
    rmdir(out);
}

/* The model's name (file name without .safetensors), absolute path and, for
 * a single file, SHA-256 (slow for 2 GB, but names the exact weights). */
static sdc_status model_identity(const char *model, char *name, size_t cap, char *abs_path,
                                 char *sha, bool need_sha, const char **model_sha, sdc_err *err) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", model);
    for (size_t l = strlen(tmp); l > 1 && tmp[l - 1] == '/';) tmp[--l] = '\0';
    char *base = basename(tmp), *dot = strrchr(base, '.');
    if (dot && !strcmp(dot, ".safetensors")) *dot = '\0';
    snprintf(name, cap, "%s", base);
    if (!realpath(model, abs_path)) snprintf(abs_path, PATH_MAX, "%s", model);
    struct stat st;
    *model_sha = NULL;
    if (need_sha && stat(model, &st) == 0 && S_ISREG(st.st_mode)) {
        sdc_status s = sdc_sha256_file(model, sha, err);
        if (s) return s;
        *model_sha = sha;
    }
    return SDC_OK;
}

int augment_run(aug_args *a, const aug_dataset *d, const aug_plan *plan, sdc_embedding_set **sets,
                cJSON *const *extra, long long sk, long long sn, int w, int h) {
    if (a->dry) {
        dry_run(a, d, plan, sk, sn, w, h);
        return EXIT_OK;
    }
    struct stat out_st;
    bool fresh = stat(a->out, &out_st) != 0;
    sdc_err err = {0};
    char path[4096], mpath[4096], tag[64] = "";
    if (sn > 1) snprintf(tag, sizeof tag, ".shard-%lld-of-%lld", sk, sn);
    if (mkdir(a->out, 0755) && errno != EEXIST) {
        sdc_err_set(&err, SDC_ERR_IO, "%s: cannot create: %s", a->out, strerror(errno));
        return cli_error("augment", &err);
    }
    for (int c = 0; c < d->n_classes; c++) {
        snprintf(path, sizeof path, "%s/%s", a->out, d->classes[c].folder);
        if (mkdir(path, 0755) && errno != EEXIST) {
            sdc_err_set(&err, SDC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
            if (fresh) undo_fresh(a->out, d, "", tag);
            return cli_error("augment", &err);
        }
    }
    /* One lock per shard: shards share the folder, two drivers of one shard may not. */
    snprintf(path, sizeof path, "%s/.sdc-augment%s.lock", a->out, tag);
    int lock = aug_lock(path, &err);
    if (lock < 0) return cli_error("augment", &err);
    snprintf(mpath, sizeof mpath, "%s/manifest%s.jsonl", a->out, tag);
    aug_manifest man = {0};
    sdc_backend *be = NULL;
    sdc_pipeline *p = NULL;
    float *init = NULL;
    int fd = -1, failed = 0, done = 0, todo = 0;
    char sha[65] = "", model_name[1024], model_abs[PATH_MAX];
    const char *model_sha = NULL;
    sdc_status s = model_identity(a->model, model_name, sizeof model_name, model_abs, sha, false,
                                  &model_sha, &err);
    aug_filter *flt = NULL;
    if (!s && a->filter.on &&
        !(flt = augment_filter_open(&a->filter, d, a->data, a->out, tag, a->vocab_path, &err)))
        s = err.code;
    char *pp = s ? NULL : plan_params(a, model_abs, flt);
    if (!s && !pp) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!s) s = augment_plan_check(a->out, plan, pp, a->force_new_plan, a->quiet, &err);
    free(pp);
    if (!s) s = aug_manifest_load(mpath, a->out, &man, &err);
    if (!s && flt) s = aug_filter_resume(flt, plan, &man, sk, sn, &err); /* earlier outputs of this shard */
    if (!s) aug_remove_temps(a->out, plan, (int)sk, (int)sn);
    if (!s && (fd = open(mpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
        s = sdc_err_set(&err, SDC_ERR_IO, "%s: %s", mpath, strerror(errno));
    for (int i = 0; !s && i < plan->n; i++)
        if (aug_plan_in_shard(plan, i, sk, sn) && !aug_manifest_has(&man, plan->items[i].output)) todo++;
    if (!s && todo) s = model_identity(a->model, model_name, sizeof model_name, model_abs, sha, true,
                                       &model_sha, &err);
    if (!s && todo && !(be = cli_backend_create("augment", a->backend, a->quiet, &err))) s = err.code;
    if (!s && todo && !(p = sdc_pipeline_open_opts(a->model, a->vocab_path, be, (int)a->clip_heads, &err)))
        s = err.code;
    if (p) p->low_memory = a->low_memory;
    int B = (int)a->batch;
    size_t cap = (size_t)3 * w * h;
    sdc_generate_row *rows = calloc((size_t)B, sizeof *rows);
    const aug_item **group = calloc((size_t)B, sizeof *group);
    if (!s && todo && (!(init = malloc(sizeof *init * cap * B)) || !rows || !group))
        s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    char hash10[11] = ""; /* A1111's short hash: 10 hex digits */
    if (model_sha) memcpy(hash10, model_sha, 10);
    const char *schedule = NULL;
    const char *a1111 = sdc_sampler_a1111(a->sampler_opts.kind, &a->sched_resolved, &schedule);
    recorder rec = {.a = a, .d = d, .flt = flt, .extra = extra, .model_name = model_name, .model_sha = model_sha, .w = w,
                    .h = h, .fd = fd, .err = &err};
    if (!s && todo) cli_progress_start(&rec.pr, "augment", "img", todo, a->quiet || a->json);
    /* Batches are runs of consecutive pending items with one strength (rows
     * share the schedule), so the manifest keeps the plan's order. Every row
     * has its own generator: an item's image does not depend on --batch. */
    for (int i = 0; !s && i < plan->n;) {
        int g = 0;
        for (; !s && i < plan->n && g < B; i++) {
            const aug_item *it = &plan->items[i];
            if (!aug_plan_in_shard(plan, i, sk, sn) || aug_manifest_has(&man, it->output)) continue;
            if (g > 0 && it->strength != group[0]->strength) break;
            sdc_err ie = {0};
            float *img = init + (size_t)g * cap;
            if (it->source) {
                sdc_image im;
                snprintf(path, sizeof path, "%s/%s", a->data, it->source);
                sdc_status is = sdc_image_load(path, NULL, &im, &ie);
                if (!is) {
                    is = sdc_image_to_tensor(&im, w, h, SDC_FIT_RESIZE, img, cap, &ie);
                    sdc_image_free(&im);
                }
                if (is) { /* recorded as failed; the batch goes on without it */
                    s = record(&rec, it, ie.msg, NULL);
                    continue;
                }
            }
            rows[g] = (sdc_generate_row){.prompt = it->prompt, .embeddings = sets[it->cls],
                                         .seed = it->seed, .init_image = it->source ? img : NULL};
            group[g++] = it;
        }
        if (s || !g) continue;
        sdc_err ie = {0};
        sdc_generate_opts o = {.negative = a->negative, .cfg = (float)a->cfg, .width = w,
                               .height = h, .batch = g, .rows = rows,
                               .strength = (float)group[0]->strength, .sampler = a->sampler_opts};
        o.prompt = group[0]->prompt;
        cli_gen_choice_apply(&a->gen, &o);
        sdc_generate_result res = {0};
        sdc_status is = sdc_generate(p, &o, &res, &ie);
        for (int j = 0; !s && j < g; j++) {
            aug_item kept = *group[j]; /* with --filter clip: the seed whose image passed */
            const aug_item *it = &kept;
            const uint8_t *rgb = res.rgb ? res.rgb + (size_t)j * cap : NULL;
            sdc_err je = ie;
            sdc_status js = is;
            aug_filter_result fr = {0};
            if (!js && flt && !(js = aug_filter_item(flt, p, &o, &rows[j], group[j], rgb, &fr, &je)))
                kept.seed = fr.seed, rgb = fr.rgb;
            if (!js && (!flt || fr.kept)) {
                char *prompt = sdc_a1111_escape(it->prompt), *neg = sdc_a1111_escape(a->negative);
                sdc_gen_meta gm = {.prompt = prompt, .negative_prompt = neg, .steps = (int)a->steps,
                                   .sampler = a1111, .schedule_type = schedule, .cfg_scale = a->cfg,
                                   .seed = it->seed, .has_seed = true, .width = w, .height = h,
                                   .model = model_name, .model_hash = model_sha ? hash10 : NULL,
                                   .img2img = it->source != NULL,
                                   .rng = cli_gen_choice_rng_infotext(&a->gen),
                                   .denoising_strength = it->strength};
                char *params = prompt && neg ? sdc_a1111_parameters(&gm) : NULL;
                snprintf(path, sizeof path, "%s/%s", a->out, it->output);
                js = params ? sdc_image_save_png(path, rgb, w, h, params, &je)
                            : sdc_err_set(&je, SDC_ERR_OOM, "out of memory");
                free(params);
                free(prompt);
                free(neg);
                if (!js && flt) js = aug_filter_commit(flt, it, path, &je);
                /* A disk that cannot take the image (ENOSPC, EIO, read-only)
                 * cannot take the next ones either: stop, unrecorded, so the
                 * rerun redoes it. */
                if (js == SDC_ERR_IO) {
                    err = je;
                    sdc_err_wrap(&err, "stopped after %d images", rec.done - rec.failed);
                    s = js;
                    break;
                }
            }
            s = record(&rec, it, js ? je.msg : NULL, flt && !js ? &fr : NULL);
        }
        sdc_generate_result_free(&res);
    }
    failed = rec.failed;
    done = rec.done;
    free(rows);
    free(group);
    if (!s && todo) cli_progress_end(&rec.pr);
    if (!s && flt && todo && !a->quiet) augment_filter_summary(&a->filter, flt);
    aug_filter_close(flt);
    if (!s && a->preview && aug_preview(a->preview, a->data, a->out, d, plan, &err)) s = err.code;
    int mine = 0;
    for (int i = 0; i < plan->n; i++) mine += aug_plan_in_shard(plan, i, sk, sn);
    free(init);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
    if (fd >= 0 && close(fd) && !s) s = sdc_err_set(&err, SDC_ERR_IO, "%s: close: %s", mpath, strerror(errno));
    if (s && fresh && done == 0) undo_fresh(a->out, d, mpath, tag); /* still holding the lock */
    close(lock);
    aug_manifest_free(&man);
    if (s) {
        int rc = cli_error("augment", &err);
        if (done) fprintf(stderr, "sdc augment: rerun the same command to resume\n");
        return rc;
    }
    if (a->json)
        printf("{\"generated\": %d, \"already_done\": %d, \"failed\": %d, \"manifest\": \"%s\"}\n",
               done - failed, mine - todo, failed, mpath);
    else if (!a->quiet)
        fprintf(stderr, "sdc augment: %d generated, %d already done%s\n", done - failed, mine - todo,
                sn > 1 ? " (this shard)" : "");
    if (failed) {
        fprintf(stderr, "sdc augment: %d items failed (see %s)\n", failed, mpath);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
