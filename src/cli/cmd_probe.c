/* cmd_probe.c — sdc probe: does augmentation help this dataset? A linear
 * probe (multinomial logistic regression on CLIP image features) trained on
 * the real images alone and on the real images plus each output folder's
 * images, scored on held-out real images never seen by a generator: top-1
 * ± std over seeds and the gain over real-only (src/eval/probe.h). */
#include "cli.h"
#include "eval_common.h"

#include "../eval/probe.h"

#include <stdlib.h>
#include <string.h>

static const cli_spec spec = {
    "probe", "DATASET --aug OUT [OUT...] [options]",
    "Trains a linear probe (L2-regularised multinomial logistic regression, L-BFGS) on CLIP\n"
    "image features of DATASET's real images, and again with each OUT's images (sdc augment\n"
    "output folders) added, and scores every probe on the same held-out real images: top-1 ±\n"
    "std over seeds, and the gain over real-only (paired per seed). Held-out images are never\n"
    "seen by a generator: an output made from one (its manifest's source), or a copy of one, is\n"
    "left out of training, and the training sets are checked for it. Features are kept in a\n"
    "cache per folder, so a rerun after more augmentation embeds only the new images.",
    NULL};

#define MAX_OUTS 64

typedef struct probe_args {
    const char *data, *clip, *cache, *names, *aug;
    const char *outs[MAX_OUTS];
    int n_outs;
    double val, C;
    long long seeds, seed, batch, max_iter;
    bool json, quiet;
} probe_args;

/* --aug takes one or more folders: they are taken out of argv here (up to
 * the next option), the rest goes to the shared parser. */
static int take_aug(int *argc, char **argv, probe_args *a) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--aug")) {
            if (!strcmp(argv[i], "--")) { /* the rest is positional */
                while (i < *argc) argv[out++] = argv[i++];
                break;
            }
            argv[out++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc || argv[i + 1][0] == '-') return cli_usage_error("probe", "--aug needs a folder");
        while (i + 1 < *argc && argv[i + 1][0] != '-') {
            if (a->n_outs == MAX_OUTS) return cli_usage_error("probe", "--aug: at most %d folders", MAX_OUTS);
            a->outs[a->n_outs++] = argv[++i];
        }
    }
    *argc = out;
    argv[out] = NULL;
    return EXIT_OK;
}

static int parse_probe(int argc, char **argv, probe_args *a) {
    *a = (probe_args){.val = 0.2, .C = 1.0, .seeds = 5, .batch = 8, .max_iter = 1000};
    int rc = take_aug(&argc, argv, a);
    if (rc) return rc;
    cli_opt opts[] = {
        {"aug", 0, CLI_STRING, &a->aug, .metavar = "OUT [OUT...]",
         .help = "output folders of sdc augment (each with manifest.jsonl)"},
        {"val-split", 0, CLI_FLOAT, &a->val, .lo = 0.001, .hi = 0.999, .metavar = "F",
         .help = "fraction of each class held out (default 0.2)"},
        {"seeds", 0, CLI_INT, &a->seeds, .lo = 1, .hi = 1000, .metavar = "N", .help = "splits (default 5)"},
        {"seed", 's', CLI_INT, &a->seed, .lo = 0, .hi = (double)INT64_MAX, .metavar = "S",
         .help = "base of the splits (default 0)"},
        {"C", 0, CLI_FLOAT, &a->C, .lo = 1e-12, .hi = 1e12, .metavar = "X",
         .help = "inverse L2 strength, scikit-learn's C (default 1)"},
        {"max-iter", 0, CLI_INT, &a->max_iter, .lo = 1, .hi = 1000000, .metavar = "N",
         .help = "L-BFGS iterations per fit (default 1000)"},
        {"model|clip", 'm', CLI_STRING, &a->clip, .metavar = "M",
         .help = "the CLIP model (default: the one DATASET's cached features were made\n"
                 "with; then every image must already be cached)"},
        {"cache", 0, CLI_STRING, &a->cache, .metavar = "DIR",
         .help = "feature caches (default $XDG_CACHE_HOME/sdc/features or\n"
                 "~/.cache/sdc/features; one sdc embed cache per folder)"},
        {"class-names", 0, CLI_STRING, &a->names, .metavar = "FILE",
         .help = "one display name per class folder, in sorted folder order"},
        {"batch", 'b', CLI_INT, &a->batch, .lo = 1, .hi = 256, .metavar = "N",
         .help = "images per CLIP call when embedding (default 8)"},
        {"json", 0, CLI_FLAG, &a->json, .help = "the table as JSON on stdout"},
        CLI_QUIET(&a->quiet),
        CLI_END};
    const char *pos[1];
    cli_positional pp = {pos, 1, 0, "DATASET"};
    if ((rc = cli_parse(&spec, opts, argc, argv, &pp))) return rc;
    if (!pp.n_pos) return cli_usage_error("probe", "DATASET is required");
    a->data = pos[0];
    if (!a->n_outs) return cli_usage_error("probe", "--aug OUT is required (the outputs to judge)");
    for (int j = 0; j < a->n_outs; j++)
        if (!strcmp(a->outs[j], a->data)) return cli_usage_error("probe", "--aug %s is DATASET itself", a->outs[j]);
    return EXIT_OK;
}

