/* vk_memory.c — device memory for the Vulkan backend. Each allocation is a
 * buffer with its own memory; the pointer sdc sees is the buffer's device
 * address (shaders take addresses, not descriptors), so tensors can point
 * anywhere inside an allocation, as on CUDA. Copies go through one
 * host-visible staging buffer, in chunks. */
#include "vk_internal.h"

#include <stdlib.h>
#include <string.h>

#define STAGING_BYTES ((VkDeviceSize)16 << 20)

/* The first memory type allowed by bits with all of want, or UINT32_MAX. */
static uint32_t memory_type(const vk_impl *v, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < v->memprops.memoryTypeCount; i++)
        if ((bits >> i & 1) && (v->memprops.memoryTypes[i].propertyFlags & want) == want) return i;
    return UINT32_MAX;
}

/* A buffer of size bytes, device-local when possible (host-visible for
 * staging), with its device address. */
static sdc_status make_buffer(vk_impl *v, VkDeviceSize size, bool staging, vk_alloc *out,
                              sdc_err *err) {
    memset(out, 0, sizeof *out);
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = size,
                              .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT |
                                       (staging ? 0
                                                : VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                                      VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT),
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    sdc_status s = vk_check(vkCreateBuffer(v->dev, &bci, NULL, &out->buf), err, "vkCreateBuffer");
    if (s) return s;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(v->dev, out->buf, &req);
    uint32_t type = staging ? memory_type(v, req.memoryTypeBits,
                                          VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                              VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
                            : memory_type(v, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (type == UINT32_MAX && !staging) type = memory_type(v, req.memoryTypeBits, 0);
    if (type == UINT32_MAX) {
        vkDestroyBuffer(v->dev, out->buf, NULL);
        out->buf = VK_NULL_HANDLE;
        return sdc_err_set(err, SDC_ERR_DEVICE, "vulkan: no suitable memory type for a %s buffer",
                           staging ? "staging" : "device");
    }
    VkMemoryAllocateFlagsInfo flags = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
                                       .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT};
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                .pNext = staging ? NULL : &flags,
                                .allocationSize = req.size,
                                .memoryTypeIndex = type};
    s = vk_check(vkAllocateMemory(v->dev, &mai, NULL, &out->mem), err, "vkAllocateMemory");
    if (!s) s = vk_check(vkBindBufferMemory(v->dev, out->buf, out->mem, 0), err, "vkBindBufferMemory");
    if (s) {
        if (out->mem) vkFreeMemory(v->dev, out->mem, NULL);
        vkDestroyBuffer(v->dev, out->buf, NULL);
        memset(out, 0, sizeof *out);
        return s;
    }
    out->size = size;
    if (!staging) {
        VkBufferDeviceAddressInfo ai = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
                                        .buffer = out->buf};
        out->base = vkGetBufferDeviceAddress(v->dev, &ai);
        out->user = (out->base + 63) & ~(VkDeviceAddress)63;
    }
    return SDC_OK;
}

static void drop_buffer(vk_impl *v, vk_alloc *a) {
    if (a->buf) vkDestroyBuffer(v->dev, a->buf, NULL);
    if (a->mem) vkFreeMemory(v->dev, a->mem, NULL);
    memset(a, 0, sizeof *a);
}

/* The index of the allocation holding address p (allocs sorted by base),
 * or n_allocs. */
