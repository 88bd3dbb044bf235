/* cmd_augment.c — sdc augment: grows an ImageFolder dataset with generated
 * images (boomerang img2img, prompt txt2img, textual inversion) or with
 * CLIP-retrieved pool images. One option table for every method; an option
 * that does not apply to the chosen method is an error. The drivers are
 * augment_run.c (generation) and cmd_augment_retrieve.c (retrieval). */
#include "augment_cli.h"
#include "preflight.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const cli_spec spec = {
    "augment", "DATASET --method boomerang|prompt|textinv|retrieve --out DIR [options]",
    "DATASET is an ImageFolder: DATASET/<class>/*.png|jpg|jpeg. DIR gets the same layout\n"
    "plus manifest.jsonl and plan.json; rerunning the same command resumes.\n"
    "  boomerang  img2img of every real image (--strength, --per-image, --prompt-template)\n"
    "  prompt     txt2img from CLIP templates (--per-class, --templates, --template-order)\n"
    "  textinv    like prompt with a learned embedding per class (--embeddings DIR, or\n"
    "             --train: learn each class's token from its images first; --init real:\n"
    "             img2img from the real images, with --per-image/--strength)\n"
    "  retrieve   the nearest pool images in CLIP space (--pool CACHE from sdc embed,\n"
    "             --per-class K, --query, --dedup, --link; --model is the CLIP model)\n"
    "Templates use {} for the class name.",
    "An option that does not apply to the chosen method is an error. The sampler follows\n"
    "the model's scheduler config as sdc generate's does (see sdc generate --help);\n"
    "explicit flags override it. A rerun whose arguments differ from DIR/plan.json is\n"
    "refused naming the argument; --force-new-plan starts the folder over."};

enum { B = 1, P = 2, T = 4, R = 8, GEN = B | P | T, ALL = GEN | R };

/* Which methods each option applies to (options absent here apply to all). */
static const struct {
    const char *name;
    unsigned methods;
    const char *why; /* what the option is for, in the error */
} APPLIES[] = {
    {"strength", B | T, "the img2img strength of boomerang and textinv --init real"},
    {"per-image", B | T, "outputs per real image (boomerang, textinv --init real)"},
    {"per-class", P | T | R, "outputs per class (prompt, textinv, retrieve)"},
    {"prompt-template", B, "boomerang's prompt"},
    {"templates", P | T | R, "the prompt templates of prompt, textinv and retrieve's text query"},
    {"template-order", P | T, "how prompt and textinv pick templates"},
    {"embeddings", T, "textinv's learned embeddings"},
    {"init", T, "textinv's img2img start"},
    {"pool", R, "retrieve's embedding cache"},
    {"query", R, "retrieve's class query"},
    {"dedup", R, "retrieve's near-duplicate threshold"},
    {"link", R, "retrieve's hard links"},
    {"negative", GEN, "the negative prompt of the generating methods"},
    {"steps", GEN, "sampler steps"}, {"sampler", GEN, "the sampler"},
    {"scheduler-config", GEN, "the sampler's config"}, {"spacing", GEN, "the sampler's spacing"},
    {"prediction-type", GEN, "the UNet's prediction type"}, {"cfg", GEN, "the guidance scale"},
    {"size", GEN, "the image size"}, {"width", GEN, "the image size"}, {"height", GEN, "the image size"},
    {"seed", GEN, "the base seed"}, {"rng", GEN, "the seeds' noise"},
    {"precision", GEN, "the generating models' activations"},
    {"vae-precision", GEN, "the VAE's activations"}, {"low-memory", GEN, "the generating methods' memory"},
    {"shard", GEN, "sharding the generating methods"}, {"shard-count", GEN, "sharding"},
    {"limit", GEN, "cutting the plan"}, {"clip-heads", GEN, "the SD text encoder"},
    {"filter", GEN, "judging generated images"},
    {"train", T, "learning textinv's tokens"}, {"train-steps", T, "textinv --train"},
    {"train-batch", T, "textinv --train"}, {"train-accum", T, "textinv --train"},
    {"train-lr", T, "textinv --train"}, {"train-no-scale-lr", T, "textinv --train"},
    {"train-size", T, "textinv --train"}, {"train-init", T, "textinv --train"},
    {"train-vectors", T, "textinv --train"}, {"train-checkpoint-every", T, "textinv --train"},
    {"train-eval-samples", T, "textinv --train"},
};

