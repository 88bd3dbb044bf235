/* cmd_augment.c — sdc augment: grows an ImageFolder dataset with generated
 * images (boomerang img2img, prompt txt2img, textual-inversion), resumable
 * after a crash, shardable across a job array, one manifest line per image. */
#include "cli.h"
#include "gen_choice.h"
#include "progress.h"

#include "../augment/augment.h"
#include "../core/atomic_file.h"
#include "../core/sha256.h"
#include "../image/image.h"
#include "../pipeline/pipeline.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage =
    "usage: sdc augment DATASET --model M --method boomerang|prompt|textinv --out DIR [options]\n"
    "       (--method retrieve copies CLIP-retrieved pool images: sdc augment --method retrieve --help)\n\n"
    "DATASET is an ImageFolder: DATASET/<class>/*.png|jpg|jpeg. The output folder gets the\n"
    "same layout plus manifest.jsonl and plan.json; rerunning resumes.\n\n"
    "  --strength S[,S...]    boomerang strength (default 0.3); a list draws one per image\n"
    "  --per-image M          outputs per real image (boomerang; default 1)\n"
    "  --per-class N          outputs per class (prompt, textinv; default 1)\n"
    "  --prompt-template T    boomerang prompt, {name} = class name (default 'a photo of a {name}')\n"
    "  --templates simple|clip|clip7|FILE   prompt templates with {} (default simple)\n"
    "  --template-order roundrobin|random   (default roundrobin)\n"
    "  --embeddings DIR       textinv: DIR/<class folder>.safetensors per class\n"
    "  --init real            textinv: img2img from the real images (boomerang-style)\n"
    "  --class-names FILE     one display name per class folder, in sorted folder order\n"
    "  --classes a,b,c        only these class folders\n"
    "  --limit N              only the first N items of the plan\n"
    "  --negative TEXT  --steps N (25)  --sampler NAME (pndm)  --cfg X (7.5)\n"
    "  --size WxH | N (512)   --seed BASE (0)  --vocab PATH\n"
    "  --batch N              images per UNet call (1): consecutive items of one strength\n"
    "                         share calls; each keeps its own generator, so an item's\n"
    "                         image is the same at any batch size\n"
    "  --shard K/N | auto     items with index %% N == K; auto reads SLURM_ARRAY_TASK_ID/\n"
    "                         SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX + --shard-count N\n"
    "  --dry-run              print the plan's counts and cost, generate nothing\n"
    "  --preview GRID.png     after the run, a contact sheet: per class a few real images\n"
    "                         (framed) beside their augmentations\n"
    "  --low-memory           keep only the layer at work resident (slower)\n"
    "  -q, --quiet            no progress\n"
    CLI_BACKEND_USAGE CLI_GEN_CHOICE_USAGE;

typedef struct {
    const char *data, *model, *method, *out, *strength, *tmpl, *templates, *order, *emb, *init;
    const char *names, *classes, *negative, *sampler, *size, *vocab, *shard, *preview, *backend;
    long long per_image, per_class, limit, steps, seed, batch, shard_count;
    double cfg;
    bool dry, quiet, low_memory;
    cli_gen_choice gen;
} aug_args;

