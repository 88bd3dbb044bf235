/* clip_preprocess.c — Pillow's bicubic resize and CLIP's crop/normalize
 * (see clip_preprocess.h). Written from the published algorithm: the filter
 * formula, the support rule and the fixed-point rounding. */
#include "clip_preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS 22 /* Pillow: 32 - 8 - 2 */

/* Keys' cubic convolution kernel with a = -0.5. */
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct {
    int ksize;
    int *bounds;   /* [out, 2]: first input index, tap count */
    int32_t *kk;   /* [out, ksize]: fixed-point weights */
} coeffs;

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->kk);
}

/* Weights of output positions [first, first + count) of an axis resampled
 * from `in` to `out` samples. */
static sdc_status precompute(int in, int out, int first, int count, coeffs *c, sdc_err *err) {
    double scale = (double)in / out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof *c->bounds * 2 * (size_t)count);
    c->kk = malloc(sizeof *c->kk * (size_t)c->ksize * (size_t)count);
    double *k = malloc(sizeof *k * (size_t)c->ksize);
    if (!c->bounds || !c->kk || !k) {
        free(k);
        coeffs_free(c);
        return sdc_err_set(err, SDC_ERR_OOM, "resize: out of memory");
    }
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        xmax -= xmin;
        int x = 0;
        for (; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < c->ksize; x++) k[x] = 0;
        int32_t *q = c->kk + (size_t)i * c->ksize;
        for (x = 0; x < c->ksize; x++)
            q[x] = (int32_t)(k[x] < 0 ? -0.5 + k[x] * (1 << PRECISION_BITS)
                                      : 0.5 + k[x] * (1 << PRECISION_BITS));
        c->bounds[2 * i] = xmin;
        c->bounds[2 * i + 1] = xmax;
    }
    free(k);
    return SDC_OK;
}

static inline uint8_t clip8(int64_t v) {
    if (v < 0) return 0;
    v >>= PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/* in[h, w, 3] -> out[h, cw, 3]: the cw output columns c describes. */
static void pass_h(const uint8_t *in, int w, int h, uint8_t *out, int cw, const coeffs *c) {
    for (int y = 0; y < h; y++) {
        const uint8_t *row = in + (size_t)y * w * 3;
        uint8_t *o = out + (size_t)y * cw * 3;
        for (int xx = 0; xx < cw; xx++) {
            int xmin = c->bounds[2 * xx], n = c->bounds[2 * xx + 1];
            const int32_t *k = c->kk + (size_t)xx * c->ksize;
            int64_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < n; x++) {
                const uint8_t *p = row + (size_t)(x + xmin) * 3;
                s0 += p[0] * (int64_t)k[x];
                s1 += p[1] * (int64_t)k[x];
                s2 += p[2] * (int64_t)k[x];
            }
            o[3 * xx] = clip8(s0);
            o[3 * xx + 1] = clip8(s1);
            o[3 * xx + 2] = clip8(s2);
        }
    }
}

/* in[h, w, 3] -> out[ch, w, 3]: the ch output rows c describes. */
static void pass_v(const uint8_t *in, int w, uint8_t *out, int ch, const coeffs *c) {
    size_t stride = (size_t)w * 3;
    for (int yy = 0; yy < ch; yy++) {
        int ymin = c->bounds[2 * yy], n = c->bounds[2 * yy + 1];
        const int32_t *k = c->kk + (size_t)yy * c->ksize;
        uint8_t *o = out + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++) {
            int64_t s = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < n; y++) s += in[(size_t)(y + ymin) * stride + i] * (int64_t)k[y];
            o[i] = clip8(s);
        }
    }
}

/* The window [x0, x0 + cw) x [y0, y0 + ch) of the ow x oh resize, into
 * out[ch, cw, 3]. Each output pixel depends only on its own weights, so this
 * equals cropping the full resize (Pillow's two passes, skipped when a side
 * keeps its size). */
