/* test_clip.c — placeholder: filled in by its issue's work. */
#include "suites.h"

Suite *suite_clip(void) {
    return suite_create("clip");
}
