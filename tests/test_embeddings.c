/* test_embeddings.c — textual-inversion loading from files the test writes
 * with sdc_safetensors_write (A1111 emb_params / string_to_param, diffusers
 * single and multi-token, a mixed directory), refusals (truncated, wrong
 * width, NaN, empty, pickle, duplicates, SDXL), and triggers in prompt plans. */
#include "suites.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/pipeline/embeddings.h"
#include "../src/pipeline/prompt.h"
#include "sdc.h"

#define GZ_PATH "weights/bpe_simple_vocab_16e6.txt.gz"
#define D 8
#define BOS 49406
#define EOS 49407

/* Value j of vector i of a test embedding with seed k. */
static float val(int k, int i, int j) { return (float)k + 0.125f * (float)i + 0.0078125f * (float)j; }

/* Writes {name[t]: [n[t], d] (rank 1 when n[t] < 0)} of dtype to dir/file. */
static char *write_emb(const char *dir, const char *file, sdc_dtype dt, int count, const char *const *names,
                       const int *n, int d, float poison) {
    static char path[4][512];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 512, "%s/%s", dir, file);
    sdc_st_write_item items[8];
    sdc_tensor *ts[8];
    sdc_err err = {0};
    for (int t = 0; t < count; t++) {
        int rows = n[t] < 0 ? 1 : n[t];
        int64_t shape[2] = {rows, d};
        int64_t shape1[1] = {d};
        ts[t] = n[t] < 0 ? sdc_tensor_new(dt, 1, shape1, &err) : sdc_tensor_new(dt, 2, shape, &err);
        ck_assert_msg(ts[t] != NULL, "%s", err.msg);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < d; j++) {
                float v = (i == 0 && j == 1 && poison != 0) ? poison : val(t + 1, i, j);
                size_t at = (size_t)i * (size_t)d + (size_t)j;
                if (dt == SDC_F32) ((float *)ts[t]->data)[at] = v;
                else if (dt == SDC_F16) ((uint16_t *)ts[t]->data)[at] = sdc_f32_to_f16(v);
                else if (dt == SDC_BF16) ((uint16_t *)ts[t]->data)[at] = sdc_f32_to_bf16(v);
                else ((int32_t *)ts[t]->data)[at] = (int32_t)v;
            }
        items[t] = (sdc_st_write_item){names[t], ts[t]};
    }
    ck_assert_msg(sdc_safetensors_write(p, items, (size_t)count, NULL, 0, &err) == SDC_OK, "%s", err.msg);
    for (int t = 0; t < count; t++) sdc_tensor_free(ts[t]);
    return p;
}

static char *write_one(const char *dir, const char *file, const char *name, int n, sdc_dtype dt) {
    return write_emb(dir, file, dt, 1, &name, &n, D, 0);
}

