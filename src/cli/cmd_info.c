/* cmd_info.c — sdc info (stub: to be implemented). */
#include "cli.h"

int cmd_info(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "sdc info: not implemented yet\n");
    return EXIT_RUNTIME;
}
