/* test_samplers.c — the samplers against diffusers' scheduler loops
 * (tests/fixtures/samplers_io.safetensors): timesteps, sigmas, input scales and
 * final latents for every method, spacing overrides, DDIM eta and img2img, on
 * SD 1.5's scheduler config and on configs that are not SD 1.5's (v and sample
 * prediction, other beta schedules, zero terminal SNR, PRK, DPM variants);
 * plus name parsing, the steps range, config refusals and invalid options. */
#include "suites.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/pipeline/sampler.h"
#include "sdc.h"

#define FX "tests/fixtures/samplers_io.safetensors"
#define FX_REGEN "build/venv/bin/python tests/fixtures/fx_samplers.py"
#define LAT_N (2 * 4 * 8 * 8) /* the fixture latent [2, 4, 8, 8] */

/* Final latents, fp32: measured rel-L2 is at most 4.8e-7 over the 80 cases
 * (resaved config DPM++ 2M 4.8e-7, DPM++ 16 steps 3.6e-7, SDE 3.0e-7, v-DDIM
 * 2.4e-7; LMS 1.6e-7 with its exact Gauss-Legendre integral against scipy's
 * quad on a float32 integrand; several cases bit-exact); 1e-5 is the stated
 * fp32 bar. Zero-SNR cases: below. */
#define TOL_LATENT_REL_L2 1e-5
/* Per-iteration scalars (sigmas, input scales, init_noise_sigma): float32
 * values formed in a different but equally rounded order; measured <= 4.7e-7
 * (zero SNR), else <= 2.3e-7. */
#define TOL_SCALAR_REL 1e-6
/* Zero terminal SNR (rescale_betas_zero_snr), final latents: torch's float32
 * sqrt is not correctly rounded (MKL's vsSqrt: 182 of SD's 1000
 * sqrt(alphas_cumprod) are an ulp off IEEE), and the rescale's
 * sqrt(ac) - sqrt(ac_T) amplifies that near t = T. Measured 2.5e-5 (Euler),
 * 9.9e-6 (Euler a), 1.8e-7 (DPM++, DDIM). */
#define TOL_ZERO_SNR_REL_L2 1e-4
/* Fractional timesteps (Karras for Euler/LMS/Heun, continuous): measured
 * rel <= 2.2e-7 (an ulp of float32 at t ~ 900). */
#define TOL_TIMESTEP_REL 1e-6

static float *load_f32(const sdc_safetensors *st, const char *name, size_t *n) {
    sdc_err err = {0};
    const sdc_st_entry *e = sdc_safetensors_find(st, name);
    ck_assert_msg(e != NULL, "%s: no tensor %s (regenerate: %s)", FX, name, FX_REGEN);
    *n = (size_t)sdc_st_entry_numel(e);
    float *v = malloc((*n ? *n : 1) * sizeof *v);
    ck_assert_msg(sdc_safetensors_read(st, e, v, SDC_F32, &err) == SDC_OK, "%s", err.msg);
    return v;
}

static double *load_f64(const sdc_safetensors *st, const char *name, size_t *n) {
    const sdc_st_entry *e = sdc_safetensors_find(st, name);
    ck_assert_msg(e != NULL && e->dtype == SDC_F64, "%s: no F64 tensor %s (regenerate: %s)", FX,
                  name, FX_REGEN);
    *n = (size_t)sdc_st_entry_numel(e);
    double *v = malloc((*n ? *n : 1) * sizeof *v);
    memcpy(v, e->data, *n * sizeof *v); /* e->data may be unaligned */
    return v;
}

static bool verbose(void) { return getenv("SDC_TEST_VERBOSE") != NULL; }

static double rel_l2(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-30);
}

static double rel(double got, double want) {
    return fabs(got - want) / fmax(fabs(want), 1e-30);
}

/* The fixture's synthetic model, in the same float32 operation order. */
static void model(const float *x_in, float t, float *eps, size_t n) {
    double tf = (double)t;
    float a = (float)(0.5 * cos(tf / 300.0)), b = (float)(0.1 * sin(tf / 100.0));
    for (size_t k = 0; k < n; k++) {
        float p = x_in[k] * a;
        eps[k] = p + b;
    }
}

