/* textinv_run.h — one textual-inversion run from an image folder to an
 * output folder, resumable: inputs checked before anything is written, a
 * lock on the folder, checkpoints every N updates (atomic), a resume from
 * the last one that ends with the same bytes as an uninterrupted run, and
 * on NaN a stop that keeps the last good checkpoint.
 *
 *     sdc_ti_run_opts o = {.cfg = cfg, .images = "cat/", .size = 512, .out = "cat-emb/",
 *                          .checkpoint_every = 10, .eval_samples = 16, .plot = true};
 *     sdc_ti_run_result r;
 *     if (sdc_ti_run(pipeline, &o, &r, &err)) ...   // err says what, and what was kept
 *     puts(r.json);                                 // = cat-emb/train.json
 *     sdc_ti_run_result_free(&r);
 *
 * The folder gets textinv_output.h's files, checkpoint.safetensors (the
 * state after the last update, kept after the end), loss.png (with plot),
 * validation/step-NNNNNN.png (with validate_every) and .sdc-train.lock.
 * Rerunning a finished run changes nothing; other settings on a folder that
 * holds a run are refused, naming the first that differs. */
#ifndef SDC_TRAIN_TEXTINV_RUN_H
#define SDC_TRAIN_TEXTINV_RUN_H

#include "textinv_train.h"

typedef struct sdc_ti_run_opts {
    sdc_ti_config cfg;             /* cfg.lr is the rate AdamW uses */
    const char *images;            /* folder of the concept's images */
    int size;                      /* training image side, a multiple of 8 */
    const char *out;               /* output folder (created; its parent must exist) */
    int checkpoint_every;          /* updates between checkpoints, >= 1 */
    int eval_samples;              /* fixed-draw loss of the initial and learned vectors (0: skip) */
    bool plot;                     /* loss.png beside loss.csv */
    int validate_every;            /* a validation image every K updates (0: none) */
    const char *validation_prompt; /* "{}" becomes the token */
    int validation_steps;          /* DPM-Solver++ 2M steps (diffusers' validation sampler), CFG 7.5 */
    /* Recorded in train.json only. */
    const char *init_word;
    double base_lr;
    bool scale_lr;
    /* Called after each update, and with notes (skipped images, resume). */
    void (*progress)(void *ctx, int step, int steps, float loss);
    void (*note)(void *ctx, const char *msg);
    void *ctx;
} sdc_ti_run_opts;

typedef struct sdc_ti_run_result {
    int steps;                   /* updates done in all */
    int resumed_at;              /* the checkpoint's step when this run resumed one, else 0 */
    bool already_done;           /* the folder held this finished run: nothing was computed */
    float init_loss, final_loss; /* fixed-draw losses (NaN when not measured) */
    char learned_sha256[65];     /* of learned_embeds.safetensors */
    char *json;                  /* train.json's text (malloc'ed) */
} sdc_ti_run_result;

sdc_status sdc_ti_run(sdc_pipeline *p, const sdc_ti_run_opts *o, sdc_ti_run_result *r, sdc_err *err);
void sdc_ti_run_result_free(sdc_ti_run_result *r);

#endif
