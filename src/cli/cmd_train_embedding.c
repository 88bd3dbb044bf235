/* cmd_train_embedding.c — sdc train-embedding: textual inversion on a folder
 * of a concept's images (src/train/textinv_run.h), resumable, with a
 * progress bar, the running loss, a JSON summary and a loss curve. */
#include "cli.h"
#include "progress.h"

#include "../train/textinv_run.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: sdc train-embedding --model M --images DIR --token TOKEN --init WORD -o OUT [options]\n\n"
    "Learns TOKEN's embedding from DIR's .png/.jpg/.jpeg images (textual inversion, as diffusers'\n"
    "textual_inversion.py) into the folder OUT: learned_embeds.safetensors (diffusers),\n"
    "NAME.safetensors (A1111; NAME = TOKEN without <>), loss.csv, loss.png, train.json and\n"
    "checkpoint.safetensors. Rerunning resumes from the last checkpoint; a finished run is\n"
    "left as it is.\n\n"
    "  --init WORD            the initializer: one CLIP token (e.g. 'dog'); every vector\n"
    "                         starts as its embedding\n"
    "  --num-vectors N        vectors of the placeholder (default 1)\n"
    "  --steps N              optimizer updates (default 1000, DA-Fusion's; diffusers' README 3000)\n"
    "  --batch N              images per forward (default 4)\n"
    "  --accum N              forwards per update, gradient accumulation (default 1)\n"
    "  --lr X                 learning rate before scaling (default 5e-4)\n"
    "  --no-scale-lr          use --lr as is (default: times batch x accum, as diffusers'\n"
    "                         --scale_lr: 2e-3 at the defaults)\n"
    "  --size N               training image side, a multiple of 8 (default 512)\n"
    "  --seed N               seeds every draw (default 0)\n"
    "  --checkpoint-every N   updates between checkpoints (default 10)\n"
    "  --eval-samples N       loss of the initial and learned vectors on N fixed draws,\n"
    "                         in the summary (default 16; 0 skips)\n"
    "  --validate-every K     a validation image every K updates into OUT/validation/\n"
    "                         (default 0: none)\n"
    "  --validation-prompt T  its prompt, {} = TOKEN (default 'a photo of a {}')\n"
    "  --validation-steps N   its DPM-Solver++ 2M steps (default 25)\n"
    "  --prediction epsilon|v what the UNet predicts (default epsilon: SD 1.x)\n"
    "  --clip-skip N          skip the last N text-encoder layers (default 0)\n"
    "  --vocab PATH           CLIP merges file (default weights/bpe_simple_vocab_16e6.txt.gz)\n"
    "  --json                 print the summary (train.json) as JSON on stdout\n"
    "  -q, --quiet            no progress\n"
    CLI_BACKEND_USAGE;

typedef struct {
    const char *model, *images, *token, *init, *out, *vprompt, *prediction, *vocab, *backend;
    long long num_vectors, steps, batch, accum, size, seed, ckpt_every, eval, val_every, val_steps, clip_skip;
    double lr;
    bool no_scale, json, quiet;
} train_args;

