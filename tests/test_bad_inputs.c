/* test_bad_inputs.c — the bad-input suite: one table row per hostile input,
 * across RELIABILITY.md's categories (safetensors files, checkpoint contents,
 * images, prompts and vocabulary, embeddings, arguments and numeric ranges,
 * output paths). Each row builds its input in a fresh case folder, runs the
 * sdc CLI on it and asserts the exit code, that stderr names the culprit (the
 * file, flag or value) and the reason, and that nothing was written: the
 * case's out/ folder stays empty and no temp file is left in the case folder.
 * The malformed safetensors files are st_malformed.c's; the checkpoints are
 * the fuzz seeds or the tiny fixture with one change. A corrupt dataset image
 * is the one input that is recorded instead (a failed line in the manifest).
 * scripts/valgrind_bad_inputs.sh runs this suite with every CLI process under
 * valgrind (through $SDC_TEST_WRAPPER, see cli_run.h). */
#include "cli_run.h"
#include "st_malformed.h"
#include "suites.h"
#include "test_util.h"

#include "../src/eval/features.h"
#include "../src/image/image.h"
#include "../src/text/inflate.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY "tests/fixtures/tiny/"
#define VOCAB "weights/bpe_simple_vocab_16e6.txt.gz"
#define SMALL "--width 64 --height 64 --steps 2 --seed 1 -q"
/* @D is the case folder; outputs go to @D/out (created empty). */
#define GEN "generate --vocab " VOCAB " " SMALL " --prompt 'a cat'"
#define GEN_M GEN " --model " TINY "original.safetensors"
#define GEN_OUT GEN_M " -o @D/out/x.png"
#define AUG "augment @D/data --vocab " VOCAB " --size 64 --steps 2 -q"
#define TRAIN_ARGS "train-embedding --vocab " VOCAB " --size 64 --steps 2 --batch 1 --eval-samples 0 -q " \
                   "--images @D/imgs"
#define TRAIN TRAIN_ARGS " --model " TINY "diffusers -o @D/out/emb"
#define AUG_OUT AUG " --model " TINY "diffusers --out @D/out/aug"
#define PROBE "probe @D/data --aug @D/aug --clip " TINY "clip --cache @D/cache -q"
#define REPORT "report @D/data @D/aug --clip " TINY "clip --cache @D/cache -q --vocab " VOCAB

/* ---------------------------------------------------------------- inputs */

typedef void (*maker)(const char *dir, const char *arg);

static void put(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_msg(st_write_bytes(path, p, n), "cannot write %s", path);
}

static const st_case *st_case_named(const char *name) {
    for (size_t i = 0; i < st_n_cases; i++)
        if (!strcmp(st_cases[i].name, name)) return &st_cases[i];
    ck_abort_msg("no st_malformed case '%s'", name);
    return NULL;
}

/* arg: an st_malformed.c case, written as @D/<name>.safetensors. */
static void mk_st(const char *dir, const char *arg) {
    char path[1024];
    ck_assert(st_case_write(st_case_named(arg), dir, path, sizeof path));
}

/* arg "SRC>NAME": the repository file SRC copied to @D/NAME (first half
 * only with "SRC>NAME:half"). */
static void mk_copy(const char *dir, const char *arg) {
    char src[512], name[256];
    const char *gt = strchr(arg, '>');
    snprintf(src, sizeof src, "%.*s", (int)(gt - arg), arg);
    snprintf(name, sizeof name, "%s", gt + 1);
    char *half = strstr(name, ":half");
    if (half) *half = '\0';
    size_t n;
    uint8_t *b = tu_slurp_ok(src, &n);
    put(dir, name, b, half ? n / 2 : n);
    free(b);
}

/* arg "NAME=TEXT": TEXT into @D/NAME. */
static void mk_text(const char *dir, const char *arg) {
    char name[256];
    const char *eq = strchr(arg, '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    put(dir, name, eq + 1, strlen(eq + 1));
}

/* arg NAME: an empty folder @D/NAME. */
static void mk_dir(const char *dir, const char *arg) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, arg);
    ck_assert_int_eq(mkdir(path, 0755), 0);
}

/* A patterned 16x16 PNG; arg "NAME" whole, "NAME:cut" its first half,
 * "NAME:crc" one IDAT byte flipped, "NAME:huge" an IHDR of 100000 x 100000
 * (CRC fixed up, so only the size limit refuses it). */
static void mk_png(const char *dir, const char *arg) {
    uint8_t rgb[16 * 16 * 3], *png;
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 7 + i / 48);
    size_t n;
    sdc_err err = {0};
    ck_assert_msg(sdc_png_encode(rgb, 16, 16, NULL, &png, &n, &err) == SDC_OK, "%s", err.msg);
    char name[256];
    snprintf(name, sizeof name, "%s", arg);
    char *mode = strchr(name, ':');
    if (mode) *mode++ = '\0';
    if (mode && !strcmp(mode, "cut")) n /= 2;
    if (mode && !strcmp(mode, "crc")) png[n - 20] ^= 0x40; /* inside IDAT */
    if (mode && !strcmp(mode, "huge")) {
        for (int k = 0; k < 2; k++) { /* width, height at bytes 16 and 20 */
            uint32_t v = 100000;
            for (int b = 0; b < 4; b++) png[16 + 4 * k + b] = (uint8_t)(v >> (24 - 8 * b));
        }
        uint32_t crc = sdc_crc32(0, png + 12, 17); /* "IHDR" and its 13 bytes */
        for (int b = 0; b < 4; b++) png[29 + b] = (uint8_t)(crc >> (24 - 8 * b));
    }
    put(dir, name, png, n);
    free(png);
}

/* The tiny single-file checkpoint with one change, as @D/ck.safetensors.
 * arg "OP:KEY": drop (the tensor left out), shape (dimension 1 grown by one,
 * 9 for input_blocks.0.0.weight: an inpainting UNet), i32 (stored as I32),
 * f64 (stored as F64), nan (every value NaN). */