static sdc_embedding_set *load_ok(const char *path, int dim) {
    sdc_embedding_set *s;
    sdc_err err = {0};
    ck_assert_msg(sdc_embeddings_load(&s, path, dim, &err) == SDC_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void load_fails(const char *path, int dim, sdc_status code, const char *n1, const char *n2) {
    sdc_embedding_set *s = (void *)1;
    sdc_err err = {0};
    sdc_status st = sdc_embeddings_load(&s, path, dim, &err);
    ck_assert_msg(st == code, "%s: status %s, want %s (%s)", path, sdc_status_name(st), sdc_status_name(code), err.msg);
    ck_assert_ptr_null(s);
    ck_assert_msg(!n1 || strstr(err.msg, n1), "'%s' lacks '%s'", err.msg, n1);
    ck_assert_msg(!n2 || strstr(err.msg, n2), "'%s' lacks '%s'", err.msg, n2);
}

START_TEST(test_formats) {
    const char *dir = test_tmpdir();
    /* A1111 emb_params: trigger = file stem, values exact in F32 */
    sdc_embedding_set *s = load_ok(write_one(dir, "myemb.safetensors", "emb_params", 2, SDC_F32), D);
    ck_assert_uint_eq(sdc_embeddings_count(s), 1);
    int n;
    const float *v = sdc_embeddings_find(s, "myemb", &n);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(n, 2);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < D; j++) ck_assert(v[i * D + j] == val(1, i, j));
    ck_assert_ptr_null(sdc_embeddings_find(s, "MyEmb", &n)); /* case-sensitive */
    ck_assert_int_eq(n, 0);
    const char *word, *file;
    size_t row, rows;
    int dim;
    ck_assert(sdc_embeddings_at(s, 0, &word, &row, &n, &file));
    ck_assert_str_eq(word, "myemb"); ck_assert_uint_eq(row, 0); ck_assert_int_eq(n, 2);
    ck_assert_ptr_nonnull(strstr(file, "myemb.safetensors"));
    ck_assert(!sdc_embeddings_at(s, 1, &word, &row, &n, &file));
    ck_assert_ptr_eq(sdc_embeddings_table(s, &rows, &dim), v);
    ck_assert_uint_eq(rows, 2); ck_assert_int_eq(dim, D);
    sdc_embeddings_free(s);
    /* string_to_param.* in F16 (values are exact in F16) */
    s = load_ok(write_one(dir, "style.v2.safetensors", "string_to_param.*", 3, SDC_F16), D);
    v = sdc_embeddings_find(s, "style.v2", &n);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(n, 3);
    ck_assert(v[2 * D + 5] == val(1, 2, 5));
    sdc_embeddings_free(s);
    /* diffusers single token, rank 1, BF16 */
    s = load_ok(write_one(dir, "learned_embeds.safetensors", "<cat-toy>", -1, SDC_BF16), D);
    v = sdc_embeddings_find(s, "<cat-toy>", &n);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(n, 1);
    ck_assert(v[3] == sdc_bf16_to_f32(sdc_f32_to_bf16(val(1, 0, 3))));
    ck_assert_ptr_null(sdc_embeddings_find(s, "learned_embeds", &n));
    sdc_embeddings_free(s);
    /* diffusers multi-token file: each tensor is a trigger */
    const char *names[] = {"<a>", "<b>"};
    const int ns[] = {1, 4};
    s = load_ok(write_emb(dir, "multi.safetensors", SDC_F32, 2, names, ns, D, 0), D);
    ck_assert_uint_eq(sdc_embeddings_count(s), 2);
    v = sdc_embeddings_find(s, "<b>", &n);
    ck_assert_int_eq(n, 4);
    ck_assert(v[3 * D + 7] == val(2, 3, 7));
    sdc_embeddings_free(s);
    /* full SD 1.x width */
    const char *one = "emb_params";
    int n1 = 1;
    s = load_ok(write_emb(dir, "wide.safetensors", SDC_F32, 1, &one, &n1, 768, 0), 768);
    sdc_embeddings_free(s);
}
END_TEST

START_TEST(test_directory) {
    const char *dir = test_tmpdir();
    write_one(dir, "zeta.safetensors", "emb_params", 2, SDC_F16);
    write_one(dir, "alpha.SAFETENSORS", "string_to_param.*", 1, SDC_F32);
    const char *names[] = {"<x>", "<y>"};
    const int ns[] = {-1, 3};
    write_emb(dir, "m.safetensors", SDC_BF16, 2, names, ns, D, 0);
    /* skipped: hidden files (even corrupt), other extensions, sub-directories */
    char path[512];
    snprintf(path, sizeof path, "%s/.hidden.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fputs("garbage", f), fclose(f);
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    f = fopen(path, "wb");
    fputs("hello", f), fclose(f);
    snprintf(path, sizeof path, "%s/sub.safetensors", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    sdc_embedding_set *s = load_ok(dir, D);
    ck_assert_uint_eq(sdc_embeddings_count(s), 4);
    const char *want[] = {"alpha", "<x>", "<y>", "zeta"}; /* sorted by file name */
    size_t want_row[] = {0, 1, 2, 5};
    for (size_t i = 0; i < 4; i++) {
        const char *w;
        size_t row;
        ck_assert(sdc_embeddings_at(s, i, &w, &row, NULL, NULL));
        ck_assert_str_eq(w, want[i]);
        ck_assert_uint_eq(row, want_row[i]);
    }
    size_t rows;
    sdc_embeddings_table(s, &rows, NULL);
    ck_assert_uint_eq(rows, 7);
    sdc_embeddings_free(s);
    /* the same trigger in two files names both */
    const char *dup = test_tmpdir();
    write_one(dup, "a.safetensors", "<t>", 1, SDC_F32);
    write_one(dup, "b.safetensors", "<t>", 1, SDC_F32);
    load_fails(dup, D, SDC_ERR_FORMAT, "a.safetensors", "b.safetensors");
    /* an A1111 file whose stem equals a diffusers token */
    const char *dup2 = test_tmpdir();
    write_one(dup2, "a.safetensors", "tok", 1, SDC_F32);
    write_one(dup2, "tok.safetensors", "emb_params", 1, SDC_F32);
    load_fails(dup2, D, SDC_ERR_FORMAT, "'tok' is defined twice", NULL);
    /* a pickle file in a directory refuses the directory */
    const char *pk = test_tmpdir();
    write_one(pk, "good.safetensors", "emb_params", 1, SDC_F32);
    snprintf(path, sizeof path, "%s/old.pt", pk);
    f = fopen(path, "wb");
    fputs("\x80\x02}q\x00.", f), fclose(f);
    load_fails(pk, D, SDC_ERR_UNSUPPORTED, "old.pt", "arbitrary code");
    /* a directory without embeddings */
    load_fails(test_tmpdir(), D, SDC_ERR_FORMAT, "no .safetensors", NULL);
}
END_TEST

START_TEST(test_refusals) {
    const char *dir = test_tmpdir();
    char path[512];
    /* truncated file */
    char *p = write_one(dir, "cut.safetensors", "emb_params", 2, SDC_F32);
    ck_assert_int_eq(truncate(p, 60), 0);
    load_fails(p, D, SDC_ERR_FORMAT, "cut.safetensors", NULL);
    /* an empty file, and one with no tensors */
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fclose(f);
    load_fails(path, D, SDC_ERR_FORMAT, "empty.safetensors", NULL);
    sdc_err err = {0};
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    ck_assert_int_eq(sdc_safetensors_write(path, NULL, 0, NULL, 0, &err), SDC_OK);
    load_fails(path, D, SDC_ERR_FORMAT, "none.safetensors", "no tensors");
    /* SD 2.x width against SD 1.x: names the file and both sizes */
    const char *one = "emb_params";
    int n1 = 2;
    p = write_emb(dir, "sd2.safetensors", SDC_F32, 1, &one, &n1, 1024, 0);
    load_fails(p, 768, SDC_ERR_SHAPE, "sd2.safetensors", "1024 values, but this text encoder uses 768");
    load_fails(write_one(dir, "w.safetensors", "emb_params", 1, SDC_F32), 16, SDC_ERR_SHAPE, "8 values", "16");
    /* NaN and Inf */
    int n2 = 2;
    load_fails(write_emb(dir, "nan.safetensors", SDC_F32, 1, &one, &n2, D, NAN), D, SDC_ERR_NUMERIC, "nan.safetensors",
               "NaN");
    load_fails(write_emb(dir, "inf.safetensors", SDC_F16, 1, &one, &n2, D, INFINITY), D, SDC_ERR_NUMERIC, "Inf",
               NULL);
    /* vector counts 0 and 76 */
    load_fails(write_one(dir, "zero.safetensors", "emb_params", 0, SDC_F32), D, SDC_ERR_SHAPE, "0 vectors", NULL);
    load_fails(write_one(dir, "many.safetensors", "emb_params", 76, SDC_F32), D, SDC_ERR_SHAPE, "76 vectors", NULL);
    sdc_embedding_set *s = load_ok(write_one(dir, "max.safetensors", "emb_params", 75, SDC_F32), D);
    sdc_embeddings_free(s);
    /* wrong dtype and rank */
    load_fails(write_one(dir, "int.safetensors", "emb_params", 1, SDC_I32), D, SDC_ERR_UNSUPPORTED, "I32", NULL);
    /* SDXL pair, and two A1111 tensors in one file */
    const char *xl[] = {"clip_g", "clip_l"};
    const int nx[] = {1, 1};
    load_fails(write_emb(dir, "xl.safetensors", SDC_F32, 2, xl, nx, D, 0), D, SDC_ERR_UNSUPPORTED, "SDXL", NULL);
    const char *two[] = {"emb_params", "string_to_param.*"};
    load_fails(write_emb(dir, "two.safetensors", SDC_F32, 2, two, nx, D, 0), D, SDC_ERR_FORMAT, "several", NULL);
    /* pickle names, whatever their content; the message says how to convert */
    const char *pickles[] = {"x.pt", "x.bin", "x.ckpt", "X.PTH"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, pickles[i]);
        f = fopen(path, "wb");
        fputs("\x80\x02}q\x00.", f), fclose(f);
        load_fails(path, D, SDC_ERR_UNSUPPORTED, pickles[i], "safetensors.torch");
    }
    /* arguments */
    load_fails("/nonexistent/emb.safetensors", D, SDC_ERR_IO, "/nonexistent", NULL);
    load_fails(NULL, D, SDC_ERR_ARG, NULL, NULL);
    load_fails(dir, 0, SDC_ERR_ARG, "dimension", NULL);
    ck_assert_int_eq(sdc_embeddings_load(NULL, dir, D, &err), SDC_ERR_ARG);
    ck_assert_uint_eq(sdc_embeddings_count(NULL), 0);
    ck_assert_ptr_null(sdc_embeddings_find(NULL, "x", NULL));
    sdc_embeddings_free(NULL);
}
END_TEST

/* ---------------------------------------------------------------- prompts */

static int32_t id_of(const sdc_tokenizer *t, const char *word) {
    int32_t ids[4];
    size_t n;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_tokenize(t, word, strlen(word), ids, 4, &n, &err), SDC_OK);
    ck_assert_msg(n == 1, "'%s' is %zu tokens", word, n);
    return ids[0];
}

static void plan(const sdc_tokenizer *t, const char *prompt, sdc_prompt_syntax syn, const sdc_embedding_set *s,
                 sdc_cond_plan *p) {
    sdc_err err = {0};
    ck_assert_msg(sdc_prompt_plan(t, prompt, syn, s, p, &err) == SDC_OK, "%s: %s", prompt, err.msg);
}

/* ids[1..] and weights[1..] of chunk c equal want (then EOS padding). */
static void expect(const sdc_cond_plan *p, int c, const int32_t *ids, const float *w, int n) {
    ck_assert_int_lt(c, p->n_chunks);
    const int32_t *g = p->ids + c * 77;
    const float *gw = p->weights + c * 77;
    ck_assert_int_eq(g[0], BOS);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(g[1 + i] == ids[i], "chunk %d slot %d: id %d, want %d", c, 1 + i, g[1 + i], ids[i]);
        ck_assert_msg(gw[1 + i] == w[i], "chunk %d slot %d: weight %g, want %g", c, 1 + i, gw[1 + i], w[i]);
    }
    for (int i = 1 + n; i < 77; i++) { ck_assert_int_eq(g[i], EOS); ck_assert(gw[i] == 1.0f); }
}

