/* a1111.c — the "parameters" text AUTOMATIC1111's web UI stores in its PNGs:
 * writing it (create_infotext's layout and quoting) and parsing it back
 * (parse_generation_parameters, with its regular expression hand-matched). */
#include "image.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- writing */

/* Python's \w for the ASCII range, and every non-ASCII byte. */
static bool is_word_char(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Python's repr of a float: the shortest digits that round-trip, fixed
 * notation with at least one decimal for exponents in [-4, 16). */
static void py_float(char *out, size_t cap, double v) {
    char e[64];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    int exp = atoi(strchr(e, 'e') + 1);
    if (exp < -4 || exp >= 16) {
        snprintf(out, cap, "%s", e); /* close enough to Python's 1e+16 */
        return;
    }
    int dec = prec - 1 - exp;
    snprintf(out, cap, "%.*f", dec < 1 ? 1 : dec, v);
}

/* A1111's quote(): JSON (ensure_ascii=False) when the value holds ',', ':'
 * or a newline, else as is. */
static void sb_value(sbuf *b, const char *v) {
    if (!strpbrk(v, ",:\n")) {
        sb_str(b, v);
        return;
    }
    sb_str(b, "\"");
    for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
        switch (*s) {
        case '"': sb_str(b, "\\\""); break;
        case '\\': sb_str(b, "\\\\"); break;
        case '\n': sb_str(b, "\\n"); break;
        case '\r': sb_str(b, "\\r"); break;
        case '\t': sb_str(b, "\\t"); break;
        case '\b': sb_str(b, "\\b"); break;
        case '\f': sb_str(b, "\\f"); break;
        default:
            if (*s < 0x20) sb_fmt(b, "\\u%04x", *s);
            else sb_add(b, (const char *)s, 1);
        }
    }
    sb_str(b, "\"");
}

static void sb_param(sbuf *b, int *k, const char *key, const char *value) {
    sb_str(b, (*k)++ ? ", " : "");
    sb_str(b, key);
    sb_str(b, ": ");
    sb_value(b, value);
}

char *sdc_a1111_parameters(const sdc_gen_meta *m) {
    sbuf b = {0};
    char num[64];
    int k = 0;
    sb_str(&b, m->prompt ? m->prompt : "");
    if (m->negative_prompt && *m->negative_prompt) {
        sb_str(&b, "\nNegative prompt: ");
        sb_str(&b, m->negative_prompt);
    }
    sb_str(&b, "\n");
    if (m->steps > 0) {
        snprintf(num, sizeof num, "%d", m->steps);
        sb_param(&b, &k, "Steps", num);
    }
    if (m->sampler) sb_param(&b, &k, "Sampler", m->sampler);
    if (isfinite(m->cfg_scale)) {
        py_float(num, sizeof num, m->cfg_scale);
        sb_param(&b, &k, "CFG scale", num);
    }
    if (m->has_seed) {
        snprintf(num, sizeof num, "%" PRId64, m->seed);
        sb_param(&b, &k, "Seed", num);
    }
    if (m->width > 0 && m->height > 0) {
        snprintf(num, sizeof num, "%dx%d", m->width, m->height);
        sb_param(&b, &k, "Size", num);
    }
    if (m->model_hash) sb_param(&b, &k, "Model hash", m->model_hash);
    if (m->model) sb_param(&b, &k, "Model", m->model);
    if (m->img2img) {
        py_float(num, sizeof num, m->denoising_strength);
        sb_param(&b, &k, "Denoising strength", num);
    }
    if (m->clip_skip > 1) {
        snprintf(num, sizeof num, "%d", m->clip_skip);
        sb_param(&b, &k, "Clip skip", num);
    }
    if (m->schedule_type) sb_param(&b, &k, "Schedule type", m->schedule_type);
    /* A1111 writes the noise source only when it is not its default (GPU). */
    if (m->rng) sb_param(&b, &k, "RNG", m->rng);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    /* .strip(): Python's whitespace (ASCII is enough for what we write). */
    size_t s = 0, e = b.len;
    while (s < e && isspace((unsigned char)b.p[s])) s++;
    while (e > s && isspace((unsigned char)b.p[e - 1])) e--;
    memmove(b.p, b.p + s, e - s);
    b.p[e - s] = 0;
    return b.p;
}