static void mk_ckpt(const char *dir, const char *arg) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(TINY "original.safetensors", &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    const char *colon = strchr(arg, ':'), *key = colon + 1;
    char op[16];
    snprintf(op, sizeof op, "%.*s", (int)(colon - arg), arg);
    size_t n = sdc_safetensors_count(st), k = 0;
    sdc_st_write_item *items = calloc(n, sizeof *items);
    sdc_tensor **ts = calloc(n, sizeof *ts);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        bool target = !strcmp(e->name, key);
        found |= target;
        if (target && !strcmp(op, "drop")) continue;
        int64_t shape[4] = {1, 1, 1, 1};
        memcpy(shape, e->shape, sizeof *shape * (size_t)e->ndim);
        if (target && !strcmp(op, "shape")) shape[1] = strstr(key, "input_blocks.0.0.weight") ? 9 : shape[1] + 1;
        sdc_dtype dt = !target ? SDC_F16 : !strcmp(op, "i32") ? SDC_I32 : !strcmp(op, "f64") ? SDC_F64 : SDC_F16;
        ts[k] = sdc_tensor_new(dt, e->ndim, shape, &err);
        ck_assert_msg(ts[k] != NULL, "%s", err.msg);
        if (!target) {
            ck_assert_int_eq(sdc_safetensors_read(st, e, ts[k]->data, SDC_F16, &err), SDC_OK);
        } else {
            memset(ts[k]->data, 0, sdc_tensor_nbytes(ts[k]));
            if (!strcmp(op, "nan"))
                for (int64_t j = 0; j < sdc_tensor_numel(ts[k]); j++) ((uint16_t *)ts[k]->data)[j] = 0x7e00;
        }
        items[k] = (sdc_st_write_item){e->name, ts[k]};
        k++;
    }
    ck_assert_msg(found, "no tensor %s", key);
    const char *meta[16];
    size_t nm = sdc_safetensors_meta_count(st);
    ck_assert(nm <= 8);
    for (size_t i = 0; i < nm; i++) sdc_safetensors_meta_at(st, i, &meta[2 * i], &meta[2 * i + 1]);
    char path[1024];
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    ck_assert_msg(sdc_safetensors_write(path, items, k, meta, nm, &err) == SDC_OK, "%s", err.msg);
    for (size_t i = 0; i < k; i++) sdc_tensor_free(ts[i]);
    free(ts);
    free(items);
    sdc_safetensors_close(st);
}

/* A copy of the tiny diffusers folder as @D/model with one change. arg
 * "rm:PART" (removed), "cut:FILE" (truncated to half), "junk:FILE" (not
 * JSON), "edit:FILE:OLD>NEW" (text replaced). */
static void mk_diffusers(const char *dir, const char *arg) {
    char cmd[2048], path[1024], what[512];
    snprintf(cmd, sizeof cmd, "cp -r %sdiffusers '%s/model'", TINY, dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *colon = strchr(arg, ':');
    snprintf(what, sizeof what, "%s", colon + 1);
    char *edit = strchr(what, ':');
    if (edit) *edit++ = '\0';
    snprintf(path, sizeof path, "%s/model/%s", dir, what);
    if (!strncmp(arg, "rm:", 3)) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
        ck_assert_int_eq(system(cmd), 0);
    } else if (!strncmp(arg, "cut:", 4)) {
        struct stat sb;
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_int_eq(truncate(path, sb.st_size / 2), 0);
    } else if (!strncmp(arg, "junk:", 5)) {
        ck_assert(st_write_bytes(path, "{\"_class_name\": ", 16));
    } else {
        size_t n;
        char *b = (char *)tu_slurp_ok(path, &n), *gt = strchr(edit, '>');
        *gt = '\0';
        char *at = strstr(b, edit);
        ck_assert_msg(at != NULL, "%s lacks %s", path, edit);
        FILE *f = fopen(path, "wb");
        fprintf(f, "%.*s%s%s", (int)(at - b), b, gt + 1, at + strlen(edit));
        fclose(f);
        free(b);
    }
}

/* A textual-inversion file @D/emb.safetensors (the tiny model's width is 8):
 * wide ([1, 768]), i32, nan, none (no tensors), many (76 vectors), sdxl
 * (clip_g + clip_l); "dir" makes @D/embs/ with a good file and a cut one. */
static void mk_emb(const char *dir, const char *arg) {
    char path[1024];
    sdc_err err = {0};
    int width = !strcmp(arg, "wide") ? 768 : 8, vectors = !strcmp(arg, "many") ? 76 : 1;
    sdc_tensor *t = sdc_tensor_new(!strcmp(arg, "i32") ? SDC_I32 : SDC_F32, 2,
                                   (const int64_t[]){vectors, width}, &err);
    for (int i = 0; i < vectors * width; i++) {
        if (t->dtype == SDC_I32) ((int32_t *)t->data)[i] = i;
        else ((float *)t->data)[i] = !strcmp(arg, "nan") && i == 3 ? NAN : 0.01f * (float)i;
    }
    sdc_st_write_item items[2] = {{"emb_params", t}, {"clip_l", t}};
    size_t n = !strcmp(arg, "none") ? 0 : 1;
    if (!strcmp(arg, "sdxl")) items[0].name = "clip_g", n = 2;
    if (!strcmp(arg, "dir")) {
        snprintf(path, sizeof path, "%s/embs", dir);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/embs/good.safetensors", dir);
        ck_assert_int_eq(sdc_safetensors_write(path, items, 1, NULL, 0, &err), SDC_OK);
        snprintf(path, sizeof path, "%s/embs/cut.safetensors", dir);
        ck_assert_int_eq(sdc_safetensors_write(path, items, 1, NULL, 0, &err), SDC_OK);
        ck_assert_int_eq(truncate(path, 50), 0);
    } else {
        snprintf(path, sizeof path, "%s/emb.safetensors", dir);
        ck_assert_msg(sdc_safetensors_write(path, items, n, NULL, 0, &err) == SDC_OK, "%s", err.msg);
    }
    sdc_tensor_free(t);
}

/* @D/vocab.gz: a valid gzip (one stored block) of arg, which is not a
 * CLIP merges file. */
static void mk_gzip(const char *dir, const char *arg) {
    size_t n = strlen(arg);
    uint8_t *g = malloc(n + 40), *p = g;
    memcpy(p, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10), p += 10;
    *p++ = 1; /* BFINAL, stored */
    *p++ = (uint8_t)n, *p++ = (uint8_t)(n >> 8), *p++ = (uint8_t)~n, *p++ = (uint8_t)(~n >> 8);
    memcpy(p, arg, n), p += n;
    uint32_t crc = sdc_crc32(0, (const uint8_t *)arg, n);
    for (int b = 0; b < 4; b++) *p++ = (uint8_t)(crc >> (8 * b));
    for (int b = 0; b < 4; b++) *p++ = (uint8_t)(n >> (8 * b));
    put(dir, "vocab.gz", g, (size_t)(p - g));
    free(g);
}

