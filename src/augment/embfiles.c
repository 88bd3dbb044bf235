/* embfiles.c — the cache update of embfiles.h: stat, hash, reuse, decode,
 * preprocess, embed in batches, append. */
#include "embfiles.h"

#include "../core/sha256.h"
#include "../image/clip_preprocess.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct run {
    emb_cache *c;
    const emb_encoder *enc;
    const emb_update_hooks *h;
    emb_update_stats *st;
    int64_t *rows;      /* caller's, or NULL */
    int P, S;
    /* The pending batch: entries (with their rows) waiting to be appended;
     * those that need the model have their pixels in px at slot[i] >= 0. */
    emb_entry *pend;
    int64_t *who;       /* caller's index of each pending entry */
    float *emb, *px;    /* [cap, P] rows; [batch, 3, S, S] pixels */
    int *slot;
    int n_pend, n_px, cap;
} run;

static void skipped(const run *r, const char *why) {
    if (r->h && r->h->skipped) r->h->skipped(r->h->ctx, why);
    r->st->failed++;
}

static void hex(const uint8_t d[32], char out[65]) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Embeds the pending pixels, then appends the batch in one durable write. */
static sdc_status flush(run *r, sdc_err *err) {
    if (!r->n_pend) return SDC_OK;
    sdc_status s = SDC_OK;
    float *out = r->n_px ? malloc(sizeof *out * (size_t)r->n_px * r->P) : NULL;
    if (r->n_px && !out) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (r->n_px) {
        sdc_exec ex = sdc_exec_begin(r->enc->be, r->enc->arena, err);
        s = sdc_clip_encode_image(&ex, r->enc->m, r->px, r->n_px, true, out, NULL);
    }
    if (s == SDC_ERR_NUMERIC) {
        /* One bad image spoils the batch: redo them one at a time and drop
         * the entries of the images that fail. */
        s = SDC_OK;
        size_t plane = (size_t)3 * r->S * r->S;
        for (int j = 0; j < r->n_px && !s; j++) {
            sdc_err e1 = {0};
            sdc_exec ex = sdc_exec_begin(r->enc->be, r->enc->arena, &e1);
            sdc_status one = sdc_clip_encode_image(&ex, r->enc->m, r->px + plane * j, 1, true,
                                                   out + (size_t)j * r->P, NULL);
            if (one != SDC_ERR_NUMERIC) {
                if (one) { *err = e1; s = one; }
                continue;
            }
            for (int i = 0; i < r->n_pend; i++)
                if (r->slot[i] == j) {
                    char why[SDC_ERR_MSG_MAX + 512];
                    snprintf(why, sizeof why, "%s: %s", r->pend[i].path, e1.msg);
                    skipped(r, why);
                    r->slot[i] = -2;
                }
        }
    }
    int k = r->n_pend;
    if (!s) { /* model rows into place, dropped entries out */
        k = 0;
        for (int i = 0; i < r->n_pend; i++) {
            if (r->slot[i] == -2) { free(r->pend[i].path); continue; }
            const float *src = r->slot[i] >= 0 ? out + (size_t)r->slot[i] * r->P : r->emb + (size_t)i * r->P;
            memmove(r->emb + (size_t)k * r->P, src, sizeof *r->emb * r->P);
            r->pend[k] = r->pend[i];
            r->who[k++] = r->who[i];
        }
        int64_t first = r->c->n;
        s = emb_cache_append(r->c, r->emb, r->pend, k, err);
        for (int i = 0; !s && r->rows && i < k; i++) r->rows[r->who[i]] = first + i;
    }
    free(out);
    for (int i = 0; i < k; i++) free(r->pend[i].path);
    r->n_pend = r->n_px = 0;
    return s;
}

/* Queues one file that is new or changed: content already in the cache (or
 * earlier in this batch) reuses that row; anything else is decoded and
 * preprocessed for the next model call. */
