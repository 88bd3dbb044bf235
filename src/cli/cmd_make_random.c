/* cmd_make_random.c — sdc make-random: a random-weight SD 1.5 checkpoint
 * written from the engine's own parameter tables, in either layout. */
#include "cli.h"

#include "../core/atomic_file.h"
#include "../models/checkpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const cli_spec spec = {
    "make-random", "[--layout original|diffusers] [--dtype f16|f32|bf16] [--config sd15|tiny]\n"
    "                       [--seed N] OUT",
    "Writes a full-size SD 1.5 checkpoint (or the tiny test config) with random\n"
    "weights of sane scale: OUT is one .safetensors file for --layout original\n"
    "(the default; loads in other SD 1.x tools) and a folder with unet/, vae/,\n"
    "text_encoder/, scheduler/ (SD 1.5's scheduler_config.json) and their config.json\n"
    "for --layout diffusers. Default dtype f16.", NULL};

/* SD 1.5's scheduler/scheduler_config.json, as runwayml published it. */
static const char sd15_scheduler[] =
    "{\n  \"_class_name\": \"PNDMScheduler\",\n  \"beta_end\": 0.012,\n"
    "  \"beta_schedule\": \"scaled_linear\",\n  \"beta_start\": 0.00085,\n"
    "  \"num_train_timesteps\": 1000,\n  \"set_alpha_to_one\": false,\n"
    "  \"skip_prk_steps\": true,\n  \"steps_offset\": 1,\n  \"trained_betas\": null,\n"
    "  \"clip_sample\": false\n}\n";

/* The tiny config of the test fixtures (tests/make_fixtures.py). */
static void tiny_configs(sdc_clip_text_config *c, sdc_unet_config *u, sdc_vae_config *v) {
    *c = (sdc_clip_text_config){.vocab = 49408, .max_pos = 77, .width = 8, .heads = 2,
                                .layers = 2, .ffn = 32, .eps = 1e-5f};
    *u = sdc_unet_sd15;
    for (int i = 0; i < 4; i++) u->channels[i] = 32;
    u->context_dim = 8;
    *v = sdc_vae_sd15;
    int vc[4] = {32, 64, 32, 32};
    memcpy(v->channels, vc, sizeof vc);
    v->layers_per_block = 1;
}

typedef struct {
    sdc_st_write_item *items;
    char **keys;
    size_t n, cap;
} item_list;

static sdc_status append(item_list *l, const char *key, const sdc_tensor *t, sdc_err *err) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        sdc_st_write_item *it = realloc(l->items, cap * sizeof *it);
        if (it) l->items = it;
        char **k = realloc(l->keys, cap * sizeof *k);
        if (k) l->keys = k;
        if (!it || !k) return sdc_err_set(err, SDC_ERR_OOM, "make-random: out of memory");
        l->cap = cap;
    }
    if (!(l->keys[l->n] = strdup(key)))
        return sdc_err_set(err, SDC_ERR_OOM, "make-random: out of memory");
    l->items[l->n] = (sdc_st_write_item){l->keys[l->n], t};
    l->n++;
    return SDC_OK;
}

static sdc_status collect(item_list *l, const sdc_params *p, sdc_key_map map, const char *prefix,
                          sdc_err *err) {
    for (size_t i = 0; i < p->n; i++) {
        char key[320];
        sdc_status s = append(l, map(&p->rows[i], key, sizeof key, prefix), p->rows[i].field, err);
        if (s) return s;
    }
    return SDC_OK;
}

static void free_list(item_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->keys[i]);
    free(l->keys);
    free(l->items);
}

static sdc_status write_json(const char *dir, const char *sub, char *text, sdc_err *err) {
    if (!text) return sdc_err_set(err, SDC_ERR_OOM, "make-random: out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/config.json", dir, sub);
    sdc_status s = sdc_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return s;
}

