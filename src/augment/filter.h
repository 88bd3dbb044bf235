/* filter.h — `sdc augment --filter clip`: an output is kept only when CLIP's
 * zero-shot classifier over all class prompts gives its own class a
 * probability above a threshold (1 / number of classes by default, as He et
 * al. filter synthetic data), and it is not a near-duplicate (cosine >= 0.94,
 * clip-retrieval's dedup level) of its source image or of an earlier kept
 * output of its class. A rejected output is regenerated with the next seed
 * (seed + 1, + 2, ...) up to max_tries attempts, so the per-image and
 * per-class counts hold; an item whose every attempt is rejected is recorded
 * as "rejected" with no file.
 *
 *     aug_filter *f = aug_filter_open(&fo, &dataset, data_root, out_dir, shard_tag, &err);
 *     aug_filter_resume(f, &plan, &manifest, shard, n_shards, &err);   // earlier outputs
 *     for each generated item:
 *         aug_filter_item(f, pipeline, &group_opts, &row, item, rgb, &res, &err);
 *         if (res.kept) { save res.rgb under the item's name; aug_filter_commit(f, item, path, &err); }
 *     aug_filter_close(f);
 *
 * "Earlier" is plan order within the shard: with --shard K/N the check sees
 * the shard's own earlier outputs, so a plan gives the same outputs for the
 * same K/N on every run and every resume. The embeddings of kept outputs are
 * kept in an sdc embed cache in OUT/.sdc-filter[.shard-K-of-N]/ so a resumed
 * run need not embed them again. Every embedding is of the 8-bit image as
 * saved, one image per model call, so a resumed run decides exactly as an
 * uninterrupted one. */
#ifndef SDC_AUGMENT_FILTER_H
#define SDC_AUGMENT_FILTER_H

#include "augment.h"

#include "../pipeline/pipeline.h"

#include <cJSON.h>

typedef struct aug_filter_opts {
    const char *clip;              /* CLIPModel folder or file */
    double threshold;              /* keep when p(own class) > threshold; < 0: 1 / number of classes */
    double dedup;                  /* near-duplicate at cosine >= dedup; > 1 disables */
    int max_tries;                 /* attempts per item, >= 1 */
    const char *const *templates;  /* class prompts with {} or {name} */
    int n_templates;
    const char *vocab;             /* CLIP merges file, when the model folder has no tokenizer */
} aug_filter_opts;

typedef struct aug_filter aug_filter;

/* The decision on one embedding (pure; the planted tests call it directly). */
typedef enum aug_filter_why {
    AUG_FILTER_KEEP = 0,
    AUG_FILTER_CLASS,              /* own-class probability at or below the threshold */
    AUG_FILTER_DUP_SOURCE,         /* near-duplicate of its source image */
    AUG_FILTER_DUP_EARLIER,        /* near-duplicate of an earlier kept output of its class */
} aug_filter_why;

typedef struct aug_filter_verdict {
    aug_filter_why why;
    float class_prob;              /* zero-shot probability of its own class */
    float clip_score;              /* 100 · max(cos(image, own class query), 0) */
    float dup_cos;                 /* highest cosine to the source or an earlier output (-2: none) */
} aug_filter_verdict;

const char *aug_filter_why_name(aug_filter_why w);

/* e [P] normalized; queries [k, P]; source [P] or NULL; earlier [n, P]. */
void aug_filter_judge(const float *e, int cls, const float *queries, int k, int P, float logit_scale,
                      double threshold, double dedup, const float *source, const float *earlier,
                      int64_t n_earlier, aug_filter_verdict *v);

aug_filter *aug_filter_open(const aug_filter_opts *o, const aug_dataset *d, const char *data_root,
                            const char *out_dir, const char *shard_tag, sdc_err *err);
void aug_filter_close(aug_filter *f);

/* The model's weights hash (for plan.json and the manifest). */
const char *aug_filter_model_sha256(const aug_filter *f);

/* Remembers the kept outputs this shard already has (listed in m with a file). */
sdc_status aug_filter_resume(aug_filter *f, const aug_plan *p, const aug_manifest *m, long long shard,
                             long long n_shards, sdc_err *err);

typedef struct aug_filter_result {
    bool kept;
    uint32_t seed;                 /* the seed of the kept attempt (of the best one if none was kept) */
    int rejected;                  /* attempts rejected before it (all of them if none was kept) */
    aug_filter_verdict v;          /* the kept attempt's, or the best rejected one's */
    int rejected_class, rejected_dup; /* why the rejected attempts went */
    const uint8_t *rgb;            /* the kept image [h, w, 3] (valid until the next call) */
} aug_filter_result;

/* Judges rgb (item it, generated with row in the group options o) and
 * regenerates on rejection. */
sdc_status aug_filter_item(aug_filter *f, sdc_pipeline *p, const sdc_generate_opts *o,
                           const sdc_generate_row *row, const aug_item *it, const uint8_t *rgb,
                           aug_filter_result *r, sdc_err *err);
/* After the kept image was written durably to path: it becomes an earlier output. */
sdc_status aug_filter_commit(aug_filter *f, const aug_item *it, const char *path, sdc_err *err);

/* The manifest fields of an item: filter, clip_score, class_prob, filter_rejected, ... */
void aug_filter_manifest_fields(const aug_filter *f, const aug_filter_result *r, cJSON *j);

typedef struct aug_filter_stats {
    long long kept, rejected_attempts, exhausted, regenerated;
} aug_filter_stats;
aug_filter_stats aug_filter_get_stats(const aug_filter *f);

#endif
