/* sampler.c — sampler setup as diffusers' set_timesteps does it for each
 * scheduler (timestep list, sigma table), the denoiser's input scaling and
 * init_noise_sigma, img2img truncation and add_noise. Steps: sampler_step.c. */
#include "sampler_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    sdc_sampler_kind kind;
    bool karras;
} NAMES[] = {
    {"ddim", SDC_SAMPLER_DDIM, false},         {"pndm", SDC_SAMPLER_PNDM, false},
    {"plms", SDC_SAMPLER_PNDM, false},         {"euler", SDC_SAMPLER_EULER, false},
    {"euler_a", SDC_SAMPLER_EULER_A, false},   {"dpmpp_2m", SDC_SAMPLER_DPMPP_2M, false},
    {"dpmpp_2m_karras", SDC_SAMPLER_DPMPP_2M, true}, {"lms", SDC_SAMPLER_LMS, false},
    {"heun", SDC_SAMPLER_HEUN, false},
};

bool sdc_sampler_from_name(const char *name, sdc_sampler_opts *o) {
    if (!name) return false;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        if (strcmp(name, NAMES[i].name) == 0) {
            o->kind = NAMES[i].kind;
            o->karras = NAMES[i].karras;
            return true;
        }
    }
    return false;
}

const char *sdc_sampler_name(sdc_sampler_kind kind) {
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].kind == kind) return NAMES[i].name;
    return "?";
}

/* ---------------------------------------------------------------- setup */

static bool sigma_based(sdc_sampler_kind k) {
    return k == SDC_SAMPLER_EULER || k == SDC_SAMPLER_EULER_A || k == SDC_SAMPLER_LMS ||
           k == SDC_SAMPLER_HEUN;
}

static sdc_spacing default_spacing(sdc_sampler_kind k) {
    /* diffusers' class defaults (SD 1.x's scheduler config names none). */
    return k == SDC_SAMPLER_DDIM || k == SDC_SAMPLER_PNDM ? SDC_SPACING_LEADING
                                                          : SDC_SPACING_LINSPACE;
}

static sdc_status check_opts(const sdc_sampler_opts *o, sdc_err *err) {
    if (!o) return sdc_err_set(err, SDC_ERR_ARG, "sampler: no options");
    if ((unsigned)o->kind >= SDC_SAMPLER_COUNT)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler: unknown kind %d", (int)o->kind);
    if (o->steps < 1 || o->steps > SDC_TRAIN_STEPS)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: steps %d outside 1..%d",
                           sdc_sampler_name(o->kind), o->steps, SDC_TRAIN_STEPS);
    if (!(o->eta >= 0.0f) || !isfinite(o->eta))
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: eta %g must be a finite value >= 0",
                           sdc_sampler_name(o->kind), (double)o->eta);
    if (o->eta != 0.0f && o->kind != SDC_SAMPLER_DDIM)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: eta applies to ddim only",
                           sdc_sampler_name(o->kind));
    if (o->karras && o->kind != SDC_SAMPLER_DPMPP_2M)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: karras sigmas apply to dpmpp_2m only",
                           sdc_sampler_name(o->kind));
    if ((unsigned)o->spacing > SDC_SPACING_TRAILING)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: unknown spacing %d",
                           sdc_sampler_name(o->kind), (int)o->spacing);
    return SDC_OK;
}

/* PNDM with skip_prk_steps: ascending _timesteps t0..t{N-1} become
 * [t0..t{N-2}, t{N-2}, t{N-1}] reversed: one entry repeats (PLMS warm-up). */
static int plms_order(double *t, int n) {
    if (n >= 2) {
        t[n] = t[n - 1];
        t[n - 1] = t[n - 2];
        n++;
    }
    for (int i = 0; i < n / 2; i++) {
        double v = t[i];
        t[i] = t[n - 1 - i];
        t[n - 1 - i] = v;
    }
    return n;
}

/* Heun: [t0, t1, t1, t2, t2, ...] and sigmas [s0, s1, s1, ..., s{N-1}, s{N-1}, 0]. */
static int heun_interleave(double *t, double *sg, int n) {
    for (int i = n - 1; i >= 1; i--) {
        t[2 * i] = t[2 * i - 1] = t[i];
        sg[2 * i] = sg[2 * i - 1] = sg[i];
    }
    return 2 * n - 1;
}