/* An ImageFolder @D/data with classes a and b (one 64x48 PNG each); arg
 * "empty" (no class folders), "noimages" (class folders, no images),
 * "corrupt" (b/broken.png is not a PNG), "allbroken" (b holds only that),
 * "file" (and a file @D/plain.txt). */
static void mk_data(const char *dir, const char *arg) {
    char path[1024];
    snprintf(path, sizeof path, "%s/data", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    if (!strcmp(arg, "empty")) return;
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/data/%c", dir, 'a' + c);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        if (!strcmp(arg, "noimages")) continue;
        uint8_t rgb[64 * 48 * 3];
        for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 5 + c * 40);
        snprintf(path, sizeof path, "%s/data/%c/img0.png", dir, 'a' + c);
        sdc_err err = {0};
        ck_assert_msg(sdc_image_save_png(path, rgb, 64, 48, NULL, &err) == SDC_OK, "%s", err.msg);
    }
    static const char broken[] = "\x89PNG\r\n\x1a\n garbage";
    if (!strcmp(arg, "corrupt")) put(dir, "data/b/broken.png", broken, sizeof broken - 1);
    if (!strcmp(arg, "allbroken")) { /* class b: no usable image left */
        snprintf(path, sizeof path, "%s/data/b/img0.png", dir);
        ck_assert_int_eq(unlink(path), 0);
        put(dir, "data/b/broken.png", broken, sizeof broken - 1);
    }
    if (!strcmp(arg, "file")) put(dir, "plain.txt", "text", 4);
}


/* For sdc probe / sdc report: an ImageFolder @D/data (classes a and b, 3
 * PNGs each) and an sdc augment output folder @D/aug (one output per class,
 * manifest.jsonl). arg "small": class a has 1 image (no validation split
 * leaves both sides one); "classes": @D/aug also has a class folder c;
 * "manifest": its manifest names a class c; "source": it names a source
 * DATASET does not have; "space": the features of @D/data
 * are cached with the tiny CLIP and those of @D/aug with another CLIP (the
 * same tensors, other weights bytes: another hash) in @D/cache. */
static void mk_eval(const char *dir, const char *arg) {
    char path[1024];
    const char *classes[] = {"a", "b", "c"};
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, f ? "aug" : "data");
        ck_assert_int_eq(mkdir(path, 0755), 0);
        int nc = f && !strcmp(arg, "classes") ? 3 : 2;
        for (int c = 0; c < nc; c++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, f ? "aug" : "data", classes[c]);
            ck_assert_int_eq(mkdir(path, 0755), 0);
            int n = f ? 1 : !strcmp(arg, "small") && c == 0 ? 1 : 3;
            for (int i = 0; i < n; i++) {
                uint8_t rgb[32 * 32 * 3];
                for (size_t k = 0; k < sizeof rgb; k++) rgb[k] = (uint8_t)(k * 3 + c * 50 + i * 17 + f * 90);
                snprintf(path, sizeof path, "%s/%s/%s/img%d.png", dir, f ? "aug" : "data", classes[c], i);
                sdc_err err = {0};
                ck_assert_msg(sdc_image_save_png(path, rgb, 32, 32, NULL, &err) == SDC_OK, "%s", err.msg);
            }
        }
    }
    char lines[1024] = "";
    for (int c = 0; c < 2; c++)
        snprintf(lines + strlen(lines), sizeof lines - strlen(lines), "{\"output\":\"%s/img0.png\",\"class\":\"%s\","
                 "\"method\":\"boomerang\",\"source\":%s,\"status\":\"ok\"}\n", classes[c],
                 !strcmp(arg, "manifest") && c ? "c" : classes[c],
                 !strcmp(arg, "source") && c ? "\"b/nope.png\"" : c ? "\"b/img1.png\"" : "null");
    put(dir, "aug/manifest.jsonl", lines, strlen(lines));
    if (strcmp(arg, "space")) return;
    /* Another CLIP: the tiny one rewritten with one more metadata entry. */
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(TINY "clip/model.safetensors", &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    size_t n = sdc_safetensors_count(st);
    sdc_st_write_item *items = calloc(n, sizeof *items);
    sdc_tensor **ts = calloc(n, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(st, i);
        ts[i] = sdc_tensor_new(e->dtype, e->ndim, e->shape, &err);
        ck_assert_int_eq(sdc_safetensors_read(st, e, ts[i]->data, e->dtype, &err), SDC_OK);
        items[i] = (sdc_st_write_item){e->name, ts[i]};
    }
    snprintf(path, sizeof path, "%s/clip2", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/clip2/model.safetensors", dir);
    const char *meta[] = {"variant", "another"};
    ck_assert_msg(sdc_safetensors_write(path, items, n, meta, 1, &err) == SDC_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++) sdc_tensor_free(ts[i]);
    free(ts), free(items);
    sdc_safetensors_close(st);
    char cmd[4096], cache[2048], root[1024], made[2048];
    snprintf(cmd, sizeof cmd, "cp %sclip/config.json %sclip/preprocessor_config.json %s/clip2/", TINY, TINY, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(root, sizeof root, "%s/cache", dir);
    ck_assert_int_eq(feat_cache_root(root, made, sizeof made, &err), SDC_OK);
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, f ? "aug" : "data");
        ck_assert_int_eq(feat_cache_dir(root, path, cache, sizeof cache, &err), SDC_OK);
        const cli_result *r = cli_run("embed --clip %s --images %s --out %s -q", f ? made : TINY "clip", path, cache);
        (void)r;
        snprintf(made, sizeof made, "%s/clip2", dir);
    }
}

/* Training images @D/imgs for sdc train-embedding: "ok" (two patterned
 * 64x48 PNGs), "broken" (a cut PNG and text named .jpg: none usable),
 * "empty" (no files), "nan" (ok, and @D/ck.safetensors: the tiny checkpoint
 * with NaN in the UNet's last bias), "nandata" (mk_data's "ok" and that
 * checkpoint). */
