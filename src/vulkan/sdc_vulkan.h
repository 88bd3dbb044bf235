/* sdc_vulkan.h — the Vulkan backend's extras beyond sdc_ops.h: device
 * listing (sdc info --devices), the backend's own state (memory in use,
 * validation-layer messages) for tests and benches.
 *
 *     sdc_err err = {0};
 *     sdc_backend *be = sdc_vulkan_backend_create(-1, &err); // $SDC_VULKAN_DEVICE, else 0
 *     if (!be) fprintf(stderr, "%s\n", err.msg);            // UNSUPPORTED: no device / no build
 *
 * Environment: $SDC_VULKAN_DEVICE picks the device when the index is -1;
 * $SDC_VULKAN_VALIDATE=1 enables VK_LAYER_KHRONOS_validation and counts its
 * errors (sdc_vulkan_info.validation_errors). Without Vulkan at build time
 * every entry point returns SDC_ERR_UNSUPPORTED (src/core/vulkan_stub.c). */
#ifndef SDC_VULKAN_H
#define SDC_VULKAN_H

#include "sdc_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SDC_VULKAN_MAX_DEVICES 16

typedef struct sdc_vulkan_device_info {
    char name[256];
    char type[16];          /* "discrete", "integrated", "virtual", "cpu", "other" */
    char driver[128];       /* driver name and info */
    unsigned api_major, api_minor, api_patch;
    uint64_t heap_bytes;    /* the largest device-local heap */
    bool usable;            /* meets sdc's requirements (else why says which) */
    char why[128];
} sdc_vulkan_device_info;

/* Lists the physical devices (at most cap) into out and their count into
 * *count. No Vulkan loader or driver: SDC_ERR_UNSUPPORTED. */
sdc_status sdc_vulkan_list_devices(sdc_vulkan_device_info *out, int cap, int *count,
                                   sdc_err *err);

typedef struct sdc_vulkan_info {
    int device;
    sdc_vulkan_device_info dev;
    size_t in_use_bytes, peak_bytes;
    bool validation;           /* the validation layer is on */
    int validation_errors;     /* error messages reported by it so far */
    char first_validation_error[512];
} sdc_vulkan_info;

sdc_status sdc_vulkan_info_get(sdc_backend *be, sdc_vulkan_info *info, sdc_err *err);

#ifdef __cplusplus
}
#endif
#endif /* SDC_VULKAN_H */