static void on_fit(void *ctx, int done, int total) { cli_progress_update(ctx, done); }

/* Can every class give both sides of the split an image? Asked of the
 * folder listing alone, so a hopeless run stops before embedding. */
static sdc_status split_possible(const probe_args *a, sdc_err *err) {
    aug_dataset d;
    sdc_status s = aug_dataset_scan(a->data, a->names, NULL, &d, err);
    if (s) return s;
    int64_t n = 0;
    for (int c = 0; c < d.n_classes; c++) n += d.classes[c].n_files;
    int *cls = malloc(sizeof *cls * (size_t)(n + 1));
    unsigned char *is_val = malloc((size_t)n + 1);
    const char **names = malloc(sizeof *names * (size_t)d.n_classes);
    if (!cls || !is_val || !names) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int c = 0, i = 0; !s && c < d.n_classes; c++) {
        names[c] = d.classes[c].folder;
        for (int f = 0; f < d.classes[c].n_files; f++) cls[i++] = c;
    }
    probe_input in = {.k = d.n_classes, .class_names = names, .real_cls = cls, .n_real = n};
    if (!s && (s = probe_split(&in, a->val, (uint64_t)a->seed, 0, is_val, err))) sdc_err_wrap(err, "%s", a->data);
    free(cls), free(is_val), free(names);
    aug_dataset_free(&d);
    return s;
}

/* s, then spaces up to width columns (counting UTF-8 characters, not bytes: "±"). */
static void cell(const char *s, int width, bool right) {
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) w += (*p & 0xC0) != 0x80;
    if (right) printf("%*s%s", width > w ? width - w : 0, "", s);
    else printf("%s%*s", s, width > w ? width - w : 0, "");
}

static void print_table(const probe_args *a, const eval_model *em, const feat_set *fs, const probe_result *r) {
    printf("sdc probe: %s: %d classes, %lld real images; %lld seeds, %g held out (%lld images per seed), "
           "C %g; %d-d features of %s (sha256 %.12s)\n", a->data, fs->data.n_classes, (long long)fs->real.n,
           a->seeds, a->val, (long long)r->n_val, a->C, fs->dim, em->name, em->sha);
    cell("method", 28, false), cell("train", 8, true), cell("top-1 (mean ± std)", 22, true);
    cell("gain over real only", 24, true), printf("\n");
    for (int j = 0; j < r->n_methods; j++) {
        const probe_method *m = &r->m[j];
        char train[32], top1[64], gain[64] = "";
        snprintf(train, sizeof train, "%.0f", m->train_mean);
        snprintf(top1, sizeof top1, "%.2f ± %.2f %%", 100 * m->top1_mean, 100 * m->top1_std);
        if (j) snprintf(gain, sizeof gain, "%+.2f ± %.2f", 100 * m->gain_mean, 100 * m->gain_std);
        cell(m->label, 28, false), cell(train, 8, true), cell(top1, 22, true), cell(gain, 24, true), printf("\n");
    }
    for (int j = 1; j < r->n_methods; j++) {
        const probe_method *m = &r->m[j];
        if (m->left_out_source > 0 || m->left_out_copy > 0)
            printf("  %s: per seed %.1f outputs left out of training (made from held-out images), %.1f (copies "
                   "of held-out images)\n", m->label, m->left_out_source, m->left_out_copy);
    }
    for (int j = 0; j < r->n_methods; j++)
        if (r->m[j].unconverged)
            printf("  %s: %d fits stopped at --max-iter %lld before converging\n", r->m[j].label, r->m[j].unconverged,
                   a->max_iter);
}