static void mk_train(const char *dir, const char *arg) {
    char path[1024];
    if (!strcmp(arg, "nandata")) { /* for augment --train: @D/data and the NaN checkpoint */
        mk_data(dir, "ok");
        mk_ckpt(dir, "nan:model.diffusion_model.out.2.bias");
        return;
    }
    snprintf(path, sizeof path, "%s/imgs", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    if (!strcmp(arg, "empty")) return;
    if (!strcmp(arg, "broken")) {
        mk_png(path, "cut.png:cut");
        put(path, "notes.jpg", "hello", 5);
        return;
    }
    for (int k = 0; k < 2; k++) {
        uint8_t rgb[64 * 48 * 3];
        for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 3 + k * 70);
        snprintf(path, sizeof path, "%s/imgs/i%d.png", dir, k);
        sdc_err err = {0};
        ck_assert_msg(sdc_image_save_png(path, rgb, 64, 48, NULL, &err) == SDC_OK, "%s", err.msg);
    }
    if (!strcmp(arg, "nan")) mk_ckpt(dir, "nan:model.diffusion_model.out.2.bias");
}

/* ---------------------------------------------------------------- the table */

typedef struct bad_case {
    const char *cat;     /* RELIABILITY.md's category */
    const char *name;
    maker make;          /* builds the input in @D (may be NULL) */
    const char *arg;
    const char *cmd;     /* sdc arguments (shell text); @D is the case folder */
    int code;            /* exit status */
    const char *culprit; /* stderr holds it (@D expanded) */
    const char *reason;  /* and this; NULL: the st_malformed case's own reason */
} bad_case;

#define ST(nm) {"safetensors", nm, mk_st, nm, GEN " -o @D/out/x.png --model @D/" nm ".safetensors", 1, "@D/" nm ".safetensors", NULL}
#define CK(nm, op, why) {"checkpoint", nm, mk_ckpt, op, GEN " -o @D/out/x.png --model @D/ck.safetensors", 1, "@D/ck.safetensors", why}
#define DF(nm, op, who, why) {"checkpoint", nm, mk_diffusers, op, GEN " -o @D/out/x.png --model @D/model", 1, who, why}
#define IMG(nm, mk, arg, file, why) {"image", nm, mk, arg, GEN_OUT " --strength 0.5 --init @D/" file, 1, "@D/" file, why}
#define EMB(nm, arg, why) {"embeddings", nm, mk_emb, arg, GEN_OUT " --embeddings @D/emb.safetensors", 1, "@D/emb.safetensors", why}
#define ARG(nm, flags, flag, why) {"arguments", nm, NULL, NULL, GEN_OUT " " flags, 2, flag, why}
#define AARG(nm, flags, flag, why) {"arguments", nm, mk_data, "ok", AUG_OUT " " flags, 2, flag, why}

