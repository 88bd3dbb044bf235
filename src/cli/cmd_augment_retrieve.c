/* cmd_augment_retrieve.c — sdc augment --method retrieve: per class, the
 * pool images (an `sdc embed` cache) nearest to the class's CLIP query; the
 * library's retrieve loop (src/augment/run.c) copies or hard-links them into
 * an ImageFolder output with the same manifest, plan, resume and lock as the
 * generating methods. */
#include "augment_cli.h"
#include "preflight.h"
#include "progress.h"

#include "../augment/augment.h"
#include "../augment/embcache.h"
#include "../augment/retrieve.h"
#include "../augment/run.h"
#include "../core/sha256.h"
#include "../eval/zeroshot.h"
#include "../image/clip_preprocess.h"
#include "../models/clip_model.h"

#include <cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef aug_args ret_args;

/* ---------------------------------------------------------------- queries */

typedef struct {
    const ret_args *a;
    sdc_clip_model *m;
    sdc_backend *be;
    sdc_arena *arena;
    const aug_dataset *d;
    int P;
} qctx;

/* CLIP's zero-shot classifier: each prompt normalized, the mean, normalized. */
static sdc_status text_queries(const qctx *q, float *out, sdc_err *err) {
    char **tmpls = NULL;
    int nt = 0;
    sdc_tokenizer *tok = NULL;
    sdc_status s = aug_load_templates(q->a->templates, &tmpls, &nt, err);
    /* A CLIPModel folder's own tokenizer files win over --vocab. */
    char vj[PATH_MAX], mt[PATH_MAX];
    snprintf(vj, sizeof vj, "%s/vocab.json", q->m->path);
    snprintf(mt, sizeof mt, "%s/merges.txt", q->m->path);
    char vocab[PATH_MAX];
    if (!s && access(vj, R_OK) == 0 && access(mt, R_OK) == 0) tok = sdc_tokenizer_load_files(vj, mt, err);
    else if (!s && !(s = cli_find_vocab(q->a->vocab, vocab, sizeof vocab, err)))
        tok = sdc_tokenizer_load_bpe_gz(vocab, err);
    if (!s && !tok) s = err->code;
    int32_t *ids = s ? NULL : malloc(sizeof *ids * (size_t)nt * SDC_TOKENS_MAX);
    float *emb = s ? NULL : malloc(sizeof *emb * (size_t)nt * q->P);
    if (!s && (!ids || !emb)) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int c = 0; !s && c < q->d->n_classes; c++) {
        for (int t = 0; !s && t < nt; t++) {
            char *prompt = zs_fill(tmpls[t], q->d->classes[c].name);
            if (!prompt) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
            else s = sdc_tokenize_77(tok, prompt, strlen(prompt), ids + (size_t)t * SDC_TOKENS_MAX, NULL, err);
            free(prompt);
        }
        for (int t = 0; !s && t < nt; t += 16) {
            int n = nt - t < 16 ? nt - t : 16;
            sdc_exec ex = sdc_exec_begin(q->be, q->arena, err);
            s = sdc_clip_encode_text(&ex, q->m, ids + (size_t)t * SDC_TOKENS_MAX, n, SDC_TOKENS_MAX,
                                     true, emb + (size_t)t * q->P, NULL);
        }
        float *o = out + (size_t)c * q->P;
        for (int i = 0; !s && i < q->P; i++) {
            double sum = 0;
            for (int t = 0; t < nt; t++) sum += emb[(size_t)t * q->P + i];
            o[i] = (float)(sum / nt);
        }
        if (!s && (s = sdc_l2_normalize(o, q->P, err))) sdc_err_wrap(err, "class %s", q->d->classes[c].folder);
    }
    free(ids);
    free(emb);
    sdc_tokenizer_free(tok);
    for (int i = 0; i < nt; i++) free(tmpls[i]);
    free(tmpls);
    return s;
}

/* Embeds every real image of the dataset (normalized) into real [n, P] and
 * the per-class normalized means into out. */
