/* cmd_augment_filter.c — the --filter clip options of sdc augment and their
 * glue to src/augment/filter.h (see augment_filter.h). */
#include "augment_filter.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sdc_status augment_load_templates(const char *which, char ***out, int *n, sdc_err *err); /* cmd_augment.c */

int augment_filter_parse(int *argc, char **argv, augment_filter_cli *fc) {
    *fc = (augment_filter_cli){.templates = "clip7", .threshold = -1, .dedup = 0.94, .max_tries = 4};
    const char *filter = NULL;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *f = argv[i], *v = i + 1 < *argc ? argv[i + 1] : NULL;
        bool mine = !strcmp(f, "--filter") || !strcmp(f, "--clip") || !strcmp(f, "--filter-templates") ||
                    !strcmp(f, "--filter-threshold") || !strcmp(f, "--filter-dedup") || !strcmp(f, "--max-tries");
        if (!mine) { argv[out++] = argv[i]; continue; }
        if (!v) return cli_usage_error("augment", "%s needs a value", f);
        i++;
        if (!strcmp(f, "--filter")) filter = v;
        else if (!strcmp(f, "--clip")) fc->clip = v;
        else if (!strcmp(f, "--filter-templates")) fc->templates = v;
        else if (!strcmp(f, "--filter-threshold") && !cli_parse_float("augment", f, v, 0, 1, &fc->threshold))
            return EXIT_USAGE;
        else if (!strcmp(f, "--filter-dedup") && !cli_parse_float("augment", f, v, 1e-6, 1, &fc->dedup))
            return EXIT_USAGE;
        else if (!strcmp(f, "--max-tries") && !cli_parse_int("augment", f, v, 1, 1000, &fc->max_tries))
            return EXIT_USAGE;
    }
    *argc = out;
    argv[out] = NULL;
    if (filter && strcmp(filter, "clip"))
        return cli_usage_error("augment", "--filter must be 'clip' (got '%s')", filter);
    fc->on = filter != NULL;
    if (fc->on && !fc->clip) return cli_usage_error("augment", "--filter clip needs --clip M (a CLIPModel)");
    if (!fc->on && fc->clip) return cli_usage_error("augment", "--clip goes with --filter clip");
    return EXIT_OK;
}

aug_filter *augment_filter_open(const augment_filter_cli *fc, const aug_dataset *d, const char *data,
                                const char *out, const char *shard_tag, const char *vocab, sdc_err *err) {
    char **tmpls = NULL;
    int nt = 0;
    if (augment_load_templates(fc->templates, &tmpls, &nt, err)) {
        sdc_err_wrap(err, "--filter-templates");
        return NULL;
    }
    aug_filter_opts o = {.clip = fc->clip, .threshold = fc->threshold, .dedup = fc->dedup,
                         .max_tries = (int)fc->max_tries, .templates = (const char *const *)tmpls,
                         .n_templates = nt, .vocab = vocab};
    aug_filter *f = aug_filter_open(&o, d, data, out, shard_tag, err);
    for (int i = 0; i < nt; i++) free(tmpls[i]);
    free(tmpls);
    return f;
}

void augment_filter_plan_params(const augment_filter_cli *fc, const aug_filter *f, cJSON *params) {
    cJSON *j = cJSON_AddObjectToObject(params, "filter");
    if (!j) return;
    cJSON_AddStringToObject(j, "kind", "clip");
    cJSON_AddStringToObject(j, "model_sha256", aug_filter_model_sha256(f));
    cJSON_AddStringToObject(j, "templates", fc->templates);
    cJSON_AddNumberToObject(j, "threshold", fc->threshold);
    cJSON_AddNumberToObject(j, "dedup", fc->dedup);
    cJSON_AddNumberToObject(j, "max_tries", (double)fc->max_tries);
}

void augment_filter_summary(const augment_filter_cli *fc, const aug_filter *f) {
    aug_filter_stats st = aug_filter_get_stats(f);
    fprintf(stderr, "sdc augment: filter: %lld kept, %lld attempts rejected (%lld regenerated), "
            "%lld items rejected after %lld tries\n", st.kept, st.rejected_attempts, st.regenerated,
            st.exhausted, fc->max_tries);
}
