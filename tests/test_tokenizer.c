/* test_tokenizer.c — the CLIP tokenizer against transformers' ids for every
 * prompt of tests/fixtures/tokenizer_cases.jsonl (both loaders), a hand-made
 * vocabulary, corrupt gzip files, the inflate decoder on its own, invalid
 * UTF-8, huge prompts in bounded time, and `sdc tokenize`. */
#include "suites.h"
#include "test_util.h"
#include "cli_run.h"

#include <cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/text/inflate.h"
#include "sdc.h"

#define GZ_PATH "weights/bpe_simple_vocab_16e6.txt.gz"
#define CASES_PATH "tests/fixtures/tokenizer_cases.jsonl"
#define REGEN "build/venv/bin/python tests/fixtures/fx_tokenizer.py"

/* ---------------------------------------------------------------- helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert(fwrite(data, 1, len, f) == len);
    ck_assert(fclose(f) == 0);
}

static sdc_tokenizer *load_gz(void) {
    sdc_err err = {0};
    sdc_tokenizer *t = sdc_tokenizer_load_bpe_gz(GZ_PATH, &err);
    ck_assert_msg(t != NULL, "%s (run `make setup` to fetch it)", err.msg);
    return t;
}

typedef struct tcase_data {
    char *bytes;
    size_t len;
    int32_t ids[77];
    int32_t *raw;
    size_t n_raw;
} tcase_data;

static tcase_data *load_cases(size_t *n) {
    size_t len;
    char *text = tu_slurp(CASES_PATH, &len);
    ck_assert_msg(text != NULL, "missing %s; regenerate it with: %s", CASES_PATH, REGEN);
    size_t cap = 1024, k = 0;
    long want = -1;
    tcase_data *c = calloc(cap, sizeof *c);
    for (char *line = text, *next; *line; line = next) {
        char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        next = *end ? end + 1 : end;
        *end = 0;
        cJSON *o = cJSON_Parse(line);
        ck_assert_msg(o != NULL, "%s: bad JSON line (regenerate: %s)", CASES_PATH, REGEN);
        if (want < 0) { /* header */
            want = (long)cJSON_GetObjectItem(o, "count")->valuedouble;
            cJSON_Delete(o);
            continue;
        }
        ck_assert(k < cap);
        const char *hex = cJSON_GetObjectItem(o, "hex")->valuestring;
        size_t hl = strlen(hex);
        c[k].bytes = malloc(hl / 2 + 1);
        for (size_t i = 0; i < hl / 2; i++) {
            unsigned v;
            ck_assert(sscanf(hex + 2 * i, "%2x", &v) == 1);
            c[k].bytes[i] = (char)v;
        }
        c[k].len = hl / 2;
        const cJSON *ids = cJSON_GetObjectItem(o, "ids"), *raw = cJSON_GetObjectItem(o, "raw");
        /* The 77 ids are stored without their trailing run of 49407 (EOS, padding). */
        int n77 = cJSON_GetArraySize(ids);
        ck_assert_int_le(n77, 77);
        for (int i = 0; i < 77; i++)
            c[k].ids[i] = i < n77 ? (int32_t)cJSON_GetArrayItem(ids, i)->valuedouble : 49407;
        c[k].n_raw = (size_t)cJSON_GetArraySize(raw);
        c[k].raw = malloc((c[k].n_raw + 1) * sizeof *c[k].raw);
        size_t i = 0;
        for (const cJSON *v = raw->child; v; v = v->next) c[k].raw[i++] = (int32_t)v->valuedouble;
        cJSON_Delete(o);
        k++;
    }
    free(text);
    ck_assert_msg(want == (long)k, "%s: header says %ld cases, found %zu", CASES_PATH, want, k);
    ck_assert_msg(k >= 300, "only %zu fixture cases", k);
    *n = k;
    return c;
}

static void free_cases(tcase_data *c, size_t n) {
    for (size_t i = 0; i < n; i++) free(c[i].bytes), free(c[i].raw);
    free(c);
}