static int parse(int argc, char **argv, aug_args *a) {
    *a = (aug_args){.strength = "0.3", .tmpl = "a photo of a {name}", .templates = "simple",
                    .order = "roundrobin", .negative = "", .sampler = "pndm", .size = "512",
                    .vocab = "weights/bpe_simple_vocab_16e6.txt.gz", .per_image = 1,
                    .per_class = 1, .steps = 25, .batch = 1, .cfg = 7.5};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(f)) { printf(usage); return -1; }
        if (!strcmp(f, "-q") || !strcmp(f, "--quiet")) { a->quiet = true; continue; }
        if (!strcmp(f, "--dry-run")) { a->dry = true; continue; }
        if (!strcmp(f, "--low-memory")) { a->low_memory = true; continue; }
        int grc;
        if (cli_gen_choice_flag("augment", f, v, &a->gen, &grc)) {
            if (grc) return grc;
            i++;
            continue;
        }
        if (f[0] != '-') {
            if (a->data) return cli_usage_error("augment", "unexpected argument '%s'", f);
            a->data = f;
            continue;
        }
        const char **str = !strcmp(f, "--model") ? &a->model : !strcmp(f, "--method") ? &a->method
            : !strcmp(f, "--out") ? &a->out : !strcmp(f, "--strength") ? &a->strength
            : !strcmp(f, "--prompt-template") ? &a->tmpl : !strcmp(f, "--templates") ? &a->templates
            : !strcmp(f, "--template-order") ? &a->order : !strcmp(f, "--embeddings") ? &a->emb
            : !strcmp(f, "--init") ? &a->init : !strcmp(f, "--class-names") ? &a->names
            : !strcmp(f, "--classes") ? &a->classes : !strcmp(f, "--negative") ? &a->negative
            : !strcmp(f, "--sampler") ? &a->sampler : !strcmp(f, "--size") ? &a->size
            : !strcmp(f, "--vocab") ? &a->vocab : !strcmp(f, "--shard") ? &a->shard
            : !strcmp(f, "--preview") ? &a->preview : !strcmp(f, "--backend") ? &a->backend : NULL;
        struct { const char *name; long long *dst, lo, hi; } ints[] = {
            {"--per-image", &a->per_image, 1, 10000}, {"--per-class", &a->per_class, 1, 10000000},
            {"--limit", &a->limit, 1, INT32_MAX}, {"--steps", &a->steps, 1, 1000},
            {"--seed", &a->seed, 0, INT64_MAX}, {"--batch", &a->batch, 1, 64},
            {"--shard-count", &a->shard_count, 1, 100000}};
        bool known = str || !strcmp(f, "--cfg");
        for (size_t k = 0; !known && k < sizeof ints / sizeof *ints; k++) known = !strcmp(f, ints[k].name);
        if (!known) return cli_usage_error("augment", "unknown option '%s'", f);
        if (!v) return cli_usage_error("augment", "%s needs a value", f);
        i++;
        if (str) { *str = v; continue; }
        if (!strcmp(f, "--cfg")) {
            if (!cli_parse_float("augment", f, v, 0, 100, &a->cfg)) return EXIT_USAGE;
            continue;
        }
        for (size_t k = 0; k < sizeof ints / sizeof *ints; k++)
            if (!strcmp(f, ints[k].name) &&
                !cli_parse_int("augment", f, v, ints[k].lo, ints[k].hi, ints[k].dst))
                return EXIT_USAGE;
    }
    if (!a->data || !a->method || !a->out || (!a->model && !a->dry))
        return cli_usage_error("augment", "DATASET, --method, --out and --model are required");
    if (strcmp(a->method, "boomerang") && strcmp(a->method, "prompt") && strcmp(a->method, "textinv"))
        return cli_usage_error("augment", "--method must be boomerang, prompt, textinv or retrieve");
    if (!strcmp(a->method, "textinv") && !a->emb)
        return cli_usage_error("augment", "--method textinv needs --embeddings DIR");
    if (a->init && strcmp(a->init, "real"))
        return cli_usage_error("augment", "--init must be 'real'");
    if (!cli_backend_valid("augment", a->backend)) return EXIT_USAGE;
    if (strcmp(a->order, "roundrobin") && strcmp(a->order, "random"))
        return cli_usage_error("augment", "--template-order must be roundrobin or random");
    return EXIT_OK;
}

/* "0.25,0.5" into s[]; false (usage printed) on a bad value. */
static int parse_strengths(const char *list, double *s, int cap) {
    int n = 0;
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        double v;
        if (n == cap || !cli_parse_float("augment", "--strength", t, 0, 1, &v)) return -1;
        s[n++] = v;
    }
    return n ? n : -1;
}

static bool parse_size(const char *s, long long *w, long long *h) {
    char *end;
    *w = strtoll(s, &end, 10);
    if (*end == 'x') *h = strtoll(end + 1, &end, 10);
    else *h = *w;
    return !*end && *w >= 64 && *h >= 64 && *w <= 2048 && *h <= 2048 && *w % 8 == 0 && *h % 8 == 0;
}

