/* cmd_generate.c — sdc generate: txt2img and img2img to PNG files carrying
 * A1111-style parameters, reproducing diffusers' pipelines seed for seed with
 * the model folder's own scheduler config. */
#include "cli.h"
#include "gen_choice.h"
#include "preflight.h"
#include "progress.h"

#include "../core/sha256.h"
#include "../image/image.h"
#include "../pipeline/pipeline.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *model, *prompt, *negative, *sampler, *spacing, *prediction, *final_sigma;
    const char *sched_config, *init, *fit, *embeddings, *syntax, *init_noise, *save_latents;
    const char *vocab, *out, *backend, *size;
    long long steps, seed, width, height, batch, clip_skip, clip_heads, threads;
    double eta, cfg, strength;
    bool quiet, json, low_memory;
    cli_gen_choice gen;
} gen_args;

static const cli_spec spec = {
    "generate", "--model M --prompt TEXT [options] -o OUT.png",
    "txt2img, or img2img with --init, as diffusers' StableDiffusionPipeline and\n"
    "StableDiffusionImg2ImgPipeline run the same model, prompt, sampler and seed.",
    "The sampler follows the model's scheduler config as diffusers does: a diffusers\n"
    "folder's scheduler/scheduler_config.json (or --scheduler-config FILE; a single\n"
    "file gets SD 1.5's). With no --sampler the folder's own scheduler runs; any\n"
    "other is Class.from_config(pipe.scheduler.config). Explicit flags (--sampler with\n"
    "its Karras/SDE choice, --spacing, --prediction-type, --final-sigma) override the\n"
    "config. A batch uses one generator per image seeded SEED+i (A1111's per-image\n"
    "seeds): each PNG's parameters regenerate that image alone."};

/* "-o out.PNG" keeps its case; a batch writes out-0.PNG, out-1.PNG, ... */
static bool png_name(const char *out) {
    size_t n = strlen(out);
    return n >= 5 && !strcasecmp(out + n - 4, ".png");
}

static void output_name(const char *out, int i, int batch, char *buf, size_t cap) {
    if (batch == 1) snprintf(buf, cap, "%s", out);
    else snprintf(buf, cap, "%.*s-%d%s", (int)(strlen(out) - 4), out, i, out + strlen(out) - 4);
}

static void on_progress(void *ctx, int i, int n) {
    cli_progress *p = ctx;
    p->total = n; /* img2img runs fewer iterations than --steps */
    cli_progress_update(p, i);
}

/* Checks what parsing cannot: combinations, sizes, names. */
static int check_args(gen_args *a, const cli_opt *opts) {
    if (a->size) {
        if (cli_given(opts, "width") || cli_given(opts, "height"))
            return cli_usage_error("generate", "give --size or --width/--height, not both");
        if (!cli_parse_size("generate", "--size", a->size, &a->width, &a->height)) return EXIT_USAGE;
    }
    if (a->width % 8 || a->height % 8)
        return cli_usage_error("generate", "--width and --height must be multiples of 8 (got %lldx%lld)",
                               a->width, a->height);
    if (!a->init && cli_given(opts, "strength"))
        return cli_usage_error("generate", "--strength applies to img2img: give --init IMG too");
    if (!a->init && cli_given(opts, "fit"))
        return cli_usage_error("generate", "--fit applies to img2img: give --init IMG too");
    if (a->init && a->init_noise)
        return cli_usage_error("generate", "--init-noise replaces txt2img's initial latents; it "
                               "does not apply with --init");
    if (!png_name(a->out))
        return cli_usage_error("generate", "-o must name a .png file (got '%s')", a->out);
    if (a->init && !strcmp(a->init, a->out))
        return cli_usage_error("generate", "the output must not overwrite --init");
    if (!cli_backend_valid("generate", a->backend)) return EXIT_USAGE;
    if (a->seed < -1) return cli_usage_error("generate", "--seed must be -1 (random) or >= 0");
    return cli_gen_choice_resolve("generate", &a->gen);
}

/* The sampler options: --sampler or the model's own scheduler, then the
 * overrides; the config resolved now so that a bad one fails before loading. */