static const bad_case cases[] = {
    /* safetensors files (every one of st_malformed.c's also runs below) */
    ST("too_short"), ST("header_too_large"), ST("header_len_u64_max"), ST("header_past_eof"),
    ST("utf8_overlong2"), ST("utf8_surrogate"), ST("json_truncated"), ST("dtype_unsupported"),
    ST("shape_negative"), ST("shape_rank9"), ST("numel_wraps_to_zero"), ST("bytes_overflow"),
    ST("overlap"), ST("truncated_data"), ST("trailing_bytes"), ST("duplicate_name"),
    {"safetensors", "component_truncated", mk_diffusers, "cut:unet/diffusion_pytorch_model.safetensors",
     GEN " -o @D/out/x.png --model @D/model", 1, "@D/model/unet/diffusion_pytorch_model.safetensors", "truncated"},

    /* checkpoint contents */
    {"checkpoint", "lora", mk_copy, "tests/fuzz/corpus/fuzz_checkpoint/lora>lora.safetensors",
     GEN " -o @D/out/x.png --model @D/lora.safetensors", 1, "@D/lora.safetensors", "a LoRA"},
    {"checkpoint", "empty_header", mk_copy, "tests/fuzz/corpus/fuzz_checkpoint/empty>e.safetensors",
     GEN " -o @D/out/x.png --model @D/e.safetensors", 1, "@D/e.safetensors", "empty"},
    {"checkpoint", "zero_size_sd15", mk_copy, "tests/fuzz/corpus/fuzz_checkpoint/tiny_sd15_zero>z.safetensors",
     GEN " -o @D/out/x.png --model @D/z.safetensors", 1, "@D/z.safetensors", "inconsistent config"},
    {"checkpoint", "not_a_model_folder", mk_dir, "model", GEN " -o @D/out/x.png --model @D/model", 1,
     "@D/model", "unet"},
    {"checkpoint", "pickle", mk_text, "m.ckpt=\x80\x02}q\x00.", GEN " -o @D/out/x.png --model @D/m.ckpt", 1,
     "@D/m.ckpt", "pickle checkpoint"},
    CK("inpainting_unet", "shape:model.diffusion_model.input_blocks.0.0.weight", "(an inpainting model)"),
    CK("misshaped_weight", "shape:model.diffusion_model.middle_block.0.in_layers.2.weight", "expected"),
    CK("missing_weight", "drop:first_stage_model.decoder.up.0.block.0.conv1.weight",
       "first_stage_model.decoder.up.0.block.0.conv1.weight"),
    CK("i32_weight", "i32:model.diffusion_model.out.2.weight", "I32"),
    CK("f64_weight", "f64:first_stage_model.post_quant_conv.weight", "F64"),
    /* NaN weights: caught at the first step that meets them (the message
     * names the UNet's prediction and the step, not the file) */
    {"checkpoint", "nan_weights", mk_ckpt, "nan:model.diffusion_model.out.2.bias",
     GEN " -o @D/out/x.png --model @D/ck.safetensors", 1, "UNet's prediction", "NaN or Inf at step 1"},
    DF("component_missing", "rm:vae", "@D/model", "vae"),
    /* sdc augment on a fresh folder: refused before the first image, the
     * folder skeleton it made is taken back */
    {"checkpoint", "aug_lora_model", mk_data, "ok",
     AUG " --model tests/fuzz/corpus/fuzz_checkpoint/lora --method prompt --out @D/out/aug", 1,
     "tests/fuzz/corpus/fuzz_checkpoint/lora", "a LoRA"},
    {"checkpoint", "aug_missing_model", mk_data, "ok", AUG " --model @D/none.safetensors --method prompt --out @D/out/aug",
     1, "@D/none.safetensors", "No such file"},
    DF("config_not_json", "junk:unet/config.json", "@D/model/unet/config.json", "JSON"),
    DF("sd2_text_encoder", "edit:text_encoder/config.json:\"quick_gelu\">\"gelu\"",
       "@D/model/text_encoder/config.json", "SD 2.x"),

    /* images (img2img --init) */
    IMG("image_empty", mk_text, "e.png=", "e.png", "empty"),
    IMG("image_truncated", mk_png, "cut.png:cut", "cut.png", "truncated"),
    IMG("image_crc", mk_png, "crc.png:crc", "crc.png", "CRC"),
    IMG("image_huge", mk_png, "huge.png:huge", "huge.png", "100000x100000"),
    IMG("image_gif_as_png", mk_copy, "tests/fuzz/corpus/fuzz_image/gif_header>g.png", "g.png", "GIF"),
    IMG("image_text_as_jpg", mk_text, "t.jpg=hello, world", "t.jpg", "unsupported image format"),
    IMG("image_bmp", mk_text, "b.png=BM\x3a\x01\x01\x01", "b.png", "BMP"),
    IMG("image_jpeg_bad_huffman", mk_copy, "tests/fuzz/crashes/fuzz_image-jpeg-dht-over-256-codes>h.jpg",
        "h.jpg", "Huffman"),
    IMG("image_jpeg_undefined_huffman", mk_copy,
        "tests/fuzz/crashes/fuzz_image-jpeg-scan-uses-undefined-huffman-table>u.jpg", "u.jpg", "never defines"),
    IMG("image_missing", NULL, NULL, "none.png", "No such file"),
    IMG("image_is_folder", mk_dir, "d.png", "d.png", "not a regular file"),

    /* prompts and vocabulary */
    {"prompt", "prompt_stray_ff", NULL, NULL, GEN_OUT " --prompt 'a \xff cat'", 1, "prompt", "0xFF"},
    {"prompt", "prompt_overlong", NULL, NULL, GEN_OUT " --prompt 'a \xc0\xaf cat'", 1, "prompt", "overlong"},
    {"prompt", "prompt_surrogate", NULL, NULL, GEN_OUT " --prompt 'a \xed\xa0\x80'", 1, "prompt", "surrogate"},
    {"prompt", "prompt_cut_sequence", NULL, NULL, GEN_OUT " --prompt 'cat \xe2\x82'", 1, "prompt", "byte offset 4"},
    {"prompt", "negative_invalid", NULL, NULL, GEN_OUT " --negative 'ugly \xff'", 1, "negative prompt", "invalid UTF-8 at byte offset 5"},
    {"prompt", "a1111_too_deep", NULL, NULL,
     GEN_OUT " --prompt-syntax a1111 --prompt \"$(printf '%0300d' 0 | tr 0 '(')cat\"", 1, "prompt",
     "brackets nested deeper than 256"},
    {"prompt", "vocab_missing", NULL, NULL, GEN_OUT " --vocab @D/none.gz", 1, "@D/none.gz", "No such file"},
    {"prompt", "vocab_not_gzip", mk_text, "v.gz=#version: 0.2\na b\n", GEN_OUT " --vocab @D/v.gz", 1,
     "@D/v.gz", "not a gzip file"},
    {"prompt", "vocab_truncated", mk_copy, VOCAB ">v.gz:half", GEN_OUT " --vocab @D/v.gz", 1, "@D/v.gz",
     "input ends early"},
    {"prompt", "vocab_empty", mk_text, "v.gz=", GEN_OUT " --vocab @D/v.gz", 1, "@D/v.gz", "gzip"},
    {"prompt", "vocab_not_merges", mk_gzip, "hello\nworld\n", GEN_OUT " --vocab @D/vocab.gz", 1, "@D/vocab.gz",
     "expected two symbols"},

    /* textual-inversion embeddings */
    EMB("emb_wrong_width", "wide", "768 values, but this text encoder uses 8"),
    EMB("emb_i32", "i32", "I32"),
    EMB("emb_nan", "nan", "NaN"),
    EMB("emb_no_tensors", "none", "no tensors"),
    EMB("emb_too_many_vectors", "many", "76 vectors"),
    EMB("emb_sdxl", "sdxl", "SDXL"),
    {"embeddings", "emb_missing", NULL, NULL, GEN_OUT " --embeddings @D/none.safetensors", 1,
     "@D/none.safetensors", "No such file"},
    {"embeddings", "emb_pickle", mk_text, "e.pt=\x80\x02}q\x00.", GEN_OUT " --embeddings @D/e.pt", 1, "@D/e.pt",
     "safetensors.torch"},
    {"embeddings", "emb_cut_in_folder", mk_emb, "dir", GEN_OUT " --embeddings @D/embs", 1,
     "@D/embs/cut.safetensors", "runs past the end"},

    /* arguments and numeric ranges */
    ARG("steps_zero", "--steps 0", "--steps", "'0' is not an integer in [1, 100000]"),
    ARG("steps_not_number", "--steps ten", "--steps", "'ten' is not an integer"),
    ARG("steps_overflow", "--steps 99999999999999999999", "--steps", "'99999999999999999999'"),
    ARG("steps_trailing", "--steps 5x", "--steps", "'5x'"),
    ARG("cfg_nan", "--cfg nan", "--cfg", "'nan' is not a number"),
    ARG("cfg_inf", "--cfg inf", "--cfg", "'inf' is not a number"),
    ARG("cfg_negative", "--cfg -1", "--cfg", "'-1' is not a number in [0, 100]"),
    ARG("cfg_overflow", "--cfg 1e999", "--cfg", "'1e999'"),
    ARG("strength_above_1", "--strength 1.5", "--strength", "'1.5' is not a number in [0, 1]"),
    ARG("width_zero", "--width 0", "--width", "'0' is not an integer in [8, 8192]"),
    ARG("width_not_multiple_of_8", "--width 65", "--width", "multiples of 8 (got 65x64)"),
    ARG("height_huge", "--height 1000000", "--height", "'1000000'"),
    ARG("batch_zero", "--batch 0", "--batch", "'0'"),
    ARG("seed_negative", "--seed -2", "--seed", "'-2'"),
    ARG("eta_above_1", "--eta 2", "--eta", "'2'"),
    ARG("clip_skip_12", "--clip-skip 12", "--clip-skip", "'12'"),
    ARG("unknown_flag", "--bogus 1", "--bogus", "unknown option"),
    ARG("missing_value", "--steps", "--steps", "needs a value"),
    ARG("unknown_sampler", "--sampler magic", "magic", "unknown sampler"),
    ARG("bad_syntax", "--prompt-syntax latex", "--prompt-syntax", "must be one of plain|a1111"),
    {"arguments", "unknown_command", NULL, NULL, "paint --out @D/out/x.png", 2, "paint", "unknown command"},
    {"arguments", "missing_prompt", NULL, NULL, "generate --model m -o @D/out/x.png", 2, "--prompt", "required"},
    AARG("aug_size_zero", "--method prompt --size 0", "--size", "got '0'"),
    AARG("aug_size_odd", "--method prompt --size 100x64", "--size", "multiples of 8"),
    AARG("aug_shard_out_of_range", "--method prompt --shard 2/2", "--shard", "index 2 not below count 2"),
    AARG("aug_strength_negative", "--method boomerang --strength 0.5,-0.1", "--strength", "'-0.1'"),
    AARG("aug_per_image_zero", "--method boomerang --per-image 0", "--per-image", "'0'"),
    AARG("aug_limit_negative", "--method prompt --limit -5", "--limit", "'-5'"),
    AARG("aug_unknown_method", "--method magic", "--method", "must be one of boomerang|prompt|textinv|retrieve"),
    {"arguments", "aug_no_classes", mk_data, "empty", AUG_OUT " --method prompt", 1, "@D/data", "no class"},
    /* options that do not apply, and combinations */
    AARG("aug_per_class_boomerang", "--method boomerang --per-class 3", "--per-class",
         "does not apply to --method boomerang"),
    AARG("aug_per_image_prompt", "--method prompt --per-image 3", "--per-image",
         "does not apply to --method prompt"),
    AARG("aug_pool_prompt", "--method prompt --pool x", "--pool", "does not apply to --method prompt"),
    AARG("aug_strength_textinv", "--method textinv --embeddings x --strength 0.5", "--strength",
         "textinv with --init real only"),
    AARG("aug_retrieve_steps", "--method retrieve --pool x --per-class 2 --steps 5", "--steps",
         "does not apply to --method retrieve"),
    ARG("strength_without_init", "--strength 0.5", "--strength", "give --init IMG too"),
    ARG("typo_suggests", "--sampelr ddim", "--sampelr", "did you mean --sampler?"),
    ARG("size_and_width", "--size 64 --width 64", "--size", "not both"),
    ARG("eta_not_ddim", "--sampler euler --eta 0.1", "eta", "applies to ddim only"),
    {"arguments", "prk_too_few_steps", mk_diffusers,
     "edit:scheduler/scheduler_config.json:\"skip_prk_steps\": true>\"skip_prk_steps\": false",
     GEN " --model @D/model -o @D/out/x.png", 2, "skip_prk_steps", "at least 4 steps"},
    /* scheduler configs sdc cannot follow: named with the key, before loading */
    {"arguments", "sched_not_json", mk_diffusers, "edit:scheduler/scheduler_config.json:{>[",
     GEN " --model @D/model -o @D/out/x.png", 1, "scheduler_config.json", "not a JSON object"},
    {"arguments", "sched_thresholding", mk_diffusers,
     "edit:scheduler/scheduler_config.json:\"PNDMScheduler\">\"DDIMScheduler\", \"thresholding\": true",
     GEN " --model @D/model -o @D/out/x.png", 1, "scheduler_config.json", "thresholding true"},
    {"arguments", "sched_bad_spacing", mk_diffusers,
     "edit:scheduler/scheduler_config.json:\"steps_offset\": 1>\"timestep_spacing\": \"sideways\"",
     GEN " --model @D/model -o @D/out/x.png", 1, "timestep_spacing", "must be one of"},
    {"arguments", "aug_no_images", mk_data, "noimages", AUG_OUT " --method boomerang", 1, "@D/data", "no images in the class folders"},

    /* evaluation: sdc probe and sdc report (issue 17) */
    {"evaluation", "probe_split_empties_class", mk_eval, "small", PROBE, 1, "class 'a'",
     "would leave its training set empty"},
    {"evaluation", "probe_other_feature_space", mk_eval, "space", "probe @D/data --aug @D/aug --cache @D/cache -q", 1,
     "@D/aug", "another model's feature space"},
    {"evaluation", "probe_mismatched_class_folders", mk_eval, "classes", PROBE, 1, "'c'", "mismatched class folders"},
    {"evaluation", "probe_source_not_in_dataset", mk_eval, "source", PROBE, 1, "'b/nope.png'",
     "is not an image of"},
    {"evaluation", "report_mismatched_manifest_class", mk_eval, "manifest", REPORT, 1, "class 'c'",
     "mismatched class folders"},
    {"evaluation", "report_other_feature_space", mk_eval, "space", "report @D/data @D/aug --cache @D/cache --out @D/out/rep -q",
     1, "@D/aug", "another model's feature space"},
    {"evaluation", "probe_not_augment_output", mk_eval, "ok", "probe @D/data --aug @D/data/a --clip " TINY "clip --cache @D/cache -q",
     1, "@D/data/a", "no manifest.jsonl"},
    {"evaluation", "probe_clip_not_clip", mk_eval, "ok", "probe @D/data --aug @D/aug --clip " TINY "original.safetensors --cache @D/cache -q",
     1, TINY "original.safetensors", "Stable Diffusion"},
    {"evaluation", "probe_no_cache_no_clip", mk_eval, "ok", "probe @D/data --aug @D/aug --cache @D/cache -q", 1, "@D/data",
     "--clip"},
    {"arguments", "probe_val_split_one", mk_eval, "ok", PROBE " --val-split 1", 2, "--val-split", "'1' is not a number"},
    {"arguments", "probe_seeds_zero", mk_eval, "ok", PROBE " --seeds 0", 2, "--seeds", "'0'"},
    {"arguments", "probe_C_negative", mk_eval, "ok", PROBE " --C -1", 2, "--C", "'-1'"},
    {"arguments", "probe_no_aug", mk_eval, "ok", "probe @D/data --clip " TINY "clip", 2, "--aug", "required"},
    {"arguments", "report_no_out_folder", mk_eval, "ok", "report @D/data --clip " TINY "clip", 2, "OUT", "required"},
    {"arguments", "report_out_is_file", mk_eval, "ok", REPORT " --out @D/aug/manifest.jsonl", 2, "@D/aug/manifest.jsonl",
     "not a folder"},
    AARG("aug_filter_unknown", "--method prompt --filter blur --filter-clip x", "--filter", "one of clip (got 'blur')"),
    AARG("aug_filter_needs_clip", "--method prompt --filter clip", "--filter-clip", "--filter clip needs --filter-clip"),
    AARG("aug_clip_without_filter", "--method prompt --filter-clip " TINY "clip", "--filter-clip", "goes with --filter clip"),
    {"arguments", "aug_filter_on_retrieve", mk_data, "ok",
     "augment @D/data -q --out @D/out/aug --method retrieve --pool x --per-class 1 --filter clip --filter-clip x", 2,
     "--filter",
     "does not apply to --method retrieve"},
    AARG("aug_filter_threshold_above_1", "--method prompt --filter clip --filter-clip x --filter-threshold 1.5",
         "--filter-threshold", "'1.5'"),
    AARG("aug_max_tries_zero", "--method prompt --filter clip --filter-clip x --max-tries 0", "--max-tries", "'0'"),
    {"evaluation", "aug_filter_clip_not_clip", mk_data, "ok",
     AUG_OUT " --method prompt --filter clip --filter-clip " TINY "original.safetensors", 1, TINY "original.safetensors",
     "Stable Diffusion"},

    /* textual-inversion training: refused before anything is written */
    {"train", "train_no_usable_images", mk_train, "broken", TRAIN " --token '<x>' --init cat", 1, "@D/imgs",
     "no usable images"},
    {"train", "train_empty_folder", mk_train, "empty", TRAIN " --token '<x>' --init cat", 1, "@D/imgs",
     "no usable images"},
    {"train", "train_missing_folder", NULL, NULL, TRAIN " --token '<x>' --init cat", 1, "@D/imgs", "No such file"},
    {"train", "train_token_in_vocabulary", mk_train, "ok", TRAIN " --token cat --init dog", 1, "'cat'",
     "already in CLIP's vocabulary"},
    {"train", "train_token_cased_word", mk_train, "ok", TRAIN " --token Dog --init cat", 1, "'Dog'",
     "already in CLIP's vocabulary"},
    {"train", "train_token_with_space", mk_train, "ok", TRAIN " --token 'a b' --init cat", 1, "'a b'",
     "no whitespace"},
    {"train", "train_init_several_tokens", mk_train, "ok", TRAIN " --token '<x>' --init 'golden retriever'", 1,
     "'golden retriever'", "must be a single token"},
    {"train", "train_init_empty", mk_train, "ok", TRAIN " --token '<x>' --init ''", 1, "initializer", "no tokens"},
    {"train", "train_nan_loss", mk_train, "nan", TRAIN_ARGS " --model @D/ck.safetensors -o @D/out/emb --token '<x>' --init cat", 1,
     "@D/out/emb", "the loss is NaN"},
    {"train", "aug_train_class_without_usable_images", mk_data, "allbroken",
     AUG_OUT " --method textinv --train --train-steps 1", 1, "@D/data/b", "no usable images"},
    {"train", "aug_train_init_several_tokens", mk_data, "ok",
     AUG_OUT " --method textinv --train --train-steps 1 --train-init 'golden retriever'", 1, "'golden retriever'",
     "must be a single token"},
    {"train", "aug_train_nan_loss", mk_train, "nandata",
     "augment @D/data --vocab " VOCAB " --size 64 --steps 2 -q --model @D/ck.safetensors --out @D/out/aug "
     "--method textinv --train --train-steps 2 --train-batch 1 --train-eval-samples 0", 1, "class", "the loss is NaN"},
    {"arguments", "aug_train_with_embeddings", mk_data, "ok", AUG_OUT " --method textinv --train --embeddings @D",
     2, "--embeddings", "exclude each other"},
    {"arguments", "aug_train_not_textinv", mk_data, "ok", AUG_OUT " --method prompt --train", 2, "--train",
     "needs --method textinv"},
    {"arguments", "aug_train_lr_negative", mk_data, "ok", AUG_OUT " --method textinv --train --train-lr -1", 2,
     "--train-lr", "'-1'"},
    {"arguments", "train_lr_zero", mk_train, "ok", TRAIN " --token '<x>' --init cat --lr 0", 2, "--lr",
     "'0' is not a number in [1e-30"},
    {"arguments", "train_lr_nan", mk_train, "ok", TRAIN " --token '<x>' --init cat --lr nan", 2, "--lr",
     "'nan' is not a number"},
    {"arguments", "train_size_not_multiple_of_8", mk_train, "ok", TRAIN " --token '<x>' --init cat --size 100", 2,
     "--size", "not a multiple of 8"},
    {"arguments", "train_steps_zero", mk_train, "ok", TRAIN " --token '<x>' --init cat --steps 0", 2, "--steps", "'0'"},
    {"arguments", "train_vectors_76", mk_train, "ok", TRAIN " --token '<x>' --init cat --num-vectors 76", 2,
     "--num-vectors", "'76'"},
    {"arguments", "train_missing_init", mk_train, "ok", TRAIN " --token '<x>'", 2, "--init", "required"},
    {"arguments", "train_bad_prediction", mk_train, "ok", TRAIN " --token '<x>' --init cat --prediction x0", 2,
     "--prediction", "one of epsilon|v (got 'x0')"},

    /* output paths */
    {"output", "train_out_inside_images", mk_train, "ok",
     "train-embedding --model " TINY "diffusers --vocab " VOCAB " --images @D/imgs --token '<x>' --init cat "
     "-o @D/imgs/emb", 2, "-o", "inside the image folder"},
    {"output", "train_out_missing_parent", mk_train, "ok", TRAIN_ARGS " --model " TINY "diffusers -o @D/out/emb/deeper --token '<x>' --init cat",
     1, "@D/out/emb/deeper", "No such file"},
    {"output", "out_missing_folder", NULL, NULL, GEN_M " -o @D/out/none/x.png", 1, "@D/out/none/x.png",
     "No such file"},
    {"output", "out_not_png", NULL, NULL, GEN_M " -o @D/out/x.jpg", 2, "@D/out/x.jpg", "must name a .png"},
    {"output", "preview_unwritable", mk_data, "ok", AUG_OUT " --method prompt --preview @D/out/no/grid.png",
     1, "@D/out/no/grid.png", "No such file"},
    {"output", "out_is_init", mk_png, "in.png", GEN_M " --init @D/in.png -o @D/in.png", 2, "--init",
     "must not overwrite"},
    {"output", "out_is_folder", mk_dir, "d.png", GEN_M " -o @D/d.png", 1, "@D/d.png", "is a folder"},
    {"output", "out_name_too_long", NULL, NULL,
     GEN_M " -o @D/out/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.png", 1, "@D/out/xxxx",
     "too long"},
    {"output", "latents_missing_folder", NULL, NULL, GEN_OUT " --save-latents @D/out/none/l.safetensors", 1,
     "@D/out/none/l.safetensors", "No such file"},
    {"output", "aug_out_is_file", mk_data, "file", AUG " --model " TINY "diffusers --method prompt --out @D/plain.txt",
     1, "@D/plain.txt", "Not a directory"},
    {"output", "aug_out_missing_parent", mk_data, "ok", AUG_OUT "/deeper --method prompt", 1,
     "@D/out/aug", "No such file"},
    {"output", "aug_out_is_dataset", mk_data, "ok", AUG " --model " TINY "diffusers --method prompt --out @D/data",
     2, "--out", "is inside the dataset"},
};

