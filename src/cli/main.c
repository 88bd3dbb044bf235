/* main.c — the sdc command: subcommand dispatch, --help and --version. */
#include "cli.h"

#include "../cpu/cpu_features.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_embed(int argc, char **argv); /* cmd_embed.c */
int cmd_report(int argc, char **argv); /* cmd_report.c */
int cmd_probe(int argc, char **argv);  /* cmd_probe.c */

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
    {"report", "per-class quality of augmentation outputs: CLIP score, zero-shot, FID/KID, diversity", cmd_report},
    {"probe", "does augmentation help? linear-probe top-1, real-only vs real + each output folder", cmd_probe},
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
    fprintf(f, "\nOptions take --opt value, --opt=value or a short -o value; every command's\n"
               "--help lists its own. Common ones: -m/--model, -p/--prompt, -n/--negative-prompt,\n"
               "-o/--out, -s/--seed, -W/--width, -H/--height, -b/--batch, -t/--threads, -q, --json,\n"
               "--backend.\n"
               "\nCLIP's vocabulary (bpe_simple_vocab_16e6.txt.gz) is --vocab PATH, else the first\n"
               "of $SDC_VOCAB, next to the sdc binary, <prefix>/share/sdc/ (where make install\n"
               "puts it), ./weights/, and ../weights or ../../weights from the binary; a diffusers\n"
               "folder's own tokenizer/ files win when it has them.\n"
               "\nenvironment: SDC_BACKEND (cpu, cuda[:N], auto), SDC_THREADS, SDC_VOCAB\n"
               "exit codes: 0 ok, 1 runtime or input error, 2 usage error, 130 interrupted\n");
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

bool cli_parse_size(const char *cmd, const char *flag, const char *s, long long *w, long long *h) {
    char *end;
    errno = 0;
    *w = strtoll(s, &end, 10);
    if (end != s && (*end == 'x' || *end == 'X')) *h = strtoll(end + 1, &end, 10);
    else *h = *w;
    if (end == s || *end || errno || *w < 8 || *h < 8 || *w > 8192 || *h > 8192 || *w % 8 || *h % 8) {
        cli_usage_error(cmd, "%s must be N or WxH, multiples of 8 in [8, 8192] (got '%s')", flag, s);
        return false;
    }
    return true;
}

uint64_t cli_random_seed(void) {
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s) s = 0;
        close(fd);
    }
    return s & 0xffffffffULL; /* torch's CPU generator uses 32 bits of the seed */
}

void cli_apply_threads(long long n) {
    if (n > 0) sdc_set_threads((int)n);
}

static char interrupt_msg[128];

static void on_interrupt(int sig) {
    ssize_t w = write(STDERR_FILENO, interrupt_msg, strlen(interrupt_msg));
    (void)w;
    _exit(128 + sig);
}

void cli_on_interrupt_resume(const char *cmd) {
    snprintf(interrupt_msg, sizeof interrupt_msg,
             "\nsdc %s: interrupted; rerun the same command to resume\n", cmd);
    struct sigaction sa = {0};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
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
    sdc_blas_select(argv); /* may re-execute with OPENBLAS_CORETYPE set */
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
    size_t best = 0;
    int d = 1 << 30;
    for (size_t i = 0; i < n_commands; i++) {
        int e = cli_edit_distance(argv[1], commands[i].name);
        if (e < d) d = e, best = i;
    }
    if (d <= 2) fprintf(stderr, "sdc: unknown command '%s' (did you mean %s?)\n", argv[1], commands[best].name);
    else fprintf(stderr, "sdc: unknown command '%s' (see sdc --help)\n", argv[1]);
    return EXIT_USAGE;
}
