/* progress.c — see progress.h. */
#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_eta(double s, char *buf, size_t cap) {
    if (s < 0 || s > 1e7) snprintf(buf, cap, "?");
    else if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
}

void cli_progress_start(cli_progress *p, const char *label, const char *unit, int total,
                        bool quiet) {
    *p = (cli_progress){.label = label, .unit = unit, .total = total, .quiet = quiet,
                        .tty = isatty(2) == 1, .start = now(), .last_decile = -1};
    p->last_print = p->start;
}

void cli_progress_update(cli_progress *p, int done) {
    if (p->quiet || p->total <= 0) return;
    double t = now(), el = t - p->start;
    double rate = el > 0 ? done / el : 0;
    char eta[32];
    format_eta(rate > 0 ? (p->total - done) / rate : -1, eta, sizeof eta);
    if (p->tty) {
        enum { W = 30 };
        char bar[W + 1];
        int fill = (int)((long long)W * done / p->total);
        for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '-';
        bar[W] = '\0';
        /* it/s for fast work, s/it for slow (CPU diffusion steps). */
        if (rate >= 1) fprintf(stderr, "\r%s [%s] %d/%d %.2f %s/s ETA %s %s ", p->label, bar, done,
                               p->total, rate, p->unit, eta, p->note);
        else fprintf(stderr, "\r%s [%s] %d/%d %.1f s/%s ETA %s %s ", p->label, bar, done, p->total,
                     rate > 0 ? 1 / rate : 0.0, p->unit, eta, p->note);
        fflush(stderr);
        return;
    }
    int decile = (int)(10LL * done / p->total);
    if (decile != p->last_decile || t - p->last_print >= 30 || done == p->total) {
        fprintf(stderr, "%s: %d/%d (%.0f%%), %.2f %s/s, ETA %s%s%s\n", p->label, done, p->total,
                100.0 * done / p->total, rate, p->unit, eta, p->note[0] ? ", " : "", p->note);
        p->last_decile = decile;
        p->last_print = t;
    }
}

void cli_progress_note(cli_progress *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->note, sizeof p->note, fmt, ap);
    va_end(ap);
}

void cli_progress_end(cli_progress *p) {
    if (p->quiet) return;
    if (p->tty) fputc('\n', stderr);
    fprintf(stderr, "%s: done in %.1f s\n", p->label, now() - p->start);
}