static const char *simple_templates[] = {"a photo of the {}", "a HQ image of the {}"};

/* Templates of --templates: built-in, the setup step's files, or a user file. */
static sdc_status load_templates(const char *which, char ***out, int *n, sdc_err *err) {
    *out = NULL;
    *n = 0;
    if (!strcmp(which, "simple")) {
        *out = calloc(2, sizeof **out);
        for (int i = 0; *out && i < 2; i++) (*out)[(*n)++] = strdup(simple_templates[i]);
        return *out ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    const char *path = !strcmp(which, "clip") ? "weights/clip_templates.txt"
                       : !strcmp(which, "clip7") ? "weights/clip7_templates.txt" : which;
    FILE *f = fopen(path, "r");
    if (!f) return sdc_err_set(err, SDC_ERR_IO, "--templates: %s: %s", path, strerror(errno));
    char line[2048];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(*out, sizeof *v * (size_t)cap);
            if (!v) { fclose(f); return sdc_err_set(err, SDC_ERR_OOM, "out of memory"); }
            *out = v;
        }
        (*out)[(*n)++] = strdup(line);
    }
    fclose(f);
    return *n ? SDC_OK : sdc_err_set(err, SDC_ERR_FORMAT, "--templates: %s: no templates", path);
}

/* --shard K/N or auto (Slurm array, or Kubernetes Indexed Job). */
static int parse_shard(const aug_args *a, long long *k, long long *n) {
    *k = 0;
    *n = 1;
    if (!a->shard) return EXIT_OK;
    if (!strcmp(a->shard, "auto")) {
        const char *id = getenv("SLURM_ARRAY_TASK_ID"), *cnt = getenv("SLURM_ARRAY_TASK_COUNT");
        const char *mn = getenv("SLURM_ARRAY_TASK_MIN"), *jci = getenv("JOB_COMPLETION_INDEX");
        long long min = 0;
        if (id && cnt) {
            if (!cli_parse_int("augment", "SLURM_ARRAY_TASK_ID", id, 0, INT32_MAX, k) ||
                !cli_parse_int("augment", "SLURM_ARRAY_TASK_COUNT", cnt, 1, 100000, n) ||
                (mn && !cli_parse_int("augment", "SLURM_ARRAY_TASK_MIN", mn, 0, INT32_MAX, &min)))
                return EXIT_USAGE;
            *k -= min; /* arrays may start at 1 (--array=1-8) */
        } else if (jci) {
            if (!a->shard_count)
                return cli_usage_error("augment", "--shard auto with JOB_COMPLETION_INDEX needs --shard-count N");
            *n = a->shard_count;
            if (!cli_parse_int("augment", "JOB_COMPLETION_INDEX", jci, 0, INT32_MAX, k)) return EXIT_USAGE;
        } else {
            return cli_usage_error("augment", "--shard auto: neither SLURM_ARRAY_TASK_ID/COUNT nor JOB_COMPLETION_INDEX is set");
        }
    } else {
        char *end;
        *k = strtoll(a->shard, &end, 10);
        if (*end != '/' || (*n = strtoll(end + 1, &end, 10)) < 1 || *end || *k < 0)
            return cli_usage_error("augment", "--shard must be K/N or auto (got '%s')", a->shard);
    }
    if (*k >= *n) return cli_usage_error("augment", "--shard: index %lld not below count %lld", *k, *n);
    return EXIT_OK;
}

/* True when out is data or lies inside it: the outputs would be scanned as
 * classes and images on the next run. out need not exist yet. */
static bool out_inside_data(const char *data, const char *out) {
    char d[PATH_MAX], o[2 * PATH_MAX + 2], tmp[PATH_MAX];
    if (!realpath(data, d)) return false;
    if (!realpath(out, o)) {
        snprintf(tmp, sizeof tmp, "%s", out);
        for (size_t l = strlen(tmp); l > 1 && tmp[l - 1] == '/';) tmp[--l] = '\0'; /* "new/" */
        char *base = strrchr(tmp, '/'), parent[PATH_MAX];
        if (base) *base++ = '\0';
        if (!realpath(base ? (tmp[0] ? tmp : "/") : ".", parent)) return false;
        snprintf(o, sizeof o, "%s/%s", parent, base ? base : tmp);
    }
    size_t n = strlen(d);
    return !strncmp(o, d, n) && (o[n] == '\0' || o[n] == '/' || (n == 1 && d[0] == '/'));
}