static sdc_status image_queries(const qctx *q, float *out, ret_real *real, sdc_err *err) {
    const aug_dataset *d = q->d;
    int n = 0, S = q->m->cfg.vision.image_size, B = (int)q->a->batch;
    for (int c = 0; c < d->n_classes; c++) {
        if (!d->classes[c].n_files)
            return sdc_err_set(err, SDC_ERR_ARG, "--query %s: class '%s' has no images", q->a->query,
                               d->classes[c].folder);
        n += d->classes[c].n_files;
    }
    float *rows = malloc(sizeof *rows * (size_t)n * q->P), *px = malloc(sizeof *px * (size_t)B * 3 * S * S);
    int *cls = malloc(sizeof *cls * (size_t)n);
    if (!rows || !px || !cls) {
        free(rows), free(px), free(cls);
        return sdc_err_set(err, SDC_ERR_OOM, "out of memory (%d real images)", n);
    }
    sdc_status s = SDC_OK;
    cli_progress pr;
    cli_progress_start(&pr, "query images", "img", n, q->a->quiet);
    int done = 0, k = 0, seen = 0, *have = calloc((size_t)d->n_classes, sizeof *have);
    if (!have) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int c = 0; !s && c < d->n_classes; c++)
        for (int f = 0; !s && f < d->classes[c].n_files; f++) {
            char path[PATH_MAX];
            sdc_image im;
            sdc_err ie = {0};
            snprintf(path, sizeof path, "%s/%s/%s", q->a->data, d->classes[c].folder, d->classes[c].files[f]);
            sdc_status is = sdc_image_load(path, NULL, &im, &ie);
            if (!is) {
                is = sdc_clip_preprocess(&im, q->m->cfg.resize, S, q->m->cfg.mean, q->m->cfg.std, NULL,
                                         px + (size_t)k * 3 * S * S, &ie);
                sdc_image_free(&im);
            }
            seen++;
            if (is) { /* an unreadable real image does not join its class's query */
                if (!q->a->quiet) fprintf(stderr, "\nsdc augment: query image skipped: %s\n", ie.msg);
            } else {
                cls[done + k++] = c;
                have[c]++;
            }
            if (k && (k == B || seen == n)) {
                sdc_exec ex = sdc_exec_begin(q->be, q->arena, err);
                s = sdc_clip_encode_image(&ex, q->m, px, k, true, rows + (size_t)done * q->P, NULL);
                done += k;
                k = 0;
            }
            cli_progress_update(&pr, seen);
        }
    if (!s) cli_progress_end(&pr);
    free(px);
    n = done;
    for (int c = 0; !s && c < d->n_classes; c++)
        if (!have[c])
            s = sdc_err_set(err, SDC_ERR_ARG, "--query %s: no readable image in class '%s'", q->a->query,
                            d->classes[c].folder);
    free(have);
    for (int c = 0; !s && c < d->n_classes; c++) {
        float *o = out + (size_t)c * q->P;
        for (int i = 0; i < q->P; i++) {
            double sum = 0;
            for (int r = 0; r < n; r++)
                if (cls[r] == c) sum += rows[(size_t)r * q->P + i];
            o[i] = (float)sum;
        }
        if ((s = sdc_l2_normalize(o, q->P, err))) sdc_err_wrap(err, "class %s", d->classes[c].folder);
    }
    if (s) {
        free(rows);
        free(cls);
        return s;
    }
    *real = (ret_real){rows, cls, n};
    return SDC_OK;
}

/* ---------------------------------------------------------------- placing files */

/* ---------------------------------------------------------------- the run */

static char *plan_params(const ret_args *a, const char *model_sha) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "--method", "retrieve");
    cJSON_AddStringToObject(j, "--query", a->query);
    cJSON_AddNumberToObject(j, "--per-class", (double)a->per_class);
    cJSON_AddNumberToObject(j, "--dedup", a->dedup);
    if (strcmp(a->query, "image")) cJSON_AddStringToObject(j, "--templates", a->templates);
    cJSON_AddStringToObject(j, "model_sha256", model_sha);
    if (a->classes) cJSON_AddStringToObject(j, "--classes", a->classes);
    if (a->names) cJSON_AddStringToObject(j, "--class-names", a->names);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void on_progress(void *ctx, int done) { cli_progress_update(ctx, done); }

static void on_failed(void *ctx, const char *output, const char *msg) {
    (void)ctx;
    fprintf(stderr, "\nsdc augment: %s: %s\n", output, msg);
}

