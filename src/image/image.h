/* image.h — images in and out of sdc: bounded PNG/JPEG loading, img2img
 * preprocessing into float CHW, PNG writing with A1111 "parameters" text, a
 * strict PNG chunk walker to read it back, and the A1111 infotext format.
 *
 *     sdc_image im;
 *     if (sdc_image_load("in.jpg", NULL, &im, &err)) return fail(&err);
 *     float *x = malloc(3 * 512 * 512 * sizeof *x);            // [3, 512, 512]
 *     sdc_image_to_tensor(&im, 512, 512, SDC_FIT_CROP, x, 3 * 512 * 512, &err);
 *     sdc_image_free(&im);
 *     ...
 *     uint8_t *rgb = malloc(3 * 512 * 512);                    // [512, 512, 3]
 *     if (sdc_image_from_tensor(vae_out, 512, 512, rgb, &err)) ...  // NaN/Inf: SDC_ERR_NUMERIC
 *     char *params = sdc_a1111_parameters(&meta);
 *     sdc_image_save_png("out.png", rgb, 512, 512, params, &err);
 *
 * Loading: only stb_image's PNG and JPEG decoders are compiled in (Debian's
 * stb 2.27 has known bugs in the others). The file is read with a size cap,
 * its format sniffed from the bytes (never the extension), its structure
 * checked (PNG: every chunk CRC, IEND; JPEG: markers up to EOI), and its
 * dimensions checked against the limits before any pixel is decoded. The
 * result is always 8-bit RGB: gray is replicated, alpha dropped (as PIL's
 * convert("RGB")), palettes expanded, 16-bit reduced to 8; Adobe CMYK/YCCK
 * JPEG are converted by stb; EXIF orientation is ignored. */
#ifndef SDC_IMAGE_H
#define SDC_IMAGE_H

#include "sdc.h"

#include "../core/atomic_file.h" /* sdc_read_file_capped */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- loading */

#define SDC_IMAGE_MAX_FILE_BYTES (64u << 20) /* 64 MiB */
#define SDC_IMAGE_MAX_SIDE 8192
#define SDC_IMAGE_MAX_PIXELS 40000000LL      /* 40 MP */
#define SDC_IMAGE_HARD_MAX_SIDE 65535        /* stb's own cap; limits above it are clamped */

/* Zero fields take the defaults above; NULL means all defaults. */
typedef struct sdc_image_limits {
    size_t max_file_bytes;
    int max_side;          /* width and height each */
    int64_t max_pixels;    /* width * height */
} sdc_image_limits;

typedef struct sdc_image {
    int w, h;
    uint8_t *rgb;          /* [h, w, 3], row-major, owned (sdc_image_free) */
} sdc_image;

/* Decodes a PNG or JPEG into 8-bit RGB. Any other content (GIF, BMP, WebP,
 * HDR, PNM, ...) is SDC_ERR_UNSUPPORTED; empty, truncated or corrupt files
 * SDC_ERR_FORMAT; over a limit SDC_ERR_UNSUPPORTED. Messages name the file. */
sdc_status sdc_image_load(const char *path, const sdc_image_limits *lim, sdc_image *out,
                          sdc_err *err);
/* The same for bytes in memory; `what` names them in messages. */
sdc_status sdc_image_decode(const uint8_t *buf, size_t len, const char *what,
                            const sdc_image_limits *lim, sdc_image *out, sdc_err *err);
void sdc_image_free(sdc_image *im);

/* ---------------------------------------------------------------- img2img input */

typedef enum sdc_fit {
    /* Resample to exactly w x h (the aspect ratio may change), as diffusers'
     * VaeImageProcessor with resize_mode="default". */
    SDC_FIT_RESIZE = 0,
    /* Scale so the image covers w x h, then cut the centre, as
     * VaeImageProcessor's resize_mode="crop" (same integer arithmetic). */
    SDC_FIT_CROP,
} sdc_fit;

/* Fits im to w x h (each a positive multiple of 8, at most
 * SDC_IMAGE_MAX_SIDE) and writes out[3, h, w] = pixel / 127.5 - 1. cap is
 * out's length in floats. Resampling is stb_image_resize's default
 * (Catmull-Rom up, Mitchell down, on 8-bit values), not PIL's Lanczos, so
 * values differ from diffusers by a few levels near edges; equal sizes copy. */
sdc_status sdc_image_to_tensor(const sdc_image *im, int w, int h, sdc_fit fit, float *out,
                               size_t cap, sdc_err *err);

/* ---------------------------------------------------------------- output */

/* VAE output x[3, h, w] in [-1, 1] to rgb[h, w, 3] exactly as diffusers:
 * ((x / 2 + 0.5).clamp(0, 1) * 255).round() in float32, ties to even.
 * Any NaN/Inf is SDC_ERR_NUMERIC (never a silent black image). */
sdc_status sdc_image_from_tensor(const float *x, int w, int h, uint8_t *rgb, sdc_err *err);

