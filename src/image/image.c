/* image.c — bounded PNG/JPEG loading into 8-bit RGB (size cap, content
 * sniffing, structure checks, stbi_info dimension checks before decoding),
 * img2img preprocessing into float CHW, and VAE output to 8-bit RGB. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image.h>
#include <stb_image_resize.h>

/* ---------------------------------------------------------------- sniffing */

typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG } img_format;

/* The format from the first bytes; for refused formats, *name says which. */
static img_format sniff(const uint8_t *b, size_t n, const char **name) {
    static const struct { const char *magic; size_t len; const char *name; } other[] = {
        {"GIF87a", 6, "GIF"},      {"GIF89a", 6, "GIF"},      {"BM", 2, "BMP"},
        {"#?RADIANCE", 10, "HDR"}, {"#?RGBE", 6, "HDR"},      {"8BPS", 4, "PSD"},
        {"\x53\x80\xF6\x34", 4, "PIC"}, {"II*\0", 4, "TIFF"}, {"MM\0*", 4, "TIFF"},
        {"\0\0\1\0", 4, "ICO"},    {"qoif", 4, "QOI"},
    };
    *name = NULL;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return FMT_PNG;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FMT_JPEG;
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (n >= other[i].len && memcmp(b, other[i].magic, other[i].len) == 0) {
            *name = other[i].name;
            return FMT_UNKNOWN;
        }
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) *name = "WebP";
    else if (n >= 12 && memcmp(b + 4, "ftyp", 4) == 0) *name = "HEIF/AVIF";
    else if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7') *name = "PNM";
    return FMT_UNKNOWN;
}

/* ---------------------------------------------------------------- JPEG structure */

/* A scan's table references, checked against the tables defined so far.
 * stb 2.27 mallocs its decoder state without clearing it, so a scan naming
 * a Huffman table no DHT segment defined decodes with leftover heap bytes as
 * the code tables: the symbol index then runs far past its 257-entry arrays
 * (found by fuzz_image in CI). An undefined quantization table is only
 * garbage pixels, but they change from run to run, so it is refused too. */
typedef struct {
    unsigned dc, ac, quant;           /* bit t: table t defined */
    bool progressive;
    int components;                   /* in the frame header, 1 to 4 */
    uint8_t id[4], tq[4];             /* per frame component */
} jpeg_tables;

static sdc_status check_scan(const uint8_t *s, size_t len, const jpeg_tables *t, const char *what,
                             sdc_err *err) {
    size_t ns = len ? s[0] : 0;
    if (ns < 1 || ns > 4 || len != 4 + 2 * ns)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG scan header", what);
    int spectral_start = s[1 + 2 * ns], high_bit = s[3 + 2 * ns] >> 4;
    /* which tables stb decodes this scan with: a baseline scan uses both;
     * a progressive scan uses the DC table for a first DC pass, else AC */
    bool uses_dc = !t->progressive || (spectral_start == 0 && high_bit == 0);
    bool uses_ac = !t->progressive || spectral_start != 0;
    for (size_t i = 0; i < ns; i++) {
        int id = s[1 + 2 * i], dc = s[2 + 2 * i] >> 4, ac = s[2 + 2 * i] & 15, c = 0;
        while (c < t->components && t->id[c] != id) c++;
        if (c == t->components)
            return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG (scan names component %d, not in the frame)",
                               what, id);
        if (uses_dc && (dc > 3 || !(t->dc >> dc & 1)))
            return sdc_err_set(err, SDC_ERR_FORMAT,
                               "%s: corrupt JPEG (a scan uses DC Huffman table %d, which the file never defines)",
                               what, dc);
        if (uses_ac && (ac > 3 || !(t->ac >> ac & 1)))
            return sdc_err_set(err, SDC_ERR_FORMAT,
                               "%s: corrupt JPEG (a scan uses AC Huffman table %d, which the file never defines)",
                               what, ac);
        if (t->tq[c] > 3 || !(t->quant >> t->tq[c] & 1))
            return sdc_err_set(err, SDC_ERR_FORMAT,
                               "%s: corrupt JPEG (a scan uses quantization table %d, which the file never defines)",
                               what, t->tq[c]);
    }
    return SDC_OK;
}