static int choose_sampler(const gen_args *a, const sdc_sched_file *sched, sdc_sampler_opts *so,
                          sdc_sched_config *resolved, sdc_err *err) {
    *so = (sdc_sampler_opts){.steps = (int)a->steps, .eta = (float)a->eta};
    if (a->sampler) {
        if (!sdc_sampler_from_name(a->sampler, so))
            return cli_usage_error("generate", "unknown sampler '%s' (valid: %s)", a->sampler,
                                   sdc_sampler_names());
        so->config = sched;
    } else if (!sdc_sampler_default(sched, so) && !a->quiet) {
        fprintf(stderr, "sdc generate: %s: scheduler %s is not one sdc runs; using pndm (PLMS) "
                        "on its settings (pick one with --sampler)\n",
                sdc_sched_file_label(sched), sdc_sched_file_class(sched));
    }
    if (a->spacing)
        so->spacing = !strcmp(a->spacing, "leading") ? SDC_SPACING_LEADING
                      : !strcmp(a->spacing, "linspace") ? SDC_SPACING_LINSPACE : SDC_SPACING_TRAILING;
    if (a->prediction)
        so->prediction = !strcmp(a->prediction, "epsilon") ? SDC_PRED_EPSILON
                         : !strcmp(a->prediction, "sample") ? SDC_PRED_SAMPLE : SDC_PRED_V;
    if (a->final_sigma)
        so->final_sigma = !strcmp(a->final_sigma, "zero") ? SDC_FINAL_SIGMA_ZERO : SDC_FINAL_SIGMA_MIN;
    sdc_status s = sdc_sampler_resolve(so, resolved, err);
    if (s == SDC_ERR_ARG) return cli_usage_error("generate", "%s", err->msg);
    return s ? cli_error("generate", err) : EXIT_OK;
}

/* Everything that can fail before the model loads: vocabulary, checkpoint
 * parts, writable outputs and room for them. */
static sdc_status preflight(const gen_args *a, char *vocab_buf, size_t cap, const char **vocab,
                            sdc_err *err) {
    sdc_status s;
    if ((s = cli_model_vocab(a->model, a->vocab, vocab_buf, cap, vocab, err)) ||
        (s = cli_check_model_parts(a->model, 1u << SDC_COMPONENT_UNET | 1u << SDC_COMPONENT_VAE |
                                                 1u << SDC_COMPONENT_TEXT, err)) ||
        (s = cli_check_writable(a->out, "-o", err)) ||
        (a->save_latents && (s = cli_check_writable(a->save_latents, "--save-latents", err))))
        return s;
    unsigned long long need = (unsigned long long)a->batch * cli_png_bound((int)a->width, (int)a->height);
    return cli_check_space(a->out, need, "-o", err);
}

static sdc_status load_init(const gen_args *a, float **init, sdc_tensor **noise, sdc_err *err) {
    int h = (int)a->height / 8, w = (int)a->width / 8;
    sdc_status s = SDC_OK;
    if (a->init) {
        sdc_image im;
        size_t cap = (size_t)3 * a->width * a->height;
        if (!(s = sdc_image_load(a->init, NULL, &im, err))) {
            *init = malloc(sizeof **init * cap);
            s = *init ? sdc_image_to_tensor(&im, (int)a->width, (int)a->height,
                                            strcmp(a->fit, "crop") ? SDC_FIT_RESIZE : SDC_FIT_CROP,
                                            *init, cap, err)
                      : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
            sdc_image_free(&im);
        }
    }
    if (!s && a->init_noise) {
        sdc_safetensors *st = sdc_safetensors_open(a->init_noise, err);
        *noise = st ? sdc_safetensors_load(st, "noise", SDC_F32, err) : NULL;
        sdc_safetensors_close(st);
        if (!*noise) s = err->code;
        else if ((*noise)->ndim != 4 || (*noise)->shape[0] != a->batch || (*noise)->shape[1] != 4 ||
                 (*noise)->shape[2] != h || (*noise)->shape[3] != w)
            s = sdc_err_set(err, SDC_ERR_SHAPE, "%s: noise must be [%lld, 4, %d, %d] for this "
                            "size and batch", a->init_noise, a->batch, h, w);
    }
    return s;
}