/* A fresh run that failed before its first item (a bad --model, say) takes
 * back what it created: the folder is left as if it had never run. */
static void undo_fresh(const char *out, const aug_dataset *d, const char *mpath, const char *tag) {
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/plan.json", out);
    unlink(path);
    if (stat(mpath, &sb) == 0 && sb.st_size == 0) unlink(mpath);
    snprintf(path, sizeof path, "%s/.sdc-augment%s.lock", out, tag);
    unlink(path);
    for (int c = 0; c < d->n_classes; c++) {
        snprintf(path, sizeof path, "%s/%s", out, d->classes[c].folder);
        rmdir(path); /* only when empty */
    }
    rmdir(out);
}

int augment_run(const aug_args *a, const aug_dataset *d, const aug_plan *plan,
                sdc_embedding_set **sets, long long sk, long long sn, int w, int h);

int cmd_augment_retrieve(int argc, char **argv); /* cmd_augment_retrieve.c */

int cmd_augment(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++) /* --method retrieve has its own driver */
        if (!strcmp(argv[i], "--method") && !strcmp(argv[i + 1], "retrieve"))
            return cmd_augment_retrieve(argc, argv);
    aug_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    long long w, h, sk, sn;
    if (!parse_size(a.size, &w, &h))
        return cli_usage_error("augment", "--size must be N or WxH, multiples of 8 in [64, 2048] (got '%s')", a.size);
    if ((rc = parse_shard(&a, &sk, &sn))) return rc;
    if (out_inside_data(a.data, a.out))
        return cli_usage_error("augment", "--out %s is inside the dataset %s (its images would be "
                               "read back as real ones); choose a folder outside it", a.out, a.data);
    sdc_sampler_opts so;
    if (!sdc_sampler_from_name(a.sampler, &so))
        return cli_usage_error("augment", "unknown sampler '%s'", a.sampler);
    double strengths[64];
    int n_str = parse_strengths(a.strength, strengths, 64);
    if (n_str < 0) return EXIT_USAGE;
    aug_method m = !strcmp(a.method, "boomerang") ? AUG_BOOMERANG
                   : !strcmp(a.method, "prompt") ? AUG_PROMPT : AUG_TEXTINV;
    sdc_err err = {0};
    aug_dataset d;
    if (aug_dataset_scan(a.data, a.names, a.classes, &d, &err)) return cli_error("augment", &err);
    if (d.skipped && !a.quiet)
        fprintf(stderr, "sdc augment: skipped %d hidden or non-image files\n", d.skipped);
    char **tmpls = NULL;
    int n_tmpl = 0;
    sdc_status s = SDC_OK;
    if (m == AUG_BOOMERANG) {
        tmpls = calloc(1, sizeof *tmpls);
        if (tmpls && (tmpls[0] = strdup(a.tmpl))) n_tmpl = 1;
        else s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    } else {
        s = load_templates(a.templates, &tmpls, &n_tmpl, &err);
    }
    const char **words = calloc((size_t)d.n_classes, sizeof *words);
    sdc_embedding_set **sets = calloc((size_t)d.n_classes, sizeof *sets);
    if (!s && (!words || !sets)) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    for (int c = 0; !s && c < d.n_classes; c++) {
        words[c] = d.classes[c].name;
        if (m != AUG_TEXTINV) continue;
        /* The class token becomes the embedding file's trigger word. */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.safetensors", a.emb, d.classes[c].folder);
        /* The width comes from the file (the pipeline checks it against the
         * text encoder), so planning and --dry-run need no model. */
        int dim = 0;
        sdc_safetensors *st = sdc_safetensors_open(path, &err);
        const sdc_st_entry *e = st && sdc_safetensors_count(st) ? sdc_safetensors_entry(st, 0) : NULL;
        if (e && e->ndim >= 1) dim = (int)e->shape[e->ndim - 1];
        sdc_safetensors_close(st);
        if (!st) s = err.code;
        else if (!(s = sdc_embeddings_load(&sets[c], path, dim, &err)) &&
            !sdc_embeddings_at(sets[c], 0, &words[c], NULL, NULL, NULL))
            s = sdc_err_set(&err, SDC_ERR_FORMAT, "%s: no embedding", path);
    }
    aug_plan plan = {0};
    if (!s) {
        aug_plan_opts po = {.method = m, .from_real = m == AUG_BOOMERANG || a.init,
                            .base_seed = (uint64_t)a.seed, .per_image = (int)a.per_image,
                            .per_class = (int)a.per_class, .strengths = strengths,
                            .n_strengths = n_str, .templates = (const char *const *)tmpls,
                            .n_templates = n_tmpl, .random_order = !strcmp(a.order, "random"),
                            .words = words, .limit = a.limit};
        s = aug_plan_build(&d, &po, &plan, &err);
        if (!s && plan.n == 0) /* boomerang / --init real on folders without images */
            s = sdc_err_set(&err, SDC_ERR_ARG, "%s: no images in the class folders (.png, .jpg, "
                            ".jpeg) to start from", a.data);
    }
    rc = s ? cli_error("augment", &err) : augment_run(&a, &d, &plan, sets, sk, sn, (int)w, (int)h);
    aug_plan_free(&plan);
    for (int c = 0; sets && c < d.n_classes; c++) sdc_embeddings_free(sets[c]);
    free(sets);
    free(words);
    for (int i = 0; i < n_tmpl; i++) free(tmpls[i]);
    free(tmpls);
    aug_dataset_free(&d);
    return rc;
}

