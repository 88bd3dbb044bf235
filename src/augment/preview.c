/* preview.c — the contact sheet of `sdc augment --preview` and `sdc manifest
 * preview`: per class a row with a few real images (framed) each followed by
 * its augmentations from every given output folder, then the class's
 * txt2img or retrieved images; every tile labelled (method, strength or
 * prompt, seed) with a tiny built-in 5x7 bitmap font (no font files). The
 * outputs come from each folder's manifest (ok lines only). */
#include "augment.h"

#include "../image/image.h"

#include <cJSON.h>
#include <ctype.h>
#include <glob.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TILE = 96, PAD = 6, COLS = 10, HEAD = 2 * 7 + 6, CAP = 2 * 8 + 4, SRCS = 2, PER = 2 };

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

typedef struct {
    uint8_t *rgb;
    int W, H;
} sheet;

/* Text at (x, y), scale 1 or 2, clipped to max_w pixels. */
static void draw_text(sheet *s, int x, int y, const char *t, int scale, int max_w, uint8_t shade) {
    int x_end = x + max_w;
    for (; *t && x + 5 * scale <= x_end && x + 5 * scale <= s->W; t++, x += 6 * scale) {
        int g = glyph((unsigned char)*t);
        for (int r = 0; g >= 0 && r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (font[g][r] >> (4 - c) & 1)
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++) {
                            int px = x + c * scale + dx, py = y + r * scale + dy;
                            if (px < s->W && py < s->H) memset(s->rgb + ((size_t)py * s->W + px) * 3, shade, 3);
                        }
    }
}

/* Nearest-neighbour thumbnail of an image file at (x, y); framed sources. */
static bool draw_tile(sheet *s, int x, int y, const char *path, bool frame) {
    sdc_image im;
    sdc_err err = {0};
    if (sdc_image_load(path, NULL, &im, &err)) return false; /* failed or not made yet */
    for (int ty = 0; ty < TILE; ty++)
        for (int tx = 0; tx < TILE; tx++) {
            const uint8_t *p = im.rgb + ((size_t)(ty * im.h / TILE) * im.w + tx * im.w / TILE) * 3;
            uint8_t *d = s->rgb + ((size_t)(y + ty) * s->W + x + tx) * 3;
            bool edge = frame && (tx < 3 || ty < 3 || tx >= TILE - 3 || ty >= TILE - 3);
            if (edge) { d[0] = 255; d[1] = 160; d[2] = 0; }
            else memcpy(d, p, 3);
        }
    sdc_image_free(&im);
    return true;
}

/* One ok manifest line of an output folder. */
typedef struct {
    const char *dir, *cls, *method, *output, *source, *prompt;
    double strength, seed;
    bool has_strength;
} shot;

typedef struct {
    cJSON **docs;
    int n_docs;
    shot *v;
    int n, cap;
} shots;

static void add_manifest_file(shots *sh, const char *dir, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return; /* a folder without a manifest shows nothing */
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const char *st = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "status")) : NULL;
        cJSON **docs = j ? realloc(sh->docs, sizeof *docs * (size_t)(sh->n_docs + 1)) : NULL;
        if (!j || !st || strcmp(st, "ok") || !docs) {
            if (docs) sh->docs = docs;
            cJSON_Delete(j);
            continue;
        }
        sh->docs = docs;
        sh->docs[sh->n_docs++] = j;
        if (sh->n == sh->cap) {
            int nc = sh->cap ? 2 * sh->cap : 64;
            shot *v = realloc(sh->v, sizeof *v * (size_t)nc);
            if (!v) break;
            sh->v = v, sh->cap = nc;
        }
        const cJSON *strength = cJSON_GetObjectItemCaseSensitive(j, "strength");
        const char *method = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "method"));
        shot s = {.dir = dir, .cls = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "class")),
                  .method = method ? method : "?",
                  .output = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "output")),
                  .prompt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "prompt")),
                  .seed = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "seed")),
                  .has_strength = cJSON_IsNumber(strength),
                  .strength = cJSON_IsNumber(strength) ? strength->valuedouble : 0};
        /* retrieve's source is a pool file, not one of the class's real images */
        if (strcmp(s.method, "retrieve"))
            s.source = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "source"));
        if (s.cls && s.output) sh->v[sh->n++] = s;
    }
    free(line);
    fclose(f);
}

/* DIR/manifest.jsonl, else the shards' manifests (a run with --shard). */
static void add_manifest(shots *sh, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
    if (access(path, F_OK) == 0) {
        add_manifest_file(sh, dir, path);
        return;
    }
    glob_t g;
    snprintf(path, sizeof path, "%s/manifest.shard-*-of-*.jsonl", dir);
    if (glob(path, 0, NULL, &g) != 0) return;
    for (size_t i = 0; i < g.gl_pathc; i++) add_manifest_file(sh, dir, g.gl_pathv[i]);
    globfree(&g);
}

