/* test_faults.c — placeholder: filled in by its issue's work. */
#include "suites.h"

Suite *suite_faults(void) {
    return suite_create("faults");
}
