/* backend_choice.c — the --backend option of the commands that compute:
 * cpu, cuda (device 0), cuda:N, vulkan ($SDC_VULKAN_DEVICE, else device 0),
 * vulkan:N, or auto (CUDA when a device is present, else a Vulkan GPU, else
 * the CPU, saying which in one line; a software Vulkan device such as
 * lavapipe is never chosen by auto). The default is $SDC_BACKEND, else cpu. */
#include "cli.h"

#include "../vulkan/sdc_vulkan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_CPU = 0, KIND_CUDA, KIND_AUTO, KIND_VULKAN };

long long cli_device_index = -1;

/* "N" after a prefix of len chars into *device; false if not a number. */
static bool parse_index(const char *s, int *device) {
    char *end;
    errno = 0;
    long d = strtol(s, &end, 10);
    if (errno || end == s || *end || d < 0 || d > 1024) return false;
    *device = (int)d;
    return true;
}

/* Parses choice into a KIND_* and the device (-1: the backend's default); false if invalid. */
static bool parse_choice(const char *choice, int *kind, int *device) {
    *device = 0;
    if (cli_device_index >= 0 && strchr(choice, ':')) return false; /* --device says it once */
    if (cli_device_index >= 0 && (!strcmp(choice, "cuda") || !strcmp(choice, "vulkan"))) {
        *kind = choice[0] == 'c' ? KIND_CUDA : KIND_VULKAN;
        *device = (int)cli_device_index;
        return true;
    }
    if (cli_device_index >= 0) return false; /* cpu and auto take no device */
    if (!strcmp(choice, "cpu")) *kind = KIND_CPU;
    else if (!strcmp(choice, "auto")) *kind = KIND_AUTO;
    else if (!strcmp(choice, "cuda")) *kind = KIND_CUDA;
    else if (!strncmp(choice, "cuda:", 5)) {
        *kind = KIND_CUDA;
        return parse_index(choice + 5, device);
    } else if (!strcmp(choice, "vulkan")) {
        *kind = KIND_VULKAN;
        *device = -1;
    } else if (!strncmp(choice, "vulkan:", 7)) {
        *kind = KIND_VULKAN;
        return parse_index(choice + 7, device);
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

#define CHOICES "cpu, cuda, cuda:N, vulkan, vulkan:N or auto"

bool cli_backend_valid(const char *cmd, const char *choice) {
    int kind, device;
    const char *c = resolve(choice);
    if (parse_choice(c, &kind, &device)) return true;
    if (cli_device_index >= 0)
        cli_usage_error(cmd, "--device %lld applies to --backend cuda or vulkan without ':N' (got '%s'%s)",
                        cli_device_index, c, choice ? "" : " from $SDC_BACKEND");
    else
        cli_usage_error(cmd, "--backend must be " CHOICES " (got '%s'%s)", c,
                        choice ? "" : " from $SDC_BACKEND");
    return false;
}

/* auto's Vulkan step: a hardware device only (lavapipe is slower than the CPU backend). */
static sdc_backend *auto_vulkan(const char *cmd, bool quiet) {
    sdc_err err = {0};
    sdc_backend *be = sdc_vulkan_backend_create(-1, &err);
    sdc_vulkan_info info;
    if (!be) return NULL;
    if (sdc_vulkan_info_get(be, &info, &err) || !strcmp(info.dev.type, "cpu")) {
        sdc_backend_destroy(be);
        return NULL;
    }
    if (!quiet)
        fprintf(stderr, "sdc %s: --backend auto: using Vulkan device %d (%s)\n", cmd, info.device,
                info.dev.name);
    return be;
}

sdc_backend *cli_backend_create(const char *cmd, const char *choice, bool quiet, sdc_err *err) {
    int kind, device;
    const char *c = resolve(choice);
    if (!parse_choice(c, &kind, &device)) {
        sdc_err_set(err, SDC_ERR_ARG, "--backend must be " CHOICES " (got '%s')", c);
        return NULL;
    }
    if (kind == KIND_CPU) return sdc_cpu_backend_create(err);
    if (kind == KIND_VULKAN) {
        sdc_backend *be = sdc_vulkan_backend_create(device, err);
        if (!be) sdc_err_wrap(err, "--backend %s", c);
        return be;
    }
    sdc_backend *be = sdc_cuda_backend_create(device, err);
    if (kind == KIND_CUDA || be) {
        if (be && kind == KIND_AUTO && !quiet)
            fprintf(stderr, "sdc %s: --backend auto: using CUDA device %d\n", cmd, device);
        return be;
    }
    if ((be = auto_vulkan(cmd, quiet))) {
        err->code = SDC_OK;
        err->msg[0] = '\0';
        return be;
    }
    if (!quiet) fprintf(stderr, "sdc %s: --backend auto: %s; using the CPU\n", cmd, err->msg);
    err->code = SDC_OK;
    err->msg[0] = '\0';
    return sdc_cpu_backend_create(err);
}
