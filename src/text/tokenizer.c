/* tokenizer.c — CLIP's byte-level BPE tokenizer for SD 1.x, id for id the same
 * as transformers.CLIPTokenizer (4.46) in an environment WITHOUT ftfy (a plain
 * `pip install diffusers transformers`), which cleans text with
 * BasicTokenizer(strip_accents=False, do_split_on_punc=False).
 *
 * The steps, in Python's order:
 *  1. The prompt must be valid UTF-8 (else SDC_ERR_ARG with the byte offset).
 *  2. Added tokens first: the exact, case-sensitive strings <|startoftext|>
 *     and <|endoftext|> are cut out of the raw text and become ids 49406 /
 *     49407; each piece between them goes through steps 3-8 on its own.
 *  3. _clean_text: drop U+0000, U+FFFD and every category C* code point
 *     (controls, format chars such as ZWJ U+200D and U+FEFF, private use,
 *     unassigned) except \t \n \r; turn \t \n \r and every Zs into ' '.
 *  4. _tokenize_chinese_chars: a space on both sides of each CJK ideograph
 *     (U+4E00-9FFF, 3400-4DBF, 20000-2A6DF, 2A700-2B73F, 2B740-2B81F,
 *     2B820-2CEAF, F900-FAFF, 2F800-2FA1F; not kana, not Hangul).
 *  5. NFC (unicodedata.normalize, Unicode 14.0).
 *  6. str.split(): words between str.isspace() runs.
 *  7. str.lower() of each word: full Unicode lowercase (U+0130 -> "i\u0307"),
 *     Greek capital sigma -> final sigma by CPython's Final_Sigma rule.
 *  8. The pattern <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|
 *     [\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (regex module, IGNORECASE) splits each
 *     word; characters no branch matches are skipped (only U+0345). A match
 *     that is exactly <|startoftext|> or <|endoftext|> is that special token;
 *     every other match is UTF-8 encoded, each byte mapped to one symbol
 *     (bytes_to_unicode), "</w>" appended to the last, and merged by BPE:
 *     repeatedly the adjacent pair of lowest merge rank, every non-overlapping
 *     occurrence left to right, until no pair has a rank.
 *
 * What ftfy would change (transformers with ftfy installed, and OpenAI's CLIP
 * code): instead of steps 3-7, ftfy.fix_text (its defaults: repairs mojibake
 * such as "cafÃ©", decodes HTML entities such as &amp;, straightens curly
 * quotes so "it’s" gets the 's token, expands ligatures such as "ﬁ", folds
 * fullwidth forms to ASCII, removes some control characters, NFC), then
 * whitespace_clean (each \s+ run becomes one space, ends stripped), then
 * lower() of the whole text. So: no spaces around CJK (a run of ideographs
 * is one [\p{L}]+ match), format characters such as ZWJ are kept, and \v \f
 * and \x1c-\x1f separate words instead of being dropped. Printable ASCII
 * prompts without HTML entities get the same ids either way.
 *
 * The tokenizer is immutable after loading, so one may be shared by threads;
 * each call keeps its own word cache. BPE uses a heap of (rank, position)
 * over a linked list of symbols: O(n log n) per word. */
#include "bpe_vocab.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"

#define MAX_PROMPT_BYTES ((size_t)256 << 20)
#define DEAD UINT32_MAX
#define CACHE_SLOTS (1u << 14)   /* per call; words up to CACHE_MAX_WORD bytes */
#define CACHE_MAX_WORD 64
#define CACHE_PROBES 16

typedef struct cache_slot {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_len; /* key_len 0: empty */
} cache_slot;

