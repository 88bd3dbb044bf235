/* png_text.c — PNG files and their text: encoding (stb_image_write) with a
 * "parameters" tEXt/iTXt chunk written atomically, and a strict chunk walker
 * (CRC-checked, bounded by the file) that reads text back. */
#include "image.h"

#include <stdlib.h>
#include <string.h>

#include <stb_image.h>
#include <stb_image_write.h>

/* Defined by stb_image_write (see stb_impl.c) but not declared in its header;
 * the buffer comes from malloc (STBIW_MALLOC is not overridden). */
unsigned char *stbi_write_png_to_mem(const unsigned char *pixels, int stride_bytes, int x, int y,
                                     int n, int *out_len);

#include "../core/atomic_file.h"
#include "../text/inflate.h"

#define PNG_SIG "\x89PNG\r\n\x1a\n"
#define TEXT_KEYWORD "parameters"
#define MAX_CHUNK 0x7FFFFFFFu        /* PNG's own limit on a chunk length */
#define MAX_INFLATED_TEXT (16u << 20) /* compressed text decompresses to at most this */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---------------------------------------------------------------- text encoding */

/* Decodes one UTF-8 sequence at s (strict: no overlongs, surrogates or values
 * past U+10FFFF); returns its length, or 0 if invalid. */
static int utf8_next(const unsigned char *s, uint32_t *cp) {
    if (s[0] < 0x80) return *cp = s[0], 1;
    int n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (!n || s[0] > 0xF4) return 0;
    uint32_t v = s[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return *cp = v, n;
}

/* The chunk (length, type, data, CRC) carrying text: tEXt with Latin-1 when
 * every character fits, else iTXt with UTF-8, as PIL's PngInfo.add_text. */
static sdc_status text_chunk(const char *text, uint8_t **chunk, size_t *clen, sdc_err *err) {
    size_t tlen = strlen(text), klen = strlen(TEXT_KEYWORD);
    bool latin1 = true;
    size_t nlatin = 0;
    for (const unsigned char *s = (const unsigned char *)text; *s;) {
        uint32_t cp;
        int n = utf8_next(s, &cp);
        if (!n)
            return sdc_err_set(err, SDC_ERR_ARG, "PNG parameters text: invalid UTF-8 at byte %zu",
                               (size_t)(s - (const unsigned char *)text));
        if (cp > 0xFF) latin1 = false;
        s += n;
        nlatin++;
    }
    size_t body = latin1 ? klen + 1 + nlatin : klen + 5 + tlen; /* iTXt: kw\0 0 0 \0 \0 text */
    if (body > MAX_CHUNK - 64) return sdc_err_set(err, SDC_ERR_ARG, "PNG parameters text: too long");
    uint8_t *c = malloc(body + 12);
    if (!c) return sdc_err_set(err, SDC_ERR_OOM, "PNG parameters text: out of memory");
    put_be32(c, (uint32_t)body);
    memcpy(c + 4, latin1 ? "tEXt" : "iTXt", 4);
    uint8_t *d = c + 8;
    memcpy(d, TEXT_KEYWORD, klen + 1);
    d += klen + 1;
    if (latin1) {
        for (const unsigned char *s = (const unsigned char *)text; *s;) {
            uint32_t cp;
            s += utf8_next(s, &cp);
            *d++ = (uint8_t)cp;
        }
    } else {
        memcpy(d, "\0\0\0\0", 4); /* not compressed, method 0, no language, no translation */
        memcpy(d + 4, text, tlen);
        d += 4 + tlen;
    }
    put_be32(d, sdc_crc32(0, c + 4, body + 4));
    *chunk = c;
    *clen = body + 12;
    return SDC_OK;
}

sdc_status sdc_png_encode(const uint8_t *rgb, int w, int h, const char *parameters,
                          uint8_t **png, size_t *len, sdc_err *err) {
    *png = NULL;
    *len = 0;
    if (!rgb || w <= 0 || h <= 0 || w > SDC_IMAGE_HARD_MAX_SIDE || h > SDC_IMAGE_HARD_MAX_SIDE)
        return sdc_err_set(err, SDC_ERR_ARG, "PNG encode: bad image (%dx%d)", w, h);
    uint8_t *chunk = NULL;
    size_t clen = 0;
    if (parameters) {
        sdc_status st = text_chunk(parameters, &chunk, &clen, err);
        if (st) return st;
    }
    int n = 0;
    uint8_t *enc = stbi_write_png_to_mem(rgb, w * 3, w, h, 3, &n);
    if (!enc || n < 8 + 25 + 12 || memcmp(enc + 12, "IHDR", 4) != 0) {
        free(chunk);
        free(enc);
        return sdc_err_set(err, SDC_ERR_OOM, "PNG encode: out of memory (%dx%d)", w, h);
    }
    /* stb writes signature, IHDR (25 bytes), IDAT, IEND. The text goes right
     * after IHDR: PIL's Image.open only sees text chunks before IDAT. */
    size_t at = 8 + 25, total = (size_t)n + clen;
    uint8_t *out = malloc(total);
    if (!out) {
        free(chunk);
        free(enc);
        return sdc_err_set(err, SDC_ERR_OOM, "PNG encode: out of memory (%zu bytes)", total);
    }
    memcpy(out, enc, at);
    if (clen) memcpy(out + at, chunk, clen);
    memcpy(out + at + clen, enc + at, (size_t)n - at);
    free(chunk);
    free(enc);
    *png = out;
    *len = total;
    return SDC_OK;
}

sdc_status sdc_image_save_png(const char *path, const uint8_t *rgb, int w, int h,
                              const char *parameters, sdc_err *err) {
    uint8_t *png;
    size_t len;
    sdc_status st = sdc_png_encode(rgb, w, h, parameters, &png, &len, err);
    if (st) return sdc_err_wrap(err, "%s", path);
    st = sdc_write_file_atomic(path, png, len, err);
    free(png);
    return st;
}

/* ---------------------------------------------------------------- chunk walker */

const char *sdc_png_color_type_name(int ct) {
    switch (ct) {
    case 0: return "gray";
    case 2: return "rgb";
    case 3: return "palette";
    case 4: return "gray+alpha";
    case 6: return "rgba";
    }
    return "unknown";
}

static bool valid_ihdr(const uint8_t *d, sdc_png_header *hd) {
    uint32_t w = be32(d), h = be32(d + 4);
    if (w == 0 || h == 0 || w > MAX_CHUNK || h > MAX_CHUNK) return false;
    hd->width = (int)w;
    hd->height = (int)h;
    hd->bit_depth = d[8];
    hd->color_type = d[9];
    hd->interlace = d[12];
    if (d[10] != 0 || d[11] != 0 || d[12] > 1) return false;
    int b = d[8];
    switch (d[9]) {
    case 0: return b == 1 || b == 2 || b == 4 || b == 8 || b == 16;
    case 3: return b == 1 || b == 2 || b == 4 || b == 8;
    case 2: case 4: case 6: return b == 8 || b == 16;
    }
    return false;
}

/* A copy of Latin-1 bytes as UTF-8. */
static char *latin1_to_utf8(const uint8_t *s, size_t n) {
    char *o = malloc(2 * n + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) *p++ = (char)s[i];
        else {
            *p++ = (char)(0xC0 | s[i] >> 6);
            *p++ = (char)(0x80 | (s[i] & 0x3F));
        }
    }
    *p = 0;
    return o;
}

