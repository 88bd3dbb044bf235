/* report_html.c — the report as one self-contained HTML page (see
 * report.h): inline CSS, SVG bar charts drawn here, and per-class contact
 * sheets whose thumbnails are PNG data URIs. No script, no external file. */
#include "report.h"
#include "sbuf.h"

#include "../image/clip_preprocess.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THUMB = 80, CHART_W = 720, LABEL_W = 220, BAR_H = 18 };

static const char *const palette[] = {"#7a7a7a", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
static const char *color(int g) { return palette[g % (int)(sizeof palette / sizeof *palette)]; }

/* ---------------------------------------------------------------- thumbnails */

/* <img> of path's centre square scaled to THUMB (Pillow's bicubic) as a PNG
 * data URI (stb's JPEG writer shifts signed ints past their range, which
 * the sanitized build rejects), or a grey box when the file cannot be read. */
static void thumb(sbuf *b, const char *path, const char *title) {
    static const float mean[3] = {0, 0, 0}, stdv[3] = {1, 1, 1};
    sdc_image im;
    sdc_err err = {0};
    uint8_t rgb[THUMB * THUMB * 3], *png = NULL;
    size_t len = 0;
    float *px = malloc(sizeof *px * 3 * THUMB * THUMB);
    bool ok = px && !sdc_image_load(path, NULL, &im, &err);
    if (ok) {
        ok = !sdc_clip_preprocess(&im, THUMB, THUMB, mean, stdv, rgb, px, &err);
        sdc_image_free(&im);
    }
    ok = ok && !sdc_png_encode(rgb, THUMB, THUMB, NULL, &png, &len, &err);
    if (ok) {
        sb_printf(b, "<img width=\"%d\" height=\"%d\" alt=\"\" title=\"", THUMB, THUMB);
        sb_html(b, title);
        sb_puts(b, "\" src=\"data:image/png;base64,");
        sb_base64(b, png, len);
        sb_puts(b, "\">");
    } else {
        sb_printf(b, "<span class=\"missing\" title=\"");
        sb_html(b, title);
        sb_puts(b, "\">unreadable</span>");
    }
    free(png);
    free(px);
}

/* ---------------------------------------------------------------- charts */

/* Horizontal bars, one per group, of v[g] (NaN: no bar, a dash). */
static void bars(sbuf *b, const char *title, const char *const *labels, const double *v, int n, const char *fmt,
                 const char *note) {
    double mx = 0;
    for (int g = 0; g < n; g++)
        if (isfinite(v[g])) mx = fmax(mx, fabs(v[g]));
    if (mx == 0) mx = 1;
    int h = 28 + n * (BAR_H + 6);
    sb_printf(b, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">"
              "<text x=\"0\" y=\"16\" class=\"t\">", CHART_W, h);
    sb_html(b, title);
    sb_puts(b, "</text>");
    for (int g = 0; g < n; g++) {
        int y = 26 + g * (BAR_H + 6), w = isfinite(v[g]) ? (int)((CHART_W - LABEL_W - 90) * fabs(v[g]) / mx) : 0;
        sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", LABEL_W - 8, y + 13);
        sb_html(b, labels[g]);
        sb_printf(b, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
                  "<text x=\"%d\" y=\"%d\">", LABEL_W, y, w, BAR_H, color(g), LABEL_W + w + 6, y + 13);
        if (isfinite(v[g])) sb_printf(b, fmt, v[g]);
        else sb_puts(b, "–");
        sb_puts(b, "</text>");
    }
    sb_puts(b, "</svg>");
    if (note) {
        sb_puts(b, "<figcaption>");
        sb_html(b, note);
        sb_puts(b, "</figcaption>");
    }
    sb_puts(b, "</figure>\n");
}

/* Per class, one thin bar per group: v[g * k + c]; group g drawn in color(c0 + g). */
static void grouped(sbuf *b, const char *title, const report *r, const char *const *labels, const double *v, int ng,
                    int c0, const char *fmt) {
    int k = r->k, gh = 7, row = ng * gh + 8;
    double mx = 0;
    for (int i = 0; i < ng * k; i++)
        if (isfinite(v[i])) mx = fmax(mx, fabs(v[i]));
    if (mx == 0) mx = 1;
    int h = 44 + k * row;
    sb_printf(b, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">"
              "<text x=\"0\" y=\"16\" class=\"t\">", CHART_W, h);
    sb_html(b, title);
    sb_puts(b, "</text>");
    for (int g = 0, x = LABEL_W; g < ng; g++) { /* legend: about 7 px per character */
        sb_printf(b, "<rect x=\"%d\" y=\"24\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"33\">", x,
                  color(c0 + g), x + 14);
        sb_html(b, labels[g]);
        sb_puts(b, "</text>");
        x += 30 + 7 * (int)strlen(labels[g]);
    }
    for (int c = 0; c < k; c++) {
        int y = 44 + c * row;
        sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", LABEL_W - 8, y + row / 2 + 3);
        sb_html(b, r->data->classes[c].name);
        sb_puts(b, "</text>");
        for (int g = 0; g < ng; g++) {
            double x = v[(size_t)g * k + c];
            int w = isfinite(x) ? (int)((CHART_W - LABEL_W - 90) * fabs(x) / mx) : 0;
            sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>", LABEL_W,
                      y + g * gh, w, gh - 1, color(c0 + g));
            sb_html(b, labels[g]);
            sb_puts(b, ": ");
            if (isfinite(x)) sb_printf(b, fmt, x);
            else sb_puts(b, "–");
            sb_puts(b, "</title></rect>");
        }
    }
    sb_puts(b, "</svg></figure>\n");
}