static unsigned method_bit(const char *m) {
    return !strcmp(m, "boomerang") ? B : !strcmp(m, "prompt") ? P : !strcmp(m, "textinv") ? T
           : !strcmp(m, "retrieve") ? R : 0;
}

/* Each given option must apply to the method; textinv's real-image options
 * need --init real, its per-class one must not have it. */
static int check_applies(const aug_args *a, const cli_opt *opts) {
    unsigned m = method_bit(a->method);
    if (a->train.on && m != T)
        return cli_usage_error("augment", "--train learns textual-inversion tokens: it needs --method textinv");
    for (size_t i = 0; i < sizeof APPLIES / sizeof APPLIES[0]; i++)
        if (!(APPLIES[i].methods & m) && cli_given(opts, APPLIES[i].name))
            return cli_usage_error("augment", "--%s does not apply to --method %s (it sets %s)",
                                   APPLIES[i].name, a->method, APPLIES[i].why);
    if (m == T && !a->init && (cli_given(opts, "per-image") || cli_given(opts, "strength")))
        return cli_usage_error("augment", "--%s applies to textinv with --init real only",
                               cli_given(opts, "strength") ? "strength" : "per-image");
    if (m == T && a->init && cli_given(opts, "per-class"))
        return cli_usage_error("augment", "--per-class does not apply to textinv --init real (it "
                               "makes --per-image outputs per real image)");
    if (m == R && !strcmp(a->query, "image") && cli_given(opts, "templates"))
        return cli_usage_error("augment", "--templates does not apply to --query image");
    if (m != R && cli_given(opts, "batch") && a->batch > 64)
        return cli_usage_error("augment", "--batch: at most 64 images per UNet call");
    return EXIT_OK;
}

static int check_args(aug_args *a, const cli_opt *opts) {
    if (!method_bit(a->method))
        return cli_usage_error("augment", "--method must be boomerang, prompt, textinv or retrieve "
                               "(got '%s')", a->method);
    int rc = check_applies(a, opts);
    if (rc || (rc = augment_filter_check(&a->filter, opts)) ||
        (rc = cli_gen_choice_resolve("augment", &a->gen)))
        return rc;
    if (method_bit(a->method) & GEN) {
        if (!a->model && !a->dry)
            return cli_usage_error("augment", "--model is required (except with --dry-run)");
        if (a->train.on && a->emb)
            return cli_usage_error("augment", "--train and --embeddings exclude each other (--train "
                                   "learns the tokens)");
        if (!strcmp(a->method, "textinv") && !a->emb && !a->train.on)
            return cli_usage_error("augment", "--method textinv needs --embeddings DIR or --train");
        if (a->train.size % 8)
            return cli_usage_error("augment", "--train-size %lld is not a multiple of 8", a->train.size);
        if (!a->train.on) {
            static const char *const train_opts[] = {"train-steps", "train-batch", "train-accum",
                "train-lr", "train-no-scale-lr", "train-size", "train-init", "train-vectors",
                "train-checkpoint-every", "train-eval-samples"};
            for (size_t i = 0; i < sizeof train_opts / sizeof *train_opts; i++)
                if (cli_given(opts, train_opts[i]))
                    return cli_usage_error("augment", "--%s goes with --train", train_opts[i]);
        }
        if (a->init && strcmp(a->init, "real"))
            return cli_usage_error("augment", "--init must be 'real' (got '%s')", a->init);
        if (a->size) {
            if (cli_given(opts, "width") || cli_given(opts, "height"))
                return cli_usage_error("augment", "give --size or --width/--height, not both");
            if (!cli_parse_size("augment", "--size", a->size, &a->width, &a->height)) return EXIT_USAGE;
        }
        if (a->width % 8 || a->height % 8)
            return cli_usage_error("augment", "--width and --height must be multiples of 8 (got "
                                   "%lldx%lld)", a->width, a->height);
        if (!cli_backend_valid("augment", a->backend)) return EXIT_USAGE;
    } else {
        if (!a->pool || !cli_given(opts, "per-class"))
            return cli_usage_error("augment", "--method retrieve needs --pool CACHE and --per-class K");
        if (a->batch > 256) return cli_usage_error("augment", "--batch: at most 256 query images");
    }
    if (aug_path_inside(a->data, a->out))
        return cli_usage_error("augment", "--out %s is inside the dataset %s (its images would be "
                               "read back as real ones); choose a folder outside it", a->out, a->data);
    return EXIT_OK;
}

