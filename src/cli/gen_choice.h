/* gen_choice.h — the generation options that generate and augment share:
 * --precision, --vae-precision and --rng, parsed and applied in one place
 * (gen_choice.c), so each command adds them with a few lines. */
#ifndef SDC_CLI_GEN_CHOICE_H
#define SDC_CLI_GEN_CHOICE_H

#include "../pipeline/pipeline.h"
#include "cli.h"

#define CLI_GEN_CHOICE_USAGE \
    "  --precision P          text encoder and UNet activations: auto (f16 on cuda, f32 on\n" \
    "                         the cpu), f32, f16 or bf16 (default auto)\n" \
    "  --vae-precision P      VAE activations: auto (= f32), f32, f16 (an image that\n" \
    "                         overflows is decoded again at f32) or bf16\n" \
    "  --rng cpu|cuda[:N]     the seed's noise: torch's CPU generator (default; A1111's\n" \
    "                         \"RNG: CPU\") or torch's CUDA one (A1111's default GPU seeds),\n" \
    "                         computed on any backend. N: the GPU's resident 256-thread\n" \
    "                         blocks (SMs x max threads per SM / 256; H100 1056, RTX 4090\n" \
    "                         768), for noise tensors above 256 N elements\n"

typedef struct cli_gen_choice {
    sdc_precision precision, vae_precision;
    sdc_rng_source rng;
    uint32_t rng_grid_cap;
} cli_gen_choice;

/* When flag is one of the three: parses value (NULL when the flag was last)
 * into c, sets *rc to EXIT_OK or the usage exit code (message printed) and
 * returns true; false for any other flag. */
bool cli_gen_choice_flag(const char *cmd, const char *flag, const char *value, cli_gen_choice *c,
                         int *rc);
/* Copies the choice into generation options. */
void cli_gen_choice_apply(const cli_gen_choice *c, sdc_generate_opts *o);
/* A1111's "RNG" infotext value: "CPU" for torch's CPU generator, NULL for
 * the CUDA one (A1111 writes nothing for its default, GPU). */
const char *cli_gen_choice_rng_infotext(const cli_gen_choice *c);

#endif
