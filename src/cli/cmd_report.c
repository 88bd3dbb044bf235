/* cmd_report.c — sdc report: per class and per method, how the outputs of
 * sdc augment compare with the real images on CLIP features (count, CLIP
 * score, zero-shot accuracy, FID, KID, diversity, near-duplicates), as a
 * Markdown table on stdout and report.{json,md,html} in --out. */
#include "augment_cli.h"
#include "eval_common.h"
#include "preflight.h"

#include "../core/atomic_file.h"
#include "../eval/report.h"
#include "../eval/zeroshot.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


static const cli_spec spec = {
    "report", "DATASET OUT [OUT...] [--out DIR] [options]",
    "For the real images of DATASET and each OUT (sdc augment output folders), per class and\n"
    "over all classes: the image count (and what --filter clip rejected), the CLIP score to the\n"
    "class prompt, zero-shot accuracy, FID and KID against the real images on CLIP features\n"
    "(KID: mean ± std over random subsets), diversity (mean pairwise cosine) and the\n"
    "near-duplicate rate against the real images. Prints the Markdown table; --out DIR also\n"
    "gets report.json, report.md and report.html (self-contained: SVG charts, per-class contact\n"
    "sheets). Features are kept in a cache per folder: a rerun embeds only new images.",
    NULL};

#define MAX_OUTS 64

typedef struct report_args {
    const char *data, *out, *clip, *cache, *templates, *names, *vocab;
    const char *outs[MAX_OUTS];
    int n_outs;
    double dedup;
    long long kid_subsets, kid_size, thumbs, batch;
    bool json, quiet;
    char vocab_buf[4096];
} report_args;

static int parse_report(int argc, char **argv, report_args *a) {
    *a = (report_args){.templates = "clip7", .dedup = 0.94, .kid_subsets = 100, .kid_size = 1000,
                       .thumbs = 6, .batch = 8};
    cli_opt opts[] = {
        CLI_OUT(&a->out, 0, "where report.json, report.md and report.html go (created)"),
        {"model|clip", 'm', CLI_STRING, &a->clip, .metavar = "M",
         .help = "the CLIP model (default: the one DATASET's cached features were made with)"},
        {"cache", 0, CLI_STRING, &a->cache, .metavar = "DIR",
         .help = "feature caches (default $XDG_CACHE_HOME/sdc/features or ~/.cache/sdc/features)"},
        {"templates", 0, CLI_STRING, &a->templates, .metavar = "simple|clip|clip7|FILE",
         .help = "class prompts (default clip7)"},
        {"class-names", 0, CLI_STRING, &a->names, .metavar = "FILE",
         .help = "one display name per class folder, in sorted folder order"},
        CLI_VOCAB(&a->vocab),
        {"dedup", 0, CLI_FLOAT, &a->dedup, .lo = 1e-6, .hi = 1, .metavar = "X",
         .help = "near-duplicate cosine (default 0.94)"},
        {"kid-subsets", 0, CLI_INT, &a->kid_subsets, .lo = 1, .hi = 100000, .metavar = "N",
         .help = "KID subsets (default 100)"},
        {"kid-size", 0, CLI_INT, &a->kid_size, .lo = 2, .hi = 100000, .metavar = "N",
         .help = "rows per KID subset (default 1000)"},
        {"thumbs", 0, CLI_INT, &a->thumbs, .lo = 0, .hi = 100, .metavar = "N",
         .help = "contact-sheet images per class and method (default 6; 0: none)"},
        {"batch", 'b', CLI_INT, &a->batch, .lo = 1, .hi = 256, .metavar = "N",
         .help = "images per CLIP call when embedding (default 8)"},
        {"json", 0, CLI_FLAG, &a->json, .help = "print the JSON instead of the Markdown"},
        CLI_QUIET(&a->quiet),
        CLI_END};
    const char *pos[MAX_OUTS + 1];
    cli_positional pp = {pos, MAX_OUTS + 1, 0, "DATASET OUT..."};
    int rc = cli_parse(&spec, opts, argc, argv, &pp);
    if (rc) return rc;
    if (pp.n_pos < 2) return cli_usage_error("report", "DATASET and at least one OUT are required");
    a->data = pos[0];
    for (int j = 1; j < pp.n_pos; j++) a->outs[a->n_outs++] = pos[j];
    for (int j = 0; j < a->n_outs; j++)
        if (!strcmp(a->outs[j], a->data)) return cli_usage_error("report", "OUT %s is DATASET itself", a->outs[j]);
    /* A model folder's own tokenizer wins later; this is the fallback. */
    sdc_err err = {0};
    if (cli_find_vocab(a->vocab, a->vocab_buf, sizeof a->vocab_buf, &err) == SDC_OK) a->vocab = a->vocab_buf;
    else if (a->vocab) return cli_error("report", &err);
    return EXIT_OK;
}

