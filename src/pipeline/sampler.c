/* sampler.c — sampler names, and setup as diffusers' set_timesteps does it for
 * each scheduler (timestep list, sigma table) from a resolved config; the
 * denoiser's input scaling and init_noise_sigma, img2img truncation and
 * add_noise. Steps: sampler_step.c. */
#include "sampler_impl.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- names */

static const struct {
    const char *name; /* normalized: lower case, '_' for spaces and '-', "pp" for "++" */
    sdc_sampler_kind kind;
    int karras;
    sdc_dpm_algorithm algo;
    sdc_spacing spacing;
    bool listed; /* shown in sdc_sampler_names() */
} NAMES[] = {
    {"ddim", SDC_SAMPLER_DDIM, 0, 0, 0, true},
    {"pndm", SDC_SAMPLER_PNDM, 0, 0, 0, true},
    {"plms", SDC_SAMPLER_PNDM, 0, 0, 0, true},
    {"euler", SDC_SAMPLER_EULER, SDC_KARRAS_OFF, 0, 0, true},
    {"euler_karras", SDC_SAMPLER_EULER, SDC_KARRAS_ON, 0, 0, true},
    {"euler_a", SDC_SAMPLER_EULER_A, 0, 0, 0, true},
    {"dpmpp_2m", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_OFF, SDC_DPM_PLUSPLUS, 0, true},
    {"dpmpp_2m_karras", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_ON, SDC_DPM_PLUSPLUS, 0, true},
    {"dpmpp_2m_sde", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_OFF, SDC_DPM_SDE_PLUSPLUS, 0, true},
    {"dpmpp_2m_sde_karras", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_ON, SDC_DPM_SDE_PLUSPLUS, 0, true},
    {"lms", SDC_SAMPLER_LMS, SDC_KARRAS_OFF, 0, 0, true},
    {"lms_karras", SDC_SAMPLER_LMS, SDC_KARRAS_ON, 0, 0, true},
    {"heun", SDC_SAMPLER_HEUN, SDC_KARRAS_OFF, 0, 0, true},
    {"heun_karras", SDC_SAMPLER_HEUN, SDC_KARRAS_ON, 0, 0, true},
    /* A1111's API names and stable-diffusion.cpp's */
    {"euler_ancestral", SDC_SAMPLER_EULER_A, 0, 0, 0, false},
    {"k_euler_a", SDC_SAMPLER_EULER_A, 0, 0, 0, false},
    {"k_euler", SDC_SAMPLER_EULER, SDC_KARRAS_OFF, 0, 0, false},
    {"k_lms", SDC_SAMPLER_LMS, SDC_KARRAS_OFF, 0, 0, false},
    {"k_heun", SDC_SAMPLER_HEUN, SDC_KARRAS_OFF, 0, 0, false},
    {"k_dpmpp_2m", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_OFF, SDC_DPM_PLUSPLUS, 0, false},
    {"dpmpp2m", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_OFF, SDC_DPM_PLUSPLUS, 0, false},
    {"ddim_trailing", SDC_SAMPLER_DDIM, 0, 0, SDC_SPACING_TRAILING, false},
};

static bool normalize(const char *in, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (n + 3 > cap) return false;
        if (p[0] == '+' && p[1] == '+') {
            out[n++] = 'p', out[n++] = 'p';
            p++;
        } else if (*p == ' ' || *p == '-' || *p == '_') {
            if (n && out[n - 1] != '_') out[n++] = '_';
        } else {
            out[n++] = (char)tolower((unsigned char)*p);
        }
    }
    while (n && out[n - 1] == '_') n--;
    out[n] = '\0';
    return n > 0;
}

bool sdc_sampler_from_name(const char *name, sdc_sampler_opts *o) {
    char key[64];
    if (!name || !normalize(name, key, sizeof key)) return false;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        if (strcmp(key, NAMES[i].name) == 0) {
            o->kind = NAMES[i].kind;
            o->karras = NAMES[i].karras;
            o->algorithm = NAMES[i].algo;
            if (NAMES[i].spacing) o->spacing = NAMES[i].spacing;
            return true;
        }
    }
    return false;
}

bool sdc_sampler_default(const sdc_sched_file *f, sdc_sampler_opts *o) {
    sdc_sampler_kind k = SDC_SAMPLER_PNDM;
    bool known = !f || sdc_sched_file_kind(f, &k);
    o->kind = known ? k : SDC_SAMPLER_PNDM;
    o->karras = SDC_KARRAS_CONFIG;
    o->algorithm = SDC_DPM_DEFAULT;
    o->config = f;
    return known;
}