/* Walks the markers from SOI to EOI (through every scan of a progressive
 * file): stb pads a truncated stream with zeros and would succeed, and it
 * decodes a 4-component frame without an Adobe APP14 marker as YCbCr,
 * ignoring the 4th channel (wrong colours), so both are refused here. Every
 * scan must name tables defined before it (check_scan). */
static sdc_status check_jpeg(const uint8_t *b, size_t n, const char *what, int *w, int *h,
                             sdc_err *err) {
    size_t p = 2;
    jpeg_tables tables = {0};
    bool adobe = false, frame = false;
    for (;;) {
        while (p < n && b[p] != 0xFF) p++; /* entropy-coded data (or junk) */
        while (p < n && b[p] == 0xFF) p++; /* fill bytes */
        if (p >= n) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: truncated JPEG (no end-of-image marker)", what);
        uint8_t m = b[p++];
        if (m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) continue; /* stuffed, RSTn, TEM */
        if (m == 0xD9) break;                                            /* EOI */
        if (m == 0xD8) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG (second start-of-image marker)", what);
        if (p + 2 > n) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: truncated JPEG (in a marker segment)", what);
        size_t L = (size_t)b[p] << 8 | b[p + 1];
        if (L < 2 || p + L > n)
            return sdc_err_set(err, SDC_ERR_FORMAT, "%s: truncated or corrupt JPEG (segment 0x%02X of %zu bytes)", what, m, L);
        const uint8_t *s = b + p + 2;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (L < 8 || s[5] < 1 || s[5] > 4 || L < 8 + 3 * (size_t)s[5])
                return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG frame header", what);
            if (m != 0xC0 && m != 0xC1 && m != 0xC2)
                return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                                   "%s: unsupported JPEG coding (SOF%d: lossless, hierarchical or arithmetic)",
                                   what, m - 0xC0);
            if (frame) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG (second frame header)", what);
            frame = true;
            *h = s[1] << 8 | s[2];
            *w = s[3] << 8 | s[4];
            tables.components = s[5];
            tables.progressive = m == 0xC2;
            for (int c = 0; c < s[5]; c++) tables.id[c] = s[6 + 3 * c], tables.tq[c] = s[8 + 3 * c];
        } else if (m == 0xC4) {
            /* Huffman tables: stb 2.27 trusts the 16 code counts and writes
             * past its 257-entry arrays when they add up to more than 256
             * (found by fuzz_image), so check every table of the segment. */
            size_t q = 0, len = L - 2;
            while (q < len) {
                if (q + 17 > len)
                    return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG Huffman table (truncated)", what);
                size_t codes = 0;
                for (int i = 1; i <= 16; i++) codes += s[q + i];
                if (codes > 256 || q + 17 + codes > len)
                    return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG Huffman table (%zu codes)",
                                       what, codes);
                int class = s[q] >> 4, id = s[q] & 15;
                if (class > 1 || id > 3)
                    return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG Huffman table (class %d, id %d)",
                                       what, class, id);
                *(class ? &tables.ac : &tables.dc) |= 1u << id;
                q += 17 + codes;
            }
        } else if (m == 0xDB) {
            for (size_t q = 0, len = L - 2; q < len;) {
                int precision = s[q] >> 4, id = s[q] & 15;
                size_t bytes = precision ? 128 : 64;
                if (precision > 1 || id > 3 || q + 1 + bytes > len)
                    return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG quantization table", what);
                tables.quant |= 1u << id;
                q += 1 + bytes;
            }
        } else if (m == 0xDA) {
            if (!frame) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG (a scan before the frame header)", what);
            sdc_status st = check_scan(s, L - 2, &tables, what, err);
            if (st) return st;
        } else if (m == 0xEE && L >= 14 && memcmp(s, "Adobe", 6) == 0) {
            adobe = true;
        }
        p += L;
    }
    if (!frame) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt JPEG (no frame header)", what);
    if (tables.components == 4 && !adobe)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "%s: 4-channel JPEG without an Adobe marker (CMYK or YCCK cannot be told apart)", what);
    return SDC_OK;
}

