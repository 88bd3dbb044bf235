/* cmd_report.c — sdc report: per class and per method, how the outputs of
 * sdc augment compare with the real images on CLIP features (count, CLIP
 * score, zero-shot accuracy, FID, KID, diversity, near-duplicates), as a
 * Markdown table on stdout and report.{json,md,html} in --out. */
#include "cli.h"
#include "eval_common.h"

#include "../core/atomic_file.h"
#include "../eval/report.h"
#include "../eval/zeroshot.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

sdc_status augment_load_templates(const char *which, char ***out, int *n, sdc_err *err); /* cmd_augment.c */

static const char *usage =
    "usage: sdc report DATASET OUT [OUT...] [--out DIR] [options]\n\n"
    "For the real images of DATASET and each OUT (sdc augment output folders), per class and over\n"
    "all classes: the image count (and what --filter clip rejected), the CLIP score to the class\n"
    "prompt, zero-shot accuracy, FID and KID against the real images on CLIP features (KID: mean\n"
    "± std over random subsets), diversity (mean pairwise cosine) and the near-duplicate rate\n"
    "against the real images. Prints the Markdown table; --out DIR also gets report.json,\n"
    "report.md and report.html (self-contained: SVG charts, per-class contact sheets).\n"
    "Features are kept in a cache per folder: a rerun embeds only new images.\n\n"
    "  --out DIR              where report.json, report.md and report.html go (created)\n"
    "  --clip M               the CLIP model (default: the one DATASET's cached features were made with)\n"
    "  --cache DIR            feature caches (default $XDG_CACHE_HOME/sdc/features or ~/.cache/sdc/features)\n"
    "  --templates simple|clip|clip7|FILE   class prompts (default clip7)\n"
    "  --class-names FILE     one display name per class folder, in sorted folder order\n"
    "  --vocab PATH           CLIP merges file, when the model folder has no tokenizer\n"
    "                         (default weights/bpe_simple_vocab_16e6.txt.gz)\n"
    "  --dedup X              near-duplicate cosine (default 0.94)\n"
    "  --kid-subsets N        KID subsets (default 100)   --kid-size N  rows per subset (default 1000)\n"
    "  --thumbs N             contact-sheet images per class and method (default 6; 0: none)\n"
    "  --batch N              images per CLIP call when embedding (default 8)\n"
    "  --json                 print the JSON instead of the Markdown\n"
    "  -q, --quiet            no progress\n";

#define MAX_OUTS 64

typedef struct report_args {
    const char *data, *out, *clip, *cache, *templates, *names, *vocab;
    const char *outs[MAX_OUTS];
    int n_outs;
    double dedup;
    long long kid_subsets, kid_size, thumbs, batch;
    bool json, quiet;
} report_args;

/* The options, in one function (for the shared parser to take over). */
static int parse_report(int argc, char **argv, report_args *a) {
    *a = (report_args){.templates = "clip7", .vocab = "weights/bpe_simple_vocab_16e6.txt.gz", .dedup = 0.94,
                       .kid_subsets = 100, .kid_size = 1000, .thumbs = 6, .batch = 8};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(f)) { fputs(usage, stdout); return -1; }
        if (!strcmp(f, "--json")) { a->json = true; continue; }
        if (!strcmp(f, "-q") || !strcmp(f, "--quiet")) { a->quiet = true; continue; }
        if (f[0] != '-') {
            if (!a->data) a->data = f;
            else if (a->n_outs == MAX_OUTS) return cli_usage_error("report", "at most %d output folders", MAX_OUTS);
            else a->outs[a->n_outs++] = f;
            continue;
        }
        const char **str = !strcmp(f, "--out") ? &a->out : !strcmp(f, "--clip") ? &a->clip
                           : !strcmp(f, "--cache") ? &a->cache : !strcmp(f, "--templates") ? &a->templates
                           : !strcmp(f, "--class-names") ? &a->names : !strcmp(f, "--vocab") ? &a->vocab : NULL;
        bool known = str || !strcmp(f, "--dedup") || !strcmp(f, "--kid-subsets") || !strcmp(f, "--kid-size") ||
                     !strcmp(f, "--thumbs") || !strcmp(f, "--batch");
        if (!known) return cli_usage_error("report", "unknown option '%s'", f);
        if (!v) return cli_usage_error("report", "%s needs a value", f);
        i++;
        if (str) *str = v;
        else if (!strcmp(f, "--dedup") ? !cli_parse_float("report", f, v, 1e-6, 1, &a->dedup)
                 : !strcmp(f, "--kid-subsets") ? !cli_parse_int("report", f, v, 1, 100000, &a->kid_subsets)
                 : !strcmp(f, "--kid-size") ? !cli_parse_int("report", f, v, 2, 100000, &a->kid_size)
                 : !strcmp(f, "--thumbs") ? !cli_parse_int("report", f, v, 0, 100, &a->thumbs)
                 : !cli_parse_int("report", f, v, 1, 256, &a->batch))
            return EXIT_USAGE;
    }
    if (!a->data || !a->n_outs) return cli_usage_error("report", "DATASET and at least one OUT are required");
    for (int j = 0; j < a->n_outs; j++)
        if (!strcmp(a->outs[j], a->data)) return cli_usage_error("report", "OUT %s is DATASET itself", a->outs[j]);
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
    sdc_status s = names ? augment_load_templates(a->templates, &tmpls, &nt, err)
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
    if (rc) return rc < 0 ? EXIT_OK : rc;
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