static sdc_spacing spacing_of(const char *s) {
    if (!strcmp(s, "leading")) return SDC_SPACING_LEADING;
    if (!strcmp(s, "linspace")) return SDC_SPACING_LINSPACE;
    if (!strcmp(s, "trailing")) return SDC_SPACING_TRAILING;
    return SDC_SPACING_DEFAULT;
}

static void run_case(const sdc_safetensors *st, const cJSON *c) {
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const char *sampler = cJSON_GetObjectItem(c, "sampler")->valuestring;
    double strength = cJSON_GetObjectItem(c, "strength")->valuedouble;
    const cJSON *config = cJSON_GetObjectItem(c, "config");
    sdc_err err = {0};
    sdc_sched_file *f = NULL;
    if (cJSON_IsString(config)) {
        f = sdc_sched_file_parse(config->valuestring, name, &err);
        ck_assert_msg(f != NULL, "%s: %s", name, err.msg);
    }
    sdc_sampler_opts o = {0};
    if (!strcmp(sampler, "default"))
        ck_assert_msg(sdc_sampler_default(f, &o), "%s: config class %s", name, sdc_sched_file_class(f));
    else
        ck_assert_msg(sdc_sampler_from_name(sampler, &o), "%s: sampler name %s", name, sampler);
    o.config = f;
    o.steps = cJSON_GetObjectItem(c, "steps")->valueint;
    o.eta = (float)cJSON_GetObjectItem(c, "eta")->valuedouble;
    o.spacing = spacing_of(cJSON_GetObjectItem(c, "spacing")->valuestring);
    const char *final = cJSON_GetObjectItem(c, "final_sigma")->valuestring;
    o.final_sigma = !strcmp(final, "sigma_min") ? SDC_FINAL_SIGMA_MIN
                    : !strcmp(final, "zero") ? SDC_FINAL_SIGMA_ZERO : SDC_FINAL_SIGMA_DEFAULT;
    uint64_t seed = (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble;

    sdc_sampler *s = sdc_sampler_create(&o, LAT_N, &err);
    ck_assert_msg(s != NULL, "%s: %s", name, err.msg);
    bool zero_snr = sdc_sampler_config(s)->rescale_zero_snr;
    sdc_sched_file_free(f); /* the sampler keeps what it needs */
    if (strength > 0) ck_assert_msg(sdc_sampler_set_strength(s, (float)strength, &err) == SDC_OK, "%s", err.msg);

    char key[128];
    size_t n_ts, n_sig, n_sc, n_ins, n_x;
    snprintf(key, sizeof key, "%s.timesteps", name);
    double *ts = load_f64(st, key, &n_ts);
    snprintf(key, sizeof key, "%s.sigmas", name);
    float *sig = load_f32(st, key, &n_sig);
    snprintf(key, sizeof key, "%s.input_scale", name);
    float *sc = load_f32(st, key, &n_sc);
    snprintf(key, sizeof key, "%s.init_noise_sigma", name);
    float *ins = load_f32(st, key, &n_ins);
    snprintf(key, sizeof key, "%s.x", name);
    float *want = load_f32(st, key, &n_x);
    ck_assert_uint_eq(n_x, LAT_N);

    int iters = sdc_sampler_iterations(s);
    ck_assert_msg((size_t)iters == n_ts, "%s: %d iterations, diffusers %zu", name, iters, n_ts);
    int begin = (int)(n_sig ? n_sig - 1 : 0) - iters; /* sigma table covers all + final 0 */
    double worst_scalar = 0, worst_t = 0;
    for (int i = 0; i < iters; i++) {
        float t = sdc_sampler_timestep(s, i);
        /* Integer timesteps are exact. Fractional ones (Karras for Euler, LMS,
         * Heun; continuous) come from logs of the float32 sigma table, where
         * numpy's float32 log and glibc's logf can differ by an ulp. */
        bool whole = ts[i] == floor(ts[i]);
        ck_assert_msg(whole ? t == (float)ts[i] : rel(t, ts[i]) <= TOL_TIMESTEP_REL,
                      "%s: timestep %d is %.9g, diffusers %.9g", name, i, (double)t, ts[i]);
        if (!whole) worst_t = fmax(worst_t, rel(t, ts[i]));
        double e = rel(sdc_sampler_input_scale(s, i), sc[i]);
        worst_scalar = fmax(worst_scalar, e);
        if (n_sig) {
            double es = rel(sdc_sampler_sigma(s, i), sig[begin + i]);
            worst_scalar = fmax(worst_scalar, es);
        }
    }
    if (strength == 0) worst_scalar = fmax(worst_scalar, rel(sdc_sampler_init_noise_sigma(s), ins[0]));
    ck_assert_msg(worst_scalar <= TOL_SCALAR_REL, "%s: sigma/scale rel err %.3g", name, worst_scalar);

    /* The pipeline loop. */
    float *x = malloc(LAT_N * sizeof *x), *xin = malloc(LAT_N * sizeof *xin),
          *eps = malloc(LAT_N * sizeof *eps);
    sdc_rng rng;
    sdc_rng_seed(&rng, seed);
    if (strength > 0) {
        sdc_rng r0;
        sdc_rng_seed(&r0, 100);
        sdc_rng_randn(&r0, xin, LAT_N);  /* the "encoded image" */
        sdc_rng_randn(&rng, eps, LAT_N); /* the add_noise noise */
        sdc_sampler_add_noise(s, xin, eps, x, LAT_N);
    } else {
        sdc_rng_randn(&rng, x, LAT_N);
        float init = sdc_sampler_init_noise_sigma(s);
        for (size_t k = 0; k < LAT_N; k++) x[k] = x[k] * init;
    }
    for (int i = 0; i < iters; i++) {
        float scale = sdc_sampler_input_scale(s, i);
        for (size_t k = 0; k < LAT_N; k++) xin[k] = x[k] * scale;
        model(xin, sdc_sampler_timestep(s, i), eps, LAT_N);
        ck_assert_msg(sdc_sampler_step(s, i, eps, x, &rng, &err) == SDC_OK, "%s: %s", name, err.msg);
    }
    double e = rel_l2(x, want, LAT_N);
    if (verbose())
        fprintf(stderr, "samplers: %-28s iters %2d  latent rel-L2 %.3g  scalars rel %.3g  t rel %.3g\n",
                name, iters, e, worst_scalar, worst_t);
    double tol = zero_snr ? TOL_ZERO_SNR_REL_L2 : TOL_LATENT_REL_L2;
    ck_assert_msg(e <= tol, "%s: final latent rel-L2 %.3g > %.g", name, e, tol);
    free(x), free(xin), free(eps), free(ts), free(sig), free(sc), free(ins), free(want);
    sdc_sampler_free(s);
}

START_TEST(against_diffusers) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(FX, &err);
    ck_assert_msg(st != NULL, "%s; regenerate it with: %s", err.msg, FX_REGEN);
    const char *meta = sdc_safetensors_meta(st, "cases");
    ck_assert_msg(meta != NULL, "%s: no cases metadata (regenerate: %s)", FX, FX_REGEN);
    cJSON *cases = cJSON_Parse(meta);
    ck_assert(cases != NULL && cJSON_IsArray(cases));
    ck_assert_int_ge(cJSON_GetArraySize(cases), 80);
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) run_case(st, c);
    cJSON_Delete(cases);
    sdc_safetensors_close(st);
}
END_TEST

