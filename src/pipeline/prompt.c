/* prompt.c — the conditioning plan: token ids and per-token weights in 77-token
 * chunks, for diffusers' plain prompts and A1111's emphasis syntax (chunking,
 * BREAK, comma backtrack), with textual-inversion triggers as placeholder ids,
 * and A1111's mean-restoring weighting of the encoder's hidden states.
 *
 * Chunking (a1111), as A1111's tokenize_line: pieces are tokenized one by one
 * and their tokens appended to a chunk of up to 75; when a 76th token arrives
 * the chunk is closed (padded with EOS to 75, then BOS + 75 + EOS; weights 1
 * on BOS/EOS/padding). Comma backtrack: when the chunk is full, the next token
 * is not a comma, and the last comma in the chunk is at most 20 tokens from
 * its end, the tokens after that comma move to the next chunk. BREAK closes the
 * chunk at once (even an empty one; a trailing BREAK adds nothing). A
 * multi-vector embedding that does not fit in the current chunk starts the
 * next one. At most SDC_PROMPT_MAX_CHUNKS chunks; later tokens are dropped
 * and `truncated` set (A1111 has no limit).
 *
 * Triggers: a trigger word matches the exact bytes (case-sensitive) inside
 * one piece's text; where the trigger begins or ends with a word character
 * (ASCII letter, digit, '_', any non-ASCII byte) the neighbouring character
 * must not be one, so "cat" matches in "a cat," but not in "cats", while
 * "<cat-toy>" matches anywhere, like diffusers' added tokens. The longest
 * trigger wins at a position. The text between matches is tokenized on its
 * own. (A1111 instead matches the trigger's token ids in the piece's ids,
 * which ignores case and can match inside a word.) */
#include "prompt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../text/unicode.h"

#define CHUNK_IDS (SDC_PROMPT_CHUNK + 2)

typedef struct trig {
    const char *w;
    size_t len, row;
    int n;
} trig;

/* A token (n == 0) or an embedding of n vectors starting at row id - base. */
typedef struct item {
    int32_t id;
    int n;
} item;

typedef struct ctx {
    const sdc_tokenizer *tok;
    trig *tr;
    size_t ntr;
    bool first[256];  /* bytes a trigger can start with */
    item *it;
    size_t nit, itcap;
    int32_t *ids;     /* tokenizer scratch */
    size_t idcap;
    sdc_err *err;
} ctx;

static bool is_word(unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c == '_' || c >= 0x80;
}

static sdc_status push_item(ctx *c, int32_t id, int n) {
    if (c->nit == c->itcap) {
        size_t cap = c->itcap ? 2 * c->itcap : 256;
        item *p = realloc(c->it, cap * sizeof *p);
        if (!p) return sdc_err_set(c->err, SDC_ERR_OOM, "prompt: out of memory");
        c->it = p, c->itcap = cap;
    }
    c->it[c->nit++] = (item){id, n};
    return SDC_OK;
}

static sdc_status tokenize_append(ctx *c, const char *t, size_t len) {
    size_t k = 0;
    while (k < len && (t[k] == ' ' || t[k] == '\t' || t[k] == '\n' || t[k] == '\r')) k++;
    if (k == len) return SDC_OK; /* nothing to tokenize; saves a call per empty piece */
    size_t n = 0;
    sdc_status st = sdc_tokenize(c->tok, t, len, c->ids, c->idcap, &n, c->err);
    if (!st && n > c->idcap) { /* the first call told us the count */
        int32_t *p = realloc(c->ids, n * sizeof *p);
        if (!p) return sdc_err_set(c->err, SDC_ERR_OOM, "prompt: out of memory");
        c->ids = p, c->idcap = n;
        st = sdc_tokenize(c->tok, t, len, c->ids, c->idcap, &n, c->err);
    }
    for (size_t i = 0; i < n && !st; i++) st = push_item(c, c->ids[i], 0);
    return st;
}

