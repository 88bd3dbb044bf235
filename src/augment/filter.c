/* filter.c — the CLIP filter of `sdc augment --filter clip` (see filter.h):
 * the decision, the regeneration loop, the memory of earlier outputs and
 * its cache. */
#include "filter.h"
#include "embfiles.h"

#include "../core/sha256.h"
#include "../eval/zeroshot.h"
#include "../image/clip_preprocess.h"
#include "../image/image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct kept_list {     /* a class's kept outputs, by plan index */
    int64_t *index;
    float *emb;                /* [n, P] */
    int64_t n, cap;
} kept_list;

struct aug_filter {
    aug_filter_opts o;
    const aug_dataset *d;
    char *data_root, *out_dir, *cache_dir;
    sdc_backend *be;
    sdc_arena *arena;
    sdc_clip_model *m;
    char sha[65];
    int k, P, S;
    float scale;
    float *q;                  /* [k, P] class queries */
    kept_list *kept;           /* [k] */
    int64_t *first;            /* [k + 1] offsets of each class's files */
    float *src;                /* [files, P] source embeddings, made when first needed */
    unsigned char *src_state;  /* 0 not yet, 1 made, 2 unreadable */
    emb_cache cache;
    bool cache_open;
    float *px, *cand, *pending; /* [3, S, S]; [P]; [P] the last kept attempt's embedding */
    int64_t pending_index;
    sdc_generate_result regen;
    aug_filter_stats st;
};

const char *aug_filter_why_name(aug_filter_why w) {
    switch (w) {
    case AUG_FILTER_KEEP: return "kept";
    case AUG_FILTER_CLASS: return "class probability";
    case AUG_FILTER_DUP_SOURCE: return "near-duplicate of the source";
    case AUG_FILTER_DUP_EARLIER: return "near-duplicate of an earlier output";
    }
    return "?";
}

static double dotf(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

void aug_filter_judge(const float *e, int cls, const float *queries, int k, int P, float logit_scale,
                      double threshold, double dedup, const float *source, const float *earlier,
                      int64_t n_earlier, aug_filter_verdict *v) {
    float probs[4096], *pr = k <= 4096 ? probs : malloc(sizeof *pr * (size_t)k);
    *v = (aug_filter_verdict){.why = AUG_FILTER_KEEP, .dup_cos = -2};
    if (pr) {
        zs_probs(e, queries, k, P, logit_scale, pr);
        v->class_prob = pr[cls];
    }
    if (pr != probs) free(pr);
    v->clip_score = (float)(100.0 * fmax(dotf(e, queries + (size_t)cls * P, P), 0.0));
    double ds = source ? dotf(e, source, P) : -2, de = -2;
    for (int64_t i = 0; i < n_earlier; i++) de = fmax(de, dotf(e, earlier + (size_t)i * P, P));
    v->dup_cos = (float)fmax(ds, de);
    if (!(v->class_prob > threshold)) v->why = AUG_FILTER_CLASS;
    else if (ds >= dedup) v->why = AUG_FILTER_DUP_SOURCE;
    else if (de >= dedup) v->why = AUG_FILTER_DUP_EARLIER;
}

/* ---------------------------------------------------------------- embedding */

/* The normalized embedding of an 8-bit image, one image per model call. */
static sdc_status embed(aug_filter *f, const sdc_image *im, float *out, sdc_err *err) {
    const sdc_clip_config *c = &f->m->cfg;
    sdc_status s = sdc_clip_preprocess(im, c->resize, f->S, c->mean, c->std, NULL, f->px, err);
    if (s) return s;
    sdc_exec ex = sdc_exec_begin(f->be, f->arena, err);
    return sdc_clip_encode_image(&ex, f->m, f->px, 1, true, out, NULL);
}

/* The embedding of real image (cls, src), or NULL when it cannot be read
 * (its outputs then skip the source check; the generator failed on it too). */
static const float *source_embedding(aug_filter *f, int cls, int src, sdc_err *err, sdc_status *s) {
    int64_t i = f->first[cls] + src;
    float *e = f->src + (size_t)i * f->P;
    if (f->src_state[i] == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s/%s", f->data_root, f->d->classes[cls].folder,
                 f->d->classes[cls].files[src]);
        sdc_image im;
        sdc_err ie = {0};
        f->src_state[i] = 2;
        if (!sdc_image_load(path, NULL, &im, &ie)) {
            *s = embed(f, &im, e, err);
            sdc_image_free(&im);
            if (!*s) f->src_state[i] = 1;
        }
    }
    return f->src_state[i] == 1 ? e : NULL;
}