/* alphas_cumprod against torch's. torch's own float32 linspace differs by
 * CPU capability (its AVX2/AVX-512 kernel rounds differently from the scalar
 * one, ATEN_CPU_CAPABILITY=default); sdc follows the scalar kernel, so against
 * this fixture (made on AVX-512) a few entries differ by an ulp: measured max
 * rel 1.2e-7. The samplers above absorb this (latents within ~2e-7). */
#define TOL_AC_REL 1e-6
START_TEST(alphas_cumprod_close) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(FX, &err);
    ck_assert_msg(st != NULL, "%s; regenerate it with: %s", err.msg, FX_REGEN);
    size_t n;
    float *want = load_f32(st, "alphas_cumprod", &n);
    ck_assert_uint_eq(n, SDC_TRAIN_STEPS);
    float ac[SDC_TRAIN_STEPS];
    sdc_schedule_alphas_cumprod(ac);
    double worst = 0;
    for (int i = 0; i < SDC_TRAIN_STEPS; i++) worst = fmax(worst, rel(ac[i], want[i]));
    if (verbose()) fprintf(stderr, "samplers: alphas_cumprod max rel %.3g\n", worst);
    ck_assert_msg(worst <= TOL_AC_REL, "alphas_cumprod max rel err %.3g", worst);
    free(want);
    sdc_safetensors_close(st);
}
END_TEST

