/* main.c — the test runner: every suite in one Check SRunner, so the run ends
 * with one summary line. CK_RUN_SUITE=ops (Check's own variable) picks one. */
#include "suites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *test_sdc_bin(void) {
    const char *b = getenv("SDC_BIN");
    return b && *b ? b : "build/sdc";
}

static char tmp_root[256];

static void remove_tmp_root(void) {
    if (tmp_root[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmp_root);
    }
}

/* Every directory handed out stays valid until exit (callers keep them). */
static char *handed_out[4096];
static int n_handed_out;

static void free_handed_out(void) {
    for (int i = 0; i < n_handed_out; i++) free(handed_out[i]);
}

const char *test_tmpdir(void) {
    static int counter;
    char path[300];
    if (!tmp_root[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_root, sizeof tmp_root, "%s/sdc-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_root)) {
            perror("mkdtemp");
            abort();
        }
        atexit(remove_tmp_root);
        atexit(free_handed_out);
    }
    snprintf(path, sizeof path, "%s/%d-%d", tmp_root, (int)getpid(), counter++);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    if (system(cmd) != 0 || n_handed_out == 4096) abort();
    return handed_out[n_handed_out++] = strdup(path);
}

int main(void) {
    SRunner *sr = srunner_create(suite_core());
    srunner_add_suite(sr, suite_ops());
    srunner_add_suite(sr, suite_safetensors());
    srunner_add_suite(sr, suite_cli());
    srunner_add_suite(sr, suite_models());
    srunner_add_suite(sr, suite_model_refusals());
    srunner_add_suite(sr, suite_eval_cli());
    srunner_add_suite(sr, suite_fullsize());
    srunner_add_suite(sr, suite_tokenizer());
    srunner_add_suite(sr, suite_image());
    srunner_add_suite(sr, suite_rng());
    srunner_add_suite(sr, suite_samplers());
    srunner_add_suite(sr, suite_prompt());
    srunner_add_suite(sr, suite_embeddings());
    srunner_add_suite(sr, suite_pipeline());
    srunner_add_suite(sr, suite_generate_cli());
    srunner_add_suite(sr, suite_augment());
    srunner_add_suite(sr, suite_fuzz_regressions());
    srunner_add_suite(sr, suite_cuda());
    srunner_add_suite(sr, suite_vulkan());
    srunner_add_suite(sr, suite_clip());
    srunner_add_suite(sr, suite_retrieve());
    srunner_add_suite(sr, suite_bad_inputs());
    srunner_add_suite(sr, suite_faults());
    srunner_add_suite(sr, suite_cpu());
    srunner_add_suite(sr, suite_eval());
    srunner_add_suite(sr, suite_report());
    srunner_add_suite(sr, suite_filter());
    srunner_add_suite(sr, suite_train());
    srunner_add_suite(sr, suite_grad());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
