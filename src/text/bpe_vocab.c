/* bpe_vocab.c — loading a CLIP BPE vocabulary: from CLIP's gzip'ed merges
 * file (the vocabulary is then built as CLIP builds it) or from a diffusers
 * folder's tokenizer/vocab.json + merges.txt. Also the lookup and free. */
#include "bpe_vocab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "inflate.h"
#include "unicode.h"

#define MAX_FILE_BYTES (64u << 20)  /* vocabulary files are ~1-4 MB */
#define MAX_GUNZIP_BYTES (64u << 20)

uint64_t sdc_hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

uint32_t sdc_bpe_rank(const sdc_tokenizer *t, uint32_t a, uint32_t b) {
    uint64_t key = (uint64_t)a << 32 | b;
    for (uint32_t i = (uint32_t)mix64(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        if (t->pair_keys[i] == key) return t->pair_rank[i];
        if (t->pair_keys[i] == UINT64_MAX) return SDC_BPE_NO_RANK;
    }
}

static bool sym_eq(const sdc_tokenizer *t, uint32_t s, const char *str, size_t len) {
    return t->syms[s].len == len && memcmp(t->pool + t->syms[s].off, str, len) == 0;
}

/* Index of the symbol spelled str, or UINT32_MAX. */
static uint32_t sym_find(const sdc_tokenizer *t, const char *str, size_t len) {
    for (uint32_t i = (uint32_t)sdc_hash_bytes(str, len) & t->sym_mask;; i = (i + 1) & t->sym_mask) {
        uint32_t v = t->sym_slots[i];
        if (v == 0) return UINT32_MAX;
        if (sym_eq(t, v - 1, str, len)) return v - 1;
    }
}

static sdc_status oom(sdc_err *err) {
    return sdc_err_set(err, SDC_ERR_OOM, "tokenizer: out of memory");
}

static sdc_status grow_sym_table(sdc_tokenizer *t, sdc_err *err) {
    uint32_t cap = t->sym_mask ? (t->sym_mask + 1) * 2 : 1u << 17;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return oom(err);
    for (uint32_t s = 0; s < t->n_syms; s++) {
        const sdc_bpe_sym *y = &t->syms[s];
        uint32_t i = (uint32_t)sdc_hash_bytes(t->pool + y->off, y->len) & (cap - 1);
        while (slots[i]) i = (i + 1) & (cap - 1);
        slots[i] = s + 1;
    }
    free(t->sym_slots);
    t->sym_slots = slots;
    t->sym_mask = cap - 1;
    return SDC_OK;
}

/* Interns str (of two parts, concatenated); *out is its symbol. */
static sdc_status intern2(sdc_tokenizer *t, const char *s1, size_t n1, const char *s2, size_t n2,
                          uint32_t *out, sdc_err *err) {
    size_t len = n1 + n2;
    if (len > 1u << 20) return sdc_err_set(err, SDC_ERR_FORMAT, "tokenizer: a token of %zu bytes", len);
    if (t->pool_len + len > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1u << 20;
        while (cap < t->pool_len + len) cap *= 2;
        if (cap > UINT32_MAX) return sdc_err_set(err, SDC_ERR_FORMAT, "tokenizer: vocabulary too large");
        char *p = realloc(t->pool, cap);
        if (!p) return oom(err);
        t->pool = p;
        t->pool_cap = cap;
    }
    char *dst = t->pool + t->pool_len; /* staged at the end of the pool */
    memcpy(dst, s1, n1);
    memcpy(dst + n1, s2, n2);
    uint32_t found = sym_find(t, dst, len);
    if (found != UINT32_MAX) {
        *out = found;
        return SDC_OK;
    }
    if (t->n_syms == t->syms_cap) {
        uint32_t cap = t->syms_cap ? t->syms_cap * 2 : 65536;
        sdc_bpe_sym *p = realloc(t->syms, (size_t)cap * sizeof *p);
        if (!p) return oom(err);
        t->syms = p;
        t->syms_cap = cap;
    }
    if ((uint64_t)(t->n_syms + 1) * 2 > (uint64_t)t->sym_mask + 1) {
        sdc_status st = grow_sym_table(t, err);
        if (st) return st;
    }
    uint32_t s = t->n_syms++;
    t->syms[s] = (sdc_bpe_sym){(uint32_t)t->pool_len, (uint32_t)len, -1};
    t->pool_len += len;
    uint32_t i = (uint32_t)sdc_hash_bytes(t->pool + t->syms[s].off, len) & t->sym_mask;
    while (t->sym_slots[i]) i = (i + 1) & t->sym_mask;
    t->sym_slots[i] = s + 1;
    *out = s;
    return SDC_OK;
}

/* The 256 byte symbols of bytes_to_unicode(), in its order: printable bytes
 * map to themselves, the other 68 to U+0100.. in byte order. */
static void byte_unicode(uint32_t cp_of[256], int order[256]) {
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            cp_of[b] = (uint32_t)b;
            order[k++] = b;
        }
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
            cp_of[b] = 256u + (uint32_t)extra++;
            order[k++] = b;
        }
}

