/* options.h — the one option parser of every sdc command: a command declares
 * its options in one table and gets parsing, checking and --help from it.
 *
 * How a command declares its options: one table of rows, each pointing at
 * the field it fills, kept in the command's scope so that cli_given() can
 * ask about it afterwards.
 *
 *     typedef struct { const char *model, *prompt; long long steps; bool quiet; } my_args;
 *
 *     int cmd_mine(int argc, char **argv) {
 *         my_args a = {.steps = 25};                           // defaults first
 *         cli_opt opts[] = {
 *             CLI_MODEL(&a.model, CLI_REQUIRED),               // --model, -m, --clip
 *             {"prompt", 'p', CLI_STRING, &a.prompt, .metavar = "TEXT",
 *              .help = "the prompt", .flags = CLI_REQUIRED},
 *             {"steps", 0, CLI_INT, &a.steps, .lo = 1, .hi = 1000, .metavar = "N",
 *              .help = "sampler steps (default 25)"},
 *             CLI_QUIET(&a.quiet),
 *             CLI_END};
 *         static const cli_spec spec = {"mine", "--model M --prompt TEXT [options]",
 *                                       "What it does, in a line or two.", NULL};
 *         int rc = cli_parse(&spec, opts, argc, argv, NULL);
 *         if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
 *         ...
 *     }
 *
 * Rows: name is the long name without "--", with aliases after '|'
 * ("cfg|cfg-scale"); short is a one-letter alias ('p' for -p) or 0. Types and
 * their destinations: CLI_FLAG bool*, CLI_STRING const char**, CLI_INT
 * long long* (range [lo, hi]), CLI_FLOAT double* (range [lo, hi]), CLI_CHOICE
 * const char** (one of .choices, "a|b|c"). Values come as "--opt value",
 * "--opt=value" or "-o value"; "--" ends the options. A repeated option keeps
 * its last value. Errors (an unknown option, with the nearest known one
 * suggested; a missing or bad value; a missing required option; a positional
 * argument too many) are printed as usage errors naming the option.
 * cli_parse returns EXIT_OK, EXIT_USAGE, or CLI_HELP_SHOWN after --help/-h
 * (the help is generated from the table and the spec). After parsing,
 * cli_given(opts, "name") says whether the user gave an option, for checks
 * such as "--strength needs --init". */
#ifndef SDC_CLI_OPTIONS_H
#define SDC_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

typedef enum cli_opt_type { CLI_FLAG, CLI_STRING, CLI_INT, CLI_FLOAT, CLI_CHOICE } cli_opt_type;

enum {
    CLI_REQUIRED = 1, /* must be given */
    CLI_HIDDEN = 2,   /* accepted but not listed in --help */
};

typedef struct cli_opt {
    const char *name;     /* "steps", or "cfg|cfg-scale" with aliases; NULL ends the table */
    char short_name;      /* 'p' for -p, or 0 */
    cli_opt_type type;
    void *dst;            /* where the value goes (see above) */
    unsigned flags;       /* CLI_REQUIRED, CLI_HIDDEN */
    double lo, hi;        /* CLI_INT, CLI_FLOAT: the accepted range */
    const char *choices;  /* CLI_CHOICE: "plain|a1111" */
    const char *metavar;  /* "N", "TEXT", ... for --help */
    const char *help;     /* one line; more lines with "\n" */
    int given;            /* set by cli_parse: how often the user gave it */
} cli_opt;

#define CLI_END {0}

/* The options most commands share. */
#define CLI_MODEL(dst, fl)                                                                     \
    {"model|clip", 'm', CLI_STRING, (dst), (fl), .metavar = "M",                              \
     .help = "SD 1.x checkpoint: a .safetensors file or a diffusers folder"}
/* --device fills a process-wide index (cli_device_index, backend_choice.c):
 * one command parses one command line. */
extern long long cli_device_index;
#define CLI_BACKEND(dst)                                                                       \
    {"backend", 0, CLI_STRING, (dst), .metavar = "B",                                         \
     .help = "cpu, cuda[:N], vulkan[:N] or auto (default cpu, or $SDC_BACKEND)"},             \
    {"device", 0, CLI_INT, &cli_device_index, .lo = 0, .hi = 1024, .metavar = "N",            \
     .help = "the GPU for cuda or vulkan (default 0, or $SDC_VULKAN_DEVICE for vulkan);\n"    \
             "the same as --backend cuda:N / vulkan:N"}
#define CLI_THREADS(dst)                                                                       \
    {"threads", 't', CLI_INT, (dst), .lo = 1, .hi = 1024, .metavar = "N",                     \
     .help = "CPU worker threads (default: all cores, or $SDC_THREADS)"}
#define CLI_VOCAB(dst)                                                                         \
    {"vocab", 0, CLI_STRING, (dst), .metavar = "PATH",                                        \
     .help = "CLIP's bpe_simple_vocab_16e6.txt.gz (default: $SDC_VOCAB, next to the\n"        \
             "binary, or the install prefix's share/sdc; see sdc --help)"}
#define CLI_QUIET(dst) {"quiet", 'q', CLI_FLAG, (dst), .help = "no progress output"}
#define CLI_JSON(dst) {"json", 0, CLI_FLAG, (dst), .help = "print the result as one JSON object"}
#define CLI_OUT(dst, fl, what)                                                                 \
    {"out|output", 'o', CLI_STRING, (dst), (fl), .metavar = "PATH", .help = (what)}

typedef struct cli_spec {
    const char *command;   /* "generate", "augment", "manifest merge" */
    const char *synopsis;  /* after "usage: sdc <command> " */
    const char *about;     /* a paragraph before the options, or NULL */
    const char *epilogue;  /* a paragraph after them, or NULL */
} cli_spec;

#define CLI_HELP_SHOWN (-1)

/* Positional arguments: up to max_pos of them into pos[]; n_pos receives the
 * count. A command without any passes NULL to cli_parse. */
typedef struct cli_positional {
    const char **pos;
    int max_pos, n_pos;
    const char *what; /* "DATASET", "A.safetensors B.safetensors", for messages */
} cli_positional;

/* Parses argv[1..argc) (argv[0] is the command) against opts. */
int cli_parse(const cli_spec *spec, cli_opt *opts, int argc, char **argv, cli_positional *positional);
/* True if the user gave the option (by any of its names). */
bool cli_given(const cli_opt *opts, const char *name);
/* Prints the generated help of a command. */
void cli_print_help(const cli_spec *spec, const cli_opt *opts, FILE *f);
/* Levenshtein distance of two strings (at most 64 characters are compared). */
int cli_edit_distance(const char *a, const char *b);

#endif
