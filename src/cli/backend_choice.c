/* backend_choice.c — the --backend option of the commands that compute:
 * cpu, cuda (device 0), cuda:N, or auto (CUDA when a device is present, else
 * the CPU, saying which in one line). The default is $SDC_BACKEND, else cpu. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parses choice into kind 0 cpu, 1 cuda, 2 auto and the CUDA device; false if invalid. */
static bool parse_choice(const char *choice, int *kind, int *device) {
    *device = 0;
    if (!strcmp(choice, "cpu")) *kind = 0;
    else if (!strcmp(choice, "auto")) *kind = 2;
    else if (!strcmp(choice, "cuda")) *kind = 1;
    else if (!strncmp(choice, "cuda:", 5)) {
        char *end;
        errno = 0;
        long d = strtol(choice + 5, &end, 10);
        if (errno || end == choice + 5 || *end || d < 0 || d > 1024) return false;
        *kind = 1;
        *device = (int)d;
    } else {
        return false;
    }
    return true;
}

static const char *resolve(const char *choice) {
    if (choice) return choice;
    const char *env = getenv("SDC_BACKEND");
    return env && *env ? env : "cpu";
}

bool cli_backend_valid(const char *cmd, const char *choice) {
    int kind, device;
    const char *c = resolve(choice);
    if (parse_choice(c, &kind, &device)) return true;
    cli_usage_error(cmd, "--backend must be cpu, cuda, cuda:N or auto (got '%s'%s)", c,
                    choice ? "" : " from $SDC_BACKEND");
    return false;
}

sdc_backend *cli_backend_create(const char *cmd, const char *choice, bool quiet, sdc_err *err) {
    int kind, device;
    const char *c = resolve(choice);
    if (!parse_choice(c, &kind, &device)) {
        sdc_err_set(err, SDC_ERR_ARG, "--backend must be cpu, cuda, cuda:N or auto (got '%s')", c);
        return NULL;
    }
    if (kind == 0) return sdc_cpu_backend_create(err);
    sdc_backend *be = sdc_cuda_backend_create(device, err);
    if (kind == 1 || be) {
        if (be && kind == 2 && !quiet)
            fprintf(stderr, "sdc %s: --backend auto: using CUDA device %d\n", cmd, device);
        return be;
    }
    if (!quiet) fprintf(stderr, "sdc %s: --backend auto: %s; using the CPU\n", cmd, err->msg);
    err->code = SDC_OK;
    err->msg[0] = '\0';
    return sdc_cpu_backend_create(err);
}