/* zlib-inflates compressed text with stb's bounded decoder (fixed buffers,
 * growing up to MAX_INFLATED_TEXT). */
static sdc_status inflate_text(const uint8_t *z, size_t n, const char *what, char **out, sdc_err *err) {
    for (size_t cap = 64u << 10; cap <= MAX_INFLATED_TEXT; cap *= 16) {
        char *buf = malloc(cap + 1);
        if (!buf) return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory inflating text", what);
        int got = stbi_zlib_decode_buffer(buf, (int)cap, (const char *)z, (int)n);
        if (got >= 0) {
            buf[got] = 0;
            *out = buf;
            return SDC_OK;
        }
        free(buf);
    }
    return sdc_err_set(err, SDC_ERR_FORMAT,
                       "%s: compressed text is corrupt or inflates past %u bytes", what, MAX_INFLATED_TEXT);
}

/* The value of a text chunk whose keyword matched; NUL-free text required. */
static sdc_status take_text(const char type[5], const uint8_t *d, size_t n, size_t klen,
                            const char *what, char **value, sdc_err *err) {
    const uint8_t *t = d + klen + 1, *end = d + n;
    char *v = NULL;
    if (strcmp(type, "tEXt") == 0) {
        v = latin1_to_utf8(t, (size_t)(end - t));
    } else if (strcmp(type, "zTXt") == 0) {
        if (t >= end || *t != 0)
            return sdc_err_set(err, SDC_ERR_FORMAT, "%s: zTXt chunk with an unknown compression method", what);
        char *raw;
        sdc_status st = inflate_text(t + 1, (size_t)(end - t - 1), what, &raw, err);
        if (st) return st;
        v = latin1_to_utf8((const uint8_t *)raw, strlen(raw));
        free(raw);
    } else { /* iTXt: flag, method, language\0, translated keyword\0, text */
        if (end - t < 2) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: truncated iTXt chunk", what);
        int flag = t[0], method = t[1];
        const uint8_t *p = t + 2;
        for (int skip = 0; skip < 2; skip++) {
            const uint8_t *z = memchr(p, 0, (size_t)(end - p));
            if (!z) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: malformed iTXt chunk", what);
            p = z + 1;
        }
        if (flag > 1 || (flag && method != 0))
            return sdc_err_set(err, SDC_ERR_FORMAT, "%s: iTXt chunk with unknown compression", what);
        if (flag) {
            sdc_status st = inflate_text(p, (size_t)(end - p), what, &v, err);
            if (st) return st;
        } else if ((v = malloc((size_t)(end - p) + 1))) {
            memcpy(v, p, (size_t)(end - p));
            v[end - p] = 0;
        }
        if (v) {
            for (const unsigned char *s = (const unsigned char *)v; *s;) {
                uint32_t cp;
                int k = utf8_next(s, &cp);
                if (!k) {
                    free(v);
                    return sdc_err_set(err, SDC_ERR_FORMAT, "%s: iTXt text is not valid UTF-8", what);
                }
                s += k;
            }
        }
    }
    if (!v) return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory reading text", what);
    *value = v;
    return SDC_OK;
}