START_TEST(names_parse) {
    static const struct {
        const char *name;
        sdc_sampler_kind kind;
        int karras;
        sdc_dpm_algorithm algo;
    } names[] = {
        {"ddim", SDC_SAMPLER_DDIM, 0, 0},          {"pndm", SDC_SAMPLER_PNDM, 0, 0},
        {"plms", SDC_SAMPLER_PNDM, 0, 0},          {"PLMS", SDC_SAMPLER_PNDM, 0, 0},
        {"euler", SDC_SAMPLER_EULER, SDC_KARRAS_OFF, 0},
        {"Euler", SDC_SAMPLER_EULER, SDC_KARRAS_OFF, 0},
        {"euler_karras", SDC_SAMPLER_EULER, SDC_KARRAS_ON, 0},
        {"euler_a", SDC_SAMPLER_EULER_A, 0, 0},    {"Euler a", SDC_SAMPLER_EULER_A, 0, 0},
        {"k_euler_a", SDC_SAMPLER_EULER_A, 0, 0},
        {"dpmpp_2m", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_OFF, SDC_DPM_PLUSPLUS},
        {"DPM++ 2M", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_OFF, SDC_DPM_PLUSPLUS},
        {"dpm++2m", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_OFF, SDC_DPM_PLUSPLUS},
        {"dpmpp_2m_karras", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_ON, SDC_DPM_PLUSPLUS},
        {"DPM++ 2M Karras", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_ON, SDC_DPM_PLUSPLUS},
        {"DPM++ 2M SDE", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_OFF, SDC_DPM_SDE_PLUSPLUS},
        {"dpm++ 2m sde karras", SDC_SAMPLER_DPMPP_2M, SDC_KARRAS_ON, SDC_DPM_SDE_PLUSPLUS},
        {"lms", SDC_SAMPLER_LMS, SDC_KARRAS_OFF, 0}, {"LMS Karras", SDC_SAMPLER_LMS, SDC_KARRAS_ON, 0},
        {"heun", SDC_SAMPLER_HEUN, SDC_KARRAS_OFF, 0}, {"Heun", SDC_SAMPLER_HEUN, SDC_KARRAS_OFF, 0},
        {"ddim_trailing", SDC_SAMPLER_DDIM, 0, 0},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        sdc_sampler_opts o = {0};
        ck_assert_msg(sdc_sampler_from_name(names[i].name, &o), "%s", names[i].name);
        ck_assert_msg(o.kind == names[i].kind && o.karras == names[i].karras &&
                      o.algorithm == names[i].algo, "%s: kind %d karras %d algo %d", names[i].name,
                      o.kind, o.karras, o.algorithm);
    }
    sdc_sampler_opts o = {0};
    ck_assert(sdc_sampler_from_name("ddim_trailing", &o) && o.spacing == SDC_SPACING_TRAILING);
    ck_assert(!sdc_sampler_from_name("euler-ancestral-x", &o));
    ck_assert(!sdc_sampler_from_name("", &o));
    ck_assert(!sdc_sampler_from_name("  ", &o));
    ck_assert(!sdc_sampler_from_name(NULL, &o));
    /* Canonical and A1111 names of resolved samplers. */
    sdc_err err = {0};
    sdc_sched_config c;
    const char *sched;
    o = (sdc_sampler_opts){.steps = 10};
    ck_assert(sdc_sampler_from_name("DPM++ 2M SDE Karras", &o));
    ck_assert_int_eq(sdc_sampler_resolve(&o, &c, &err), SDC_OK);
    ck_assert_str_eq(sdc_sampler_canonical(o.kind, &c), "dpmpp_2m_sde_karras");
    ck_assert_str_eq(sdc_sampler_a1111(o.kind, &c, &sched), "DPM++ 2M SDE Karras");
    ck_assert_ptr_null(sched);
    ck_assert(sdc_sampler_from_name("euler_karras", &o));
    ck_assert_int_eq(sdc_sampler_resolve(&o, &c, &err), SDC_OK);
    ck_assert_str_eq(sdc_sampler_a1111(o.kind, &c, &sched), "Euler");
    ck_assert_str_eq(sched, "Karras");
}
END_TEST