/* Inserts (index, e) into a class's list, keeping plan order. */
static sdc_status kept_add(kept_list *l, int P, int64_t index, const float *e, sdc_err *err) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        int64_t *ix = realloc(l->index, sizeof *ix * (size_t)l->cap);
        if (ix) l->index = ix;
        float *em = ix ? realloc(l->emb, sizeof *em * (size_t)l->cap * P) : NULL;
        if (!em) return sdc_err_set(err, SDC_ERR_OOM, "filter: out of memory");
        l->emb = em;
    }
    int64_t at = l->n;
    while (at > 0 && l->index[at - 1] > index) at--;
    memmove(l->index + at + 1, l->index + at, sizeof *l->index * (size_t)(l->n - at));
    memmove(l->emb + (size_t)(at + 1) * P, l->emb + (size_t)at * P, sizeof *l->emb * (size_t)(l->n - at) * P);
    l->index[at] = index;
    memcpy(l->emb + (size_t)at * P, e, sizeof *e * (size_t)P);
    l->n++;
    return SDC_OK;
}

/* ---------------------------------------------------------------- open, close */

aug_filter *aug_filter_open(const aug_filter_opts *o, const aug_dataset *d, const char *data_root,
                            const char *out_dir, const char *shard_tag, sdc_err *err) {
    aug_filter *f = calloc(1, sizeof *f);
    if (!f) {
        sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        return NULL;
    }
    f->o = *o;
    f->d = d;
    f->k = d->n_classes;
    f->pending_index = -1;
    if (f->o.threshold < 0) f->o.threshold = 1.0 / f->k;
    char cdir[PATH_MAX];
    snprintf(cdir, sizeof cdir, "%s/.sdc-filter%s", out_dir, shard_tag ? shard_tag : "");
    sdc_status s = SDC_OK;
    if (!(f->data_root = strdup(data_root)) || !(f->out_dir = strdup(out_dir)) || !(f->cache_dir = strdup(cdir)))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s && !(f->be = sdc_cpu_backend_create(err))) s = err->code;
    if (!s && !(f->arena = sdc_arena_create(f->be, 0, err))) s = err->code;
    if (!s && !(f->m = sdc_clip_model_open(o->clip, f->be, err))) s = sdc_err_wrap(err, "--clip");
    if (!s) s = sdc_sha256_file(f->m->weights, f->sha, err);
    if (!s) {
        f->P = f->m->cfg.proj;
        f->S = f->m->cfg.vision.image_size;
        f->scale = zs_logit_scale(f->m);
        f->q = malloc(sizeof *f->q * (size_t)f->k * f->P);
        f->kept = calloc((size_t)f->k, sizeof *f->kept);
        f->first = calloc((size_t)f->k + 1, sizeof *f->first);
        f->px = malloc(sizeof *f->px * 3 * (size_t)f->S * f->S);
        f->cand = malloc(sizeof *f->cand * (size_t)f->P);
        f->pending = malloc(sizeof *f->pending * (size_t)f->P);
        if (!f->q || !f->kept || !f->first || !f->px || !f->cand || !f->pending)
            s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    for (int c = 0; !s && c < f->k; c++) f->first[c + 1] = f->first[c] + d->classes[c].n_files;
    if (!s && (!(f->src = malloc(sizeof *f->src * (size_t)(f->first[f->k] + 1) * f->P)) ||
               !(f->src_state = calloc((size_t)f->first[f->k] + 1, 1))))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    const char **names = s ? NULL : malloc(sizeof *names * (size_t)f->k);
    if (!s && !names) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int c = 0; !s && c < f->k; c++) names[c] = d->classes[c].name;
    sdc_tokenizer *tok = NULL;
    if (!s && !(tok = zs_tokenizer_open(f->m, o->vocab, err))) s = err->code;
    if (!s) s = zs_class_queries(f->m, f->be, f->arena, tok, o->templates, o->n_templates, names, f->k, f->q, err);
    sdc_tokenizer_free(tok);
    free(names);
    if (s) {
        aug_filter_close(f);
        return NULL;
    }
    return f;
}

