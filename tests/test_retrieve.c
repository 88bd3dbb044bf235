/* test_retrieve.c — placeholder: filled in by its issue's work. */
#include "suites.h"

Suite *suite_retrieve(void) {
    return suite_create("retrieve");
}
