/* run.c — augment runs (run.h): the output folder (folders, lock, manifest,
 * undo) shared by the generating methods and retrieve, and the retrieve
 * loop: each pick copied or hard-linked, durable before its manifest line. */
#include "run.h"

#include "../core/atomic_file.h"
#include "../core/sha256.h"

#include <cJSON.h>
#include <ctype.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void aug_out_undo(const aug_out *o, const aug_dataset *d) {
    char path[4200];
    struct stat sb;
    static const char *const files[] = {"plan.json", ".sdc-plan.lock"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", o->dir, files[i]);
        unlink(path);
    }
    if (stat(o->mpath, &sb) == 0 && sb.st_size == 0) unlink(o->mpath);
    snprintf(path, sizeof path, "%s/.sdc-augment%s.lock", o->dir, o->tag);
    unlink(path);
    for (int c = 0; c < d->n_classes; c++) {
        snprintf(path, sizeof path, "%s/%s", o->dir, d->classes[c].folder);
        rmdir(path); /* only when empty */
    }
    rmdir(o->dir);
}

sdc_status aug_out_create(aug_out *o, const char *dir, const aug_dataset *d, const int *count,
                          long long sk, long long sn, bool undo, sdc_err *err) {
    struct stat st;
    *o = (aug_out){.dir = dir, .sk = sk, .sn = sn, .fresh = stat(dir, &st) != 0, .lock = -1,
                   .fd = -1};
    if (sn > 1) snprintf(o->tag, sizeof o->tag, ".shard-%lld-of-%lld", sk, sn);
    snprintf(o->mpath, sizeof o->mpath, "%s/manifest%s.jsonl", dir, o->tag);
    if (mkdir(dir, 0755) && errno != EEXIST)
        return sdc_err_set(err, SDC_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    char path[4096];
    for (int c = 0; c < d->n_classes; c++) {
        if (count && !count[c]) continue;
        snprintf(path, sizeof path, "%s/%s", dir, d->classes[c].folder);
        if (mkdir(path, 0755) && errno != EEXIST) {
            sdc_err_set(err, SDC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
            if (undo && o->fresh) aug_out_undo(o, d);
            return err->code;
        }
    }
    /* One lock per shard: shards share the folder, two drivers of one shard may not. */
    snprintf(path, sizeof path, "%s/.sdc-augment%s.lock", dir, o->tag);
    o->lock = aug_lock(path, err);
    return o->lock < 0 ? err->code : SDC_OK;
}

sdc_status aug_out_load(aug_out *o, sdc_err *err) {
    return aug_manifest_load(o->mpath, o->dir, &o->man, err);
}

sdc_status aug_out_begin(aug_out *o, const aug_plan *plan, sdc_err *err) {
    aug_remove_temps(o->dir, plan, (int)o->sk, (int)o->sn);
    if ((o->fd = open(o->mpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return sdc_err_set(err, SDC_ERR_IO, "%s: %s", o->mpath, strerror(errno));
    return SDC_OK;
}

sdc_status aug_out_close(aug_out *o, const aug_dataset *d, sdc_status s, bool undo, sdc_err *err) {
    if (o->fd >= 0 && close(o->fd) && !s)
        s = sdc_err_set(err, SDC_ERR_IO, "%s: close: %s", o->mpath, strerror(errno));
    o->fd = -1;
    if (s && undo && o->fresh) aug_out_undo(o, d); /* still holding the lock */
    if (o->lock >= 0) close(o->lock);
    o->lock = -1;
    aug_manifest_free(&o->man);
    return s;
}

int aug_out_todo(const aug_out *o, const aug_plan *plan) {
    int todo = 0;
    for (int i = 0; i < plan->n; i++)
        todo += aug_plan_in_shard(plan, i, o->sk, o->sn) && !aug_manifest_has(&o->man, plan->items[i].output);
    return todo;
}

/* ---------------------------------------------------------------- retrieve */

/* Copies (or hard-links) src to dst atomically, checking that src still
 * holds the content the cache embedded. */
static sdc_status place(const char *src, const char *dst, const char *want_sha, bool hard,
                        sdc_err *err) {
    char got[65] = "";
    sdc_status s = SDC_OK;
    if (hard) {
        if ((s = sdc_sha256_file(src, got, err))) return s;
        if (strcmp(got, want_sha))
            return sdc_err_set(err, SDC_ERR_FORMAT, "%s changed since it was embedded (rerun sdc embed)", src);
        char tmp[PATH_MAX + 32];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld.0", dst, (long)getpid());
        unlink(tmp);
        if (link(src, tmp) != 0)
            return sdc_err_set(err, SDC_ERR_IO, "%s: cannot hard-link to %s: %s%s", src, dst, strerror(errno),
                               errno == EXDEV ? " (--link needs the pool and the output on one filesystem)" : "");
        if (rename(tmp, dst) != 0) {
            s = sdc_err_set(err, SDC_ERR_IO, "%s: rename failed: %s", dst, strerror(errno));
            unlink(tmp);
            return s;
        }
        return sdc_fsync_parent(dst, err);
    }
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", src, strerror(errno));
    sdc_atomic_file *f = sdc_atomic_open(dst, err);
    if (!f) {
        close(fd);
        return err->code;
    }
    sdc_sha256 h;
    sdc_sha256_init(&h);
    uint8_t buf[1 << 16];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { s = sdc_err_set(err, SDC_ERR_IO, "%s: read failed: %s", src, strerror(errno)); break; }
        if (r == 0) break;
        sdc_sha256_update(&h, buf, (size_t)r);
        if ((s = sdc_atomic_write(f, buf, (size_t)r, err))) break;
    }
    close(fd);
    uint8_t d[32];
    sdc_sha256_final(&h, d);
    for (int i = 0; i < 32; i++) snprintf(got + 2 * i, 3, "%02x", d[i]);
    if (!s && strcmp(got, want_sha))
        s = sdc_err_set(err, SDC_ERR_FORMAT, "%s changed since it was embedded (rerun sdc embed)", src);
    if (s) {
        sdc_atomic_abort(f);
        return s;
    }
    return sdc_atomic_commit(f, err);
}

char *aug_retrieve_output_name(const char *folder, int rank, const char *pool_path, const char *sha) {
    const char *base = strrchr(pool_path, '/');
    base = base ? base + 1 : pool_path;
    const char *dot = strrchr(base, '.');
    size_t stem = dot ? (size_t)(dot - base) : strlen(base);
    if (stem > 80) stem = 80;
    char ext[8] = "";
    for (int i = 0; dot && dot[i] && i < 7; i++) ext[i] = (char)tolower((unsigned char)dot[i]);
    size_t n = strlen(folder) + stem + 64;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s/retrieve-%04d-%.*s-%.8s%s", folder, rank, (int)stem, base, sha, ext);
    return out;
}

/* The manifest line of one retrieved item. */
static char *retrieve_line(const aug_retrieve_opts *ro, const aug_dataset *d, const aug_item *it,
                           const aug_pick *pk, const emb_cache *pool, const char *error) {
    const emb_entry *e = &pool->entries[pk->row];
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/%s", pool->root, e->path);
    cJSON *j = aug_manifest_item_json(d, it, "retrieve");
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "source", src);
    cJSON_AddStringToObject(j, "pool_file", e->path);
    cJSON_AddNumberToObject(j, "pool_row", (double)pk->row);
    cJSON_AddStringToObject(j, "pool_sha256", e->sha256);
    cJSON_AddNumberToObject(j, "similarity", pk->score);
    cJSON_AddNumberToObject(j, "rank", pk->rank);
    cJSON_AddStringToObject(j, "query", ro->query);
    cJSON_AddBoolToObject(j, "link", ro->link);
    cJSON_AddStringToObject(j, "model", ro->model);
    cJSON_AddStringToObject(j, "model_sha256", ro->model_sha);
    cJSON_AddStringToObject(j, "sdc_version", SDC_VERSION);
    cJSON_AddStringToObject(j, "status", error ? "failed" : "ok");
    if (error) cJSON_AddStringToObject(j, "error", error);
    else cJSON_AddNullToObject(j, "error");
    return aug_manifest_line_text(j);
}


sdc_status aug_retrieve_items(aug_out *o, const aug_dataset *d, const aug_plan *plan,
                              const aug_pick *picks, const emb_cache *pool,
                              const aug_retrieve_opts *ro, const aug_run_hooks *h,
                              aug_run_counts *n, sdc_err *err) {
    sdc_status s = SDC_OK;
    for (int i = 0; !s && i < plan->n; i++) {
        const aug_item *it = &plan->items[i];
        if (aug_manifest_has(&o->man, it->output)) continue;
        const emb_entry *e = &pool->entries[picks[i].row];
        char src[PATH_MAX], dst[PATH_MAX];
        snprintf(src, sizeof src, "%s/%s", pool->root, e->path);
        snprintf(dst, sizeof dst, "%s/%s", o->dir, it->output);
        sdc_err ie = {0};
        sdc_status is = place(src, dst, e->sha256, ro->link, &ie);
        /* The line goes in after the file is durable; a failed item is
         * recorded (and retried by the next run). */
        char *line = retrieve_line(ro, d, it, &picks[i], pool, is ? ie.msg : NULL);
        if (!line) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        else if (!(s = aug_manifest_append(o->fd, line, err)) && is) {
            n->failed++;
            if (h->failed) h->failed(h->ctx, it->output, ie.msg);
        }
        free(line);
        ++n->done;
        if (h->progress) h->progress(h->ctx, n->done);
    }
    return s;
}

/* ---------------------------------------------------------------- generate */

sdc_status aug_model_identity(const char *model, char *name, size_t cap, char *abs_path,
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

/* The manifest line of one item (cJSON escapes everything: pandas reads it). */
static char *generate_line(const aug_gen_run *g, const aug_item *it, const char *error,
                           const aug_filter_result *fr) {
    const aug_dataset *d = g->d;
    const cJSON *extra = g->extra ? g->extra[it->cls] : NULL;
    cJSON *j = aug_manifest_item_json(d, it, g->method);
    if (!j) return NULL;
    if (it->source) cJSON_AddStringToObject(j, "source", it->source);
    else cJSON_AddNullToObject(j, "source");
    cJSON_AddStringToObject(j, "prompt", it->prompt);
    cJSON_AddStringToObject(j, "negative_prompt", g->base.negative);
    cJSON_AddNumberToObject(j, "seed", it->seed);
    if (it->strength >= 0) cJSON_AddNumberToObject(j, "strength", it->strength);
    else cJSON_AddNullToObject(j, "strength");
    cJSON_AddNumberToObject(j, "steps", (double)g->steps);
    cJSON_AddStringToObject(j, "sampler", g->sampler_name);
    cJSON_AddNumberToObject(j, "cfg", g->cfg);
    cJSON_AddNumberToObject(j, "width", g->w);
    cJSON_AddNumberToObject(j, "height", g->h);
    cJSON_AddStringToObject(j, "model", g->model_name);
    if (g->model_sha) cJSON_AddStringToObject(j, "model_sha256", g->model_sha);
    else cJSON_AddNullToObject(j, "model_sha256");
    cJSON_AddStringToObject(j, "sdc_version", SDC_VERSION);
    cJSON_AddStringToObject(j, "status", error ? "failed" : fr && !fr->kept ? "rejected" : "ok");
    if (error) cJSON_AddStringToObject(j, "error", error);
    else cJSON_AddNullToObject(j, "error");
    if (!error && fr) aug_filter_manifest_fields(g->flt, fr, j);
    for (const cJSON *x = extra ? extra->child : NULL; x; x = x->next) /* --train: the token's record */
        cJSON_AddItemToObject(j, x->string, cJSON_Duplicate(x, 1));
    return aug_manifest_line_text(j);
}

/* Appends a finished item's manifest line: only after its PNG is durable,
 * and for a failed item too (the run goes on; a rerun retries it). A
 * manifest write or fsync error stops the run (the line taken back, the PNG
 * removed): the item is redone on resume. */
static sdc_status record(const aug_gen_run *g, aug_out *o, const aug_run_hooks *h,
                         aug_run_counts *n, const aug_item *it, const char *error,
                         const aug_filter_result *fr, sdc_err *err) {
    char *line = generate_line(g, it, error, fr);
    sdc_status s = line ? aug_manifest_append(o->fd, line, err)
                        : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    free(line);
    if (s && !error) { /* not recorded: its PNG goes too, so files and manifest agree */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", o->dir, it->output);
        unlink(path);
    }
    if (s) return s;
    if (error) {
        n->failed++;
        if (h->failed) h->failed(h->ctx, it->output, error);
    }
    ++n->done;
    if (h->progress) h->progress(h->ctx, n->done);
    return SDC_OK;
}

sdc_status aug_generate_items(aug_out *o, const aug_gen_run *g, const aug_run_hooks *h,
                              aug_run_counts *n, sdc_err *err) {
    const aug_plan *plan = g->plan;
    long long sk = o->sk, sn = o->sn;
    int B = g->batch, w = g->w, hgt = g->h, todo = aug_out_todo(o, plan);
    sdc_status s = SDC_OK;
    char path[4096];
    float *init = NULL;
    size_t cap = (size_t)3 * w * hgt;
    sdc_generate_row *rows = calloc((size_t)B, sizeof *rows);
    const aug_item **group = calloc((size_t)B, sizeof *group);
    if (!s && todo && (!(init = malloc(sizeof *init * cap * B)) || !rows || !group))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    /* Batches are runs of consecutive pending items with one strength (rows
     * share the schedule), so the manifest keeps the plan's order. Every row
     * has its own generator: an item's image does not depend on --batch. */
    for (int i = 0; !s && i < plan->n;) {
        int k = 0;
        for (; !s && i < plan->n && k < B; i++) {
            const aug_item *it = &plan->items[i];
            if (!aug_plan_in_shard(plan, i, sk, sn) || aug_manifest_has(&o->man, it->output)) continue;
            if (k > 0 && it->strength != group[0]->strength) break;
            sdc_err ie = {0};
            float *img = init + (size_t)k * cap;
            if (it->source) {
                sdc_image im;
                snprintf(path, sizeof path, "%s/%s", g->data, it->source);
                sdc_status is = sdc_image_load(path, NULL, &im, &ie);
                if (!is) {
                    is = sdc_image_to_tensor(&im, w, hgt, SDC_FIT_RESIZE, img, cap, &ie);
                    sdc_image_free(&im);
                }
                if (is) { /* recorded as failed; the batch goes on without it */
                    s = record(g, o, h, n, it, ie.msg, NULL, err);
                    continue;
                }
            }
            rows[k] = (sdc_generate_row){.prompt = it->prompt, .embeddings = g->sets[it->cls],
                                         .seed = it->seed, .init_image = it->source ? img : NULL};
            group[k++] = it;
        }
        if (s || !k) continue;
        sdc_err ie = {0};
        sdc_generate_opts go = g->base; /* with the precision and generator choices */
        go.batch = k;
        go.rows = rows;
        go.strength = (float)group[0]->strength;
        go.prompt = group[0]->prompt;
        sdc_generate_result res = {0};
        sdc_status is = sdc_generate(g->p, &go, &res, &ie);
        for (int j = 0; !s && j < k; j++) {
            aug_item kept = *group[j]; /* with --filter clip: the seed whose image passed */
            const aug_item *it = &kept;
            const uint8_t *rgb = res.rgb ? res.rgb + (size_t)j * cap : NULL;
            sdc_err je = ie;
            sdc_status js = is;
            aug_filter_result fr = {0};
            if (!js && g->flt && !(js = aug_filter_item(g->flt, g->p, &go, &rows[j], group[j], rgb, &fr, &je)))
                kept.seed = fr.seed, rgb = fr.rgb;
            if (!js && (!g->flt || fr.kept)) {
                char *prompt = sdc_a1111_escape(it->prompt), *neg = sdc_a1111_escape(g->base.negative);
                sdc_gen_meta gm = g->meta; /* steps, sampler, cfg, size, model, hash, rng */
                gm.prompt = prompt;
                gm.negative_prompt = neg;
                gm.seed = it->seed;
                gm.has_seed = true;
                gm.img2img = it->source != NULL;
                gm.denoising_strength = it->strength;
                char *params = prompt && neg ? sdc_a1111_parameters(&gm) : NULL;
                snprintf(path, sizeof path, "%s/%s", o->dir, it->output);
                js = params ? sdc_image_save_png(path, rgb, w, hgt, params, &je)
                            : sdc_err_set(&je, SDC_ERR_OOM, "out of memory");
                free(params);
                free(prompt);
                free(neg);
                if (!js && g->flt) js = aug_filter_commit(g->flt, it, path, &je);
                /* A disk that cannot take the image (ENOSPC, EIO, read-only)
                 * cannot take the next ones either: stop, unrecorded, so the
                 * rerun redoes it. */
                if (js == SDC_ERR_IO) {
                    *err = je;
                    sdc_err_wrap(err, "stopped after %d images", n->done - n->failed);
                    s = js;
                    break;
                }
            }
            s = record(g, o, h, n, it, js ? je.msg : NULL, g->flt && !js ? &fr : NULL, err);
        }
        sdc_generate_result_free(&res);
    }
    free(rows);
    free(group);
    free(init);
    return s;
}
