/* loss_plot.c — see loss_plot.h. Everything is integer pixel work on an RGB
 * buffer: filled rectangles, Bresenham lines, and glyphs of a 3x5 font drawn
 * at twice their size. */
#include "loss_plot.h"

#include "../image/image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = SDC_LOSS_PLOT_W, H = SDC_LOSS_PLOT_H, LEFT = 72, RIGHT = 16, TOP = 28, BOTTOM = 36 };

typedef struct { uint8_t r, g, b; } color;

static const color WHITE = {255, 255, 255}, GRID = {228, 228, 228}, AXIS = {90, 90, 90},
                   RAW = {180, 180, 180}, AVG = {30, 90, 200}, TEXT = {40, 40, 40};

static void put(uint8_t *rgb, int x, int y, color c) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    uint8_t *p = rgb + ((size_t)y * W + x) * 3;
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

static void rect(uint8_t *rgb, int x0, int y0, int x1, int y1, color c) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(rgb, x, y, c);
}

/* Bresenham; thick draws a 2x2 pen. */
static void line(uint8_t *rgb, int x0, int y0, int x1, int y1, color c, bool thick) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        put(rgb, x0, y0, c);
        if (thick) put(rgb, x0 + 1, y0, c), put(rgb, x0, y0 + 1, c), put(rgb, x0 + 1, y0 + 1, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

/* 3x5 glyphs, one row per 3 bits (MSB left), for the labels' characters. */
static const struct { char c; uint8_t rows[5]; } font[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 2, 2, 2}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}},
    {'+', {0, 2, 7, 2, 0}}, {'e', {7, 4, 6, 4, 7}}, {'L', {4, 4, 4, 4, 7}}, {'O', {7, 5, 5, 5, 7}},
    {'S', {3, 4, 2, 1, 6}}, {'T', {7, 2, 2, 2, 2}}, {'E', {7, 4, 6, 4, 7}}, {'P', {7, 5, 7, 4, 4}},
    {'A', {2, 5, 7, 5, 5}}, {'V', {5, 5, 5, 5, 2}}, {'G', {7, 4, 5, 5, 7}}, {' ', {0, 0, 0, 0, 0}},
};

/* Text at (x, y) (top left), 2 px per font pixel, 8 px per character. */
static void text(uint8_t *rgb, int x, int y, const char *s, color c) {
    for (; *s; s++, x += 8) {
        for (size_t g = 0; g < sizeof font / sizeof *font; g++) {
            if (font[g].c != *s) continue;
            for (int r = 0; r < 5; r++)
                for (int b = 0; b < 3; b++)
                    if (font[g].rows[r] >> (2 - b) & 1) rect(rgb, x + 2 * b, y + 2 * r, x + 2 * b + 1, y + 2 * r + 1, c);
            break;
        }
    }
}

void sdc_ti_loss_plot_draw(const float *loss, int n, uint8_t *rgb) {
    rect(rgb, 0, 0, W - 1, H - 1, WHITE);
    int pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(loss[i])) lo = fmin(lo, loss[i]), hi = fmax(hi, loss[i]);
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12 * fmax(1, fabs(hi))) lo -= 0.5, hi += 0.5;
    double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
    char buf[32];
    for (int k = 0; k <= 4; k++) { /* horizontal grid with the loss values */
        int y = TOP + ph - (ph * k) / 4;
        line(rgb, LEFT, y, LEFT + pw, y, GRID, false);
        snprintf(buf, sizeof buf, "%.3g", lo + (hi - lo) * k / 4);
        text(rgb, LEFT - 8 - 8 * (int)strlen(buf), y - 5, buf, TEXT);
    }
    line(rgb, LEFT, TOP, LEFT, TOP + ph, AXIS, false);
    line(rgb, LEFT, TOP + ph, LEFT + pw, TOP + ph, AXIS, false);
    text(rgb, LEFT, 8, "LOSS", TEXT);
    text(rgb, LEFT + pw - 8 * 11, 8, "- AVG", AVG);
    snprintf(buf, sizeof buf, "STEP %d", n);
    text(rgb, LEFT + pw - 8 * (int)strlen(buf), H - BOTTOM + 12, buf, TEXT);
    text(rgb, LEFT, H - BOTTOM + 12, "1", TEXT);
    if (n < 1) return;
#define XOF(i) (LEFT + (n > 1 ? (int)((int64_t)pw * (i) / (n - 1)) : pw / 2))
#define YOF(v) (TOP + ph - (int)lround(ph * ((v) - lo) / (hi - lo)))
    /* Raw losses: a polyline, or per pixel column its min-max bar when
     * there are more steps than columns. */
    int px = -1, py = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(loss[i])) { px = -1; continue; }
        int x = XOF(i), y = YOF(loss[i]);
        if (px >= 0) line(rgb, px, py, x, y, RAW, false);
        else put(rgb, x, y, RAW);
        px = x, py = y;
    }
    /* The moving average over a window of about n / 25 steps (at least 1). */
    int win = n / 25 > 1 ? n / 25 : 1;
    double sum = 0;
    int cnt = 0;
    px = -1;
    for (int i = 0; i < n; i++) {
        if (isfinite(loss[i])) sum += loss[i], cnt++;
        if (i >= win && isfinite(loss[i - win])) sum -= loss[i - win], cnt--;
        if (cnt < 1) continue;
        int x = XOF(i), y = YOF(sum / cnt);
        if (px >= 0) line(rgb, px, py, x, y, AVG, true);
        px = x, py = y;
    }
#undef XOF
#undef YOF
}

sdc_status sdc_ti_loss_plot(const char *path, const float *loss, int n, sdc_err *err) {
    uint8_t *rgb = malloc((size_t)W * H * 3);
    if (!rgb) return sdc_err_set(err, SDC_ERR_OOM, "loss plot: out of memory");
    sdc_ti_loss_plot_draw(loss, n, rgb);
    sdc_status s = sdc_image_save_png(path, rgb, W, H, NULL, err);
    free(rgb);
    return s;
}
