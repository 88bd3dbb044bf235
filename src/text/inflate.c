/* inflate.c — DEFLATE (RFC 1951) and gzip (RFC 1952) decoding. Huffman codes
 * decode through one 2^15-entry table per code (entry = symbol << 4 | length,
 * 0 = no such code). Every read is bounds-checked: bits past the end of the
 * input read as zeros but consuming one is a "truncated" error. */
#include "inflate.h"

#include <stdlib.h>
#include <string.h>

#define MAXBITS 15
#define TABLE_SIZE (1u << MAXBITS)

typedef struct inflater {
    const uint8_t *in;
    size_t in_len, pos;   /* next input byte */
    uint64_t bits;        /* bit buffer, LSB first */
    unsigned nbits;
    size_t phantom;       /* zero bytes fed past the end of the input */
    uint8_t *out;
    size_t out_len, out_cap, max_out;
    const char *what;
    sdc_err *err;
    sdc_status st;        /* first error */
    uint16_t lit[TABLE_SIZE], dist[TABLE_SIZE], clen[TABLE_SIZE];
} inflater;

static int fail(inflater *z, sdc_status code, const char *why) {
    if (z->st == SDC_OK)
        z->st = sdc_err_set(z->err, code, "%s: corrupt deflate data: %s", z->what, why);
    return -1;
}

static void refill(inflater *z) {
    while (z->nbits <= 56) {
        uint64_t b = 0;
        if (z->pos < z->in_len) b = z->in[z->pos++];
        else z->phantom++;
        z->bits |= b << z->nbits;
        z->nbits += 8;
    }
}

/* Drops n bits; -1 if that consumed bits that lie past the end of the input. */
static int consume(inflater *z, unsigned n) {
    z->bits >>= n;
    z->nbits -= n;
    if (z->phantom && z->nbits < z->phantom * 8) return fail(z, SDC_ERR_FORMAT, "input ends early");
    return 0;
}

/* n <= 32 bits as a number; -1 on error. */
static long getbits(inflater *z, unsigned n) {
    if (n == 0) return 0;
    refill(z);
    long v = (long)(z->bits & ((1ull << n) - 1));
    return consume(z, n) ? -1 : v;
}

/* Builds the decode table of a canonical Huffman code. Lengths are 0..15.
 * Over-subscribed codes are refused; incomplete ones only when allowed (then
 * unused bit patterns decode as errors). */
