/* progress.h — the CLI's progress reporting on stderr: a redrawn bar with
 * rate and ETA on a terminal, a plain line every ~10% (or 30 s) otherwise,
 * nothing when quiet. */
#ifndef SDC_CLI_PROGRESS_H
#define SDC_CLI_PROGRESS_H

#include <stdbool.h>

typedef struct cli_progress {
    const char *label, *unit; /* "sampling", "it" */
    int total;
    bool quiet, tty;
    double start, last_print;
    int last_decile;
    char note[64]; /* shown after the ETA (e.g. the running loss); empty: nothing */
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, const char *unit, int total,
                        bool quiet);
void cli_progress_update(cli_progress *p, int done);
/* Sets the text shown after the ETA from the next update on. */
void cli_progress_note(cli_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the bar's line (terminal) and prints the total time. */
void cli_progress_end(cli_progress *p);

#endif
