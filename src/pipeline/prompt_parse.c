/* prompt_parse.c — AUTOMATIC1111's emphasis syntax, (x) (x:1.3) [x] \( BREAK,
 * rebuilt from its documented behaviour (wiki "Attention/emphasis" and the
 * behaviour of parse_prompt_attention), iteratively: no recursion.
 *
 * The scan takes, at each position, the first that applies of:
 *   \( \) \[ \] \\   the bracket or backslash, literally
 *   \ (other)         a lone backslash is dropped (A1111 appends "")
 *   (  [              open: remember the current piece count on its stack
 *   :<ws><[+-]?[.0-9]+><ws>)   with a "(" open: close it, multiplying by the
 *                     number; a number Python's float() refuses ("1.2.3", ".")
 *                     is an error, as in A1111; with no "(" open it is text
 *   )  ]              close the innermost of its kind (x1.1, x1/1.1); with
 *                     none open the character is text
 *   a run of anything else (":" alone included) is text; in it, BREAK as a
 *                     whole word (with the whitespace around it) is a marker
 * Closing multiplies every piece appended since the matching open. At the end
 * unclosed "(" then unclosed "[" apply to the rest (outermost first); adjacent
 * pieces of equal weight are merged (this changes tokenization: "(a)(b)" is
 * the one word "ab" at 1.1); no pieces gives one "" of weight 1.
 * Deviations, on purpose: BREAK inside brackets still breaks (A1111 multiplies
 * its marker weight -1 and then encodes the word "break" with weight -1.1);
 * nesting deeper than SDC_PROMPT_MAX_DEPTH and weights that overflow a float
 * are errors (A1111 would produce Inf/0 weights); "\s" and word characters
 * for BREAK are ASCII (bytes >= 0x80 count as word characters). */
#include "prompt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rpiece {
    size_t off, len; /* text in the buffer; merging neighbours only grows len */
    double w;
    bool brk;
} rpiece;

typedef struct pstate {
    char *buf;
    size_t blen, bcap;
    rpiece *p;
    size_t n, pcap;
    size_t *rs, nr; /* "(" stack: piece count at the open */
    size_t *ss, ns; /* "[" stack */
    sdc_err *err;
    sdc_status st;
} pstate;

static bool grow(pstate *s, void **p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * sz);
    if (!q) {
        s->st = sdc_err_set(s->err, SDC_ERR_OOM, "prompt: out of memory");
        return false;
    }
    *p = q, *cap = c;
    return true;
}

static void add_piece(pstate *s, const char *t, size_t n, bool brk) {
    if (s->st || !grow(s, (void **)&s->buf, &s->bcap, s->blen + n + 1, 1) ||
        !grow(s, (void **)&s->p, &s->pcap, s->n + 1, sizeof *s->p))
        return;
    memcpy(s->buf + s->blen, t, n);
    s->p[s->n++] = (rpiece){s->blen, n, brk ? -1.0 : 1.0, brk};
    s->blen += n;
}

static void multiply_from(pstate *s, size_t start, double m) {
    for (size_t i = start; i < s->n; i++)
        if (!s->p[i].brk) s->p[i].w *= m;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static bool is_word(unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c == '_' || c >= 0x80;
}

/* A text run t[0..n): split at \s*\bBREAK\b\s* (boundaries relative to the
 * run, whose neighbours are always non-word characters). */
static void add_text(pstate *s, const char *t, size_t n) {
    size_t part = 0;
    for (size_t i = 0; i + 5 <= n; i++) {
        if (memcmp(t + i, "BREAK", 5) != 0) continue;
        if ((i > 0 && is_word((unsigned char)t[i - 1])) || (i + 5 < n && is_word((unsigned char)t[i + 5])))
            continue;
        size_t a = i, b = i + 5;
        while (a > part && is_ws(t[a - 1])) a--;
        while (b < n && is_ws(t[b])) b++;
        add_piece(s, t + part, a - part, false);
        add_piece(s, "", 0, true);
        part = b;
        i = b - 1;
    }
    add_piece(s, t + part, n - part, false);
}

/* Python float() over [+-]?[.0-9]+: at most one '.', at least one digit. */
static bool parse_weight(const char *t, size_t n, double *out) {
    char tmp[64];
    size_t digits = 0, dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '.') dots++;
        else if (t[i] >= '0' && t[i] <= '9') digits++;
    }
    if (digits == 0 || dots > 1) return false;
    if (n >= sizeof tmp) {
        /* Long digit strings: strtod needs a NUL-terminated copy. */
        char *big = malloc(n + 1);
        if (!big) return false;
        memcpy(big, t, n), big[n] = '\0';
        *out = strtod(big, NULL);
        free(big);
        return true;
    }
    memcpy(tmp, t, n), tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    return true;
}

/* ":" at t[i]: length of a full weight-close match and the number's span, or 0. */
static size_t match_weight(const char *t, size_t i, size_t *num_off, size_t *num_len) {
    size_t j = i + 1;
    while (is_ws(t[j])) j++;
    size_t a = j;
    if (t[j] == '+' || t[j] == '-') j++;
    size_t d = j;
    while (t[j] == '.' || (t[j] >= '0' && t[j] <= '9')) j++;
    if (j == d) return 0;
    size_t b = j;
    while (is_ws(t[j])) j++;
    if (t[j] != ')') return 0;
    *num_off = a, *num_len = b - a;
    return j + 1 - i;
}

