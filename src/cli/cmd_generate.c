/* cmd_generate.c — sdc generate: txt2img and img2img to PNG files carrying
 * A1111-style parameters, reproducing diffusers' pipelines seed for seed. */
#include "cli.h"
#include "gen_choice.h"
#include "progress.h"

#include "../core/sha256.h"
#include "../image/image.h"
#include "../pipeline/pipeline.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: sdc generate --model M --prompt TEXT [options] -o OUT.png\n\n"
    "  --negative TEXT        negative prompt (default: empty)\n"
    "  --steps N              sampler steps (default 25)\n"
    "  --sampler NAME         pndm (default, diffusers' SD 1.5 scheduler), ddim, euler,\n"
    "                         euler_a, dpmpp_2m, dpmpp_2m_karras, lms, heun\n"
    "  --eta X                DDIM eta (default 0)\n"
    "  --spacing S            timestep spacing: leading | linspace | trailing\n"
    "                         (default: what diffusers uses for the sampler)\n"
    "  --cfg X                classifier-free guidance scale (default 7.5; <= 1 skips\n"
    "                         the unconditional pass)\n"
    "  --seed S               torch.manual_seed-compatible seed (default: random, printed)\n"
    "  --width W --height H   multiples of 8 in [64, 2048] (default 512x512)\n"
    "  --batch N              images per UNet call, from one generator (default 1;\n"
    "                         with --rng cuda image i has its own, seed + i, as in A1111)\n"
    "  --init IMG --strength S  img2img from a PNG/JPEG (strength in [0,1], default 0.75)\n"
    "  --fit resize|crop      how --init is brought to W x H (default resize)\n"
    "  --embeddings PATH      textual-inversion file or folder (.safetensors)\n"
    "  --prompt-syntax plain|a1111  (default plain: exactly diffusers' conditioning)\n"
    "  --clip-skip N          skip the last N text-encoder layers (diffusers' count;\n"
    "                         A1111's 'Clip skip 2' is 1)\n"
    "  --init-noise F         safetensors tensor 'noise' [B,4,H/8,W/8] replacing the\n"
    "                         seeded initial latents\n"
    "  --save-latents F       write the final latents (tensor 'latents') to F\n"
    "  --vocab PATH           CLIP merges file (default weights/bpe_simple_vocab_16e6.txt.gz)\n"
    "  -o, --output OUT.png   output; with --batch N > 1: OUT-0.png ... OUT-(N-1).png\n"
    "  --low-memory           keep only the layer at work resident (weights re-read from\n"
    "                         the page cache on every use): lower peak RSS, slower\n"
    "  -q, --quiet            no progress output\n"
    CLI_BACKEND_USAGE CLI_GEN_CHOICE_USAGE;

typedef struct {
    const char *model, *prompt, *negative, *sampler, *spacing, *init, *fit, *embeddings;
    const char *syntax, *init_noise, *save_latents, *vocab, *out, *backend;
    long long steps, seed, width, height, batch, clip_skip;
    double eta, cfg, strength;
    bool have_seed, quiet, low_memory;
    cli_gen_choice gen;
} gen_args;