void aug_filter_close(aug_filter *f) {
    if (!f) return;
    if (f->cache_open) emb_cache_close(&f->cache);
    for (int c = 0; f->kept && c < f->k; c++) free(f->kept[c].index), free(f->kept[c].emb);
    sdc_generate_result_free(&f->regen);
    sdc_clip_model_close(f->m);
    sdc_arena_destroy(f->arena);
    sdc_backend_destroy(f->be);
    free(f->kept), free(f->first), free(f->src), free(f->src_state), free(f->q), free(f->px);
    free(f->cand), free(f->pending), free(f->data_root), free(f->out_dir), free(f->cache_dir);
    free(f);
}

const char *aug_filter_model_sha256(const aug_filter *f) { return f->sha; }

aug_filter_stats aug_filter_get_stats(const aug_filter *f) { return f->st; }

/* The cache of kept embeddings (F32: a resumed run must see the bits an
 * uninterrupted one judged with). */
static sdc_status cache_open(aug_filter *f, sdc_err *err) {
    if (f->cache_open) return SDC_OK;
    char root[PATH_MAX];
    if (!realpath(f->out_dir, root)) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", f->out_dir, strerror(errno));
    emb_cache_meta want = {.dim = f->P, .dtype = SDC_F32, .root = root, .model = f->o.clip,
                           .model_sha256 = f->sha};
    /* Derived data: a cache made before OUT moved (another root), or with
     * other weights, is dropped and rebuilt from the PNGs. */
    emb_cache old;
    sdc_err ignored = {0};
    if (!emb_cache_open_reader(f->cache_dir, &old, &ignored)) {
        bool stale = strcmp(old.root, root) || strcmp(old.model_sha256, f->sha) || old.dtype != SDC_F32;
        emb_cache_close(&old);
        const char *parts[] = {"index.jsonl", "embeddings.bin", "meta.json"};
        for (int i = 0; stale && i < 3; i++) {
            char p[PATH_MAX + 32];
            snprintf(p, sizeof p, "%s/%s", f->cache_dir, parts[i]);
            unlink(p);
        }
    }
    sdc_status s = emb_cache_open_writer(f->cache_dir, &want, &f->cache, err);
    if (!s) f->cache_open = true;
    return s;
}