char *sdc_a1111_escape(const char *plain) {
    sbuf b = {0};
    for (const char *p = plain ? plain : ""; *p; p++) {
        bool word_start = p == plain || !is_word_char((unsigned char)p[-1]);
        if (word_start && !strncmp(p, "AND", 3) && !is_word_char((unsigned char)p[3])) {
            sb_str(&b, "and");
            p += 2;
        } else if (word_start && !strncmp(p, "BREAK", 5) && !is_word_char((unsigned char)p[5])) {
            sb_str(&b, "break");
            p += 4;
        } else {
            if (strchr("()[]\\", *p)) sb_str(&b, "\\");
            sb_add(&b, p, 1);
        }
    }
    if (!b.p && !b.oom) sb_str(&b, "");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---------------------------------------------------------------- parsing */

static bool is_word(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }
static bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

typedef struct span {
    const char *p;
    size_t n;
} span;

/* One match of \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$) at s
 * (end is the line's end). Returns the position after it, or NULL. */
static const char *match_param(const char *s, const char *end, span *key, span *val) {
    while (s < end && is_space((unsigned char)*s)) s++;
    const char *k = s;
    if (s >= end || !is_word((unsigned char)*s)) return NULL;
    s++;
    while (s < end && (is_word((unsigned char)*s) || *s == ' ' || *s == '-' || *s == '/')) s++;
    if (s - k < 2 || s >= end || *s != ':') return NULL;
    *key = (span){k, (size_t)(s - k)};
    s++;
    while (s < end && is_space((unsigned char)*s)) s++;
    if (s < end && *s == '"') { /* the quoted alternative, when a ',' or the end follows */
        const char *q = s + 1;
        while (q < end && *q != '"') q += *q == '\\' && q + 1 < end ? 2 : 1;
        if (q < end && q > s + 1 && (q + 1 == end || q[1] == ',')) {
            *val = (span){s, (size_t)(q + 1 - s)};
            return q + 1 == end ? end : q + 2;
        }
    }
    const char *v = s;
    while (s < end && *s != ',') s++;
    *val = (span){v, (size_t)(s - v)};
    return s < end ? s + 1 : end;
}

/* Every match in [s, end), as re.findall. Returns the count (up to cap stored). */
static int find_params(const char *s, const char *end, span *keys, span *vals, int cap) {
    int n = 0;
    while (s < end) {
        span k, v;
        const char *next = match_param(s, end, &k, &v);
        if (!next) {
            s++;
            continue;
        }
        if (n < cap) keys[n] = k, vals[n] = v;
        n++;
        s = next;
    }
    return n;
}

/* Appends the JSON-unquoted value (or the raw one if it is not valid JSON)
 * to the storage; returns its start. */
static char *store(char **w, const char *s, size_t n, bool unquote) {
    char *start = *w, *o = *w;
    if (unquote && n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        for (size_t i = 1; i + 1 < n; i++) {
            if (s[i] != '\\') {
                *o++ = s[i];
                continue;
            }
            char c = s[++i];
            switch (c) {
            case '"': case '\\': case '/': *o++ = c; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                if (i + 4 > n - 2) goto raw;
                char hex[5] = {s[i + 1], s[i + 2], s[i + 3], s[i + 4], 0}, *e;
                unsigned long cp = strtoul(hex, &e, 16);
                /* NUL and surrogate pairs are rare in infotext: keep the raw value. */
                if (*e || !isxdigit((unsigned char)hex[0]) || cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                    goto raw;
                if (cp < 0x80) {
                    *o++ = (char)cp;
                } else if (cp < 0x800) {
                    *o++ = (char)(0xC0 | cp >> 6);
                    *o++ = (char)(0x80 | (cp & 0x3F));
                } else {
                    *o++ = (char)(0xE0 | cp >> 12);
                    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                }
                i += 4;
                break;
            }
            default: goto raw;
            }
        }
        *o++ = 0;
        *w = o;
        return start;
    }
raw:
    memcpy(start, s, n);
    start[n] = 0;
    *w = start + n + 1;
    return start;
}

static bool parse_i64(const char *s, int64_t *v) {
    char *e;
    errno = 0;
    long long x = strtoll(s, &e, 10);
    if (e == s || *e || errno) return false;
    *v = x;
    return true;
}

static bool parse_f64(const char *s, double *v) {
    char *e;
    errno = 0;
    double x = strtod(s, &e);
    if (e == s || *e || errno || !isfinite(x)) return false;
    *v = x;
    return true;
}

static void set_field(sdc_gen_meta *m, const char *key, size_t klen, const char *v) {
    int64_t i;
    double f;
#define KEY(k) (klen == sizeof k - 1 && memcmp(key, k, klen) == 0)
    if (KEY("Steps") && parse_i64(v, &i) && i > 0 && i <= INT32_MAX) m->steps = (int)i;
    else if (KEY("Sampler")) m->sampler = v;
    else if (KEY("CFG scale") && parse_f64(v, &f)) m->cfg_scale = f;
    else if (KEY("Seed") && parse_i64(v, &i)) m->seed = i, m->has_seed = true;
    else if (KEY("Model hash")) m->model_hash = v;
    else if (KEY("Model")) m->model = v;
    else if (KEY("Denoising strength") && parse_f64(v, &f)) m->denoising_strength = f, m->img2img = true;
    else if (KEY("Clip skip") && parse_i64(v, &i) && i > 0 && i <= INT32_MAX) m->clip_skip = (int)i;
    else if (KEY("Schedule type")) m->schedule_type = v;
    else if (KEY("RNG")) m->rng = v;
    else if (KEY("Size")) {
        int w = 0, h = 0, n = 0;
        if (sscanf(v, "%9d%*[x]%9d%n", &w, &h, &n) == 2 && !v[n] && w > 0 && h > 0 &&
            isdigit((unsigned char)v[0]))
            m->width = w, m->height = h;
    }
#undef KEY
}

sdc_status sdc_a1111_parse(const char *text, sdc_gen_meta *m, char **storage, sdc_err *err) {
    *m = (sdc_gen_meta){.cfg_scale = NAN};
    *storage = NULL;
    if (!text) return sdc_err_set(err, SDC_ERR_ARG, "A1111 parameters: no text");
    size_t len = strlen(text);
    char *w = malloc(2 * len + 16);
    if (!w) return sdc_err_set(err, SDC_ERR_OOM, "A1111 parameters: out of memory");
    *storage = w;
    const char *s = text, *e = text + len; /* x.strip() */
    while (s < e && is_space((unsigned char)*s)) s++;
    while (e > s && is_space((unsigned char)e[-1])) e--;
    const char *last = e;
    while (last > s && last[-1] != '\n') last--;
    span keys[64], vals[64];
    int np = find_params(last, e, keys, vals, 64);
    const char *prompt_end = e;
    if (np >= 3) prompt_end = last > s ? last - 1 : s;
    else np = 0;
    /* Prompt lines (each stripped), then negative prompt lines. */
    char *prompt = w, *neg = NULL;
    *w = 0;
    size_t plen = 0, nlen = 0;
    char *negbuf = w + len + 1;
    *negbuf = 0;
    bool in_neg = false;
    for (const char *line = s; line < prompt_end;) {
        const char *nl = memchr(line, '\n', (size_t)(prompt_end - line));
        const char *le = nl ? nl : prompt_end, *ls = line;
        while (ls < le && is_space((unsigned char)*ls)) ls++;
        while (le > ls && is_space((unsigned char)le[-1])) le--;
        if ((size_t)(le - ls) >= 16 && memcmp(ls, "Negative prompt:", 16) == 0) {
            in_neg = true;
            ls += 16;
            while (ls < le && is_space((unsigned char)*ls)) ls++;
        }
        char *dst = in_neg ? negbuf : prompt;
        size_t *dl = in_neg ? &nlen : &plen;
        if (*dl) dst[(*dl)++] = '\n';
        memcpy(dst + *dl, ls, (size_t)(le - ls));
        *dl += (size_t)(le - ls);
        dst[*dl] = 0;
        line = nl ? nl + 1 : prompt_end;
    }
    m->prompt = prompt;
    if (in_neg) neg = negbuf;
    m->negative_prompt = neg;
    /* Values go after the negative prompt's bytes. */
    char *vw = negbuf + nlen + 1;
    for (int i = 0; i < np && i < 64; i++) {
        char *v = store(&vw, vals[i].p, vals[i].n, true);
        set_field(m, keys[i].p, keys[i].n, v);
    }
    return SDC_OK;
}
