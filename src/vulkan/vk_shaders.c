/* vk_shaders.c — the SPIR-V of every shader in shaders/, compiled by glslc
 * at build time (the Makefile writes $(BUILD)/vkspv/<name>.inc as C word
 * lists) and embedded here: nothing is compiled at run time but the
 * driver's pipelines. */
#include "vk_internal.h"

static const uint32_t spv_unary[] =
#include "unary.inc"
;
static const uint32_t spv_binary[] =
#include "binary.inc"
;
static const uint32_t spv_layout[] =
#include "layout.inc"
;
static const uint32_t spv_embed[] =
#include "embed.inc"
;
static const uint32_t spv_norm[] =
#include "norm.inc"
;
static const uint32_t spv_gemm[] =
#include "gemm.inc"
;
static const uint32_t spv_conv[] =
#include "conv.inc"
;
static const uint32_t spv_attention[] =
#include "attention.inc"
;

#define SPV(id, name, arr) [id] = {name, arr, sizeof arr}

const vk_spirv vk_spirv_table[VK_SH_COUNT] = {
    SPV(VK_SH_UNARY, "unary", spv_unary),       SPV(VK_SH_BINARY, "binary", spv_binary),
    SPV(VK_SH_LAYOUT, "layout", spv_layout),    SPV(VK_SH_EMBED, "embed", spv_embed),
    SPV(VK_SH_NORM, "norm", spv_norm),          SPV(VK_SH_GEMM, "gemm", spv_gemm),
    SPV(VK_SH_CONV, "conv", spv_conv),          SPV(VK_SH_ATTENTION, "attention", spv_attention),
};
