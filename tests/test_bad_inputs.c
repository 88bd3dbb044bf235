/* test_bad_inputs.c — placeholder: filled in by its issue's work. */
#include "suites.h"

Suite *suite_bad_inputs(void) {
    return suite_create("bad_inputs");
}
