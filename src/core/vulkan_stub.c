/* vulkan_stub.c — the Vulkan entry points when sdc is built without Vulkan
 * (no libvulkan-dev or glslc, or VULKAN=0): each says so with
 * SDC_ERR_UNSUPPORTED. src/vulkan/ has the real ones. */
#include "sdc_ops.h"
#include "../vulkan/sdc_vulkan.h"

#ifndef SDC_WITH_VULKAN
static sdc_status no_vulkan(sdc_err *err) {
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                       "this sdc was built without Vulkan (install libvulkan-dev and glslc, "
                       "then rebuild)");
}

sdc_backend *sdc_vulkan_backend_create(int device_index, sdc_err *err) {
    (void)device_index;
    no_vulkan(err);
    return NULL;
}

sdc_status sdc_vulkan_list_devices(sdc_vulkan_device_info *out, int cap, int *count,
                                   sdc_err *err) {
    (void)out;
    (void)cap;
    *count = 0;
    return no_vulkan(err);
}

sdc_status sdc_vulkan_info_get(sdc_backend *be, sdc_vulkan_info *info, sdc_err *err) {
    (void)be;
    (void)info;
    return no_vulkan(err);
}
#else
/* ISO C forbids an empty translation unit. */
typedef int sdc_vulkan_stub_unused;
#endif
