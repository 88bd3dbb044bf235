/* unicode.h — the Unicode steps of the CLIP tokenizer: strict UTF-8 decoding,
 * character properties, Python's str.lower() (with the final-sigma rule) and
 * NFC. The tables are generated at build time from Python's unicodedata by
 * scripts/gen_unicode_tables.py (Unicode 14.0.0, as Python 3.11). */
#ifndef SDC_TEXT_UNICODE_H
#define SDC_TEXT_UNICODE_H

#include "sdc.h"

#include <stddef.h>
#include <stdint.h>

/* Property bits of sdc_uni_flags (same values as the generated tables). */
enum {
    SDC_UNI_L = 1u << 0,        /* general category L* */
    SDC_UNI_N = 1u << 1,        /* N* */
    SDC_UNI_C = 1u << 2,        /* C* (Cc, Cf, Cs, Co, Cn: unassigned too) */
    SDC_UNI_ZS = 1u << 3,       /* Zs */
    SDC_UNI_SPACE = 1u << 4,    /* Python str.isspace() */
    SDC_UNI_CASED = 1u << 5,    /* Cased (exact for code points that are not case-ignorable) */
    SDC_UNI_CASE_IGN = 1u << 6, /* Case_Ignorable */
    SDC_UNI_NOMATCH = 1u << 7,  /* no branch of CLIP's IGNORECASE pattern matches it (U+0345) */
};

/* Decodes strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF, no truncated sequence) into *out (malloc'ed, *n code points).
 * On invalid input returns SDC_ERR_ARG naming `what` and the byte offset.
 * With out == NULL it only validates (and counts code points into *n). */
sdc_status sdc_utf8_decode(const char *s, size_t len, const char *what, uint32_t **out,
                           size_t *n, sdc_err *err);
/* Appends cp as UTF-8 to buf (room for 4 bytes); returns the byte count. */
int sdc_utf8_encode(uint32_t cp, char *buf);

unsigned sdc_uni_flags(uint32_t cp);
/* BERT/transformers' _is_chinese_char: the CJK ideograph blocks. */
int sdc_uni_is_cjk(uint32_t cp);

/* Python's str.lower() of s[0..n) into out (room for 3*n code points; U+0130
 * is the only code point that grows, to 2); returns the output length. */
size_t sdc_uni_lower(const uint32_t *s, size_t n, uint32_t *out);

/* unicodedata.normalize("NFC", s[0..n)) into a new malloc'ed array. */
sdc_status sdc_uni_nfc(const uint32_t *s, size_t n, uint32_t **out, size_t *n_out, sdc_err *err);

#endif