/* ---------------------------------------------------------------- decoding */

static void fill_limits(const sdc_image_limits *lim, sdc_image_limits *l) {
    *l = lim ? *lim : (sdc_image_limits){0};
    if (!l->max_file_bytes) l->max_file_bytes = SDC_IMAGE_MAX_FILE_BYTES;
    if (l->max_side <= 0) l->max_side = SDC_IMAGE_MAX_SIDE;
    if (l->max_side > SDC_IMAGE_HARD_MAX_SIDE) l->max_side = SDC_IMAGE_HARD_MAX_SIDE;
    if (l->max_pixels <= 0) l->max_pixels = SDC_IMAGE_MAX_PIXELS;
}

sdc_status sdc_image_decode(const uint8_t *buf, size_t len, const char *what,
                            const sdc_image_limits *lim, sdc_image *out, sdc_err *err) {
    *out = (sdc_image){0};
    sdc_image_limits l;
    fill_limits(lim, &l);
    if (len == 0) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: empty file", what);
    if (len > l.max_file_bytes)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: %zu bytes is over the %zu-byte limit", what, len,
                           l.max_file_bytes);
    if (len > INT32_MAX) return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: over 2 GiB", what);
    const char *name;
    img_format f = sniff(buf, len, &name);
    if (f == FMT_UNKNOWN)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: unsupported image format%s%s%s (only PNG and JPEG are read)",
                           what, name ? " (" : "", name ? name : "", name ? ")" : "");
    /* The structure and the declared size, checked before stb sees the bytes. */
    const char *kind = f == FMT_PNG ? "PNG" : "JPEG";
    sdc_png_header ph = {0};
    int w = 0, h = 0, comp;
    sdc_status st = f == FMT_PNG ? sdc_png_parse(buf, len, what, &ph, NULL, NULL, err)
                                 : check_jpeg(buf, len, what, &w, &h, err);
    if (st) return st;
    if (f == FMT_PNG) w = ph.width, h = ph.height;
    if (w <= 0 || h <= 0)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: %s declares a %dx%d image", what, kind, w, h);
    if (w > l.max_side || h > l.max_side || (int64_t)w * h > l.max_pixels)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                           "%s: %dx%d %s is over the limits (%d pixels a side, %lld pixels)", what, w, h,
                           kind, l.max_side, (long long)l.max_pixels);
    int iw, ih;
    if (!stbi_info_from_memory(buf, (int)len, &iw, &ih, &comp))
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt %s header (%s)", what, kind, stbi_failure_reason());
    if (iw != w || ih != h)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt %s (%dx%d in its header, %dx%d to the decoder)",
                           what, kind, w, h, iw, ih);
    int w2, h2, c2;
    uint8_t *rgb = stbi_load_from_memory(buf, (int)len, &w2, &h2, &c2, 3);
    if (!rgb) {
        const char *why = stbi_failure_reason();
        if (why && strcmp(why, "outofmem") == 0)
            return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory decoding %dx%d %s", what, w, h, kind);
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt %s (%s)", what, kind, why ? why : "decoder failed");
    }
    if (w2 != w || h2 != h) {
        stbi_image_free(rgb);
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: %s size changed while decoding", what, kind);
    }
    out->w = w;
    out->h = h;
    out->rgb = rgb;
    return SDC_OK;
}

sdc_status sdc_image_load(const char *path, const sdc_image_limits *lim, sdc_image *out,
                          sdc_err *err) {
    *out = (sdc_image){0};
    sdc_image_limits l;
    fill_limits(lim, &l);
    uint8_t *buf;
    size_t len;
    sdc_status st = sdc_read_file_capped(path, l.max_file_bytes, &buf, &len, err);
    if (st) return st;
    st = sdc_image_decode(buf, len, path, &l, out, err);
    free(buf);
    return st;
}

void sdc_image_free(sdc_image *im) {
    if (!im) return;
    stbi_image_free(im->rgb);
    *im = (sdc_image){0};
}