/* The state of one encoding call. */
typedef struct enc {
    const sdc_tokenizer *t;
    int32_t *out;
    size_t cap, count, stop; /* stop: no more tokens needed once count reaches it */
    sdc_err *err;
    sdc_status st;
    /* BPE over one word: a linked list of symbols and a heap of (rank << 32 | node) */
    uint32_t *sym;
    int64_t *nxt, *prv;
    uint64_t *heap, *batch;
    size_t word_cap, heap_len;
    /* scratch for one piece and one word */
    uint32_t *low;
    size_t low_cap;
    uint8_t *bytes;
    size_t bytes_cap;
    /* word cache */
    cache_slot *cache;
    size_t cache_used;
    char *ckeys;
    size_t ckeys_len, ckeys_cap;
    int32_t *cids;
    size_t cids_len, cids_cap;
} enc;

static bool done(const enc *e) { return e->st != SDC_OK || e->count >= e->stop; }

static void emit(enc *e, int32_t id) {
    if (e->count < e->cap) e->out[e->count] = id;
    e->count++;
}

/* Grows *p (elements of size sz) to at least n; false (and e->st set) on OOM. */
static bool reserve(enc *e, void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return true;
    size_t c = *cap ? *cap : 256;
    while (c < n) c *= 2;
    void *q = realloc(*p, c * sz);
    if (!q) {
        e->st = sdc_err_set(e->err, SDC_ERR_OOM, "tokenizer: out of memory");
        return false;
    }
    *p = q;
    *cap = c;
    return true;
}

/* ---------------------------------------------------------------- BPE */

