/* augment_run.c — the command-line side of the generating methods of sdc
 * augment: plan.json's parameters, the dry run, the model and the pipeline,
 * progress and the summary. The run itself (output folder, lock, manifest,
 * the batches, each PNG durable before its manifest line, the stop at the
 * first disk error) is the library's: src/augment/run.c. */
#include "augment_cli.h"
#include "progress.h"

#include "../core/atomic_file.h"
#include "../core/sha256.h"
#include "../augment/run.h"
#include "../image/image.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- plan.json */

/* aug_plan_check, and the note when --force-new-plan started the folder over. */
sdc_status augment_plan_check(const char *out, const aug_plan *plan, const char *params, bool force,
                              bool quiet, sdc_err *err) {
    char note[1400] = "";
    sdc_status s = aug_plan_check(out, plan, params, force, note, sizeof note, err);
    if (note[0] && !quiet)
        fprintf(stderr, "sdc augment: %s; --force-new-plan: starting over "
                "(the old plan and manifests kept as *.old-N.*)\n", note);
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

static void on_progress(void *ctx, int done) { cli_progress_update(ctx, done); }

static void on_failed(void *ctx, const char *output, const char *msg) {
    (void)ctx;
    fprintf(stderr, "\nsdc augment: %s: %s\n", output, msg);
}

int augment_run(aug_args *a, const aug_dataset *d, const aug_plan *plan, sdc_embedding_set **sets,
                cJSON *const *extra, long long sk, long long sn, int w, int h) {
    if (a->dry) {
        dry_run(a, d, plan, sk, sn, w, h);
        return EXIT_OK;
    }
    sdc_err err = {0};
    aug_out ao;
    if (aug_out_create(&ao, a->out, d, NULL, sk, sn, true, &err)) return cli_error("augment", &err);
    sdc_backend *be = NULL;
    sdc_pipeline *p = NULL;
    int failed = 0, done = 0, todo = 0;
    char sha[65] = "", model_name[1024], model_abs[PATH_MAX];
    const char *model_sha = NULL;
    sdc_status s = aug_model_identity(a->model, model_name, sizeof model_name, model_abs, sha, false,
                                  &model_sha, &err);
    aug_filter *flt = NULL;
    if (!s && a->filter.on &&
        !(flt = augment_filter_open(&a->filter, d, a->data, a->out, ao.tag, a->vocab_path, &err)))
        s = err.code;
    char *pp = s ? NULL : plan_params(a, model_abs, flt);
    if (!s && !pp) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!s) s = augment_plan_check(a->out, plan, pp, a->force_new_plan, a->quiet, &err);
    free(pp);
    if (!s) s = aug_out_load(&ao, &err);
    if (!s && flt) s = aug_filter_resume(flt, plan, &ao.man, sk, sn, &err); /* earlier outputs of this shard */
    if (!s) s = aug_out_begin(&ao, plan, &err);
    if (!s) todo = aug_out_todo(&ao, plan);
    if (!s && todo) s = aug_model_identity(a->model, model_name, sizeof model_name, model_abs, sha, true,
                                       &model_sha, &err);
    if (!s && todo && !(be = cli_backend_create("augment", a->backend, a->quiet, &err))) s = err.code;
    if (!s && todo && !(p = sdc_pipeline_open_opts(a->model, a->vocab_path, be, (int)a->clip_heads, &err)))
        s = err.code;
    if (p) p->low_memory = a->low_memory;
    char hash10[11] = ""; /* A1111's short hash: 10 hex digits */
    if (model_sha) memcpy(hash10, model_sha, 10);
    const char *schedule = NULL;
    const char *a1111 = sdc_sampler_a1111(a->sampler_opts.kind, &a->sched_resolved, &schedule);
    cli_progress pr;
    if (!s && todo) cli_progress_start(&pr, "augment", "img", todo, a->quiet || a->json);
    aug_gen_run g = {.p = p, .d = d, .plan = plan, .data = a->data, .sets = sets, .extra = extra,
                     .flt = flt, .batch = (int)a->batch, .w = w, .h = h, .method = a->method,
                     .sampler_name = sdc_sampler_canonical(a->sampler_opts.kind, &a->sched_resolved),
                     .model_name = model_name, .model_sha = model_sha, .steps = a->steps, .cfg = a->cfg};
    g.base = (sdc_generate_opts){.negative = a->negative, .cfg = (float)a->cfg, .width = w,
                                 .height = h, .sampler = a->sampler_opts};
    cli_gen_choice_apply(&a->gen, &g.base);
    g.meta = (sdc_gen_meta){.steps = (int)a->steps, .sampler = a1111, .schedule_type = schedule,
                            .cfg_scale = a->cfg, .width = w, .height = h, .model = model_name,
                            .model_hash = model_sha ? hash10 : NULL,
                            .rng = cli_gen_choice_rng_infotext(&a->gen)};
    aug_run_hooks hooks = {.progress = on_progress, .failed = a->quiet ? NULL : on_failed, .ctx = &pr};
    aug_run_counts n = {0};
    if (!s) s = aug_generate_items(&ao, &g, &hooks, &n, &err);
    failed = n.failed;
    done = n.done;
    if (!s && todo) cli_progress_end(&pr);
    if (!s && flt && todo && !a->quiet) augment_filter_summary(&a->filter, flt);
    aug_filter_close(flt);
    if (!s && a->preview && aug_preview(a->preview, a->data, a->out, d, plan, &err)) s = err.code;
    int mine = 0;
    for (int i = 0; i < plan->n; i++) mine += aug_plan_in_shard(plan, i, sk, sn);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
    s = aug_out_close(&ao, d, s, done == 0, &err); /* a fresh folder taken back when nothing was done */
    if (s) {
        int rc = cli_error("augment", &err);
        if (done) fprintf(stderr, "sdc augment: rerun the same command to resume\n");
        return rc;
    }
    if (a->json)
        printf("{\"generated\": %d, \"already_done\": %d, \"failed\": %d, \"manifest\": \"%s\"}\n",
               done - failed, mine - todo, failed, ao.mpath);
    else if (!a->quiet)
        fprintf(stderr, "sdc augment: %d generated, %d already done%s\n", done - failed, mine - todo,
                sn > 1 ? " (this shard)" : "");
    if (failed) {
        fprintf(stderr, "sdc augment: %d items failed (see %s)\n", failed, ao.mpath);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
