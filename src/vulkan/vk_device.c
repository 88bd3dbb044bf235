/* vk_device.c — the Vulkan instance (with the validation layer on request),
 * the physical devices sdc can use (Vulkan 1.2, buffer device address,
 * 16-bit storage, a compute queue), and opening one of them. */
#include "vk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS: return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS";
    default: return "VkResult error";
    }
}

sdc_status vk_check(VkResult r, sdc_err *err, const char *what) {
    if (r == VK_SUCCESS) return SDC_OK;
    sdc_status code = r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY
                          ? SDC_ERR_OOM
                          : SDC_ERR_DEVICE;
    return sdc_err_set(err, code, "vulkan: %s: %s (%d)", what, vk_result_name(r), (int)r);
}

/* Counts the validation layer's errors; keeps the first for the report. */
static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *d,
                                                 void *user) {
    (void)type;
    vk_impl *v = user;
    if (v && (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        if (v->validation_errors++ == 0)
            snprintf(v->first_validation_error, sizeof v->first_validation_error, "%s",
                     d && d->pMessage ? d->pMessage : "(no message)");
    }
    return VK_FALSE;
}

static bool have_layer(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return false;
    VkLayerProperties *l = calloc(n, sizeof *l);
    bool found = false;
    if (l && vkEnumerateInstanceLayerProperties(&n, l) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(l[i].layerName, name);
    free(l);
    return found;
}

/* An instance; v (may be NULL) receives validation messages when validate. */
static sdc_status make_instance(vk_impl *v, bool validate, VkInstance *out, sdc_err *err) {
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "sdc",
                             .pEngineName = "sdc",
                             .apiVersion = VK_API_VERSION_1_2};
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message,
        .pUserData = v};
    const char *layers[] = {VALIDATION_LAYER};
    const char *exts[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    if (validate) {
        if (!have_layer(VALIDATION_LAYER))
            return sdc_err_set(err, SDC_ERR_DEVICE,
                               "vulkan: $SDC_VULKAN_VALIDATE=1 but %s is not installed "
                               "(Debian: apt-get install vulkan-validationlayers)",
                               VALIDATION_LAYER);
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = layers;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = exts;
        ci.pNext = &dbg;
    }
    VkResult r = vkCreateInstance(&ci, NULL, out);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "no Vulkan device: vkCreateInstance: %s (no Vulkan driver installed; "
                           "Debian: mesa-vulkan-drivers)",
                           vk_result_name(r));
    if (r != VK_SUCCESS) return vk_check(r, err, "vkCreateInstance");
    if (validate && v) {
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                *out, "vkCreateDebugUtilsMessengerEXT");
        if (!create) {
            vkDestroyInstance(*out, NULL);
            *out = VK_NULL_HANDLE;
            return sdc_err_set(err, SDC_ERR_DEVICE, "vulkan: vkCreateDebugUtilsMessengerEXT missing");
        }
        sdc_status s = vk_check(create(*out, &dbg, NULL, &v->messenger), err,
                                "vkCreateDebugUtilsMessengerEXT");
        if (s) {
            vkDestroyInstance(*out, NULL);
            *out = VK_NULL_HANDLE;
            return s;
        }
    }
    return SDC_OK;
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

/* What sdc needs of a device; describes pd into *info. Returns the
 * compute queue family in *qf. */
static void describe(VkPhysicalDevice pd, sdc_vulkan_device_info *info, uint32_t *qf) {
    memset(info, 0, sizeof *info);
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    bool v12 = VK_API_VERSION_MAJOR(p.apiVersion) > 1 || VK_API_VERSION_MINOR(p.apiVersion) >= 2;
    if (v12) {
        p2.pNext = &drv;
        vkGetPhysicalDeviceProperties2(pd, &p2);
        snprintf(info->driver, sizeof info->driver, "%.*s %.*s", 60, drv.driverName, 60, drv.driverInfo);
    }
    snprintf(info->name, sizeof info->name, "%s", p.deviceName);
    snprintf(info->type, sizeof info->type, "%s", type_name(p.deviceType));
    info->api_major = VK_API_VERSION_MAJOR(p.apiVersion);
    info->api_minor = VK_API_VERSION_MINOR(p.apiVersion);
    info->api_patch = VK_API_VERSION_PATCH(p.apiVersion);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mp.memoryHeaps[i].size > info->heap_bytes)
            info->heap_bytes = mp.memoryHeaps[i].size;
    *qf = UINT32_MAX;
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties qp[16];
    if (nq > 16) nq = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qp);
    for (uint32_t i = 0; i < nq && *qf == UINT32_MAX; i++)
        if (qp[i].queueFlags & VK_QUEUE_COMPUTE_BIT) *qf = i;
    info->usable = false;
    if (!v12) {
        snprintf(info->why, sizeof info->why, "Vulkan %u.%u; sdc needs 1.2", info->api_major,
                 info->api_minor);
        return;
    }
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    if (!f12.bufferDeviceAddress)
        snprintf(info->why, sizeof info->why, "no bufferDeviceAddress");
    else if (!f11.storageBuffer16BitAccess)
        snprintf(info->why, sizeof info->why, "no storageBuffer16BitAccess");
    else if (*qf == UINT32_MAX)
        snprintf(info->why, sizeof info->why, "no compute queue");
    else if (p.limits.maxComputeSharedMemorySize < 16384 || p.limits.maxPushConstantsSize < 128)
        snprintf(info->why, sizeof info->why, "too little shared memory or push constant space");
    else
        info->usable = true;
}

