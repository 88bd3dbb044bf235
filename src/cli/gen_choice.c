/* gen_choice.c — --precision, --vae-precision and --rng (see gen_choice.h). */
#include "gen_choice.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* "cpu", "cuda", "cuda:N" with N in [1, 1000000]. */
static bool parse_rng(const char *s, cli_gen_choice *c) {
    if (!strcmp(s, "cpu")) {
        c->rng = SDC_RNG_CPU, c->rng_grid_cap = 0;
        return true;
    }
    if (strncmp(s, "cuda", 4)) return false;
    if (!s[4]) {
        c->rng = SDC_RNG_CUDA, c->rng_grid_cap = 0;
        return true;
    }
    if (s[4] != ':' || s[5] < '0' || s[5] > '9') return false;
    char *end;
    errno = 0;
    long n = strtol(s + 5, &end, 10);
    if (errno || *end || n < 1 || n > 1000000) return false;
    c->rng = SDC_RNG_CUDA, c->rng_grid_cap = (uint32_t)n;
    return true;
}

int cli_gen_choice_resolve(const char *cmd, cli_gen_choice *c) {
    /* The option table already limited the precisions to known names. */
    if (c->precision_arg && !sdc_precision_from_name(c->precision_arg, &c->precision))
        return cli_usage_error(cmd, "--precision must be auto, f32, f16 or bf16 (got '%s')",
                               c->precision_arg);
    if (c->vae_precision_arg && !sdc_precision_from_name(c->vae_precision_arg, &c->vae_precision))
        return cli_usage_error(cmd, "--vae-precision must be auto, f32, f16 or bf16 (got '%s')",
                               c->vae_precision_arg);
    if (c->rng_arg && !parse_rng(c->rng_arg, c))
        return cli_usage_error(cmd, "--rng must be cpu, cuda or cuda:N with N in [1, 1000000] "
                               "(got '%s')", c->rng_arg);
    return EXIT_OK;
}

void cli_gen_choice_apply(const cli_gen_choice *c, sdc_generate_opts *o) {
    o->precision = c->precision;
    o->vae_precision = c->vae_precision;
    o->rng = c->rng;
    o->rng_grid_cap = c->rng_grid_cap;
}

const char *cli_gen_choice_rng_infotext(const cli_gen_choice *c) {
    return c->rng == SDC_RNG_CPU ? "CPU" : NULL;
}