/* Encodes rgb[h, w, 3] as PNG (stb_image_write) and writes it atomically
 * (temp file, fsync, rename, fsync of the folder). parameters (UTF-8, may be
 * NULL) goes into a text chunk with keyword "parameters" placed before the
 * image data, as PIL/A1111 write it: tEXt (Latin-1) when every character is
 * at most U+00FF, else iTXt (UTF-8, uncompressed). Invalid UTF-8 is SDC_ERR_ARG. */
sdc_status sdc_image_save_png(const char *path, const uint8_t *rgb, int w, int h,
                              const char *parameters, sdc_err *err);
/* The same into a malloc'ed buffer (no file). */
sdc_status sdc_png_encode(const uint8_t *rgb, int w, int h, const char *parameters,
                          uint8_t **png, size_t *len, sdc_err *err);

/* ---------------------------------------------------------------- PNG metadata */

typedef struct sdc_png_header {
    int width, height, bit_depth, color_type, interlace;
} sdc_png_header;

/* "gray", "rgb", "palette", "gray+alpha", "rgba" (or "unknown"). */
const char *sdc_png_color_type_name(int color_type);

/* Walks every chunk of a PNG in memory: signature, IHDR first and valid,
 * lengths within the file, CRC-32 of each chunk, IDAT present, IEND last
 * (bytes after it are ignored). If keyword is non-NULL, *value receives the
 * text of the first tEXt/iTXt chunk with that keyword as malloc'ed UTF-8
 * (Latin-1 converted), or NULL when there is none. A zTXt or compressed iTXt
 * with that keyword is SDC_ERR_UNSUPPORTED ("compressed text not supported").
 * header and value may be NULL. */
sdc_status sdc_png_parse(const uint8_t *buf, size_t len, const char *what, sdc_png_header *header,
                         const char *keyword, char **value, sdc_err *err);
/* The same on a file (size cap SDC_IMAGE_MAX_FILE_BYTES). */
sdc_status sdc_png_inspect(const char *path, sdc_png_header *header, const char *keyword,
                           char **value, sdc_err *err);
/* Just the text: *value is NULL (and SDC_OK) when the keyword is absent. */
sdc_status sdc_png_read_text(const char *path, const char *keyword, char **value, sdc_err *err);

/* ---------------------------------------------------------------- A1111 infotext */

/* Generation parameters as AUTOMATIC1111's web UI writes them. A field is
 * written only when present: steps > 0, strings non-NULL (negative prompt
 * also non-empty), cfg_scale finite, has_seed, width and height > 0, img2img,
 * clip_skip > 1. */
typedef struct sdc_gen_meta {
    const char *prompt;            /* UTF-8; may span lines */
    const char *negative_prompt;
    int steps;
    const char *sampler;           /* A1111 names: "Euler a", "Euler", "DDIM", ... */
    double cfg_scale;
    int64_t seed;
    bool has_seed;
    int width, height;
    const char *model_hash;        /* A1111's short hash: 10 hex digits of SHA-256 */
    const char *model;             /* checkpoint name without extension */
    bool img2img;
    double denoising_strength;     /* written when img2img */
    int clip_skip;
    const char *schedule_type;     /* "Karras" where A1111 names the schedule apart */
    const char *rng;               /* A1111's "RNG": "CPU" or "NV"; NULL = its default, GPU */
} sdc_gen_meta;

/* "prompt\nNegative prompt: neg\nSteps: 25, Sampler: Euler a, CFG scale: 7.5,
 * Seed: 42, Size: 512x512, Model hash: abcd1234ef, Model: v1-5-pruned-emaonly"
 * (then "Denoising strength: 0.3", "Clip skip: 2", "Schedule type: Karras",
 * "RNG: CPU"), whitespace-stripped as
 * A1111 does. Values holding ',', ':' or a newline are JSON-quoted (A1111's
 * quote()). Floats print like Python's repr (7.0, 7.5). Malloc'ed; NULL only
 * when out of memory. */
char *sdc_a1111_parameters(const sdc_gen_meta *m);

/* A plain-text prompt as A1111 reads it literally: the emphasis characters
 * ( ) [ ] and the backslash escaped, and the keywords AND and BREAK (prompt
 * composition, a chunk break) lowercased, which CLIP tokenizes the same.
 * Malloc'ed; NULL only when out of memory. */
char *sdc_a1111_escape(const char *plain);

/* Parses such text back (A1111's parse_generation_parameters): the last line
 * is the parameter line when it holds at least 3 "Key: value" pairs; lines
 * before it are the prompt, up to a line starting "Negative prompt:". Unknown
 * keys are ignored; absent fields stay absent (steps 0, strings NULL,
 * cfg_scale NaN, has_seed false, size 0), and so does a field whose number
 * does not parse (the raw text stays available to the caller). Strings point
 * into *storage, one allocation the caller frees (also on error). */
sdc_status sdc_a1111_parse(const char *text, sdc_gen_meta *m, char **storage, sdc_err *err);

#endif