/* DIR/NAME written atomically. */
static sdc_status write_text(const char *dir, const char *name, const char *text, sdc_err *err) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return sdc_err_set(err, SDC_ERR_ARG, "--out %s: path too long", dir);
    return sdc_write_file_atomic(path, text, strlen(text), err);
}

static sdc_status class_queries(const report_args *a, const eval_model *em, const feat_set *fs, float *q,
                                sdc_err *err) {
    char **tmpls = NULL;
    int nt = 0;
    sdc_tokenizer *tok = NULL;
    const char **names = malloc(sizeof *names * (size_t)fs->data.n_classes);
    sdc_status s = names ? aug_load_templates(a->templates, &tmpls, &nt, err)
                         : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s && !(tok = zs_tokenizer_open(em->m, a->vocab, err))) s = err->code;
    for (int c = 0; !s && c < fs->data.n_classes; c++) names[c] = fs->data.classes[c].name;
    if (!s) s = zs_class_queries(em->m, em->be, em->arena, tok, (const char *const *)tmpls, nt, names,
                                 fs->data.n_classes, q, err);
    sdc_tokenizer_free(tok);
    for (int i = 0; i < nt; i++) free(tmpls[i]);
    free(tmpls);
    free(names);
    return s;
}

int cmd_report(int argc, char **argv) {
    report_args a;
    int rc = parse_report(argc, argv, &a);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    sdc_err err = {0};
    struct stat sb;
    if (a.out && stat(a.out, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return cli_usage_error("report", "--out %s is not a folder", a.out);
    eval_model em;
    feat_set fs = {0};
    report r = {0};
    float *q = NULL;
    char *json = NULL, *md = NULL, *html = NULL;
    sdc_status s = eval_model_open(a.clip, a.cache, a.data, true, (int)a.batch, &em, &err);
    if (s) return cli_error("report", &err);
    s = eval_load_features("report", a.data, a.outs, a.n_outs, a.cache, a.names, &em, a.quiet, &fs, &err);
    if (!s && !(q = malloc(sizeof *q * (size_t)fs.data.n_classes * fs.dim))) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!s) s = class_queries(&a, &em, &fs, q, &err);
    report_opts o = report_defaults();
    o.dedup = a.dedup;
    o.kid_subsets = (int)a.kid_subsets;
    o.kid_size = (int)a.kid_size;
    if (!s) s = report_compute(&fs, q, &o, &r, &err);
    report_meta meta = {.dataset = a.data, .model = em.name, .model_sha256 = em.sha, .templates = a.templates};
    if (!s && (!(json = report_json(&r, &meta)) || !(md = report_markdown(&r, &meta))))
        s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!s && a.out) {
        if (mkdir(a.out, 0755) != 0 && errno != EEXIST)
            s = sdc_err_set(&err, SDC_ERR_IO, "--out %s: cannot create: %s", a.out, strerror(errno));
        if (!s) s = report_html(&r, &meta, &fs, (int)a.thumbs, &html, &err);
        if (!s) s = write_text(a.out, "report.json", json, &err);
        if (!s) s = write_text(a.out, "report.md", md, &err);
        if (!s) s = write_text(a.out, "report.html", html, &err);
    }
    if (!s) fputs(a.json ? json : md, stdout);
    if (!s && a.json) fputc('\n', stdout);
    if (!s && a.out && !a.quiet) fprintf(stderr, "sdc report: wrote %s/report.{json,md,html}\n", a.out);
    rc = s ? cli_error("report", &err) : EXIT_OK;
    free(json), free(md), free(html), free(q);
    report_free(&r);
    feat_set_free(&fs);
    eval_model_close(&em);
    return rc;
}
