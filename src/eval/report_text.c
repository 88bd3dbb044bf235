/* report_text.c — the report as JSON and as Markdown tables (see report.h). */
#include "report.h"
#include "sbuf.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- JSON */

static void num(cJSON *j, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(j, k, v);
    else cJSON_AddNullToObject(j, k); /* JSON has no NaN */
}

static cJSON *stats_json(const report_stats *s, bool real) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "count", (double)s->count);
    if (!real) cJSON_AddNumberToObject(j, "rejected", (double)s->rejected);
    num(j, "clip_score", s->clip_score);
    num(j, "zero_shot_acc", s->zero_shot);
    if (!real) {
        num(j, "fid", s->fid);
        num(j, "kid", s->kid);
        num(j, "kid_std", s->kid_std);
        cJSON_AddNumberToObject(j, "kid_subsets", s->kid_subsets);
        cJSON_AddNumberToObject(j, "kid_subset_size", s->kid_size);
        num(j, "near_dup_rate", s->near_dup);
    }
    num(j, "diversity_mean_cos", s->diversity);
    return j;
}

static cJSON *group_json(const report *r, const report_group *g, bool real) {
    cJSON *j = cJSON_CreateObject(), *pc = cJSON_CreateArray();
    if (!j || !pc) {
        cJSON_Delete(j), cJSON_Delete(pc);
        return NULL;
    }
    cJSON_AddStringToObject(j, "label", g->label);
    cJSON_AddStringToObject(j, "method", g->method);
    cJSON_AddStringToObject(j, "folder", g->dir);
    cJSON_AddNumberToObject(j, "failed", (double)g->failed);
    cJSON *all = stats_json(&g->all, real);
    if (all && !real) num(all, "fid_class_mean", g->all.fid_class_mean);
    cJSON_AddItemToObject(j, "all", all);
    for (int c = 0; c < r->k; c++) {
        cJSON *s = stats_json(&g->cls[c], real);
        if (s) cJSON_AddStringToObject(s, "class", r->data->classes[c].folder);
        cJSON_AddItemToArray(pc, s);
    }
    cJSON_AddItemToObject(j, "per_class", pc);
    return j;
}

char *report_json(const report *r, const report_meta *meta) {
    cJSON *j = cJSON_CreateObject(), *classes = cJSON_CreateArray(), *methods = cJSON_CreateArray();
    if (!j || !classes || !methods) {
        cJSON_Delete(j), cJSON_Delete(classes), cJSON_Delete(methods);
        return NULL;
    }
    cJSON_AddStringToObject(j, "format", "sdc-report");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "sdc_version", SDC_VERSION);
    cJSON_AddStringToObject(j, "dataset", meta->dataset);
    cJSON_AddStringToObject(j, "model", meta->model);
    cJSON_AddStringToObject(j, "model_sha256", meta->model_sha256);
    cJSON_AddStringToObject(j, "templates", meta->templates);
    cJSON_AddNumberToObject(j, "near_dup_threshold", r->dedup);
    for (int c = 0; c < r->k; c++) {
        cJSON *cj = cJSON_CreateObject();
        if (cj) {
            cJSON_AddStringToObject(cj, "folder", r->data->classes[c].folder);
            cJSON_AddStringToObject(cj, "name", r->data->classes[c].name);
        }
        cJSON_AddItemToArray(classes, cj);
    }
    cJSON_AddItemToObject(j, "classes", classes);
    cJSON_AddItemToObject(j, "real", group_json(r, &r->real, true));
    for (int g = 0; g < r->n_outs; g++) cJSON_AddItemToArray(methods, group_json(r, &r->outs[g], false));
    cJSON_AddItemToObject(j, "methods", methods);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

/* ---------------------------------------------------------------- Markdown */

static void cell(sbuf *b, double v, const char *fmt) {
    if (isfinite(v)) sb_printf(b, fmt, v);
    else sb_puts(b, "–");
}

static void kid_cell(sbuf *b, const report_stats *s) {
    if (isfinite(s->kid)) sb_printf(b, "%.4f ± %.4f", s->kid, s->kid_std);
    else sb_puts(b, "–");
}

static void row(sbuf *b, const char *cls, const char *label, const report_stats *s, bool real, bool all) {
    sb_puts(b, "| ");
    if (cls) {
        sb_md(b, cls);
        sb_puts(b, " | ");
    }
    sb_md(b, label);
    sb_printf(b, " | %lld | ", (long long)s->count);
    if (real) sb_puts(b, "–");
    else sb_printf(b, "%lld", (long long)s->rejected);
    sb_puts(b, " | ");
    cell(b, s->clip_score, "%.2f");
    sb_puts(b, " | ");
    cell(b, s->zero_shot * 100, "%.1f %%");
    sb_puts(b, " | ");
    cell(b, s->fid, "%.4f");
    if (all) {
        sb_puts(b, " | ");
        cell(b, s->fid_class_mean, "%.4f");
    }
    sb_puts(b, " | ");
    kid_cell(b, s);
    sb_puts(b, " | ");
    cell(b, s->diversity, "%.3f");
    sb_puts(b, " | ");
    cell(b, s->near_dup * 100, "%.1f %%");
    sb_puts(b, " |\n");
}

char *report_markdown(const report *r, const report_meta *meta) {
    sbuf b = {0};
    sb_puts(&b, "# sdc report: ");
    sb_md(&b, meta->dataset);
    sb_printf(&b, "\n\n%d classes. CLIP features of `", r->k);
    sb_md(&b, meta->model);
    sb_printf(&b, "` (sha256 %.12s); class prompts: %s; near-duplicate: cosine ≥ %g to a real image. "
              "CLIP score = 100 · cos(image, class prompt); diversity = mean pairwise cosine (lower is more "
              "diverse); FID and KID against the real images (per class, or pooled).\n\n", meta->model_sha256,
              meta->templates, r->dedup);
    sb_puts(&b, "## All classes\n\n| method | images | rejected | CLIP score | zero-shot | FID (pooled) | "
                "FID (class mean) | KID | diversity | near-dup |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    row(&b, NULL, r->real.label, &r->real.all, true, true);
    for (int g = 0; g < r->n_outs; g++) row(&b, NULL, r->outs[g].label, &r->outs[g].all, false, true);
    sb_puts(&b, "\n## Per class\n\n| class | method | images | rejected | CLIP score | zero-shot | FID | KID | "
                "diversity | near-dup |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int c = 0; c < r->k; c++) {
        row(&b, r->data->classes[c].folder, r->real.label, &r->real.cls[c], true, false);
        for (int g = 0; g < r->n_outs; g++) row(&b, r->data->classes[c].folder, r->outs[g].label, &r->outs[g].cls[c], false, false);
    }
    return sb_take(&b);
}
