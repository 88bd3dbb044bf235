/* report.h — the per-class quality report of `sdc report`: for the real
 * images and for each augmentation output folder, per class and over all
 * classes,
 *   - count (and, with --filter clip, how many items the filter rejected),
 *   - CLIP score: 100 · max(cos(image, class query), 0), the class query
 *     being the zero-shot classifier's (zeroshot.h), averaged;
 *   - zero-shot accuracy: the fraction whose nearest class query is their own;
 *   - FID and KID of the outputs against the real images of the class, on
 *     CLIP features (dist.h; KID's mean and std over random subsets);
 *   - diversity: the mean pairwise cosine of the class's outputs (lower is
 *     more diverse);
 *   - near-duplicate rate: the fraction of outputs whose cosine to some real
 *     image (any class) is at or above the dedup threshold.
 * Over all classes FID and KID compare the pooled sets (and the class mean
 * of the per-class FIDs is given too); diversity is the class mean.
 * Rendered as JSON and Markdown (report_text.c) and a self-contained HTML
 * page with SVG charts and per-class contact sheets (report_html.c).
 *
 *     report r;
 *     report_opts o = report_defaults();
 *     if (report_compute(&fs, queries, &o, &r, &err)) ...
 *     char *md = report_markdown(&r, &meta);
 *     report_free(&r);
 */
#ifndef SDC_EVAL_REPORT_H
#define SDC_EVAL_REPORT_H

#include "features.h"

typedef struct report_stats {
    int64_t count, rejected;
    double clip_score;     /* NaN when count is 0 (so for every field below) */
    double zero_shot;
    double fid;            /* NaN: fewer than 2 images on a side, or the real group itself */
    double fid_class_mean; /* "all" rows only: the mean of the per-class FIDs that exist */
    double kid, kid_std;
    int kid_subsets, kid_size;
    double diversity;      /* NaN: fewer than 2 */
    double near_dup;       /* NaN for the real group */
} report_stats;

typedef struct report_group {
    const char *label, *method, *dir;
    report_stats *cls;     /* [k] */
    report_stats all;
    int64_t failed;        /* failed manifest lines and unreadable images */
} report_group;

typedef struct report {
    int k;
    const aug_dataset *data;
    report_group real;
    report_group *outs;
    int n_outs;
    double dedup;
} report;

typedef struct report_opts {
    double dedup;          /* near-duplicate cosine (0.94, clip-retrieval's) */
    int kid_subsets;       /* 100, as torch-fidelity */
    int kid_size;          /* 1000, capped at the smaller set */
    uint64_t seed;
} report_opts;

report_opts report_defaults(void);

/* queries: [k, fs->dim] the class queries; scale: the model's logit scale. */
sdc_status report_compute(const feat_set *fs, const float *queries, const report_opts *o, report *r,
                          sdc_err *err);
void report_free(report *r);

/* What the renderings print about the run. */
typedef struct report_meta {
    const char *dataset, *model, *model_sha256, *templates;
} report_meta;

/* JSON (format "sdc-report") and Markdown; malloc'ed, NULL when out of memory. */
char *report_json(const report *r, const report_meta *meta);
char *report_markdown(const report *r, const report_meta *meta);

/* The HTML page: summary table, SVG charts, and per class a contact sheet of
 * up to `thumbs` real images and outputs per group (80 px PNG data URIs). */
sdc_status report_html(const report *r, const report_meta *meta, const feat_set *fs, int thumbs, char **out,
                       sdc_err *err);

#endif