sdc_status sdc_png_parse(const uint8_t *buf, size_t len, const char *what, sdc_png_header *header,
                         const char *keyword, char **value, sdc_err *err) {
    sdc_png_header hd = {0};
    char *found = NULL;
    sdc_status st = SDC_OK;
    if (value) *value = NULL;
    if (len < 8 || memcmp(buf, PNG_SIG, 8) != 0)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: not a PNG file (bad signature)", what);
    size_t pos = 8, nchunks = 0;
    bool idat = false, iend = false;
    while (!st && !iend) {
        if (len - pos < 12) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: truncated PNG (%s at byte %zu)", what,
                             pos == len ? "no IEND chunk" : "partial chunk header", pos);
            break;
        }
        uint32_t n = be32(buf + pos);
        const uint8_t *type = buf + pos + 4, *d = buf + pos + 8;
        char t[5] = {0};
        for (int i = 0; i < 4; i++) t[i] = (type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z') ? (char)type[i] : '?';
        if (strchr(t, '?')) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt PNG (bad chunk type at byte %zu)", what, pos);
            break;
        }
        if (n > MAX_CHUNK || n > len - pos - 12) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: truncated PNG (chunk %s at byte %zu declares %u bytes, "
                             "%zu left)", what, t, pos, n, len - pos - 12);
            break;
        }
        if (sdc_crc32(0, type, (size_t)n + 4) != be32(d + n)) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt PNG (CRC mismatch in chunk %s at byte %zu)", what, t, pos);
            break;
        }
        bool first = nchunks++ == 0;
        if (first != (strcmp(t, "IHDR") == 0) || (first && (n != 13 || !valid_ihdr(d, &hd)))) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt PNG (%s)", what,
                             first ? "bad IHDR chunk" : "second IHDR chunk");
            break;
        }
        if (strcmp(t, "IDAT") == 0) idat = true;
        if (strcmp(t, "IEND") == 0) iend = true;
        bool text = !strcmp(t, "tEXt") || !strcmp(t, "zTXt") || !strcmp(t, "iTXt");
        if (text && keyword && value && !found) {
            const uint8_t *z = memchr(d, 0, n);
            size_t klen = z ? (size_t)(z - d) : 0;
            if (z && klen == strlen(keyword) && memcmp(d, keyword, klen) == 0)
                st = take_text(t, d, n, klen, what, &found, err);
        }
        pos += (size_t)n + 12;
    }
    if (!st && !idat) st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: corrupt PNG (no IDAT chunk)", what);
    if (st) {
        free(found);
        return st;
    }
    if (header) *header = hd;
    if (value) *value = found;
    return SDC_OK;
}

sdc_status sdc_png_inspect(const char *path, sdc_png_header *header, const char *keyword,
                           char **value, sdc_err *err) {
    if (value) *value = NULL;
    uint8_t *buf;
    size_t len;
    sdc_status st = sdc_read_file_capped(path, SDC_IMAGE_MAX_FILE_BYTES, &buf, &len, err);
    if (st) return st;
    st = sdc_png_parse(buf, len, path, header, keyword, value, err);
    free(buf);
    return st;
}

sdc_status sdc_png_read_text(const char *path, const char *keyword, char **value, sdc_err *err) {
    return sdc_png_inspect(path, NULL, keyword, value, err);
}
