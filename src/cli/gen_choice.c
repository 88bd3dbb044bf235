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

bool cli_gen_choice_flag(const char *cmd, const char *flag, const char *value, cli_gen_choice *c,
                         int *rc) {
    bool prec = !strcmp(flag, "--precision"), vae = !strcmp(flag, "--vae-precision");
    if (!prec && !vae && strcmp(flag, "--rng")) return false;
    *rc = EXIT_OK;
    if (!value) {
        *rc = cli_usage_error(cmd, "%s needs a value", flag);
    } else if (prec || vae) {
        if (!sdc_precision_from_name(value, prec ? &c->precision : &c->vae_precision))
            *rc = cli_usage_error(cmd, "%s must be auto, f32, f16 or bf16 (got '%s')", flag, value);
    } else if (!parse_rng(value, c)) {
        *rc = cli_usage_error(cmd, "--rng must be cpu, cuda or cuda:N with N in [1, 1000000] "
                              "(got '%s')", value);
    }
    return true;
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