/* Every fixture case through tok: raw ids and the 77-id encoding. */
static void check_all_cases(const sdc_tokenizer *tok, const char *label) {
    size_t n;
    tcase_data *c = load_cases(&n);
    size_t bad = 0;
    int32_t *out = malloc(4096 * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        sdc_err err = {0};
        size_t got = 0;
        bool cut = false;
        int32_t ids[77];
        ck_assert_msg(sdc_tokenize(tok, c[i].bytes, c[i].len, out, 4096, &got, &err) == SDC_OK, "%s",
                      err.msg);
        ck_assert_msg(sdc_tokenize_77(tok, c[i].bytes, c[i].len, ids, &cut, &err) == SDC_OK, "%s",
                      err.msg);
        bool ok = got == c[i].n_raw && !memcmp(out, c[i].raw, got * sizeof *out) &&
                  !memcmp(ids, c[i].ids, sizeof ids) && cut == (c[i].n_raw > 75);
        if (!ok && bad++ < 5) {
            fprintf(stderr, "%s: case %zu (%.*s): got %zu ids, want %zu\n", label, i,
                    (int)(c[i].len < 60 ? c[i].len : 60), c[i].bytes, got, c[i].n_raw);
        }
    }
    fprintf(stderr, "tokenizer %s: %zu/%zu fixture prompts identical to transformers\n", label,
            n - bad, n);
    ck_assert_msg(bad == 0, "%s: %zu of %zu fixture prompts differ", label, bad, n);
    free(out);
    free_cases(c, n);
}

/* ---------------------------------------------------------------- fixtures */

START_TEST(test_fixture_gz) {
    double t0 = now_s();
    sdc_tokenizer *tok = load_gz();
    fprintf(stderr, "tokenizer: loading %s took %.3f s\n", GZ_PATH, now_s() - t0);
    ck_assert_int_eq(sdc_tokenizer_lookup(tok, "<|startoftext|>"), 49406);
    ck_assert_int_eq(sdc_tokenizer_lookup(tok, "<|endoftext|>"), 49407);
    ck_assert_int_eq(sdc_tokenizer_lookup(tok, "cat</w>"), 2368);
    ck_assert_int_eq(sdc_tokenizer_lookup(tok, "!"), 0);
    ck_assert_int_eq(sdc_tokenizer_lookup(tok, "no such token"), -1);
    check_all_cases(tok, "gz");
    sdc_tokenizer_free(tok);
}
END_TEST

/* bytes_to_unicode(), written independently of the library. */
static int b2u(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
    return 256 + n;
}

static void json_key(FILE *f, const char *s, int id, bool *first) {
    fprintf(f, "%s\"", *first ? "" : ",");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fprintf(f, "\":%d", id);
    *first = false;
}

static void utf8(int cp, char *out) {
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

/* Writes dir/tokenizer/{vocab.json,merges.txt} as a diffusers folder has them,
 * from CLIP's file decompressed by the system's gzip. */
static void write_diffusers_tokenizer(const char *dir) {
    char cmd[1024], vj[512], mt[512];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/tokenizer' && gzip -dc " GZ_PATH
             " | head -n 48895 | tail -n +2 > '%s/tokenizer/m.tmp'", dir, dir);
    ck_assert_msg(system(cmd) == 0, "gzip -dc failed");
    snprintf(mt, sizeof mt, "%s/tokenizer/merges.txt", dir);
    snprintf(vj, sizeof vj, "%s/tokenizer/vocab.json", dir);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/tokenizer/m.tmp", dir);
    size_t len;
    char *merges = tu_slurp(tmp, &len);
    ck_assert_ptr_nonnull(merges);
    FILE *m = fopen(mt, "wb");
    fprintf(m, "#version: 0.2\n%s", merges);
    fclose(m);
    FILE *v = fopen(vj, "wb");
    bool first = true;
    int id = 0;
    char u[8], buf[512];
    fputc('{', v);
    int order[256], k = 0;
    for (int b = 0; b < 256; b++) if (b2u(b) == b) order[k++] = b;
    for (int b = 0; b < 256; b++) if (b2u(b) != b) order[k++] = b;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 256; i++) {
            utf8(b2u(order[i]), u);
            snprintf(buf, sizeof buf, "%s%s", u, pass ? "</w>" : "");
            json_key(v, buf, id++, &first);
        }
    for (char *line = merges, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        *end = 0;
        char *sp = strchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        snprintf(buf, sizeof buf, "%.*s%s", (int)(sp - line), line, sp + 1);
        json_key(v, buf, id++, &first);
    }
    json_key(v, "<|startoftext|>", id++, &first);
    json_key(v, "<|endoftext|>", id++, &first);
    fputs("}\n", v);
    fclose(v);
    ck_assert_int_eq(id, 49408);
    free(merges);
}