/* ---------------------------------------------------------------- checks */

/* in with every @D replaced by dir. */
static void expand(const char *in, const char *dir, char *out, size_t cap) {
    size_t o = 0, dl = strlen(dir);
    for (const char *p = in; *p && o + 1 < cap; p++) {
        if (p[0] == '@' && p[1] == 'D' && o + dl < cap) {
            memcpy(out + o, dir, dl);
            o += dl;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* No file or folder under path has ".tmp." in its name. */
static void no_temps(const char *path, const char *what) {
    DIR *d = opendir(path);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        ck_assert_msg(!strstr(e->d_name, ".tmp."), "%s: temp file %s/%s left", what, path, e->d_name);
        char sub[2048];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) no_temps(sub, what);
    }
    closedir(d);
}

/* Names of the entries of path (empty string if none). */
static void entries(const char *path, char *buf, size_t cap) {
    buf[0] = '\0';
    DIR *d = opendir(path);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s ", e->d_name);
    closedir(d);
}

static void run_case(const bad_case *c) {
    const char *dir = test_tmpdir();
    char cmd[8192], culprit[1024], out[1024], left[1024];
    snprintf(out, sizeof out, "%s/out", dir);
    ck_assert_int_eq(mkdir(out, 0755), 0);
    if (c->make) c->make(dir, c->arg);
    expand(c->cmd, dir, cmd, sizeof cmd);
    expand(c->culprit, dir, culprit, sizeof culprit);
    const char *reason = c->reason ? c->reason : st_case_named(c->arg)->expect;
    const cli_result *r = cli_run("%s", cmd);
    ck_assert_msg(r->code == c->code, "[%s] %s: exit %d, want %d; stderr: %s", c->cat, c->name, r->code,
                  c->code, r->err);
    ck_assert_msg(strstr(r->err, culprit), "[%s] %s: stderr does not name '%s': %s", c->cat, c->name,
                  culprit, r->err);
    ck_assert_msg(strstr(r->err, reason), "[%s] %s: stderr does not give the reason '%s': %s", c->cat,
                  c->name, reason, r->err);
    /* sdc's own messages only: never a sanitizer or valgrind report */
    ck_assert_msg(!strstr(r->err, "Sanitizer") && !strstr(r->err, "runtime error") && !strstr(r->err, "=="),
                  "[%s] %s: %s", c->cat, c->name, r->err);
    entries(out, left, sizeof left);
    ck_assert_msg(!left[0], "[%s] %s: written to the output folder: %s", c->cat, c->name, left);
    no_temps(dir, c->name);
}

static const size_t n_cases = sizeof cases / sizeof *cases;

START_TEST(bad_input_case) {
    run_case(&cases[_i]);
}
END_TEST

/* Every malformed file of st_malformed.c as --model: refused with its own
 * reason, nothing written. */
START_TEST(every_malformed_safetensors_as_model) {
    for (size_t i = 0; i < st_n_cases; i++) {
        char cmd[512], culprit[256];
        snprintf(cmd, sizeof cmd, GEN " -o @D/out/x.png --model @D/%s.safetensors", st_cases[i].name);
        snprintf(culprit, sizeof culprit, "@D/%s.safetensors", st_cases[i].name);
        const bad_case c = {"safetensors", st_cases[i].name, mk_st, st_cases[i].name, cmd, 1, culprit, NULL};
        run_case(&c);
    }
}
END_TEST

/* A corrupt image in the dataset is the one bad input that does not stop the
 * run: its item is recorded as failed (naming the file), the others are
 * generated, the exit status is 1, and only listed files exist. */
START_TEST(corrupt_dataset_image_is_recorded) {
    const char *dir = test_tmpdir();
    mk_data(dir, "corrupt");
    char cmd[4096], path[1200];
    snprintf(path, sizeof path, "%s/out", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    expand(AUG_OUT " --method boomerang", dir, cmd, sizeof cmd);
    const cli_result *r = cli_run("%s", cmd);
    ck_assert_msg(r->code == 1 && strstr(r->err, "1 items failed"), "%d %s", r->code, r->err);
    snprintf(path, sizeof path, "%s/out/aug/manifest.jsonl", dir);
    size_t n;
    char *buf = (char *)tu_slurp_ok(path, &n);
    int ok = 0, failed = 0;
    for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        ck_assert_msg(j != NULL, "bad line %s", line);
        const char *st = cJSON_GetObjectItem(j, "status")->valuestring;
        const char *o = cJSON_GetObjectItem(j, "output")->valuestring;
        snprintf(path, sizeof path, "%s/out/aug/%s", dir, o);
        if (!strcmp(st, "ok")) {
            ok++;
            ck_assert_msg(access(path, F_OK) == 0, "%s listed, missing", o);
        } else {
            failed++;
            const char *e = cJSON_GetObjectItem(j, "error")->valuestring;
            ck_assert_msg(strstr(e, "broken.png") && access(path, F_OK) != 0, "%s: %s", o, e);
        }
        cJSON_Delete(j);
    }
    free(buf);
    ck_assert_int_eq(ok, 2);
    ck_assert_int_eq(failed, 1);
    no_temps(dir, "corrupt_dataset_image");
}
END_TEST

Suite *suite_bad_inputs(void) {
    Suite *s = suite_create("bad_inputs");
    TCase *tc = tcase_create("bad_inputs");
    tcase_set_timeout(tc, 600); /* under valgrind too */
    tcase_add_loop_test(tc, bad_input_case, 0, (int)n_cases);
    tcase_add_test(tc, every_malformed_safetensors_as_model);
    tcase_add_test(tc, corrupt_dataset_image_is_recorded);
    suite_add_tcase(s, tc);
    return s;
}