static void heap_push(enc *e, uint64_t v) {
    uint64_t *h = e->heap;
    size_t i = e->heap_len++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static uint64_t heap_pop(enc *e) {
    uint64_t *h = e->heap, top = h[0], v = h[--e->heap_len];
    size_t i = 0, n = e->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = v;
    return top;
}

static void push_pair(enc *e, int64_t p) {
    if (p < 0 || e->nxt[p] < 0) return;
    int64_t q = e->nxt[p];
    uint32_t r = sdc_bpe_rank(e->t, e->sym[p], e->sym[q]);
    if (r != SDC_BPE_NO_RANK) heap_push(e, (uint64_t)r << 32 | (uint64_t)p);
}

static int32_t sym_id(const enc *e, uint32_t s) {
    int32_t id = e->t->syms[s].id;
    return id >= 0 ? id : e->t->unk;
}

static bool cache_get(enc *e, const uint8_t *b, size_t n, uint64_t h) {
    for (uint32_t k = 0, i = (uint32_t)h & (CACHE_SLOTS - 1); k < CACHE_PROBES;
         k++, i = (i + 1) & (CACHE_SLOTS - 1)) {
        const cache_slot *c = &e->cache[i];
        if (c->key_len == 0) return false;
        if (c->hash == h && c->key_len == n && memcmp(e->ckeys + c->key_off, b, n) == 0) {
            for (uint32_t j = 0; j < c->ids_len; j++) emit(e, e->cids[c->ids_off + j]);
            return true;
        }
    }
    return false;
}

static void cache_put(enc *e, const uint8_t *b, size_t n, uint64_t h, size_t first) {
    if (e->cache_used >= CACHE_SLOTS / 2 || e->count > e->cap) return;
    size_t nids = e->count - first;
    if (!reserve(e, (void **)&e->ckeys, &e->ckeys_cap, e->ckeys_len + n, 1) ||
        !reserve(e, (void **)&e->cids, &e->cids_cap, e->cids_len + nids, sizeof *e->cids))
        return;
    for (uint32_t k = 0, i = (uint32_t)h & (CACHE_SLOTS - 1); k < CACHE_PROBES;
         k++, i = (i + 1) & (CACHE_SLOTS - 1)) {
        cache_slot *c = &e->cache[i];
        if (c->key_len) continue;
        *c = (cache_slot){h, (uint32_t)e->ckeys_len, (uint32_t)n, (uint32_t)e->cids_len, (uint32_t)nids};
        memcpy(e->ckeys + e->ckeys_len, b, n);
        memcpy(e->cids + e->cids_len, e->out + first, nids * sizeof *e->cids);
        e->ckeys_len += n;
        e->cids_len += nids;
        e->cache_used++;
        return;
    }
}

/* BPE of one pre-token given as UTF-8 bytes b[0..n), n >= 1; emits its ids.
 * Like transformers' bpe(): each round takes the lowest-ranked adjacent pair
 * and merges all its non-overlapping occurrences left to right. */
static void bpe_word(enc *e, const uint8_t *b, size_t n) {
    const sdc_tokenizer *t = e->t;
    uint64_t h = 0;
    bool cacheable = n <= CACHE_MAX_WORD && e->cache;
    if (cacheable) {
        h = sdc_hash_bytes(b, n);
        if (cache_get(e, b, n, h)) return;
    }
    size_t first = e->count;
    if (n > e->word_cap) {
        size_t c = e->word_cap ? e->word_cap : 64;
        while (c < n) c *= 2;
        free(e->sym), free(e->nxt), free(e->prv), free(e->heap), free(e->batch);
        e->sym = malloc(c * sizeof *e->sym);
        e->nxt = malloc(c * sizeof *e->nxt);
        e->prv = malloc(c * sizeof *e->prv);
        e->heap = malloc(3 * c * sizeof *e->heap);
        e->batch = malloc(3 * c * sizeof *e->batch);
        e->word_cap = c;
        if (!e->sym || !e->nxt || !e->prv || !e->heap || !e->batch) {
            e->word_cap = 0;
            e->st = sdc_err_set(e->err, SDC_ERR_OOM, "tokenizer: out of memory for a %zu-byte word", n);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        e->sym[i] = i + 1 < n ? t->byte_sym[b[i]] : t->byte_sym_w[b[i]];
        e->nxt[i] = i + 1 < n ? (int64_t)i + 1 : -1;
        e->prv[i] = (int64_t)i - 1;
    }
    e->heap_len = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(e, (int64_t)i);
    while (e->heap_len) {
        /* All entries of the lowest rank, in node (= text) order; pairs created
         * while merging them wait for the next round, as in Python. */
        size_t nb = 0;
        uint64_t top = heap_pop(e);
        e->batch[nb++] = top;
        while (e->heap_len && e->heap[0] >> 32 == top >> 32) e->batch[nb++] = heap_pop(e);
        const sdc_bpe_merge *m = &t->merges[top >> 32];
        for (size_t k = 0; k < nb; k++) {
            int64_t p = (int64_t)(uint32_t)e->batch[k], q = e->nxt[p];
            if (e->sym[p] != m->a || q < 0 || e->sym[q] != m->b) continue; /* stale */
            e->sym[p] = m->ab;
            e->sym[q] = DEAD;
            e->nxt[p] = e->nxt[q];
            if (e->nxt[q] >= 0) e->prv[e->nxt[q]] = p;
            push_pair(e, e->prv[p]);
            push_pair(e, p);
        }
    }
    for (int64_t p = 0; p >= 0; p = e->nxt[p]) emit(e, sym_id(e, e->sym[p]));
    if (cacheable) cache_put(e, b, n, h, first);
}

/* ---------------------------------------------------------------- pre-tokenizer */

/* One character of CLIP's pattern under IGNORECASE: the literal p (ASCII)
 * also matches its uppercase, and 's' also matches U+017F LONG S. */
static bool ci_eq(uint32_t c, char p) {
    if (c == (uint32_t)p) return true;
    if (p >= 'a' && p <= 'z') return c == (uint32_t)(p - 32) || (p == 's' && c == 0x17F);
    return false;
}

static size_t ci_prefix(const uint32_t *w, size_t n, const char *lit) {
    size_t k = strlen(lit);
    if (k > n) return 0;
    for (size_t i = 0; i < k; i++)
        if (!ci_eq(w[i], lit[i])) return 0;
    return k;
}

/* The length of the match of CLIP's pattern at w[0..n), 0 if none. */
static size_t match_at(const uint32_t *w, size_t n) {
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    size_t k;
    if (w[0] == '<' && ((k = ci_prefix(w, n, "<|startoftext|>")) || (k = ci_prefix(w, n, "<|endoftext|>"))))
        return k;
    if (w[0] == '\'')
        for (size_t i = 0; i < sizeof contractions / sizeof *contractions; i++)
            if ((k = ci_prefix(w, n, contractions[i]))) return k;
    unsigned f = sdc_uni_flags(w[0]);
    if (f & SDC_UNI_L) {
        for (k = 1; k < n && (sdc_uni_flags(w[k]) & SDC_UNI_L); k++) {}
        return k;
    }
    if (f & SDC_UNI_N) return 1;
    const unsigned stop = SDC_UNI_L | SDC_UNI_N | SDC_UNI_SPACE | SDC_UNI_NOMATCH;
    if (f & stop) return 0;
    for (k = 1; k < n && !(sdc_uni_flags(w[k]) & stop); k++) {}
    return k;
}

static bool is_ascii_str(const uint32_t *w, size_t n, const char *s) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (w[i] != (uint32_t)(unsigned char)s[i]) return false;
    return true;
}

/* Lowercases one whitespace-delimited word, splits it with the pattern and
 * BPE-encodes each match. */
static void encode_word(enc *e, const uint32_t *s, size_t n) {
    if (!reserve(e, (void **)&e->low, &e->low_cap, 3 * n, sizeof *e->low)) return;
    size_t m = sdc_uni_lower(s, n, e->low);
    const uint32_t *w = e->low;
    for (size_t i = 0; i < m && !done(e);) {
        size_t k = match_at(w + i, m - i);
        if (k == 0) {
            i++;
            continue;
        }
        if (is_ascii_str(w + i, k, "<|startoftext|>")) emit(e, e->t->bos);
        else if (is_ascii_str(w + i, k, "<|endoftext|>")) emit(e, e->t->eos);
        else {
            if (!reserve(e, (void **)&e->bytes, &e->bytes_cap, 4 * k, 1)) return;
            size_t nb = 0;
            for (size_t j = 0; j < k; j++) nb += (size_t)sdc_utf8_encode(w[i + j], (char *)e->bytes + nb);
            bpe_word(e, e->bytes, nb);
        }
        i += k;
    }
}

/* BasicTokenizer over one piece of text between added tokens. */
static void encode_piece(enc *e, const uint32_t *s, size_t n) {
    if (n == 0) return;
    uint32_t *a = malloc(3 * n * sizeof *a);
    if (!a) {
        e->st = sdc_err_set(e->err, SDC_ERR_OOM, "tokenizer: out of memory");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) { /* _clean_text, then _tokenize_chinese_chars */
        uint32_t c = s[i];
        unsigned f = sdc_uni_flags(c);
        if (c == '\t' || c == '\n' || c == '\r' || (f & SDC_UNI_ZS)) a[k++] = ' ';
        else if (c == 0 || c == 0xFFFD || (f & SDC_UNI_C)) continue;
        else if (sdc_uni_is_cjk(c)) a[k++] = ' ', a[k++] = c, a[k++] = ' ';
        else a[k++] = c;
    }
    uint32_t *b;
    size_t nb;
    e->st = sdc_uni_nfc(a, k, &b, &nb, e->err);
    free(a);
    if (e->st) return;
    for (size_t i = 0; i < nb && !done(e);) { /* str.split(), then lower() per word */
        if (sdc_uni_flags(b[i]) & SDC_UNI_SPACE) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < nb && !(sdc_uni_flags(b[j]) & SDC_UNI_SPACE)) j++;
        encode_word(e, b + i, j - i);
        i = j;
    }
    free(b);
}