/* Writes the batch's PNGs, each with the A1111 parameters that regenerate it. */
static sdc_status save_images(const gen_args *a, const sdc_generate_opts *o,
                              const sdc_sched_config *sc, const sdc_generate_result *res,
                              char **paths, sdc_err *err) {
    char hash[65] = "", name[4096];
    const char *model_hash = NULL;
    /* A1111's hash is the file's; a diffusers folder has none. */
    sdc_err herr = {0};
    if (sdc_sha256_file(a->model, hash, &herr) == SDC_OK) {
        hash[10] = '\0';
        model_hash = hash;
    }
    snprintf(name, sizeof name, "%s", a->model);
    for (size_t l = strlen(name); l > 1 && name[l - 1] == '/';) name[--l] = '\0';
    char *base = basename(name), *dot = strrchr(base, '.');
    if (dot && !strcmp(dot, ".safetensors")) *dot = '\0';
    const char *schedule = NULL;
    const char *sampler = sdc_sampler_a1111(o->sampler.kind, sc, &schedule);
    bool plain = o->syntax == SDC_PROMPT_PLAIN;
    char *prompt = plain ? sdc_a1111_escape(a->prompt) : NULL;
    char *negative = plain ? sdc_a1111_escape(a->negative) : NULL;
    sdc_status s = plain && (!prompt || !negative) ? sdc_err_set(err, SDC_ERR_OOM, "out of memory") : SDC_OK;
    for (int i = 0; !s && i < a->batch; i++) {
        sdc_gen_meta m = {.prompt = plain ? prompt : a->prompt,
                          .negative_prompt = plain ? negative : a->negative,
                          .steps = (int)a->steps, .sampler = sampler, .schedule_type = schedule,
                          .cfg_scale = a->cfg, .seed = (int64_t)(o->seed + (uint64_t)i),
                          .has_seed = true, .width = (int)a->width, .height = (int)a->height,
                          .model_hash = model_hash, .model = base, .img2img = a->init != NULL,
                          .denoising_strength = a->strength,
                          .rng = cli_gen_choice_rng_infotext(&a->gen),
                          .clip_skip = a->clip_skip ? (int)a->clip_skip + 1 : 0};
        char *params = sdc_a1111_parameters(&m);
        output_name(a->out, i, (int)a->batch, paths[i], 4096);
        s = params ? sdc_image_save_png(paths[i], res->rgb + (size_t)i * 3 * a->width * a->height,
                                        (int)a->width, (int)a->height, params, err)
                   : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
        free(params);
        if (!s && !a->quiet && !a->json) printf("%s\n", paths[i]);
    }
    free(prompt);
    free(negative);
    return s;
}

static void print_json(const gen_args *a, const sdc_generate_opts *o, const sdc_sched_config *sc,
                       char **paths) {
    printf("{\"images\": [");
    for (int i = 0; i < a->batch; i++) {
        printf(i ? ", " : "");
        cli_json_string(stdout, paths[i]);
    }
    printf("], \"seeds\": [");
    for (int i = 0; i < a->batch; i++) printf("%s%llu", i ? ", " : "", (unsigned long long)(o->seed + (uint64_t)i));
    printf("], \"sampler\": \"%s\", \"prediction_type\": \"%s\", \"timestep_spacing\": \"%s\", "
           "\"rng\": \"%s\", \"steps\": %lld, \"cfg\": %g, \"width\": %lld, \"height\": %lld}\n",
           sdc_sampler_canonical(o->sampler.kind, sc), sdc_prediction_name(sc->prediction),
           sdc_spacing_name(sc->spacing), o->rng == SDC_RNG_CUDA ? "cuda" : "cpu", a->steps, a->cfg,
           a->width, a->height);
}

