/* test_image.c — image loading (every PNG/JPEG flavour built here in C, plus
 * refused formats, truncation, corrupt CRCs and over-limit headers), img2img
 * preprocessing, VAE output conversion, PNG text round trips (tEXt/iTXt),
 * the A1111 parameters format, and `sdc info IMAGE.png`. */
#include "suites.h"
#include "cli_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image_write.h>

#include "../src/image/image.h"
#include "../src/text/inflate.h"

/* ---------------------------------------------------------------- helpers */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void add(bytes *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void add_be32(bytes *b, uint32_t v) {
    uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    add(b, q, 4);
}

static void stb_sink(void *ctx, void *data, int size) { add(ctx, data, (size_t)size); }

static char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert(len == 0 || fwrite(data, 1, len, f) == len);
    ck_assert(fclose(f) == 0);
}

static bytes from_hex(const char *h) {
    bytes b = {0};
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        ck_assert(sscanf(h, "%2x", &v) == 1);
        uint8_t c = (uint8_t)v;
        add(&b, &c, 1);
    }
    return b;
}

/* PNG chunk with its CRC. */
static void chunk(bytes *b, const char *type, const void *data, uint32_t n) {
    add_be32(b, n);
    size_t at = b->n;
    add(b, type, 4);
    if (n) add(b, data, n);
    add_be32(b, sdc_crc32(0, b->p + at, n + 4));
}

/* A PNG built by hand: raw scanlines (filter byte included) in zlib
 * "stored" deflate blocks, optional PLTE. */
static bytes make_png(uint32_t w, uint32_t h, int depth, int ctype, const uint8_t *raw, size_t rn,
                      const uint8_t *plte, uint32_t pn) {
    bytes b = {0}, z = {0};
    add(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {0};
    uint32_t d[2] = {w, h};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) ihdr[4 * i + j] = (uint8_t)(d[i] >> (24 - 8 * j));
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)ctype;
    chunk(&b, "IHDR", ihdr, 13);
    if (plte) chunk(&b, "PLTE", plte, pn);
    add(&z, "\x78\x01", 2);
    size_t off = 0;
    do {
        size_t n = rn - off > 65535 ? 65535 : rn - off;
        uint8_t hdr[5] = {off + n == rn, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)~n, (uint8_t)(~n >> 8)};
        add(&z, hdr, 5);
        if (n) add(&z, raw + off, n);
        off += n;
    } while (off < rn);
    uint32_t a = 1, s2 = 0;
    for (size_t i = 0; i < rn; i++) a = (a + raw[i]) % 65521, s2 = (s2 + a) % 65521;
    add_be32(&z, s2 << 16 | a);
    chunk(&b, "IDAT", z.p, (uint32_t)z.n);
    chunk(&b, "IEND", NULL, 0);
    free(z.p);
    return b;
}

/* Loads bytes written to a fresh file called name. */
static sdc_status load_bytes(const char *name, const bytes *b, const sdc_image_limits *lim,
                             sdc_image *im, sdc_err *err) {
    char *p = tmp_path(name);
    write_file(p, b->p, b->n);
    return sdc_image_load(p, lim, im, err);
}

static void expect_fail(const char *name, const bytes *b, sdc_status want, const char *needle) {
    sdc_image im;
    sdc_err err = {0};
    sdc_status st = load_bytes(name, b, NULL, &im, &err);
    ck_assert_msg(st == want, "%s: got %s (%s), want %s", name, sdc_status_name(st), err.msg,
                  sdc_status_name(want));
    ck_assert_msg(strstr(err.msg, name) != NULL, "message does not name the file: %s", err.msg);
    ck_assert_msg(!needle || strstr(err.msg, needle), "message lacks '%s': %s", needle, err.msg);
    ck_assert_ptr_null(im.rgb);
}

static bytes stb_png(int w, int h, int comp, const uint8_t *px) {
    bytes b = {0};
    ck_assert(stbi_write_png_to_func(stb_sink, &b, w, h, comp, px, w * comp));
    return b;
}

/* JPEGs made by PIL (libjpeg); stb's own JPEG writer has a signed shift
 * that UBSan reports, so the tests do not use it. */
static const char BASE_JPG[] = /* Image.new("RGB", (17, 9), (200, 30, 60)), quality=95 */
    "ffd8ffe000104a46494600010100000100010000ffdb00430002010101010102010101020202020204030202"
    "02020504040304060506060605060606070908060709070606080b08090a0a0a0a0a06080b0c0b0a0c090a0a"
    "0affdb004301020202020202050303050a0706070a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
    "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0affc000110800090011030122000211010311"
    "01ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303"
    "020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f024"
    "33627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a63646566"
    "6768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7"
    "b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffc400"
    "1f0100030101010101010101010000000000000102030405060708090a0bffc400b511000201020404030407"
    "05040400010277000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a"
    "162434e125f11718191a262728292a35363738393a434445464748494a535455565758595a63646566676869"
    "6a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9"
    "bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffda000c030100"
    "02110311003f00f93e8a28af873fd4c0a28a2803ffd9";