/* Interns the 512 byte symbols; with assign_ids, they get ids 0..511 (CLIP's order). */
static sdc_status intern_bytes(sdc_tokenizer *t, bool assign_ids, sdc_err *err) {
    uint32_t cp_of[256];
    int order[256];
    byte_unicode(cp_of, order);
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < 256; k++) {
            int b = order[k];
            char u[4];
            int n = sdc_utf8_encode(cp_of[b], u);
            uint32_t *dst = pass ? &t->byte_sym_w[b] : &t->byte_sym[b];
            sdc_status st = intern2(t, u, (size_t)n, "</w>", pass ? 4 : 0, dst, err);
            if (st) return st;
            if (assign_ids) t->syms[*dst].id = pass * 256 + k;
        }
    return SDC_OK;
}

static sdc_status set_pair(sdc_tokenizer *t, uint32_t a, uint32_t b, uint32_t rank) {
    uint64_t key = (uint64_t)a << 32 | b;
    uint32_t i = (uint32_t)mix64(key) & t->pair_mask;
    while (t->pair_keys[i] != UINT64_MAX && t->pair_keys[i] != key) i = (i + 1) & t->pair_mask;
    t->pair_keys[i] = key; /* a repeated pair keeps its last rank, as Python's dict(zip(...)) */
    t->pair_rank[i] = rank;
    return SDC_OK;
}

/* ASCII whitespace as Python's str.split() sees it. Non-ASCII whitespace
 * never occurs in byte-level BPE symbols, so it is not a separator here. */
static bool is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F); }

/* Parses merge lines 1..SDC_BPE_MAX_MERGES of text (line 0 is the version
 * header). Each must hold exactly two symbols separated by whitespace. With
 * add_vocab, each merge's concatenation gets the next id (CLIP's vocabulary). */
static sdc_status parse_merges(sdc_tokenizer *t, char *text, size_t len, bool universal_newlines,
                               bool add_vocab, int32_t *next_id, const char *what, sdc_err *err) {
    t->merges = malloc(SDC_BPE_MAX_MERGES * sizeof *t->merges);
    uint32_t cap = 1u << 17;
    t->pair_keys = malloc(cap * sizeof *t->pair_keys);
    t->pair_rank = malloc(cap * sizeof *t->pair_rank);
    if (!t->merges || !t->pair_keys || !t->pair_rank) return oom(err);
    memset(t->pair_keys, 0xFF, cap * sizeof *t->pair_keys);
    t->pair_mask = cap - 1;
    size_t p = 0, line = 0;
    while (p < len && t->n_merges < SDC_BPE_MAX_MERGES) {
        size_t e = p;
        while (e < len && text[e] != '\n' && !(universal_newlines && text[e] == '\r')) e++;
        size_t next = e + 1;
        if (universal_newlines && e < len && text[e] == '\r' && e + 1 < len && text[e + 1] == '\n') next++;
        if (line++ > 0) {
            const char *part[3];
            size_t plen[3];
            int np = 0;
            for (size_t i = p; i < e;) {
                while (i < e && is_ws(text[i])) i++;
                if (i == e) break;
                size_t j = i;
                while (j < e && !is_ws(text[j])) j++;
                if (np < 3) part[np] = text + i, plen[np] = j - i;
                np++;
                i = j;
            }
            if (np != 2)
                return sdc_err_set(err, SDC_ERR_FORMAT,
                                   "%s: line %zu: expected two symbols separated by a space, found %d",
                                   what, line, np);
            sdc_bpe_merge *m = &t->merges[t->n_merges];
            sdc_status st;
            if ((st = intern2(t, part[0], plen[0], "", 0, &m->a, err)) ||
                (st = intern2(t, part[1], plen[1], "", 0, &m->b, err)) ||
                (st = intern2(t, part[0], plen[0], part[1], plen[1], &m->ab, err)))
                return st;
            if (add_vocab) t->syms[m->ab].id = (*next_id)++;
            set_pair(t, m->a, m->b, t->n_merges);
            t->n_merges++;
        }
        p = next;
    }
    return SDC_OK;
}