/* A tile and its two caption lines: method and strength or prompt, then the
 * seed (retrieve: the rank's similarity is in the manifest; the seed line
 * says retrieved). */
static bool draw_shot(sheet *sh, int x, int y, const shot *s) {
    char path[4200], l1[64], l2[64];
    snprintf(path, sizeof path, "%s/%s", s->dir, s->output);
    if (!draw_tile(sh, x, y, path, false)) return false;
    if (s->has_strength) snprintf(l1, sizeof l1, "%s %.2g", s->method, s->strength);
    else if (s->prompt) snprintf(l1, sizeof l1, "%.3s %s", s->method, s->prompt);
    else snprintf(l1, sizeof l1, "%s", s->method);
    if (!strcmp(s->method, "retrieve")) snprintf(l2, sizeof l2, "retrieved");
    else snprintf(l2, sizeof l2, "seed %.0f", s->seed);
    draw_text(sh, x, y + TILE + 2, l1, 1, TILE, 230);
    draw_text(sh, x, y + TILE + 11, l2, 1, TILE, 170);
    return true;
}

sdc_status aug_preview_dirs(const char *png, const char *data_root, const char *const *dirs,
                            int n_dirs, const aug_dataset *d, sdc_err *err) {
    shots sh = {0};
    for (int i = 0; i < n_dirs; i++) add_manifest(&sh, dirs[i]);
    int RH = HEAD + TILE + CAP + PAD;
    sheet s = {.W = PAD + COLS * (TILE + PAD), .H = PAD + (d->n_classes ? d->n_classes : 1) * RH};
    s.rgb = malloc((size_t)s.W * s.H * 3);
    sdc_status st = SDC_OK;
    if (!s.rgb) st = sdc_err_set(err, SDC_ERR_OOM, "preview: out of memory");
    if (s.rgb) memset(s.rgb, 32, (size_t)s.W * s.H * 3);
    char path[8200], label[128];
    for (int c = 0; !st && c < d->n_classes; c++) {
        const aug_class *k = &d->classes[c];
        int y = PAD + c * RH, col = 0;
        draw_text(&s, PAD, y + 2, k->name, 2, s.W - 2 * PAD, 240);
        y += HEAD;
        /* real images, each followed by its augmentations in every folder */
        for (int f = 0, srcs = 0; f < k->n_files && srcs < SRCS && col < COLS - 1; f++) {
            char src[4096];
            snprintf(src, sizeof src, "%s/%s", k->folder, k->files[f]);
            int first = col;
            snprintf(path, sizeof path, "%s/%s", data_root, src);
            if (!draw_tile(&s, PAD + col * (TILE + PAD), y, path, true)) continue;
            snprintf(label, sizeof label, "real %s", k->files[f]);
            draw_text(&s, PAD + col * (TILE + PAD), y + TILE + 2, label, 1, TILE, 255);
            col++;
            for (int dd = 0; dd < n_dirs; dd++)
                for (int i = 0, per = 0; i < sh.n && per < PER && col < COLS; i++) {
                    const shot *x = &sh.v[i];
                    if (x->dir != dirs[dd] || strcmp(x->cls, k->folder) || !x->source || strcmp(x->source, src))
                        continue;
                    if (draw_shot(&s, PAD + col * (TILE + PAD), y, x)) col++, per++;
                }
            if (col > first + 1 || srcs == 0) srcs++;
        }
        /* then the class's own txt2img and retrieved images, per folder */
        for (int dd = 0; dd < n_dirs; dd++)
            for (int i = 0, per = 0; i < sh.n && per < PER && col < COLS; i++) {
                const shot *x = &sh.v[i];
                if (x->dir != dirs[dd] || strcmp(x->cls, k->folder) || x->source) continue;
                if (draw_shot(&s, PAD + col * (TILE + PAD), y, x)) col++, per++;
            }
    }
    if (!st) st = sdc_image_save_png(png, s.rgb, s.W, s.H, NULL, err);
    free(s.rgb);
    for (int i = 0; i < sh.n_docs; i++) cJSON_Delete(sh.docs[i]);
    free(sh.docs);
    free(sh.v);
    return st;
}

sdc_status aug_preview(const char *png, const char *data_root, const char *out_dir,
                       const aug_dataset *d, const aug_plan *p, sdc_err *err) {
    (void)p;
    return aug_preview_dirs(png, data_root, &out_dir, 1, d, err);
}
