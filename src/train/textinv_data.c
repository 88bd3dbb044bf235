/* textinv_data.c — see textinv_data.h. */
#include "textinv_data.h"

#include "../core/sha256.h"
#include "../image/image.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b); /* bytewise: the same on every machine */
}

static bool is_image_name(const char *n) {
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static sdc_status push(char ***v, int *n, int *cap, char *s, sdc_err *err) {
    if (!s) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 16;
        char **nv = realloc(*v, sizeof *nv * (size_t)c);
        if (!nv) { free(s); return sdc_err_set(err, SDC_ERR_OOM, "out of memory"); }
        *v = nv, *cap = c;
    }
    (*v)[(*n)++] = s;
    return SDC_OK;
}

/* Sorted image file names of dir (regular, not hidden). */
static sdc_status list_images(const char *dir, char ***names, int *n, sdc_err *err) {
    *names = NULL;
    *n = 0;
    DIR *dp = opendir(dir);
    if (!dp) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    int cap = 0;
    sdc_status s = SDC_OK;
    struct dirent *e;
    while (!s && (e = readdir(dp))) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        s = push(names, n, &cap, strdup(e->d_name), err);
    }
    closedir(dp);
    if (*n) qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return s;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

sdc_status sdc_ti_data_scan(const char *dir, int size, uint64_t seed, sdc_ti_data *d, sdc_err *err) {
    memset(d, 0, sizeof *d);
    if (size < 8 || size > 2048 || size % 8)
        return sdc_err_set(err, SDC_ERR_ARG, "training size %d is not a multiple of 8 in [8, 2048]", size);
    d->size = size;
    d->seed = seed;
    char **all = NULL;
    int n_all = 0, cap = 0, skip_cap = 0;
    sdc_status s = (d->dir = strdup(dir)) ? list_images(dir, &all, &n_all, err)
                                          : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    sdc_sha256 h;
    sdc_sha256_init(&h);
    for (int i = 0; !s && i < n_all; i++) {
        char *path = join(dir, all[i]), msg[SDC_ERR_MSG_MAX + 300];
        uint8_t *buf = NULL;
        size_t len = 0;
        sdc_err ie = {0};
        sdc_image im = {0};
        if (!path) { s = sdc_err_set(err, SDC_ERR_OOM, "out of memory"); break; }
        sdc_status is = sdc_read_file_capped(path, SDC_IMAGE_MAX_FILE_BYTES, &buf, &len, &ie);
        if (!is) is = sdc_image_decode(buf, len, path, NULL, &im, &ie);
        sdc_image_free(&im);
        if (is) {
            snprintf(msg, sizeof msg, "%s", ie.msg); /* names the file already */
            s = push(&d->skipped, &d->n_skipped, &skip_cap, strdup(msg), err);
        } else {
            sdc_sha256_update(&h, all[i], strlen(all[i]) + 1);
            sdc_sha256_update(&h, buf, len);
            s = push(&d->names, &d->n, &cap, strdup(all[i]), err);
        }
        free(buf);
        free(path);
    }
    for (int i = 0; i < n_all; i++) free(all[i]);
    free(all);
    if (!s && d->n == 0)
        s = sdc_err_set(err, SDC_ERR_ARG, "%s: no usable images (.png, .jpg, .jpeg)%s%s", dir,
                        d->n_skipped ? "; " : "", d->n_skipped ? d->skipped[0] : "");
    if (!s && !(d->cache = calloc((size_t)2 * d->n, sizeof *d->cache)))
        s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (s) {
        sdc_ti_data_free(d);
        return s;
    }
    uint8_t dig[32];
    sdc_sha256_final(&h, dig);
    for (int i = 0; i < 32; i++) snprintf(d->sha256 + 2 * i, 3, "%02x", dig[i]);
    return SDC_OK;
}

void sdc_ti_data_free(sdc_ti_data *d) {
    for (int i = 0; i < d->n; i++) free(d->names[i]);
    for (int i = 0; i < d->n_skipped; i++) free(d->skipped[i]);
    for (int i = 0; d->cache && i < 2 * d->n; i++) free(d->cache[i]);
    free(d->names);
    free(d->skipped);
    free(d->cache);
    free(d->dir);
    memset(d, 0, sizeof *d);
}

/* splitmix64: a 64-bit seed per (seed, image, orientation). */
static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

sdc_status sdc_ti_data_latent(sdc_ti_data *d, sdc_pipeline *p, int i, bool flip, const float **z,
                              sdc_err *err) {
    if (i < 0 || i >= d->n) return sdc_err_set(err, SDC_ERR_ARG, "training image %d of %d", i, d->n);
    float **slot = &d->cache[2 * i + (flip ? 1 : 0)];
    if (*slot) {
        *z = *slot;
        return SDC_OK;
    }
    int S = d->size, h = S / 8;
    size_t pix = (size_t)3 * S * S, per = (size_t)4 * h * h;
    float *img = malloc(sizeof *img * pix), *mu = malloc(sizeof *mu * per);
    float *lv = malloc(sizeof *lv * per), *out = malloc(sizeof *out * per);
    char *path = join(d->dir, d->names[i]);
    sdc_image im = {0};
    sdc_status s = img && mu && lv && out && path ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s) s = sdc_image_load(path, NULL, &im, err);
    /* Cover size x size and cut the centre: a center crop, then the resize. */
    if (!s) s = sdc_image_to_tensor(&im, S, S, SDC_FIT_CROP, img, pix, err);
    sdc_image_free(&im);
    for (int c = 0; !s && flip && c < 3; c++)
        for (int y = 0; y < S; y++) {
            float *row = img + ((size_t)c * S + y) * S;
            for (int x = 0; x < S / 2; x++) {
                float t = row[x];
                row[x] = row[S - 1 - x];
                row[S - 1 - x] = t;
            }
        }
    if (!s) {
        sdc_exec ex = sdc_exec_begin(p->be, p->arena, err);
        sdc_tensor x = sdc_x_from_host(&ex, img, SDC_F32, 4, (const int64_t[]){1, 3, S, S});
        sdc_tensor mean = {0}, logvar = {0};
        if (!ex.status) sdc_vae_encode(&ex, &p->vae, x, &mean, &logvar);
        sdc_x_free(&ex, &x);
        if (!ex.status) sdc_x_to_host(&ex, &mean, mu);
        if (!ex.status) sdc_x_to_host(&ex, &logvar, lv);
        sdc_x_free(&ex, &mean);
        sdc_x_free(&ex, &logvar);
        if ((s = ex.status)) sdc_err_wrap(err, "%s: VAE encode", path);
    }
    if (!s) {
        /* latent_dist.sample(): mean + exp(0.5 logvar) * randn, then x 0.18215 */
        sdc_rng g;
        sdc_rng_seed(&g, mix(d->seed ^ mix(2 * (uint64_t)i + (flip ? 1 : 0))));
        sdc_rng_randn(&g, out, per);
        float sf = p->vae.cfg.scaling_factor;
        for (size_t k = 0; k < per; k++) out[k] = sf * (mu[k] + expf(0.5f * lv[k]) * out[k]);
        for (size_t k = 0; !s && k < per; k++)
            if (!isfinite(out[k]))
                s = sdc_err_set(err, SDC_ERR_NUMERIC, "%s: its VAE latents hold NaN or Inf", path);
    }
    free(img);
    free(mu);
    free(lv);
    free(path);
    if (s) {
        free(out);
        return s;
    }
    *slot = out;
    *z = out;
    return SDC_OK;
}
