/* cmd_info_devices.c — sdc info --devices [--json]: the compute devices this
 * sdc can use: the CPU, CUDA devices (a build with CUDA) and Vulkan devices
 * (a build with Vulkan), each with the --backend value that selects it. */
#include "cli.h"

#include "sdc_cuda.h"
#include "../vulkan/sdc_vulkan.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CUDA 16

typedef struct cuda_dev {
    sdc_cuda_info info;
} cuda_dev;

/* CUDA devices 0.. until one does not exist; *why holds the reason when none. */
static int list_cuda(cuda_dev *out, char *why, size_t cap) {
    int n = 0;
    for (; n < MAX_CUDA; n++) {
        sdc_err err = {0};
        sdc_backend *be = sdc_cuda_backend_create(n, &err);
        if (!be) {
            if (n == 0) snprintf(why, cap, "%s", err.msg);
            break;
        }
        if (sdc_cuda_info_get(be, &out[n].info, &err)) memset(&out[n].info, 0, sizeof out[n].info);
        sdc_backend_destroy(be);
    }
    return n;
}

int cmd_info_devices(bool json) {
    cuda_dev cuda[MAX_CUDA];
    char cuda_why[SDC_ERR_MSG_MAX] = "", vk_why[SDC_ERR_MSG_MAX] = "";
    int nc = list_cuda(cuda, cuda_why, sizeof cuda_why);
    sdc_vulkan_device_info vk[SDC_VULKAN_MAX_DEVICES];
    int nv = 0;
    sdc_err err = {0};
    if (sdc_vulkan_list_devices(vk, SDC_VULKAN_MAX_DEVICES, &nv, &err)) {
        snprintf(vk_why, sizeof vk_why, "%s", err.msg);
        nv = 0;
    } else if (nv == 0) {
        snprintf(vk_why, sizeof vk_why, "no Vulkan device found");
    }
    if (json) {
        printf("{\"cpu\": {\"backend\": \"cpu\"}, \"cuda\": [");
        for (int i = 0; i < nc; i++) {
            printf("%s{\"backend\": \"cuda:%d\", \"name\": ", i ? ", " : "", i);
            cli_json_string(stdout, cuda[i].info.name);
            printf(", \"compute_capability\": \"%d.%d\", \"memory_bytes\": %zu}",
                   cuda[i].info.cc_major, cuda[i].info.cc_minor, cuda[i].info.total_bytes);
        }
        printf("], \"cuda_absent\": ");
        if (nc) printf("null");
        else cli_json_string(stdout, cuda_why);
        printf(", \"vulkan\": [");
        for (int i = 0; i < nv; i++) {
            printf("%s{\"backend\": \"vulkan:%d\", \"name\": ", i ? ", " : "", i);
            cli_json_string(stdout, vk[i].name);
            printf(", \"type\": \"%s\", \"api\": \"%u.%u.%u\", \"driver\": ", vk[i].type,
                   vk[i].api_major, vk[i].api_minor, vk[i].api_patch);
            cli_json_string(stdout, vk[i].driver);
            printf(", \"memory_bytes\": %llu, \"usable\": %s, \"why\": ",
                   (unsigned long long)vk[i].heap_bytes, vk[i].usable ? "true" : "false");
            if (vk[i].usable) printf("null");
            else cli_json_string(stdout, vk[i].why);
            printf("}");
        }
        printf("], \"vulkan_absent\": ");
        if (nv) printf("null");
        else cli_json_string(stdout, vk_why);
        printf("}\n");
        return EXIT_OK;
    }
    printf("cpu        --backend cpu\n");
    if (!nc) printf("cuda       none: %s\n", cuda_why);
    for (int i = 0; i < nc; i++)
        printf("cuda %-5d --backend cuda:%-3d %s, sm_%d%d, %.1f GiB\n", i, i, cuda[i].info.name,
               cuda[i].info.cc_major, cuda[i].info.cc_minor,
               (double)cuda[i].info.total_bytes / (1 << 30));
    if (!nv) printf("vulkan     none: %s\n", vk_why);
    for (int i = 0; i < nv; i++) {
        printf("vulkan %-3d --backend vulkan:%-1d %s (%s, Vulkan %u.%u, %s), %.1f GiB", i, i,
               vk[i].name, vk[i].type, vk[i].api_major, vk[i].api_minor, vk[i].driver,
               (double)vk[i].heap_bytes / (1 << 30));
        if (!vk[i].usable) printf(" — not usable: %s", vk[i].why);
        else if (!strcmp(vk[i].type, "cpu")) printf(" — software: for testing, slower than --backend cpu");
        printf("\n");
    }
    return EXIT_OK;
}