static bool trigger_at(const ctx *c, const char *t, size_t len, size_t i, const trig **out) {
    for (size_t k = 0; k < c->ntr; k++) {
        const trig *g = &c->tr[k];
        if (g->len > len - i || memcmp(t + i, g->w, g->len) != 0) continue;
        if (is_word((unsigned char)g->w[0]) && i > 0 && is_word((unsigned char)t[i - 1])) continue;
        size_t e = i + g->len;
        if (is_word((unsigned char)g->w[g->len - 1]) && e < len && is_word((unsigned char)t[e])) continue;
        *out = g;
        return true;
    }
    return false;
}

/* c->it = the items of t[0..len): tokens, with triggers as embedding items. */
static sdc_status items_of(ctx *c, const char *t, size_t len) {
    c->nit = 0;
    size_t seg = 0;
    sdc_status st = SDC_OK;
    for (size_t i = 0; i < len && !st;) {
        const trig *g;
        if (!c->first[(unsigned char)t[i]] || !trigger_at(c, t, len, i, &g)) {
            i++;
            continue;
        }
        st = tokenize_append(c, t + seg, i - seg);
        if (!st) st = push_item(c, (int32_t)(SDC_EMB_ID_BASE + g->row), g->n);
        i += g->len;
        seg = i;
    }
    return st ? st : tokenize_append(c, t + seg, len - seg);
}

static int cmp_trig(const void *a, const void *b) {
    const trig *x = a, *y = b;
    return x->len != y->len ? (x->len < y->len ? 1 : -1) : (x->row < y->row ? -1 : x->row > y->row);
}

static sdc_status ctx_init(ctx *c, const sdc_tokenizer *tok, const sdc_embedding_set *emb, sdc_err *err) {
    *c = (ctx){.tok = tok, .err = err};
    c->ntr = sdc_embeddings_count(emb);
    if (!c->ntr) return SDC_OK;
    if (!(c->tr = calloc(c->ntr, sizeof *c->tr))) return sdc_err_set(err, SDC_ERR_OOM, "prompt: out of memory");
    for (size_t i = 0; i < c->ntr; i++) {
        trig *g = &c->tr[i];
        sdc_embeddings_at(emb, i, &g->w, &g->row, &g->n, NULL);
        g->len = strlen(g->w);
        c->first[(unsigned char)g->w[0]] = true;
    }
    qsort(c->tr, c->ntr, sizeof *c->tr, cmp_trig);
    return SDC_OK;
}

static void ctx_free(ctx *c) { free(c->tr), free(c->it), free(c->ids); }

/* ---------------------------------------------------------------- chunks */

typedef struct chunker {
    int32_t cur[SDC_PROMPT_CHUNK];
    float curw[SDC_PROMPT_CHUNK];
    int len, last_comma;
    sdc_cond_plan *out;   /* ids/weights hold SDC_PROMPT_MAX_CHUNKS chunks */
    int32_t bos, eos, comma;
    bool full;            /* a chunk past the limit was needed: stop */
} chunker;

static void next_chunk(chunker *k) {
    sdc_cond_plan *p = k->out;
    if (p->n_chunks == SDC_PROMPT_MAX_CHUNKS) {
        k->full = p->truncated = true;
        return;
    }
    int32_t *ids = p->ids + (size_t)p->n_chunks * CHUNK_IDS;
    float *w = p->weights + (size_t)p->n_chunks * CHUNK_IDS;
    ids[0] = k->bos, w[0] = 1.0f;
    for (int i = 0; i < SDC_PROMPT_CHUNK; i++) {
        ids[1 + i] = i < k->len ? k->cur[i] : k->eos;
        w[1 + i] = i < k->len ? k->curw[i] : 1.0f;
    }
    ids[CHUNK_IDS - 1] = k->eos, w[CHUNK_IDS - 1] = 1.0f;
    p->n_chunks++;
    k->len = 0;
    k->last_comma = -1;
}