static int run_items(const ret_args *a, const aug_dataset *d, const aug_plan *plan,
                     const aug_pick *picks, const int *count, const emb_cache *pool,
                     const char *model, const char *model_sha) {
    sdc_err err = {0};
    aug_out o; /* class folders only for classes with picks: ImageFolder refuses an empty one */
    if (aug_out_create(&o, a->out, d, count, 0, 1, false, &err)) return cli_error("augment", &err);
    int todo = 0;
    char *pp = plan_params(a, model_sha);
    sdc_status s = pp ? augment_plan_check(a->out, plan, pp, a->force_new_plan, a->quiet, &err)
                      : sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    free(pp);
    if (!s) s = aug_out_load(&o, &err);
    if (!s) s = aug_out_begin(&o, plan, &err);
    if (!s) todo = aug_out_todo(&o, plan);
    cli_progress pr;
    if (!s && todo) cli_progress_start(&pr, "retrieve", "img", todo, a->quiet || a->json);
    aug_retrieve_opts ro = {.query = a->query, .link = a->link, .model = model, .model_sha = model_sha};
    aug_run_hooks hooks = {.progress = on_progress, .failed = a->quiet ? NULL : on_failed, .ctx = &pr};
    aug_run_counts n = {0};
    if (!s) s = aug_retrieve_items(&o, d, plan, picks, pool, &ro, &hooks, &n, &err);
    int failed = n.failed, done = n.done;
    if (!s && todo) cli_progress_end(&pr);
    if (!s && a->preview && aug_preview(a->preview, a->data, a->out, d, plan, &err)) s = err.code;
    s = aug_out_close(&o, d, s, false, &err);
    if (s) return cli_error("augment", &err);
    if (a->json)
        printf("{\"retrieved\": %d, \"already_done\": %d, \"failed\": %d, \"manifest\": \"%s\"}\n",
               done - failed, plan->n - todo, failed, o.mpath);
    else if (!a->quiet)
        fprintf(stderr, "sdc augment: %d retrieved, %d already done\n", done - failed, plan->n - todo);
    if (failed) {
        fprintf(stderr, "sdc augment: %d items failed (see %s)\n", failed, o.mpath);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

int augment_retrieve(const aug_args *ap) {
    const aug_args a = *ap;
    int rc;
    sdc_err err = {0};
    aug_dataset d = {0};
    emb_cache pool = {.lock_fd = -1, .emb_fd = -1, .idx_fd = -1};
    qctx q = {.a = &a, .d = &d};
    ret_real real = {0};
    ret_result res = {0};
    aug_plan plan = {0};
    aug_pick *picks = NULL;
    float *qt = NULL, *qi = NULL;
    char sha[65] = "";
    const char *model = NULL;
    rc = EXIT_RUNTIME;
    if (!a.dry && (cli_check_writable_dir(a.out, "--out", &err) ||
                   (a.preview && cli_check_writable(a.preview, "--preview", &err))))
        return cli_error("augment", &err);
    sdc_status s = aug_dataset_scan(a.data, a.names, a.classes, &d, &err);
    if (!s) s = emb_cache_open_reader(a.pool, &pool, &err);
    if (!s && pool.n_live == 0) s = sdc_err_set(&err, SDC_ERR_ARG, "%s: the pool is empty (run sdc embed)", a.pool);
    if (!s) model = a.model ? a.model : pool.model;
    if (!s && !(q.be = cli_backend_create("augment", a.backend, a.quiet, &err))) s = err.code;
    if (!s && !(q.arena = sdc_arena_create(q.be, 0, &err))) s = err.code;
    if (!s && !(q.m = sdc_clip_model_open(model, q.be, &err))) s = err.code;
    if (!s) s = sdc_sha256_file(q.m->weights, sha, &err);
    if (!s && strcmp(sha, pool.model_sha256))
        s = sdc_err_set(&err, SDC_ERR_ARG, "%s was embedded with %s (sha256 %.12s...), not %s (sha256 "
                        "%.12s...): embeddings of two models do not compare", a.pool, pool.model,
                        pool.model_sha256, model, sha);
    if (!s && q.m->cfg.proj != pool.dim)
        s = sdc_err_set(&err, SDC_ERR_ARG, "%s holds %d-d embeddings; %s gives %d-d", a.pool, pool.dim,
                        model, q.m->cfg.proj);
    q.P = pool.dim;
    bool want_text = strcmp(a.query, "image") != 0, want_image = strcmp(a.query, "text") != 0;
    if (!s && (!(qt = calloc((size_t)d.n_classes * q.P, sizeof *qt)) || !(qi = calloc((size_t)d.n_classes * q.P, sizeof *qi))))
        s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!s && want_text) s = text_queries(&q, qt, &err);
    if (!s && want_image) s = image_queries(&q, qi, &real, &err);
    for (int c = 0; !s && c < d.n_classes; c++) {
        float *o = qt + (size_t)c * q.P;
        if (!want_text) memcpy(o, qi + (size_t)c * q.P, sizeof *o * q.P);
        else if (want_image)
            for (int i = 0; i < q.P; i++) o[i] += qi[(size_t)c * q.P + i];
        if (want_image && want_text) s = sdc_l2_normalize(o, q.P, &err);
    }
    if (!s) {
        ret_pool rp = {pool.map, pool.dtype, pool.n, pool.dim, pool.dead};
        ret_opts o = {.k = (int)a.per_class, .dedup = (float)a.dedup};
        s = ret_search(&rp, qt, d.n_classes, real.n ? &real : NULL, &o, &res, &err);
    }
    /* The plan: classes in order, each class's picks by rank. */
    int total = 0;
    for (int c = 0; !s && c < d.n_classes; c++) total += res.count[c];
    if (!s && total && (!(plan.items = calloc((size_t)total, sizeof *plan.items)) ||
                        !(picks = calloc((size_t)total, sizeof *picks))))
        s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    for (int c = 0; !s && c < d.n_classes; c++)
        for (int r = 0; !s && r < res.count[c]; r++) {
            const ret_hit *h = &res.hits[c][r];
            const emb_entry *e = &pool.entries[h->row];
            aug_item *it = &plan.items[plan.n];
            *it = (aug_item){.index = plan.n, .cls = c, .src = -1, .k = r + 1, .strength = -1};
            picks[plan.n] = (aug_pick){h->row, h->score, r + 1};
            plan.n++;
            if (!(it->output = aug_retrieve_output_name(d.classes[c].folder, r + 1, e->path, e->sha256)))
                s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
        }
    if (!s && a.dry && a.json) {
        printf("{\"method\": \"retrieve\", \"images\": %d, \"pool\": %lld, \"classes\": {", plan.n,
               (long long)pool.n_live);
        for (int c = 0; c < d.n_classes; c++) {
            printf("%s", c ? ", " : "");
            cli_json_string(stdout, d.classes[c].folder);
            printf(": %d", res.count[c]);
        }
        printf("}}\n");
        rc = EXIT_OK;
    } else if (!s && a.dry) {
        printf("plan: %d images (retrieve, query %s, %lld per class, dedup %g) from %lld pool images\n",
               plan.n, a.query, a.per_class, a.dedup, (long long)pool.n_live);
        for (int c = 0; c < d.n_classes; c++)
            printf("  %-24s %6d images  similarity %.3f .. %.3f\n", d.classes[c].folder, res.count[c],
                   res.count[c] ? res.hits[c][0].score : 0.0, res.count[c] ? res.hits[c][res.count[c] - 1].score : 0.0);
        printf("conflicts resolved: %lld, near-duplicates dropped: %lld, passes over the pool: %d\n",
               (long long)res.conflicts, (long long)res.duplicates, res.passes);
        rc = EXIT_OK;
    } else if (!s) {
        /* The shortfall, always: a class short of K skews the class balance,
         * and one with nothing leaves the output without that class. */
        int empty = 0;
        for (int c = 0; c < d.n_classes; c++) {
            empty += res.count[c] == 0;
            if (res.count[c] < a.per_class)
                fprintf(stderr, "sdc augment: class %s: %d of %lld images (the pool holds no more "
                        "that pass --dedup%s)\n", d.classes[c].folder, res.count[c], a.per_class,
                        res.partial ? " or the candidate cap was hit" : "");
        }
        rc = run_items(&a, &d, &plan, picks, res.count, &pool, model, sha);
        if (empty) {
            fprintf(stderr, "sdc augment: %d class%s got no image: no folder was made for %s (an "
                    "empty class folder is refused by torchvision's ImageFolder)\n", empty,
                    empty > 1 ? "es" : "", empty > 1 ? "them" : "it");
            if (rc == EXIT_OK) rc = EXIT_RUNTIME;
        }
    }
    if (s) rc = cli_error("augment", &err);
    aug_plan_free(&plan);
    free(picks);
    ret_result_free(&res);
    free((void *)real.rows);
    free((void *)real.cls);
    free(qt);
    free(qi);
    sdc_clip_model_close(q.m);
    sdc_arena_destroy(q.arena);
    sdc_backend_destroy(q.be);
    emb_cache_close(&pool);
    aug_dataset_free(&d);
    return rc;
}