const char *sdc_sampler_names(void) {
    return "ddim, pndm (plms), euler, euler_karras, euler_a, dpmpp_2m, dpmpp_2m_karras, "
           "dpmpp_2m_sde, dpmpp_2m_sde_karras, lms, lms_karras, heun, heun_karras; A1111's "
           "names too (\"Euler a\", \"DPM++ 2M Karras\", \"PLMS\", ...), any case";
}

const char *sdc_sampler_name(sdc_sampler_kind kind) {
    static const char *const base[SDC_SAMPLER_COUNT] = {"ddim", "pndm", "euler", "euler_a",
                                                        "dpmpp_2m", "lms", "heun"};
    return (unsigned)kind < SDC_SAMPLER_COUNT ? base[kind] : "?";
}

const char *sdc_sampler_canonical(sdc_sampler_kind kind, const sdc_sched_config *c) {
    bool k = c->karras;
    switch (kind) {
    case SDC_SAMPLER_EULER: return k ? "euler_karras" : "euler";
    case SDC_SAMPLER_LMS: return k ? "lms_karras" : "lms";
    case SDC_SAMPLER_HEUN: return k ? "heun_karras" : "heun";
    case SDC_SAMPLER_DPMPP_2M:
        if (c->algorithm == SDC_DPM_SDE_PLUSPLUS) return k ? "dpmpp_2m_sde_karras" : "dpmpp_2m_sde";
        if (c->algorithm == SDC_DPM_PLAIN) return k ? "dpm_2m_karras" : "dpm_2m";
        return k ? "dpmpp_2m_karras" : "dpmpp_2m";
    default: return sdc_sampler_name(kind);
    }
}

const char *sdc_sampler_a1111(sdc_sampler_kind kind, const sdc_sched_config *c,
                              const char **schedule) {
    bool k = c->karras;
    *schedule = NULL;
    switch (kind) {
    case SDC_SAMPLER_DDIM: return "DDIM";
    case SDC_SAMPLER_PNDM: return "PLMS";
    case SDC_SAMPLER_EULER_A: return "Euler a";
    case SDC_SAMPLER_LMS: return k ? "LMS Karras" : "LMS";
    case SDC_SAMPLER_DPMPP_2M:
        if (c->algorithm == SDC_DPM_SDE_PLUSPLUS) return k ? "DPM++ 2M SDE Karras" : "DPM++ 2M SDE";
        return k ? "DPM++ 2M Karras" : "DPM++ 2M";
    case SDC_SAMPLER_EULER:
        if (k) *schedule = "Karras";
        return "Euler";
    case SDC_SAMPLER_HEUN:
        if (k) *schedule = "Karras";
        return "Heun";
    default: return "unknown";
    }
}

/* ---------------------------------------------------------------- setup */

static bool sigma_based(sdc_sampler_kind k) {
    return k == SDC_SAMPLER_EULER || k == SDC_SAMPLER_EULER_A || k == SDC_SAMPLER_LMS ||
           k == SDC_SAMPLER_HEUN;
}

static sdc_status check_opts(const sdc_sampler_opts *o, sdc_err *err) {
    if (!o) return sdc_err_set(err, SDC_ERR_ARG, "sampler: no options");
    if ((unsigned)o->kind >= SDC_SAMPLER_COUNT)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler: unknown kind %d", (int)o->kind);
    const char *name = sdc_sampler_name(o->kind);
    if (o->steps < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: steps %d must be at least 1", name, o->steps);
    if (!(o->eta >= 0.0f) || !isfinite(o->eta))
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: eta %g must be a finite value >= 0",
                           name, (double)o->eta);
    if (o->eta != 0.0f && o->kind != SDC_SAMPLER_DDIM)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: eta applies to ddim only", name);
    if (o->karras == SDC_KARRAS_ON &&
        (o->kind == SDC_SAMPLER_DDIM || o->kind == SDC_SAMPLER_PNDM || o->kind == SDC_SAMPLER_EULER_A))
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: karras sigmas apply to euler, dpmpp_2m, "
                           "lms and heun only (diffusers' %s has no use_karras_sigmas)", name,
                           sdc_sched_class_name(o->kind));
    if ((unsigned)o->karras > SDC_KARRAS_OFF || (unsigned)o->spacing > SDC_SPACING_TRAILING ||
        (unsigned)o->prediction > SDC_PRED_SAMPLE || (unsigned)o->final_sigma > SDC_FINAL_SIGMA_MIN ||
        (unsigned)o->algorithm > SDC_DPM_PLAIN)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: an option is out of range", name);
    if (o->algorithm && o->kind != SDC_SAMPLER_DPMPP_2M)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: the DPM algorithm applies to dpmpp_2m only",
                           name);
    if (o->final_sigma && o->kind != SDC_SAMPLER_DPMPP_2M && o->kind != SDC_SAMPLER_EULER)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: the final sigma applies to dpmpp_2m and "
                           "euler only (diffusers' final_sigmas_type)", name);
    return SDC_OK;
}

