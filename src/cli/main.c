/* main.c — the sdc command: subcommand dispatch, --help and --version. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cmd_embed(int argc, char **argv); /* cmd_embed.c */

static const sdc_command commands[] = {
    {"info", "describe a safetensors file, a checkpoint folder or a PNG", cmd_info},
    {"generate", "txt2img / img2img to PNG (diffusers-identical seeds and samplers)", cmd_generate},
    {"augment", "grow an ImageFolder dataset with generated images (resumable, shardable)", cmd_augment},
    {"manifest", "merge the shard manifests of an augment output folder", cmd_manifest},
    {"eval", "run one model component on tensors from a file (reference harness)", cmd_eval},
    {"compare", "max-abs and relative-L2 error between two tensor files", cmd_compare},
    {"make-random", "write a random-weight SD 1.5 checkpoint (either layout)", cmd_make_random},
    {"textinv-init", "a textual-inversion file initialized from a word's token embeddings", cmd_textinv_init},
    {"train-embedding", "learn a textual-inversion token from a folder of images (resumable)", cmd_train_embedding},
    {"tokenize", "the CLIP token ids of a prompt (SD 1.x, 77 ids)", cmd_tokenize},
    {"embed", "CLIP image embeddings of a folder into a resumable pool cache (retrieval)", cmd_embed},
};
static const size_t n_commands = sizeof commands / sizeof commands[0];

static void print_help(FILE *f) {
    fprintf(f,
            "sdc %s — Stable Diffusion 1.x in C\n\n"
            "usage: sdc <command> [options]\n"
            "       sdc <command> --help\n"
            "       sdc --version\n\ncommands:\n",
            SDC_VERSION);
    for (size_t i = 0; i < n_commands; i++)
        fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit codes: 0 ok, 1 runtime or input error, 2 usage error\n");
}

int cli_error(const char *cmd, const sdc_err *err) {
    fprintf(stderr, "sdc %s: %s\n", cmd, err->msg[0] ? err->msg : sdc_status_name(err->code));
    return EXIT_RUNTIME;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "sdc %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see sdc %s --help)\n", cmd);
    return EXIT_USAGE;
}

bool cli_is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

bool cli_parse_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi,
                   long long *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno == ERANGE || v < lo || v > hi) {
        cli_usage_error(cmd, "%s: '%s' is not an integer in [%lld, %lld]", flag, s ? s : "",
                        lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char *cmd, const char *flag, const char *s, double lo, double hi,
                     double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi) {
        cli_usage_error(cmd, "%s: '%s' is not a number in [%g, %g]", flag, s ? s : "", lo, hi);
        return false;
    }
    *out = v;
    return true;
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("sdc %s\n", SDC_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < n_commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sdc: unknown command '%s' (see sdc --help)\n", argv[1]);
    return EXIT_USAGE;
}