static sdc_status build_schedule(sdc_sampler *s, sdc_err *err) {
    const sdc_sampler_opts *o = &s->o;
    sdc_spacing sp = o->spacing == SDC_SPACING_DEFAULT ? default_spacing(o->kind) : o->spacing;
    sdc_ts_family fam = o->kind == SDC_SAMPLER_DDIM       ? SDC_TS_DDIM
                        : o->kind == SDC_SAMPLER_PNDM     ? SDC_TS_PNDM
                        : o->kind == SDC_SAMPLER_DPMPP_2M ? SDC_TS_DPM
                                                          : SDC_TS_FLOAT;
    int cap = 2 * o->steps + 4;
    double *sg = calloc((size_t)cap, sizeof *sg);
    s->ts = calloc((size_t)cap, sizeof *s->ts);
    s->sig = calloc((size_t)cap, sizeof *s->sig);
    if (!sg || !s->ts || !s->sig) {
        free(sg);
        return sdc_err_set(err, SDC_ERR_OOM, "sampler: out of memory for %d steps", o->steps);
    }
    int n = sdc_schedule_timesteps(fam, sp, o->steps, s->ts, o->steps + 1);
    if (n < 1) {
        free(sg);
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: no timesteps for %d steps",
                           sdc_sampler_name(o->kind), o->steps);
    }
    s->ratio = SDC_TRAIN_STEPS / o->steps;
    if (o->kind == SDC_SAMPLER_PNDM) n = plms_order(s->ts, n);
    /* Leading spacing at 1000 steps reaches t = 1000, past alphas_cumprod
     * (diffusers raises an IndexError there); DDIM/PLMS look alphas up by t,
     * so they use t = 999 instead. */
    if (o->kind == SDC_SAMPLER_DDIM || o->kind == SDC_SAMPLER_PNDM)
        for (int i = 0; i < n; i++) s->ts[i] = fmin(s->ts[i], SDC_TRAIN_STEPS - 1);
    if (o->kind == SDC_SAMPLER_DPMPP_2M && o->karras)
        sdc_schedule_karras(s->ac, n, sg, s->ts);
    else if (o->kind != SDC_SAMPLER_DDIM && o->kind != SDC_SAMPLER_PNDM)
        sdc_schedule_sigmas_at(s->ac, s->ts, n, sg);
    sg[n] = 0.0; /* final_sigmas_type "zero" */
    if (o->kind == SDC_SAMPLER_HEUN) {
        n = heun_interleave(s->ts, sg, n);
        sg[n] = 0.0;
    }
    for (int i = 0; i <= n; i++) s->sig[i] = (float)sg[i];
    s->n_ts = n;
    free(sg);
    return SDC_OK;
}

sdc_sampler *sdc_sampler_create(const sdc_sampler_opts *o, size_t n, sdc_err *err) {
    if (check_opts(o, err) != SDC_OK) return NULL;
    if (n == 0) {
        sdc_err_set(err, SDC_ERR_ARG, "sampler %s: latent of 0 elements", sdc_sampler_name(o->kind));
        return NULL;
    }
    sdc_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        sdc_err_set(err, SDC_ERR_OOM, "sampler: out of memory");
        return NULL;
    }
    s->o = *o;
    s->n = n;
    sdc_schedule_alphas_cumprod(s->ac);
    if (build_schedule(s, err) != SDC_OK) {
        sdc_sampler_free(s);
        return NULL;
    }
    bool fail = false;
    for (int k = 0; k < SDC_SAMPLER_HIST; k++) fail |= !(s->hist[k] = malloc(n * sizeof(float)));
    fail |= !(s->keep = malloc(n * sizeof(float)));
    fail |= !(s->keep2 = malloc(n * sizeof(float)));
    fail |= !(s->tmp = malloc(n * sizeof(float)));
    if (fail) {
        sdc_sampler_free(s);
        sdc_err_set(err, SDC_ERR_OOM, "sampler: out of memory for a latent of %zu elements", n);
        return NULL;
    }
    return s;
}

void sdc_sampler_free(sdc_sampler *s) {
    if (!s) return;
    free(s->ts);
    free(s->sig);
    for (int k = 0; k < SDC_SAMPLER_HIST; k++) free(s->hist[k]);
    free(s->keep);
    free(s->keep2);
    free(s->tmp);
    free(s);
}

void sdc_sampler_push_hist(sdc_sampler *s, const float *v, int max) {
    if (s->n_hist == max) {
        float *old = s->hist[0];
        memmove(s->hist, s->hist + 1, (size_t)(max - 1) * sizeof s->hist[0]);
        s->hist[max - 1] = old;
        s->n_hist--;
    }
    memcpy(s->hist[s->n_hist++], v, s->n * sizeof(float));
}

/* ---------------------------------------------------------------- queries */

int sdc_sampler_iterations(const sdc_sampler *s) { return s->n_ts - s->begin; }

static int clamp_index(const sdc_sampler *s, int i) {
    int idx = s->begin + i;
    return idx < 0 ? 0 : idx >= s->n_ts ? s->n_ts - 1 : idx;
}

float sdc_sampler_timestep(const sdc_sampler *s, int i) { return (float)s->ts[clamp_index(s, i)]; }

float sdc_sampler_sigma(const sdc_sampler *s, int i) {
    if (s->o.kind == SDC_SAMPLER_DDIM || s->o.kind == SDC_SAMPLER_PNDM) return 0.0f;
    return s->sig[clamp_index(s, i)];
}