static const char GRAY_JPG[] = /* Image.new("L", (17, 9), 77), quality=95 */
    "ffd8ffe000104a46494600010100000100010000ffdb00430002010101010102010101020202020204030202"
    "02020504040304060506060605060606070908060709070606080b08090a0a0a0a0a06080b0c0b0a0c090a0a"
    "0affc0000b080009001101011100ffc4001f0000010501010101010100000000000000000102030405060708"
    "090a0bffc400b5100002010303020403050504040000017d0102030004110512213141061351610722711432"
    "8191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a43444546474849"
    "4a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3"
    "a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9ea"
    "f1f2f3f4f5f6f7f8f9faffda0008010100003f00f8ce8a28a28affd9";
static const char CMYK_JPG[] = /* PIL: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), Adobe APP14 */
    "ffd8ffee000e41646f626500640000000000ffdb004300020101010101020101010202020202040302020202"
    "0504040304060506060605060606070908060709070606080b08090a0a0a0a0a06080b0c0b0a0c090a0a0aff"
    "c000140800080008044311004d11005911004b1100ffc4001f00000105010101010101000000000000000001"
    "02030405060708090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613"
    "516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a"
    "434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495"
    "969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3"
    "e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda000e0443004d0059004b00003f00fdfcafe7febf9ffafdfcaf"
    "ffd9";
static const char PROG_JPG[] = /* PIL: 13x7 RGB (200, 30, 60), progressive=True */
    "ffd8ffe000104a46494600010100000100010000ffdb00430003020203020203030303040303040508050504"
    "04050a070706080c0a0c0c0b0a0b0b0d0e12100d0e110e0b0b1016101113141515150c0f1718161418121415"
    "14ffdb00430103040405040509050509140d0b0d141414141414141414141414141414141414141414141414"
    "1414141414141414141414141414141414141414141414141414ffc20011080007000d030122000211010311"
    "01ffc4001500010100000000000000000000000000000006ffc4001501010100000000000000000000000000"
    "000507ffda000c0301000210031000000184065bbfffc40014100100000000000000000000000000000010ff"
    "da00080101000105023fffc40014110100000000000000000000000000000000ffda0008010301013f017fff"
    "c40014110100000000000000000000000000000000ffda0008010201013f017fffc400141001000000000000"
    "00000000000000000010ffda0008010100063f023fffc40014100100000000000000000000000000000010ff"
    "da0008010100013f213fffda000c03010002000300000010ff00ffc400141101000000000000000000000000"
    "00000000ffda0008010301013f107fffc40014110100000000000000000000000000000000ffda0008010201"
    "013f107fffc40014100100000000000000000000000000000010ffda0008010100013f103fffd9";

/* ---------------------------------------------------------------- loading */

