/* test_prompt.c — A1111's emphasis parser on its own (the wiki's examples,
 * unbalanced brackets, escapes, BREAK, bad weights, hostile nesting), the
 * conditioning plan (plain = diffusers' ids, chunking, comma backtrack,
 * padding, 1 MB prompts) and the mean-restoring weighting. */
#include "suites.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/pipeline/prompt.h"
#include "sdc.h"

#define GZ_PATH "weights/bpe_simple_vocab_16e6.txt.gz"
#define BOS 49406
#define EOS 49407

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static sdc_tokenizer *load_tok(void) {
    sdc_err err = {0};
    sdc_tokenizer *t = sdc_tokenizer_load_bpe_gz(GZ_PATH, &err);
    ck_assert_msg(t != NULL, "%s (run `make setup` to fetch it)", err.msg);
    return t;
}

/* The single id of a one-token word ("a" -> a</w>). */
static int32_t id_of(const sdc_tokenizer *t, const char *word) {
    int32_t ids[4];
    size_t n;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_tokenize(t, word, strlen(word), ids, 4, &n, &err), SDC_OK);
    ck_assert_msg(n == 1, "'%s' is %zu tokens", word, n);
    return ids[0];
}

/* ---------------------------------------------------------------- parser */

typedef struct want_piece {
    const char *text; /* NULL: a BREAK marker */
    double w;
} want_piece;

#define BRK {NULL, -1}
#define R (1 / 1.1)

static void check_parse(const char *prompt, const want_piece *w, size_t nw) {
    sdc_prompt_piece *p;
    size_t n;
    sdc_err err = {0};
    ck_assert_msg(sdc_prompt_parse_a1111(prompt, &p, &n, &err) == SDC_OK, "%s: %s", prompt, err.msg);
    ck_assert_msg(n == nw, "'%s': %zu pieces, want %zu (first '%s')", prompt, n, nw, n ? p[0].text : "");
    for (size_t i = 0; i < n; i++) {
        if (!w[i].text) {
            ck_assert_msg(p[i].is_break, "'%s': piece %zu should be BREAK", prompt, i);
            continue;
        }
        ck_assert_msg(!p[i].is_break && p[i].len == strlen(p[i].text) && strcmp(p[i].text, w[i].text) == 0,
                      "'%s': piece %zu is '%s', want '%s'", prompt, i, p[i].text, w[i].text);
        /* Exact: the same multiplications in the same order as A1111. */
        ck_assert_msg(p[i].weight == w[i].w, "'%s': piece %zu ('%s') weight %.17g, want %.17g", prompt, i,
                      p[i].text, p[i].weight, w[i].w);
    }
    free(p);
}

#define PARSE(prompt, ...)                                                           \
    do {                                                                             \
        const want_piece w_[] = {__VA_ARGS__};                                             \
        check_parse(prompt, w_, sizeof w_ / sizeof *w_);                             \
    } while (0)

static void parse_fails(const char *prompt, const char *needle) {
    sdc_prompt_piece *p = (void *)1;
    size_t n = 7;
    sdc_err err = {0};
    ck_assert_msg(sdc_prompt_parse_a1111(prompt, &p, &n, &err) == SDC_ERR_ARG, "'%.40s' should fail", prompt);
    ck_assert_ptr_null(p);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(err.msg, needle), "'%s' lacks '%s'", err.msg, needle);
}

