/* gen_choice.h — the generation options that generate and augment share:
 * --precision, --vae-precision and --rng, declared as option rows
 * (CLI_GEN_CHOICE_OPTS) and resolved and applied in one place (gen_choice.c). */
#ifndef SDC_CLI_GEN_CHOICE_H
#define SDC_CLI_GEN_CHOICE_H

#include "../pipeline/pipeline.h"
#include "cli.h"
#include "options.h"

typedef struct cli_gen_choice {
    const char *precision_arg, *vae_precision_arg, *rng_arg; /* as given, or NULL */
    sdc_precision precision, vae_precision;
    sdc_rng_source rng;
    uint32_t rng_grid_cap;
} cli_gen_choice;

/* Three rows of a command's option table, filling c's *_arg fields. */
#define CLI_GEN_CHOICE_OPTS(c)                                                                  \
    {"precision", 0, CLI_CHOICE, &(c)->precision_arg, .choices = "auto|f32|f16|bf16",           \
     .help = "text encoder and UNet activations (default auto: f16 on cuda, f32 on\n"           \
             "the cpu)"},                                                                       \
    {"vae-precision", 0, CLI_CHOICE, &(c)->vae_precision_arg, .choices = "auto|f32|f16|bf16",   \
     .help = "VAE activations (default auto = f32; an image that overflows in f16 is\n"         \
             "decoded again at f32)"},                                                          \
    {"rng", 0, CLI_STRING, &(c)->rng_arg, .metavar = "cpu|cuda[:N]",                            \
     .help = "the seed's noise: torch's CPU generator (default; A1111's \"RNG: CPU\")\n"        \
             "or torch's CUDA one (A1111's default GPU seeds), computed on any backend.\n"      \
             "N: the GPU's resident 256-thread blocks (SMs x max threads per SM / 256;\n"       \
             "H100 1056, RTX 4090 768), for noise tensors above 256 N elements"}

/* Turns the given strings into the choice: EXIT_OK, or the usage exit code
 * after printing an error that names the option. */
int cli_gen_choice_resolve(const char *cmd, cli_gen_choice *c);
/* Copies the choice into generation options. */
void cli_gen_choice_apply(const cli_gen_choice *c, sdc_generate_opts *o);
/* A1111's "RNG" infotext value: "CPU" for torch's CPU generator, NULL for
 * the CUDA one (A1111 writes nothing for its default, GPU). */
const char *cli_gen_choice_rng_infotext(const cli_gen_choice *c);

#endif
