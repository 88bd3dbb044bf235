/* cmd_train_embedding.c — sdc train-embedding: textual inversion on a folder
 * of a concept's images (src/train/textinv_run.h), resumable, with a
 * progress bar, the running loss, a JSON summary and a loss curve. */
#include "augment_cli.h"
#include "preflight.h"
#include "progress.h"

#include "../train/textinv_run.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cli_spec spec = {
    "train-embedding", "--model M --images DIR --token TOKEN --init WORD -o OUT [options]",
    "Learns TOKEN's embedding from DIR's .png/.jpg/.jpeg images (textual inversion, as\n"
    "diffusers' textual_inversion.py) into the folder OUT: learned_embeds.safetensors\n"
    "(diffusers), NAME.safetensors (A1111; NAME = TOKEN without <>), loss.csv, loss.png,\n"
    "train.json and checkpoint.safetensors. Rerunning resumes from the last checkpoint; a\n"
    "finished run is left as it is.",
    NULL};

typedef struct {
    const char *model, *images, *token, *init, *out, *vprompt, *prediction, *vocab, *backend;
    long long num_vectors, steps, batch, accum, size, seed, ckpt_every, eval, val_every, val_steps, clip_skip;
    long long threads, clip_heads;
    double lr;
    bool no_scale, json, quiet;
    char vocab_buf[4096];
    const char *vocab_path; /* NULL: the model folder's own tokenizer */
} train_args;

/* Parses argv into a; EXIT_OK, CLI_HELP_SHOWN, or the usage exit code. */
static int parse(int argc, char **argv, train_args *a) {
    static const char *cmd = "train-embedding";
    *a = (train_args){.vprompt = "a photo of a {}", .prediction = "epsilon", .num_vectors = 1,
                      .steps = 1000, .batch = 4, .accum = 1, .size = 512, .ckpt_every = 10,
                      .eval = 16, .val_steps = 25, .lr = 5e-4};
    cli_opt opts[] = {
        CLI_MODEL(&a->model, CLI_REQUIRED),
        {"images", 'i', CLI_STRING, &a->images, CLI_REQUIRED, .metavar = "DIR",
         .help = "the concept's .png/.jpg/.jpeg images"},
        {"token", 0, CLI_STRING, &a->token, CLI_REQUIRED, .metavar = "TOKEN",
         .help = "the new word, e.g. '<my-cat>' (must not be in CLIP's vocabulary)"},
        {"init", 0, CLI_STRING, &a->init, CLI_REQUIRED, .metavar = "WORD",
         .help = "the initializer: one CLIP token (e.g. 'dog'); every vector starts as\n"
                 "its embedding"},
        CLI_OUT(&a->out, CLI_REQUIRED, "the output folder OUT"),
        {"num-vectors", 0, CLI_INT, &a->num_vectors, .lo = 1, .hi = 75, .metavar = "N",
         .help = "vectors of the placeholder (default 1)"},
        {"steps", 0, CLI_INT, &a->steps, .lo = 1, .hi = 10000000, .metavar = "N",
         .help = "optimizer updates (default 1000, DA-Fusion's; diffusers' README 3000)"},
        {"batch", 'b', CLI_INT, &a->batch, .lo = 1, .hi = 64, .metavar = "N",
         .help = "images per forward (default 4)"},
        {"accum", 0, CLI_INT, &a->accum, .lo = 1, .hi = 10000, .metavar = "N",
         .help = "forwards per update, gradient accumulation (default 1)"},
        {"lr", 0, CLI_FLOAT, &a->lr, .lo = 1e-30, .hi = 1e38, .metavar = "X",
         .help = "learning rate before scaling (default 5e-4)"},
        {"no-scale-lr", 0, CLI_FLAG, &a->no_scale,
         .help = "use --lr as is (default: times batch x accum, as diffusers'\n"
                 "--scale_lr: 2e-3 at the defaults)"},
        {"size", 0, CLI_INT, &a->size, .lo = 64, .hi = 2048, .metavar = "N",
         .help = "training image side, a multiple of 8 (default 512)"},
        {"seed", 's', CLI_INT, &a->seed, .lo = 0, .hi = (double)INT64_MAX, .metavar = "N",
         .help = "seeds every draw (default 0)"},
        {"checkpoint-every", 0, CLI_INT, &a->ckpt_every, .lo = 1, .hi = INT32_MAX, .metavar = "N",
         .help = "updates between checkpoints (default 10)"},
        {"eval-samples", 0, CLI_INT, &a->eval, .lo = 0, .hi = 4096, .metavar = "N",
         .help = "loss of the initial and learned vectors on N fixed draws, in the\n"
                 "summary (default 16; 0 skips)"},
        {"validate-every", 0, CLI_INT, &a->val_every, .lo = 0, .hi = INT32_MAX, .metavar = "K",
         .help = "a validation image every K updates into OUT/validation/ (default 0: none)"},
        {"validation-prompt", 0, CLI_STRING, &a->vprompt, .metavar = "T",
         .help = "its prompt, {} = TOKEN (default 'a photo of a {}')"},
        {"validation-steps", 0, CLI_INT, &a->val_steps, .lo = 1, .hi = 1000, .metavar = "N",
         .help = "its DPM-Solver++ 2M steps (default 25)"},
        {"prediction|prediction-type", 0, CLI_CHOICE, &a->prediction, .choices = "epsilon|v",
         .help = "what the UNet predicts (default epsilon: SD 1.x)"},
        {"clip-skip", 0, CLI_INT, &a->clip_skip, .lo = 0, .hi = 11, .metavar = "N",
         .help = "skip the last N text-encoder layers (default 0)"},
        {"clip-heads", 0, CLI_INT, &a->clip_heads, .lo = 1, .hi = 4096, .metavar = "N",
         .help = "the text encoder's head count (see sdc generate --help)"},
        CLI_VOCAB(&a->vocab),
        CLI_BACKEND(&a->backend),
        CLI_THREADS(&a->threads),
        {"json", 0, CLI_FLAG, &a->json, .help = "print the summary (train.json) as JSON on stdout"},
        CLI_QUIET(&a->quiet),
        CLI_END};
    int rc = cli_parse(&spec, opts, argc, argv, NULL);
    if (rc) return rc;
    if (a->size % 8) return cli_usage_error(cmd, "--size %lld is not a multiple of 8", a->size);
    if (!strstr(a->vprompt, "{}"))
        return cli_usage_error(cmd, "--validation-prompt needs {} where the token goes");
    if (!cli_backend_valid(cmd, a->backend)) return EXIT_USAGE;
    if (aug_path_inside(a->images, a->out))
        return cli_usage_error(cmd, "-o %s is inside the image folder %s (its files would be read as "
                               "training images); choose a folder outside it", a->out, a->images);
    cli_apply_threads(a->threads);
    /* Before any model loads: the vocabulary, the checkpoint's parts, the output folder. */
    sdc_err err = {0};
    sdc_status s = cli_model_vocab(a->model, a->vocab, a->vocab_buf, sizeof a->vocab_buf,
                                   &a->vocab_path, &err);
    if (!s) s = cli_check_model_parts(a->model, 1u << SDC_COMPONENT_UNET | 1u << SDC_COMPONENT_VAE |
                                                    1u << SDC_COMPONENT_TEXT, &err);
    if (!s) s = cli_check_writable_dir(a->out, "-o", &err);
    return s ? cli_error(cmd, &err) : EXIT_OK;
}

