/* eval_common.h — what `sdc report` and `sdc probe` share in the CLI: the
 * CLIP model (given, or the one the dataset's feature cache was made with)
 * and the feature sets with a progress bar per folder. */
#ifndef SDC_CLI_EVAL_COMMON_H
#define SDC_CLI_EVAL_COMMON_H

#include "progress.h"

#include "../eval/features.h"

typedef struct eval_model {
    sdc_backend *be;
    sdc_arena *arena;
    sdc_clip_model *m;        /* NULL when features come from the caches alone */
    char *name;               /* as given, or as the cache records it */
    char sha[65];
    int dim;
    emb_encoder enc;
} eval_model;

/* clip given: opened and hashed. NULL: the model the dataset's cache was
 * made with; opened only when need_model (report's text prompts), else
 * every feature must already be cached. */
sdc_status eval_model_open(const char *clip, const char *cache, const char *dataset, bool need_model, int batch,
                           eval_model *em, sdc_err *err);
void eval_model_close(eval_model *em);

/* feat_set_load with a progress bar per folder ("features <folder>"). */
sdc_status eval_load_features(const char *cmd, const char *dataset, const char *const *outs, int n_outs,
                              const char *cache, const char *class_names, const eval_model *em, bool quiet,
                              feat_set *fs, sdc_err *err);

#endif
