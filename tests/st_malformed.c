/* st_malformed.c — the table of malformed safetensors files: one row per
 * check of the reader (RELIABILITY.md's list and the known CVE patterns),
 * each with the status and the specific reason its message must give. */
#include "st_malformed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F32_1(off) "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" off "]}"

/* Most rows: a header and a data length; the length field defaults to the
 * header's size. A few rows set the length field or the raw bytes. */
#define H(nm, hdr, data, code_, want) {nm, hdr, data, -1, NULL, 0, code_, want}
#define N(nm, hdr, data, n, want) {nm, hdr, data, n, NULL, 0, SDC_ERR_FORMAT, want}
#define BAD(nm, hdr, data, want) H(nm, hdr, data, SDC_ERR_FORMAT, want)

const st_case st_cases[] = {
    /* the 8-byte length field */
    {"too_short", NULL, 0, -1, "\x10\0\0\0\0", 5, SDC_ERR_FORMAT,
     "file is 5 bytes, too short for the 8-byte header length"},
    N("header_too_large", "{}", 0, 100000001, "header length 100000001 exceeds the 100000000-byte limit"),
    N("header_len_u64_max", "{}", 0, -2 /* all ones */, "header length 18446744073709551615 exceeds"),
    N("header_past_eof", "{}      ", 0, 100, "header length 100 runs past the end of the 16-byte file"),
    N("header_empty", "", 0, 0, "header holds no JSON (0 bytes, all white space)"),
    /* UTF-8 and JSON text */
    BAD("utf8_invalid_byte", "{\"a\xff\":1}", 0, "not valid UTF-8: invalid byte (byte 0xff at header byte 3)"),
    BAD("utf8_overlong2", "{\"\xc0\xaf\":1}", 0, "not valid UTF-8: overlong encoding (byte 0xc0"),
    BAD("utf8_overlong3", "{\"\xe0\x80\xaf\":1}", 0, "not valid UTF-8: overlong encoding (byte 0xe0"),
    BAD("utf8_surrogate", "{\"\xed\xa0\x80\":1}", 0, "not valid UTF-8: UTF-16 surrogate"),
    BAD("utf8_beyond_max", "{\"\xf4\x90\x80\x80\":1}", 0, "not valid UTF-8: code point beyond U+10FFFF"),
    BAD("utf8_cut_off", "{}\xe2\x82", 0, "not valid UTF-8: sequence cut off at the end"),
    BAD("utf8_missing_cont", "{\"\xe2\x28\xa1\":1}", 0, "not valid UTF-8: missing continuation byte"),
    BAD("utf8_stray_cont", "{\"\x80\":1}", 0, "not valid UTF-8: unexpected continuation byte"),
    BAD("utf8_bom", "\xef\xbb\xbf{}", 0, "header starts with a UTF-8 byte order mark"),
    BAD("control_byte", "{\"a\x01\":1}", 0, "header contains control byte 0x01 at header byte 3"),
    BAD("escaped_nul", "{\"a\\u0000b\":" F32_1("0,4") "}", 4, "header contains the escape \\u0000"),
    BAD("not_json", "hello", 0, "header is not valid JSON (error near header byte 0)"),
    BAD("json_truncated", "{\"a\":{\"dtype\":\"F32\"", 0, "header JSON ends early"),
    BAD("json_array", "[]", 0, "header is an array, not a JSON object"),
    BAD("json_trailing", "{} x", 0, "unexpected text after the header's JSON value at header byte 3"),
    /* __metadata__ */
    BAD("meta_not_object", "{\"__metadata__\":\"x\"}", 0, "__metadata__ is a string, not an object"),
    BAD("meta_value_not_string", "{\"__metadata__\":{\"k\":1}}", 0,
        "__metadata__ value of 'k' is a number, not a string"),
    BAD("meta_duplicate_key", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0,
        "__metadata__ key 'k' appears twice"),
    BAD("meta_twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ appears 2 times"),
    /* one tensor entry */
    BAD("entry_not_object", "{\"a\":[1]}", 0, "tensor 'a': entry is an array, not an object"),
    BAD("field_twice", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        4, "tensor 'a': field 'dtype' appears 2 times"),
    BAD("dtype_missing", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing 'dtype'"),
    BAD("dtype_not_string", "{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': 'dtype' is a number, not a string"),
    BAD("dtype_unknown", "{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': unknown dtype 'F17'"),
    BAD("dtype_lowercase", "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': unknown dtype 'f32'"),
    H("dtype_unsupported", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
      SDC_ERR_UNSUPPORTED, "tensor 'a': dtype 'F8_E4M3' is valid safetensors but not supported by sdc"),
    BAD("shape_missing", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing 'shape'"),
    BAD("shape_not_array", "{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': 'shape' is a string, not an array"),
    BAD("shape_negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': shape[0] is negative (-1)"),
    BAD("shape_fraction", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1.5],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': shape[1] is not a whole number (1.5)"),
    BAD("shape_string_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': shape[0] is a string, not a number"),
    BAD("shape_huge_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e20],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': shape[0] exceeds 2^53 (1e+20)"),
    BAD("shape_rank9", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': rank 9 exceeds the maximum of 8"),
    BAD("offsets_missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a': missing 'data_offsets'"),
    BAD("offsets_not_array", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0,4\"}}", 4,
        "tensor 'a': 'data_offsets' is a string, not an array"),
    BAD("offsets_three", "{\"a\":" F32_1("0,4,8") "}", 8, "tensor 'a': 'data_offsets' has 3 entries, not 2"),
    BAD("offsets_negative", "{\"a\":" F32_1("-4,0") "}", 4, "tensor 'a': data_offsets[0] is negative (-4)"),
    BAD("offsets_reversed", "{\"a\":" F32_1("8,4") "}", 8, "tensor 'a': data_offsets [8, 4): begin is after end"),
    BAD("offsets_beyond_2_53", "{\"a\":" F32_1("0,18014398509481984") "}", 4,
        "tensor 'a': data_offsets[1] exceeds 2^53 (18014398509481984)"),
    /* sizes: the LiteRT pattern (a product wrapping to exactly 0) and friends */
    BAD("numel_wraps_to_zero",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
        "tensor 'a': shape [4294967296, 4294967296] has more elements than fit in 64 bits"),
    BAD("bytes_overflow",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}", 0,
        "tensor 'a': F32 [2147483648, 2147483648] is more than 2^64 bytes"),
    BAD("size_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12,
        "tensor 'a': data_offsets [0, 12) hold 12 bytes but F32 [2, 2] needs 16"),
    /* tiling of the data area */
    BAD("gap", "{\"a\":" F32_1("0,4") ",\"b\":" F32_1("8,12") "}", 12,
        "tensor 'b': begins at 8, leaving a gap of 4 bytes after tensor 'a' (ends at 4)"),
    BAD("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
        "tensor 'b': data_offsets [4, 12) overlap tensor 'a' [0, 8)"),
    BAD("first_not_at_zero", "{\"a\":" F32_1("4,8") "}", 8,
        "tensor 'a': the first tensor's data begins at 4, not 0"),
    BAD("trailing_bytes", "{\"a\":" F32_1("0,4") "}", 8,
        "4 unexpected bytes after the last tensor (the tensors cover 4 of the 8-byte data area)"),
    BAD("truncated_data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12,
        "file is truncated: the tensors need 16 bytes of data but only 12 follow the header"),
    BAD("duplicate_name", "{\"a\":" F32_1("0,4") ",\"a\":" F32_1("4,8") "}", 8,
        "tensor 'a' appears twice in the header"),
};
const size_t st_n_cases = sizeof st_cases / sizeof st_cases[0];

unsigned char *st_case_bytes(const st_case *c, size_t *len) {
    if (!c->header) {
        unsigned char *p = malloc(c->raw_len ? c->raw_len : 1);
        if (p) memcpy(p, c->raw, c->raw_len);
        *len = c->raw_len;
        return p;
    }
    size_t hl = strlen(c->header);
    *len = 8 + hl + c->data_len;
    unsigned char *p = malloc(*len);
    if (!p) return NULL;
    uint64_t n = c->n_field == -1 ? hl : c->n_field == -2 ? UINT64_MAX : (uint64_t)c->n_field;
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(n >> (8 * i));
    memcpy(p + 8, c->header, hl);
    for (size_t i = 0; i < c->data_len; i++) p[8 + hl + i] = (unsigned char)(i * 37 + 1);
    return p;
}

bool st_write_bytes(const char *path, const void *p, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(p, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

bool st_case_write(const st_case *c, const char *dir, char *path, size_t cap) {
    size_t len;
    unsigned char *p = st_case_bytes(c, &len);
    if (!p) return false;
    snprintf(path, cap, "%s/%s.safetensors", dir, c->name);
    bool ok = st_write_bytes(path, p, len);
    free(p);
    return ok;
}