/* Parses argv into a; EXIT_OK, -1 after --help, or the usage exit code. */
static int parse(int argc, char **argv, train_args *a) {
    static const char *cmd = "train-embedding";
    *a = (train_args){.vprompt = "a photo of a {}", .prediction = "epsilon",
                      .vocab = "weights/bpe_simple_vocab_16e6.txt.gz", .num_vectors = 1, .steps = 1000,
                      .batch = 4, .accum = 1, .size = 512, .ckpt_every = 10, .eval = 16,
                      .val_steps = 25, .lr = 5e-4};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(f)) { fputs(usage, stdout); return -1; }
        if (!strcmp(f, "-q") || !strcmp(f, "--quiet")) { a->quiet = true; continue; }
        if (!strcmp(f, "--json")) { a->json = true; continue; }
        if (!strcmp(f, "--no-scale-lr")) { a->no_scale = true; continue; }
        const char **str = !strcmp(f, "--model") ? &a->model : !strcmp(f, "--images") ? &a->images
            : !strcmp(f, "--token") ? &a->token : !strcmp(f, "--init") ? &a->init
            : !strcmp(f, "-o") || !strcmp(f, "--out") ? &a->out
            : !strcmp(f, "--validation-prompt") ? &a->vprompt : !strcmp(f, "--prediction") ? &a->prediction
            : !strcmp(f, "--vocab") ? &a->vocab : !strcmp(f, "--backend") ? &a->backend : NULL;
        struct { const char *name; long long *dst, lo, hi; } ints[] = {
            {"--num-vectors", &a->num_vectors, 1, 75}, {"--steps", &a->steps, 1, 10000000},
            {"--batch", &a->batch, 1, 64}, {"--accum", &a->accum, 1, 10000}, {"--size", &a->size, 64, 2048},
            {"--seed", &a->seed, 0, INT64_MAX}, {"--checkpoint-every", &a->ckpt_every, 1, INT32_MAX},
            {"--eval-samples", &a->eval, 0, 4096}, {"--validate-every", &a->val_every, 0, INT32_MAX},
            {"--validation-steps", &a->val_steps, 1, 1000}, {"--clip-skip", &a->clip_skip, 0, 11}};
        bool known = str || !strcmp(f, "--lr");
        for (size_t k = 0; !known && k < sizeof ints / sizeof *ints; k++) known = !strcmp(f, ints[k].name);
        if (!known) return cli_usage_error(cmd, "unknown option '%s'", f);
        if (!v) return cli_usage_error(cmd, "%s needs a value", f);
        i++;
        if (str) { *str = v; continue; }
        if (!strcmp(f, "--lr")) {
            if (!cli_parse_float(cmd, f, v, 0, 1e38, &a->lr)) return EXIT_USAGE;
            if (a->lr <= 0) return cli_usage_error(cmd, "--lr: '%s' is not a positive number", v);
            continue;
        }
        for (size_t k = 0; k < sizeof ints / sizeof *ints; k++)
            if (!strcmp(f, ints[k].name) && !cli_parse_int(cmd, f, v, ints[k].lo, ints[k].hi, ints[k].dst))
                return EXIT_USAGE;
    }
    if (!a->model || !a->images || !a->token || !a->init || !a->out)
        return cli_usage_error(cmd, "--model, --images, --token, --init and -o are required");
    if (a->size % 8) return cli_usage_error(cmd, "--size %lld is not a multiple of 8", a->size);
    if (strcmp(a->prediction, "epsilon") && strcmp(a->prediction, "v"))
        return cli_usage_error(cmd, "--prediction must be epsilon or v (got '%s')", a->prediction);
    if (!strstr(a->vprompt, "{}"))
        return cli_usage_error(cmd, "--validation-prompt needs {} where the token goes");
    if (!cli_backend_valid(cmd, a->backend)) return EXIT_USAGE;
    return EXIT_OK;
}

/* True when out is images or lies inside it (loss.png would be read back as
 * a training image). out need not exist yet. */
static bool out_inside(const char *images, const char *out) {
    char d[PATH_MAX], o[PATH_MAX], parent[PATH_MAX], tmp[PATH_MAX];
    if (!realpath(images, d)) return false;
    if (!realpath(out, o)) {
        snprintf(tmp, sizeof tmp, "%s", out);
        for (size_t l = strlen(tmp); l > 1 && tmp[l - 1] == '/';) tmp[--l] = '\0';
        char *slash = strrchr(tmp, '/');
        if (slash) *slash = '\0';
        if (!realpath(slash ? (tmp[0] ? tmp : "/") : ".", parent)) return false;
        snprintf(o, sizeof o, "%s", parent);
    }
    size_t n = strlen(d);
    return !strncmp(o, d, n) && (o[n] == '\0' || o[n] == '/' || (n == 1 && d[0] == '/'));
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
    if (rc) return rc < 0 ? EXIT_OK : rc;
    if (out_inside(a.images, a.out))
        return cli_usage_error(cmd, "-o %s is inside the image folder %s (its files would be read as "
                               "training images); choose a folder outside it", a.out, a.images);
    sdc_err err = {0};
    sdc_backend *be = cli_backend_create(cmd, a.backend, a.quiet, &err);
    sdc_pipeline *p = be ? sdc_pipeline_open(a.model, a.vocab, be, &err) : NULL;
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