static const uint32_t BOS_CP[] = {'<', '|', 's', 't', 'a', 'r', 't', 'o', 'f', 't', 'e', 'x', 't', '|', '>'};
static const uint32_t EOS_CP[] = {'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>'};

static sdc_status encode(const sdc_tokenizer *t, const char *text, size_t len, int32_t *out,
                         size_t cap, size_t stop, size_t *n, sdc_err *err) {
    if (!t) return sdc_err_set(err, SDC_ERR_ARG, "tokenize: no tokenizer");
    if (!text && len) return sdc_err_set(err, SDC_ERR_ARG, "tokenize: text is NULL");
    if (!out && cap) return sdc_err_set(err, SDC_ERR_ARG, "tokenize: output buffer is NULL");
    if (len > MAX_PROMPT_BYTES)
        return sdc_err_set(err, SDC_ERR_ARG, "prompt: %zu bytes, more than the %zu MiB limit", len,
                           MAX_PROMPT_BYTES >> 20);
    uint32_t *cp;
    size_t ncp;
    sdc_status st = sdc_utf8_decode(text ? text : "", len, "prompt", &cp, &ncp, err);
    if (st) return st;
    enc e = {.t = t, .out = out, .cap = cap, .stop = stop, .err = err};
    e.cache = calloc(CACHE_SLOTS, sizeof *e.cache); /* optional: NULL only disables the cache */
    /* Added tokens are cut out of the raw text first, exact and case-sensitive. */
    size_t piece = 0;
    for (size_t i = 0; i < ncp && !done(&e);) {
        size_t k = 0;
        int32_t id = 0;
        if (cp[i] == '<') {
            if (ncp - i >= 15 && !memcmp(cp + i, BOS_CP, sizeof BOS_CP)) k = 15, id = t->bos;
            else if (ncp - i >= 13 && !memcmp(cp + i, EOS_CP, sizeof EOS_CP)) k = 13, id = t->eos;
        }
        if (!k) {
            i++;
            continue;
        }
        encode_piece(&e, cp + piece, i - piece);
        if (!done(&e)) emit(&e, id);
        i += k;
        piece = i;
    }
    if (!done(&e)) encode_piece(&e, cp + piece, ncp - piece);
    free(cp);
    free(e.sym), free(e.nxt), free(e.prv), free(e.heap), free(e.batch);
    free(e.low), free(e.bytes), free(e.cache), free(e.ckeys), free(e.cids);
    if (e.st) return e.st;
    *n = e.count;
    return SDC_OK;
}