/* ---------------------------------------------------------------- tables */

static void td(sbuf *b, double v, const char *fmt) {
    sb_puts(b, "<td>");
    if (isfinite(v)) sb_printf(b, fmt, v);
    else sb_puts(b, "–");
    sb_puts(b, "</td>");
}

static void stats_row(sbuf *b, const char *label, int g, const report_stats *s, bool real) {
    sb_printf(b, "<tr><th><span class=\"sw\" style=\"background:%s\"></span>", color(g));
    sb_html(b, label);
    sb_printf(b, "</th><td>%lld</td>", (long long)s->count);
    if (real) sb_puts(b, "<td>–</td>");
    else sb_printf(b, "<td>%lld</td>", (long long)s->rejected);
    td(b, s->clip_score, "%.2f");
    td(b, s->zero_shot * 100, "%.1f %%");
    td(b, s->fid, "%.4f");
    sb_puts(b, "<td>");
    if (isfinite(s->kid)) sb_printf(b, "%.4f ± %.4f", s->kid, s->kid_std);
    else sb_puts(b, "–");
    sb_puts(b, "</td>");
    td(b, s->diversity, "%.3f");
    td(b, s->near_dup * 100, "%.1f %%");
    sb_puts(b, "</tr>\n");
}

static const char *table_head = "<table><tr><th>method</th><th>images</th><th>rejected</th><th>CLIP score</th>"
                                "<th>zero-shot</th><th>FID</th><th>KID</th><th>diversity</th><th>near-dup</th></tr>\n";

/* ---------------------------------------------------------------- the page */

static const char *style =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}"
    "h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px;margin:18px 0 6px}"
    "table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th:first-child{text-align:left}.sw{display:inline-block;width:10px;height:10px;margin-right:6px}"
    "svg text{font:12px system-ui,sans-serif;fill:#222}svg .t{font-weight:bold;font-size:13px}"
    "figure{margin:12px 0}figcaption{color:#555;font-size:12px}.sheet{display:flex;align-items:center;gap:4px;"
    "margin:2px 0}.sheet .lab{width:150px;font-size:12px}.sheet img{border:1px solid #ddd}"
    ".missing{display:inline-block;width:80px;height:80px;background:#ddd;font-size:11px}"
    ".meta{color:#555}\n";

