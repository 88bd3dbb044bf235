/* textinv_train.h — the textual-inversion optimisation in memory, as
 * diffusers' examples/textual_inversion/textual_inversion.py runs it: new
 * placeholder vectors initialised from vocabulary tokens, prompts from the
 * object templates, t uniform in [0, 1000), seeded noise, MSE on eps (or v),
 * AdamW on the new rows only, gradient accumulation. The gradient comes from
 * textinv_grad.h; files and the run's schedule are textinv_run.h's.
 *
 *     sdc_ti_config c = {.token = "<cat-toy>", .init_ids = {2368}, .num_vectors = 1,
 *                        .steps = 1000, .batch = 4, .accum = 1, .lr = 2e-3, .seed = 0};
 *     sdc_ti_trainer *t;
 *     if (sdc_ti_trainer_create(pipeline, &c, &data, &t, &err)) ...
 *     while (t->step < c.steps)
 *         if (sdc_ti_trainer_step(t, &err)) ...     // NaN: SDC_ERR_NUMERIC, state kept
 *     // t->emb [num_vectors, dim]; t->loss[0..step) per update
 *     sdc_ti_trainer_free(t);
 *
 * Every draw comes from one torch-compatible generator (rng.h) seeded with
 * seed + 1, in a fixed order per micro-batch: for each sample the image (a
 * fresh shuffle of the images on each pass over them), the template, the
 * flip and the timestep; then the batch's noise. Its state is in the
 * checkpoint, so a resumed run draws what the uninterrupted one would. */
#ifndef SDC_TRAIN_TEXTINV_TRAIN_H
#define SDC_TRAIN_TEXTINV_TRAIN_H

#include "adamw.h"
#include "textinv_data.h"
#include "textinv_grad.h"
#include "textinv_prompts.h"

#define SDC_TI_MAX_BATCH 64

typedef struct sdc_ti_config {
    const char *token;                       /* the placeholder, e.g. "<cat-toy>" */
    int32_t init_ids[SDC_EMB_MAX_VECTORS];   /* the vocabulary id each vector starts from */
    int num_vectors;                         /* 1..SDC_EMB_MAX_VECTORS */
    int steps;                               /* optimizer updates */
    int batch, accum;                        /* images per forward, forwards per update */
    double lr;                               /* AdamW's rate, already scaled */
    uint64_t seed;
    sdc_ti_prediction prediction;
    int clip_skip;
} sdc_ti_config;

typedef struct sdc_ti_trainer {
    sdc_ti_config cfg;             /* token owned by the trainer */
    sdc_pipeline *p;
    sdc_ti_data *data;
    int dim;                       /* D, the text encoder's width */
    int step;                      /* updates done */
    float *emb, *init;             /* [num_vectors, D]: current, initial */
    float *exp_avg, *exp_avg_sq;   /* [num_vectors, D]: AdamW's moments */
    float *loss;                   /* [cfg.steps]: mean loss of each update */
    sdc_rng rng;                   /* the draws (see above) */
    int32_t *order;                /* [data->n]: this pass's image order */
    int order_pos;                 /* next index into order; data->n = pass done */
    sdc_adamw opt;
    float init_eval;               /* sdc_ti_trainer_eval of init (kept by the caller; NaN: not yet) */
    float alphas_cumprod[1000];
    int32_t prompt_ids[SDC_TI_N_TEMPLATES][77]; /* each template's ids */
} sdc_ti_trainer;

/* Validates c against the pipeline (the init ids in the vocabulary, sizes in
 * range) and starts at step 0 with the init tokens' embedding rows. data
 * stays the caller's (its latents are encoded on first use). */
sdc_status sdc_ti_trainer_create(sdc_pipeline *p, const sdc_ti_config *c, sdc_ti_data *data,
                                 sdc_ti_trainer **out, sdc_err *err);
void sdc_ti_trainer_free(sdc_ti_trainer *t);

/* One update from the trainer's own draws. A non-finite loss or gradient is
 * SDC_ERR_NUMERIC and leaves every field as it was before the call. */
sdc_status sdc_ti_trainer_step(sdc_ti_trainer *t, sdc_err *err);
/* One update from the given micro-batches (n_micro of them; their mean
 * gradient), for checks against a reference that makes its own draws. */
sdc_status sdc_ti_trainer_update(sdc_ti_trainer *t, const sdc_ti_batch *micro, int n_micro,
                                 sdc_err *err);

/* The loss of embedding emb [num_vectors, D] on fixed draws, the same for
 * every call: n_samples samples cycling through the images and both
 * orientations, templates in order, timesteps spread evenly over [0, 1000),
 * noise from a generator of its own. Compares embeddings on equal terms (a
 * step's loss is dominated by its random timestep). */
sdc_status sdc_ti_trainer_eval(sdc_ti_trainer *t, const float *emb, int n_samples, float *loss,
                               sdc_err *err);

/* The settings a resume must share, as metadata pairs kv[2k] = key,
 * kv[2k + 1] = value (the values in buf): format version, token, init ids,
 * vectors, steps, batch, accumulation, lr, seed, prediction, clip skip,
 * image size, and the images' hash and count. */
#define SDC_TI_N_CONFIG 13
void sdc_ti_trainer_config(const sdc_ti_trainer *t, const char *kv[2 * SDC_TI_N_CONFIG],
                           char buf[SDC_TI_N_CONFIG][1024]);

/* The whole state (vectors, moments, step, losses, generator, image order,
 * init_eval) with the settings that must not change across a resume, as one
 * safetensors file written atomically. */
sdc_status sdc_ti_trainer_save(const sdc_ti_trainer *t, const char *path, sdc_err *err);
/* Restores a state written by _save for the same settings, images and
 * initial vectors (a different model or image folder is refused, naming
 * what differs). */
sdc_status sdc_ti_trainer_load(sdc_ti_trainer *t, const char *path, sdc_err *err);

#endif