sdc_status sdc_sampler_resolve(const sdc_sampler_opts *o, sdc_sched_config *c, sdc_err *err) {
    sdc_status s = check_opts(o, err);
    if (s || (s = sdc_sched_resolve(o->kind, o->config, c, err))) return s;
    if (o->karras) c->karras = o->karras == SDC_KARRAS_ON;
    if (o->algorithm) c->algorithm = o->algorithm;
    if (o->spacing) c->spacing = o->spacing;
    if (o->prediction) c->prediction = o->prediction;
    if (o->final_sigma) c->final_sigma = o->final_sigma;
    const char *name = sdc_sampler_name(o->kind);
    if (c->prediction == SDC_PRED_SAMPLE &&
        (o->kind == SDC_SAMPLER_PNDM || o->kind == SDC_SAMPLER_EULER_A))
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: prediction type sample is not supported "
                           "(diffusers' %s refuses it too)", name, sdc_sched_class_name(o->kind));
    if (o->kind == SDC_SAMPLER_DPMPP_2M && c->algorithm == SDC_DPM_PLAIN &&
        c->final_sigma == SDC_FINAL_SIGMA_ZERO)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: algorithm dpmsolver needs the final "
                           "sigma sigma_min", name);
    if (o->kind == SDC_SAMPLER_PNDM && !c->skip_prk_steps && o->steps < 4)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: the PRK warm-up (skip_prk_steps false) "
                           "needs at least 4 steps (diffusers fails too)", name);
    if (o->steps > c->train_steps)
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: steps %d outside 1..%d "
                           "(num_train_timesteps)", name, o->steps, c->train_steps);
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

/* PNDM without skip_prk_steps: the last four ascending timesteps, each with
 * its half-ratio midpoint, make 12 Runge-Kutta evaluations (descending), then
 * PLMS over the rest: t[0..n) ascending becomes prk[12] + plms[n - 3]. */
static int prk_order(sdc_sampler *s, double *t, int n) {
    int half = s->N / s->o.steps / 2, m = n < 4 ? n : 4;
    double pair[8], rep[16];
    int np = 0, nr = 0;
    for (int i = 0; i < m; i++) { /* _timesteps[-4:].repeat(2) + tile([0, half]) */
        pair[np++] = t[n - m + i];
        pair[np++] = t[n - m + i] + half;
    }
    for (int i = 0; i < np - 1; i++) rep[nr++] = pair[i], rep[nr++] = pair[i]; /* [:-1].repeat(2) */
    s->n_prk = nr > 2 ? nr - 2 : 0;                                            /* [1:-1] */
    for (int i = 0; i < s->n_prk; i++) s->prk_ts[i] = rep[nr - 2 - i];         /* reversed */
    /* then _timesteps[:-3] reversed, moved up behind the PRK entries */
    int n_plms = n - 3 > 0 ? n - 3 : 0;
    for (int i = 0; i < n_plms / 2; i++) {
        double v = t[i];
        t[i] = t[n_plms - 1 - i];
        t[n_plms - 1 - i] = v;
    }
    memmove(t + s->n_prk, t, sizeof *t * (size_t)n_plms);
    memcpy(t, s->prk_ts, sizeof *t * (size_t)s->n_prk);
    return s->n_prk + n_plms;
}

/* Heun: [t0, t1, t1, t2, t2, ...] and sigmas [s0, s1, s1, ..., s{N-1}, s{N-1}, 0]. */
static int heun_interleave(double *t, double *sg, int n) {
    for (int i = n - 1; i >= 1; i--) {
        t[2 * i] = t[2 * i - 1] = t[i];
        sg[2 * i] = sg[2 * i - 1] = sg[i];
    }
    return 2 * n - 1;
}

/* DPMSolver's last_timestep: N minus the timesteps whose lambda lies below
 * lambda_min_clipped (searchsorted over the ascending flipped lambdas). */