sdc_status aug_filter_resume(aug_filter *f, const aug_plan *p, const aug_manifest *m, long long shard,
                             long long n_shards, sdc_err *err) {
    const char **paths = malloc(sizeof *paths * (size_t)(p->n ? p->n : 1));
    int64_t *idx = malloc(sizeof *idx * (size_t)(p->n ? p->n : 1)), *rows = NULL, n = 0;
    if (!paths || !idx) {
        free(paths), free(idx);
        return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    for (int i = 0; i < p->n; i++) {
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", f->out_dir, p->items[i].output);
        /* Done items with a file are kept outputs ("rejected" lines have none). */
        if (aug_plan_in_shard(p, i, shard, n_shards) && aug_manifest_has(m, p->items[i].output) && stat(path, &sb) == 0)
            paths[n] = p->items[i].output, idx[n++] = i;
    }
    sdc_status s = SDC_OK;
    if (n) {
        emb_encoder enc = {.m = f->m, .be = f->be, .arena = f->arena, .batch = 1};
        emb_update_stats st;
        if (!(rows = malloc(sizeof *rows * (size_t)n))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        if (!s) s = cache_open(f, err);
        if (!s) s = emb_cache_update(&f->cache, &enc, paths, n, NULL, rows, &st, err);
        for (int64_t j = 0; !s && j < n; j++) {
            if (rows[j] < 0) {
                s = sdc_err_set(err, SDC_ERR_FORMAT, "%s/%s: listed in the manifest but cannot be read for the "
                                "filter's near-duplicate check", f->out_dir, paths[j]);
                break;
            }
            if (!(s = emb_cache_row(&f->cache, rows[j], f->cand, err)))
                s = kept_add(&f->kept[p->items[idx[j]].cls], f->P, idx[j], f->cand, err);
        }
    }
    free(paths), free(idx), free(rows);
    return s;
}

/* ---------------------------------------------------------------- items */

sdc_status aug_filter_item(aug_filter *f, sdc_pipeline *p, const sdc_generate_opts *o,
                           const sdc_generate_row *row, const aug_item *it, const uint8_t *rgb,
                           aug_filter_result *r, sdc_err *err) {
    *r = (aug_filter_result){0};
    f->pending_index = -1;
    const kept_list *l = &f->kept[it->cls];
    int64_t n_earlier = 0;
    while (n_earlier < l->n && l->index[n_earlier] < it->index) n_earlier++;
    sdc_status s = SDC_OK;
    const float *src = it->src >= 0 ? source_embedding(f, it->cls, it->src, err, &s) : NULL;
    if (s) return s;
    const uint8_t *img = rgb;
    bool have_best = false;
    for (int t = 0; t < f->o.max_tries; t++) {
        uint32_t seed = it->seed + (uint32_t)t; /* the next seed, wrapping as the plan's seeds are 32-bit */
        if (t > 0) {
            sdc_generate_row one = *row;
            one.seed = seed;
            sdc_generate_opts go = *o;
            go.batch = 1;
            go.rows = &one;
            go.progress = NULL;
            sdc_generate_result_free(&f->regen);
            if ((s = sdc_generate(p, &go, &f->regen, err))) return s;
            img = f->regen.rgb;
            f->st.regenerated++;
        }
        sdc_image im = {.w = o->width, .h = o->height, .rgb = (uint8_t *)img};
        if ((s = embed(f, &im, f->cand, err))) return s;
        aug_filter_verdict v;
        aug_filter_judge(f->cand, it->cls, f->q, f->k, f->P, f->scale, f->o.threshold, f->o.dedup, src,
                         l->emb, n_earlier, &v);
        if (v.why == AUG_FILTER_KEEP) {
            *r = (aug_filter_result){.kept = true, .seed = seed, .rejected = t, .v = v, .rgb = img,
                                     .rejected_class = r->rejected_class, .rejected_dup = r->rejected_dup};
            memcpy(f->pending, f->cand, sizeof *f->cand * (size_t)f->P);
            f->pending_index = it->index;
            f->st.kept++;
            return SDC_OK;
        }
        f->st.rejected_attempts++;
        if (v.why == AUG_FILTER_CLASS) r->rejected_class++;
        else r->rejected_dup++;
        if (!have_best || v.class_prob > r->v.class_prob) r->v = v, r->seed = seed, have_best = true;
    }
    r->rejected = f->o.max_tries;
    f->st.exhausted++;
    return SDC_OK;
}

sdc_status aug_filter_commit(aug_filter *f, const aug_item *it, const char *path, sdc_err *err) {
    if (f->pending_index != it->index)
        return sdc_err_set(err, SDC_ERR_ARG, "filter: %s was not the item just judged", it->output);
    f->pending_index = -1;
    struct stat sb;
    emb_entry e = {.path = it->output};
    sdc_status s = stat(path, &sb) == 0 ? SDC_OK : sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
    if (!s) {
        e.bytes = sb.st_size;
        e.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
        s = sdc_sha256_file(path, e.sha256, err);
    }
    if (!s) s = cache_open(f, err);
    if (!s) s = emb_cache_append(&f->cache, f->pending, &e, 1, err);
    if (!s) s = kept_add(&f->kept[it->cls], f->P, it->index, f->pending, err);
    return s;
}

void aug_filter_manifest_fields(const aug_filter *f, const aug_filter_result *r, cJSON *j) {
    cJSON_AddStringToObject(j, "filter", "clip");
    cJSON_AddStringToObject(j, "filter_model_sha256", f->sha);
    cJSON_AddNumberToObject(j, "clip_score", r->v.clip_score);
    cJSON_AddNumberToObject(j, "class_prob", r->v.class_prob);
    cJSON_AddNumberToObject(j, "filter_threshold", f->o.threshold);
    if (r->v.dup_cos > -2) cJSON_AddNumberToObject(j, "dup_cos", r->v.dup_cos);
    else cJSON_AddNullToObject(j, "dup_cos");
    cJSON_AddNumberToObject(j, "filter_rejected", r->rejected);
    cJSON_AddNumberToObject(j, "filter_rejected_class", r->rejected_class);
    cJSON_AddNumberToObject(j, "filter_rejected_dup", r->rejected_dup);
    if (!r->kept) cJSON_AddStringToObject(j, "filter_reason", aug_filter_why_name(r->v.why));
}
