/* vk_backend.c — the Vulkan backend: creation (device choice, then the op
 * table), supports, synchronize, destroy, and sdc_vulkan_info_get. The
 * reverse-mode ops (but slice, a copy) are not implemented here (NULL
 * entries), so sdc_backend_supports() says no for them. */
#include "vk_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static sdc_status vk_sync_fn(sdc_backend *be, sdc_err *err) { return vk_flush(vk_of(be), err); }

/* Every implemented op loads and stores F32, F16 and BF16, computing in F32. */
static bool vk_supports_fn(const sdc_backend *be, sdc_op_kind kind, sdc_dtype t) {
    (void)be;
    (void)kind;
    return t == SDC_F32 || t == SDC_F16 || t == SDC_BF16;
}

static void vk_destroy_fn(sdc_backend *be) {
    if (!be) return;
    vk_impl *v = vk_of(be);
    if (v) {
        sdc_err err = {0};
        if (v->dev) (void)vk_flush(v, &err);
        vk_pipelines_release(v);
        vk_memory_release(v);
        vk_device_close(v);
        free(v);
    }
    free(be);
}

/* -1: $SDC_VULKAN_DEVICE, else 0. */
static sdc_status pick_index(int index, int *out, sdc_err *err) {
    *out = index;
    if (index >= 0) return SDC_OK;
    *out = 0;
    const char *env = getenv("SDC_VULKAN_DEVICE");
    if (!env || !*env) return SDC_OK;
    char *end;
    errno = 0;
    long d = strtol(env, &end, 10);
    if (errno || *end || d < 0 || d >= SDC_VULKAN_MAX_DEVICES)
        return sdc_err_set(err, SDC_ERR_ARG,
                           "$SDC_VULKAN_DEVICE must be a device index 0..%d (got '%s')",
                           SDC_VULKAN_MAX_DEVICES - 1, env);
    *out = (int)d;
    return SDC_OK;
}

sdc_backend *sdc_vulkan_backend_create(int device_index, sdc_err *err) {
    int index;
    if (pick_index(device_index, &index, err)) return NULL;
    sdc_backend *be = calloc(1, sizeof *be);
    vk_impl *v = calloc(1, sizeof *v);
    if (!be || !v) {
        free(be);
        free(v);
        sdc_err_set(err, SDC_ERR_OOM, "vulkan backend: out of host memory");
        return NULL;
    }
    be->impl = v;
    if (vk_device_open(v, index, err)) {
        vk_destroy_fn(be);
        return NULL;
    }
    be->name = "vulkan";
    be->device = SDC_DEVICE_VULKAN;
    be->op[SDC_OP_CONV2D] = vk_op_conv2d;
    be->op[SDC_OP_LINEAR] = vk_op_linear;
    be->op[SDC_OP_GROUP_NORM] = vk_op_group_norm;
    be->op[SDC_OP_LAYER_NORM] = vk_op_layer_norm;
    be->op[SDC_OP_ATTENTION] = vk_op_attention;
    be->op[SDC_OP_SOFTMAX] = vk_op_softmax;
    be->op[SDC_OP_GELU] = vk_op_unary;
    be->op[SDC_OP_QUICK_GELU] = vk_op_unary;
    be->op[SDC_OP_GEGLU] = vk_op_unary;
    be->op[SDC_OP_SILU] = vk_op_unary;
    be->op[SDC_OP_ADD] = vk_op_binary;
    be->op[SDC_OP_MUL] = vk_op_binary;
    be->op[SDC_OP_UPSAMPLE2X] = vk_op_upsample2x;
    be->op[SDC_OP_CONCAT] = vk_op_concat;
    be->op[SDC_OP_TIMESTEP_EMBED] = vk_op_timestep;
    be->op[SDC_OP_EMBEDDING] = vk_op_embedding;
    be->op[SDC_OP_CONVERT] = vk_op_unary;
    be->op[SDC_OP_TRANSPOSE] = vk_op_transpose;
    be->op[SDC_OP_SLICE] = vk_op_slice; /* data movement; the other reverse-mode ops stay NULL */
    be->alloc = vk_alloc_fn;
    be->free = vk_free_fn;
    be->upload = vk_upload_fn;
    be->download = vk_download_fn;
    be->synchronize = vk_sync_fn;
    be->supports = vk_supports_fn;
    be->destroy = vk_destroy_fn;
    return be;
}

sdc_status sdc_vulkan_info_get(sdc_backend *be, sdc_vulkan_info *info, sdc_err *err) {
    if (!be || be->device != SDC_DEVICE_VULKAN || !be->impl)
        return sdc_err_set(err, SDC_ERR_ARG, "vulkan: not a Vulkan backend");
    vk_impl *v = vk_of(be);
    memset(info, 0, sizeof *info);
    info->device = v->device_index;
    info->dev = v->info;
    info->in_use_bytes = v->in_use;
    info->peak_bytes = v->peak;
    info->validation = v->validation;
    info->validation_errors = v->validation_errors;
    memcpy(info->first_validation_error, v->first_validation_error,
           sizeof info->first_validation_error);
    return SDC_OK;
}
