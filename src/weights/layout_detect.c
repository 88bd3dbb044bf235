/* layout_detect.c — checkpoint probing (probe.h): which layout a path holds
 * (one original-layout .safetensors file, keys under model.diffusion_model.
 * and friends, or a diffusers folder: unet/, vae/, text_encoder/), the key
 * lookups, what a file's keys say it is, head counts from __metadata__, and
 * the weights files of model folders. Binding weights is elsewhere. */
#include "probe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Every key of a component starts with these in the original layout. */
static const char *const key_prefix[SDC_COMPONENT_COUNT] = {
    [SDC_COMPONENT_UNET] = SDC_ORIGINAL_UNET_PREFIX,
    [SDC_COMPONENT_VAE] = SDC_ORIGINAL_VAE_PREFIX,
    [SDC_COMPONENT_TEXT] = SDC_ORIGINAL_TEXT_PREFIX "text_model.",
};

/* The key prefixes of sdc_st_traits. */
static const struct {
    const char *prefix;
    unsigned trait;
} trait_prefix[] = {
    {"lora_", SDC_ST_LORA},
    {"conditioner.embedders.", SDC_ST_SDXL},
    {"cond_stage_model.model.", SDC_ST_SD2},
    {"cond_stage_model.", SDC_ST_SD},
    {SDC_ORIGINAL_UNET_PREFIX, SDC_ST_SD},
    {"visual.", SDC_ST_OPENCLIP},
    {"transformer.resblocks.", SDC_ST_OPENCLIP},
    {"text_model.", SDC_ST_CLIP_TEXT},
    {"vision_model.", SDC_ST_CLIP_VISION},
};

/* Weights files of a diffusers folder, most preferred first. */
static const char *const folder_files[SDC_COMPONENT_COUNT][2] = {
    [SDC_COMPONENT_UNET] = {"unet/diffusion_pytorch_model.safetensors",
                            "unet/diffusion_pytorch_model.fp16.safetensors"},
    [SDC_COMPONENT_VAE] = {"vae/diffusion_pytorch_model.safetensors",
                           "vae/diffusion_pytorch_model.fp16.safetensors"},
    [SDC_COMPONENT_TEXT] = {"text_encoder/model.safetensors",
                            "text_encoder/model.fp16.safetensors"},
};

const char *sdc_layout_name(sdc_layout l) {
    switch (l) {
    case SDC_LAYOUT_ORIGINAL: return "original";
    case SDC_LAYOUT_DIFFUSERS: return "diffusers";
    case SDC_LAYOUT_UNKNOWN: break;
    }
    return "unknown";
}

const char *sdc_component_name(sdc_component c) {
    static const char *const names[SDC_COMPONENT_COUNT] = {"unet", "vae", "text_encoder"};
    return (unsigned)c < SDC_COMPONENT_COUNT ? names[c] : "?";
}

const sdc_st_entry *sdc_st_findf(const sdc_safetensors *st, const char *fmt, ...) {
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    return sdc_safetensors_find(st, key);
}

unsigned sdc_st_traits(const sdc_safetensors *st) {
    size_t n = sdc_safetensors_count(st);
    unsigned t = n == 0 ? SDC_ST_EMPTY : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = sdc_safetensors_entry(st, i)->name;
        for (size_t k = 0; k < sizeof trait_prefix / sizeof *trait_prefix; k++)
            if (strncmp(name, trait_prefix[k].prefix, strlen(trait_prefix[k].prefix)) == 0)
                t |= trait_prefix[k].trait;
    }
    return t;
}

const char *sdc_st_looks_like(const sdc_safetensors *st, const sdc_st_look *looks,
                              const char *otherwise) {
    unsigned t = sdc_st_traits(st);
    for (; looks->says; looks++)
        if ((t & looks->all) == looks->all && !(t & looks->none)) return looks->says;
    return otherwise;
}

long sdc_st_meta_int(const sdc_safetensors *st, const char *key, long def) {
    const char *v = sdc_safetensors_meta(st, key);
    if (!v) return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    return *v && !*end && errno == 0 && n > 0 && n < 4096 ? n : -1;
}

long sdc_st_heads(const sdc_safetensors *st, const char *key, int width) {
    long n = sdc_st_meta_int(st, key, width % 64 == 0 ? width / 64 : -1);
    return n >= 1 && width % n == 0 ? n : -1;
}

void sdc_layout_of_file(const sdc_safetensors *st, sdc_layout_info *info) {
    memset(info, 0, sizeof *info);
    size_t n = sdc_safetensors_count(st);
    for (size_t i = 0; i < n; i++) {
        const char *name = sdc_safetensors_entry(st, i)->name;
        for (int c = 0; c < SDC_COMPONENT_COUNT; c++)
            if (strncmp(name, key_prefix[c], strlen(key_prefix[c])) == 0) info->has[c] = true;
    }
    /* The UNet is what makes a file a checkpoint; a VAE-only file is not. */
    info->layout = info->has[SDC_COMPONENT_UNET] ? SDC_LAYOUT_ORIGINAL : SDC_LAYOUT_UNKNOWN;
}

static bool is_file_at(char *path, size_t cap, const char *dir, const char *rel) {
    struct stat sb;
    if ((size_t)snprintf(path, cap, "%s/%s", dir, rel) >= cap) return false;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

bool sdc_is_file_in(const char *dir, const char *rel) {
    char path[4096];
    return is_file_at(path, sizeof path, dir, rel);
}

bool sdc_is_pipeline_folder(const char *dir) { return sdc_is_file_in(dir, "model_index.json"); }

const char *sdc_component_file(const char *dir, sdc_component c, char *path, size_t cap) {
    for (int v = 0; v < 2; v++)
        if (is_file_at(path, cap, dir, folder_files[c][v])) return folder_files[c][v];
    return NULL;
}

const char *sdc_component_weights_name(sdc_component c) {
    return strchr(folder_files[c][0], '/') + 1;
}

const char *sdc_model_file(const char *dir, char *path, size_t cap) {
    for (int v = 0; v < 2; v++) {
        const char *name = strchr(folder_files[SDC_COMPONENT_TEXT][v], '/') + 1;
        if (is_file_at(path, cap, dir, name)) return name;
    }
    return NULL;
}

static void layout_of_folder(const char *dir, sdc_layout_info *info) {
    char path[4096];
    memset(info, 0, sizeof *info);
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++)
        info->file[c] = sdc_component_file(dir, (sdc_component)c, path, sizeof path);
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++) info->has[c] = info->file[c] != NULL;
    if (info->has[SDC_COMPONENT_UNET] || sdc_is_pipeline_folder(dir))
        info->layout = SDC_LAYOUT_DIFFUSERS;
}

sdc_status sdc_detect_layout(const char *path, sdc_layout_info *info, sdc_err *err) {
    if (!path || !info) return sdc_err_set(err, SDC_ERR_ARG, "detect layout: NULL argument");
    memset(info, 0, sizeof *info);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sdc_err_set(err, SDC_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        layout_of_folder(path, info);
        return SDC_OK;
    }
    sdc_safetensors *st = sdc_safetensors_open(path, err);
    if (!st) return err ? err->code : SDC_ERR_FORMAT;
    sdc_layout_of_file(st, info);
    sdc_safetensors_close(st);
    return SDC_OK;
}
