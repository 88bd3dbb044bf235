/* plan.c — the augmentation plan: every item's seed, strength, prompt and
 * output name derived only from (base seed, method, class folder, source
 * file, output number), so a subset, a shard or a rerun makes the same image. */
#include "augment.h"

#include "../core/atomic_file.h"
#include "../core/sha256.h"
#include "../eval/zeroshot.h"
#include "../image/image.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
    it->prompt = zs_fill(o->templates[t], o->words[cls]);
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

sdc_status aug_plan_check(const char *out, const aug_plan *plan, const char *params, bool force,
                          char *note, size_t note_cap, sdc_err *err) {
    if (note_cap) note[0] = '\0';
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.sdc-plan.lock", out);
    int lock = sdc_lock_file(path, true); /* shards check and replace the plan one at a time */
    if (lock == -1) return sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
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
            if (note_cap) snprintf(note, note_cap, "%s: %s", path, why);
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


/* ---------------------------------------------------------------- templates */

static const char *simple_templates[] = {"a photo of the {}", "a HQ image of the {}"};


sdc_status aug_load_templates(const char *which, char ***out, int *n, sdc_err *err) {
    *out = NULL;
    *n = 0;
    if (!strcmp(which, "simple")) {
        *out = calloc(2, sizeof **out);
        for (int i = 0; *out && i < 2; i++)
            if (((*out)[*n] = strdup(simple_templates[i]))) (*n)++;
        return *out && *n == 2 ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    const char *path = !strcmp(which, "clip") ? "weights/clip_templates.txt"
                       : !strcmp(which, "clip7") ? "weights/clip7_templates.txt" : which;
    FILE *f = fopen(path, "r");
    if (!f) return sdc_err_set(err, SDC_ERR_IO, "--templates: %s: %s", path, strerror(errno));
    char line[2048];
    int cap = 0;
    sdc_status s = SDC_OK;
    while (!s && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(*out, sizeof *v * (size_t)cap);
            if (!v) { s = sdc_err_set(err, SDC_ERR_OOM, "out of memory"); break; }
            *out = v;
        }
        if (!((*out)[*n] = strdup(line))) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        else (*n)++;
    }
    fclose(f);
    if (!s && !*n) s = sdc_err_set(err, SDC_ERR_FORMAT, "--templates: %s: no templates", path);
    return s;
}