static sdc_status read_file(const char *path, char **out, size_t *len, sdc_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sdc_err_set(err, SDC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return sdc_err_set(err, SDC_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > MAX_FILE_BYTES) {
        fclose(f);
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: %lld bytes, more than a vocabulary file can be",
                           path, (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return oom(err);
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (got != n || bad) {
        free(buf);
        return sdc_err_set(err, SDC_ERR_IO, "%s: read failed", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return SDC_OK;
}

void sdc_tokenizer_free(sdc_tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->syms);
    free(t->sym_slots);
    free(t->merges);
    free(t->pair_keys);
    free(t->pair_rank);
    free(t);
}

static sdc_status find_specials(sdc_tokenizer *t, const char *what, sdc_err *err) {
    uint32_t s = sym_find(t, "<|startoftext|>", 15), e = sym_find(t, "<|endoftext|>", 13);
    if (s == UINT32_MAX || t->syms[s].id < 0 || e == UINT32_MAX || t->syms[e].id < 0)
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: the vocabulary lacks <|startoftext|> or <|endoftext|>",
                           what);
    t->bos = t->syms[s].id;
    t->eos = t->unk = t->syms[e].id;
    return SDC_OK;
}

static sdc_tokenizer *new_tokenizer(sdc_err *err) {
    sdc_tokenizer *t = calloc(1, sizeof *t);
    if (!t || grow_sym_table(t, err)) {
        free(t);
        oom(err);
        return NULL;
    }
    return t;
}

sdc_tokenizer *sdc_tokenizer_load_bpe_gz(const char *path, sdc_err *err) {
    if (!path) {
        sdc_err_set(err, SDC_ERR_ARG, "tokenizer: no vocabulary path given");
        return NULL;
    }
    char *gz;
    size_t gz_len;
    if (read_file(path, &gz, &gz_len, err)) return NULL;
    uint8_t *text;
    size_t len;
    sdc_status st = sdc_gunzip((const uint8_t *)gz, gz_len, MAX_GUNZIP_BYTES, path, &text, &len, err);
    free(gz);
    if (st) return NULL;
    size_t ncp;
    sdc_tokenizer *t = NULL;
    if (sdc_utf8_decode((const char *)text, len, path, NULL, &ncp, err)) {
        if (err) err->code = SDC_ERR_FORMAT; /* a file, not an argument */
        goto fail;
    }
    if (!(t = new_tokenizer(err))) goto fail;
    int32_t next_id = 512;
    if (intern_bytes(t, true, err) ||
        parse_merges(t, (char *)text, len, false, true, &next_id, path, err))
        goto fail;
    if (t->n_merges < SDC_BPE_MAX_MERGES) {
        sdc_err_set(err, SDC_ERR_FORMAT, "%s: only %u merge lines, CLIP's vocabulary needs %d", path,
                    t->n_merges, SDC_BPE_MAX_MERGES);
        goto fail;
    }
    uint32_t s;
    if (intern2(t, "<|startoftext|>", 15, "", 0, &s, err)) goto fail;
    t->syms[s].id = next_id++;
    if (intern2(t, "<|endoftext|>", 13, "", 0, &s, err)) goto fail;
    t->syms[s].id = next_id++;
    if (find_specials(t, path, err)) goto fail;
    free(text);
    return t;
fail:
    free(text);
    sdc_tokenizer_free(t);
    return NULL;
}

sdc_tokenizer *sdc_tokenizer_load_files(const char *vocab_json, const char *merges_txt, sdc_err *err) {
    if (!vocab_json || !merges_txt) {
        sdc_err_set(err, SDC_ERR_ARG, "tokenizer: vocab.json and merges.txt paths are required");
        return NULL;
    }
    char *js = NULL, *mt = NULL;
    size_t js_len, mt_len;
    cJSON *root = NULL;
    sdc_tokenizer *t = NULL;
    if (read_file(vocab_json, &js, &js_len, err) || read_file(merges_txt, &mt, &mt_len, err)) goto fail;
    size_t ncp;
    if (sdc_utf8_decode(js, js_len, vocab_json, NULL, &ncp, err) ||
        sdc_utf8_decode(mt, mt_len, merges_txt, NULL, &ncp, err)) {
        if (err) err->code = SDC_ERR_FORMAT; /* files, not arguments */
        goto fail;
    }
    root = cJSON_ParseWithLength(js, js_len);
    if (!root || !cJSON_IsObject(root)) {
        sdc_err_set(err, SDC_ERR_FORMAT, "%s: not a JSON object of token -> id", vocab_json);
        goto fail;
    }
    if (!(t = new_tokenizer(err))) goto fail;
    for (const cJSON *c = root->child; c; c = c->next) {
        double v = c->valuedouble;
        if (!c->string || !cJSON_IsNumber(c) || !(v >= 0 && v <= INT32_MAX) || v != (double)(int32_t)v) {
            sdc_err_set(err, SDC_ERR_FORMAT, "%s: entry \"%.40s\": the id must be an integer in [0, 2^31)",
                        vocab_json, c->string ? c->string : "");
            goto fail;
        }
        uint32_t s;
        if (intern2(t, c->string, strlen(c->string), "", 0, &s, err)) goto fail;
        t->syms[s].id = (int32_t)v; /* a repeated key keeps its last id, as json.load */
    }
    /* transformers strips the file, then skips line 0; text mode reads \r\n and \r as \n. */
    size_t b = 0, e = mt_len;
    while (b < e && is_ws(mt[b])) b++;
    while (e > b && is_ws(mt[e - 1])) e--;
    int32_t unused = 0;
    if (intern_bytes(t, false, err) ||
        parse_merges(t, mt + b, e - b, true, false, &unused, merges_txt, err) ||
        find_specials(t, vocab_json, err))
        goto fail;
    cJSON_Delete(root);
    free(js);
    free(mt);
    return t;
fail:
    cJSON_Delete(root);
    free(js);
    free(mt);
    sdc_tokenizer_free(t);
    return NULL;
}

int32_t sdc_tokenizer_lookup(const sdc_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    uint32_t s = sym_find(t, token, strlen(token));
    return s == UINT32_MAX ? -1 : t->syms[s].id;
}