static sdc_status resize_window(const uint8_t *in, int w, int h, int ow, int oh, int x0, int y0,
                                int cw, int ch, uint8_t *out, sdc_err *err) {
    if (w < 1 || h < 1 || ow < 1 || oh < 1 || w > SDC_IMAGE_HARD_MAX_SIDE ||
        h > SDC_IMAGE_HARD_MAX_SIDE || ow > (1 << 24) || oh > (1 << 24) || x0 < 0 || y0 < 0 ||
        cw < 1 || ch < 1 || x0 + cw > ow || y0 + ch > oh)
        return sdc_err_set(err, SDC_ERR_ARG, "resize: %dx%d -> %dx%d is out of range", w, h, ow, oh);
    bool horiz = ow != w, vert = oh != h;
    coeffs chz = {0}, cvt = {0};
    sdc_status s = SDC_OK;
    if (horiz) s = precompute(w, ow, x0, cw, &chz, err);
    if (!s && vert) s = precompute(h, oh, y0, ch, &cvt, err);
    /* tmp: the horizontal pass (or the source columns) over every source row. */
    uint8_t *tmp = s ? NULL : malloc((size_t)h * cw * 3);
    if (!s && !tmp) s = sdc_err_set(err, SDC_ERR_OOM, "resize: out of memory");
    if (!s) {
        if (horiz) {
            pass_h(in, w, h, tmp, cw, &chz);
        } else {
            for (int y = 0; y < h; y++)
                memcpy(tmp + (size_t)y * cw * 3, in + ((size_t)y * w + x0) * 3, (size_t)cw * 3);
        }
        if (vert) pass_v(tmp, cw, out, ch, &cvt);
        else memcpy(out, tmp + (size_t)y0 * cw * 3, (size_t)ch * cw * 3);
    }
    free(tmp);
    coeffs_free(&chz);
    coeffs_free(&cvt);
    return s;
}

sdc_status sdc_resize_bicubic_pil(const uint8_t *in, int w, int h, uint8_t *out, int ow, int oh,
                                  sdc_err *err) {
    return resize_window(in, w, h, ow, oh, 0, 0, ow, oh, out, err);
}

void sdc_clip_resize_size(int w, int h, int size, int *ow, int *oh) {
    /* Python: int(size * long / short), a double division of exact integers. */
    if (w <= h) {
        *ow = size;
        *oh = (int)((double)size * h / w);
    } else {
        *oh = size;
        *ow = (int)((double)size * w / h);
    }
}

void sdc_clip_normalize(const uint8_t *rgb, int n, const float mean[3], const float std[3],
                        float *out) {
    size_t plane = (size_t)n * n;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float x = (float)((double)rgb[3 * i + c] * (1.0 / 255.0));
            out[c * plane + i] = (x - mean[c]) / std[c];
        }
}

sdc_status sdc_clip_preprocess(const sdc_image *im, int resize, int crop, const float mean[3],
                               const float std[3], uint8_t *crop_rgb, float *out, sdc_err *err) {
    if (!im || !im->rgb || im->w < 1 || im->h < 1 || crop < 1 || resize < crop || resize > 4096)
        return sdc_err_set(err, SDC_ERR_ARG, "clip preprocess: bad image or sizes (resize %d, "
                           "crop %d)", resize, crop);
    int ow, oh;
    sdc_clip_resize_size(im->w, im->h, resize, &ow, &oh);
    if (ow > (1 << 24) || oh > (1 << 24))
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "clip preprocess: a %dx%d image resizes to "
                           "%dx%d (aspect ratio too extreme)", im->w, im->h, ow, oh);
    uint8_t *c = crop_rgb ? crop_rgb : malloc((size_t)crop * crop * 3);
    if (!c) return sdc_err_set(err, SDC_ERR_OOM, "clip preprocess: out of memory");
    /* transformers' center_crop: top = (H - crop) // 2, left = (W - crop) // 2;
     * only that window of the resize is computed. */
    int top = (oh - crop) / 2, left = (ow - crop) / 2;
    sdc_status s = resize_window(im->rgb, im->w, im->h, ow, oh, left, top, crop, crop, c, err);
    if (!s) sdc_clip_normalize(c, crop, mean, std, out);
    if (c != crop_rgb) free(c);
    return s;
}