/* A config's class picks the default sampler and its settings; a config sdc
 * cannot follow is refused naming the file and the key. */
START_TEST(config_defaults_and_refusals) {
    sdc_err err = {0};
    sdc_sampler_opts o = {.steps = 10};
    ck_assert(sdc_sampler_default(NULL, &o) && o.kind == SDC_SAMPLER_PNDM);
    sdc_sched_file *f = sdc_sched_file_parse(
        "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"use_karras_sigmas\": true, "
        "\"algorithm_type\": \"sde-dpmsolver++\", \"lambda_min_clipped\": -Infinity}", "dpm.json", &err);
    ck_assert_msg(f != NULL, "%s", err.msg);
    ck_assert(sdc_sampler_default(f, &o) && o.kind == SDC_SAMPLER_DPMPP_2M);
    sdc_sched_config c;
    ck_assert_int_eq(sdc_sampler_resolve(&o, &c, &err), SDC_OK);
    ck_assert(c.karras && c.algorithm == SDC_DPM_SDE_PLUSPLUS && isinf(c.lambda_min_clipped));
    ck_assert_int_eq(c.steps_offset, 1); /* the pipeline's fix, for its own class */
    ck_assert(sdc_sampler_from_name("dpmpp_2m", &o)); /* a name overrides karras and SDE */
    ck_assert_int_eq(sdc_sampler_resolve(&o, &c, &err), SDC_OK);
    ck_assert(!c.karras && c.algorithm == SDC_DPM_PLUSPLUS);
    ck_assert(sdc_sampler_from_name("euler", &o)); /* another class: its own defaults */
    ck_assert_int_eq(sdc_sampler_resolve(&o, &c, &err), SDC_OK);
    ck_assert(c.betas == SDC_BETAS_LINEAR && c.steps_offset == 0 && c.spacing == SDC_SPACING_LINSPACE);
    sdc_sched_file_free(f);
    /* UniPC: not run by sdc; PNDM on its settings. */
    f = sdc_sched_file_parse("{\"_class_name\": \"UniPCMultistepScheduler\"}", "u.json", &err);
    ck_assert(f && !sdc_sampler_default(f, &o) && o.kind == SDC_SAMPLER_PNDM);
    sdc_sched_file_free(f);

    static const struct {
        const char *json, *sampler, *want;
        sdc_status code;
    } bad[] = {
        {"[1, 2]", "ddim", "not a JSON object", SDC_ERR_FORMAT},
        {"{\"timestep_spacing\": 3}", "euler", "timestep_spacing must be one of", SDC_ERR_FORMAT},
        {"{\"timestep_spacing\": \"sideways\"}", "euler", "'trailing'", SDC_ERR_FORMAT},
        {"{\"prediction_type\": \"flow\"}", "ddim", "prediction_type", SDC_ERR_FORMAT},
        {"{\"beta_schedule\": \"sigmoid\"}", "ddim", "beta_schedule", SDC_ERR_FORMAT},
        {"{\"num_train_timesteps\": 0}", "ddim", "num_train_timesteps", SDC_ERR_FORMAT},
        {"{\"num_train_timesteps\": 2.5}", "ddim", "whole number", SDC_ERR_FORMAT},
        {"{\"beta_start\": -1}", "lms", "beta_start", SDC_ERR_FORMAT},
        {"{\"clip_sample\": \"yes\"}", "ddim", "clip_sample must be true or false", SDC_ERR_FORMAT},
        {"{\"thresholding\": true}", "ddim", "thresholding true", SDC_ERR_UNSUPPORTED},
        {"{\"solver_order\": 3}", "dpmpp_2m", "solver_order 3", SDC_ERR_UNSUPPORTED},
        {"{\"algorithm_type\": \"sde-dpmsolver\"}", "dpmpp_2m_karras", "sde-dpmsolver", SDC_ERR_UNSUPPORTED},
        {"{\"use_exponential_sigmas\": true}", "euler", "use_exponential_sigmas", SDC_ERR_UNSUPPORTED},
        {"{\"interpolation_type\": \"log_linear\"}", "euler", "log_linear", SDC_ERR_UNSUPPORTED},
        {"{\"prediction_type\": \"sample\"}", "euler_a", "prediction_type sample", SDC_ERR_UNSUPPORTED},
        {"{\"trained_betas\": [0.1, 0.2]}", "ddim", "trained_betas has 2 values", SDC_ERR_FORMAT},
        {"{\"trained_betas\": [0.1, 1.5]}", "ddim", "trained_betas[1]", SDC_ERR_FORMAT},
        {"{\"algorithm_type\": \"dpmsolver\"}", "dpmpp_2m_karras", "", SDC_OK},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (sdc_err){0};
        f = sdc_sched_file_parse(bad[i].json, "cfg.json", &err);
        sdc_status s = f ? SDC_OK : err.code;
        if (f) {
            o = (sdc_sampler_opts){.steps = 10};
            ck_assert(sdc_sampler_from_name(bad[i].sampler, &o));
            o.config = f;
            s = sdc_sampler_resolve(&o, &c, &err);
        }
        ck_assert_msg(s == bad[i].code, "%s: status %d (%s)", bad[i].json, s, err.msg);
        if (s) ck_assert_msg(strstr(err.msg, bad[i].want) && strstr(err.msg, "cfg.json"),
                             "%s: %s", bad[i].json, err.msg);
        sdc_sched_file_free(f);
    }
    /* Keys another class takes are ignored, as diffusers ignores them. */
    f = sdc_sched_file_parse("{\"thresholding\": true, \"solver_order\": 3}", "cfg.json", &err);
    o = (sdc_sampler_opts){.steps = 10, .config = f};
    ck_assert(sdc_sampler_from_name("euler", &o));
    ck_assert_int_eq(sdc_sampler_resolve(&o, &c, &err), SDC_OK);
    sdc_sched_file_free(f);
}
END_TEST

