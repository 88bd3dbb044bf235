/* blas_select.c — a program's first act (the sdc command's and the benches'):
 * make OpenBLAS use the kernels this processor supports (see cpu_features.h
 * for why). The library itself never calls this: re-executing is a
 * program's decision, not a library's.
 *
 * OpenBLAS chooses its core once, when the library loads, from cpuid model
 * numbers it knows; it honours OPENBLAS_CORETYPE only at that moment. So when
 * the core it picked ranks below what cpuid says the processor can do, sdc
 * sets OPENBLAS_CORETYPE and re-executes itself, once. A user's own
 * OPENBLAS_CORETYPE always wins. The alternative, sdc's own GEMM
 * micro-kernels for every BLAS call, would duplicate OpenBLAS's tuned
 * kernels for one distribution's stale model table.
 *
 * Environment:
 *   SDC_BLAS_REEXEC    set by sdc to the core OpenBLAS first picked; its
 *                      presence stops a second re-exec (no loops).
 *   SDC_TEST_BLAS_CORENAME  tests only: pretend OpenBLAS picked this core.
 */
#include "cpu_features.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The core OpenBLAS reports, or the test's pretend one. */
static const char *picked_core(void) {
    const char *fake = getenv("SDC_TEST_BLAS_CORENAME");
    return fake && *fake ? fake : sdc_blas_core_current();
}

void sdc_blas_select(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("SDC_BLAS_REEXEC")) return;
    sdc_cpu_features f;
    sdc_cpu_features_detect(&f);
    const char *current = picked_core();
    const char *want = sdc_blas_core_upgrade(&f, current);
    if (!want) return;
    if (setenv("OPENBLAS_CORETYPE", want, 1) || setenv("SDC_BLAS_REEXEC", current, 1)) return;
    /* The resolved path, not /proc/self/exe itself: tools that run the
     * program under themselves (valgrind) fake the link but not the exec. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        fflush(NULL);
        execv(self, argv);
    }
    /* exec failed (no /proc, say): carry on with OpenBLAS's own choice. */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("SDC_BLAS_REEXEC");
}

sdc_blas_state sdc_blas_state_get(void) {
    sdc_blas_state s = {.core = sdc_blas_core_current(), .config = sdc_blas_config()};
    const char *first = getenv("SDC_BLAS_REEXEC");
    if (first) {
        s.origin = SDC_BLAS_BY_SDC;
        s.openblas_pick = first;
    } else if (getenv("OPENBLAS_CORETYPE")) {
        s.origin = SDC_BLAS_BY_USER;
    } else {
        s.origin = SDC_BLAS_BY_OPENBLAS;
    }
    return s;
}