START_TEST(test_fixture_files) {
    const char *dir = test_tmpdir();
    write_diffusers_tokenizer(dir);
    char vj[512], mt[512];
    snprintf(vj, sizeof vj, "%s/tokenizer/vocab.json", dir);
    snprintf(mt, sizeof mt, "%s/tokenizer/merges.txt", dir);
    sdc_err err = {0};
    sdc_tokenizer *tok = sdc_tokenizer_load_files(vj, mt, &err);
    ck_assert_msg(tok != NULL, "%s", err.msg);
    sdc_tokenizer *gz = load_gz();
    static const char *const probe[] = {"cat</w>", "a", "ing</w>", "<|endoftext|>", "Ġ", "ðŁĺ", "xyz?"};
    for (size_t i = 0; i < sizeof probe / sizeof *probe; i++)
        ck_assert_int_eq(sdc_tokenizer_lookup(tok, probe[i]), sdc_tokenizer_lookup(gz, probe[i]));
    sdc_tokenizer_free(gz);
    check_all_cases(tok, "vocab.json+merges.txt");
    sdc_tokenizer_free(tok);
}
END_TEST

/* ---------------------------------------------------------------- hand-made vocabulary */

static sdc_tokenizer *tiny(const char *dir, const char *vocab, const char *merges, sdc_err *err) {
    char vj[512], mt[512];
    snprintf(vj, sizeof vj, "%s/vocab.json", dir);
    snprintf(mt, sizeof mt, "%s/merges.txt", dir);
    write_file(vj, vocab, strlen(vocab));
    write_file(mt, merges, strlen(merges));
    return sdc_tokenizer_load_files(vj, mt, err);
}

static size_t tok_str(const sdc_tokenizer *t, const char *s, int32_t *out) {
    size_t n = 0;
    sdc_err err = {0};
    ck_assert_msg(sdc_tokenize(t, s, strlen(s), out, 64, &n, &err) == SDC_OK, "%s", err.msg);
    return n;
}