/* One item of weight w, following A1111's tokenize_line loop. */
static void chunk_item(chunker *k, const item *it, float w) {
    if (it->n == 0 && it->id == k->comma) {
        k->last_comma = k->len;
    } else if (k->len == SDC_PROMPT_CHUNK && k->last_comma != -1 &&
               k->len - k->last_comma <= SDC_PROMPT_COMMA_BACKTRACK) {
        int from = k->last_comma + 1, moved = SDC_PROMPT_CHUNK - from;
        int32_t ids[SDC_PROMPT_CHUNK];
        float ws[SDC_PROMPT_CHUNK];
        memcpy(ids, k->cur + from, (size_t)moved * sizeof *ids);
        memcpy(ws, k->curw + from, (size_t)moved * sizeof *ws);
        k->len = from;
        next_chunk(k);
        if (k->full) return;
        memcpy(k->cur, ids, (size_t)moved * sizeof *ids);
        memcpy(k->curw, ws, (size_t)moved * sizeof *ws);
        k->len = moved;
    }
    if (k->len == SDC_PROMPT_CHUNK) next_chunk(k);
    if (k->full) return;
    if (it->n == 0) {
        k->cur[k->len] = it->id, k->curw[k->len++] = w;
        return;
    }
    if (k->len + it->n > SDC_PROMPT_CHUNK) next_chunk(k);
    if (k->full) return;
    for (int v = 0; v < it->n; v++) k->cur[k->len] = it->id + v, k->curw[k->len++] = w;
}

static sdc_status alloc_plan(sdc_cond_plan *p, int n_chunks, sdc_err *err) {
    p->ids = malloc((size_t)n_chunks * CHUNK_IDS * sizeof *p->ids);
    p->weights = malloc((size_t)n_chunks * CHUNK_IDS * sizeof *p->weights);
    if (!p->ids || !p->weights) return sdc_err_set(err, SDC_ERR_OOM, "prompt: out of memory");
    return SDC_OK;
}

static sdc_status plan_a1111(ctx *c, const char *prompt, sdc_cond_plan *out, sdc_err *err) {
    sdc_prompt_piece *pc;
    size_t np;
    sdc_status st = sdc_prompt_parse_a1111(prompt, &pc, &np, err);
    if (st) return st;
    st = alloc_plan(out, SDC_PROMPT_MAX_CHUNKS, err);
    chunker k = {.len = 0, .last_comma = -1, .out = out,
                 .bos = sdc_tokenizer_lookup(c->tok, "<|startoftext|>"),
                 .eos = sdc_tokenizer_lookup(c->tok, "<|endoftext|>"),
                 .comma = sdc_tokenizer_lookup(c->tok, ",</w>")};
    if (k.comma < 0) k.comma = -2; /* no comma token: never matches an id */
    for (size_t i = 0; i < np && !st && !k.full; i++) {
        if (pc[i].is_break) {
            next_chunk(&k);
            continue;
        }
        st = items_of(c, pc[i].text, pc[i].len);
        for (size_t j = 0; j < c->nit && !st && !k.full; j++) chunk_item(&k, &c->it[j], (float)pc[i].weight);
    }
    if (!st && !k.full && (k.len > 0 || out->n_chunks == 0)) next_chunk(&k);
    free(pc);
    return st;
}

static sdc_status plan_plain(ctx *c, const char *prompt, size_t len, sdc_cond_plan *out, sdc_err *err) {
    sdc_status st = alloc_plan(out, 1, err);
    if (st) return st;
    out->n_chunks = 1;
    for (int i = 0; i < CHUNK_IDS; i++) out->weights[i] = 1.0f;
    if (c->ntr == 0) /* exactly diffusers' tokenizer call */
        return sdc_tokenize_77(c->tok, prompt, len, out->ids, &out->truncated, err);
    if ((st = items_of(c, prompt, len))) return st;
    /* As diffusers: the trigger expands into n tokens, then truncation at 75. */
    int n = 0;
    out->ids[n++] = sdc_tokenizer_lookup(c->tok, "<|startoftext|>");
    int32_t eos = sdc_tokenizer_lookup(c->tok, "<|endoftext|>");
    for (size_t j = 0; j < c->nit; j++)
        for (int v = 0; v < (c->it[j].n ? c->it[j].n : 1); v++) {
            if (n == SDC_PROMPT_CHUNK + 1) {
                out->truncated = true;
                break;
            }
            out->ids[n++] = c->it[j].id + v;
        }
    while (n < CHUNK_IDS) out->ids[n++] = eos;
    return SDC_OK;
}

