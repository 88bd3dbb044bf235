/* cli_run.c — see cli_run.h. */
#include "cli_run.h"
#include "suites.h"
#include "test_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

const cli_result *cli_run(const char *fmt, ...) {
    static cli_result r;
    char args[8192], cmd[10000], out_path[400], err_path[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *dir = test_tmpdir();
    snprintf(out_path, sizeof out_path, "%s/stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    /* $SDC_TEST_WRAPPER (e.g. "valgrind --leak-check=full --error-exitcode=99")
     * is put before the binary: scripts/valgrind_bad_inputs.sh runs each CLI
     * process under valgrind that way. */
    const char *wrap = getenv("SDC_TEST_WRAPPER");
    snprintf(cmd, sizeof cmd, "%s%s%s %s >'%s' 2>'%s' </dev/null", wrap && *wrap ? wrap : "",
             wrap && *wrap ? " " : "", test_sdc_bin(), args, out_path, err_path);
    int st = system(cmd);
    r.code = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    tu_slurp_into(out_path, r.out, sizeof r.out);
    tu_slurp_into(err_path, r.err, sizeof r.err);
    return &r;
}