START_TEST(test_tiny_vocab) {
    const char *dir = test_tmpdir();
    const char *vocab = "{\"<|startoftext|>\": 10, \"<|endoftext|>\": 11, \"a\": 0, \"b\": 1,"
                        " \"a</w>\": 2, \"b</w>\": 3, \"ab\": 4, \"ab</w>\": 5, \"abab</w>\": 6,"
                        " \"x\": 20, \"y\": 21, \"z</w>\": 22, \"xy\": 23, \"yz</w>\": 24}";
    sdc_err err = {0};
    /* CRLF lines and surrounding blank lines, as text mode + strip() read them. */
    sdc_tokenizer *t = tiny(dir, vocab, "\r\n\n#version: 0.2\r\na b\r\na b</w>\r\nab ab</w>\r\n"
                                        "x y\r\ny z</w>\r\n\n", &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    int32_t o[64];
    ck_assert_int_eq(tok_str(t, "abab", o), 1);
    ck_assert_int_eq(o[0], 6);
    ck_assert_int_eq(tok_str(t, "AB", o), 1);
    ck_assert_int_eq(o[0], 5);
    ck_assert_int_eq(tok_str(t, "ba c", o), 3); /* b a</w>, then c</w> unknown -> <|endoftext|> */
    ck_assert(o[0] == 1 && o[1] == 2 && o[2] == 11);
    ck_assert_int_eq(tok_str(t, "xyz", o), 2); /* (x y) ranks before (y z</w>) */
    ck_assert(o[0] == 23 && o[1] == 22);
    int32_t ids[77];
    bool cut = true;
    ck_assert_int_eq(sdc_tokenize_77(t, "ab", 2, ids, &cut, &err), SDC_OK);
    ck_assert(!cut && ids[0] == 10 && ids[1] == 5 && ids[2] == 11 && ids[76] == 11);
    ck_assert_int_eq(sdc_tokenizer_lookup(t, "abab</w>"), 6);
    sdc_tokenizer_free(t);

    /* A repeated merge keeps its last rank (Python's dict(zip(...))). */
    t = tiny(dir, vocab, "#version: 0.2\nx y\ny z</w>\nx y\n", &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    ck_assert_int_eq(tok_str(t, "xyz", o), 2);
    ck_assert(o[0] == 20 && o[1] == 24);
    sdc_tokenizer_free(t);

    /* Malformed vocabularies: each refused with a message. */
    static const struct { const char *vocab, *merges, *needle; } bad[] = {
        {"{\"a\": 0}", "#v\n", "<|endoftext|>"},
        {"[1, 2]", "#v\n", "JSON object"},
        {"{\"<|startoftext|>\": 1, \"<|endoftext|>\": 2", "#v\n", "JSON object"},
        {"{\"<|startoftext|>\": 1.5, \"<|endoftext|>\": 2}", "#v\n", "integer"},
        {"{\"<|startoftext|>\": -1, \"<|endoftext|>\": 2}", "#v\n", "integer"},
        {"{\"<|startoftext|>\": \"1\", \"<|endoftext|>\": 2}", "#v\n", "integer"},
        {"{\"<|startoftext|>\": 1e12, \"<|endoftext|>\": 2}", "#v\n", "integer"},
        {"{\"<|startoftext|>\": 1, \"<|endoftext|>\": 2}", "#v\na b c\n", "line 2"},
        {"{\"<|startoftext|>\": 1, \"<|endoftext|>\": 2}", "#v\na b\nab\n", "line 3"},
        {"{\"<|startoftext|>\": 1, \"<|endoftext|>\": 2}", "#v\na \xff\n", "UTF-8"},
        {"{\"<|startoftext|>\": 1, \"<|endoftext|>\": 2, \"\xC0\xAF\": 3}", "#v\n", "UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sdc_err e = {0};
        ck_assert_ptr_null(tiny(dir, bad[i].vocab, bad[i].merges, &e));
        ck_assert_int_eq(e.code, SDC_ERR_FORMAT);
        ck_assert_msg(strstr(e.msg, bad[i].needle), "case %zu: '%s' lacks '%s'", i, e.msg, bad[i].needle);
    }
    sdc_err e = {0};
    ck_assert_ptr_null(sdc_tokenizer_load_files("/nonexistent/vocab.json", "/nonexistent/m.txt", &e));
    ck_assert_int_eq(e.code, SDC_ERR_IO);
    ck_assert(strstr(e.msg, "/nonexistent/vocab.json") != NULL);
    ck_assert_ptr_null(sdc_tokenizer_load_files(NULL, NULL, &e));
    ck_assert_int_eq(e.code, SDC_ERR_ARG);
}
END_TEST

/* ---------------------------------------------------------------- gzip / inflate */

static void expect_gz_error(const char *path, const void *data, size_t len, const char *what) {
    write_file(path, data, len);
    sdc_err err = {0};
    sdc_tokenizer *t = sdc_tokenizer_load_bpe_gz(path, &err);
    ck_assert_msg(t == NULL, "%s: corrupt file accepted", what);
    ck_assert_msg(err.code == SDC_ERR_FORMAT && strstr(err.msg, path), "%s: %s", what, err.msg);
}

START_TEST(test_corrupt_gz) {
    size_t len;
    char *gz = tu_slurp(GZ_PATH, &len);
    ck_assert_msg(gz != NULL, "%s missing (run `make setup`)", GZ_PATH);
    char path[512];
    snprintf(path, sizeof path, "%s/bad.gz", test_tmpdir());
    size_t cuts[] = {0, 1, 10, 17, 18, 100, 5000, len / 2, len - 9, len - 8, len - 4, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu", cuts[i]);
        expect_gz_error(path, gz, cuts[i], what);
    }
    char *buf = malloc(len + 16);
    /* Bit flips: magic, method, flags, deflate data (start, middle, end), CRC, size. */
    srand(1234);
    size_t pos[40] = {0, 1, 2, 3, 10, 11, 12, 200, len / 3, len / 2, len - 12, len - 8, len - 5, len - 1};
    for (size_t i = 14; i < 40; i++) pos[i] = 10 + (size_t)rand() % (len - 10);
    for (size_t i = 0; i < 40; i++) {
        memcpy(buf, gz, len);
        /* Byte 3 is the flags: bit 0 (FTEXT) is only a hint, so flip FHCRC. */
        buf[pos[i]] ^= (char)(pos[i] == 3 ? 2u : 1u << (rand() % 8));
        char what[64];
        snprintf(what, sizeof what, "bit flip at byte %zu", pos[i]);
        expect_gz_error(path, buf, len, what);
    }
    memcpy(buf, gz, len);
    memcpy(buf + len, "garbage!", 8);
    expect_gz_error(path, buf, len + 8, "trailing garbage");
    expect_gz_error(path, "#version: 0.2\na b\n", 18, "not gzip");
    sdc_err err = {0};
    ck_assert_ptr_null(sdc_tokenizer_load_bpe_gz("/nonexistent/vocab.gz", &err));
    ck_assert_int_eq(err.code, SDC_ERR_IO);
    ck_assert(strstr(err.msg, "/nonexistent/vocab.gz") && strstr(err.msg, "cannot open"));
    ck_assert_ptr_null(sdc_tokenizer_load_bpe_gz(test_tmpdir(), &err));
    ck_assert_int_eq(err.code, SDC_ERR_IO);
    ck_assert_ptr_null(sdc_tokenizer_load_bpe_gz(NULL, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
    /* A valid gzip of the wrong content. */
    snprintf(path, sizeof path, "%s/short.txt", test_tmpdir());
    write_file(path, "#version: 0.2\na b\n", 18);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "gzip -f '%s'", path);
    ck_assert(system(cmd) == 0);
    strcat(path, ".gz");
    ck_assert_ptr_null(sdc_tokenizer_load_bpe_gz(path, &err));
    ck_assert_msg(strstr(err.msg, "48894"), "%s", err.msg);
    free(buf);
    free(gz);
}
END_TEST

static void gzip_roundtrip(const char *dir, const unsigned char *data, size_t len, const char *flags) {
    char raw[256], cmd[2048];
    snprintf(raw, sizeof raw, "%s/in.bin", dir);
    write_file(raw, data, len);
    snprintf(cmd, sizeof cmd, "gzip %s -c '%s' > '%s.gz' && cat '%s.gz' '%s.gz' > '%s.2.gz'", flags,
             raw, raw, raw, raw, raw);
    ck_assert(system(cmd) == 0);
    for (int members = 1; members <= 2; members++) {
        char gzp[600];
        snprintf(gzp, sizeof gzp, members == 1 ? "%s.gz" : "%s.2.gz", raw);
        size_t glen;
        char *g = tu_slurp(gzp, &glen);
        uint8_t *out;
        size_t olen;
        sdc_err err = {0};
        ck_assert_msg(sdc_gunzip((uint8_t *)g, glen, 1u << 26, "t", &out, &olen, &err) == SDC_OK, "%s",
                      err.msg);
        ck_assert_uint_eq(olen, len * (size_t)members);
        for (int m = 0; m < members; m++) ck_assert(!memcmp(out + (size_t)m * len, data, len));
        free(out);
        /* The same input with a smaller output limit is refused. */
        if (len > 0) {
            ck_assert_int_eq(sdc_gunzip((uint8_t *)g, glen, len - 1, "t", &out, &olen, &err),
                             SDC_ERR_FORMAT);
            ck_assert(strstr(err.msg, "limit"));
        }
        free(g);
    }
}

/* A gzip member around the deflate stream hex, with an all-zero trailer
 * (trailer false: none, the file ends with the deflate data). */
static sdc_status gunzip_deflate(const char *hex, bool trailer, sdc_err *err) {
    uint8_t buf[64] = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3};
    size_t n = 10;
    for (size_t i = 0; hex[2 * i]; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        buf[n++] = (uint8_t)v;
    }
    if (trailer) n += 8;
    uint8_t *out;
    size_t olen;
    sdc_status st = sdc_gunzip(buf, n, 1 << 20, "crafted", &out, &olen, err);
    if (st == SDC_OK) free(out);
    return st;
}

START_TEST(test_inflate) {
    const char *dir = test_tmpdir();
    size_t n = 300000;
    unsigned char *data = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) { /* random bytes (stored blocks) then text-like runs */
        x = x * 1103515245u + 12345u;
        data[i] = i < n / 3 ? (unsigned char)(x >> 24) : (unsigned char)("abcabd ef\n"[(x >> 24) % 10]);
    }
    gzip_roundtrip(dir, data, n, "-1");
    gzip_roundtrip(dir, data, n, "-9");
    gzip_roundtrip(dir, data, 0, "-9");
    gzip_roundtrip(dir, (const unsigned char *)"a", 1, "-n");
    free(data);
    ck_assert_uint_eq(sdc_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    /* Hand-assembled deflate streams (fixed Huffman unless noted). */
    sdc_err err = {0};
    static const struct { const char *hex, *needle; } bad[] = {
        {"07", "block type 3"},
        {"010500000000", "stored block length"},
        {"030200", "too far back"},
        {"4b043e00", "distance symbol"},
        {"4b1c0300", "length symbol"},
        {"0200", "stored block length"}, /* the next block header comes from the trailer */
        {"05e09324499224499200", "over-subscribed"},
        {"05000224", "no previous length"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(gunzip_deflate(bad[i].hex, true, &err), SDC_ERR_FORMAT);
        ck_assert_msg(strstr(err.msg, bad[i].needle), "case %zu: %s", i, err.msg);
    }
    /* Eight empty non-final blocks, then the input ends. */
    ck_assert_int_eq(gunzip_deflate("02082080000208208000", false, &err), SDC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "ends early"), "%s", err.msg);
    /* "aaaa" with a zero trailer: decodes, then the CRC check fails. */
    ck_assert_int_eq(gunzip_deflate("4b040200", true, &err), SDC_ERR_FORMAT);
    ck_assert(strstr(err.msg, "CRC"));
    /* Random deflate data: refused (or, rarely, decoded and CRC-checked), never a crash. */
    uint8_t junk[300] = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3};
    for (int i = 0; i < 3000; i++) {
        size_t len = 18 + (size_t)(i % 280);
        for (size_t k = 10; k < len; k++) {
            x = x * 1103515245u + 12345u;
            junk[k] = (uint8_t)(x >> 23);
        }
        uint8_t *out = NULL;
        size_t olen;
        sdc_status st = sdc_gunzip(junk, len, 1u << 20, "junk", &out, &olen, &err);
        ck_assert(st == SDC_OK || st == SDC_ERR_FORMAT);
        free(out);
    }
}
END_TEST

/* ---------------------------------------------------------------- hostile prompts */

START_TEST(test_invalid_utf8) {
    sdc_tokenizer *tok = load_gz();
    static const struct { const char *s; size_t len, offset; } bad[] = {
        {"ab\xC0\xAF", 4, 2},          /* overlong '/' */
        {"\xE0\x80\xAF", 3, 0},        /* overlong, 3 bytes */
        {"x\xF0\x80\x80\xAF", 5, 1},   /* overlong, 4 bytes */
        {"\xED\xA0\x80", 3, 0},        /* UTF-16 surrogate D800 */
        {"ok \xED\xBF\xBF", 6, 3},     /* surrogate DFFF */
        {"abc\xE2\x82", 5, 3},         /* cut off at the end */
        {"abc\xF0\x9F\x98", 6, 3},     /* cut off emoji */
        {"\xFF", 1, 0},                /* stray 0xFF */
        {"a\x80" "b", 3, 1},           /* lone continuation byte */
        {"\xF4\x90\x80\x80", 4, 0},    /* U+110000 */
        {"\xF5\x80\x80\x80", 4, 0},    /* lead byte beyond U+10FFFF */
        {"caf\xC3" "e", 5, 3},         /* bad continuation */
        {"\xFE\xFF", 2, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sdc_err err = {0};
        size_t n = 99;
        int32_t ids[77];
        ck_assert_int_eq(sdc_tokenize(tok, bad[i].s, bad[i].len, NULL, 0, &n, &err), SDC_ERR_ARG);
        char needle[64];
        snprintf(needle, sizeof needle, "byte offset %zu", bad[i].offset);
        ck_assert_msg(strstr(err.msg, needle) && strstr(err.msg, "UTF-8"), "case %zu: %s", i, err.msg);
        ck_assert_int_eq(sdc_tokenize_77(tok, bad[i].s, bad[i].len, ids, NULL, &err), SDC_ERR_ARG);
    }
    /* The largest valid forms are accepted. */
    size_t n;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_tokenize(tok, "\xF4\x8F\xBF\xBF\xEF\xBF\xBF\xDF\xBF", 9, NULL, 0, &n, &err), SDC_OK);
    sdc_tokenizer_free(tok);
}
END_TEST

static void ids_of(const sdc_tokenizer *t, const char *s, size_t len, int32_t ids[77]) {
    sdc_err err = {0};
    ck_assert_msg(sdc_tokenize_77(t, s, len, ids, NULL, &err) == SDC_OK, "%s", err.msg);
}

START_TEST(test_edge_prompts) {
    sdc_tokenizer *tok = load_gz();
    int32_t a[77], b[77];
    ids_of(tok, "", 0, a);
    ck_assert(a[0] == 49406 && a[1] == 49407 && a[76] == 49407);
    ids_of(tok, NULL, 0, b);
    ck_assert(!memcmp(a, b, sizeof a));
    ids_of(tok, " \t\r\n\xC2\xA0\xE3\x80\x80", 9, b);
    ck_assert(!memcmp(a, b, sizeof a));
    ids_of(tok, "a\0b", 3, a); /* the NUL is dropped: same as "ab" */
    ids_of(tok, "ab", 2, b);
    ck_assert(!memcmp(a, b, sizeof a));
    ids_of(tok, "red\r\ncat", 8, a);
    ids_of(tok, "red cat", 7, b);
    ck_assert(!memcmp(a, b, sizeof a));
    /* cap smaller than the count: the first cap ids, and the full count. */
    int32_t few[3], all[16];
    size_t n = 0, m = 0;
    sdc_err err = {0};
    const char *p = "one two three four five";
    ck_assert_int_eq(sdc_tokenize(tok, p, strlen(p), few, 3, &n, &err), SDC_OK);
    ck_assert_int_eq(sdc_tokenize(tok, p, strlen(p), all, 16, &m, &err), SDC_OK);
    ck_assert(n == 5 && m == 5 && !memcmp(few, all, sizeof few));
    /* Bad arguments are errors, not crashes. */
    ck_assert_int_eq(sdc_tokenize(NULL, "a", 1, all, 16, &n, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_tokenize(tok, NULL, 1, all, 16, &n, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_tokenize(tok, "a", 1, NULL, 16, &n, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_tokenize(tok, "a", 1, all, 16, NULL, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_tokenize_77(tok, "a", 1, NULL, NULL, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_tokenize_77(NULL, "a", 1, a, NULL, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_tokenizer_lookup(NULL, "a"), -1);
    ck_assert_int_eq(sdc_tokenizer_lookup(tok, NULL), -1);
    sdc_tokenizer_free(NULL);
    /* 76 single-token words: truncated to 75, EOS last. */
    char longp[400] = "";
    for (int i = 0; i < 76; i++) strcat(longp, "x ");
    bool cut = false;
    ck_assert_int_eq(sdc_tokenize_77(tok, longp, strlen(longp), a, &cut, &err), SDC_OK);
    ck_assert(cut && a[75] == a[1] && a[76] == 49407);
    longp[2 * 75] = 0;
    ck_assert_int_eq(sdc_tokenize_77(tok, longp, strlen(longp), a, &cut, &err), SDC_OK);
    ck_assert(!cut && a[75] == a[1] && a[76] == 49407);
    sdc_tokenizer_free(tok);
}
END_TEST

static void *thread_main(void *arg) {
    const sdc_tokenizer *tok = arg;
    const char *p = "a photo of a cat, (masterpiece:1.2), caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC";
    int32_t first[77], ids[77];
    sdc_err err = {0};
    if (sdc_tokenize_77(tok, p, strlen(p), first, NULL, &err)) return (void *)1;
    for (int i = 0; i < 300; i++)
        if (sdc_tokenize_77(tok, p, strlen(p), ids, NULL, &err) || memcmp(ids, first, sizeof ids))
            return (void *)1;
    return NULL;
}

START_TEST(test_threads) {
    sdc_tokenizer *tok = load_gz();
    pthread_t th[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, thread_main, tok), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        ck_assert_ptr_null(r);
    }
    sdc_tokenizer_free(tok);
}
END_TEST

static double time_tokenize(const sdc_tokenizer *tok, const char *p, size_t len, size_t *n) {
    sdc_err err = {0};
    double t0 = now_s();
    ck_assert_msg(sdc_tokenize(tok, p, len, NULL, 0, n, &err) == SDC_OK, "%s", err.msg);
    return now_s() - t0;
}

START_TEST(test_huge_prompts) {
    sdc_tokenizer *tok = load_gz();
    size_t mb = 1u << 20, n;
    char *p = malloc(mb + 1);
    static const char *const words[] = {"cat ", "astronaut ", "(masterpiece:1.2), ", "caf\xC3\xA9 ",
                                        "\xE6\x97\xA5\xE6\x9C\xAC ", "\xF0\x9F\x98\x80 ", "don't "};
    uint32_t x = 99;
    size_t k = 0;
    while (k < mb) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 7];
        size_t l = strlen(w);
        if (k + l > mb) break;
        memcpy(p + k, w, l);
        k += l;
    }
    double t = time_tokenize(tok, p, k, &n);
    fprintf(stderr, "tokenizer: 1 MiB prompt of words: %zu tokens in %.3f s\n", n, t);
    ck_assert(n > 100000);
    int32_t ids[77];
    bool cut = false;
    sdc_err err = {0};
    double t0 = now_s();
    ck_assert_int_eq(sdc_tokenize_77(tok, p, k, ids, &cut, &err), SDC_OK);
    fprintf(stderr, "tokenizer: the same, 77 ids: %.3f s\n", now_s() - t0);
    ck_assert(cut);
    for (size_t i = 0; i < mb; i++) { /* one 1 MiB word of random letters */
        x = x * 1103515245u + 12345u;
        p[i] = (char)('a' + (x >> 16) % 26);
    }
    t = time_tokenize(tok, p, mb, &n);
    fprintf(stderr, "tokenizer: one 1 MiB word: %zu tokens in %.3f s\n", n, t);
    memset(p, 'a', mb);
    t = time_tokenize(tok, p, mb, &n);
    fprintf(stderr, "tokenizer: 1 MiB of 'a': %zu tokens in %.3f s\n", n, t);
    t = time_tokenize(tok, p, 10000, &n);
    fprintf(stderr, "tokenizer: 10,000 x 'a': %zu tokens in %.3f s\n", n, t);
    for (size_t i = 0; i < 10000; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (char)('a' + (x >> 16) % 26);
    }
    t = time_tokenize(tok, p, 10000, &n);
    fprintf(stderr, "tokenizer: one 10,000-letter random word: %zu tokens in %.3f s\n", n, t);
    /* 10,000 combining marks on one letter (NFC ordering), and 300k Greek sigmas. */
    p[0] = 'e';
    for (size_t i = 0; i < 10000; i++) memcpy(p + 1 + 2 * i, i % 2 ? "\xCC\x81" : "\xCC\xA3", 2);
    t = time_tokenize(tok, p, 20001, &n);
    fprintf(stderr, "tokenizer: a letter with 10,000 combining marks: %zu tokens in %.3f s\n", n, t);
    for (size_t i = 0; i + 2 <= mb; i += 2) memcpy(p + i, i % 6 ? "\xCE\xA3" : "''", 2);
    t = time_tokenize(tok, p, mb, &n);
    fprintf(stderr, "tokenizer: 1 MiB of sigmas and apostrophes: %zu tokens in %.3f s\n", n, t);
    free(p);
    sdc_tokenizer_free(tok);
}
END_TEST

/* ---------------------------------------------------------------- CLI */

START_TEST(test_cli_tokenize) {
    const cli_result *r = cli_run("tokenize 'a photo of a cat'");
    ck_assert_int_eq(r->code, 0);
    ck_assert_msg(strncmp(r->out, "49406 320 1125 539 320 2368 49407 49407 ", 40) == 0, "%s", r->out);
    int count = 0;
    for (const char *s = r->out; *s; s++) count += *s == ' ';
    ck_assert_int_eq(count, 76);
    r = cli_run("tokenize --json 'a photo of a cat'");
    ck_assert_int_eq(r->code, 0);
    cJSON *o = cJSON_Parse(r->out);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "ids")), 77);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "tokens")->valueint, 5);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "truncated")));
    cJSON_Delete(o);
    r = cli_run("tokenize --raw 'a photo of a cat'");
    ck_assert_int_eq(r->code, 0);
    ck_assert_str_eq(r->out, "320 1125 539 320 2368\n");
    r = cli_run("tokenize --raw --vocab " GZ_PATH " \"$(printf 'x %%.0s' $(seq 100))\"");
    ck_assert_int_eq(r->code, 0);
    r = cli_run("tokenize \"$(printf 'x %%.0s' $(seq 100))\"");
    ck_assert_int_eq(r->code, 0);
    ck_assert_msg(strstr(r->err, "warning") && strstr(r->err, "100 tokens"), "%s", r->err);
    r = cli_run("tokenize \"$(printf 'ok \\377')\"");
    ck_assert_int_eq(r->code, 1);
    ck_assert_msg(strstr(r->err, "byte offset 3"), "%s", r->err);
    r = cli_run("tokenize --vocab /nonexistent.gz cat");
    ck_assert_int_eq(r->code, 1);
    ck_assert(strstr(r->err, "/nonexistent.gz"));
    r = cli_run("tokenize --model /nonexistent-model cat");
    ck_assert_int_eq(r->code, 1);
    ck_assert(strstr(r->err, "/nonexistent-model/tokenizer/vocab.json"));
    r = cli_run("tokenize");
    ck_assert_int_eq(r->code, 2);
    r = cli_run("tokenize --bogus cat");
    ck_assert_int_eq(r->code, 2);
    r = cli_run("tokenize a b");
    ck_assert_int_eq(r->code, 2);
    r = cli_run("tokenize --vocab");
    ck_assert_int_eq(r->code, 2);
    r = cli_run("tokenize --raw -- '-x'");
    ck_assert_int_eq(r->code, 0);
    ck_assert_str_eq(r->out, "268 343\n");
    r = cli_run("tokenize --help");
    ck_assert_int_eq(r->code, 0);
    ck_assert(strstr(r->out, "usage: sdc tokenize"));
    /* --model: a diffusers folder. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s", test_tmpdir()); /* cli_run() takes directories too */
    write_diffusers_tokenizer(dir);
    r = cli_run("tokenize --raw --model '%s' 'A photo of an astronaut, caf\xC3\xA9'", dir);
    ck_assert_int_eq(r->code, 0);
    char *want = strdup(cli_run("tokenize --raw 'A photo of an astronaut, caf\xC3\xA9'")->out);
    r = cli_run("tokenize --raw --model '%s' 'A photo of an astronaut, caf\xC3\xA9'", dir);
    ck_assert_str_eq(r->out, want);
    free(want);
}
END_TEST

Suite *suite_tokenizer(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("tokenizer");
    tcase_set_timeout(tc, 300); /* the sanitizer build is ~10x slower */
    tcase_add_test(tc, test_fixture_gz);
    tcase_add_test(tc, test_fixture_files);
    tcase_add_test(tc, test_tiny_vocab);
    tcase_add_test(tc, test_corrupt_gz);
    tcase_add_test(tc, test_inflate);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_edge_prompts);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_huge_prompts);
    tcase_add_test(tc, test_cli_tokenize);
    suite_add_tcase(s, tc);
    return s;
}