float sdc_sampler_input_scale(const sdc_sampler *s, int i) {
    if (!sigma_based(s->o.kind)) return 1.0f;
    float sg = s->sig[clamp_index(s, i)];
    return 1.0f / sqrtf(sg * sg + 1.0f);
}

float sdc_sampler_init_noise_sigma(const sdc_sampler *s) {
    if (!sigma_based(s->o.kind)) return 1.0f; /* DDIM, PLMS, DPM++ work in x_t of the VP form */
    float mx = 0.0f;
    for (int i = 0; i <= s->n_ts; i++) mx = fmaxf(mx, s->sig[i]);
    sdc_spacing sp = s->o.spacing == SDC_SPACING_DEFAULT ? default_spacing(s->o.kind) : s->o.spacing;
    return sp == SDC_SPACING_LEADING ? sqrtf(mx * mx + 1.0f) : mx;
}

/* ---------------------------------------------------------------- stepping */

sdc_status sdc_sampler_step(sdc_sampler *s, int i, const float *eps, float *x, sdc_rng *rng,
                            sdc_err *err) {
    return sdc_sampler_step_rows(s, i, eps, x, rng, 1, err);
}

sdc_status sdc_sampler_step_rows(sdc_sampler *s, int i, const float *eps, float *x, sdc_rng *rngs,
                                 int n_rngs, sdc_err *err) {
    if (n_rngs < 1 || s->n % (size_t)n_rngs)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: %zu elements do not split into %d rows",
                           sdc_sampler_name(s->o.kind), s->n, n_rngs);
    if (i != s->taken)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: step %d out of order (expected %d)",
                           sdc_sampler_name(s->o.kind), i, s->taken);
    if (i < 0 || i >= sdc_sampler_iterations(s))
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: step %d outside 0..%d",
                           sdc_sampler_name(s->o.kind), i, sdc_sampler_iterations(s) - 1);
    int idx = s->begin + i;
    sdc_status st;
    switch (s->o.kind) {
    case SDC_SAMPLER_DDIM: st = sdc_step_ddim(s, idx, eps, x, rngs, n_rngs, err); break;
    case SDC_SAMPLER_PNDM: st = sdc_step_pndm(s, idx, eps, x); break;
    case SDC_SAMPLER_EULER: st = sdc_step_euler(s, idx, eps, x, rngs, n_rngs, false, err); break;
    case SDC_SAMPLER_EULER_A: st = sdc_step_euler(s, idx, eps, x, rngs, n_rngs, true, err); break;
    case SDC_SAMPLER_DPMPP_2M: st = sdc_step_dpmpp_2m(s, idx, eps, x); break;
    case SDC_SAMPLER_LMS: st = sdc_step_lms(s, idx, eps, x); break;
    case SDC_SAMPLER_HEUN: st = sdc_step_heun(s, idx, eps, x); break;
    default: st = sdc_err_set(err, SDC_ERR_ARG, "sampler: unknown kind");
    }
    if (st == SDC_OK) s->taken++;
    return st;
}

/* ---------------------------------------------------------------- img2img */

sdc_status sdc_sampler_set_strength(sdc_sampler *s, float strength, sdc_err *err) {
    if (!(strength >= 0.0f && strength <= 1.0f))
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: strength %g outside [0, 1]",
                           sdc_sampler_name(s->o.kind), (double)strength);
    int steps = s->o.steps;
    int init = (int)((double)steps * (double)strength); /* Python's int(): truncation */
    if (init > steps) init = steps;
    int t_start = steps - init > 0 ? steps - init : 0;
    int order = s->o.kind == SDC_SAMPLER_HEUN ? 2 : 1;
    s->begin = t_start * order;
    if (s->begin > s->n_ts) s->begin = s->n_ts;
    s->taken = 0;
    s->n_hist = 0;
    s->heun_second = false;
    return SDC_OK;
}

void sdc_sampler_add_noise(const sdc_sampler *s, const float *x0, const float *noise, float *xt,
                           size_t n) {
    if (s->begin >= s->n_ts) {
        memmove(xt, x0, n * sizeof(float));
        return;
    }
    float a, b; /* xt = a * x0 + b * noise */
    if (s->o.kind == SDC_SAMPLER_DDIM || s->o.kind == SDC_SAMPLER_PNDM) {
        float ac = s->ac[(int)s->ts[s->begin]];
        a = sqrtf(ac);
        b = sqrtf(1.0f - ac);
    } else if (s->o.kind == SDC_SAMPLER_DPMPP_2M) {
        float sg = s->sig[s->begin];
        a = 1.0f / sqrtf(sg * sg + 1.0f);
        b = sg * a;
    } else {
        /* x0 + noise * sigma, in diffusers' order. */
        float sg = s->sig[s->begin];
        for (size_t k = 0; k < n; k++) xt[k] = x0[k] + noise[k] * sg;
        return;
    }
    for (size_t k = 0; k < n; k++) xt[k] = a * x0[k] + b * noise[k];
}