START_TEST(test_prompt_triggers) {
    sdc_err err = {0};
    sdc_tokenizer *t = sdc_tokenizer_load_bpe_gz(GZ_PATH, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    const char *dir = test_tmpdir();
    write_one(dir, "myemb.safetensors", "emb_params", 2, SDC_F32);    /* rows 1, 2 */
    write_one(dir, "cat.safetensors", "<cat-toy>", -1, SDC_F32);      /* row 0 */
    sdc_embedding_set *s = load_ok(dir, D);
    const int32_t E = SDC_EMB_ID_BASE, a = id_of(t, "a"), cat = id_of(t, "cat"), comma = id_of(t, ",");
    const int32_t s_ = id_of(t, "s");
    sdc_cond_plan p;

    plan(t, "a (myemb:1.5) <cat-toy> cat", SDC_PROMPT_A1111, s, &p);
    expect(&p, 0, (int32_t[]){a, E + 1, E + 2, E + 0, cat}, (float[]){1, 1.5f, 1.5f, 1, 1}, 5);
    sdc_cond_plan_free(&p);
    /* plain: no emphasis, same placeholders */
    plan(t, "a myemb, <cat-toy>", SDC_PROMPT_PLAIN, s, &p);
    expect(&p, 0, (int32_t[]){a, E + 1, E + 2, comma, E}, (float[]){1, 1, 1, 1, 1}, 5);
    ck_assert(!p.truncated);
    sdc_cond_plan_free(&p);
    /* whole words only for word-character edges; "<...>" tokens anywhere; case-sensitive */
    plan(t, "myembs MyEmb xmyemb", SDC_PROMPT_A1111, s, &p);
    for (int i = 1; i < 77; i++) ck_assert_int_lt(p.ids[i], E);
    sdc_cond_plan_free(&p);
    plan(t, "a<cat-toy>s", SDC_PROMPT_A1111, s, &p);
    ck_assert_int_eq(p.ids[1], a); ck_assert_int_eq(p.ids[2], E); ck_assert_int_eq(p.ids[3], s_);
    sdc_cond_plan_free(&p);
    plan(t, "[myemb]", SDC_PROMPT_A1111, s, &p);
    expect(&p, 0, (int32_t[]){E + 1, E + 2}, (float[]){(float)(1 / 1.1), (float)(1 / 1.1)}, 2);
    sdc_cond_plan_free(&p);
    /* a multi-vector embedding that does not fit starts the next chunk */
    char buf[1024] = "";
    for (int k = 0; k < 74; k++) strcat(buf, "a ");
    strcat(buf, "myemb");
    plan(t, buf, SDC_PROMPT_A1111, s, &p);
    ck_assert_int_eq(p.n_chunks, 2);
    ck_assert_int_eq(p.ids[74], a); ck_assert_int_eq(p.ids[75], EOS);
    expect(&p, 1, (int32_t[]){E + 1, E + 2}, (float[]){1, 1}, 2);
    sdc_cond_plan_free(&p);
    /* plain: truncation at 75 cuts through the embedding, as diffusers */
    plan(t, buf, SDC_PROMPT_PLAIN, s, &p);
    ck_assert_int_eq(p.n_chunks, 1);
    ck_assert_int_eq(p.ids[74], a); ck_assert_int_eq(p.ids[75], E + 1); ck_assert_int_eq(p.ids[76], EOS);
    ck_assert(p.truncated);
    sdc_cond_plan_free(&p);
    /* a trigger followed by a comma backtrack: the embedding moves as tokens */
    buf[0] = '\0';
    for (int k = 0; k < 70; k++) strcat(buf, "a ");
    strcat(buf, ", myemb a a a a");
    plan(t, buf, SDC_PROMPT_A1111, s, &p);
    ck_assert_int_eq(p.n_chunks, 2);
    ck_assert_int_eq(p.ids[71], comma); ck_assert_int_eq(p.ids[72], EOS);
    expect(&p, 1, (int32_t[]){E + 1, E + 2, a, a, a, a}, (float[]){1, 1, 1, 1, 1, 1}, 6);
    sdc_cond_plan_free(&p);
    /* without embeddings the trigger is ordinary text */
    plan(t, "myemb", SDC_PROMPT_A1111, NULL, &p);
    ck_assert_int_lt(p.ids[1], E);
    sdc_cond_plan_free(&p);
    sdc_embeddings_free(s);
    sdc_tokenizer_free(t);
}
END_TEST

Suite *suite_embeddings(void) {
    Suite *s = suite_create("embeddings");
    TCase *tc = tcase_create("embeddings");
    tcase_add_test(tc, test_formats);
    tcase_add_test(tc, test_directory);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_prompt_triggers);
    suite_add_tcase(s, tc);
    return s;
}
