/* api.c — the public generation API of sdc.h over the pipeline: a model
 * owns its backend (CPU or CUDA) and pipeline; requests map onto
 * sdc_generate_opts. */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

struct sdc_model {
    sdc_backend *be;
    sdc_pipeline *p;
};

static const char *const precision_names[] = {"auto", "f32", "f16", "bf16"};

bool sdc_precision_from_name(const char *name, sdc_precision *out) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, precision_names[i])) {
            *out = (sdc_precision)i;
            return true;
        }
    return false;
}

const char *sdc_precision_name(sdc_precision p) {
    return (unsigned)p < 4 ? precision_names[p] : "unknown";
}

sdc_model *sdc_model_open(const char *checkpoint, const char *vocab, sdc_err *err) {
    return sdc_model_open_on(checkpoint, vocab, SDC_DEVICE_CPU, err);
}

sdc_model *sdc_model_open_on(const char *checkpoint, const char *vocab, sdc_device device,
                             sdc_err *err) {
    if (device != SDC_DEVICE_CPU && device != SDC_DEVICE_CUDA) {
        sdc_err_set(err, SDC_ERR_ARG, "model: unknown device %d", (int)device);
        return NULL;
    }
    sdc_model *m = calloc(1, sizeof *m);
    if (!m) {
        sdc_err_set(err, SDC_ERR_OOM, "model: out of memory");
        return NULL;
    }
    m->be = device == SDC_DEVICE_CUDA ? sdc_cuda_backend_create(0, err) : sdc_cpu_backend_create(err);
    if (!m->be ||
        !(m->p = sdc_pipeline_open(checkpoint, vocab, m->be, err))) {
        sdc_model_close(m);
        return NULL;
    }
    return m;
}

void sdc_model_close(sdc_model *m) {
    if (!m) return;
    sdc_pipeline_free(m->p);
    sdc_backend_destroy(m->be);
    free(m);
}

sdc_status sdc_model_generate(sdc_model *m, const sdc_request *r, uint8_t **rgb, sdc_err *err) {
    *rgb = NULL;
    if (!m || !r) return sdc_err_set(err, SDC_ERR_ARG, "generate: NULL argument");
    sdc_generate_opts o = {.prompt = r->prompt, .negative = r->negative, .cfg = r->cfg,
                           .seed = r->seed, .width = r->width, .height = r->height,
                           .batch = r->batch, .init_image = r->init_image,
                           .strength = r->strength, .syntax = SDC_PROMPT_PLAIN,
                           .precision = r->precision, .vae_precision = r->vae_precision,
                           .rng = r->rng};
    /* No name: the model folder's own scheduler (SD 1.5's PLMS for a file). */
    sdc_sampler_default(m->p->sched, &o.sampler);
    if (r->sampler && !sdc_sampler_from_name(r->sampler, &o.sampler))
        return sdc_err_set(err, SDC_ERR_ARG, "generate: unknown sampler '%s' (valid: %s)",
                           r->sampler, sdc_sampler_names());
    o.sampler.steps = r->steps;
    sdc_generate_result res;
    sdc_status s = sdc_generate(m->p, &o, &res, err);
    if (s) return s;
    *rgb = res.rgb;
    res.rgb = NULL;
    sdc_generate_result_free(&res);
    return SDC_OK;
}