START_TEST(test_parse_wiki) {
    /* The documented examples of parse_prompt_attention, with its printed
     * (shortest round-trip) doubles: the weights must match bit for bit. */
    PARSE("normal text", {"normal text", 1.0});
    PARSE("an (important) word", {"an ", 1.0}, {"important", 1.1}, {" word", 1.0});
    PARSE("(unbalanced", {"unbalanced", 1.1});
    PARSE("\\(literal\\]", {"(literal]", 1.0});
    PARSE("(unnecessary)(parens)", {"unnecessaryparens", 1.1});
    PARSE("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", {"a ", 1.0}, {"house", 1.5730000000000004},
          {" ", 1.1}, {"on", 1.0}, {" a ", 1.1}, {"hill", 0.55}, {", sun, ", 1.1}, {"sky", 1.4641000000000006},
          {".", 1.1});
    PARSE("a (word)", {"a ", 1}, {"word", 1.1});
    PARSE("a ((word))", {"a ", 1}, {"word", 1.0 * 1.1 * 1.1});
    PARSE("a [word]", {"a ", 1}, {"word", R});
    PARSE("a (word:1.5)", {"a ", 1}, {"word", 1.5});
    PARSE("a (word:0.25)", {"a ", 1}, {"word", 0.25});
    PARSE("a \\(word\\)", {"a (word)", 1});
    PARSE("(a (b:1.5) c)", {"a ", 1.1}, {"b", 1.5 * 1.1}, {" c", 1.1});
    PARSE("[[x]]", {"x", 1.0 * R * R});
    PARSE("((a), b)", {"a", 1.1 * 1.1}, {", b", 1.1});
    PARSE("a [b] (c:1.2) ((d))", {"a ", 1}, {"b", R}, {" ", 1}, {"c", 1.2}, {" ", 1}, {"d", 1.1 * 1.1});
    PARSE("plain text", {"plain text", 1});
    PARSE("([a])", {"a", R * 1.1});
    PARSE("[(a)]", {"a", 1.1 * R});
    PARSE("(x: 1.5 )", {"x", 1.5});
    PARSE("(x:-1)", {"x", -1});
    PARSE("(x:+.5)", {"x", 0.5});
    PARSE("(x:0)", {"x", 0});
    /* weight 1.0 merges with its neighbours, changing what is tokenized */
    PARSE("a (x:1.) b", {"a x b", 1});
    PARSE("(a)(b)", {"ab", 1.1});
}
END_TEST

START_TEST(test_parse_edges) {
    PARSE("", {"", 1});
    PARSE("()", {"", 1});
    PARSE("[]", {"", 1});
    PARSE("(:1.2)", {"", 1});
    PARSE("a ()", {"a ", 1});
    /* the weight is not a number: ":abc" is text, the brackets still x1.1 */
    PARSE("(x:abc)", {"x:abc", 1.1});
    /* no "(" open: the weight-close is text */
    PARSE("x:1.5)", {"x:1.5)", 1});
    PARSE("a:b", {"a:b", 1});
    PARSE("[x:1.5]", {"x:1.5", R});
    /* unbalanced */
    PARSE("a (b", {"a ", 1}, {"b", 1.1});
    PARSE("a b)", {"a b)", 1});
    PARSE("(a))", {"a", 1.1}, {")", 1});
    PARSE("a [b", {"a ", 1}, {"b", R});
    PARSE("b]", {"b]", 1});
    PARSE("((a)", {"a", 1.1 * 1.1});
    PARSE("(a [b) c]", {"a ", 1.1}, {"b", 1.1 * R}, {" c", R});
    PARSE("(a [b", {"a ", 1.1}, {"b", 1.1 * R});
    /* escapes */
    PARSE("\\[x\\]", {"[x]", 1});
    PARSE("a\\\\b", {"a\\b", 1});
    PARSE("a\\b", {"ab", 1}); /* a lone backslash is dropped */
    PARSE("(\\))", {")", 1.1});
    PARSE("\\", {"", 1});
    /* BREAK: uppercase, a whole word, whitespace around it dropped */
    PARSE("a BREAK b", {"a", 1}, BRK, {"b", 1});
    PARSE("a break b", {"a break b", 1});
    PARSE("aBREAK b", {"aBREAK b", 1});
    PARSE("a BREAKb", {"a BREAKb", 1});
    PARSE("a BREAK_x", {"a BREAK_x", 1});
    PARSE("a BREAK, b", {"a", 1}, BRK, {", b", 1});
    PARSE("BREAK a", {"", 1}, BRK, {"a", 1});
    PARSE("a BREAK", {"a", 1}, BRK, {"", 1});
    PARSE("a BREAK BREAK b", {"a", 1}, BRK, {"", 1}, BRK, {"b", 1});
    PARSE("(a) BREAK (b)", {"a", 1.1}, {"", 1}, BRK, {"", 1}, {"b", 1.1});
    /* deviation: BREAK inside brackets still breaks, and is not weighted */
    PARSE("(a BREAK b)", {"a", 1.1}, BRK, {"b", 1.1});
    /* non-ASCII next to BREAK counts as a word character */
    PARSE("\xc3\xa9" "BREAK", {"\xc3\xa9" "BREAK", 1});
    /* bad numbers are errors, as Python's float() raises in A1111 */
    parse_fails("(x:1.2.3)", "not a number");
    parse_fails("(x:.)", "not a number");
    parse_fails("(x:99999999999999999999999999999999999999999999999)", "overflows");
    parse_fails("((x:10000000000000000000000):100000000000000000000)", "overflows");
    sdc_prompt_piece *p;
    size_t n;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_prompt_parse_a1111(NULL, &p, &n, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_prompt_parse_a1111("x", NULL, &n, &err), SDC_ERR_ARG);
}
END_TEST