static bool push(pstate *s, size_t **stack, size_t *n, size_t *cap, size_t at) {
    if (s->nr + s->ns >= SDC_PROMPT_MAX_DEPTH) {
        s->st = sdc_err_set(s->err, SDC_ERR_ARG, "prompt: brackets nested deeper than %d at byte %zu",
                            SDC_PROMPT_MAX_DEPTH, at);
        return false;
    }
    if (!grow(s, (void **)stack, cap, *n + 1, sizeof **stack)) return false;
    (*stack)[(*n)++] = s->n;
    return true;
}

static void scan(pstate *s, const char *t) {
    size_t rcap = 0, scap = 0;
    for (size_t i = 0; t[i] && !s->st;) {
        char c = t[i];
        if (c == '\\') {
            char d = t[i + 1];
            bool esc = d == '(' || d == ')' || d == '[' || d == ']' || d == '\\';
            add_piece(s, t + i + 1, esc ? 1 : 0, false);
            i += esc ? 2 : 1;
        } else if (c == '(') {
            push(s, &s->rs, &s->nr, &rcap, i);
            i++;
        } else if (c == '[') {
            push(s, &s->ss, &s->ns, &scap, i);
            i++;
        } else if (c == ':') {
            size_t no, nl, k = match_weight(t, i, &no, &nl);
            double w;
            if (k && s->nr) {
                if (!parse_weight(t + no, nl, &w)) {
                    s->st = sdc_err_set(s->err, SDC_ERR_ARG, "prompt: emphasis weight '%.*s' at byte %zu is not a number",
                                        (int)(nl < 40 ? nl : 40), t + no, no);
                    return;
                }
                multiply_from(s, s->rs[--s->nr], w);
            } else if (k) {
                add_text(s, t + i, k); /* ":1.5)" with no "(" open is text */
            } else {
                k = 1;
                add_text(s, t + i, 1);
            }
            i += k;
        } else if (c == ')' && s->nr) {
            multiply_from(s, s->rs[--s->nr], 1.1);
            i++;
        } else if (c == ']' && s->ns) {
            multiply_from(s, s->ss[--s->ns], 1 / 1.1);
            i++;
        } else if (c == ')' || c == ']') {
            add_text(s, t + i, 1);
            i++;
        } else {
            size_t j = i;
            while (t[j] && !strchr("\\()[]:", t[j])) j++;
            add_text(s, t + i, j - i);
            i = j;
        }
    }
}

sdc_status sdc_prompt_parse_a1111(const char *text, sdc_prompt_piece **pieces, size_t *n, sdc_err *err) {
    if (!pieces || !n) return sdc_err_set(err, SDC_ERR_ARG, "prompt parse: output is NULL");
    *pieces = NULL, *n = 0;
    if (!text) return sdc_err_set(err, SDC_ERR_ARG, "prompt parse: text is NULL");
    pstate s = {.err = err};
    scan(&s, text);
    /* Unclosed brackets apply to the rest, in A1111's order. */
    for (size_t k = 0; k < s.nr && !s.st; k++) multiply_from(&s, s.rs[k], 1.1);
    for (size_t k = 0; k < s.ns && !s.st; k++) multiply_from(&s, s.ss[k], 1 / 1.1);
    if (!s.st && s.n == 0) add_piece(&s, "", 0, false);
    /* Merge neighbours of equal weight (text is contiguous in buf). */
    size_t m = 0;
    for (size_t i = 0; i < s.n && !s.st; i++) {
        if (m && !s.p[i].brk && !s.p[m - 1].brk && s.p[i].w == s.p[m - 1].w) s.p[m - 1].len += s.p[i].len;
        else s.p[m++] = s.p[i];
    }
    for (size_t i = 0; i < m && !s.st; i++)
        if (!s.p[i].brk && !(isfinite(s.p[i].w) && fabs(s.p[i].w) <= FLT_MAX))
            s.st = sdc_err_set(err, SDC_ERR_ARG, "prompt: the emphasis weight of \"%.*s\" overflows a float",
                               (int)(s.p[i].len < 40 ? s.p[i].len : 40), s.buf + s.p[i].off);
    sdc_prompt_piece *out = NULL;
    if (!s.st) {
        /* One allocation: the pieces, then their NUL-terminated texts. */
        size_t text_bytes = s.blen + m;
        out = malloc(m * sizeof *out + text_bytes);
        if (!out) s.st = sdc_err_set(err, SDC_ERR_OOM, "prompt: out of memory");
        char *tb = (char *)(out + m);
        for (size_t i = 0; out && i < m; i++) {
            memcpy(tb, s.buf + s.p[i].off, s.p[i].len);
            tb[s.p[i].len] = '\0';
            out[i] = (sdc_prompt_piece){tb, s.p[i].len, s.p[i].brk ? -1.0 : s.p[i].w, s.p[i].brk};
            tb += s.p[i].len + 1;
        }
    }
    free(s.buf), free(s.p), free(s.rs), free(s.ss);
    if (s.st) return s.st;
    *pieces = out, *n = m;
    return SDC_OK;
}
