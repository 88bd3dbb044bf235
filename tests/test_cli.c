/* test_cli.c — placeholder suite (to be written). */
#include "suites.h"

Suite *suite_cli(void) { return suite_create("cli"); }