static int build(inflater *z, uint16_t *table, const uint8_t *lens, unsigned n, int allow_incomplete) {
    unsigned count[MAXBITS + 1] = {0};
    for (unsigned i = 0; i < n; i++) count[lens[i]]++;
    count[0] = 0;
    int left = 1;
    for (unsigned len = 1; len <= MAXBITS; len++) {
        left = left * 2 - (int)count[len];
        if (left < 0) return fail(z, SDC_ERR_FORMAT, "over-subscribed Huffman code");
    }
    unsigned used = 0;
    for (unsigned len = 1; len <= MAXBITS; len++) used += count[len];
    /* zlib's rule: an incomplete code may only be a single code of length 1,
     * or empty (a distance code of a block without matches). */
    if (left > 0 && !(allow_incomplete && (used == 0 || (used == 1 && count[1] == 1))))
        return fail(z, SDC_ERR_FORMAT, "incomplete Huffman code");
    memset(table, 0, TABLE_SIZE * sizeof *table);
    unsigned next[MAXBITS + 2] = {0};
    unsigned code = 0;
    for (unsigned len = 1; len <= MAXBITS; len++) {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    for (unsigned sym = 0; sym < n; sym++) {
        unsigned len = lens[sym];
        if (!len) continue;
        unsigned c = next[len]++, rev = 0;
        for (unsigned b = 0; b < len; b++) rev |= ((c >> b) & 1u) << (len - 1 - b);
        for (unsigned idx = rev; idx < TABLE_SIZE; idx += 1u << len)
            table[idx] = (uint16_t)(sym << 4 | len);
    }
    return 0;
}

static int decode(inflater *z, const uint16_t *table) {
    refill(z);
    uint16_t e = table[z->bits & (TABLE_SIZE - 1)];
    if (e == 0) return fail(z, SDC_ERR_FORMAT, "invalid Huffman code");
    if (consume(z, e & 15u)) return -1;
    return e >> 4;
}

/* Makes room for n more output bytes (plus the final NUL) within max_out. */
static int reserve(inflater *z, size_t n) {
    if (n > z->max_out - z->out_len)
        return fail(z, SDC_ERR_FORMAT, "decompressed size exceeds the limit");
    if (z->out_len + n + 1 <= z->out_cap) return 0;
    size_t cap = z->out_cap ? z->out_cap : 65536;
    while (cap < z->out_len + n + 1) cap = cap > z->max_out / 2 ? z->max_out + 1 : cap * 2;
    uint8_t *p = realloc(z->out, cap);
    if (!p) return fail(z, SDC_ERR_OOM, "out of memory");
    z->out = p;
    z->out_cap = cap;
    return 0;
}

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                       33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int codes(inflater *z) {
    for (;;) {
        int sym = decode(z, z->lit);
        if (sym < 0) return -1;
        if (sym < 256) {
            if (reserve(z, 1)) return -1;
            z->out[z->out_len++] = (uint8_t)sym;
            continue;
        }
        if (sym == 256) return 0;
        sym -= 257;
        if (sym >= 29) return fail(z, SDC_ERR_FORMAT, "invalid length symbol");
        long extra = getbits(z, len_extra[sym]);
        if (extra < 0) return -1;
        size_t len = len_base[sym] + (size_t)extra;
        int ds = decode(z, z->dist);
        if (ds < 0) return -1;
        if (ds >= 30) return fail(z, SDC_ERR_FORMAT, "invalid distance symbol");
        extra = getbits(z, dist_extra[ds]);
        if (extra < 0) return -1;
        size_t d = dist_base[ds] + (size_t)extra;
        if (d > z->out_len) return fail(z, SDC_ERR_FORMAT, "distance too far back");
        if (reserve(z, len)) return -1;
        uint8_t *o = z->out + z->out_len;
        for (size_t i = 0; i < len; i++) o[i] = o[(ptrdiff_t)i - (ptrdiff_t)d];
        z->out_len += len;
    }
}

static int fixed_tables(inflater *z) {
    uint8_t l[320];
    unsigned i = 0;
    for (; i < 144; i++) l[i] = 8;
    for (; i < 256; i++) l[i] = 9;
    for (; i < 280; i++) l[i] = 7;
    for (; i < 288; i++) l[i] = 8;
    for (i = 0; i < 32; i++) l[288 + i] = 5; /* 30 and 31 are refused when decoded */
    if (build(z, z->lit, l, 288, 0)) return -1;
    return build(z, z->dist, l + 288, 32, 0);
}

static int dynamic_tables(inflater *z) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    long nlen = getbits(z, 5), ndist = getbits(z, 5), ncode = getbits(z, 4);
    if (nlen < 0 || ndist < 0 || ncode < 0) return -1;
    nlen += 257, ndist += 1, ncode += 4;
    if (nlen > 286 || ndist > 30) return fail(z, SDC_ERR_FORMAT, "too many length or distance codes");
    uint8_t lens[320] = {0};
    for (long i = 0; i < ncode; i++) {
        long v = getbits(z, 3);
        if (v < 0) return -1;
        lens[order[i]] = (uint8_t)v;
    }
    if (build(z, z->clen, lens, 19, 0)) return -1;
    memset(lens, 0, sizeof lens);
    long i = 0;
    while (i < nlen + ndist) {
        int sym = decode(z, z->clen);
        if (sym < 0) return -1;
        if (sym < 16) {
            lens[i++] = (uint8_t)sym;
            continue;
        }
        uint8_t v = 0;
        long rep;
        if (sym == 16) {
            if (i == 0) return fail(z, SDC_ERR_FORMAT, "repeat with no previous length");
            v = lens[i - 1];
            rep = getbits(z, 2);
            rep = rep < 0 ? -1 : 3 + rep;
        } else if (sym == 17) {
            rep = getbits(z, 3);
            rep = rep < 0 ? -1 : 3 + rep;
        } else {
            rep = getbits(z, 7);
            rep = rep < 0 ? -1 : 11 + rep;
        }
        if (rep < 0) return -1;
        if (i + rep > nlen + ndist) return fail(z, SDC_ERR_FORMAT, "too many code lengths");
        while (rep--) lens[i++] = v;
    }
    if (lens[256] == 0) return fail(z, SDC_ERR_FORMAT, "no end-of-block code");
    if (build(z, z->lit, lens, (unsigned)nlen, 1)) return -1;
    return build(z, z->dist, lens + nlen, (unsigned)ndist, 1);
}