static char *repeat(const char *unit, size_t times, const char *mid, const char *tail) {
    size_t u = strlen(unit), m = mid ? strlen(mid) : 0, t = tail ? strlen(tail) : 0;
    char *s = malloc(u * times * 2 + m + t + 1);
    ck_assert_ptr_nonnull(s);
    char *q = s;
    for (size_t i = 0; i < times; i++) memcpy(q, unit, u), q += u;
    if (m) memcpy(q, mid, m), q += m;
    if (tail)
        for (size_t i = 0; i < times; i++) memcpy(q, tail, t), q += t;
    *q = '\0';
    return s;
}

START_TEST(test_parse_hostile) {
    /* 100k nested parentheses: a clear error, no recursion */
    char *s = repeat("(", 100000, "x", ")");
    parse_fails(s, "nested deeper than 256");
    free(s);
    s = repeat("[", 100000, NULL, NULL);
    parse_fails(s, "nested deeper than 256");
    free(s);
    /* the limit itself is fine: 1.1^256 is finite */
    s = repeat("(", SDC_PROMPT_MAX_DEPTH, "x", ")");
    double w = 1.0;
    for (int i = 0; i < SDC_PROMPT_MAX_DEPTH; i++) w *= 1.1;
    PARSE(s, {"x", w});
    free(s);
    s = repeat("(", SDC_PROMPT_MAX_DEPTH + 1, "x", ")");
    parse_fails(s, "nested deeper");
    free(s);
    /* 100k stray closers are text */
    s = repeat(")", 100000, NULL, NULL);
    sdc_prompt_piece *p;
    size_t n;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_prompt_parse_a1111(s, &p, &n, &err), SDC_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(p[0].len, 100000);
    free(p), free(s);
    /* 1 MB of alternating weights at the deepest nesting: bounded work */
    char *deep = repeat("(", SDC_PROMPT_MAX_DEPTH - 1, NULL, NULL);
    char *body = repeat("(a)b", 250000, NULL, NULL);
    char *all = malloc(strlen(deep) + strlen(body) + 1);
    strcpy(all, deep), strcat(all, body);
    double t0 = now_s();
    ck_assert_int_eq(sdc_prompt_parse_a1111(all, &p, &n, &err), SDC_OK);
    double dt = now_s() - t0;
    ck_assert_uint_eq(n, 500000);
    ck_assert_msg(dt < 20, "parse of 1 MB took %.1f s", dt);
    free(p), free(all), free(deep), free(body);
}
END_TEST

/* ---------------------------------------------------------------- plan */

static void plan_ok(sdc_tokenizer *t, const char *prompt, sdc_prompt_syntax syn, sdc_cond_plan *p) {
    sdc_err err = {0};
    ck_assert_msg(sdc_prompt_plan(t, prompt, syn, NULL, p, &err) == SDC_OK, "%.60s: %s", prompt, err.msg);
    for (int c = 0; c < p->n_chunks; c++) {
        ck_assert_int_eq(p->ids[c * 77], BOS);
        ck_assert_int_eq(p->ids[c * 77 + 76], EOS);
        ck_assert(p->weights[c * 77] == 1.0f && p->weights[c * 77 + 76] == 1.0f);
    }
}

