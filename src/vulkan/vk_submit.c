/* vk_submit.c — command recording and submission for the Vulkan backend,
 * and the compute pipelines (made on first use from the embedded SPIR-V).
 * Ops append dispatches to one open command buffer, each followed by a
 * barrier; vk_flush submits it and waits, when the host needs results
 * (download, synchronize, free) or after many dispatches. */
#include "vk_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Dispatches recorded before a submission is forced (bounds the buffer). */
#define MAX_PENDING 512
/* A submission that has not finished after this long is reported, not waited on forever. */
#define WAIT_NS (600ull * 1000000000ull)

sdc_status vk_begin(vk_impl *v, sdc_err *err) {
    if (v->recording) return SDC_OK;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    sdc_status s = vk_check(vkBeginCommandBuffer(v->cmd, &bi), err, "vkBeginCommandBuffer");
    if (s) return s;
    /* Everything submitted before (copies, shaders) is visible to this buffer's commands. */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                           VK_ACCESS_HOST_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    vkCmdPipelineBarrier(v->cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT,
                         VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    v->recording = true;
    v->pending = 0;
    return SDC_OK;
}

sdc_status vk_flush(vk_impl *v, sdc_err *err) {
    if (!v->recording) return SDC_OK;
    v->recording = false;
    sdc_status s = vk_check(vkEndCommandBuffer(v->cmd), err, "vkEndCommandBuffer");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &v->cmd};
    if (!s) s = vk_check(vkQueueSubmit(v->queue, 1, &si, v->fence), err, "vkQueueSubmit");
    if (!s) {
        VkResult r = vkWaitForFences(v->dev, 1, &v->fence, VK_TRUE, WAIT_NS);
        if (r == VK_TIMEOUT)
            s = sdc_err_set(err, SDC_ERR_DEVICE,
                            "vulkan: %u queued dispatches did not finish in %llu s", v->pending,
                            (unsigned long long)(WAIT_NS / 1000000000ull));
        else
            s = vk_check(r, err, "vkWaitForFences (a queued dispatch or copy failed)");
        if (!s) s = vk_check(vkResetFences(v->dev, 1, &v->fence), err, "vkResetFences");
    }
    /* Ready for the next recording whatever happened. */
    VkResult rr = vkResetCommandBuffer(v->cmd, 0);
    if (!s) s = vk_check(rr, err, "vkResetCommandBuffer");
    v->pending = 0;
    return s;
}

/* 0 keeps the shader's default; attention's MAXD otherwise. */
const uint32_t vk_spec_values[VK_SPEC_COUNT] = {0, 64, 128, 256};

static sdc_status pipeline(vk_impl *v, vk_shader sh, int spec, sdc_err *err) {
    if (v->pipe[sh][spec]) return SDC_OK;
    const vk_spirv *sp = &vk_spirv_table[sh];
    char what[96];
    sdc_status s = SDC_OK;
    if (!v->module[sh]) {
        VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                        .codeSize = sp->bytes,
                                        .pCode = sp->code};
        snprintf(what, sizeof what, "vkCreateShaderModule (%s)", sp->name);
        s = vk_check(vkCreateShaderModule(v->dev, &mci, NULL, &v->module[sh]), err, what);
        if (s) return s;
    }
    VkSpecializationMapEntry entry = {.constantID = 0, .offset = 0, .size = sizeof(uint32_t)};
    VkSpecializationInfo si = {.mapEntryCount = 1, .pMapEntries = &entry,
                               .dataSize = sizeof(uint32_t), .pData = &vk_spec_values[spec]};
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = v->module[sh],
                  .pName = "main",
                  .pSpecializationInfo = spec ? &si : NULL},
        .layout = v->layout};
    snprintf(what, sizeof what, "vkCreateComputePipelines (%s, variant %d)", sp->name, spec);
    return vk_check(vkCreateComputePipelines(v->dev, VK_NULL_HANDLE, 1, &pci, NULL,
                                             &v->pipe[sh][spec]),
                    err, what);
}

void vk_pipelines_release(vk_impl *v) {
    if (!v->dev) return;
    for (int i = 0; i < VK_SH_COUNT; i++) {
        for (int j = 0; j < VK_SPEC_COUNT; j++) {
            if (v->pipe[i][j]) vkDestroyPipeline(v->dev, v->pipe[i][j], NULL);
            v->pipe[i][j] = VK_NULL_HANDLE;
        }
        if (v->module[i]) vkDestroyShaderModule(v->dev, v->module[i], NULL);
        v->module[i] = VK_NULL_HANDLE;
    }
}

sdc_status vk_dispatch(vk_impl *v, vk_shader sh, const void *push, size_t push_bytes,
                       uint32_t gx, uint32_t gy, uint32_t gz, sdc_err *err) {
    return vk_dispatch_spec(v, sh, 0, push, push_bytes, gx, gy, gz, err);
}

sdc_status vk_dispatch_spec(vk_impl *v, vk_shader sh, int spec, const void *push,
                            size_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz,
                            sdc_err *err) {
    if (gx == 0 || gy == 0 || gz == 0) return SDC_OK; /* an empty tensor */
    if (gx > 65535 || gy > 65535 || gz > 65535)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "vulkan: %s needs a %ux%ux%u grid (at most 65535 per dimension)",
                           vk_spirv_table[sh].name, gx, gy, gz);
    sdc_status s = pipeline(v, sh, spec, err);
    if (!s) s = vk_begin(v, err);
    if (s) return s;
    vkCmdBindPipeline(v->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, v->pipe[sh][spec]);
    vkCmdPushConstants(v->cmd, v->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)push_bytes, push);
    vkCmdDispatch(v->cmd, gx, gy, gz);
    /* The next dispatch (or copy) sees this one's writes. */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT};
    vkCmdPipelineBarrier(v->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0,
                         1, &mb, 0, NULL, 0, NULL);
    if (++v->pending >= MAX_PENDING) return vk_flush(v, err);
    return SDC_OK;
}

sdc_status vk_dispatch_1d(vk_impl *v, vk_shader sh, const void *push, size_t push_bytes,
                          uint64_t n, uint32_t local, sdc_err *err) {
    uint64_t groups = (n + local - 1) / local;
    uint64_t gx = groups < 65535 ? groups : 65535, gy = gx ? (groups + gx - 1) / gx : 0;
    if (gy > 65535)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "vulkan: %s: %llu elements are too many",
                           vk_spirv_table[sh].name, (unsigned long long)n);
    return vk_dispatch(v, sh, push, push_bytes, (uint32_t)gx, (uint32_t)gy, 1, err);
}
