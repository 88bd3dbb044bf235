/* plan.c — the augmentation plan: every item's seed, strength, prompt and
 * output name derived only from (base seed, method, class folder, source
 * file, output number), so a subset, a shard or a rerun makes the same image. */
#include "augment.h"

#include "../core/atomic_file.h"
#include "../core/sha256.h"
#include "../image/image.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *aug_method_name(aug_method m) {
    return m == AUG_BOOMERANG ? "boomerang" : m == AUG_PROMPT ? "prompt" : "textinv";
}

uint32_t aug_item_seed(uint64_t base, const char *method, const char *cls, const char *source,
                       int k) {
    char num[32];
    sdc_sha256 s;
    uint8_t d[32];
    sdc_sha256_init(&s);
    /* NUL separators keep ("ab","c") and ("a","bc") apart. */
    sdc_sha256_update(&s, "sdc-augment-v1", 15);
    snprintf(num, sizeof num, "%llu", (unsigned long long)base);
    sdc_sha256_update(&s, num, strlen(num) + 1);
    sdc_sha256_update(&s, method, strlen(method) + 1);
    sdc_sha256_update(&s, cls, strlen(cls) + 1);
    sdc_sha256_update(&s, source, strlen(source) + 1);
    snprintf(num, sizeof num, "%d", k);
    sdc_sha256_update(&s, num, strlen(num));
    sdc_sha256_final(&s, d);
    return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

/* tmpl with each "{}" or "{name}" replaced by word. */
static char *fill(const char *tmpl, const char *word) {
    size_t cap = strlen(tmpl) + 1, wl = strlen(word);
    for (const char *p = tmpl; (p = strchr(p, '{')); p++) cap += wl;
    char *out = malloc(cap), *o = out;
    if (!out) return NULL;
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{}", 2)) { memcpy(o, word, wl); o += wl; p += 2; }
        else if (!strncmp(p, "{name}", 6)) { memcpy(o, word, wl); o += wl; p += 6; }
        else *o++ = *p++;
    }
    *o = '\0';
    return out;
}

static sdc_status add_item(aug_plan *p, int *cap, const aug_dataset *d, const aug_plan_opts *o,
                           int cls, int src, int k, sdc_err *err) {
    if (p->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        aug_item *v = realloc(p->items, sizeof *v * (size_t)*cap);
        if (!v) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        p->items = v;
    }
    const aug_class *c = &d->classes[cls];
    const char *method = aug_method_name(o->method), *file = src >= 0 ? c->files[src] : "gen";
    aug_item *it = &p->items[p->n];
    *it = (aug_item){.index = p->n, .cls = cls, .src = src, .k = k, .strength = -1};
    it->seed = aug_item_seed(o->base_seed, method, c->folder, file, k);
    if (src >= 0) /* a list of strengths: one drawn per item, from its own seed */
        it->strength = o->strengths[o->n_strengths > 1 ? (it->seed >> 8) % (uint32_t)o->n_strengths : 0];
    /* Round robin counts over the class's outputs; random draws from the seed's top bits. */
    int t = o->random_order ? (int)((it->seed >> 16) % (uint32_t)o->n_templates)
                            : (src >= 0 ? src * (o->per_image) + k : k) % o->n_templates;
    it->prompt = fill(o->templates[t], o->words[cls]);
    char stem[1024];
    snprintf(stem, sizeof stem, "%s", file);
    char *dot = src >= 0 ? strrchr(stem, '.') : NULL;
    if (dot) *dot = '\0';
    size_t n = strlen(c->folder) + strlen(stem) + strlen(method) + 48;
    it->output = malloc(n);
    if (it->output) snprintf(it->output, n, "%s/%s-%s-%d-%08x.png", c->folder, method, stem, k, it->seed);
    if (src >= 0) {
        n = strlen(c->folder) + strlen(file) + 2;
        if ((it->source = malloc(n))) snprintf(it->source, n, "%s/%s", c->folder, file);
    }
    p->n++;
    if (!it->prompt || !it->output || (src >= 0 && !it->source))
        return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    return SDC_OK;
}

sdc_status aug_plan_build(const aug_dataset *d, const aug_plan_opts *o, aug_plan *p,
                          sdc_err *err) {
    *p = (aug_plan){0};
    int cap = 0;
    sdc_status s = SDC_OK;
    if (o->n_templates < 1 || (o->from_real && o->n_strengths < 1))
        return sdc_err_set(err, SDC_ERR_ARG, "no prompt templates or strengths");
    for (int c = 0; !s && c < d->n_classes; c++) {
        if (o->from_real) {
            for (int f = 0; !s && f < d->classes[c].n_files; f++)
                for (int k = 0; !s && k < o->per_image; k++) s = add_item(p, &cap, d, o, c, f, k, err);
        } else {
            for (int k = 0; !s && k < o->per_class; k++) s = add_item(p, &cap, d, o, c, -1, k, err);
        }
    }
    /* --limit cuts the ordered plan, so its items are the first of the full plan. */
    if (!s && o->limit > 0 && p->n > o->limit) {
        for (int i = (int)o->limit; i < p->n; i++) {
            free(p->items[i].prompt); free(p->items[i].output); free(p->items[i].source);
        }
        p->n = (int)o->limit;
    }
    if (s) aug_plan_free(p);
    return s;
}

bool aug_plan_in_shard(const aug_plan *p, int i, long long k, long long n) {
    return (p->shard_by_class ? p->items[i].cls : i) % n == k;
}

void aug_plan_free(aug_plan *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->items[i].prompt);
        free(p->items[i].output);
        free(p->items[i].source);
    }
    free(p->items);
    *p = (aug_plan){0};
}

char *aug_plan_json(const aug_plan *p, const char *params_json) {
    cJSON *root = cJSON_CreateObject(), *outs = cJSON_CreateArray();
    cJSON *params = params_json ? cJSON_Parse(params_json) : NULL;
    if (!root || !outs) { cJSON_Delete(root); cJSON_Delete(outs); cJSON_Delete(params); return NULL; }
    cJSON_AddNumberToObject(root, "version", 1);
    if (params) cJSON_AddItemToObject(root, "parameters", params);
    cJSON_AddNumberToObject(root, "items", p->n);
    for (int i = 0; i < p->n; i++) cJSON_AddItemToArray(outs, cJSON_CreateString(p->items[i].output));
    cJSON_AddItemToObject(root, "outputs", outs);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

sdc_status aug_plan_check(const char *path, const aug_plan *p, const char *params_json,
                          sdc_err *err) {
    char *want = aug_plan_json(p, params_json);
    if (!want) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    uint8_t *have = NULL;
    size_t len = 0;
    sdc_status s = SDC_OK;
    if (access(path, F_OK) == 0) {
        sdc_err e2 = {0};
        if (sdc_read_file_capped(path, (size_t)1 << 30, &have, &len, &e2) ||
            len != strlen(want) || memcmp(have, want, len))
            s = sdc_err_set(err, SDC_ERR_ARG, "%s: the output folder holds a different plan "
                            "(other arguments?); use the same arguments or a new --out", path);
    } else {
        s = sdc_write_file_atomic(path, want, strlen(want), err);
    }
    free(have);
    free(want);
    return s;
}