START_TEST(test_plan_plain) {
    sdc_tokenizer *t = load_tok();
    const char *prompts[] = {"a photo of an astronaut riding a horse on mars", "", "   ", "(a) [b] c:1.2 BREAK d",
                             "a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z, "
                             "a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z"};
    for (size_t i = 0; i < sizeof prompts / sizeof *prompts; i++) {
        sdc_cond_plan p;
        plan_ok(t, prompts[i], SDC_PROMPT_PLAIN, &p);
        int32_t ids[77];
        bool cut;
        sdc_err err = {0};
        ck_assert_int_eq(sdc_tokenize_77(t, prompts[i], strlen(prompts[i]), ids, &cut, &err), SDC_OK);
        ck_assert_int_eq(p.n_chunks, 1);
        ck_assert_mem_eq(p.ids, ids, sizeof ids);
        ck_assert(p.truncated == cut);
        ck_assert(p.truncated == (i == 4));
        for (int k = 0; k < 77; k++) ck_assert(p.weights[k] == 1.0f);
        sdc_cond_plan_free(&p);
        ck_assert_ptr_null(p.ids);
    }
    sdc_tokenizer_free(t);
}
END_TEST

START_TEST(test_plan_a1111) {
    sdc_tokenizer *t = load_tok();
    int32_t a = id_of(t, "a"), cat = id_of(t, "cat"), b = id_of(t, "b"), comma = id_of(t, ",");
    sdc_cond_plan p;
    plan_ok(t, "a (cat:1.5)", SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 1);
    ck_assert_int_eq(p.ids[1], a); ck_assert_int_eq(p.ids[2], cat); ck_assert_int_eq(p.ids[3], EOS);
    ck_assert(p.weights[1] == 1.0f && p.weights[2] == 1.5f && p.weights[3] == 1.0f);
    ck_assert(!p.truncated);
    sdc_cond_plan_free(&p);
    plan_ok(t, "a ((cat))", SDC_PROMPT_A1111, &p);
    ck_assert(p.weights[2] == (float)(1.1 * 1.1));
    sdc_cond_plan_free(&p);
    /* empty prompt: one chunk BOS + EOS x 76 */
    plan_ok(t, "", SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 1);
    for (int k = 1; k < 77; k++) ck_assert_int_eq(p.ids[k], EOS);
    sdc_cond_plan_free(&p);
    /* BREAK */
    plan_ok(t, "a BREAK b", SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 2);
    ck_assert_int_eq(p.ids[1], a); ck_assert_int_eq(p.ids[2], EOS);
    ck_assert_int_eq(p.ids[78], b); ck_assert_int_eq(p.ids[79], EOS);
    sdc_cond_plan_free(&p);
    plan_ok(t, "BREAK a", SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 2);
    ck_assert_int_eq(p.ids[1], EOS); ck_assert_int_eq(p.ids[78], a);
    sdc_cond_plan_free(&p);
    plan_ok(t, "a BREAK", SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 1);
    sdc_cond_plan_free(&p);
    plan_ok(t, "a break b", SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 1);
    ck_assert_int_eq(p.ids[2], id_of(t, "break"));
    sdc_cond_plan_free(&p);
    /* 100 tokens, no comma: 75 + 25 */
    char *s = repeat("a ", 100, NULL, NULL);
    plan_ok(t, s, SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 2);
    for (int k = 1; k <= 75; k++) ck_assert_int_eq(p.ids[k], a);
    for (int k = 1; k <= 75; k++) ck_assert_int_eq(p.ids[77 + k], k <= 25 ? a : EOS);
    ck_assert(!p.truncated);
    sdc_cond_plan_free(&p);
    free(s);
    /* exactly 75 tokens: one chunk */
    s = repeat("a ", 75, NULL, NULL);
    plan_ok(t, s, SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 1);
    sdc_cond_plan_free(&p);
    free(s);
    /* comma backtrack: 70 a, comma at 70, then 10 b -> the 4 b after the comma move */
    char buf[4096] = "";
    for (int k = 0; k < 70; k++) strcat(buf, "a ");
    strcat(buf, ", ");
    for (int k = 0; k < 10; k++) strcat(buf, "(b) ");
    plan_ok(t, buf, SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 2);
    ck_assert_int_eq(p.ids[70], a); ck_assert_int_eq(p.ids[71], comma); ck_assert_int_eq(p.ids[72], EOS);
    ck_assert(p.weights[72] == 1.0f);
    for (int k = 1; k <= 10; k++) { ck_assert_int_eq(p.ids[77 + k], b); ck_assert(p.weights[77 + k] == 1.1f); }
    ck_assert_int_eq(p.ids[77 + 11], EOS);
    sdc_cond_plan_free(&p);
    /* a comma 25 tokens before the end is too far: no backtrack */
    buf[0] = '\0';
    for (int k = 0; k < 50; k++) strcat(buf, "a ");
    strcat(buf, ", ");
    for (int k = 0; k < 30; k++) strcat(buf, "b ");
    plan_ok(t, buf, SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 2);
    ck_assert_int_eq(p.ids[51], comma); ck_assert_int_eq(p.ids[75], b);
    for (int k = 1; k <= 6; k++) ck_assert_int_eq(p.ids[77 + k], b);
    ck_assert_int_eq(p.ids[77 + 7], EOS);
    sdc_cond_plan_free(&p);
    /* a comma as the 76th token starts the next chunk */
    buf[0] = '\0';
    for (int k = 0; k < 75; k++) strcat(buf, "a ");
    strcat(buf, ", b");
    plan_ok(t, buf, SDC_PROMPT_A1111, &p);
    ck_assert_int_eq(p.n_chunks, 2);
    ck_assert_int_eq(p.ids[78], comma); ck_assert_int_eq(p.ids[79], b);
    sdc_cond_plan_free(&p);
    /* padding to a negative prompt's length */
    plan_ok(t, "a", SDC_PROMPT_A1111, &p);
    sdc_err err = {0};
    ck_assert_int_eq(sdc_cond_plan_pad(&p, t, 3, &err), SDC_OK);
    ck_assert_int_eq(p.n_chunks, 3);
    ck_assert_int_eq(p.ids[1], a);
    for (int c = 1; c < 3; c++) {
        ck_assert_int_eq(p.ids[c * 77], BOS);
        for (int k = 1; k < 77; k++) ck_assert_int_eq(p.ids[c * 77 + k], EOS);
    }
    ck_assert_int_eq(sdc_cond_plan_pad(&p, t, 1, &err), SDC_OK); /* never shrinks */
    ck_assert_int_eq(p.n_chunks, 3);
    sdc_cond_plan_free(&p);
    sdc_prompt_syntax syn;
    ck_assert(sdc_prompt_syntax_from_name("a1111", &syn) && syn == SDC_PROMPT_A1111);
    ck_assert(sdc_prompt_syntax_from_name("plain", &syn) && syn == SDC_PROMPT_PLAIN);
    ck_assert(!sdc_prompt_syntax_from_name("A1111", &syn));
    ck_assert_str_eq(sdc_prompt_syntax_name(SDC_PROMPT_A1111), "a1111");
    sdc_tokenizer_free(t);
}
END_TEST

