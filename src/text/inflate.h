/* inflate.h — a small, bounds-checked DEFLATE (RFC 1951) decoder with the
 * gzip wrapper (RFC 1952), for CLIP's bpe_simple_vocab_16e6.txt.gz. Corrupt
 * input of any kind is an error, never a crash or an unbounded allocation. */
#ifndef SDC_TEXT_INFLATE_H
#define SDC_TEXT_INFLATE_H

#include "sdc.h"

#include <stddef.h>
#include <stdint.h>

/* Decompresses a whole gzip image (one or more members, nothing after them)
 * into a malloc'ed buffer (*out, *out_len; one extra NUL byte is appended,
 * not counted). Checks every member's CRC-32 and length. Output larger than
 * max_out is refused. `what` names the input in messages. */
sdc_status sdc_gunzip(const uint8_t *in, size_t in_len, size_t max_out, const char *what,
                      uint8_t **out, size_t *out_len, sdc_err *err);

/* CRC-32 (ISO-HDLC, as gzip and zlib) of buf, continuing from crc (0 to start). */
uint32_t sdc_crc32(uint32_t crc, const uint8_t *buf, size_t len);

#endif