/* "0.25,0.5" into s[]; -1 (usage printed) on a bad value. */
static int parse_strengths(const char *list, double *s, int cap) {
    int n = 0;
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        double v;
        if (n == cap || !cli_parse_float("augment", "--strength", t, 0, 1, &v)) return -1;
        s[n++] = v;
    }
    if (!n) cli_usage_error("augment", "--strength needs at least one value");
    return n ? n : -1;
}

/* --shard K/N or auto (Slurm array, or Kubernetes Indexed Job). */
static int parse_shard(const aug_args *a, long long *k, long long *n) {
    *k = 0;
    *n = 1;
    if (!a->shard) return EXIT_OK;
    if (!strcmp(a->shard, "auto")) {
        const char *id = getenv("SLURM_ARRAY_TASK_ID"), *cnt = getenv("SLURM_ARRAY_TASK_COUNT");
        const char *mn = getenv("SLURM_ARRAY_TASK_MIN"), *jci = getenv("JOB_COMPLETION_INDEX");
        long long min = 0;
        if (id && cnt) {
            if (!cli_parse_int("augment", "SLURM_ARRAY_TASK_ID", id, 0, INT32_MAX, k) ||
                !cli_parse_int("augment", "SLURM_ARRAY_TASK_COUNT", cnt, 1, 100000, n) ||
                (mn && !cli_parse_int("augment", "SLURM_ARRAY_TASK_MIN", mn, 0, INT32_MAX, &min)))
                return EXIT_USAGE;
            *k -= min; /* arrays may start at 1 (--array=1-8) */
        } else if (jci) {
            if (!a->shard_count)
                return cli_usage_error("augment", "--shard auto with JOB_COMPLETION_INDEX needs --shard-count N");
            *n = a->shard_count;
            if (!cli_parse_int("augment", "JOB_COMPLETION_INDEX", jci, 0, INT32_MAX, k)) return EXIT_USAGE;
        } else {
            return cli_usage_error("augment", "--shard auto: neither SLURM_ARRAY_TASK_ID/COUNT nor JOB_COMPLETION_INDEX is set");
        }
    } else {
        char *end;
        *k = strtoll(a->shard, &end, 10);
        if (end == a->shard || *end != '/' || (*n = strtoll(end + 1, &end, 10)) < 1 || *end || *k < 0)
            return cli_usage_error("augment", "--shard must be K/N or auto (got '%s')", a->shard);
    }
    if (*k >= *n) return cli_usage_error("augment", "--shard: index %lld not below count %lld", *k, *n);
    return EXIT_OK;
}

/* The sampler and the checks before any model loads (generating methods). */
static int prepare_generation(aug_args *a, sdc_err *err) {
    sdc_status s = SDC_OK;
    if (a->sched_config) {
        if (!(a->sched = sdc_sched_file_load(a->sched_config, err))) return cli_error("augment", err);
    } else if (a->model && (s = sdc_sched_file_for_model(a->model, &a->sched, err))) {
        return cli_error("augment", err);
    }
    sdc_sampler_opts *so = &a->sampler_opts;
    *so = (sdc_sampler_opts){.steps = (int)a->steps};
    if (a->sampler) {
        if (!sdc_sampler_from_name(a->sampler, so))
            return cli_usage_error("augment", "unknown sampler '%s' (valid: %s)", a->sampler,
                                   sdc_sampler_names());
        so->config = a->sched;
    } else if (!sdc_sampler_default(a->sched, so) && !a->quiet) {
        fprintf(stderr, "sdc augment: %s: scheduler %s is not one sdc runs; using pndm (PLMS) on "
                        "its settings (pick one with --sampler)\n",
                sdc_sched_file_label(a->sched), sdc_sched_file_class(a->sched));
    }
    if (a->spacing)
        so->spacing = !strcmp(a->spacing, "leading") ? SDC_SPACING_LEADING
                      : !strcmp(a->spacing, "linspace") ? SDC_SPACING_LINSPACE : SDC_SPACING_TRAILING;
    if (a->prediction)
        so->prediction = !strcmp(a->prediction, "epsilon") ? SDC_PRED_EPSILON
                         : !strcmp(a->prediction, "sample") ? SDC_PRED_SAMPLE : SDC_PRED_V;
    s = sdc_sampler_resolve(so, &a->sched_resolved, err);
    if (s == SDC_ERR_ARG) return cli_usage_error("augment", "%s", err->msg);
    if (s) return cli_error("augment", err);
    if (a->dry) { /* the estimate loads the model when it can; nothing else is checked */
        sdc_err ignored = {0};
        if (a->model) cli_model_vocab(a->model, a->vocab, a->vocab_buf, sizeof a->vocab_buf,
                                      &a->vocab_path, &ignored);
        return EXIT_OK;
    }
    /* Before any model loads: the vocabulary, the checkpoint's parts, the
     * output and preview paths, and room for one image. */
    if ((s = cli_model_vocab(a->model, a->vocab, a->vocab_buf, sizeof a->vocab_buf, &a->vocab_path, err)) ||
        (s = cli_check_model_parts(a->model, 1u << SDC_COMPONENT_UNET | 1u << SDC_COMPONENT_VAE |
                                                 1u << SDC_COMPONENT_TEXT, err)) ||
        (s = cli_check_writable_dir(a->out, "--out", err)) ||
        (a->preview && (s = cli_check_writable(a->preview, "--preview", err))) ||
        (s = cli_check_space(a->out, cli_png_bound((int)a->width, (int)a->height), "--out", err)))
        return cli_error("augment", err);
    return EXIT_OK;
}