static sdc_status queue(run *r, int64_t who, const char *rel, const struct stat *sb, sdc_err *err) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", r->c->root, rel) >= (int)sizeof path) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "%.*s: path too long", PATH_MAX, rel);
        skipped(r, why);
        return SDC_OK;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    sdc_err ie = {0};
    emb_entry e = {.mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec};
    sdc_status is = sdc_read_file_capped(path, SDC_IMAGE_MAX_FILE_BYTES, &buf, &len, &ie);
    if (!is) {
        sdc_sha256 h;
        uint8_t d[32];
        sdc_sha256_init(&h);
        sdc_sha256_update(&h, buf, len);
        sdc_sha256_final(&h, d);
        hex(d, e.sha256);
        e.bytes = (int64_t)len;
    }
    int64_t cached = is ? -1 : emb_cache_find_sha(r->c, e.sha256);
    int shared = -1; /* a pending entry with the same content */
    for (int i = 0; !is && cached < 0 && i < r->n_pend && shared < 0; i++)
        if (!strcmp(r->pend[i].sha256, e.sha256)) shared = i;
    float *px = r->px + (size_t)r->n_px * 3 * r->S * r->S;
    if (!is && cached < 0 && shared < 0) {
        if (!r->enc) {
            free(buf);
            return sdc_err_set(err, SDC_ERR_ARG, "%s is not in the feature cache %s and no CLIP model "
                               "was given to embed it (--clip)", path, r->c->dir);
        }
        sdc_image im;
        if (!(is = sdc_image_decode(buf, len, path, NULL, &im, &ie))) {
            const sdc_clip_config *cfg = &r->enc->m->cfg;
            is = sdc_clip_preprocess(&im, cfg->resize, r->S, cfg->mean, cfg->std, NULL, px, &ie);
            sdc_image_free(&im);
        }
    }
    free(buf);
    if (is) {
        skipped(r, ie.msg);
        return SDC_OK;
    }
    int i = r->n_pend;
    r->pend[i] = e;
    r->who[i] = who;
    if (!(r->pend[i].path = strdup(rel))) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    r->n_pend++;
    if (cached >= 0) {
        r->slot[i] = -1;
        if (emb_cache_row(r->c, cached, r->emb + (size_t)i * r->P, err)) return err->code;
        r->st->reused++;
    } else if (shared >= 0) {
        r->slot[i] = r->slot[shared];
        if (r->slot[i] < 0) memcpy(r->emb + (size_t)i * r->P, r->emb + (size_t)shared * r->P, sizeof *r->emb * r->P);
        r->st->reused++;
    } else {
        r->slot[i] = r->n_px++;
        r->st->embedded++;
    }
    if ((r->enc && r->n_px == r->enc->batch) || r->n_pend == r->cap) return flush(r, err);
    return SDC_OK;
}

sdc_status emb_cache_update(emb_cache *c, const emb_encoder *enc, const char *const *paths,
                            int64_t n, const emb_update_hooks *hooks, int64_t *rows,
                            emb_update_stats *st, sdc_err *err) {
    emb_update_stats local;
    if (!st) st = &local;
    *st = (emb_update_stats){0};
    int batch = enc && enc->batch > 0 ? enc->batch : 1;
    run r = {.c = c, .enc = enc, .h = hooks, .st = st, .rows = rows, .P = c->dim,
             .S = enc ? enc->m->cfg.vision.image_size : 1, .cap = batch * 8 > 64 ? batch * 8 : 64};
    if (enc && enc->m->cfg.proj != c->dim)
        return sdc_err_set(err, SDC_ERR_ARG, "%s holds %d-d embeddings; the model gives %d-d", c->dir, c->dim,
                           enc->m->cfg.proj);
    r.pend = calloc((size_t)r.cap, sizeof *r.pend);
    r.who = calloc((size_t)r.cap, sizeof *r.who);
    r.slot = calloc((size_t)r.cap, sizeof *r.slot);
    r.emb = malloc(sizeof *r.emb * (size_t)r.cap * r.P);
    r.px = malloc(sizeof *r.px * (size_t)batch * 3 * r.S * r.S);
    sdc_status s = SDC_OK;
    if (!r.pend || !r.who || !r.slot || !r.emb || !r.px) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int64_t i = 0; !s && i < n; i++) {
        if (rows) rows[i] = -1;
        char path[PATH_MAX];
        struct stat sb;
        int64_t row = emb_cache_find(c, paths[i]);
        errno = 0;
        bool ok = snprintf(path, sizeof path, "%s/%s", c->root, paths[i]) < (int)sizeof path &&
                  stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
        if (!ok) {
            char why[PATH_MAX + 64];
            snprintf(why, sizeof why, "%.*s: %s", PATH_MAX, path, errno ? strerror(errno) : "not a regular file");
            skipped(&r, why);
        } else if (row >= 0 && c->entries[row].bytes == sb.st_size &&
                   c->entries[row].mtime_ns == (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec) {
            if (rows) rows[i] = row;
            st->unchanged++;
        } else {
            s = queue(&r, i, paths[i], &sb, err);
        }
        if (hooks && hooks->progress) hooks->progress(hooks->ctx, i + 1, n);
    }
    if (!s) s = flush(&r, err);
    for (int i = 0; i < r.n_pend; i++) free(r.pend[i].path);
    free(r.pend), free(r.who), free(r.slot), free(r.emb), free(r.px);
    return s;
}
