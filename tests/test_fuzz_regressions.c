/* test_fuzz_regressions.c — every input the fuzzers crashed on
 * (tests/fuzz/crashes/<target>-<name>) replayed through the same entry
 * point: it must now end in a clean status, under the sanitizers too. */
#include "suites.h"

#include "../src/image/image.h"
#include "../src/text/inflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRASHES "tests/fuzz/crashes/"

static uint8_t *load(const char *name, size_t *len) {
    uint8_t *buf;
    sdc_err err = {0};
    ck_assert_msg(sdc_read_file_capped(name, 1 << 20, &buf, len, &err) == SDC_OK, "%s", err.msg);
    return buf;
}

/* The JPEG in CRASHES/file, decoded as `name`, is refused as malformed with
 * a message naming it and containing `needle`. */
static void expect_jpeg_refused(const char *file, const char *name, const char *needle) {
    size_t len;
    char path[256];
    snprintf(path, sizeof path, CRASHES "%s", file);
    uint8_t *buf = load(path, &len);
    sdc_image im;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_image_decode(buf, len, name, NULL, &im, &err), SDC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, name) && strstr(err.msg, needle), "%s", err.msg);
    free(buf);
}

/* A JPEG whose Huffman table claims more than 256 codes: stb 2.27 would
 * write past its arrays; the marker walk refuses it first. */
START_TEST(jpeg_huffman_table_over_256_codes) {
    expect_jpeg_refused("fuzz_image-jpeg-dht-over-256-codes", "dht.jpg", "Huffman");
}
END_TEST

/* An empty gzip member (gzip.compress(b"")) once did arithmetic on NULL. */
START_TEST(gzip_empty_member) {
    size_t len, out_len = 7;
    uint8_t *buf = load(CRASHES "fuzz_inflate-empty-member-null-offset", &len), *out = NULL;
    sdc_err err = {0};
    sdc_status s = sdc_gunzip(buf, len, 1 << 20, "empty.gz", &out, &out_len, &err);
    ck_assert_msg(s == SDC_OK || strstr(err.msg, "empty.gz"), "%s", err.msg);
    if (s == SDC_OK) ck_assert_uint_eq(out_len, 0);
    free(out);
    free(buf);
}
END_TEST

/* A JPEG whose scan runs out of data mid-block: stb 2.27 then shifts by 36
 * (clang's UBSan stops the fuzzer; see tests/fuzz/Makefile.inc). It must
 * end in a clean error naming the file. */
START_TEST(jpeg_scan_runs_out_of_bits) {
    expect_jpeg_refused("fuzz_image-jpeg-scan-runs-out-of-bits", "short.jpg", "corrupt JPEG");
}
END_TEST

/* A scan naming DC/AC Huffman table 2, which no DHT segment defines: stb
 * 2.27 decodes with its uninitialized heap state as the table and indexes
 * its 257-entry arrays far out of bounds (UBSan, CI's fuzz run). The file is
 * the PIL baseline JPEG of test_image.c with that one selector changed. */
START_TEST(jpeg_scan_uses_undefined_huffman_table) {
    expect_jpeg_refused("fuzz_image-jpeg-scan-uses-undefined-huffman-table", "undef.jpg",
                        "Huffman table 2, which the file never defines");
}
END_TEST

Suite *suite_fuzz_regressions(void) {
    Suite *s = suite_create("fuzz_regressions");
    TCase *tc = tcase_create("fuzz_regressions");
    tcase_add_test(tc, jpeg_huffman_table_over_256_codes);
    tcase_add_test(tc, gzip_empty_member);
    tcase_add_test(tc, jpeg_scan_runs_out_of_bits);
    tcase_add_test(tc, jpeg_scan_uses_undefined_huffman_table);
    suite_add_tcase(s, tc);
    return s;
}