/* Every sampler and spacing accepts steps 1..1000 with a finite, consistent schedule. */
START_TEST(steps_range) {
    static const int steps[] = {1, 2, 3, 7, 50, 999, 1000};
    float x[8], eps[8] = {0};
    for (int kind = 0; kind < SDC_SAMPLER_COUNT; kind++) {
        for (int sp = SDC_SPACING_DEFAULT; sp <= SDC_SPACING_TRAILING; sp++) {
            for (size_t j = 0; j < sizeof steps / sizeof steps[0]; j++) {
                sdc_sampler_opts o = {.kind = (sdc_sampler_kind)kind, .steps = steps[j], .spacing = (sdc_spacing)sp};
                sdc_err err = {0};
                sdc_sampler *s = sdc_sampler_create(&o, 8, &err);
                ck_assert_msg(s != NULL, "%s steps %d spacing %d: %s", sdc_sampler_name(o.kind),
                              steps[j], sp, err.msg);
                int it = sdc_sampler_iterations(s);
                ck_assert_int_ge(it, 1);
                ck_assert(isfinite(sdc_sampler_init_noise_sigma(s)));
                for (int k = 0; k < 8; k++) x[k] = 0.1f * (float)k;
                sdc_rng r;
                sdc_rng_seed(&r, 0);
                for (int i = 0; i < it; i++) {
                    float t = sdc_sampler_timestep(s, i);
                    ck_assert_msg(t >= 0.0f && t <= 1000.0f, "%s steps %d: t %g", sdc_sampler_name(o.kind), steps[j], (double)t);
                    ck_assert(sdc_sampler_step(s, i, eps, x, &r, &err) == SDC_OK);
                }
                for (int k = 0; k < 8; k++)
                    ck_assert_msg(isfinite(x[k]), "%s steps %d spacing %d: non-finite latent",
                                  sdc_sampler_name(o.kind), steps[j], sp);
                sdc_sampler_free(s);
            }
        }
    }
}
END_TEST

