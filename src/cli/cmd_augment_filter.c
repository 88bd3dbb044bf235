/* cmd_augment_filter.c — the --filter clip options of sdc augment and their
 * glue to src/augment/filter.h (see augment_filter.h). */
#include "augment_filter.h"
#include "augment_cli.h"
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int augment_filter_check(augment_filter_cli *fc, const cli_opt *opts) {
    static const char *const mine[] = {"filter-clip", "filter-templates", "filter-threshold",
                                       "filter-dedup", "max-tries"};
    fc->on = fc->filter != NULL;
    for (size_t i = 0; !fc->on && i < sizeof mine / sizeof mine[0]; i++)
        if (cli_given(opts, mine[i]))
            return cli_usage_error("augment", "--%s goes with --filter clip", mine[i]);
    if (fc->on && !fc->clip)
        return cli_usage_error("augment", "--filter clip needs --filter-clip M (a CLIPModel)");
    return EXIT_OK;
}

aug_filter *augment_filter_open(const augment_filter_cli *fc, const aug_dataset *d, const char *data,
                                const char *out, const char *shard_tag, const char *vocab, sdc_err *err) {
    char **tmpls = NULL;
    int nt = 0;
    if (aug_load_templates(fc->templates, &tmpls, &nt, err)) {
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
    /* Keyed by flag, so a changed plan names the flag that changed. */
    cJSON_AddStringToObject(params, "--filter", "clip");
    cJSON_AddStringToObject(params, "--filter-clip (sha256)", aug_filter_model_sha256(f));
    cJSON_AddStringToObject(params, "--filter-templates", fc->templates);
    cJSON_AddNumberToObject(params, "--filter-threshold", fc->threshold);
    cJSON_AddNumberToObject(params, "--filter-dedup", fc->dedup);
    cJSON_AddNumberToObject(params, "--max-tries", (double)fc->max_tries);
}

void augment_filter_summary(const augment_filter_cli *fc, const aug_filter *f) {
    aug_filter_stats st = aug_filter_get_stats(f);
    fprintf(stderr, "sdc augment: filter: %lld kept, %lld attempts rejected (%lld regenerated), "
            "%lld items rejected after %lld tries\n", st.kept, st.rejected_attempts, st.regenerated,
            st.exhausted, fc->max_tries);
}