static sdc_status physical_devices(VkInstance inst, VkPhysicalDevice *pds, uint32_t *n,
                                   sdc_err *err) {
    *n = SDC_VULKAN_MAX_DEVICES;
    VkResult r = vkEnumeratePhysicalDevices(inst, n, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return vk_check(r, err, "vkEnumeratePhysicalDevices");
    return SDC_OK;
}

sdc_status sdc_vulkan_list_devices(sdc_vulkan_device_info *out, int cap, int *count,
                                   sdc_err *err) {
    *count = 0;
    VkInstance inst = VK_NULL_HANDLE;
    sdc_status s = make_instance(NULL, false, &inst, err);
    if (s) return s;
    VkPhysicalDevice pds[SDC_VULKAN_MAX_DEVICES];
    uint32_t n = 0;
    s = physical_devices(inst, pds, &n, err);
    for (uint32_t i = 0; !s && i < n && (int)i < cap; i++) {
        uint32_t qf;
        describe(pds[i], &out[i], &qf);
        (*count)++;
    }
    vkDestroyInstance(inst, NULL);
    return s;
}

sdc_status vk_device_open(vk_impl *v, int index, sdc_err *err) {
    const char *val = getenv("SDC_VULKAN_VALIDATE");
    v->validation = val && !strcmp(val, "1");
    sdc_status s = make_instance(v, v->validation, &v->inst, err);
    if (s) return s;
    VkPhysicalDevice pds[SDC_VULKAN_MAX_DEVICES];
    uint32_t n = 0;
    if ((s = physical_devices(v->inst, pds, &n, err))) return s;
    if (n == 0)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "no Vulkan device: the loader found no physical device");
    if (index < 0 || (uint32_t)index >= n)
        return sdc_err_set(err, SDC_ERR_ARG, "vulkan: device %d does not exist (%u found)", index, n);
    v->device_index = index;
    v->phys = pds[index];
    describe(v->phys, &v->info, &v->qfamily);
    if (!v->info.usable)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "vulkan: device %d (%s) is not usable: %s",
                           index, v->info.name, v->info.why);
    vkGetPhysicalDeviceMemoryProperties(v->phys, &v->memprops);
    v->loop_budget = strstr(v->info.driver, "llvmpipe") ? 65535 : 0;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = v->qfamily,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .bufferDeviceAddress = VK_TRUE};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12,
                                            .storageBuffer16BitAccess = VK_TRUE};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .pNext = &f11,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci};
    if ((s = vk_check(vkCreateDevice(v->phys, &dci, NULL, &v->dev), err, "vkCreateDevice")))
        return s;
    vkGetDeviceQueue(v->dev, v->qfamily, 0, &v->queue);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = v->qfamily};
    if ((s = vk_check(vkCreateCommandPool(v->dev, &pci, NULL, &v->pool), err, "vkCreateCommandPool")))
        return s;
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = v->pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    if ((s = vk_check(vkAllocateCommandBuffers(v->dev, &cai, &v->cmd), err,
                      "vkAllocateCommandBuffers")))
        return s;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((s = vk_check(vkCreateFence(v->dev, &fci, NULL, &v->fence), err, "vkCreateFence")))
        return s;
    VkPushConstantRange range = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 128};
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &range};
    return vk_check(vkCreatePipelineLayout(v->dev, &lci, NULL, &v->layout), err,
                    "vkCreatePipelineLayout");
}

/* Releases what vk_device_open made (any prefix of it). */
void vk_device_close(vk_impl *v) {
    if (v->dev) {
        vkDeviceWaitIdle(v->dev);
        if (v->layout) vkDestroyPipelineLayout(v->dev, v->layout, NULL);
        if (v->fence) vkDestroyFence(v->dev, v->fence, NULL);
        if (v->pool) vkDestroyCommandPool(v->dev, v->pool, NULL);
        vkDestroyDevice(v->dev, NULL);
    }
    if (v->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                v->inst, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy) destroy(v->inst, v->messenger, NULL);
    }
    if (v->inst) vkDestroyInstance(v->inst, NULL);
    v->dev = VK_NULL_HANDLE;
    v->inst = VK_NULL_HANDLE;
}