/* Parses argv into a; returns EXIT_OK, or the usage exit code (message printed). */
static int parse(int argc, char **argv, gen_args *a) {
    *a = (gen_args){.negative = "", .sampler = "pndm", .fit = "resize", .syntax = "plain",
                    .steps = 25, .width = 512, .height = 512, .batch = 1, .cfg = 7.5,
                    .strength = 0.75};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(f)) {
            fputs(usage, stdout);
            return -1;
        }
        if (!strcmp(f, "-q") || !strcmp(f, "--quiet")) { a->quiet = true; continue; }
        if (!strcmp(f, "--low-memory")) { a->low_memory = true; continue; }
        int grc;
        if (cli_gen_choice_flag("generate", f, v, &a->gen, &grc)) {
            if (grc) return grc;
            i++;
            continue;
        }
        const char **str = !strcmp(f, "--model") ? &a->model : !strcmp(f, "--prompt") ? &a->prompt
            : !strcmp(f, "--negative") ? &a->negative : !strcmp(f, "--sampler") ? &a->sampler
            : !strcmp(f, "--spacing") ? &a->spacing : !strcmp(f, "--init") ? &a->init
            : !strcmp(f, "--fit") ? &a->fit : !strcmp(f, "--embeddings") ? &a->embeddings
            : !strcmp(f, "--prompt-syntax") ? &a->syntax : !strcmp(f, "--init-noise") ? &a->init_noise
            : !strcmp(f, "--save-latents") ? &a->save_latents : !strcmp(f, "--vocab") ? &a->vocab
            : !strcmp(f, "-o") || !strcmp(f, "--output") ? &a->out
            : !strcmp(f, "--backend") ? &a->backend : NULL;
        struct { const char *name; long long *dst, lo, hi; } ints[] = {
            {"--steps", &a->steps, 1, 1000}, {"--seed", &a->seed, 0, INT64_MAX},
            {"--width", &a->width, 64, 2048}, {"--height", &a->height, 64, 2048},
            {"--batch", &a->batch, 1, 64}, {"--clip-skip", &a->clip_skip, 0, 11}};
        struct { const char *name; double *dst, lo, hi; } flts[] = {
            {"--eta", &a->eta, 0, 1}, {"--cfg", &a->cfg, 0, 100}, {"--strength", &a->strength, 0, 1}};
        bool known = str != NULL;
        for (size_t k = 0; !known && k < sizeof ints / sizeof *ints; k++) known = !strcmp(f, ints[k].name);
        for (size_t k = 0; !known && k < sizeof flts / sizeof *flts; k++) known = !strcmp(f, flts[k].name);
        if (!known) return cli_usage_error("generate", "unknown option '%s'", f);
        if (!v) return cli_usage_error("generate", "%s needs a value", f);
        i++;
        if (str) { *str = v; continue; }
        for (size_t k = 0; k < sizeof ints / sizeof *ints; k++)
            if (!strcmp(f, ints[k].name)) {
                if (!cli_parse_int("generate", f, v, ints[k].lo, ints[k].hi, ints[k].dst)) return EXIT_USAGE;
                if (ints[k].dst == &a->seed) a->have_seed = true;
            }
        for (size_t k = 0; k < sizeof flts / sizeof *flts; k++)
            if (!strcmp(f, flts[k].name) &&
                !cli_parse_float("generate", f, v, flts[k].lo, flts[k].hi, flts[k].dst))
                return EXIT_USAGE;
    }
    if (!a->model || !a->prompt || !a->out)
        return cli_usage_error("generate", "--model, --prompt and -o are required");
    if (!cli_backend_valid("generate", a->backend)) return EXIT_USAGE;
    if (a->width % 8 || a->height % 8)
        return cli_usage_error("generate", "--width and --height must be multiples of 8 (got %lldx%lld)",
                               a->width, a->height);
    if (strcmp(a->syntax, "plain") && strcmp(a->syntax, "a1111"))
        return cli_usage_error("generate", "--prompt-syntax must be plain or a1111");
    if (strcmp(a->fit, "resize") && strcmp(a->fit, "crop"))
        return cli_usage_error("generate", "--fit must be resize or crop");
    if (a->init && !strcmp(a->init, a->out))
        return cli_usage_error("generate", "the output must not overwrite --init");
    size_t n = strlen(a->out);
    if (n < 5 || strcmp(a->out + n - 4, ".png"))
        return cli_usage_error("generate", "-o must name a .png file (got '%s')", a->out);
    return EXIT_OK;
}

static void on_progress(void *ctx, int i, int n) {
    cli_progress *p = ctx;
    p->total = n; /* img2img runs fewer iterations than --steps */
    cli_progress_update(p, i);
}