START_TEST(invalid_options) {
    sdc_err err = {0};
    sdc_sampler_opts o = {.kind = SDC_SAMPLER_EULER, .steps = 0};
    ck_assert_ptr_null(sdc_sampler_create(&o, 8, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "steps") != NULL, "%s", err.msg);
    o.steps = 1001;
    ck_assert_ptr_null(sdc_sampler_create(&o, 8, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
    o = (sdc_sampler_opts){.kind = SDC_SAMPLER_DDIM, .steps = 10, .eta = -0.1f};
    ck_assert_ptr_null(sdc_sampler_create(&o, 8, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "eta") != NULL, "%s", err.msg);
    o.eta = NAN;
    ck_assert_ptr_null(sdc_sampler_create(&o, 8, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
    o = (sdc_sampler_opts){.kind = SDC_SAMPLER_DDIM, .steps = 10, .karras = SDC_KARRAS_ON};
    ck_assert_ptr_null(sdc_sampler_create(&o, 8, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
    o = (sdc_sampler_opts){.kind = SDC_SAMPLER_COUNT, .steps = 10};
    ck_assert_ptr_null(sdc_sampler_create(&o, 8, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);

    o = (sdc_sampler_opts){.kind = SDC_SAMPLER_DDIM, .steps = 10, .eta = 1.0f};
    sdc_sampler *s = sdc_sampler_create(&o, 8, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(sdc_sampler_set_strength(s, 1.5f, &err), SDC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "strength") != NULL, "%s", err.msg);
    ck_assert_int_eq(sdc_sampler_set_strength(s, -0.1f, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_sampler_set_strength(s, NAN, &err), SDC_ERR_ARG);
    float x[8] = {0}, eps[8] = {0};
    /* eta > 0 draws noise: without an rng it is refused, not a crash. */
    ck_assert_int_eq(sdc_sampler_step(s, 0, eps, x, NULL, &err), SDC_ERR_ARG);
    /* Out of order. */
    ck_assert_int_eq(sdc_sampler_step(s, 3, eps, x, NULL, &err), SDC_ERR_ARG);
    /* strength 0 leaves nothing to run; add_noise then copies. */
    ck_assert_int_eq(sdc_sampler_set_strength(s, 0.0f, &err), SDC_OK);
    ck_assert_int_eq(sdc_sampler_iterations(s), 0);
    float x0[8] = {1, 2, 3, 4, 5, 6, 7, 8}, xt[8];
    sdc_sampler_add_noise(s, x0, eps, xt, 8);
    ck_assert(memcmp(x0, xt, sizeof x0) == 0);
    ck_assert_int_eq(sdc_sampler_step(s, 0, eps, x, NULL, &err), SDC_ERR_ARG);
    sdc_sampler_free(s);
}
END_TEST

Suite *suite_samplers(void) {
    Suite *s = suite_create("samplers");
    TCase *tc = tcase_create("samplers");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, against_diffusers);
    tcase_add_test(tc, alphas_cumprod_close);
    tcase_add_test(tc, names_parse);
    tcase_add_test(tc, config_defaults_and_refusals);
    tcase_add_test(tc, steps_range);
    tcase_add_test(tc, invalid_options);
    suite_add_tcase(s, tc);
    return s;
}