static int stored(inflater *z) {
    if (consume(z, z->nbits % 8)) return -1;
    long len = getbits(z, 16), nlen = getbits(z, 16);
    if (len < 0 || nlen < 0) return -1;
    if ((len ^ 0xFFFF) != nlen) return fail(z, SDC_ERR_FORMAT, "stored block length check failed");
    for (long i = 0; i < len; i++) {
        long b = getbits(z, 8);
        if (b < 0) return -1;
        if (reserve(z, 1)) return -1;
        z->out[z->out_len++] = (uint8_t)b;
    }
    return 0;
}

/* Inflates one raw deflate stream starting at z->pos; on return z->pos is
 * the first byte after it. */
static int inflate_stream(inflater *z) {
    z->bits = 0;
    z->nbits = 0;
    z->phantom = 0;
    long last;
    do {
        last = getbits(z, 1);
        long type = getbits(z, 2);
        if (last < 0 || type < 0) return -1;
        int r;
        if (type == 0) r = stored(z);
        else if (type == 1) r = fixed_tables(z) ? -1 : codes(z);
        else if (type == 2) r = dynamic_tables(z) ? -1 : codes(z);
        else r = fail(z, SDC_ERR_FORMAT, "invalid block type 3");
        if (r) return -1;
    } while (!last);
    /* Give back the whole bytes still buffered. */
    if (consume(z, z->nbits % 8)) return -1;
    size_t buffered = z->nbits / 8;
    if (buffered < z->phantom) return fail(z, SDC_ERR_FORMAT, "input ends early");
    z->pos -= buffered - z->phantom;
    return 0;
}

uint32_t sdc_crc32(uint32_t crc, const uint8_t *buf, size_t len) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < len; i++) crc = table[(crc ^ buf[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

sdc_status sdc_gunzip(const uint8_t *in, size_t in_len, size_t max_out, const char *what,
                      uint8_t **out, size_t *out_len, sdc_err *err) {
    *out = NULL;
    *out_len = 0;
    inflater *z = calloc(1, sizeof *z);
    if (!z) return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", what);
    z->in = in;
    z->in_len = in_len;
    z->max_out = max_out;
    z->what = what;
    z->err = err;
    size_t p = 0;
    int members = 0;
    sdc_status st = SDC_OK;
    while (st == SDC_OK && (members == 0 || p < in_len)) {
        const uint8_t *h = in + p;
        size_t rest = in_len - p;
        if (rest < 18 || h[0] != 0x1F || h[1] != 0x8B) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: %s", what,
                             members ? "unexpected data after the gzip stream"
                                     : "not a gzip file (bad magic or too short)");
            break;
        }
        if (h[2] != 8 || (h[3] & 0xE0)) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: gzip header: unknown method or flags", what);
            break;
        }
        size_t q = 10;
        if (h[3] & 4) { /* FEXTRA */
            size_t xlen = rest >= 12 ? (size_t)h[10] | (size_t)h[11] << 8 : 0;
            q = 12 + xlen;
        }
        for (int f = 8; f <= 16 && q <= rest; f <<= 1) { /* FNAME, FCOMMENT: NUL-terminated */
            if (!(h[3] & f)) continue;
            while (q < rest && h[q]) q++;
            q++;
        }
        if (h[3] & 2) q += 2; /* FHCRC */
        if (q + 8 > rest) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: gzip header runs past the end", what);
            break;
        }
        size_t start = z->out_len;
        z->pos = p + q;
        if (inflate_stream(z)) {
            st = z->st;
            break;
        }
        if (z->pos + 8 > in_len) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: gzip trailer missing (file truncated)", what);
            break;
        }
        /* An empty member leaves out NULL: no pointer arithmetic on it. */
        uint32_t crc = z->out_len > start ? sdc_crc32(0, z->out + start, z->out_len - start) : 0;
        if (crc != le32(in + z->pos) || (uint32_t)(z->out_len - start) != le32(in + z->pos + 4)) {
            st = sdc_err_set(err, SDC_ERR_FORMAT, "%s: gzip CRC-32 or length check failed", what);
            break;
        }
        p = z->pos + 8;
        members++;
    }
    if (st == SDC_OK) {
        if (!z->out) {
            z->out = malloc(1);
            if (!z->out) st = sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", what);
        }
    }
    if (st != SDC_OK) {
        free(z->out);
        free(z);
        return st;
    }
    z->out[z->out_len] = 0;
    *out = z->out;
    *out_len = z->out_len;
    free(z);
    return SDC_OK;
}