/* The sampler as A1111 names it in its infotext. */
static const char *a1111_sampler_name(const sdc_sampler_opts *s) {
    switch (s->kind) {
    case SDC_SAMPLER_DDIM: return "DDIM";
    case SDC_SAMPLER_PNDM: return "PLMS";
    case SDC_SAMPLER_EULER: return "Euler";
    case SDC_SAMPLER_EULER_A: return "Euler a";
    case SDC_SAMPLER_DPMPP_2M: return s->karras ? "DPM++ 2M Karras" : "DPM++ 2M";
    case SDC_SAMPLER_LMS: return "LMS";
    case SDC_SAMPLER_HEUN: return "Heun";
    default: return "unknown";
    }
}

/* OUT.png, or OUT-i.png in a batch. */
static void output_name(const char *out, int i, int batch, char *buf, size_t cap) {
    if (batch == 1) snprintf(buf, cap, "%s", out);
    else snprintf(buf, cap, "%.*s-%d.png", (int)(strlen(out) - 4), out, i);
}

static uint64_t random_seed(void) {
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s) s = 0;
        close(fd);
    }
    return s & 0xffffffffULL; /* torch's CPU generator uses 32 bits of the seed */
}

int cmd_generate(int argc, char **argv) {
    gen_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    sdc_err err = {0};
    sdc_generate_opts o = {.prompt = a.prompt, .negative = a.negative, .cfg = (float)a.cfg,
                           .width = (int)a.width, .height = (int)a.height, .batch = (int)a.batch,
                           .clip_skip = (int)a.clip_skip, .strength = (float)a.strength,
                           .syntax = strcmp(a.syntax, "a1111") ? SDC_PROMPT_PLAIN : SDC_PROMPT_A1111};
    if (!sdc_sampler_from_name(a.sampler, &o.sampler))
        return cli_usage_error("generate", "unknown sampler '%s'", a.sampler);
    o.sampler.steps = (int)a.steps;
    o.sampler.eta = (float)a.eta;
    if (a.spacing) {
        o.sampler.spacing = !strcmp(a.spacing, "leading") ? SDC_SPACING_LEADING
                            : !strcmp(a.spacing, "linspace") ? SDC_SPACING_LINSPACE
                            : !strcmp(a.spacing, "trailing") ? SDC_SPACING_TRAILING : -1;
        if ((int)o.sampler.spacing < 0)
            return cli_usage_error("generate", "--spacing must be leading, linspace or trailing");
    }
    o.seed = a.have_seed ? (uint64_t)a.seed : random_seed();
    cli_gen_choice_apply(&a.gen, &o);

    sdc_backend *be = NULL;
    sdc_pipeline *p = NULL;
    sdc_embedding_set *emb = NULL;
    sdc_tensor *noise = NULL;
    float *init = NULL;
    sdc_generate_result res = {0};
    sdc_status s = SDC_OK;
    int h = (int)a.height / 8, w = (int)a.width / 8;
    if (a.init) {
        sdc_image im;
        size_t cap = (size_t)3 * a.width * a.height;
        if (!(s = sdc_image_load(a.init, NULL, &im, &err))) {
            init = malloc(sizeof *init * cap);
            s = init ? sdc_image_to_tensor(&im, (int)a.width, (int)a.height,
                                           strcmp(a.fit, "crop") ? SDC_FIT_RESIZE : SDC_FIT_CROP,
                                           init, cap, &err)
                     : sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
            sdc_image_free(&im);
        }
        o.init_image = init;
    }
    if (!s && a.init_noise) {
        sdc_safetensors *st = sdc_safetensors_open(a.init_noise, &err);
        noise = st ? sdc_safetensors_load(st, "noise", SDC_F32, &err) : NULL;
        sdc_safetensors_close(st);
        if (!noise) s = err.code;
        else if (noise->ndim != 4 || noise->shape[0] != a.batch || noise->shape[1] != 4 ||
                 noise->shape[2] != h || noise->shape[3] != w)
            s = sdc_err_set(&err, SDC_ERR_SHAPE, "%s: noise must be [%lld, 4, %d, %d] for this "
                            "size and batch", a.init_noise, a.batch, h, w);
        else o.init_noise = noise->data;
    }
    if (!s && !(be = cli_backend_create("generate", a.backend, a.quiet, &err))) s = err.code;
    const char *vocab = a.vocab ? a.vocab : "weights/bpe_simple_vocab_16e6.txt.gz";
    if (!s && !(p = sdc_pipeline_open(a.model, vocab, be, &err))) s = err.code;
    if (p) p->low_memory = a.low_memory;
    /* Embeddings must match the text encoder's width. */
    if (!s && a.embeddings &&
        !(s = sdc_embeddings_load(&emb, a.embeddings, p->clip.cfg.width, &err)))
        o.embeddings = emb;
    cli_progress prog;
    if (!s) {
        cli_progress_start(&prog, "sampling", "it", (int)a.steps, a.quiet);
        o.progress = on_progress;
        o.progress_ctx = &prog;
        s = sdc_generate(p, &o, &res, &err);
        if (!s) cli_progress_end(&prog);
    }
    if (!s && !a.quiet && res.vae_upcasts)
        fprintf(stderr, "sdc generate: the VAE overflowed F16 on %d image(s): decoded at F32\n",
                res.vae_upcasts);
    if (!s && !a.quiet && p->graph_note[0]) fprintf(stderr, "sdc generate: %s\n", p->graph_note);
    if (!s && res.truncated)
        fprintf(stderr, "sdc generate: warning: the prompt was cut to 77 tokens "
                        "(--prompt-syntax a1111 encodes longer prompts in chunks)\n");
    if (!s && a.save_latents) {
        sdc_tensor lt;
        sdc_tensor_init(&lt, SDC_F32, 4, (const int64_t[]){a.batch, 4, h, w}, res.latents, &err);
        sdc_st_write_item it = {"latents", &lt};
        s = sdc_safetensors_write(a.save_latents, &it, 1, NULL, 0, &err);
    }
    if (!s) {
        char hash[65] = "", name[4096];
        const char *model_hash = NULL;
        /* A1111's hash is the file's; a diffusers folder has none. */
        if (sdc_sha256_file(a.model, hash, &err) == SDC_OK) {
            hash[10] = '\0';
            model_hash = hash;
        }
        snprintf(name, sizeof name, "%s", a.model);
        char *base = basename(name), *dot = strrchr(base, '.');
        if (dot && !strcmp(dot, ".safetensors")) *dot = '\0';
        for (int i = 0; !s && i < a.batch; i++) {
            sdc_gen_meta m = {.prompt = a.prompt, .negative_prompt = a.negative,
                              .steps = (int)a.steps, .sampler = a1111_sampler_name(&o.sampler),
                              .cfg_scale = a.cfg, .has_seed = true,
                              /* --rng cuda: image i's own generator (A1111's batches) */
                              .seed = (int64_t)(o.seed + (o.rng == SDC_RNG_CUDA ? (uint64_t)i : 0)),
                              .width = (int)a.width, .height = (int)a.height,
                              .model_hash = model_hash, .model = base, .img2img = a.init != NULL,
                              .denoising_strength = a.strength,
                              .clip_skip = a.clip_skip ? (int)a.clip_skip + 1 : 0,
                              .rng = cli_gen_choice_rng_infotext(&a.gen)};
            char *params = sdc_a1111_parameters(&m), path[4096];
            output_name(a.out, i, (int)a.batch, path, sizeof path);
            s = params ? sdc_image_save_png(path, res.rgb + (size_t)i * 3 * a.width * a.height,
                                            (int)a.width, (int)a.height, params, &err)
                       : sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
            free(params);
            if (!s && !a.quiet) printf("%s\n", path);
        }
        if (!s && !a.quiet && !a.have_seed) fprintf(stderr, "seed: %llu\n", (unsigned long long)o.seed);
    }
    sdc_generate_result_free(&res);
    sdc_pipeline_free(p);
    sdc_backend_destroy(be);
    sdc_embeddings_free(emb);
    sdc_tensor_free(noise);
    free(init);
    return s ? cli_error("generate", &err) : EXIT_OK;
}