/* textinv: each class's embedding file, its trigger word the class's word. */
static sdc_status load_embeddings(const aug_args *a, const aug_dataset *d, const char **words,
                                  sdc_embedding_set **sets, sdc_err *err) {
    sdc_status s = SDC_OK;
    for (int c = 0; !s && c < d->n_classes; c++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.safetensors", a->emb, d->classes[c].folder);
        /* The width comes from the file (the pipeline checks it against the
         * text encoder when generating). */
        sdc_safetensors *st = sdc_safetensors_open(path, err);
        int dim = 0;
        if (st && sdc_safetensors_count(st)) {
            const sdc_st_entry *e = sdc_safetensors_entry(st, 0);
            dim = e->ndim ? (int)e->shape[e->ndim - 1] : 0;
        }
        sdc_safetensors_close(st);
        if (!st) s = err->code;
        else if (!(s = sdc_embeddings_load(&sets[c], path, dim, err)) &&
                 !sdc_embeddings_at(sets[c], 0, &words[c], NULL, NULL, NULL))
            s = sdc_err_set(err, SDC_ERR_FORMAT, "%s: no embedding", path);
    }
    return s;
}

static int generate_methods(aug_args *a) {
    long long sk, sn;
    int rc = parse_shard(a, &sk, &sn);
    if (rc) return rc;
    double strengths[64];
    int n_str = parse_strengths(a->strength, strengths, 64);
    if (n_str < 0) return EXIT_USAGE;
    sdc_err err = {0};
    if ((rc = prepare_generation(a, &err))) return rc;
    aug_method m = !strcmp(a->method, "boomerang") ? AUG_BOOMERANG
                   : !strcmp(a->method, "prompt") ? AUG_PROMPT : AUG_TEXTINV;
    aug_dataset d;
    if (aug_dataset_scan(a->data, a->names, a->classes, &d, &err)) return cli_error("augment", &err);
    if (d.skipped && !a->quiet)
        fprintf(stderr, "sdc augment: skipped %d hidden or non-image files\n", d.skipped);
    char **tmpls = NULL;
    int n_tmpl = 0;
    sdc_status s = SDC_OK;
    if (m == AUG_BOOMERANG) {
        if ((tmpls = calloc(1, sizeof *tmpls)) && (tmpls[0] = strdup(a->tmpl))) n_tmpl = 1;
        else s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    } else {
        s = aug_load_templates(a->templates, &tmpls, &n_tmpl, &err);
    }
    const char **words = calloc((size_t)d.n_classes + 1, sizeof *words);
    sdc_embedding_set **sets = calloc((size_t)d.n_classes + 1, sizeof *sets);
    cJSON **extra = calloc((size_t)d.n_classes + 1, sizeof *extra);
    char (*tokens)[512] = calloc((size_t)d.n_classes + 1, sizeof *tokens);
    if (!s && (!words || !sets || !extra || !tokens)) s = sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
    for (int c = 0; !s && c < d.n_classes; c++) {
        words[c] = d.classes[c].name;
        if (m == AUG_TEXTINV && a->train.on) { /* the token to learn is the prompt's word */
            aug_train_token(d.classes[c].folder, tokens[c], sizeof tokens[c]);
            words[c] = tokens[c];
        }
    }
    if (!s && m == AUG_TEXTINV && !a->train.on) s = load_embeddings(a, &d, words, sets, &err);
    aug_plan plan = {0};
    if (!s) {
        aug_plan_opts po = {.method = m, .from_real = m == AUG_BOOMERANG || a->init,
                            .base_seed = (uint64_t)a->seed, .per_image = (int)a->per_image,
                            .per_class = (int)a->per_class, .strengths = strengths,
                            .n_strengths = n_str, .templates = (const char *const *)tmpls,
                            .n_templates = n_tmpl, .random_order = !strcmp(a->order, "random"),
                            .words = words, .limit = a->limit};
        s = aug_plan_build(&d, &po, &plan, &err);
        plan.shard_by_class = a->train.on; /* a class's token is learned in one shard */
        if (!s && plan.n == 0) /* boomerang / --init real on folders without images */
            s = sdc_err_set(&err, SDC_ERR_ARG, "%s: no images in the class folders (.png, .jpg, "
                            ".jpeg) to start from", a->data);
    }
    if (!s && a->train.on && !a->dry) {
        if (!a->train.size) a->train.size = a->width < a->height ? a->width : a->height;
        struct stat sb;
        bool fresh = stat(a->out, &sb) != 0;
        if (mkdir(a->out, 0755) && errno != EEXIST)
            s = sdc_err_set(&err, SDC_ERR_IO, "%s: cannot create: %s", a->out, strerror(errno));
        if (!s) s = aug_train_classes(&a->train, a->data, a->out, a->model, a->vocab_path,
                                      (uint64_t)a->seed, &d, &plan, sk, sn, a->quiet, sets, extra, &err);
        for (int c = 0; s && fresh && c < d.n_classes; c++) { /* take back the empty skeleton */
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", a->out, d.classes[c].folder);
            rmdir(path);
        }
        if (s && fresh) rmdir(a->out);
    }
    rc = s ? cli_error("augment", &err)
           : augment_run(a, &d, &plan, sets, extra, sk, sn, (int)a->width, (int)a->height);
    aug_plan_free(&plan);
    for (int c = 0; sets && c < d.n_classes; c++) sdc_embeddings_free(sets[c]);
    for (int c = 0; extra && c < d.n_classes; c++) cJSON_Delete(extra[c]);
    free(extra);
    free(tokens);
    free(sets);
    free(words);
    for (int i = 0; i < n_tmpl; i++) free(tmpls[i]);
    free(tmpls);
    aug_dataset_free(&d);
    return rc;
}

