/* test_safetensors.c — placeholder suite (to be written). */
#include "suites.h"

Suite *suite_safetensors(void) { return suite_create("safetensors"); }
