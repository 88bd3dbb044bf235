/* st_malformed.h — hostile safetensors files, built byte by byte, shared by
 * the library tests (test_safetensors.c) and the CLI tests (test_cli.c).
 * Each case names the status and a substring its error message must hold. */
#ifndef SDC_TEST_ST_MALFORMED_H
#define SDC_TEST_ST_MALFORMED_H

#include "sdc.h"

#include <stddef.h>
#include <stdint.h>

typedef struct st_case {
    const char *name;     /* short id; also the file name stem */
    const char *header;   /* header bytes (may be invalid UTF-8); NULL: raw file */
    size_t data_len;      /* bytes appended after the header */
    int64_t n_field;      /* header length field; -1: strlen(header) */
    const char *raw;      /* the whole file, when header is NULL */
    size_t raw_len;
    sdc_status code;      /* what open must return */
    const char *expect;   /* substring of the message (after "<label>: ") */
} st_case;

extern const st_case st_cases[];
extern const size_t st_n_cases;

/* The file's bytes (malloc'ed, *len set); NULL on OOM. */
unsigned char *st_case_bytes(const st_case *c, size_t *len);
/* Writes the case to dir/<name>.safetensors; path gets the file name.
 * Returns false on an I/O error. */
bool st_case_write(const st_case *c, const char *dir, char *path, size_t cap);
/* Writes len bytes to path (created or truncated). */
bool st_write_bytes(const char *path, const void *p, size_t len);

#endif
