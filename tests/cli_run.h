/* cli_run.h — runs the sdc binary under test through /bin/sh and captures
 * its exit code, stdout and stderr (for the CLI tests). */
#ifndef SDC_TEST_CLI_RUN_H
#define SDC_TEST_CLI_RUN_H

typedef struct cli_result {
    int code;        /* exit status, or -1 if it did not exit normally */
    char out[16384]; /* stdout (truncated) */
    char err[16384]; /* stderr (truncated) */
} cli_result;

/* Runs "$SDC_BIN <args>" where args is printf-formatted shell text (preceded
 * by $SDC_TEST_WRAPPER when set, e.g. a valgrind command line).
 * Returns a static result (overwritten by the next call). */
const cli_result *cli_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