/* ---------------------------------------------------------------- running */

/* The manifest line of one item (cJSON escapes everything: pandas reads it). */
static char *manifest_line(const aug_args *a, const aug_dataset *d, const aug_item *it,
                           const char *model_name, const char *model_sha, int w, int h,
                           const char *error) {
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
    cJSON_AddStringToObject(j, "sampler", a->sampler);
    cJSON_AddNumberToObject(j, "cfg", a->cfg);
    cJSON_AddNumberToObject(j, "width", w);
    cJSON_AddNumberToObject(j, "height", h);
    cJSON_AddStringToObject(j, "model", model_name);
    if (model_sha) cJSON_AddStringToObject(j, "model_sha256", model_sha);
    else cJSON_AddNullToObject(j, "model_sha256");
    cJSON_AddStringToObject(j, "sdc_version", SDC_VERSION);
    cJSON_AddStringToObject(j, "status", error ? "failed" : "ok");
    if (error) cJSON_AddStringToObject(j, "error", error);
    else cJSON_AddNullToObject(j, "error");
    char *s = cJSON_PrintUnformatted(j), *line = s ? malloc(strlen(s) + 2) : NULL;
    if (line) sprintf(line, "%s\n", s);
    free(s);
    cJSON_Delete(j);
    return line;
}

static int unet_evals(const aug_args *a, const aug_item *it) {
    int steps = it->strength >= 0 ? (int)(a->steps * it->strength) : (int)a->steps;
    return steps * (a->cfg > 1 ? 2 : 1);
}

