/* vk_ops_common.h — helpers of the op files: dtype codes and addresses as
 * the shaders take them, and the 32-bit index limit. */
#ifndef SDC_VK_OPS_COMMON_H
#define SDC_VK_OPS_COMMON_H

#include "vk_internal.h"

#include <stdint.h>

/* The shaders' dtype code (common.glsl: DT_F32, DT_F16, DT_BF16). */
uint32_t vk_dt(sdc_dtype t);
/* t's device address, 0 for NULL (an absent bias). */
uint64_t vk_addr(const sdc_tensor *t);
/* Every tensor of op fits 32-bit element indices. */
sdc_status vk_check_sizes(const sdc_op *op, sdc_err *err);

#endif
