/* augment_cli.h — what the parts of `sdc augment` share: its arguments (one
 * option table for every method, cmd_augment.c), the generation driver
 * (augment_run.c) and the retrieval driver (cmd_augment_retrieve.c). */
#ifndef SDC_CLI_AUGMENT_H
#define SDC_CLI_AUGMENT_H

#include "augment_filter.h"
#include "augment_train.h"
#include "cli.h"
#include "gen_choice.h"

#include "../augment/augment.h"
#include "../pipeline/pipeline.h"

typedef struct aug_args {
    const char *data, *model, *method, *out, *strength, *tmpl, *templates, *order, *emb, *init;
    const char *names, *classes, *negative, *sampler, *sched_config, *spacing, *prediction;
    const char *size, *vocab, *shard, *preview, *backend;
    const char *pool, *query; /* retrieve */
    long long per_image, per_class, limit, steps, seed, batch, shard_count, width, height;
    long long threads, clip_heads;
    double cfg, dedup;
    bool dry, quiet, json, low_memory, link, force_new_plan;
    augment_filter_cli filter;       /* --filter clip and its options (cmd_augment_filter.c) */
    aug_train_opts train;            /* textinv --train and its options (cmd_augment_train.c) */
    cli_gen_choice gen;              /* --precision, --vae-precision, --rng */
    /* resolved by cmd_augment.c */
    char vocab_buf[4096];
    const char *vocab_path;          /* NULL: the model folder's own tokenizer */
    sdc_sampler_opts sampler_opts;   /* config points at sched */
    sdc_sched_config sched_resolved;
    sdc_sched_file *sched;
} aug_args;

/* The generation methods (boomerang, prompt, textinv) once the plan is made. */
/* extra[c] (may be NULL): fields every manifest line of class c carries
 * (--train: the learned token's record). */
int augment_run(aug_args *a, const aug_dataset *d, const aug_plan *plan, sdc_embedding_set **sets,
                cJSON *const *extra, long long sk, long long sn, int w, int h);
/* --method retrieve. */
int augment_retrieve(const aug_args *a);

/* aug_plan_check that prints its note (unless quiet) when it starts over. */
sdc_status augment_plan_check(const char *out, const aug_plan *plan, const char *params,
                              bool force, bool quiet, sdc_err *err);

#endif
