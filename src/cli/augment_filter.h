/* augment_filter.h — the --filter clip options of `sdc augment`
 * (cmd_augment_filter.c): parsed apart from cmd_augment.c's own flags, in
 * one function, and the glue to the filter library (src/augment/filter.h). */
#ifndef SDC_CLI_AUGMENT_FILTER_H
#define SDC_CLI_AUGMENT_FILTER_H

#include "../augment/filter.h"

#include <cJSON.h>
#include <stdbool.h>

typedef struct augment_filter_cli {
    bool on;                 /* --filter clip */
    const char *clip;        /* --clip M */
    const char *templates;   /* --filter-templates (default clip7) */
    double threshold;        /* --filter-threshold (default -1: 1 / number of classes) */
    double dedup;            /* --filter-dedup (default 0.94) */
    long long max_tries;     /* --max-tries (default 4) */
} augment_filter_cli;

#define AUGMENT_FILTER_USAGE \
    "  --filter clip          keep an output only if CLIP's zero-shot classifier gives its class a\n" \
    "                         probability above --filter-threshold (default 1/number of classes)\n" \
    "                         and it is no near-duplicate (cosine >= --filter-dedup, default 0.94)\n" \
    "                         of its source or of an earlier output of its class; a rejected one\n" \
    "                         is regenerated with the next seed, up to --max-tries N (default 4)\n" \
    "                         attempts. Needs --clip M (a CLIPModel); --filter-templates\n" \
    "                         simple|clip|clip7|FILE (default clip7) phrase the class prompts\n"

/* Takes the filter's flags out of argv (argc updated); the rest is for
 * cmd_augment.c's parser. Returns 0, or EXIT_USAGE after printing why. */
int augment_filter_parse(int *argc, char **argv, augment_filter_cli *fc);

/* Opens the filter (templates loaded, CLIP model opened and hashed). */
aug_filter *augment_filter_open(const augment_filter_cli *fc, const aug_dataset *d, const char *data,
                                const char *out, const char *shard_tag, const char *vocab, sdc_err *err);

/* plan.json's filter parameters: a rerun with other ones is another plan. */
void augment_filter_plan_params(const augment_filter_cli *fc, const aug_filter *f, cJSON *params);

/* "filter: K kept, R attempts rejected, E items rejected after N tries" on stderr. */
void augment_filter_summary(const augment_filter_cli *fc, const aug_filter *f);

#endif