static sdc_status make_dir(const char *path, sdc_err *err) {
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return sdc_err_set(err, SDC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    return SDC_OK;
}

static sdc_status write_component(const char *dir, const char *sub, const char *file,
                                  const sdc_params *p, char *config, sdc_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    item_list l = {0};
    sdc_status s = make_dir(path, err);
    if (!s) s = write_json(dir, sub, config, err);
    else free(config);
    if (!s) s = collect(&l, p, sdc_key_map_diffusers, "", err);
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, file);
    /* transformers refuses safetensors files without format=pt. */
    static const char *const meta[] = {"format", "pt"};
    if (!s) s = sdc_safetensors_write(path, l.items, l.n, meta, 1, err);
    free_list(&l);
    return s;
}

static sdc_status write_original(const char *out, const sdc_clip_text *clip, const sdc_unet *unet,
                                 const sdc_vae *vae, sdc_err *err) {
    item_list l = {0};
    /* Other SD tools expect position_ids beside the text model. */
    int max_pos = clip->cfg.max_pos;
    sdc_tensor *pos = sdc_tensor_new(SDC_I64, 2, (const int64_t[]){1, max_pos}, err);
    sdc_status s = pos ? SDC_OK : err->code;
    for (int i = 0; !s && i < max_pos; i++) ((int64_t *)pos->data)[i] = i;
    if (!s) s = collect(&l, &clip->params, sdc_key_map_original, "cond_stage_model.transformer.", err);
    if (!s) s = append(&l, "cond_stage_model.transformer.text_model.embeddings.position_ids", pos, err);
    if (!s) s = collect(&l, &unet->params, sdc_key_map_original, "model.diffusion_model.", err);
    /* LDM stores the VAE attention projections as 1x1 convs: write views. */
    sdc_tensor *views = calloc(vae->params.n ? vae->params.n : 1, sizeof *views);
    if (!views && !s) s = sdc_err_set(err, SDC_ERR_OOM, "make-random: out of memory");
    for (size_t i = 0; !s && i < vae->params.n; i++) {
        const sdc_param *row = &vae->params.rows[i];
        views[i] = *row->field;
        if (row->alt && strstr(row->alt, ".attn_1.") && row->ndim == 2) {
            views[i].ndim = 4;
            views[i].shape[2] = views[i].shape[3] = 1;
        }
        char key[320];
        s = append(&l, sdc_key_map_original(row, key, sizeof key, "first_stage_model."),
                   &views[i], err);
    }
    if (!s) {
        char heads_c[16], heads_u[16];
        snprintf(heads_c, sizeof heads_c, "%d", clip->cfg.heads);
        snprintf(heads_u, sizeof heads_u, "%d", unet->cfg.heads);
        const char *meta[] = {"format", "pt", "sdc.clip.heads", heads_c, "sdc.unet.heads",
                              heads_u};
        s = sdc_safetensors_write(out, l.items, l.n, meta, 3, err);
    }
    free(views);
    sdc_tensor_free(pos);
    free_list(&l);
    return s;
}

static sdc_status write_diffusers(const char *out, const sdc_clip_text *clip,
                                  const sdc_unet *unet, const sdc_vae *vae, sdc_err *err) {
    static const char model_index[] =
        "{\n  \"_class_name\": \"StableDiffusionPipeline\",\n"
        "  \"scheduler\": [\"diffusers\", \"PNDMScheduler\"],\n"
        "  \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
        "  \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n"
        "  \"vae\": [\"diffusers\", \"AutoencoderKL\"]\n}\n";
    char path[4096];
    snprintf(path, sizeof path, "%s/model_index.json", out);
    sdc_status s;
    if ((s = make_dir(out, err)) ||
        (s = write_component(out, "unet", "diffusion_pytorch_model.safetensors", &unet->params,
                             sdc_unet_config_json(&unet->cfg), err)) ||
        (s = write_component(out, "vae", "diffusion_pytorch_model.safetensors", &vae->params,
                             sdc_vae_config_json(&vae->cfg), err)) ||
        (s = write_component(out, "text_encoder", "model.safetensors", &clip->params,
                             sdc_clip_text_config_json(&clip->cfg), err)))
        return s;
    char sched[4096];
    snprintf(sched, sizeof sched, "%s/scheduler", out);
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", out);
    if ((s = make_dir(sched, err)) ||
        (s = sdc_write_file_atomic(path, sd15_scheduler, sizeof sd15_scheduler - 1, err)))
        return s;
    snprintf(path, sizeof path, "%s/model_index.json", out);
    return sdc_write_file_atomic(path, model_index, sizeof model_index - 1, err);
}

