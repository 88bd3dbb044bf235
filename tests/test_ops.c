/* test_ops.c — placeholder suite (to be written). */
#include "suites.h"

Suite *suite_ops(void) { return suite_create("ops"); }
