/* layout_detect.c — checkpoint probing: which layout a path holds (one
 * original-layout .safetensors file, keys under model.diffusion_model. and
 * friends, or a diffusers folder: unet/, vae/, text_encoder/) and the key
 * lookups of probe.h. Binding weights is elsewhere. */
#include "probe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Key prefixes of the original (CompVis / A1111) single-file layout. */
static const char *const key_prefix[SDC_COMPONENT_COUNT] = {
    [SDC_COMPONENT_UNET] = "model.diffusion_model.",
    [SDC_COMPONENT_VAE] = "first_stage_model.",
    [SDC_COMPONENT_TEXT] = "cond_stage_model.transformer.text_model.",
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

bool sdc_st_has_prefix(const sdc_safetensors *st, const char *prefix) {
    size_t n = strlen(prefix);
    for (size_t i = 0; i < sdc_safetensors_count(st); i++)
        if (strncmp(sdc_safetensors_entry(st, i)->name, prefix, n) == 0) return true;
    return false;
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

static bool is_file(const char *dir, const char *rel) {
    char path[4096];
    return is_file_at(path, sizeof path, dir, rel);
}

const char *sdc_component_file(const char *dir, sdc_component c, char *path, size_t cap) {
    for (int v = 0; v < 2; v++)
        if (is_file_at(path, cap, dir, folder_files[c][v])) return folder_files[c][v];
    return NULL;
}

const char *sdc_component_weights_name(sdc_component c) {
    return strchr(folder_files[c][0], '/') + 1;
}

static void layout_of_folder(const char *dir, sdc_layout_info *info) {
    char path[4096];
    memset(info, 0, sizeof *info);
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++)
        info->file[c] = sdc_component_file(dir, (sdc_component)c, path, sizeof path);
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++) info->has[c] = info->file[c] != NULL;
    if (info->has[SDC_COMPONENT_UNET] || is_file(dir, "model_index.json"))
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
