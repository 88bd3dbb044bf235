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

const char *test_tmpdir(void) {
    static int counter;
    static char path[300];
    if (!tmp_root[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_root, sizeof tmp_root, "%s/sdc-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_root)) {
            perror("mkdtemp");
            abort();
        }
        atexit(remove_tmp_root);
    }
    snprintf(path, sizeof path, "%s/%d-%d", tmp_root, (int)getpid(), counter++);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    if (system(cmd) != 0) abort();
    return path;
}

int main(void) {
    SRunner *sr = srunner_create(suite_core());
    srunner_add_suite(sr, suite_ops());
    srunner_add_suite(sr, suite_safetensors());
    srunner_add_suite(sr, suite_cli());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