typedef struct {
    cli_progress pr;
    float recent[20];
    int n_recent;
    bool quiet;
} progress_ctx;

static void on_step(void *ctx, int step, int steps, float loss) {
    progress_ctx *c = ctx;
    c->recent[c->n_recent++ % 20] = loss;
    int n = c->n_recent < 20 ? c->n_recent : 20;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += c->recent[i];
    cli_progress_note(&c->pr, "loss %.4f (last %d: %.4f)", loss, n, sum / n);
    cli_progress_update(&c->pr, step);
    (void)steps;
}

static void on_note(void *ctx, const char *msg) {
    progress_ctx *c = ctx;
    if (!c->quiet) fprintf(stderr, "sdc train-embedding: %s\n", msg);
}

int cmd_train_embedding(int argc, char **argv) {
    static const char *cmd = "train-embedding";
    train_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    sdc_err err = {0};
    sdc_backend *be = cli_backend_create(cmd, a.backend, a.quiet, &err);
    sdc_pipeline *p = be ? sdc_pipeline_open_opts(a.model, a.vocab_path, be, (int)a.clip_heads, &err)
                         : NULL;
    sdc_ti_run_opts o = {.images = a.images, .size = (int)a.size, .out = a.out,
                         .checkpoint_every = (int)a.ckpt_every, .eval_samples = (int)a.eval, .plot = true,
                         .validate_every = (int)a.val_every, .validation_prompt = a.vprompt,
                         .validation_steps = (int)a.val_steps, .init_word = a.init, .base_lr = a.lr,
                         .scale_lr = !a.no_scale, .progress = on_step, .note = on_note};
    o.cfg = (sdc_ti_config){.token = a.token, .num_vectors = (int)a.num_vectors, .steps = (int)a.steps,
                            .batch = (int)a.batch, .accum = (int)a.accum, .seed = (uint64_t)a.seed,
                            .prediction = !strcmp(a.prediction, "v") ? SDC_PREDICT_V : SDC_PREDICT_EPSILON,
                            .clip_skip = (int)a.clip_skip};
    o.cfg.lr = a.no_scale ? a.lr : a.lr * (double)(a.batch * a.accum);
    int32_t init_id;
    int n_init = 0;
    sdc_status s = p ? sdc_ti_init_ids(p->tok, a.init, true, &init_id, &n_init, &err) : err.code;
    for (int i = 0; !s && i < o.cfg.num_vectors; i++) o.cfg.init_ids[i] = init_id;
    progress_ctx pc = {.quiet = a.quiet};
    o.ctx = &pc;
    cli_progress_start(&pc.pr, "training", "step", (int)a.steps, a.quiet);
    sdc_ti_run_result r = {0};
    if (!s) s = sdc_ti_run(p, &o, &r, &err);
    if (!s && !r.already_done && r.resumed_at < r.steps) cli_progress_end(&pc.pr);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
    if (s) return cli_error(cmd, &err);
    if (a.json) {
        cJSON *j = cJSON_Parse(r.json);
        if (j) {
            cJSON_AddStringToObject(j, "output", a.out);
            cJSON_AddBoolToObject(j, "already_done", r.already_done);
            cJSON_AddNumberToObject(j, "resumed_at", r.resumed_at);
            char *text = cJSON_Print(j);
            if (text) printf("%s\n", text);
            free(text);
            cJSON_Delete(j);
        }
    } else if (!a.quiet) {
        fprintf(stderr, "sdc train-embedding: %s: %s learned in %d steps%s", a.out, a.token, r.steps,
                r.already_done ? " (already done)" : "");
        if (isfinite(r.init_loss) && isfinite(r.final_loss))
            fprintf(stderr, "; loss on %lld fixed draws %.5f (initializer) -> %.5f", a.eval, r.init_loss,
                    r.final_loss);
        fprintf(stderr, "\n");
    }
    sdc_ti_run_result_free(&r);
    return EXIT_OK;
}
