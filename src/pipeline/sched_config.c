/* sched_config.c — scheduler_config.json to sdc_sched_config, key by key as
 * diffusers' from_config resolves it for each of the seven scheduler classes
 * (their defaults are those of diffusers 0.31 to 0.42, which agree). */
#include "sched_config.h"

#include "../weights/hf_config.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct sdc_sched_file {
    char *label;
    cJSON *root;
    float *trained_betas; /* [n_trained] when the file gives them */
    int n_trained;
};

/* SD 1.5's scheduler/scheduler_config.json as runwayml published it: what a
 * single-file checkpoint gets. */
static const char SD15_JSON[] =
    "{\"_class_name\": \"PNDMScheduler\", \"beta_end\": 0.012, \"beta_schedule\": "
    "\"scaled_linear\", \"beta_start\": 0.00085, \"num_train_timesteps\": 1000, "
    "\"set_alpha_to_one\": false, \"skip_prk_steps\": true, \"steps_offset\": 1, "
    "\"trained_betas\": null, \"clip_sample\": false}";

static const char *const CLASS_NAMES[SDC_SAMPLER_COUNT] = {
    "DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler", "LMSDiscreteScheduler", "HeunDiscreteScheduler"};

const char *sdc_sched_class_name(sdc_sampler_kind kind) {
    return (unsigned)kind < SDC_SAMPLER_COUNT ? CLASS_NAMES[kind] : "?";
}

const char *sdc_prediction_name(sdc_prediction p) {
    return p == SDC_PRED_V ? "v_prediction" : p == SDC_PRED_SAMPLE ? "sample" : "epsilon";
}

const char *sdc_spacing_name(sdc_spacing s) {
    return s == SDC_SPACING_LEADING ? "leading" : s == SDC_SPACING_TRAILING ? "trailing" : "linspace";
}

/* ------------------------------------------------------------ loading */

/* Python's json writes Infinity, -Infinity and NaN (a DPMSolver config's
 * lambda_min_clipped is -Infinity); cJSON reads none of them. Outside strings
 * they become 1e999 (strtod's infinity) and null. */