static void print_json(const probe_args *a, const eval_model *em, const feat_set *fs, const probe_result *r) {
    printf("{\"format\":\"sdc-probe\",\"version\":1,\"dataset\":");
    cli_json_string(stdout, a->data);
    printf(",\"classes\":%d,\"real_images\":%lld,\"val_split\":%.17g,\"seeds\":%lld,\"seed\":%lld,\"C\":%.17g,"
           "\"held_out_per_seed\":%lld,\"train_real_per_seed\":%lld,\"dim\":%d,\"model\":", fs->data.n_classes,
           (long long)fs->real.n, a->val, a->seeds, a->seed, a->C, (long long)r->n_val, (long long)r->n_train_real,
           fs->dim);
    cli_json_string(stdout, em->name);
    printf(",\"model_sha256\":\"%s\",\"methods\":[", em->sha);
    for (int j = 0; j < r->n_methods; j++) {
        const probe_method *m = &r->m[j];
        const feat_group *g = j ? &fs->outs[j - 1] : &fs->real;
        printf("%s{\"label\":", j ? "," : "");
        cli_json_string(stdout, m->label);
        printf(",\"folder\":");
        cli_json_string(stdout, g->dir);
        printf(",\"method\":");
        cli_json_string(stdout, g->method);
        printf(",\"images\":%lld,\"train_mean\":%.17g,\"top1_mean\":%.17g,\"top1_std\":%.17g,", (long long)g->n,
               m->train_mean, m->top1_mean, m->top1_std);
        if (j) printf("\"gain_mean\":%.17g,\"gain_std\":%.17g,", m->gain_mean, m->gain_std);
        else printf("\"gain_mean\":null,\"gain_std\":null,");
        printf("\"left_out_source\":%.17g,\"left_out_copy\":%.17g,\"unconverged\":%d,\"top1\":[", m->left_out_source,
               m->left_out_copy, m->unconverged);
        for (int t = 0; t < r->seeds; t++) printf("%s%.17g", t ? "," : "", r->top1[(size_t)j * r->seeds + t]);
        printf("]}");
    }
    printf("]}\n");
}

int cmd_probe(int argc, char **argv) {
    probe_args a;
    int rc = parse_probe(argc, argv, &a);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    sdc_err err = {0};
    eval_model em;
    feat_set fs = {0};
    probe_result r = {0};
    probe_set *sets = NULL;
    const char **names = NULL, **real_sha = NULL;
    int *real_cls = NULL;
    sdc_status s = split_possible(&a, &err); /* before anything is embedded */
    if (s) return cli_error("probe", &err);
    s = eval_model_open(a.clip, a.cache, a.data, false, (int)a.batch, &em, &err);
    if (s) return cli_error("probe", &err);
    s = eval_load_features("probe", a.data, a.outs, a.n_outs, a.cache, a.names, &em, a.quiet, &fs, &err);
    int64_t total = fs.real.n;
    for (int j = 0; !s && j < fs.n_outs; j++) total += fs.outs[j].n;
    /* Per-row arrays the probe reads: classes, sources, hashes. */
    int *cls_all = NULL;
    int64_t *src_all = NULL;
    const char **sha_all = NULL;
    if (!s && (!(sets = calloc((size_t)fs.n_outs, sizeof *sets)) || !(names = malloc(sizeof *names * (size_t)fs.data.n_classes)) ||
               !(cls_all = malloc(sizeof *cls_all * (size_t)(total + 1))) || !(src_all = malloc(sizeof *src_all * (size_t)(total + 1))) ||
               !(sha_all = malloc(sizeof *sha_all * (size_t)(total + 1)))))
        s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!s) {
        for (int c = 0; c < fs.data.n_classes; c++) names[c] = fs.data.classes[c].folder;
        int64_t at = 0;
        real_cls = cls_all, real_sha = sha_all;
        for (int64_t i = 0; i < fs.real.n; i++, at++) cls_all[at] = fs.real.items[i].cls, sha_all[at] = fs.real.items[i].sha256;
        for (int j = 0; j < fs.n_outs; j++) {
            const feat_group *g = &fs.outs[j];
            sets[j] = (probe_set){.label = g->label, .x = g->x, .cls = cls_all + at, .source = src_all + at,
                                  .sha256 = sha_all + at, .n = g->n};
            for (int64_t i = 0; i < g->n; i++, at++) {
                cls_all[at] = g->items[i].cls;
                src_all[at] = g->items[i].source;
                sha_all[at] = g->items[i].sha256;
            }
        }
        probe_input in = {.k = fs.data.n_classes, .d = fs.dim, .class_names = names, .real = fs.real.x,
                          .real_cls = real_cls, .real_sha256 = real_sha, .n_real = fs.real.n, .sets = sets,
                          .n_sets = fs.n_outs};
        probe_opts o = probe_defaults();
        o.val_split = a.val;
        o.seeds = (int)a.seeds;
        o.seed = (uint64_t)a.seed;
        o.lr.C = a.C;
        o.lr.max_iter = (int)a.max_iter;
        cli_progress pr;
        cli_progress_start(&pr, "probe", "fit", (int)a.seeds * (1 + fs.n_outs), a.quiet);
        o.progress = on_fit;
        o.ctx = &pr;
        s = probe_run(&in, &o, &r, &err);
        if (!s) cli_progress_end(&pr);
    }
    if (!s && a.json) print_json(&a, &em, &fs, &r);
    else if (!s) print_table(&a, &em, &fs, &r);
    rc = s ? cli_error("probe", &err) : EXIT_OK;
    probe_result_free(&r);
    free(sets), free(names), free(cls_all), free(src_all), free(sha_all);
    feat_set_free(&fs);
    eval_model_close(&em);
    return rc;
}
