/* sha256.h — SHA-256 (FIPS 180-4), for model identity (A1111's model hash is
 * the first 10 hex digits of a checkpoint file's SHA-256) and content hashes. */
#ifndef SDC_SHA256_H
#define SDC_SHA256_H

#include "sdc.h"

typedef struct sdc_sha256 {
    uint32_t h[8];
    uint64_t len;        /* bytes absorbed */
    uint8_t block[64];
    size_t used;
} sdc_sha256;

void sdc_sha256_init(sdc_sha256 *s);
void sdc_sha256_update(sdc_sha256 *s, const void *data, size_t n);
void sdc_sha256_final(sdc_sha256 *s, uint8_t digest[32]);
/* Lowercase hex of a whole file's digest (65 bytes with NUL). */
sdc_status sdc_sha256_file(const char *path, char hex[65], sdc_err *err);

#endif