static char *python_json_to_json(const char *in) {
    size_t n = strlen(in);
    char *out = malloc(n + n / 2 + 16), *o = out;
    if (!out) return NULL;
    bool str = false;
    for (const char *p = in; *p;) {
        if (str) {
            if (*p == '\\' && p[1]) *o++ = *p++;
            else if (*p == '"') str = false;
            *o++ = *p++;
        } else if (*p == '"') {
            str = true;
            *o++ = *p++;
        } else if (!strncmp(p, "Infinity", 8)) {
            memcpy(o, "1e999", 5), o += 5, p += 8;
        } else if (!strncmp(p, "NaN", 3)) {
            memcpy(o, "null", 4), o += 4, p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

sdc_sched_file *sdc_sched_file_parse(const char *json, const char *label, sdc_err *err) {
    sdc_sched_file *f = calloc(1, sizeof *f);
    char *text = python_json_to_json(json);
    if (!f || !text || !(f->label = strdup(label))) {
        free(text);
        sdc_sched_file_free(f);
        sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", label);
        return NULL;
    }
    f->root = cJSON_Parse(text);
    free(text);
    if (!f->root || !cJSON_IsObject(f->root)) {
        sdc_err_set(err, SDC_ERR_FORMAT, "%s: not a JSON object (a scheduler_config.json)", label);
        sdc_sched_file_free(f);
        return NULL;
    }
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(f->root, "_class_name");
    if (cls && !cJSON_IsString(cls)) {
        sdc_err_set(err, SDC_ERR_FORMAT, "%s: _class_name must be a string", label);
        sdc_sched_file_free(f);
        return NULL;
    }
    const cJSON *tb = cJSON_GetObjectItemCaseSensitive(f->root, "trained_betas");
    if (tb && !cJSON_IsNull(tb)) {
        int n = cJSON_IsArray(tb) ? cJSON_GetArraySize(tb) : -1;
        if (n < 1 || n > 100000) {
            sdc_err_set(err, SDC_ERR_FORMAT, "%s: trained_betas must be a list of 1 to 100000 numbers",
                        label);
            sdc_sched_file_free(f);
            return NULL;
        }
        f->trained_betas = malloc(sizeof *f->trained_betas * (size_t)n);
        f->n_trained = n;
        int i = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, tb) {
            double b = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            if (!(b > 0 && b < 1)) {
                sdc_err_set(err, SDC_ERR_FORMAT, "%s: trained_betas[%d] must be a number in (0, 1)",
                            label, i);
                sdc_sched_file_free(f);
                return NULL;
            }
            if (f->trained_betas) f->trained_betas[i++] = (float)b;
        }
        if (!f->trained_betas) {
            sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", label);
            sdc_sched_file_free(f);
            return NULL;
        }
    }
    return f;
}

sdc_sched_file *sdc_sched_file_load(const char *path, sdc_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc((1 << 20) + 1);
    size_t n = buf ? fread(buf, 1, 1 << 20, fp) : 0;
    bool too_big = buf && n == (1 << 20) && fgetc(fp) != EOF;
    bool bad = ferror(fp);
    fclose(fp);
    sdc_sched_file *f = NULL;
    if (!buf) sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
    else if (bad) sdc_err_set(err, SDC_ERR_IO, "%s: read error", path);
    else if (too_big) sdc_err_set(err, SDC_ERR_FORMAT, "%s: larger than 1 MiB (not a scheduler config)", path);
    else if (memchr(buf, '\0', n)) sdc_err_set(err, SDC_ERR_FORMAT, "%s: holds a NUL byte (not JSON)", path);
    else {
        buf[n] = '\0';
        f = sdc_sched_file_parse(buf, path, err);
    }
    free(buf);
    return f;
}

sdc_status sdc_sched_file_for_model(const char *model, sdc_sched_file **out, sdc_err *err) {
    *out = NULL;
    struct stat sb;
    if (!model || stat(model, &sb) != 0 || !S_ISDIR(sb.st_mode)) return SDC_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", model);
    if (stat(path, &sb) != 0) return SDC_OK;
    *out = sdc_sched_file_load(path, err);
    return *out ? SDC_OK : err->code;
}

void sdc_sched_file_free(sdc_sched_file *f) {
    if (!f) return;
    cJSON_Delete(f->root);
    free(f->trained_betas);
    free(f->label);
    free(f);
}

const char *sdc_sched_file_label(const sdc_sched_file *f) { return f ? f->label : "SD 1.5's scheduler config"; }

const char *sdc_sched_file_class(const sdc_sched_file *f) {
    const cJSON *c = f ? cJSON_GetObjectItemCaseSensitive(f->root, "_class_name") : NULL;
    return c && cJSON_IsString(c) ? c->valuestring : f ? "" : "PNDMScheduler";
}

bool sdc_sched_file_kind(const sdc_sched_file *f, sdc_sampler_kind *kind) {
    const char *c = sdc_sched_file_class(f);
    for (int k = 0; k < SDC_SAMPLER_COUNT; k++)
        if (!strcmp(c, CLASS_NAMES[k])) {
            *kind = (sdc_sampler_kind)k;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------ resolving */

#define ALL 0x7f
#define BIT(k) (1u << (k))
#define DDIM BIT(SDC_SAMPLER_DDIM)
#define PNDM BIT(SDC_SAMPLER_PNDM)
#define EULER BIT(SDC_SAMPLER_EULER)
#define EULER_A BIT(SDC_SAMPLER_EULER_A)
#define DPM BIT(SDC_SAMPLER_DPMPP_2M)
#define LMS BIT(SDC_SAMPLER_LMS)
#define HEUN BIT(SDC_SAMPLER_HEUN)

/* One lookup: the file, its class and the class being resolved. */
typedef struct {
    const sdc_sched_file *f;
    sdc_sampler_kind kind;
    bool as_loaded; /* kind is the file's own class: the pipeline's own scheduler */
    sdc_err *err;
} resolver;

/* The value of key for this class: NULL when the class does not take key or
 * the file does not name it (then the class default applies). JSON null is
 * Python's None, also the default for the optional keys that use it. */
static const cJSON *get(const resolver *r, const char *key, unsigned classes) {
    if (!(classes & BIT(r->kind))) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->f->root, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static sdc_status bad(const resolver *r, const char *key, const char *what) {
    return sdc_err_set(r->err, SDC_ERR_FORMAT, "%s: %s must be %s", r->f->label, key, what);
}

static sdc_status unsupported(const resolver *r, const char *key, const char *value) {
    return sdc_err_set(r->err, SDC_ERR_UNSUPPORTED, "%s: %s %s (for %s) is not supported by sdc",
                       r->f->label, key, value, CLASS_NAMES[r->kind]);
}

static sdc_status get_bool(const resolver *r, const char *key, unsigned classes, bool *out) {
    const cJSON *v = get(r, key, classes);
    if (!v) return SDC_OK;
    if (!cJSON_IsBool(v)) return bad(r, key, "true or false");
    *out = cJSON_IsTrue(v);
    return SDC_OK;
}

static sdc_status get_num(const resolver *r, const char *key, unsigned classes, double lo,
                          double hi, double *out) {
    const cJSON *v = get(r, key, classes);
    if (!v) return SDC_OK;
    char what[96];
    snprintf(what, sizeof what, "a number in [%g, %g]", lo, hi);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) return bad(r, key, what);
    *out = v->valuedouble;
    return SDC_OK;
}

static sdc_status get_int(const resolver *r, const char *key, unsigned classes, int lo, int hi,
                          int *out) {
    double d = *out;
    sdc_status s = get_num(r, key, classes, lo, hi, &d);
    if (!s && d != floor(d)) return bad(r, key, "a whole number");
    *out = (int)d;
    return s;
}

/* A string key among names[] (index into *out); NULL names end the list. */
static sdc_status get_enum(const resolver *r, const char *key, unsigned classes,
                           const char *const *names, int *out) {
    const cJSON *v = get(r, key, classes);
    if (!v) return SDC_OK;
    char what[160] = "one of";
    for (int i = 0; names[i]; i++)
        snprintf(what + strlen(what), sizeof what - strlen(what), "%s '%s'", i ? "," : "", names[i]);
    if (!cJSON_IsString(v)) return bad(r, key, what);
    for (int i = 0; names[i]; i++)
        if (!strcmp(v->valuestring, names[i])) {
            *out = i;
            return SDC_OK;
        }
    return bad(r, key, what);
}

/* Keys sdc does not implement: refused when true for this class. */
static sdc_status refuse_if_true(const resolver *r, const char *key, unsigned classes) {
    bool on = false;
    sdc_status s = get_bool(r, key, classes, &on);
    return s ? s : on ? unsupported(r, key, "true") : SDC_OK;
}

static void class_defaults(sdc_sampler_kind k, sdc_sched_config *c) {
    *c = (sdc_sched_config){.train_steps = 1000, .betas = SDC_BETAS_LINEAR, .beta_start = 0.0001,
                            .beta_end = 0.02, .prediction = SDC_PRED_EPSILON,
                            .spacing = SDC_SPACING_LINSPACE, .clip_sample_range = 1.0,
                            .sigma_min = NAN, .sigma_max = NAN,
                            .final_sigma = SDC_FINAL_SIGMA_ZERO, .solver_order = 2,
                            .algorithm = SDC_DPM_PLUSPLUS, .lower_order_final = true,
                            .lambda_min_clipped = -INFINITY};
    switch (k) {
    case SDC_SAMPLER_DDIM:
        c->clip_sample = c->set_alpha_to_one = true;
        c->spacing = SDC_SPACING_LEADING;
        break;
    case SDC_SAMPLER_PNDM: c->spacing = SDC_SPACING_LEADING; break;
    case SDC_SAMPLER_HEUN: c->beta_start = 0.00085, c->beta_end = 0.012; break;
    default: break;
    }
}

static sdc_status resolve_common(const resolver *r, sdc_sched_config *c) {
    static const char *const schedules[] = {"linear", "scaled_linear", "squaredcos_cap_v2", NULL};
    static const char *const preds[] = {"epsilon", "v_prediction", "sample", NULL};
    static const char *const spacings[] = {"leading", "linspace", "trailing", NULL};
    int sched = (int)c->betas, pred = (int)c->prediction - 1, sp = (int)c->spacing - 1;
    sdc_status s;
    if ((s = get_int(r, "num_train_timesteps", ALL, 1, 100000, &c->train_steps)) ||
        (s = get_num(r, "beta_start", ALL, 0, 1, &c->beta_start)) ||
        (s = get_num(r, "beta_end", ALL, 0, 1, &c->beta_end)) ||
        (s = get_enum(r, "beta_schedule", ALL, schedules, &sched)) ||
        (s = get_enum(r, "prediction_type", ALL, preds, &pred)) ||
        (s = get_enum(r, "timestep_spacing", ALL, spacings, &sp)) ||
        (s = get_int(r, "steps_offset", ALL, 0, 100000, &c->steps_offset)))
        return s;
    c->betas = (sdc_beta_schedule)sched;
    c->prediction = (sdc_prediction)(pred + 1);
    c->spacing = (sdc_spacing)(sp + 1);
    /* StableDiffusionPipeline sets steps_offset to 1 wherever it is not (the
     * file's own value, or the loaded class's default 0). */
    if (get(r, "steps_offset", ALL) || r->as_loaded) c->steps_offset = 1;
    if (get(r, "trained_betas", ALL)) {
        if (r->f->n_trained != c->train_steps)
            return sdc_err_set(r->err, SDC_ERR_FORMAT, "%s: trained_betas has %d values but "
                               "num_train_timesteps is %d", r->f->label, r->f->n_trained,
                               c->train_steps);
        c->betas = SDC_BETAS_TRAINED;
        c->trained_betas = r->f->trained_betas;
    } else if ((c->betas == SDC_BETAS_LINEAR || c->betas == SDC_BETAS_SCALED_LINEAR) &&
               !(c->beta_start > 0 && c->beta_end > 0 && c->beta_end < 1)) {
        return bad(r, "beta_start and beta_end", "in (0, 1)");
    }
    if (c->prediction == SDC_PRED_SAMPLE &&
        (r->kind == SDC_SAMPLER_PNDM || r->kind == SDC_SAMPLER_EULER_A))
        return unsupported(r, "prediction_type", "sample"); /* diffusers raises too */
    return get_bool(r, "rescale_betas_zero_snr", DDIM | EULER | EULER_A | DPM, &c->rescale_zero_snr);
}

static sdc_status resolve_sigmas(const resolver *r, sdc_sched_config *c) {
    static const char *const interp[] = {"linear", "log_linear", NULL};
    static const char *const ttype[] = {"discrete", "continuous", NULL};
    static const char *const finals[] = {"zero", "sigma_min", NULL};
    int it = 0, tt = 0, fs = (int)c->final_sigma - 1;
    sdc_status s;
    if ((s = get_bool(r, "use_karras_sigmas", EULER | DPM | LMS | HEUN, &c->karras)) ||
        (s = refuse_if_true(r, "use_exponential_sigmas", EULER | DPM | LMS | HEUN)) ||
        (s = refuse_if_true(r, "use_beta_sigmas", EULER | DPM | LMS | HEUN)) ||
        (s = get_enum(r, "interpolation_type", EULER, interp, &it)) ||
        (s = get_enum(r, "timestep_type", EULER, ttype, &tt)) ||
        (s = get_enum(r, "final_sigmas_type", EULER | DPM, finals, &fs)))
        return s;
    if (it == 1) return unsupported(r, "interpolation_type", "log_linear");
    c->continuous_timesteps = tt == 1 && c->prediction == SDC_PRED_V;
    c->final_sigma = (sdc_final_sigma)(fs + 1);
    /* sigma_min/sigma_max bound the Karras ramp of Euler, DPM and Heun (read
     * through hasattr, so a file's key counts whatever the class). */
    if (c->karras && r->kind != SDC_SAMPLER_LMS) {
        unsigned any = BIT(r->kind);
        if ((s = get_num(r, "sigma_min", any, 1e-10, 1e6, &c->sigma_min)) ||
            (s = get_num(r, "sigma_max", any, 1e-10, 1e6, &c->sigma_max)))
            return s;
    }
    return SDC_OK;
}

static sdc_status resolve_dpm(const resolver *r, sdc_sched_config *c) {
    static const char *const algos[] = {"dpmsolver++", "sde-dpmsolver++", "dpmsolver", "deis",
                                        "sde-dpmsolver", NULL};
    static const char *const solvers[] = {"midpoint", "heun", "logrho", "bh1", "bh2", NULL};
    int algo = 0, solver = 0;
    sdc_status s;
    if ((s = get_int(r, "solver_order", DPM, 1, 3, &c->solver_order)) ||
        (s = get_enum(r, "algorithm_type", DPM, algos, &algo)) ||
        (s = get_enum(r, "solver_type", DPM, solvers, &solver)) ||
        (s = get_bool(r, "lower_order_final", DPM, &c->lower_order_final)) ||
        (s = get_bool(r, "euler_at_final", DPM, &c->euler_at_final)) ||
        (s = get_num(r, "lambda_min_clipped", DPM, -INFINITY, INFINITY, &c->lambda_min_clipped)) ||
        (s = refuse_if_true(r, "use_lu_lambdas", DPM)) ||
        (s = refuse_if_true(r, "use_flow_sigmas", DPM)) ||
        (s = refuse_if_true(r, "use_dynamic_shifting", DPM)))
        return s;
    if (c->solver_order == 3) return unsupported(r, "solver_order", "3");
    if (algo == 4) return unsupported(r, "algorithm_type", "sde-dpmsolver");
    /* diffusers maps deis to dpmsolver++ and the UniPC solver names to midpoint. */
    c->algorithm = algo == 1 ? SDC_DPM_SDE_PLUSPLUS : algo == 2 ? SDC_DPM_PLAIN : SDC_DPM_PLUSPLUS;
    c->solver_heun = solver == 1;
    if (get(r, "variance_type", DPM)) return unsupported(r, "variance_type", "(learned)");
    return SDC_OK;
}

sdc_status sdc_sched_resolve(sdc_sampler_kind kind, const sdc_sched_file *f, sdc_sched_config *out,
                             sdc_err *err) {
    if ((unsigned)kind >= SDC_SAMPLER_COUNT)
        return sdc_err_set(err, SDC_ERR_ARG, "scheduler: unknown sampler kind %d", (int)kind);
    sdc_sched_file *sd15 = NULL;
    if (!f && !(f = sd15 = sdc_sched_file_parse(SD15_JSON, "SD 1.5's scheduler config", err)))
        return err->code;
    resolver r = {.f = f, .kind = kind, .err = err,
                  .as_loaded = !strcmp(sdc_sched_file_class(f), CLASS_NAMES[kind])};
    sdc_sched_config c;
    class_defaults(kind, &c);
    bool threshold = false;
    sdc_status s;
    if ((s = resolve_common(&r, &c)) ||
        (s = get_bool(&r, "set_alpha_to_one", DDIM | PNDM, &c.set_alpha_to_one)) ||
        (s = get_bool(&r, "clip_sample", DDIM | HEUN, &c.clip_sample)) ||
        (s = get_num(&r, "clip_sample_range", DDIM | HEUN, 0, 1e6, &c.clip_sample_range)) ||
        (s = get_bool(&r, "skip_prk_steps", PNDM, &c.skip_prk_steps)) ||
        (s = get_bool(&r, "thresholding", DDIM | DPM, &threshold)) ||
        (s = resolve_sigmas(&r, &c)) || (kind == SDC_SAMPLER_DPMPP_2M && (s = resolve_dpm(&r, &c))))
        goto done;
    if (threshold) {
        s = unsupported(&r, "thresholding", "true");
        goto done;
    }
    /* The pipeline turns clip_sample off where it is on (the file's value, or
     * DDIM's default when DDIM is the file's own class). */
    if (get(&r, "clip_sample", DDIM | HEUN) || (r.as_loaded && kind == SDC_SAMPLER_DDIM))
        c.clip_sample = false;
    *out = c;
done:
    sdc_sched_file_free(sd15); /* it has no trained_betas for *out to point into */
    return s;
}