static int dpm_last_timestep(const sdc_sampler *s) {
    if (!isfinite(s->c.lambda_min_clipped) && s->c.lambda_min_clipped < 0) return s->N;
    int below = 0;
    for (int i = 0; i < s->N; i++) {
        float a = sqrtf(s->ac[i]), sg = sqrtf(1.0f - s->ac[i]);
        float lambda = logf(a) - logf(sg);
        if (lambda < s->c.lambda_min_clipped) below++;
    }
    return s->N - below > 0 ? s->N - below : 1;
}

static sdc_status build_schedule(sdc_sampler *s, sdc_err *err) {
    const sdc_sched_config *c = &s->c;
    sdc_sampler_kind k = s->o.kind;
    sdc_ts_family fam = k == SDC_SAMPLER_DDIM       ? SDC_TS_DDIM
                        : k == SDC_SAMPLER_PNDM     ? SDC_TS_PNDM
                        : k == SDC_SAMPLER_DPMPP_2M ? SDC_TS_DPM
                                                    : SDC_TS_FLOAT;
    int steps = s->o.steps, cap = 2 * steps + 24;
    double *sg = calloc((size_t)cap, sizeof *sg);
    s->ts = calloc((size_t)cap, sizeof *s->ts);
    s->sig = calloc((size_t)cap, sizeof *s->sig);
    s->prk_ts = calloc(16, sizeof *s->prk_ts);
    if (!sg || !s->ts || !s->sig || !s->prk_ts) {
        free(sg);
        return sdc_err_set(err, SDC_ERR_OOM, "sampler: out of memory for %d steps", steps);
    }
    int last = k == SDC_SAMPLER_DPMPP_2M ? dpm_last_timestep(s) : s->N;
    int n = sdc_schedule_timesteps_n(fam, c->spacing, steps, s->N, c->steps_offset, last, s->ts,
                                     steps + 1);
    if (n < 1) {
        free(sg);
        return sdc_err_set(err, SDC_ERR_ARG, "sampler %s: no timesteps for %d steps",
                           sdc_sampler_name(k), steps);
    }
    s->ratio = s->N / steps;
    if (k == SDC_SAMPLER_PNDM) n = c->skip_prk_steps ? plms_order(s->ts, n) : prk_order(s, s->ts, n);
    /* Leading spacing at N steps reaches t = N, past alphas_cumprod
     * (diffusers raises an IndexError there); DDIM/PLMS look alphas up by t,
     * so they use t = N - 1 instead. */
    if (k == SDC_SAMPLER_DDIM || k == SDC_SAMPLER_PNDM)
        for (int i = 0; i < n; i++) s->ts[i] = fmin(s->ts[i], s->N - 1);
    float table_min = sdc_schedule_sigma_table(s->ac, 0);
    if (k == SDC_SAMPLER_DPMPP_2M && c->karras) {
        /* DPMSolver: the Karras ramp spans the whole table, timesteps rounded. */
        double smin = isnan(c->sigma_min) ? table_min : c->sigma_min;
        double smax = isnan(c->sigma_max) ? sdc_schedule_sigma_table(s->ac, s->N - 1) : c->sigma_max;
        sdc_schedule_karras_range(smin, smax, n, sg);
        sdc_schedule_sigma_to_t(s->ac, s->N, sg, n, s->ts);
        for (int i = 0; i < n; i++) s->ts[i] = rint(s->ts[i]);
    } else if (k != SDC_SAMPLER_DDIM && k != SDC_SAMPLER_PNDM) {
        sdc_schedule_sigmas_at_n(s->ac, s->N, s->ts, n, sg);
        if (c->karras) { /* Euler, LMS, Heun: between the interpolated ends, unrounded */
            bool lms = k == SDC_SAMPLER_LMS;
            double smin = isnan(c->sigma_min) || lms ? sg[n - 1] : c->sigma_min;
            double smax = isnan(c->sigma_max) || lms ? sg[0] : c->sigma_max;
            sdc_schedule_karras_range(smin, smax, n, sg);
            sdc_schedule_sigma_to_t(s->ac, s->N, sg, n, s->ts);
            if (k == SDC_SAMPLER_EULER)
                for (int i = 0; i < n; i++) s->ts[i] = (float)s->ts[i];
        }
    }
    bool final_min = (k == SDC_SAMPLER_DPMPP_2M || k == SDC_SAMPLER_EULER) &&
                     c->final_sigma == SDC_FINAL_SIGMA_MIN;
    sg[n] = final_min ? table_min : 0.0;
    if (k == SDC_SAMPLER_EULER && c->continuous_timesteps) /* 0.25 log(sigma), in float32 */
        for (int i = 0; i < n; i++) s->ts[i] = 0.25f * logf((float)sg[i]);
    if (k == SDC_SAMPLER_HEUN) {
        n = heun_interleave(s->ts, sg, n);
        sg[n] = 0.0;
    }
    for (int i = 0; i <= n; i++) s->sig[i] = (float)sg[i];
    s->n_ts = n;
    free(sg);
    return SDC_OK;
}

