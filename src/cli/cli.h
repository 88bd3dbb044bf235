/* cli.h — what the sdc subcommands share: exit codes, error printing and
 * strict argument parsing. Only the CLI prints and picks exit codes. */
#ifndef SDC_CLI_H
#define SDC_CLI_H

#include "sdc.h"
#include "sdc_ops.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "options.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct sdc_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} sdc_command;

/* Prints "sdc <cmd>: <message>" to stderr and returns EXIT_RUNTIME / EXIT_USAGE. */
int cli_error(const char *cmd, const sdc_err *err);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing: the whole string, no overflow, finite, in [lo, hi].
 * On failure prints a usage error naming the flag and returns false. */
bool cli_parse_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi,
                   long long *out);
bool cli_parse_float(const char *cmd, const char *flag, const char *s, double lo, double hi,
                     double *out);
/* "512" or "768x512" into w and h: multiples of 8 in [8, 8192]; a usage
 * error naming flag otherwise. */
bool cli_parse_size(const char *cmd, const char *flag, const char *s, long long *w, long long *h);
/* True if arg is "--help" or "-h". */
bool cli_is_help(const char *arg);
/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s);

/* A random seed from /dev/urandom, 32 bits (what torch's CPU generator uses). */
uint64_t cli_random_seed(void);
/* Applies --threads N (0: keep the default). */
void cli_apply_threads(long long n);
/* On SIGINT/SIGTERM: prints "sdc <cmd>: interrupted; rerun the same command
 * to resume" and exits 130. For the resumable commands (augment, embed),
 * whose outputs are atomic so that stopping anywhere is safe. */
void cli_on_interrupt_resume(const char *cmd);

/* --backend auto|cpu|cuda[:N]|vulkan[:N] for the commands that compute
 * (backend_choice.c). choice NULL is the default: $SDC_BACKEND, else cpu.
 * auto is CUDA device 0 when one is present, else a hardware Vulkan GPU,
 * else the CPU; either way a one-line note on stderr
 * unless quiet. cli_backend_valid prints a usage error for a bad choice. */
#define CLI_BACKEND_USAGE \
    "  --backend B            cpu, cuda[:N], vulkan[:N] or auto (default cpu, or $SDC_BACKEND)\n"
bool cli_backend_valid(const char *cmd, const char *choice);
sdc_backend *cli_backend_create(const char *cmd, const char *choice, bool quiet, sdc_err *err);

int cmd_info(int argc, char **argv);
int cmd_info_cpu(bool json); /* sdc info --cpu */
int cmd_info_devices(bool json); /* sdc info --devices */
int cmd_eval(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_make_random(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_textinv_init(int argc, char **argv);
int cmd_augment(int argc, char **argv);
int cmd_manifest(int argc, char **argv);
int cmd_train_embedding(int argc, char **argv);

#endif