int cmd_augment(int argc, char **argv) {
    aug_args a = {.strength = "0.3", .tmpl = "a photo of a {}", .templates = "simple",
                  .order = "roundrobin", .negative = "", .query = "text", .per_image = 1,
                  .per_class = 1, .steps = 25, .batch = 1, .cfg = 7.5, .dedup = 0.94,
                  .width = 512, .height = 512, .filter = AUGMENT_FILTER_DEFAULTS,
                  .train = {.steps = 1000, .batch = 4, .accum = 1, .ckpt_every = 10,
                            .eval_samples = 16, .num_vectors = 1, .lr = 5e-4}};
    cli_opt opts[] = {
        {"method", 0, CLI_CHOICE, &a.method, CLI_REQUIRED, .choices = "boomerang|prompt|textinv|retrieve",
         .help = "how to grow the dataset"},
        CLI_OUT(&a.out, CLI_REQUIRED, "the output folder DIR (it or its parent must exist)"),
        CLI_MODEL(&a.model, 0),
        {"strength", 0, CLI_STRING, &a.strength, .metavar = "S[,S...]",
         .help = "img2img strength (default 0.3); a list draws one per image"},
        {"per-image", 0, CLI_INT, &a.per_image, .lo = 1, .hi = 10000, .metavar = "M",
         .help = "outputs per real image (default 1)"},
        {"per-class", 0, CLI_INT, &a.per_class, .lo = 1, .hi = 10000000, .metavar = "K",
         .help = "outputs per class (default 1; retrieve: required)"},
        {"prompt-template", 0, CLI_STRING, &a.tmpl, .metavar = "T",
         .help = "boomerang's prompt, {} = class name (default 'a photo of a {}')"},
        {"templates", 0, CLI_STRING, &a.templates, .metavar = "simple|clip|clip7|FILE",
         .help = "prompt templates with {} (default simple)"},
        {"template-order", 0, CLI_CHOICE, &a.order, .choices = "roundrobin|random",
         .help = "(default roundrobin)"},
        {"embeddings", 0, CLI_STRING, &a.emb, .metavar = "DIR",
         .help = "textinv: DIR/<class folder>.safetensors per class"},
        {"init", 0, CLI_STRING, &a.init, .metavar = "real",
         .help = "textinv: img2img from the real images (boomerang-style)"},
        {"train", 0, CLI_FLAG, &a.train.on,
         .help = "textinv: learn each class's token <class folder> from its images first\n"
                 "(OUT/<class>/.textinv/), then generate with it; shards split whole classes"},
        {"train-steps", 0, CLI_INT, &a.train.steps, .lo = 1, .hi = 10000000, .metavar = "N",
         .help = "--train: optimizer steps per class (default 1000)"},
        {"train-batch", 0, CLI_INT, &a.train.batch, .lo = 1, .hi = 64, .metavar = "N",
         .help = "--train: images per step (default 4)"},
        {"train-accum", 0, CLI_INT, &a.train.accum, .lo = 1, .hi = 10000, .metavar = "N",
         .help = "--train: gradient accumulation (default 1)"},
        {"train-lr", 0, CLI_FLOAT, &a.train.lr, .lo = 1e-30, .hi = 1e38, .metavar = "X",
         .help = "--train: learning rate (default 5e-4, times batch x accum)"},
        {"train-no-scale-lr", 0, CLI_FLAG, &a.train.no_scale,
         .help = "--train: take --train-lr as it is"},
        {"train-size", 0, CLI_INT, &a.train.size, .lo = 64, .hi = 2048, .metavar = "N",
         .help = "--train: training image side (default: the smaller side of --size)"},
        {"train-init", 0, CLI_STRING, &a.train.init_token, .metavar = "WORD",
         .help = "--train: one-token initializer for every class (default: each class\n"
                 "name's tokens, one vector per token, as DA-Fusion)"},
        {"train-vectors", 0, CLI_INT, &a.train.num_vectors, .lo = 1, .hi = 75, .metavar = "N",
         .help = "--train: vectors per token with --train-init (default 1)"},
        {"train-checkpoint-every", 0, CLI_INT, &a.train.ckpt_every, .lo = 1, .hi = INT32_MAX,
         .metavar = "N", .help = "--train: steps between checkpoints (default 10)"},
        {"train-eval-samples", 0, CLI_INT, &a.train.eval_samples, .lo = 0, .hi = 4096,
         .metavar = "N", .help = "--train: fixed draws for the reported loss (default 16)"},
        {"pool", 0, CLI_STRING, &a.pool, .metavar = "CACHE", .help = "retrieve: an sdc embed cache"},
        {"query", 0, CLI_CHOICE, &a.query, .choices = "text|image|both",
         .help = "retrieve: the class query (default text)"},
        {"dedup", 0, CLI_FLOAT, &a.dedup, .lo = 1e-6, .hi = 1, .metavar = "X",
         .help = "retrieve: near-duplicate cosine (default 0.94; 1 keeps all)"},
        {"link", 0, CLI_FLAG, &a.link, .help = "retrieve: hard links instead of copies"},
        {"class-names", 0, CLI_STRING, &a.names, .metavar = "FILE",
         .help = "one display name per class folder, in sorted folder order"},
        {"classes", 0, CLI_STRING, &a.classes, .metavar = "a,b,c", .help = "only these class folders"},
        {"limit", 0, CLI_INT, &a.limit, .lo = 1, .hi = INT32_MAX, .metavar = "N",
         .help = "only the first N items of the plan"},
        {"negative|negative-prompt", 'n', CLI_STRING, &a.negative, .metavar = "TEXT",
         .help = "negative prompt (default: empty)"},
        {"steps", 0, CLI_INT, &a.steps, .lo = 1, .hi = 100000, .metavar = "N",
         .help = "sampler steps (default 25)"},
        {"sampler|sampling-method", 0, CLI_STRING, &a.sampler, .metavar = "NAME",
         .help = "as sdc generate's (default: the model's own scheduler)"},
        {"scheduler-config", 0, CLI_STRING, &a.sched_config, .metavar = "FILE",
         .help = "a scheduler_config.json to follow (default: the model folder's)"},
        {"spacing", 0, CLI_CHOICE, &a.spacing, .choices = "leading|linspace|trailing",
         .help = "timestep spacing (default: the config's)"},
        {"prediction-type", 0, CLI_CHOICE, &a.prediction, .choices = "epsilon|v_prediction|v|sample",
         .help = "(default: the config's prediction_type)"},
        {"cfg|cfg-scale", 0, CLI_FLOAT, &a.cfg, .lo = 0, .hi = 100, .metavar = "X",
         .help = "guidance scale (default 7.5)"},
        {"size", 0, CLI_STRING, &a.size, .metavar = "N|WxH", .help = "image size (default 512)"},
        {"width", 'W', CLI_INT, &a.width, .lo = SDC_SIZE_MIN, .hi = SDC_SIZE_MAX, .metavar = "W",
         .help = "multiple of 8 in [8, 8192] (default 512)"},
        {"height", 'H', CLI_INT, &a.height, .lo = SDC_SIZE_MIN, .hi = SDC_SIZE_MAX, .metavar = "H",
         .help = "multiple of 8 in [8, 8192] (default 512)"},
        {"seed", 's', CLI_INT, &a.seed, .lo = 0, .hi = (double)INT64_MAX, .metavar = "BASE",
         .help = "base seed of every item's seed (default 0)"},
        {"batch", 'b', CLI_INT, &a.batch, .lo = 1, .hi = 256, .metavar = "N",
         .help = "images per UNet call (default 1; an item's image is the same at\n"
                 "any batch); retrieve: query images per CLIP call (default 8)"},
        {"shard", 0, CLI_STRING, &a.shard, .metavar = "K/N|auto",
         .help = "items with index % N == K; auto reads SLURM_ARRAY_TASK_ID/COUNT,\n"
                 "or JOB_COMPLETION_INDEX with --shard-count N"},
        {"shard-count", 0, CLI_INT, &a.shard_count, .lo = 1, .hi = 100000, .metavar = "N",
         .help = "shards of --shard auto under a Kubernetes Indexed Job"},
        {"clip-heads", 0, CLI_INT, &a.clip_heads, .lo = 1, .hi = 4096, .metavar = "N",
         .help = "the text encoder's head count (see sdc generate --help)"},
        {"dry-run", 0, CLI_FLAG, &a.dry,
         .help = "print the plan (counts, sample prompts and names, cost), write nothing"},
        {"preview", 0, CLI_STRING, &a.preview, .metavar = "GRID.png",
         .help = "a contact sheet after the run: per class the real images beside\n"
                 "their augmentations, labelled"},
        {"force-new-plan", 0, CLI_FLAG, &a.force_new_plan,
         .help = "start DIR over when its plan.json was made with other arguments"},
        CLI_GEN_CHOICE_OPTS(&a.gen),
        CLI_VOCAB(&a.vocab),
        {"low-memory", 0, CLI_FLAG, &a.low_memory, .help = "keep only the layer at work resident"},
        AUGMENT_FILTER_OPTS(&a.filter),
        CLI_BACKEND(&a.backend),
        CLI_THREADS(&a.threads),
        CLI_QUIET(&a.quiet),
        CLI_JSON(&a.json),
        CLI_END};
    const char *pos[1];
    cli_positional pp = {pos, 1, 0, "DATASET"};
    int rc = cli_parse(&spec, opts, argc, argv, &pp);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (!pp.n_pos) return cli_usage_error("augment", "DATASET (an ImageFolder) is required");
    a.data = pos[0];
    if (!strcmp(a.method, "retrieve") && !cli_given(opts, "batch")) a.batch = 8;
    if ((rc = check_args(&a, opts))) return rc;
    cli_apply_threads(a.threads);
    cli_on_interrupt_resume("augment");
    rc = !strcmp(a.method, "retrieve") ? augment_retrieve(&a) : generate_methods(&a);
    sdc_sched_file_free(a.sched);
    return rc;
}