START_TEST(test_load_png_flavours) {
    /* 13x7 (not a multiple of 8): pixel (x, y) has value 10x + y per channel offset. */
    enum { W = 13, H = 7 };
    for (int comp = 1; comp <= 4; comp++) {
        uint8_t px[W * H * 4];
        for (int i = 0; i < W * H; i++)
            for (int c = 0; c < comp; c++) px[i * comp + c] = (uint8_t)(i + 50 * c);
        bytes b = stb_png(W, H, comp, px);
        sdc_image im;
        sdc_err err = {0};
        char name[32];
        snprintf(name, sizeof name, "c%d.png", comp);
        ck_assert_msg(load_bytes(name, &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
        ck_assert_int_eq(im.w, W);
        ck_assert_int_eq(im.h, H);
        for (int i = 0; i < W * H; i++)
            for (int c = 0; c < 3; c++) {
                /* gray (+alpha): replicated; RGB(A): alpha dropped */
                int want = comp <= 2 ? px[i * comp] : px[i * comp + c];
                ck_assert_int_eq(im.rgb[3 * i + c], want);
            }
        sdc_image_free(&im);
        free(b.p);
    }
}
END_TEST

START_TEST(test_load_1x1_and_misnamed) {
    uint8_t px[3] = {1, 2, 3};
    bytes b = stb_png(1, 1, 3, px);
    sdc_image im;
    sdc_err err = {0};
    /* a PNG called .jpg: the bytes decide */
    ck_assert_msg(load_bytes("really_png.jpg", &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    ck_assert(im.w == 1 && im.h == 1 && im.rgb[0] == 1 && im.rgb[1] == 2 && im.rgb[2] == 3);
    sdc_image_free(&im);
    free(b.p);
}
END_TEST

START_TEST(test_load_16bit_and_palette) {
    /* gray 16-bit, 2x1: 0x1234, 0xFFFF -> high bytes */
    const uint8_t g16[] = {0, 0x12, 0x34, 0xFF, 0xFF};
    bytes b = make_png(2, 1, 16, 0, g16, sizeof g16, NULL, 0);
    sdc_image im;
    sdc_err err = {0};
    ck_assert_msg(load_bytes("g16.png", &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    ck_assert(im.rgb[0] == 0x12 && im.rgb[2] == 0x12 && im.rgb[3] == 0xFF);
    sdc_image_free(&im);
    free(b.p);
    /* RGB 16-bit, 1x1 */
    const uint8_t c16[] = {0, 0xAB, 0xCD, 0x01, 0x02, 0x80, 0x00};
    b = make_png(1, 1, 16, 2, c16, sizeof c16, NULL, 0);
    ck_assert_msg(load_bytes("rgb16.png", &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    ck_assert(im.rgb[0] == 0xAB && im.rgb[1] == 0x01 && im.rgb[2] == 0x80);
    sdc_image_free(&im);
    free(b.p);
    /* palette 8-bit, 3x1 */
    const uint8_t plte[] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
    const uint8_t idx[] = {0, 2, 1, 0};
    b = make_png(3, 1, 8, 3, idx, sizeof idx, plte, sizeof plte);
    ck_assert_msg(load_bytes("pal.png", &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    const uint8_t want[] = {0, 0, 255, 0, 255, 0, 255, 0, 0};
    ck_assert(memcmp(im.rgb, want, 9) == 0);
    sdc_image_free(&im);
    free(b.p);
}
END_TEST

START_TEST(test_load_jpeg) {
    enum { W = 17, H = 9 };
    bytes b = from_hex(BASE_JPG);
    sdc_image im;
    sdc_err err = {0};
    ck_assert_msg(load_bytes("a.jpg", &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    ck_assert(im.w == W && im.h == H);
    /* PIL decodes every pixel as (200, 30, 59) */
    for (int i = 0; i < W * H; i++)
        ck_assert(abs(im.rgb[3 * i] - 200) <= 3 && abs(im.rgb[3 * i + 1] - 30) <= 3 &&
                  abs(im.rgb[3 * i + 2] - 59) <= 3);
    sdc_image_free(&im);
    /* every truncation is refused (stb alone would pad with zeros) */
    for (size_t n = 0; n < b.n; n++) {
        bytes t = {b.p, n, n};
        sdc_status st = load_bytes("cut.jpg", &t, NULL, &im, &err);
        ck_assert_msg(st != SDC_OK, "JPEG cut to %zu of %zu bytes was accepted", n, b.n);
        ck_assert_ptr_null(im.rgb);
    }
    /* flipped bytes: decoded or refused, never a crash (ASan/UBSan build) */
    for (size_t i = 2; i < b.n; i++) {
        b.p[i] ^= 0x5A;
        if (load_bytes("flip.jpg", &b, NULL, &im, &err) == SDC_OK) sdc_image_free(&im);
        b.p[i] ^= 0x5A;
    }
    free(b.p);
    b = from_hex(GRAY_JPG);
    ck_assert_msg(load_bytes("g.jpg", &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_le(abs(im.rgb[0] - 77), 2);
    ck_assert(im.rgb[0] == im.rgb[1] && im.rgb[1] == im.rgb[2]);
    sdc_image_free(&im);
    free(b.p);
}
END_TEST

START_TEST(test_load_progressive_and_cmyk) {
    sdc_image im;
    sdc_err err = {0};
    bytes b = from_hex(PROG_JPG);
    ck_assert_msg(load_bytes("prog.jpg", &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    ck_assert(im.w == 13 && im.h == 7);
    /* PIL decodes (3, 3) as (200, 30, 59) */
    ck_assert(abs(im.rgb[(3 * 13 + 3) * 3] - 200) <= 3 && abs(im.rgb[(3 * 13 + 3) * 3 + 1] - 30) <= 3);
    sdc_image_free(&im);
    free(b.p);
    b = from_hex(CMYK_JPG);
    ck_assert_msg(load_bytes("cmyk.jpg", &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
    /* PIL: convert("RGB") gives (255, 0, 0) */
    ck_assert_msg(im.rgb[0] >= 250 && im.rgb[1] <= 5 && im.rgb[2] <= 5, "CMYK decoded as %d,%d,%d",
                  im.rgb[0], im.rgb[1], im.rgb[2]);
    sdc_image_free(&im);
    /* without its Adobe marker, CMYK vs YCCK is unknowable: refused, not miscoloured */
    uint8_t *a = memmem(b.p, b.n, "Adobe", 5);
    ck_assert_ptr_nonnull(a);
    a[4] = 'X';
    expect_fail("cmyk_noadobe.jpg", &b, SDC_ERR_UNSUPPORTED, "Adobe");
    free(b.p);
}
END_TEST

/* Scans naming tables the file never defined (stb 2.27 would decode with
 * uninitialized heap bytes as the tables and index far out of bounds): one
 * byte changed in a PIL file per row. Offsets are those of the files above. */
START_TEST(test_load_jpeg_undefined_tables) {
    static const struct {
        const char *name, *hex;
        size_t at;
        uint8_t was, now;
        const char *needle; /* NULL: still decodes to the same pixels */
    } rows[] = {
        /* baseline: the scan's first selector, DC 0 / AC 0 */
        {"dc2.jpg", BASE_JPG, 615, 0x00, 0x22, "DC Huffman table 2, which the file never defines"},
        {"ac3.jpg", BASE_JPG, 615, 0x00, 0x03, "AC Huffman table 3, which the file never defines"},
        /* baseline: component 1's quantization table in the frame header */
        {"quant2.jpg", BASE_JPG, 170, 0x00, 0x02, "quantization table 2, which the file never defines"},
        {"comp9.jpg", BASE_JPG, 614, 0x01, 0x09, "component 9, not in the frame"},
        /* progressive: the first DHT defines DC 2 instead of DC 0 */
        {"prog_dc0.jpg", PROG_JPG, 181, 0x00, 0x02, "DC Huffman table 0, which the file never defines"},
        /* progressive: the first AC table is defined as AC 2 instead of AC 0 */
        {"prog_ac0.jpg", PROG_JPG, 245, 0x10, 0x12, "AC Huffman table 0, which the file never defines"},
        /* progressive DC refinement: stb reads raw bits, no table; not refused */
        {"prog_refine.jpg", PROG_JPG, 412, 0x00, 0x30, NULL},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        bytes b = from_hex(rows[r].hex);
        ck_assert_msg(b.p[rows[r].at] == rows[r].was, "%s: byte %zu is 0x%02X", rows[r].name, rows[r].at,
                      b.p[rows[r].at]);
        sdc_image ref, im;
        sdc_err err = {0};
        ck_assert_msg(load_bytes("ref.jpg", &b, NULL, &ref, &err) == SDC_OK, "%s", err.msg);
        b.p[rows[r].at] = rows[r].now;
        if (rows[r].needle) {
            expect_fail(rows[r].name, &b, SDC_ERR_FORMAT, rows[r].needle);
        } else {
            ck_assert_msg(load_bytes(rows[r].name, &b, NULL, &im, &err) == SDC_OK, "%s", err.msg);
            ck_assert(im.w == ref.w && im.h == ref.h);
            ck_assert(memcmp(im.rgb, ref.rgb, (size_t)im.w * im.h * 3) == 0);
            sdc_image_free(&im);
        }
        sdc_image_free(&ref);
        free(b.p);
    }
}
END_TEST

/* A valid-syntax JPEG whose DC sum times its 16-bit quantizer overflows
 * stb 2.27's int (tests/fuzz/make_corpus.py, jpeg_dc_overflow): stb_impl.c
 * is compiled with -fwrapv, so it decodes, the same bytes each time, and
 * clang's UBSan in the fuzz build (which replays the corpus) stays quiet. */
START_TEST(test_load_jpeg_dc_overflow) {
    uint8_t *buf;
    size_t len;
    sdc_err err = {0};
    ck_assert_msg(sdc_read_file_capped("tests/fuzz/corpus/fuzz_image/jpeg_dc_overflow", 1 << 16, &buf, &len, &err) ==
                      SDC_OK, "%s", err.msg);
    sdc_image a, b;
    ck_assert_msg(sdc_image_decode(buf, len, "dc.jpg", NULL, &a, &err) == SDC_OK, "%s", err.msg);
    ck_assert_msg(sdc_image_decode(buf, len, "dc.jpg", NULL, &b, &err) == SDC_OK, "%s", err.msg);
    ck_assert(a.w == 64 && a.h == 8 && b.w == 64 && b.h == 8);
    ck_assert(memcmp(a.rgb, b.rgb, 64 * 8 * 3) == 0);
    sdc_image_free(&a);
    sdc_image_free(&b);
    free(buf);
}
END_TEST

START_TEST(test_load_refusals) {
    bytes empty = {0};
    expect_fail("empty.png", &empty, SDC_ERR_FORMAT, "empty");
    static const struct { const char *bytes; size_t n; const char *name; } other[] = {
        {"GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14, "GIF"},
        {"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0", 14, "BMP"},
        {"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n", 35, "HDR"},
        {"P6\n1 1\n255\n\0\0\0", 14, "PNM"},
        {"RIFF\x10\0\0\0WEBPVP8 ", 16, "WebP"},
        {"hello, world", 12, NULL},
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        bytes b = {(uint8_t *)other[i].bytes, other[i].n, 0};
        char name[32];
        snprintf(name, sizeof name, "x%zu.png", i);
        expect_fail(name, &b, SDC_ERR_UNSUPPORTED, "unsupported image format");
        if (other[i].name) expect_fail(name, &b, SDC_ERR_UNSUPPORTED, other[i].name);
    }
    sdc_image im;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_image_load(tmp_path("missing.png"), NULL, &im, &err), SDC_ERR_IO);
    ck_assert_int_eq(sdc_image_load(test_tmpdir(), NULL, &im, &err), SDC_ERR_ARG);
}
END_TEST

START_TEST(test_load_truncated_and_corrupt_png) {
    uint8_t px[8 * 8 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7);
    bytes b = stb_png(8, 8, 3, px);
    sdc_image im;
    sdc_err err = {0};
    for (size_t n = 0; n < b.n; n++) {
        bytes t = {b.p, n, n};
        ck_assert_msg(load_bytes("cut.png", &t, NULL, &im, &err) != SDC_OK, "cut to %zu accepted", n);
    }
    /* a flipped bit anywhere after the signature: a CRC mismatch, never a crash */
    for (size_t i = 8; i < b.n; i++) {
        b.p[i] ^= 0x10;
        sdc_status st = load_bytes("flip.png", &b, NULL, &im, &err);
        ck_assert_msg(st == SDC_ERR_FORMAT, "flip at %zu: %s", i, err.msg);
        b.p[i] ^= 0x10;
    }
    b.p[b.n - 2] ^= 1; /* IEND's CRC */
    expect_fail("crc.png", &b, SDC_ERR_FORMAT, "CRC mismatch in chunk IEND");
    b.p[b.n - 2] ^= 1;
    /* IDAT's length past the end of the file */
    b.p[33] = 0x7f;
    expect_fail("long.png", &b, SDC_ERR_FORMAT, "truncated");
    free(b.p);
}
END_TEST

START_TEST(test_load_limits) {
    /* 100000 x 100000 declared: refused from the header, before any decoding */
    const uint8_t row[] = {0, 0, 0, 0};
    bytes b = make_png(100000, 100000, 8, 2, row, sizeof row, NULL, 0);
    expect_fail("huge.png", &b, SDC_ERR_UNSUPPORTED, "100000x100000");
    free(b.p);
    b = make_png(9000, 1, 8, 0, row, 2, NULL, 0);
    expect_fail("wide.png", &b, SDC_ERR_UNSUPPORTED, "over the limits");
    free(b.p);
    b = make_png(7000, 7000, 8, 0, row, 2, NULL, 0); /* 49 MP > 40 MP */
    expect_fail("many.png", &b, SDC_ERR_UNSUPPORTED, "over the limits");
    free(b.p);
    /* caller limits: side, pixels, file size */
    uint8_t px[17 * 3] = {0};
    b = stb_png(17, 1, 3, px);
    sdc_image im;
    sdc_err err = {0};
    sdc_image_limits side = {.max_side = 16}, pix = {.max_pixels = 16}, bytes_cap = {.max_file_bytes = 10};
    ck_assert_int_eq(load_bytes("l1.png", &b, &side, &im, &err), SDC_ERR_UNSUPPORTED);
    ck_assert_int_eq(load_bytes("l2.png", &b, &pix, &im, &err), SDC_ERR_UNSUPPORTED);
    ck_assert_int_eq(load_bytes("l3.png", &b, &bytes_cap, &im, &err), SDC_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "limit"), "%s", err.msg);
    ck_assert_int_eq(load_bytes("l4.png", &b, NULL, &im, &err), SDC_OK);
    sdc_image_free(&im);
    free(b.p);
}
END_TEST

/* ---------------------------------------------------------------- img2img input */

START_TEST(test_to_tensor) {
    /* 24x8: the middle 8x8 white, the sides black. Crop to 8x8 keeps the middle. */
    uint8_t px[24 * 8 * 3] = {0};
    for (int y = 0; y < 8; y++)
        for (int x = 8; x < 16; x++) memset(px + (y * 24 + x) * 3, 255, 3);
    sdc_image im = {24, 8, px};
    float out[3 * 24 * 8];
    sdc_err err = {0};
    ck_assert_int_eq(sdc_image_to_tensor(&im, 8, 8, SDC_FIT_CROP, out, 3 * 64, &err), SDC_OK);
    for (int i = 0; i < 3 * 64; i++) ck_assert_float_eq(out[i], 1.0f);
    /* same size: a plain copy into CHW, x / 127.5 - 1 */
    px[0] = 0, px[1] = 51, px[2] = 255;
    ck_assert_int_eq(sdc_image_to_tensor(&im, 24, 8, SDC_FIT_RESIZE, out, sizeof out / 4, &err), SDC_OK);
    ck_assert_float_eq(out[0], -1.0f);
    ck_assert_float_eq(out[24 * 8], 51 / 127.5f - 1.0f);
    ck_assert_float_eq(out[2 * 24 * 8], 1.0f);
    ck_assert_float_eq(out[8], 1.0f);
    /* resize to 16x16: a solid image stays solid; values stay in [-1, 1] */
    uint8_t solid[13 * 7 * 3];
    memset(solid, 100, sizeof solid);
    sdc_image s = {13, 7, solid};
    float o2[3 * 16 * 16];
    for (int fit = 0; fit < 2; fit++) {
        ck_assert_int_eq(sdc_image_to_tensor(&s, 16, 16, (sdc_fit)fit, o2, 3 * 256, &err), SDC_OK);
        for (int i = 0; i < 3 * 256; i++) ck_assert_float_eq_tol(o2[i], 100 / 127.5f - 1.0f, 1e-6);
    }
    /* 1x1 up to 8x8 */
    sdc_image one = {1, 1, solid};
    ck_assert_int_eq(sdc_image_to_tensor(&one, 8, 8, SDC_FIT_CROP, o2, 3 * 64, &err), SDC_OK);
    /* refusals */
    ck_assert_int_eq(sdc_image_to_tensor(&s, 12, 16, SDC_FIT_RESIZE, o2, 3 * 256, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_image_to_tensor(&s, 0, 16, SDC_FIT_RESIZE, o2, 3 * 256, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_image_to_tensor(&s, 16, 16, SDC_FIT_RESIZE, o2, 3 * 256 - 1, &err), SDC_ERR_ARG);
    ck_assert_int_eq(sdc_image_to_tensor(&s, 16, 16, (sdc_fit)7, o2, 3 * 256, &err), SDC_ERR_ARG);
}
END_TEST

/* ---------------------------------------------------------------- output */

START_TEST(test_from_tensor) {
    /* numpy: (np.clip(x / 2 + 0.5, 0, 1) * 255).round() in float32, ties to even */
    float x[3 * 4] = {-1.0f, 1.0f, 0.0f, 5.0f, -3.0f, 1.0f / 255 - 1, 0.1f, -0.5f, 0.999f, 0.25f, 0.75f, -0.999f};
    uint8_t rgb[12];
    sdc_err err = {0};
    ck_assert_int_eq(sdc_image_from_tensor(x, 2, 2, rgb, &err), SDC_OK);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++) {
            float v = x[c * 4 + i] / 2.0f + 0.5f;
            v = fminf(fmaxf(v, 0.0f), 1.0f);
            ck_assert_int_eq(rgb[3 * i + c], (int)rintf(v * 255.0f));
        }
    ck_assert_int_eq(rgb[0], 0);
    ck_assert_int_eq(rgb[3], 255);
    ck_assert_int_eq(rgb[6], 128); /* 127.5 rounds to even */
    ck_assert_int_eq(rgb[9], 255);
    x[5] = NAN;
    ck_assert_int_eq(sdc_image_from_tensor(x, 2, 2, rgb, &err), SDC_ERR_NUMERIC);
    ck_assert_msg(strstr(err.msg, "NaN"), "%s", err.msg);
    x[5] = INFINITY;
    ck_assert_int_eq(sdc_image_from_tensor(x, 2, 2, rgb, &err), SDC_ERR_NUMERIC);
}
END_TEST

static bool file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return memmem(buf, n, needle, strlen(needle)) != NULL;
}

START_TEST(test_png_text_round_trip) {
    enum { W = 9, H = 5 };
    uint8_t px[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) px[i] = (uint8_t)(i * 13);
    static const char *texts[] = {
        "a cat\nNegative prompt: dog\nSteps: 25, Sampler: Euler a, CFG scale: 7.5, Seed: 42",
        "caf\xc3\xa9 cr\xc3\xa8me",             /* Latin-1 representable: tEXt */
        "\xe7\x8c\xab, \xf0\x9f\x98\xba emoji", /* not: iTXt */
        "",
    };
    static const char *types[] = {"tEXt", "tEXt", "iTXt", "tEXt"};
    for (int t = 0; t < 4; t++) {
        char *p = tmp_path("out.png");
        sdc_err err = {0};
        ck_assert_msg(sdc_image_save_png(p, px, W, H, texts[t], &err) == SDC_OK, "%s", err.msg);
        ck_assert_msg(file_has(p, types[t]), "text %d not in a %s chunk", t, types[t]);
        char *v = NULL;
        ck_assert_msg(sdc_png_read_text(p, "parameters", &v, &err) == SDC_OK, "%s", err.msg);
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v, texts[t]);
        free(v);
        ck_assert_int_eq(sdc_png_read_text(p, "Comment", &v, &err), SDC_OK);
        ck_assert_ptr_null(v);
        sdc_image im;
        ck_assert_int_eq(sdc_image_load(p, NULL, &im, &err), SDC_OK);
        ck_assert(im.w == W && im.h == H && memcmp(im.rgb, px, sizeof px) == 0);
        sdc_image_free(&im);
    }
    /* no text; invalid UTF-8 is refused and writes nothing */
    char *p = tmp_path("plain.png"), *v = (char *)1;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_image_save_png(p, px, W, H, NULL, &err), SDC_OK);
    ck_assert_int_eq(sdc_png_read_text(p, "parameters", &v, &err), SDC_OK);
    ck_assert_ptr_null(v);
    char *bad = tmp_path("bad.png");
    ck_assert_int_eq(sdc_image_save_png(bad, px, W, H, "\xff\xfe", &err), SDC_ERR_ARG);
    struct stat sb;
    ck_assert_int_ne(stat(bad, &sb), 0);
    /* a missing folder is an i/o error naming the path */
    char *nodir = tmp_path("no/such/dir.png");
    ck_assert_int_eq(sdc_image_save_png(nodir, px, W, H, NULL, &err), SDC_ERR_IO);
    ck_assert_msg(strstr(err.msg, "no/such"), "%s", err.msg);
}
END_TEST

START_TEST(test_png_text_hostile) {
    uint8_t px[3] = {0};
    uint8_t *png;
    size_t n;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_png_encode(px, 1, 1, "hello", &png, &n, &err), SDC_OK);
    char *v = NULL;
    /* every prefix and every flipped byte: an error or a correct read, never a crash */
    for (size_t k = 0; k < n; k++) {
        ck_assert_int_ne(sdc_png_parse(png, k, "t", NULL, "parameters", &v, &err), SDC_OK);
        ck_assert_ptr_null(v);
        png[k] ^= 0xA5;
        sdc_status st = sdc_png_parse(png, n, "t", NULL, "parameters", &v, &err);
        ck_assert_msg(st != SDC_OK || (v && strcmp(v, "hello") == 0), "flip at %zu", k);
        free(v);
        v = NULL;
        png[k] ^= 0xA5;
    }
    /* a text chunk whose length runs past the end of the file */
    png[33 + 3] = 0xF0;
    ck_assert_int_eq(sdc_png_parse(png, n, "t.png", NULL, "parameters", &v, &err), SDC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "truncated") && strstr(err.msg, "t.png"), "%s", err.msg);
    free(png);
    /* a compressed text that is not zlib: an error, not garbage */
    bytes b = {0};
    add(&b, "\x89PNG\r\n\x1a\n", 8);
    chunk(&b, "IHDR", "\0\0\0\1\0\0\0\1\x08\0\0\0\0", 13);
    chunk(&b, "zTXt", "parameters\0\0garbage", 19);
    chunk(&b, "IDAT", "\x78\x01\x01\x02\x00\xfd\xff\x00\x00\x00\x02\x00\x01", 13);
    chunk(&b, "IEND", NULL, 0);
    ck_assert_int_eq(sdc_png_parse(b.p, b.n, "z.png", NULL, "parameters", &v, &err), SDC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "compressed text"), "%s", err.msg);
    free(b.p);
}
END_TEST

/* ---------------------------------------------------------------- A1111 text */

START_TEST(test_a1111_format_and_parse) {
    sdc_gen_meta m = {.prompt = "a photo of a cat", .negative_prompt = "blurry", .steps = 25,
                      .sampler = "Euler a", .cfg_scale = 7.5, .seed = 42, .has_seed = true,
                      .width = 512, .height = 512, .model_hash = "abcd1234ef",
                      .model = "v1-5-pruned-emaonly"};
    char *t = sdc_a1111_parameters(&m);
    ck_assert_str_eq(t, "a photo of a cat\nNegative prompt: blurry\nSteps: 25, Sampler: Euler a, "
                        "CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: abcd1234ef, "
                        "Model: v1-5-pruned-emaonly");
    free(t);
    m.negative_prompt = "";
    m.cfg_scale = 7.0;
    m.img2img = true;
    m.denoising_strength = 0.3;
    m.clip_skip = 2;
    m.model = "my, model: v2";
    m.rng = "CPU"; /* A1111 writes RNG after Clip skip, and only when it is not GPU */
    t = sdc_a1111_parameters(&m);
    ck_assert_str_eq(t, "a photo of a cat\nSteps: 25, Sampler: Euler a, CFG scale: 7.0, Seed: 42, "
                        "Size: 512x512, Model hash: abcd1234ef, Model: \"my, model: v2\", "
                        "Denoising strength: 0.3, Clip skip: 2, RNG: CPU");
    sdc_gen_meta r;
    char *st;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_a1111_parse(t, &r, &st, &err), SDC_OK);
    ck_assert_str_eq(r.prompt, "a photo of a cat");
    ck_assert_ptr_null(r.negative_prompt);
    ck_assert(r.steps == 25 && r.cfg_scale == 7.0 && r.has_seed && r.seed == 42);
    ck_assert(r.width == 512 && r.height == 512 && r.img2img && r.denoising_strength == 0.3);
    ck_assert_int_eq(r.clip_skip, 2);
    ck_assert_str_eq(r.sampler, "Euler a");
    ck_assert_str_eq(r.model, "my, model: v2");
    ck_assert_str_eq(r.model_hash, "abcd1234ef");
    ck_assert_str_eq(r.rng, "CPU");
    free(st);
    free(t);
    /* multi-line prompt and negative prompt; unknown keys ignored */
    const char *x = "  line one\nline two\nNegative prompt: bad\nworse\n"
                    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6, Seed: 7, "
                    "Size: 640x480, Version: v1.9.4  ";
    ck_assert_int_eq(sdc_a1111_parse(x, &r, &st, &err), SDC_OK);
    ck_assert_str_eq(r.prompt, "line one\nline two");
    ck_assert_str_eq(r.negative_prompt, "bad\nworse");
    ck_assert(r.steps == 20 && r.cfg_scale == 6.0 && r.seed == 7 && r.width == 640 && r.height == 480);
    ck_assert_str_eq(r.sampler, "DPM++ 2M");
    ck_assert_ptr_null(r.model);
    free(st);
    /* fewer than 3 pairs on the last line: it is prompt */
    ck_assert_int_eq(sdc_a1111_parse("cat\nstyle: oil, mood: calm", &r, &st, &err), SDC_OK);
    ck_assert_str_eq(r.prompt, "cat\nstyle: oil, mood: calm");
    ck_assert(r.steps == 0 && isnan(r.cfg_scale) && !r.has_seed);
    free(st);
    ck_assert_int_eq(sdc_a1111_parse("", &r, &st, &err), SDC_OK);
    ck_assert_str_eq(r.prompt, "");
    free(st);
}
END_TEST

/* ---------------------------------------------------------------- sdc info */

START_TEST(test_cli_info_png) {
    uint8_t px[16 * 8 * 3] = {0};
    char *p = tmp_path("gen.png");
    sdc_err err = {0};
    const char *text = "a \"cat\"\nNegative prompt: dog\nSteps: 3, Sampler: Euler, CFG scale: 7.5, "
                       "Seed: 9, Size: 16x8, Model hash: 0123456789, Model: tiny";
    ck_assert_int_eq(sdc_image_save_png(p, px, 16, 8, text, &err), SDC_OK);
    const cli_result *r = cli_run("info '%s'", p);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "16x8") && strstr(r->out, "rgb, 8-bit") && strstr(r->out, "Seed: 9"),
                  "%s", r->out);
    r = cli_run("info --json '%s'", p);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "\"format\":\"png\",\"width\":16,\"height\":8") &&
                      strstr(r->out, "\"parameters\":\"a \\\"cat\\\"\\nNegative prompt: dog") &&
                      strstr(r->out, "\"prompt\":\"a \\\"cat\\\"\"") && strstr(r->out, "\"steps\":3") &&
                      strstr(r->out, "\"seed\":9") && strstr(r->out, "\"model\":\"tiny\""),
                  "%s", r->out);
    /* a corrupt PNG: exit 1 naming the file and the reason */
    FILE *f = fopen(p, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert(fseek(f, 50, SEEK_SET) == 0 && fputc('#', f) != EOF && fclose(f) == 0);
    r = cli_run("info '%s'", p);
    ck_assert_int_eq(r->code, 1);
    ck_assert_msg(strstr(r->err, "gen.png") && strstr(r->err, "CRC"), "%s", r->err);
    r = cli_run("info --json '%s'", p);
    ck_assert_int_eq(r->code, 1);
}
END_TEST

Suite *suite_image(void) {
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("image");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_load_png_flavours);
    tcase_add_test(tc, test_load_1x1_and_misnamed);
    tcase_add_test(tc, test_load_16bit_and_palette);
    tcase_add_test(tc, test_load_jpeg);
    tcase_add_test(tc, test_load_progressive_and_cmyk);
    tcase_add_test(tc, test_load_jpeg_undefined_tables);
    tcase_add_test(tc, test_load_jpeg_dc_overflow);
    tcase_add_test(tc, test_load_refusals);
    tcase_add_test(tc, test_load_truncated_and_corrupt_png);
    tcase_add_test(tc, test_load_limits);
    tcase_add_test(tc, test_to_tensor);
    tcase_add_test(tc, test_from_tensor);
    tcase_add_test(tc, test_png_text_round_trip);
    tcase_add_test(tc, test_png_text_hostile);
    tcase_add_test(tc, test_a1111_format_and_parse);
    tcase_add_test(tc, test_cli_info_png);
    suite_add_tcase(s, tc);
    return s;
}