static void dry_run(const aug_args *a, const aug_dataset *d, const aug_plan *p, long long sk,
                    long long sn, int w, int h) {
    long long evals = 0, total = 0;
    printf("plan: %d items (%s, %dx%d, %lld steps, cfg %g)%s\n", p->n, a->method, w, h, a->steps,
           a->cfg, sn > 1 ? "" : "");
    for (int c = 0; c < d->n_classes; c++) {
        int n = 0;
        for (int i = 0; i < p->n; i++)
            if (p->items[i].cls == c && i % sn == sk) n++;
        printf("  %-24s %6d images\n", d->classes[c].folder, n);
    }
    for (int i = 0; i < p->n; i++)
        if (i % sn == sk) { total++; evals += unet_evals(a, &p->items[i]); }
    if (sn > 1) printf("shard %lld/%lld\n", sk, sn);
    printf("total: %lld images, %lld UNet evaluations\n", total, evals);
    if (!a->model || total == 0) return;
    /* A quick measurement: one UNet evaluation at this size. The VAE decoder
     * costs about 3 batch-1 UNet forwards per image (2.5 vs 0.8 TFLOP at
     * 512 px), the encoder about 1.4 (boomerang only). */
    sdc_err err = {0};
    sdc_backend *be = cli_backend_create("augment", a->backend, true, &err);
    sdc_pipeline *pl = be ? sdc_pipeline_open(a->model, a->vocab, be, &err) : NULL;
    int rows = a->cfg > 1 ? 2 : 1;
    double t = 0;
    if (pl && !sdc_pipeline_time_unet(pl, a->gen.precision, rows, w, h, &t, &err)) {
        double per_row = t / rows, vae = 3.0 * per_row + (!strcmp(a->method, "boomerang") ? 1.4 * per_row : 0);
        double est = (double)evals / rows * t + (double)total * vae;
        printf("estimate: %.1f s per UNet evaluation here, about %.0f s (%.1f h) in all\n", t, est,
               est / 3600);
    } else {
        printf("estimate: unavailable (%s)\n", err.msg);
    }
    sdc_pipeline_free(pl);
    sdc_backend_destroy(be);
}

/* plan.json's parameters: what, besides the item list, identifies the plan. */
static char *plan_params(const aug_args *a) {
    cJSON *pj = cJSON_CreateObject();
    cJSON_AddStringToObject(pj, "method", a->method);
    cJSON_AddNumberToObject(pj, "seed", (double)a->seed);
    char *ps = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);
    return ps;
}

/* Appends each finished item's manifest line: only after its PNG is durable,
 * and for a failed item too (the run goes on; a rerun retries it). A
 * manifest write or fsync error stops the run (the line taken back, the PNG
 * removed): the item is redone on resume. */
typedef struct {
    const aug_args *a;
    const aug_dataset *d;
    const char *model_name, *model_sha;
    int w, h, fd, done, failed;
    cli_progress pr;
    sdc_err *err;
} recorder;