sdc_status report_html(const report *r, const report_meta *meta, const feat_set *fs, int thumbs, char **out,
                       sdc_err *err) {
    sbuf b = {0};
    int ng = 1 + r->n_outs, k = r->k;
    const char **labels = malloc(sizeof *labels * (size_t)ng);
    double *v = malloc(sizeof *v * (size_t)ng * (k > 1 ? k : 1));
    if (!labels || !v) {
        free(labels), free(v);
        return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    const report_group **gs = malloc(sizeof *gs * (size_t)ng);
    if (!gs) {
        free(labels), free(v);
        return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    }
    gs[0] = &r->real;
    for (int g = 0; g < r->n_outs; g++) gs[g + 1] = &r->outs[g];
    for (int g = 0; g < ng; g++) labels[g] = gs[g]->label;
    sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sdc report: ");
    sb_html(&b, meta->dataset);
    sb_printf(&b, "</title><style>%s</style></head><body>\n<h1>sdc report: ", style);
    sb_html(&b, meta->dataset);
    sb_printf(&b, "</h1>\n<p class=\"meta\">%d classes; CLIP features of ", k);
    sb_html(&b, meta->model);
    sb_printf(&b, " (sha256 %.12s); class prompts: ", meta->model_sha256);
    sb_html(&b, meta->templates);
    sb_printf(&b, "; near-duplicate at cosine ≥ %g to a real image; sdc %s. CLIP score = 100 · cos(image, class "
              "prompt); zero-shot = share of images nearest their own class prompt; FID and KID on CLIP features "
              "against the real images; diversity = mean pairwise cosine within a class (lower is more diverse)."
              "</p>\n<h2>All classes</h2>\n%s", r->dedup, SDC_VERSION, table_head);
    for (int g = 0; g < ng; g++) stats_row(&b, labels[g], g, &gs[g]->all, g == 0);
    sb_puts(&b, "</table>\n<h2>Charts</h2>\n");
    struct { const char *title, *fmt, *note; size_t off; double scale; } charts[] = {
        {"Zero-shot accuracy (%)", "%.1f", "higher: outputs look like their class to CLIP",
         offsetof(report_stats, zero_shot), 100},
        {"CLIP score", "%.2f", NULL, offsetof(report_stats, clip_score), 1},
        {"FID against the real images (pooled)", "%.4f", "lower: closer to the real distribution",
         offsetof(report_stats, fid), 1},
        {"KID against the real images (pooled)", "%.4f", "lower: closer to the real distribution",
         offsetof(report_stats, kid), 1},
        {"Mean pairwise cosine within a class", "%.3f", "lower: more diverse", offsetof(report_stats, diversity), 1},
        {"Near-duplicates of real images (%)", "%.1f", NULL, offsetof(report_stats, near_dup), 100},
    };
    for (size_t m = 0; m < sizeof charts / sizeof *charts; m++) {
        for (int g = 0; g < ng; g++) v[g] = *(const double *)((const char *)&gs[g]->all + charts[m].off) * charts[m].scale;
        bars(&b, charts[m].title, labels, v, ng, charts[m].fmt, charts[m].note);
    }
    if (k <= 40) { /* per class, while the bars stay readable */
        for (int g = 0; g < ng; g++)
            for (int c = 0; c < k; c++) v[(size_t)g * k + c] = gs[g]->cls[c].zero_shot * 100;
        grouped(&b, "Zero-shot accuracy per class (%)", r, labels, v, ng, 0, "%.1f");
        for (int g = 1; g < ng; g++)
            for (int c = 0; c < k; c++) v[(size_t)(g - 1) * k + c] = gs[g]->cls[c].fid;
        if (ng > 1) grouped(&b, "FID per class", r, labels + 1, v, ng - 1, 1, "%.4f");
    }
    sb_puts(&b, "<h2>Per class</h2>\n");
    for (int c = 0; c < k; c++) {
        sb_puts(&b, "<h3>");
        sb_html(&b, r->data->classes[c].name);
        if (strcmp(r->data->classes[c].name, r->data->classes[c].folder)) {
            sb_puts(&b, " (");
            sb_html(&b, r->data->classes[c].folder);
            sb_puts(&b, ")");
        }
        sb_printf(&b, "</h3>\n%s", table_head);
        for (int g = 0; g < ng; g++) stats_row(&b, labels[g], g, &gs[g]->cls[c], g == 0);
        sb_puts(&b, "</table>\n");
        for (int g = 0; thumbs > 0 && g < ng; g++) { /* the contact sheet: the first images of each group */
            const feat_group *fg = g ? &fs->outs[g - 1] : &fs->real;
            sb_puts(&b, "<div class=\"sheet\"><span class=\"lab\">");
            sb_html(&b, labels[g]);
            sb_puts(&b, "</span>");
            int shown = 0;
            for (int64_t i = 0; i < fg->n && shown < thumbs; i++) {
                if (fg->items[i].cls != c) continue;
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", fg->dir, fg->items[i].path);
                thumb(&b, path, fg->items[i].path);
                shown++;
            }
            if (!shown) sb_puts(&b, "<span class=\"meta\">no images</span>");
            sb_puts(&b, "</div>\n");
        }
    }
    sb_puts(&b, "</body></html>\n");
    free(labels), free(v), free(gs);
    if (!(*out = sb_take(&b))) return sdc_err_set(err, SDC_ERR_OOM, "out of memory (HTML report)");
    return SDC_OK;
}
