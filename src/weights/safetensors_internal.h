/* safetensors_internal.h — what the safetensors reader and writer share
 * inside the library (not part of the public API). */
#ifndef SDC_SAFETENSORS_INTERNAL_H
#define SDC_SAFETENSORS_INTERNAL_H

#include "sdc.h"

/* Strict UTF-8 (RFC 3629: no overlong forms, surrogates, code points past
 * U+10FFFF or cut-off sequences). Unless allow_ctrl, raw control bytes other
 * than tab, LF and CR are refused too, as JSON text never holds them.
 * Returns NULL when valid, else a short reason with *at its byte offset. */
const char *sdc_st_check_text(const unsigned char *s, size_t n, bool allow_ctrl, size_t *at);

#endif