static size_t find(const vk_impl *v, VkDeviceAddress p) {
    size_t lo = 0, hi = v->n_allocs;
    while (lo < hi) { /* the first with base > p */
        size_t mid = (lo + hi) / 2;
        if (v->allocs[mid].base <= p) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return v->n_allocs;
    const vk_alloc *a = &v->allocs[lo - 1];
    return p < a->base + a->size ? lo - 1 : v->n_allocs;
}

void *vk_alloc_fn(sdc_backend *be, size_t bytes) {
    vk_impl *v = vk_of(be);
    if (bytes > ((size_t)1 << 48)) return NULL; /* no device has that; + 64 below cannot wrap */
    if (v->n_allocs == v->cap_allocs) {
        size_t cap = v->cap_allocs ? 2 * v->cap_allocs : 256;
        vk_alloc *n = realloc(v->allocs, cap * sizeof *n);
        if (!n) return NULL;
        v->allocs = n;
        v->cap_allocs = cap;
    }
    vk_alloc a;
    sdc_err err = {0};
    /* +64: the handed-out address is rounded up to 64 bytes. */
    if (make_buffer(v, (VkDeviceSize)(bytes ? bytes : 64) + 64, false, &a, &err)) return NULL;
    a.bytes = bytes;
    size_t at = 0;
    while (at < v->n_allocs && v->allocs[at].base < a.base) at++;
    memmove(&v->allocs[at + 1], &v->allocs[at], (v->n_allocs - at) * sizeof a);
    v->allocs[at] = a;
    v->n_allocs++;
    v->in_use += (size_t)a.size;
    if (v->in_use > v->peak) v->peak = v->in_use;
    return (void *)(uintptr_t)a.user;
}

void vk_free_fn(sdc_backend *be, void *ptr) {
    if (!ptr) return;
    vk_impl *v = vk_of(be);
    size_t i = find(v, (VkDeviceAddress)(uintptr_t)ptr);
    if (i == v->n_allocs || v->allocs[i].user != (VkDeviceAddress)(uintptr_t)ptr) return;
    /* Recorded work may still read the buffer: run it first. */
    sdc_err err = {0};
    (void)vk_flush(v, &err);
    v->in_use -= (size_t)v->allocs[i].size;
    drop_buffer(v, &v->allocs[i]);
    memmove(&v->allocs[i], &v->allocs[i + 1], (v->n_allocs - i - 1) * sizeof *v->allocs);
    v->n_allocs--;
}

/* The allocation holding [p, p + bytes), and p's offset in its buffer. */
static sdc_status resolve(vk_impl *v, const void *p, size_t bytes, const vk_alloc **a,
                          VkDeviceSize *off, sdc_err *err) {
    VkDeviceAddress at = (VkDeviceAddress)(uintptr_t)p;
    size_t i = find(v, at);
    if (i == v->n_allocs)
        return sdc_err_set(err, SDC_ERR_ARG, "vulkan: %p is not device memory of this backend", p);
    *a = &v->allocs[i];
    *off = at - (*a)->base;
    if (at < (*a)->user || bytes > (*a)->bytes - (at - (*a)->user))
        return sdc_err_set(err, SDC_ERR_ARG,
                           "vulkan: a copy of %zu bytes at %p runs past its allocation", bytes, p);
    return SDC_OK;
}

static sdc_status need_staging(vk_impl *v, sdc_err *err) {
    if (v->staging_map) return SDC_OK;
    sdc_status s = make_buffer(v, STAGING_BYTES, true, &v->staging, err);
    if (s) return s;
    s = vk_check(vkMapMemory(v->dev, v->staging.mem, 0, VK_WHOLE_SIZE, 0, &v->staging_map), err,
                 "vkMapMemory (staging)");
    if (s) drop_buffer(v, &v->staging);
    return s;
}

/* One chunk between the staging buffer and buf at off: records, submits, waits. */
static sdc_status copy_chunk(vk_impl *v, VkBuffer buf, VkDeviceSize off, VkDeviceSize n,
                             bool to_device, sdc_err *err) {
    sdc_status s = vk_begin(v, err);
    if (s) return s;
    VkBufferCopy region = {.srcOffset = to_device ? 0 : off, .dstOffset = to_device ? off : 0,
                           .size = n};
    if (to_device) vkCmdCopyBuffer(v->cmd, v->staging.buf, buf, 1, &region);
    else vkCmdCopyBuffer(v->cmd, buf, v->staging.buf, 1, &region);
    /* The copy's writes become visible to later shaders and to the host. */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT |
                                           VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(v->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                         &mb, 0, NULL, 0, NULL);
    v->pending++;
    return vk_flush(v, err);
}

static sdc_status copy(sdc_backend *be, void *host, const void *dev, size_t bytes, bool to_device,
                       sdc_err *err) {
    if (!bytes) return SDC_OK;
    vk_impl *v = vk_of(be);
    const vk_alloc *a = NULL;
    VkDeviceSize off = 0;
    sdc_status s = resolve(v, dev, bytes, &a, &off, err);
    if (!s) s = need_staging(v, err);
    if (!s) s = vk_flush(v, err); /* queued ops come before the copy */
    for (size_t done = 0; !s && done < bytes;) {
        size_t n = bytes - done < STAGING_BYTES ? bytes - done : (size_t)STAGING_BYTES;
        if (to_device) memcpy(v->staging_map, (const char *)host + done, n);
        s = copy_chunk(v, a->buf, off + done, n, to_device, err);
        if (!s && !to_device) memcpy((char *)host + done, v->staging_map, n);
        done += n;
    }
    return s;
}

sdc_status vk_upload_fn(sdc_backend *be, void *dst, const void *src, size_t bytes, sdc_err *err) {
    return copy(be, (void *)src, dst, bytes, true, err);
}

sdc_status vk_download_fn(sdc_backend *be, void *dst, const void *src, size_t bytes,
                          sdc_err *err) {
    return copy(be, dst, src, bytes, false, err);
}

/* Frees the staging buffer and any allocation still live (their owners
 * should have freed them; the backend is going away either way). */
void vk_memory_release(vk_impl *v) {
    if (!v->dev) return;
    if (v->staging_map) vkUnmapMemory(v->dev, v->staging.mem);
    v->staging_map = NULL;
    drop_buffer(v, &v->staging);
    for (size_t i = 0; i < v->n_allocs; i++) drop_buffer(v, &v->allocs[i]);
    free(v->allocs);
    v->allocs = NULL;
    v->n_allocs = v->cap_allocs = 0;
}
