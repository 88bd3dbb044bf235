/* test_core.c — placeholder suite (to be written). */
#include "suites.h"

Suite *suite_core(void) { return suite_create("core"); }