int cmd_make_random(int argc, char **argv) {
    const char *layout = "original", *dtype_name = "f16", *config = "sd15", *out = NULL, *pos_out = NULL;
    long long seed = 0;
    cli_opt opts[] = {
        {"layout", 0, CLI_CHOICE, &layout, .choices = "original|diffusers", .help = "(default original)"},
        {"dtype", 0, CLI_CHOICE, &dtype_name, .choices = "f16|f32|bf16", .help = "(default f16)"},
        {"config", 0, CLI_CHOICE, &config, .choices = "sd15|tiny", .help = "(default sd15)"},
        {"seed", 's', CLI_INT, &seed, .lo = 0, .hi = (double)INT64_MAX, .metavar = "N",
         .help = "(default 0; deterministic per seed)"},
        CLI_OUT(&out, 0, "OUT, also accepted as the one argument"),
        CLI_END};
    cli_positional pos = {&pos_out, 1, 0, "OUT"};
    int rc = cli_parse(&spec, opts, argc, argv, &pos);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (out && pos_out) return cli_usage_error("make-random", "give OUT once (as -o or as the argument)");
    if (!out) out = pos_out;
    if (!out) return cli_usage_error("make-random", "missing OUT");
    bool original = strcmp(layout, "original") == 0;
    if (!original && strcmp(layout, "diffusers") != 0)
        return cli_usage_error("make-random", "--layout must be original or diffusers");
    sdc_dtype dtype = strcmp(dtype_name, "f16") == 0    ? SDC_F16
                      : strcmp(dtype_name, "f32") == 0  ? SDC_F32
                      : strcmp(dtype_name, "bf16") == 0 ? SDC_BF16 : SDC_DTYPE_COUNT;
    if (dtype == SDC_DTYPE_COUNT) return cli_usage_error("make-random", "--dtype must be f16, f32 or bf16");
    bool tiny = strcmp(config, "tiny") == 0;
    if (!tiny && strcmp(config, "sd15") != 0)
        return cli_usage_error("make-random", "--config must be sd15 or tiny");

    sdc_clip_text_config cc = sdc_clip_text_sd15;
    sdc_unet_config uc = sdc_unet_sd15;
    sdc_vae_config vc = sdc_vae_sd15;
    if (tiny) tiny_configs(&cc, &uc, &vc);
    sdc_err err = {0};
    sdc_clip_text clip = {0};
    sdc_unet unet = {0};
    sdc_vae vae = {0};
    sdc_backend *cpu = sdc_cpu_backend_create(&err);
    if (!cpu) return cli_error("make-random", &err);
    uint64_t sd = (uint64_t)seed * 3;
    sdc_status s;
    if (!(s = sdc_clip_text_init(&clip, &cc, &err)) && !(s = sdc_unet_init(&unet, &uc, &err)) &&
        !(s = sdc_vae_init(&vae, &vc, &err)) &&
        !(s = sdc_params_fill_random(&clip.params, cpu, dtype, sd, &err)) &&
        !(s = sdc_params_fill_random(&unet.params, cpu, dtype, sd + 1, &err)) &&
        !(s = sdc_params_fill_random(&vae.params, cpu, dtype, sd + 2, &err)))
        s = original ? write_original(out, &clip, &unet, &vae, &err)
                     : write_diffusers(out, &clip, &unet, &vae, &err);
    sdc_vae_free(&vae);
    sdc_unet_free(&unet);
    sdc_clip_text_free(&clip);
    sdc_backend_destroy(cpu);
    if (s) return cli_error("make-random", &err);
    printf("wrote %s (%s layout, %s, %s config)\n", out, layout, sdc_dtype_name(dtype), config);
    return EXIT_OK;
}
