/* preview.c — the contact sheet of `sdc augment --preview`: one row per
 * class, a few real images (framed) each followed by their augmentations,
 * class names drawn with a tiny built-in 5x7 bitmap font (no font files). */
#include "augment.h"

#include "../image/image.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TILE = 96, PAD = 4, COLS = 8, SCALE = 2, LABEL = 7 * SCALE + 4, SRCS = 2, PER_SRC = 3 };

/* Rows of 5 bits, top first: A-Z, 0-9, '-', '_', '.', '?'. */
static const uint8_t font[][7] = {
    {14, 17, 17, 31, 17, 17, 17}, {30, 17, 17, 30, 17, 17, 30}, {14, 17, 16, 16, 16, 17, 14},
    {28, 18, 17, 17, 17, 18, 28}, {31, 16, 16, 30, 16, 16, 31}, {31, 16, 16, 30, 16, 16, 16},
    {14, 17, 16, 23, 17, 17, 15}, {17, 17, 17, 31, 17, 17, 17}, {14, 4, 4, 4, 4, 4, 14},
    {7, 2, 2, 2, 2, 18, 12},      {17, 18, 20, 24, 20, 18, 17}, {16, 16, 16, 16, 16, 16, 31},
    {17, 27, 21, 21, 17, 17, 17}, {17, 17, 25, 21, 19, 17, 17}, {14, 17, 17, 17, 17, 17, 14},
    {30, 17, 17, 30, 16, 16, 16}, {14, 17, 17, 17, 21, 18, 13}, {30, 17, 17, 30, 20, 18, 17},
    {15, 16, 16, 14, 1, 1, 30},   {31, 4, 4, 4, 4, 4, 4},       {17, 17, 17, 17, 17, 17, 14},
    {17, 17, 17, 17, 17, 10, 4},  {17, 17, 17, 21, 21, 21, 10}, {17, 17, 10, 4, 10, 17, 17},
    {17, 17, 17, 10, 4, 4, 4},    {31, 1, 2, 4, 8, 16, 31},
    {14, 17, 19, 21, 25, 17, 14}, {4, 12, 4, 4, 4, 4, 14},      {14, 17, 1, 2, 4, 8, 31},
    {31, 2, 4, 2, 1, 17, 14},     {2, 6, 10, 18, 31, 2, 2},     {31, 16, 30, 1, 1, 17, 14},
    {6, 8, 16, 30, 17, 17, 14},   {31, 1, 2, 4, 8, 8, 8},       {14, 17, 17, 14, 17, 17, 14},
    {14, 17, 17, 15, 1, 2, 12},
    {0, 0, 0, 31, 0, 0, 0},       {0, 0, 0, 0, 0, 0, 31},       {0, 0, 0, 0, 0, 12, 12},
    {14, 17, 1, 2, 4, 0, 4},
};

static int glyph(unsigned char c) {
    c = (unsigned char)toupper(c);
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= '0' && c <= '9') return 26 + c - '0';
    return c == '-' ? 36 : c == '_' ? 37 : c == '.' ? 38 : c == ' ' ? -1 : 39;
}

static void draw_text(uint8_t *rgb, int W, int H, int x, int y, const char *s) {
    for (; *s && x + 5 * SCALE <= W; s++, x += 6 * SCALE) {
        int g = glyph((unsigned char)*s);
        for (int r = 0; g >= 0 && r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (font[g][r] >> (4 - c) & 1)
                    for (int dy = 0; dy < SCALE; dy++)
                        for (int dx = 0; dx < SCALE; dx++) {
                            int px = x + c * SCALE + dx, py = y + r * SCALE + dy;
                            if (px < W && py < H) memset(rgb + ((size_t)py * W + px) * 3, 240, 3);
                        }
    }
}

/* Nearest-neighbour thumbnail of an image file at (x, y); framed sources. */
static bool draw_tile(uint8_t *rgb, int W, int x, int y, const char *path, bool frame) {
    sdc_image im;
    sdc_err err = {0};
    if (sdc_image_load(path, NULL, &im, &err)) return false; /* failed or not made yet */
    for (int ty = 0; ty < TILE; ty++)
        for (int tx = 0; tx < TILE; tx++) {
            const uint8_t *s = im.rgb + ((size_t)(ty * im.h / TILE) * im.w + tx * im.w / TILE) * 3;
            uint8_t *d = rgb + ((size_t)(y + ty) * W + x + tx) * 3;
            bool edge = frame && (tx < 3 || ty < 3 || tx >= TILE - 3 || ty >= TILE - 3);
            if (edge) { d[0] = 255; d[1] = 160; d[2] = 0; }
            else memcpy(d, s, 3);
        }
    sdc_image_free(&im);
    return true;
}

sdc_status aug_preview(const char *png, const char *data_root, const char *out_dir,
                       const aug_dataset *d, const aug_plan *p, sdc_err *err) {
    int W = PAD + COLS * (TILE + PAD), RH = LABEL + TILE + PAD, H = PAD + d->n_classes * RH;
    uint8_t *rgb = malloc((size_t)W * H * 3);
    if (!rgb) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    memset(rgb, 32, (size_t)W * H * 3);
    char path[4096];
    for (int c = 0; c < d->n_classes; c++) {
        int y = PAD + c * RH, col = 0, srcs = 0, last_src = -2, per = 0;
        bool skip = false; /* an unreadable source: neither it nor its outputs */
        draw_text(rgb, W, H, PAD, y, d->classes[c].name);
        y += LABEL;
        for (int i = 0; i < p->n && col < COLS; i++) {
            const aug_item *it = &p->items[i];
            if (it->cls != c) continue;
            if (it->src != last_src) { /* a new source: its real image first */
                if (it->src >= 0 && (srcs == SRCS || col + 2 > COLS)) break;
                last_src = it->src;
                per = 0;
                skip = false;
                if (it->src >= 0) {
                    snprintf(path, sizeof path, "%s/%s", data_root, it->source);
                    skip = !draw_tile(rgb, W, PAD + col * (TILE + PAD), y, path, true);
                    if (!skip) col++, srcs++;
                }
            }
            if (skip || (it->src >= 0 && per == PER_SRC)) continue;
            snprintf(path, sizeof path, "%s/%s", out_dir, it->output);
            if (draw_tile(rgb, W, PAD + col * (TILE + PAD), y, path, false)) col++, per++;
        }
    }
    sdc_status s = sdc_image_save_png(png, rgb, W, H, NULL, err);
    free(rgb);
    return s;
}