sdc_status sdc_tokenize(const sdc_tokenizer *tok, const char *text, size_t len, int32_t *out,
                        size_t cap, size_t *n, sdc_err *err) {
    if (!n) return sdc_err_set(err, SDC_ERR_ARG, "tokenize: n is NULL");
    *n = 0;
    return encode(tok, text, len, out, cap, SIZE_MAX, n, err);
}

sdc_status sdc_tokenize_77(const sdc_tokenizer *tok, const char *text, size_t len, int32_t ids[77],
                           bool *truncated, sdc_err *err) {
    if (!ids) return sdc_err_set(err, SDC_ERR_ARG, "tokenize: ids is NULL");
    int32_t content[SDC_TOKENS_MAX - 1];
    size_t n = 0;
    /* One token past the 75 that fit is enough to know the prompt is truncated. */
    sdc_status st = encode(tok, text, len, content, SDC_TOKENS_MAX - 1, SDC_TOKENS_MAX - 1, &n, err);
    if (st) return st;
    size_t keep = n < SDC_TOKENS_MAX - 2 ? n : SDC_TOKENS_MAX - 2;
    ids[0] = tok->bos;
    memcpy(ids + 1, content, keep * sizeof *ids);
    for (size_t i = keep + 1; i < SDC_TOKENS_MAX; i++) ids[i] = tok->eos;
    if (truncated) *truncated = n > keep;
    return SDC_OK;
}
