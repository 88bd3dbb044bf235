/* test_cuda.c — placeholder: filled in by its issue's work. */
#include "suites.h"

Suite *suite_cuda(void) {
    return suite_create("cuda");
}
