/* test_vulkan.h — what the Vulkan suite's two files share. */
#ifndef SDC_TEST_VULKAN_H
#define SDC_TEST_VULKAN_H

#include <check.h>

#include "../src/vulkan/sdc_vulkan.h"

typedef struct vk_probe_result {
    sdc_status code;
    char msg[SDC_ERR_MSG_MAX];
} vk_probe_result;

extern vk_probe_result vk_probed;

/* A backend on the default device (the test fails if none). */
sdc_backend *vk_test_backend(void);
/* The validation layer's error count so far (and its first message). */
int vk_validation_errors(sdc_backend *be, char *first, size_t cap);
void vk_assert_no_validation_errors(sdc_backend *be, const char *what);
/* test_vulkan_models.c: the tiny model vs the CPU backend. */
void vk_add_model_tests(Suite *s);

#endif
