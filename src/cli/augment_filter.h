/* augment_filter.h — the --filter clip options of `sdc augment`
 * (cmd_augment_filter.c): rows of augment's option table, their checks, and
 * the glue to the filter library (src/augment/filter.h). */
#ifndef SDC_CLI_AUGMENT_FILTER_H
#define SDC_CLI_AUGMENT_FILTER_H

#include "../augment/filter.h"

#include <cJSON.h>
#include <stdbool.h>

typedef struct augment_filter_cli {
    const char *filter;      /* --filter clip (NULL: off) */
    bool on;                 /* set by augment_filter_check */
    const char *clip;        /* --filter-clip M: the CLIPModel that judges */
    const char *templates;   /* --filter-templates (default clip7) */
    double threshold;        /* --filter-threshold (default -1: 1 / number of classes) */
    double dedup;            /* --filter-dedup (default 0.94) */
    long long max_tries;     /* --max-tries (default 4) */
} augment_filter_cli;

#define AUGMENT_FILTER_DEFAULTS {.templates = "clip7", .threshold = -1, .dedup = 0.94, .max_tries = 4}

/* The rows of augment's option table (src/cli/options.h) for fc's fields. */
#define AUGMENT_FILTER_OPTS(fc)                                                                  \
    {"filter", 0, CLI_CHOICE, &(fc)->filter, .choices = "clip",                                  \
     .help = "keep an output only if CLIP's zero-shot classifier gives its class a\n"            \
             "probability above --filter-threshold and it is no near-duplicate of its\n"         \
             "source or of an earlier output of its class; a rejected one is\n"                 \
             "regenerated with the next seed, up to --max-tries attempts"},                      \
    {"filter-clip", 0, CLI_STRING, &(fc)->clip, .metavar = "M",                                  \
     .help = "--filter clip: the CLIPModel that judges (required with --filter)"},               \
    {"filter-templates", 0, CLI_STRING, &(fc)->templates, .metavar = "simple|clip|clip7|FILE",  \
     .help = "--filter clip: how the class prompts are phrased (default clip7)"},                \
    {"filter-threshold", 0, CLI_FLOAT, &(fc)->threshold, .lo = 0, .hi = 1, .metavar = "P",      \
     .help = "--filter clip: the class probability to beat (default 1/number of classes)"},      \
    {"filter-dedup", 0, CLI_FLOAT, &(fc)->dedup, .lo = 1e-6, .hi = 1, .metavar = "X",           \
     .help = "--filter clip: near-duplicate cosine (default 0.94)"},                             \
    {"max-tries", 0, CLI_INT, &(fc)->max_tries, .lo = 1, .hi = 1000, .metavar = "N",            \
     .help = "--filter clip: attempts per item (default 4)"}

/* After parsing: the filter's options hang together (--filter clip needs
 * --filter-clip; its other options need --filter). Returns 0, or
 * EXIT_USAGE after printing why. */
struct cli_opt;
int augment_filter_check(augment_filter_cli *fc, const struct cli_opt *opts);

/* Opens the filter (templates loaded, CLIP model opened and hashed). */
aug_filter *augment_filter_open(const augment_filter_cli *fc, const aug_dataset *d, const char *data,
                                const char *out, const char *shard_tag, const char *vocab, sdc_err *err);

/* plan.json's filter parameters: a rerun with other ones is another plan. */
void augment_filter_plan_params(const augment_filter_cli *fc, const aug_filter *f, cJSON *params);

/* "filter: K kept, R attempts rejected, E items rejected after N tries" on stderr. */
void augment_filter_summary(const augment_filter_cli *fc, const aug_filter *f);

#endif