START_TEST(test_plan_hostile) {
    sdc_tokenizer *t = load_tok();
    sdc_cond_plan p;
    sdc_err err = {0};
    /* invalid UTF-8: the offset is the prompt's, not a piece's */
    for (int syn = 0; syn < 2; syn++) {
        ck_assert_int_eq(sdc_prompt_plan(t, "a (b\xff)", syn, NULL, &p, &err), SDC_ERR_ARG);
        ck_assert_msg(strstr(err.msg, "byte offset 4"), "%s", err.msg);
        ck_assert_ptr_null(p.ids);
        ck_assert_int_eq(sdc_prompt_plan(t, "(x\xc0\xaf)", syn, NULL, &p, &err), SDC_ERR_ARG);
        ck_assert_int_eq(sdc_prompt_plan(t, "\xed\xa0\x80", syn, NULL, &p, &err), SDC_ERR_ARG);
        ck_assert_int_eq(sdc_prompt_plan(t, "x \xe2\x82", syn, NULL, &p, &err), SDC_ERR_ARG);
    }
    ck_assert_int_eq(sdc_prompt_plan(t, "(x:1.2.3)", SDC_PROMPT_A1111, NULL, &p, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_prompt_plan(NULL, "x", SDC_PROMPT_A1111, NULL, &p, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_prompt_plan(t, NULL, SDC_PROMPT_A1111, NULL, &p, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_prompt_plan(t, "x", (sdc_prompt_syntax)7, NULL, &p, &err), SDC_ERR_ARG);
    /* 1 MB prompts in bounded time; a1111 keeps SDC_PROMPT_MAX_CHUNKS chunks */
    const char *units[] = {"word, ", "(a)b", "(\\ )[\\ ]", "\xe7\x8c\xab ", "(\xe2\x80\x8b)[\xe2\x80\x8b]"};
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        char *s = repeat(units[u], (1u << 20) / strlen(units[u]), NULL, NULL);
        for (int syn = 0; syn < 2; syn++) {
            double t0 = now_s();
            plan_ok(t, s, syn, &p);
            double dt = now_s() - t0;
            ck_assert_msg(dt < 30, "unit %zu syntax %d: %.1f s", u, syn, dt);
            bool has_tokens = u == 0 || u == 1 || u == 3;
            ck_assert_int_eq(p.n_chunks, syn == SDC_PROMPT_PLAIN ? 1 : has_tokens ? SDC_PROMPT_MAX_CHUNKS : 1);
            ck_assert(p.truncated == (syn == SDC_PROMPT_PLAIN || has_tokens));
            sdc_cond_plan_free(&p);
        }
        free(s);
    }
    sdc_tokenizer_free(t);
}
END_TEST

/* ---------------------------------------------------------------- weights */

START_TEST(test_apply_weights) {
    enum { T = 4, D = 3 };
    float z[T * D], z0[T * D];
    for (int i = 0; i < T * D; i++) z[i] = z0[i] = (float)(0.25 * i - 1.0 + 0.1 * (i % 3));
    const float ones[T] = {1, 1, 1, 1};
    sdc_prompt_apply_weights(z, ones, T, D);
    ck_assert_mem_eq(z, z0, sizeof z);
    const float w[T] = {1.0f, 1.5f, 1.0f, 0.5f};
    sdc_prompt_apply_weights(z, w, T, D);
    double m0 = 0, m1 = 0, s1 = 0;
    for (int i = 0; i < T * D; i++) m0 += z0[i], m1 += z[i], s1 += (double)z0[i] * w[i / D];
    ck_assert_msg(fabs(m1 - m0) < 1e-5, "mean %g, want %g", m1 / (T * D), m0 / (T * D));
    for (int i = 0; i < T * D; i++) {
        double want = (double)z0[i] * w[i / D] * (m0 / s1);
        ck_assert_msg(fabs(z[i] - want) < 1e-5, "z[%d] = %g, want %g", i, z[i], want);
    }
    /* a weighted sum of 0: rows weighted, no rescale (A1111 would divide by 0) */
    float zz[2] = {1, -1.5f}, ww[2] = {1.5f, 1};
    sdc_prompt_apply_weights(zz, ww, 2, 1);
    ck_assert(zz[0] == 1.5f && zz[1] == -1.5f);
    sdc_prompt_apply_weights(NULL, ww, 2, 1); /* no crash */
}
END_TEST

Suite *suite_prompt(void) {
    Suite *s = suite_create("prompt");
    TCase *tc = tcase_create("prompt");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_parse_wiki);
    tcase_add_test(tc, test_parse_edges);
    tcase_add_test(tc, test_parse_hostile);
    tcase_add_test(tc, test_plan_plain);
    tcase_add_test(tc, test_plan_a1111);
    tcase_add_test(tc, test_plan_hostile);
    tcase_add_test(tc, test_apply_weights);
    suite_add_tcase(s, tc);
    return s;
}