sdc_sampler *sdc_sampler_create(const sdc_sampler_opts *o, size_t n, sdc_err *err) {
    sdc_sched_config c;
    if (sdc_sampler_resolve(o, &c, err) != SDC_OK) return NULL;
    if (n == 0) {
        sdc_err_set(err, SDC_ERR_ARG, "sampler %s: latent of 0 elements", sdc_sampler_name(o->kind));
        return NULL;
    }
    sdc_sampler *s = calloc(1, sizeof *s);
    if (!s || !(s->ac = malloc(sizeof *s->ac * (size_t)c.train_steps))) {
        free(s);
        sdc_err_set(err, SDC_ERR_OOM, "sampler: out of memory");
        return NULL;
    }
    s->o = *o;
    s->o.config = NULL; /* the file need not outlive the sampler */
    s->c = c;
    s->c.trained_betas = NULL;
    s->n = n;
    s->N = c.train_steps;
    sdc_schedule_alphas_cumprod_cfg(&c, s->ac);
    /* Euler, Euler a and DPMSolver keep zero terminal SNR off infinity. */
    if (c.rescale_zero_snr && (o->kind == SDC_SAMPLER_EULER || o->kind == SDC_SAMPLER_EULER_A ||
                               o->kind == SDC_SAMPLER_DPMPP_2M))
        s->ac[s->N - 1] = 0x1p-24f;
    s->final_alpha = c.set_alpha_to_one ? 1.0f : s->ac[0];
    if (build_schedule(s, err) != SDC_OK) {
        sdc_sampler_free(s);
        return NULL;
    }
    bool fail = false;
    for (int k = 0; k < SDC_SAMPLER_HIST; k++) fail |= !(s->hist[k] = malloc(n * sizeof(float)));
    fail |= !(s->keep = malloc(n * sizeof(float)));
    fail |= !(s->keep2 = malloc(n * sizeof(float)));
    fail |= !(s->tmp = malloc(n * sizeof(float)));
    fail |= !(s->noise = malloc(n * sizeof(float)));
    if (fail) {
        sdc_sampler_free(s);
        sdc_err_set(err, SDC_ERR_OOM, "sampler: out of memory for a latent of %zu elements", n);
        return NULL;
    }
    return s;
}

void sdc_sampler_free(sdc_sampler *s) {
    if (!s) return;
    free(s->ac);
    free(s->ts);
    free(s->sig);
    free(s->prk_ts);
    for (int k = 0; k < SDC_SAMPLER_HIST; k++) free(s->hist[k]);
    free(s->keep);
    free(s->keep2);
    free(s->tmp);
    free(s->noise);
    free(s);
}

const sdc_sched_config *sdc_sampler_config(const sdc_sampler *s) { return &s->c; }

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
    return s->c.spacing == SDC_SPACING_LEADING ? sqrtf(mx * mx + 1.0f) : mx;
}

/* ---------------------------------------------------------------- stepping */

sdc_status sdc_sampler_step(sdc_sampler *s, int i, const float *out, float *x, sdc_rng *rng,
                            sdc_err *err) {
    return sdc_sampler_step_rows(s, i, out, x, rng, 1, err);
}

sdc_status sdc_sampler_step_rows(sdc_sampler *s, int i, const float *out, float *x, sdc_rng *rngs,
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
    case SDC_SAMPLER_DDIM: st = sdc_step_ddim(s, idx, out, x, rngs, n_rngs, err); break;
    case SDC_SAMPLER_PNDM: st = sdc_step_pndm(s, idx, out, x); break;
    case SDC_SAMPLER_EULER: st = sdc_step_euler(s, idx, out, x, rngs, n_rngs, false, err); break;
    case SDC_SAMPLER_EULER_A: st = sdc_step_euler(s, idx, out, x, rngs, n_rngs, true, err); break;
    case SDC_SAMPLER_DPMPP_2M: st = sdc_step_dpm(s, idx, out, x, rngs, n_rngs, err); break;
    case SDC_SAMPLER_LMS: st = sdc_step_lms(s, idx, out, x); break;
    case SDC_SAMPLER_HEUN: st = sdc_step_heun(s, idx, out, x); break;
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
