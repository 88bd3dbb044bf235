/* options.c — the option parser every command shares (see options.h): long
 * names with aliases, short letters, --opt=value, ranges, choices, required
 * options, the nearest known option for a typo, and generated --help. */
#include "options.h"

#include "cli.h"

#include <limits.h>
#include <string.h>

int cli_edit_distance(const char *a, const char *b) {
    int la = (int)strnlen(a, 64), lb = (int)strnlen(b, 64);
    int row[65];
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* True if the '|'-separated list names holds name[0..n). */
static bool names_match(const char *names, const char *name, size_t n) {
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

/* The first name of a row ("cfg" of "cfg|cfg-scale") into buf. */
static const char *first_name(const cli_opt *o, char *buf, size_t cap) {
    size_t len = strcspn(o->name, "|");
    snprintf(buf, cap, "%.*s", (int)len, o->name);
    return buf;
}

static cli_opt *find_long(cli_opt *opts, const char *name, size_t n) {
    for (cli_opt *o = opts; o->name; o++)
        if (names_match(o->name, name, n)) return o;
    return NULL;
}

static cli_opt *find_short(cli_opt *opts, char c) {
    for (cli_opt *o = opts; o->name; o++)
        if (o->short_name && o->short_name == c) return o;
    return NULL;
}

bool cli_given(const cli_opt *opts, const char *name) {
    for (const cli_opt *o = opts; o->name; o++)
        if (names_match(o->name, name, strlen(name))) return o->given > 0;
    return false;
}

/* "unknown option '--stpes' (did you mean --steps?)" */
static int unknown(const cli_spec *spec, const cli_opt *opts, const char *arg) {
    const char *name = arg;
    while (*name == '-') name++;
    size_t n = strcspn(name, "=");
    char given[80];
    snprintf(given, sizeof given, "%.*s", (int)(n < 64 ? n : 64), name);
    int best = cli_edit_distance(given, "help");
    char best_name[80] = "help";
    for (const cli_opt *o = opts; o->name; o++) {
        for (const char *p = o->name; *p;) {
            size_t len = strcspn(p, "|");
            char cand[80];
            snprintf(cand, sizeof cand, "%.*s", (int)(len < 64 ? len : 64), p);
            int d = cli_edit_distance(given, cand);
            if (d < best) best = d, snprintf(best_name, sizeof best_name, "%s", cand);
            p += len + (p[len] == '|');
        }
    }
    int limit = (int)strlen(given) / 3 > 2 ? (int)strlen(given) / 3 : 2;
    if (best_name[0] && best <= limit)
        return cli_usage_error(spec->command, "unknown option '%.*s' (did you mean --%s?)",
                               (int)strcspn(arg, "="), arg, best_name);
    return cli_usage_error(spec->command, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
}

/* Stores value into o's destination; a usage error names flag. */
static int store(const cli_spec *spec, cli_opt *o, const char *flag, const char *value) {
    switch (o->type) {
    case CLI_FLAG:
        *(bool *)o->dst = true;
        return EXIT_OK;
    case CLI_STRING:
        *(const char **)o->dst = value;
        return EXIT_OK;
    case CLI_INT: { /* a range bound at 2^63 (INT64_MAX as a double) saturates */
        long long lo = o->lo <= -9.2e18 ? LLONG_MIN : (long long)o->lo;
        long long hi = o->hi >= 9.2e18 ? LLONG_MAX : (long long)o->hi;
        return cli_parse_int(spec->command, flag, value, lo, hi, (long long *)o->dst) ? EXIT_OK
                                                                                       : EXIT_USAGE;
    }
    case CLI_FLOAT:
        return cli_parse_float(spec->command, flag, value, o->lo, o->hi, (double *)o->dst)
                   ? EXIT_OK : EXIT_USAGE;
    case CLI_CHOICE:
        if (!names_match(o->choices, value, strlen(value)))
            return cli_usage_error(spec->command, "%s must be one of %s (got '%s')", flag,
                                   o->choices, value);
        *(const char **)o->dst = value;
        return EXIT_OK;
    }
    return EXIT_USAGE;
}

int cli_parse(const cli_spec *spec, cli_opt *opts, int argc, char **argv, cli_positional *pos) {
    bool options_done = false;
    if (pos) pos->n_pos = 0;
    for (cli_opt *o = opts; o->name; o++) o->given = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || !strcmp(arg, "-")) {
            if (!pos || pos->n_pos == pos->max_pos)
                return cli_usage_error(spec->command, "unexpected argument '%s' (%s)", arg,
                                       pos && pos->max_pos ? "more than one input; quote values with spaces"
                                                           : "this command takes only options");
            pos->pos[pos->n_pos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            options_done = true;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cli_print_help(spec, opts, stdout);
            return CLI_HELP_SHOWN;
        }
        cli_opt *o;
        const char *value = NULL;
        char flag[80];
        if (arg[1] == '-') {
            size_t n = strcspn(arg + 2, "=");
            if (!(o = find_long(opts, arg + 2, n))) return unknown(spec, opts, arg);
            if (arg[2 + n] == '=') value = arg + 3 + n;
            snprintf(flag, sizeof flag, "--%.*s", (int)(n < 64 ? n : 64), arg + 2);
        } else {
            if (!(o = find_short(opts, arg[1])) || (arg[2] && arg[2] != '=')) return unknown(spec, opts, arg);
            if (arg[2] == '=') value = arg + 3;
            snprintf(flag, sizeof flag, "-%c", arg[1]);
        }
        if (o->type == CLI_FLAG && value)
            return cli_usage_error(spec->command, "%s takes no value (got '%s')", flag, value);
        if (o->type != CLI_FLAG && !value) {
            if (i + 1 >= argc) return cli_usage_error(spec->command, "%s needs a value", flag);
            value = argv[++i];
        }
        int rc = store(spec, o, flag, value);
        if (rc) return rc;
        o->given++;
    }
    for (cli_opt *o = opts; o->name; o++) {
        char name[64];
        if ((o->flags & CLI_REQUIRED) && !o->given)
            return cli_usage_error(spec->command, "--%s is required", first_name(o, name, sizeof name));
    }
    return EXIT_OK;
}

void cli_print_help(const cli_spec *spec, const cli_opt *opts, FILE *f) {
    fprintf(f, "usage: sdc %s %s\n", spec->command, spec->synopsis);
    if (spec->about) fprintf(f, "\n%s\n", spec->about);
    fprintf(f, "\noptions:\n");
    for (const cli_opt *o = opts; o->name; o++) {
        if (o->flags & CLI_HIDDEN) continue;
        char names[160] = "";
        size_t len = 0;
        len += (size_t)snprintf(names + len, sizeof names - len, o->short_name ? "-%c, " : "    ",
                                o->short_name);
        for (const char *p = o->name; *p && len < sizeof names;) {
            size_t n = strcspn(p, "|");
            len += (size_t)snprintf(names + len, sizeof names - len, "%s--%.*s", p == o->name ? "" : ", ",
                                    (int)n, p);
            p += n + (p[n] == '|');
        }
        if (o->type != CLI_FLAG && len < sizeof names)
            snprintf(names + len, sizeof names - len, " %s", o->type == CLI_CHOICE ? o->choices
                                                             : o->metavar ? o->metavar : "X");
        const char *help = o->help ? o->help : "";
        int width = (int)strlen(names);
        if (width > 24) fprintf(f, "  %s\n%28s", names, "");
        else fprintf(f, "  %-24s  ", names);
        for (const char *p = help; *p;) {
            size_t n = strcspn(p, "\n");
            fprintf(f, "%.*s%s", (int)n, p, (o->flags & CLI_REQUIRED) && !p[n] ? " (required)" : "");
            p += n;
            if (*p == '\n') {
                p++;
                fprintf(f, "\n%28s", "");
            }
        }
        if (!*help && (o->flags & CLI_REQUIRED)) fputs("(required)", f);
        fputc('\n', f);
    }
    fprintf(f, "  -h, --help                this help\n");
    if (spec->epilogue) fprintf(f, "\n%s\n", spec->epilogue);
}