static sdc_status record(recorder *r, const aug_item *it, const char *error) {
    char *line = manifest_line(r->a, r->d, it, r->model_name, r->model_sha, r->w, r->h, error);
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

int augment_run(const aug_args *a, const aug_dataset *d, const aug_plan *plan,
                sdc_embedding_set **sets, long long sk, long long sn, int w, int h) {
    if (a->dry) { dry_run(a, d, plan, sk, sn, w, h); return EXIT_OK; }
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
    char *pp = plan_params(a);
    snprintf(path, sizeof path, "%s/plan.json", a->out);
    sdc_status s = aug_plan_check(path, plan, pp, &err);
    free(pp);
    if (!s) s = aug_manifest_load(mpath, a->out, &man, &err);
    if (!s) aug_remove_temps(a->out, plan, (int)sk, (int)sn);
    if (!s && (fd = open(mpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
        s = sdc_err_set(&err, SDC_ERR_IO, "%s: %s", mpath, strerror(errno));
    for (int i = 0; !s && i < plan->n; i++)
        if (i % sn == sk && !aug_manifest_has(&man, plan->items[i].output)) todo++;
    char sha[65] = "", model_name[1024];
    const char *model_sha = NULL;
    snprintf(model_name, sizeof model_name, "%s", a->model);
    size_t ml = strlen(model_name);
    while (ml > 1 && model_name[ml - 1] == '/') model_name[--ml] = '\0';
    char *base = basename(model_name), *dot = strrchr(base, '.');
    if (dot && !strcmp(dot, ".safetensors")) *dot = '\0';
    struct stat st;
    if (!s && todo && stat(a->model, &st) == 0 && S_ISREG(st.st_mode)) {
        /* Hash once per run (slow for 2 GB, but names the exact weights). */
        if (!(s = sdc_sha256_file(a->model, sha, &err))) model_sha = sha;
    }
    if (!s && todo && !(be = cli_backend_create("augment", a->backend, a->quiet, &err))) s = err.code;
    if (!s && todo && !(p = sdc_pipeline_open(a->model, a->vocab, be, &err))) s = err.code;
    if (p) p->low_memory = a->low_memory;
    int B = (int)a->batch;
    size_t cap = (size_t)3 * w * h;
    sdc_generate_row *rows = calloc((size_t)B, sizeof *rows);
    const aug_item **group = calloc((size_t)B, sizeof *group);
    if (!s && todo && (!(init = malloc(sizeof *init * cap * B)) || !rows || !group))
        s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    char hash10[11] = ""; /* A1111's short hash: 10 hex digits */
    if (model_sha) memcpy(hash10, model_sha, 10);
    recorder rec = {.a = a, .d = d, .model_name = base, .model_sha = model_sha, .w = w, .h = h,
                    .fd = fd, .err = &err};
    if (!s && todo) cli_progress_start(&rec.pr, "augment", "img", todo, a->quiet);
    /* Batches are runs of consecutive pending items with one strength (rows
     * share the schedule), so the manifest keeps the plan's order. Every row
     * has its own generator: an item's image does not depend on --batch. */
    for (int i = 0; !s && i < plan->n;) {
        int g = 0;
        for (; !s && i < plan->n && g < B; i++) {
            const aug_item *it = &plan->items[i];
            if (i % sn != sk || aug_manifest_has(&man, it->output)) continue;
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
                    s = record(&rec, it, ie.msg);
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
                               .strength = (float)group[0]->strength};
        o.prompt = group[0]->prompt;
        cli_gen_choice_apply(&a->gen, &o);
        sdc_sampler_from_name(a->sampler, &o.sampler);
        o.sampler.steps = (int)a->steps;
        sdc_generate_result res = {0};
        sdc_status is = sdc_generate(p, &o, &res, &ie);
        for (int j = 0; !s && j < g; j++) {
            const aug_item *it = group[j];
            sdc_err je = ie;
            sdc_status js = is;
            if (!js) {
                sdc_gen_meta gm = {.prompt = it->prompt, .negative_prompt = a->negative,
                                   .steps = (int)a->steps, .sampler = a->sampler,
                                   .cfg_scale = a->cfg, .seed = it->seed, .has_seed = true,
                                   .width = w, .height = h, .model = base,
                                   .model_hash = model_sha ? hash10 : NULL,
                                   .img2img = it->source != NULL,
                                   .denoising_strength = it->strength,
                                   .rng = cli_gen_choice_rng_infotext(&a->gen)};
                char *params = sdc_a1111_parameters(&gm);
                snprintf(path, sizeof path, "%s/%s", a->out, it->output);
                js = params ? sdc_image_save_png(path, res.rgb + (size_t)j * cap, w, h, params, &je)
                            : sdc_err_set(&je, SDC_ERR_OOM, "out of memory");
                free(params);
            }
            s = record(&rec, it, js ? je.msg : NULL);
        }
        sdc_generate_result_free(&res);
    }
    failed = rec.failed;
    done = rec.done;
    free(rows);
    free(group);
    if (!s && todo) cli_progress_end(&rec.pr);
    if (!s && a->preview && aug_preview(a->preview, a->data, a->out, d, plan, &err))
        s = err.code;
    int mine = 0;
    for (int i = 0; i < plan->n; i++) mine += i % sn == sk;
    free(init);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
    if (fd >= 0 && close(fd) && !s) s = sdc_err_set(&err, SDC_ERR_IO, "%s: close: %s", mpath, strerror(errno));
    if (s && fresh && done == 0) undo_fresh(a->out, d, mpath, tag); /* still holding the lock */
    close(lock);
    aug_manifest_free(&man);
    if (s) return cli_error("augment", &err);
    if (!a->quiet) fprintf(stderr, "sdc augment: %d generated, %d already done%s\n", done - failed,
                           mine - todo, sn > 1 ? " (this shard)" : "");
    if (failed) {
        fprintf(stderr, "sdc augment: %d items failed (see %s)\n", failed, mpath);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* The templates of --templates, for cmd_augment_retrieve.c's text queries. */
sdc_status augment_load_templates(const char *which, char ***out, int *n, sdc_err *err) {
    return load_templates(which, out, n, err);
}