int cmd_generate(int argc, char **argv) {
    gen_args a = {.negative = "", .fit = "resize", .syntax = "plain", .steps = 25, .seed = -1,
                  .width = 512, .height = 512, .batch = 1, .cfg = 7.5, .strength = 0.75};
    cli_opt opts[] = {
        CLI_MODEL(&a.model, CLI_REQUIRED),
        {"prompt", 'p', CLI_STRING, &a.prompt, CLI_REQUIRED, .metavar = "TEXT", .help = "the prompt"},
        {"negative|negative-prompt", 'n', CLI_STRING, &a.negative, .metavar = "TEXT",
         .help = "negative prompt (default: empty)"},
        CLI_OUT(&a.out, CLI_REQUIRED, "OUT.png (any case); a batch writes OUT-0.png ... OUT-(N-1).png"),
        {"steps", 0, CLI_INT, &a.steps, .lo = 1, .hi = 100000, .metavar = "N",
         .help = "sampler steps (default 25; at most the config's num_train_timesteps)"},
        {"sampler|sampling-method", 0, CLI_STRING, &a.sampler, .metavar = "NAME",
         .help = "ddim, pndm/plms, euler[_karras], euler_a, dpmpp_2m[_karras],\n"
                 "dpmpp_2m_sde[_karras], lms[_karras], heun[_karras]; A1111's names too\n"
                 "(\"Euler a\", \"DPM++ 2M Karras\"), any case (default: the model's own)"},
        {"scheduler-config", 0, CLI_STRING, &a.sched_config, .metavar = "FILE",
         .help = "a diffusers scheduler_config.json to follow (default: the folder's own;\n"
                 "a single file gets SD 1.5's)"},
        {"spacing", 0, CLI_CHOICE, &a.spacing, .choices = "leading|linspace|trailing",
         .help = "timestep spacing (default: the config's, else the scheduler's own)"},
        {"prediction-type", 0, CLI_CHOICE, &a.prediction, .choices = "epsilon|v_prediction|v|sample",
         .help = "what the UNet predicts (default: the config's prediction_type)"},
        {"final-sigma", 0, CLI_CHOICE, &a.final_sigma, .choices = "zero|sigma_min",
         .help = "dpmpp_2m/euler final sigma (default: the config's, else zero, as\n"
                 "diffusers >= 0.26; sigma_min reproduces DPM++ of diffusers <= 0.25)"},
        {"eta", 0, CLI_FLOAT, &a.eta, .lo = 0, .hi = 1, .metavar = "X", .help = "DDIM eta (default 0)"},
        {"cfg|cfg-scale", 0, CLI_FLOAT, &a.cfg, .lo = 0, .hi = 100, .metavar = "X",
         .help = "classifier-free guidance scale (default 7.5; <= 1 skips the uncond pass)"},
        {"seed", 's', CLI_INT, &a.seed, .lo = -1, .hi = (double)INT64_MAX, .metavar = "S",
         .help = "torch.manual_seed-compatible seed (default -1: random, printed first)"},
        {"width", 'W', CLI_INT, &a.width, .lo = SDC_SIZE_MIN, .hi = SDC_SIZE_MAX, .metavar = "W",
         .help = "multiple of 8 in [8, 8192] (default 512)"},
        {"height", 'H', CLI_INT, &a.height, .lo = SDC_SIZE_MIN, .hi = SDC_SIZE_MAX, .metavar = "H",
         .help = "multiple of 8 in [8, 8192] (default 512)"},
        {"size", 0, CLI_STRING, &a.size, .metavar = "N|WxH", .help = "both at once: 512 or 768x512"},
        {"batch|batch-count", 'b', CLI_INT, &a.batch, .lo = 1, .hi = 64, .metavar = "N",
         .help = "images per UNet call, seeds SEED..SEED+N-1 (default 1)"},
        {"init|init-img", 'i', CLI_STRING, &a.init, .metavar = "IMG", .help = "img2img from a PNG/JPEG"},
        {"strength", 0, CLI_FLOAT, &a.strength, .lo = 0, .hi = 1, .metavar = "S",
         .help = "img2img strength in [0, 1] (default 0.75; needs --init)"},
        {"fit", 0, CLI_CHOICE, &a.fit, .choices = "resize|crop",
         .help = "how --init is brought to W x H (default resize)"},
        {"embeddings", 0, CLI_STRING, &a.embeddings, .metavar = "PATH",
         .help = "textual-inversion file or folder (.safetensors)"},
        {"prompt-syntax", 0, CLI_CHOICE, &a.syntax, .choices = "plain|a1111",
         .help = "default plain: exactly diffusers' conditioning"},
        {"clip-skip", 0, CLI_INT, &a.clip_skip, .lo = 0, .hi = 11, .metavar = "N",
         .help = "skip the last N text-encoder layers (diffusers' count; A1111's\n"
                 "'Clip skip 2' is 1)"},
        {"clip-heads", 0, CLI_INT, &a.clip_heads, .lo = 1, .hi = 4096, .metavar = "N",
         .help = "the text encoder's head count, for a single file whose width is not a\n"
                 "multiple of 64 (default: width / 64)"},
        {"init-noise", 0, CLI_STRING, &a.init_noise, .metavar = "F",
         .help = "safetensors tensor 'noise' [B,4,H/8,W/8] replacing the seeded latents"},
        {"save-latents", 0, CLI_STRING, &a.save_latents, .metavar = "F",
         .help = "write the final latents (tensor 'latents') to F"},
        CLI_GEN_CHOICE_OPTS(&a.gen),
        CLI_VOCAB(&a.vocab),
        {"low-memory", 0, CLI_FLAG, &a.low_memory,
         .help = "keep only the layer at work resident (lower peak RSS, slower)"},
        CLI_BACKEND(&a.backend),
        CLI_THREADS(&a.threads),
        CLI_QUIET(&a.quiet),
        CLI_JSON(&a.json),
        CLI_END};
    int rc = cli_parse(&spec, opts, argc, argv, NULL);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if ((rc = check_args(&a, opts))) return rc;
    cli_apply_threads(a.threads);

    sdc_err err = {0};
    sdc_sched_file *sched = NULL;
    sdc_status s = a.sched_config ? (sched = sdc_sched_file_load(a.sched_config, &err)) ? SDC_OK : err.code
                                  : sdc_sched_file_for_model(a.model, &sched, &err);
    if (s) return cli_error("generate", &err);
    sdc_generate_opts o = {.prompt = a.prompt, .negative = a.negative, .cfg = (float)a.cfg,
                           .width = (int)a.width, .height = (int)a.height, .batch = (int)a.batch,
                           .clip_skip = (int)a.clip_skip, .strength = (float)a.strength,
                           .syntax = strcmp(a.syntax, "a1111") ? SDC_PROMPT_PLAIN : SDC_PROMPT_A1111};
    sdc_sched_config sc;
    if ((rc = choose_sampler(&a, sched, &o.sampler, &sc, &err))) {
        sdc_sched_file_free(sched);
        return rc;
    }
    char vocab_buf[4096];
    const char *vocab = NULL;
    if ((s = preflight(&a, vocab_buf, sizeof vocab_buf, &vocab, &err))) {
        sdc_sched_file_free(sched);
        return cli_error("generate", &err);
    }
    o.seed = a.seed >= 0 ? (uint64_t)a.seed : cli_random_seed();
    if (a.seed < 0) fprintf(stderr, "seed: %llu\n", (unsigned long long)o.seed); /* before the work */
    cli_gen_choice_apply(&a.gen, &o);

    sdc_backend *be = NULL;
    sdc_pipeline *p = NULL;
    sdc_embedding_set *emb = NULL;
    sdc_tensor *noise = NULL;
    float *init = NULL;
    sdc_generate_result res = {0};
    sdc_generate_row *rows = NULL;
    char **paths = calloc((size_t)a.batch, sizeof *paths);
    for (int i = 0; paths && i < a.batch; i++)
        if (!(paths[i] = malloc(4096))) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!paths) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    if (!s) s = load_init(&a, &init, &noise, &err);
    o.init_image = init;
    o.init_noise = noise ? noise->data : NULL;
    /* A generator per image, seeded seed + i, as A1111 seeds a batch. */
    if (!s && a.batch > 1 && !noise) {
        if (!(rows = calloc((size_t)a.batch, sizeof *rows))) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
        for (int i = 0; rows && i < a.batch; i++) rows[i].seed = o.seed + (uint64_t)i;
        o.rows = rows;
    }
    if (!s && !(be = cli_backend_create("generate", a.backend, a.quiet, &err))) s = err.code;
    if (!s && !(p = sdc_pipeline_open_opts(a.model, vocab, be, (int)a.clip_heads, &err))) s = err.code;
    if (p) p->low_memory = a.low_memory;
    /* Embeddings must match the text encoder's width. */
    if (!s && a.embeddings &&
        !(s = sdc_embeddings_load(&emb, a.embeddings, p->clip.cfg.width, &err)))
        o.embeddings = emb;
    cli_progress prog;
    if (!s) {
        cli_progress_start(&prog, "sampling", "it", (int)a.steps, a.quiet || a.json);
        o.progress = on_progress;
        o.progress_ctx = &prog;
        s = sdc_generate(p, &o, &res, &err);
        if (!s) cli_progress_end(&prog);
    }
    if (!s && res.truncated)
        fprintf(stderr, "sdc generate: warning: the prompt was cut to 77 tokens "
                        "(--prompt-syntax a1111 encodes longer prompts in chunks)\n");
    if (!s && a.save_latents) {
        sdc_tensor lt;
        sdc_tensor_init(&lt, SDC_F32, 4, (const int64_t[]){a.batch, 4, a.height / 8, a.width / 8},
                        res.latents, &err);
        sdc_st_write_item it = {"latents", &lt};
        s = sdc_safetensors_write(a.save_latents, &it, 1, NULL, 0, &err);
    }
    if (!s) s = save_images(&a, &o, &sc, &res, paths, &err);
    if (!s && a.json) print_json(&a, &o, &sc, paths);
    sdc_generate_result_free(&res);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
    sdc_embeddings_free(emb);
    sdc_tensor_free(noise);
    sdc_sched_file_free(sched);
    free(init);
    free(rows);
    for (int i = 0; paths && i < a.batch; i++) free(paths[i]);
    free(paths);
    return s ? cli_error("generate", &err) : EXIT_OK;
}