sdc_status sdc_prompt_plan(const sdc_tokenizer *tok, const char *prompt, sdc_prompt_syntax syntax,
                           const sdc_embedding_set *emb, sdc_cond_plan *out, sdc_err *err) {
    if (!out) return sdc_err_set(err, SDC_ERR_ARG, "prompt: output plan is NULL");
    *out = (sdc_cond_plan){0};
    if (!tok) return sdc_err_set(err, SDC_ERR_ARG, "prompt: no tokenizer");
    if (!prompt) return sdc_err_set(err, SDC_ERR_ARG, "prompt: text is NULL");
    if (syntax != SDC_PROMPT_PLAIN && syntax != SDC_PROMPT_A1111)
        return sdc_err_set(err, SDC_ERR_ARG, "prompt: unknown syntax %d", (int)syntax);
    /* Validate once over the whole prompt so an error names the prompt's own
     * byte offset, not one inside a piece. */
    size_t len = strlen(prompt), ncp;
    sdc_status st = sdc_utf8_decode(prompt, len, "prompt", NULL, &ncp, err);
    if (st) return st;
    ctx c;
    if (!(st = ctx_init(&c, tok, emb, err)))
        st = syntax == SDC_PROMPT_PLAIN ? plan_plain(&c, prompt, len, out, err) : plan_a1111(&c, prompt, out, err);
    ctx_free(&c);
    if (st) sdc_cond_plan_free(out);
    return st;
}

void sdc_cond_plan_free(sdc_cond_plan *p) {
    if (!p) return;
    free(p->ids), free(p->weights);
    *p = (sdc_cond_plan){0};
}

sdc_status sdc_cond_plan_pad(sdc_cond_plan *p, const sdc_tokenizer *tok, int n_chunks, sdc_err *err) {
    if (!p || !tok || n_chunks < 0 || n_chunks > 4096)
        return sdc_err_set(err, SDC_ERR_ARG, "prompt pad: bad arguments (%d chunks)", n_chunks);
    if (n_chunks <= p->n_chunks) return SDC_OK;
    size_t n = (size_t)n_chunks * CHUNK_IDS;
    int32_t *ids = realloc(p->ids, n * sizeof *ids);
    if (ids) p->ids = ids;
    float *w = ids ? realloc(p->weights, n * sizeof *w) : NULL;
    if (!ids || !w) return sdc_err_set(err, SDC_ERR_OOM, "prompt pad: out of memory");
    p->weights = w;
    int32_t bos = sdc_tokenizer_lookup(tok, "<|startoftext|>"), eos = sdc_tokenizer_lookup(tok, "<|endoftext|>");
    for (size_t i = (size_t)p->n_chunks * CHUNK_IDS; i < n; i++) {
        p->ids[i] = i % CHUNK_IDS == 0 ? bos : eos;
        p->weights[i] = 1.0f;
    }
    p->n_chunks = n_chunks;
    return SDC_OK;
}

void sdc_prompt_apply_weights(float *z, const float *weights, int n_tokens, int dim) {
    if (!z || !weights || n_tokens <= 0 || dim <= 0) return;
    bool ones = true;
    for (int t = 0; t < n_tokens; t++) ones &= weights[t] == 1.0f;
    if (ones) return;
    size_t d = (size_t)dim;
    double s0 = 0, s1 = 0;
    for (size_t i = 0; i < (size_t)n_tokens * d; i++) s0 += z[i];
    for (int t = 0; t < n_tokens; t++)
        for (size_t i = 0; i < d; i++) s1 += (z[(size_t)t * d + i] *= weights[t]);
    /* mean ratio == sum ratio (same element count) */
    if (s1 == 0 || !isfinite(s1) || !isfinite(s0)) return;
    float scale = (float)(s0 / s1);
    for (size_t i = 0; i < (size_t)n_tokens * d; i++) z[i] *= scale;
}

bool sdc_prompt_syntax_from_name(const char *name, sdc_prompt_syntax *out) {
    if (!name || !out) return false;
    if (strcmp(name, "plain") == 0) *out = SDC_PROMPT_PLAIN;
    else if (strcmp(name, "a1111") == 0) *out = SDC_PROMPT_A1111;
    else return false;
    return true;
}

const char *sdc_prompt_syntax_name(sdc_prompt_syntax s) {
    return s == SDC_PROMPT_A1111 ? "a1111" : s == SDC_PROMPT_PLAIN ? "plain" : "unknown";
}