/* ---------------------------------------------------------------- img2img input */

sdc_status sdc_image_to_tensor(const sdc_image *im, int w, int h, sdc_fit fit, float *out,
                               size_t cap, sdc_err *err) {
    if (!im || !im->rgb || im->w <= 0 || im->h <= 0)
        return sdc_err_set(err, SDC_ERR_ARG, "image to tensor: no image");
    if (w <= 0 || h <= 0 || w % 8 || h % 8 || w > SDC_IMAGE_MAX_SIDE || h > SDC_IMAGE_MAX_SIDE)
        return sdc_err_set(err, SDC_ERR_ARG,
                           "image to tensor: target %dx%d is not a positive multiple of 8 up to %d",
                           w, h, SDC_IMAGE_MAX_SIDE);
    if (fit != SDC_FIT_RESIZE && fit != SDC_FIT_CROP)
        return sdc_err_set(err, SDC_ERR_ARG, "image to tensor: unknown fit mode %d", (int)fit);
    if (!out || cap < (size_t)3 * w * h)
        return sdc_err_set(err, SDC_ERR_ARG, "image to tensor: output holds %zu floats, %dx%d needs %zu",
                           cap, w, h, (size_t)3 * w * h);
    /* The resampled size (sw, sh) and the window (x0, y0) cut from it. */
    int64_t sw = w, sh = h;
    if (fit == SDC_FIT_CROP) {
        if ((int64_t)w * im->h > (int64_t)im->w * h) sh = (int64_t)im->h * w / im->w;
        else sw = (int64_t)im->w * h / im->h;
        if (sw > 8 * SDC_IMAGE_MAX_SIDE || sh > 8 * SDC_IMAGE_MAX_SIDE)
            return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                               "image to tensor: a %dx%d image is too elongated to crop to %dx%d",
                               im->w, im->h, w, h);
    }
    int x0 = (int)(sw / 2 - w / 2), y0 = (int)(sh / 2 - h / 2);
    const uint8_t *src = im->rgb;
    uint8_t *tmp = NULL;
    if (sw != im->w || sh != im->h) {
        tmp = malloc((size_t)sw * (size_t)sh * 3);
        if (!tmp) return sdc_err_set(err, SDC_ERR_OOM, "image to tensor: cannot allocate %lldx%lld", (long long)sw, (long long)sh);
        if (!stbir_resize_uint8(im->rgb, im->w, im->h, 0, tmp, (int)sw, (int)sh, 0, 3)) {
            free(tmp);
            return sdc_err_set(err, SDC_ERR_OOM, "image to tensor: resizing %dx%d to %lldx%lld failed",
                               im->w, im->h, (long long)sw, (long long)sh);
        }
        src = tmp;
    }
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + ((size_t)(y + y0) * (size_t)sw + (size_t)x0) * 3;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                out[c * plane + (size_t)y * w + x] = (float)row[3 * x + c] / 127.5f - 1.0f;
    }
    free(tmp);
    return SDC_OK;
}

/* ---------------------------------------------------------------- output */

sdc_status sdc_image_from_tensor(const float *x, int w, int h, uint8_t *rgb, sdc_err *err) {
    if (!x || !rgb || w <= 0 || h <= 0)
        return sdc_err_set(err, SDC_ERR_ARG, "tensor to image: bad arguments (%dx%d)", w, h);
    size_t plane = (size_t)w * h, bad = 0, first = 0;
    for (size_t i = 0; i < 3 * plane; i++)
        if (!isfinite(x[i]) && bad++ == 0) first = i;
    if (bad)
        return sdc_err_set(err, SDC_ERR_NUMERIC,
                           "decoded image: %zu of %zu values are NaN or Inf (first at channel %zu, "
                           "y %zu, x %zu)", bad, 3 * plane, first / plane, first % plane / w, first % w);
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float v = x[c * plane + i] / 2.0f + 0.5f;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            rgb[3 * i + c] = (uint8_t)nearbyintf(v * 255.0f); /* ties to even, as numpy */
        }
    return SDC_OK;
}
