/* test_safetensors.c — the safetensors reader and writer: round trips,
 * byte-exact agreement with the reference writer, unaligned data, read()
 * conversions, layout detection, and every malformed file of st_malformed.c. */
#include "suites.h"
#include "test_util.h"
#include "st_malformed.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- helpers */

/* A file of header + data with the length field = strlen(header): no
 * padding, so the data can start at any alignment. */
static const char *hand_file(const char *dir, const char *name, const char *header,
                             const void *data, size_t dlen) {
    static char path[512];
    size_t hl = strlen(header), len = 8 + hl + dlen;
    unsigned char *p = malloc(len);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(p + 8, header, hl);
    if (dlen) memcpy(p + 8 + hl, data, dlen);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert(st_write_bytes(path, p, len));
    free(p);
    return path;
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static sdc_tensor host(sdc_dtype t, int ndim, const int64_t *shape, void *data) {
    sdc_tensor x;
    ck_assert_int_eq(sdc_tensor_init(&x, t, ndim, shape, data, NULL), SDC_OK);
    return x;
}

/* ---------------------------------------------------------------- round trip */

START_TEST(write_read_round_trip) {
    const char *dir = test_tmpdir();
    float f32[6] = {1, -2.5f, 3, 1e-8f, -0.0f, 65504};
    uint16_t f16[4], bf16[4];
    for (int i = 0; i < 4; i++) {
        f16[i] = sdc_f32_to_f16((float)i - 1.5f);
        bf16[i] = sdc_f32_to_bf16((float)i * 1000.25f);
    }
    int64_t i64[3] = {-1, 0, (int64_t)1 << 40};
    float scalar = 42.5f;
    int64_t s23[] = {2, 3}, s4[] = {4}, s22[] = {2, 2}, s3[] = {3}, s05[] = {0, 5};
    sdc_tensor t[6] = {host(SDC_F32, 2, s23, f32), host(SDC_F16, 1, s4, f16),
                       host(SDC_BF16, 2, s22, bf16), host(SDC_I64, 1, s3, i64),
                       host(SDC_F32, 0, NULL, &scalar), host(SDC_F32, 2, s05, NULL)};
    const char *names[6] = {"f32", "half.weight", "bf", "ids", "scalar", "empty"};
    sdc_st_write_item items[6];
    for (int i = 0; i < 6; i++) items[i] = (sdc_st_write_item){names[i], &t[i]};
    const char *meta[] = {"format", "pt", "note", "quote \" and \\ and \n"};
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    sdc_err err = {0};
    ck_assert_msg(sdc_safetensors_write(path, items, 6, meta, 2, &err) == SDC_OK, "%s", err.msg);
    ck_assert_int_eq(count_dir_entries(dir), 1); /* no temp file left */

    /* The header is padded with spaces to a multiple of 8. */
    size_t len;
    unsigned char *raw = tu_slurp_ok(path, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | raw[i];
    ck_assert_uint_eq(n % 8, 0);
    ck_assert_int_eq(raw[8], '{');
    free(raw);

    sdc_safetensors *st = sdc_safetensors_open(path, &err);
    ck_assert_msg(st, "%s", err.msg);
    ck_assert_str_eq(sdc_safetensors_path(st), path);
    ck_assert_uint_eq(sdc_safetensors_count(st), 6);
    for (int i = 0; i < 6; i++) {
        const sdc_st_entry *e = sdc_safetensors_find(st, names[i]);
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(e->name, names[i]);
        ck_assert_int_eq(e->dtype, t[i].dtype);
        ck_assert_int_eq(e->ndim, t[i].ndim);
        for (int d = 0; d < e->ndim; d++) ck_assert_int_eq(e->shape[d], t[i].shape[d]);
        ck_assert_uint_eq(e->end - e->begin, sdc_tensor_nbytes(&t[i]));
        if (e->end > e->begin) ck_assert(memcmp(e->data, t[i].data, e->end - e->begin) == 0);
    }
    /* Entries come sorted by name. */
    for (size_t i = 1; i < 6; i++)
        ck_assert(strcmp(sdc_safetensors_entry(st, i - 1)->name, sdc_safetensors_entry(st, i)->name) < 0);
    ck_assert_ptr_null(sdc_safetensors_entry(st, 6));
    ck_assert_uint_eq(sdc_st_entry_numel(sdc_safetensors_find(st, "scalar")), 1);
    ck_assert_uint_eq(sdc_st_entry_numel(sdc_safetensors_find(st, "empty")), 0);
    ck_assert_ptr_null(sdc_safetensors_find(st, "missing"));
    ck_assert_ptr_null(sdc_safetensors_find(st, "F32"));
    ck_assert_str_eq(sdc_safetensors_meta(st, "format"), "pt");
    ck_assert_str_eq(sdc_safetensors_meta(st, "note"), meta[3]);
    ck_assert_ptr_null(sdc_safetensors_meta(st, "Format"));
    ck_assert_uint_eq(sdc_safetensors_meta_count(st), 2);
    const char *k, *v;
    ck_assert(sdc_safetensors_meta_at(st, 0, &k, &v));
    ck_assert_str_eq(k, "format");
    ck_assert(!sdc_safetensors_meta_at(st, 2, &k, &v));
    sdc_safetensors_close(st);

    /* Overwriting an existing file goes through the same rename. */
    ck_assert_int_eq(sdc_safetensors_write(path, items, 1, NULL, 0, &err), SDC_OK);
    st = sdc_safetensors_open(path, &err);
    ck_assert_uint_eq(sdc_safetensors_count(st), 1);
    ck_assert_uint_eq(sdc_safetensors_meta_count(st), 0);
    sdc_safetensors_close(st);
}
END_TEST

/* Byte-exact output of the reference writer (safetensors' own tests:
 * test_serialization and test_empty in safetensors/src/tensor.rs). */
START_TEST(writer_matches_reference_bytes) {
    const char *dir = test_tmpdir();
    float data[6] = {0, 1, 2, 3, 4, 5};
    int64_t shape[] = {1, 2, 3};
    sdc_tensor t = host(SDC_F32, 3, shape, data);
    sdc_st_write_item item = {"attn.0", &t};
    char path[512];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    ck_assert_int_eq(sdc_safetensors_write(path, &item, 1, NULL, 0, NULL), SDC_OK);
    const char *hdr = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    size_t len;
    unsigned char *raw = tu_slurp_ok(path, &len);
    ck_assert_uint_eq(len, 8 + 64 + 24);
    ck_assert_int_eq(raw[0], 64);
    ck_assert(memcmp(raw + 8, hdr, 64) == 0);
    ck_assert(memcmp(raw + 72, data, 24) == 0);
    free(raw);

    const char *meta[] = {"framework", "pt"};
    ck_assert_int_eq(sdc_safetensors_write(path, NULL, 0, meta, 1, NULL), SDC_OK);
    raw = tu_slurp_ok(path, &len);
    const char *want = "{\"__metadata__\":{\"framework\":\"pt\"}}     ";
    ck_assert_uint_eq(len, 8 + 40);
    ck_assert_int_eq(raw[0], 40);
    ck_assert(memcmp(raw + 8, want, 40) == 0);
    free(raw);

    ck_assert_int_eq(sdc_safetensors_write(path, NULL, 0, NULL, 0, NULL), SDC_OK);
    raw = tu_slurp_ok(path, &len);
    ck_assert_uint_eq(len, 16);
    ck_assert(memcmp(raw, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
    free(raw);
}
END_TEST

START_TEST(writer_rejects_bad_input) {
    const char *dir = test_tmpdir();
    float x = 1;
    sdc_tensor t = host(SDC_F32, 0, NULL, &x), dev = t;
    dev.device = SDC_DEVICE_CUDA;
    char path[512];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    sdc_err err = {0};
    sdc_st_write_item dup[2] = {{"a", &t}, {"a", &t}};
    ck_assert_int_eq(sdc_safetensors_write(path, dup, 2, NULL, 0, &err), SDC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "tensor name 'a' given twice"));
    sdc_st_write_item on_dev = {"d", &dev};
    ck_assert_int_eq(sdc_safetensors_write(path, &on_dev, 1, NULL, 0, &err), SDC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "tensor 'd': not a host tensor"));
    sdc_st_write_item reserved = {"__metadata__", &t};
    ck_assert_int_eq(sdc_safetensors_write(path, &reserved, 1, NULL, 0, &err), SDC_ERR_ARG);
    sdc_st_write_item bad_utf8 = {"a\xff", &t};
    ck_assert_int_eq(sdc_safetensors_write(path, &bad_utf8, 1, NULL, 0, &err), SDC_ERR_ARG);
    const char *meta[] = {"k", "1", "k", "2"};
    ck_assert_int_eq(sdc_safetensors_write(path, NULL, 0, meta, 2, &err), SDC_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "metadata key 'k' given twice"));
    ck_assert_int_eq(count_dir_entries(dir), 0);

    /* A missing directory: an I/O error naming the file, nothing left behind. */
    snprintf(path, sizeof path, "%s/no/such/dir/w.safetensors", dir);
    sdc_st_write_item ok = {"a", &t};
    ck_assert_int_eq(sdc_safetensors_write(path, &ok, 1, NULL, 0, &err), SDC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_int_eq(count_dir_entries(dir), 0);
}
END_TEST

/* ---------------------------------------------------------------- hand-built files */

START_TEST(unaligned_data_and_odd_headers) {
    const char *dir = test_tmpdir();
    /* 3 bytes of U8 put the F32 and F16 data at odd offsets; the header
     * length itself is odd too. Listed out of offset order, with an unknown
     * extra field (ignored, as the reference does) and a null __metadata__. */
    unsigned char data[3 + 8 + 4];
    float f[2] = {1.5f, -3.25f};
    uint16_t h[2] = {sdc_f32_to_f16(0.5f), sdc_f32_to_f16(-2.0f)};
    memcpy(data, "\x01\x02\x03", 3);
    memcpy(data + 3, f, 8);
    memcpy(data + 11, h, 4);
    char hdr[512] =
        " {\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11],\"extra\":{\"x\":[1]}},"
        "\"__metadata__\":null,"
        "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
        "\"z\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[11,11]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[11,15]}}\n";
    /* Data area at 8 + a multiple of 4 from the (page-aligned) file start,
     * so the F32 at offset 3 sits at 3 mod 4. */
    while (strlen(hdr) % 4) strcat(hdr, " ");
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(hand_file(dir, "odd.safetensors", hdr, data, sizeof data), &err);
    ck_assert_msg(st, "%s", err.msg);
    ck_assert_uint_eq(sdc_safetensors_count(st), 4);
    ck_assert_uint_eq(sdc_safetensors_meta_count(st), 0);
    const sdc_st_entry *ef = sdc_safetensors_find(st, "f"), *eh = sdc_safetensors_find(st, "h");
    ck_assert(((uintptr_t)ef->data & 3) != 0); /* really unaligned */
    float got[2];
    uint16_t got16[2];
    ck_assert_int_eq(sdc_safetensors_read(st, ef, got, SDC_F32, &err), SDC_OK);
    ck_assert(got[0] == 1.5f && got[1] == -3.25f);
    ck_assert_int_eq(sdc_safetensors_read(st, ef, got16, SDC_F16, &err), SDC_OK);
    ck_assert(sdc_f16_to_f32(got16[1]) == -3.25f);
    ck_assert_int_eq(sdc_safetensors_read(st, eh, got, SDC_F32, &err), SDC_OK);
    ck_assert(got[0] == 0.5f && got[1] == -2.0f);
    int32_t u[3];
    ck_assert_int_eq(sdc_safetensors_read(st, sdc_safetensors_find(st, "u"), u, SDC_I32, &err), SDC_OK);
    ck_assert(u[0] == 1 && u[2] == 3);
    ck_assert_int_eq(sdc_safetensors_read(st, sdc_safetensors_find(st, "z"), NULL, SDC_I32, &err), SDC_OK);
    sdc_safetensors_close(st);

    /* Zero tensors: "{}" with no data is a valid (empty) file. */
    st = sdc_safetensors_open(hand_file(dir, "empty.safetensors", "{}", NULL, 0), &err);
    ck_assert_msg(st, "%s", err.msg);
    ck_assert_uint_eq(sdc_safetensors_count(st), 0);
    ck_assert_ptr_null(sdc_safetensors_find(st, "a"));
    sdc_safetensors_close(st);
}
END_TEST

START_TEST(read_conversions) {
    const char *dir = test_tmpdir();
    unsigned char data[256];
    size_t o = 0;
    int64_t i64[3] = {5, -7, 3000000000LL};
    double f64[2] = {0.25, -1e10};
    float whole[2] = {3, -4}, frac[1] = {2.5f};
    int16_t i16[2] = {-300, 300};
    int8_t i8[2] = {-5, 6};
    memcpy(data + o, i64, 24); o += 24;
    memcpy(data + o, f64, 16); o += 16;
    memcpy(data + o, whole, 8); o += 8;
    memcpy(data + o, frac, 4); o += 4;
    memcpy(data + o, i16, 4); o += 4;
    memcpy(data + o, i8, 2); o += 2;
    memcpy(data + o, "\x00\x01\x02", 3); o += 3;
    const char *hdr =
        "{\"i64\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]},"
        "\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[24,40]},"
        "\"whole\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[40,48]},"
        "\"frac\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[48,52]},"
        "\"i16\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[52,56]},"
        "\"i8\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[56,58]},"
        "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[58,61]}}";
    sdc_err err = {0};
    const char *path = hand_file(dir, "conv.safetensors", hdr, data, o);
    sdc_safetensors *st = sdc_safetensors_open(path, &err);
    ck_assert_msg(st, "%s", err.msg);
#define E(n) sdc_safetensors_find(st, n)
    int64_t l[3];
    int32_t w[3];
    float f[3];
    ck_assert_int_eq(sdc_safetensors_read(st, E("i64"), l, SDC_I64, &err), SDC_OK);
    ck_assert(l[2] == 3000000000LL);
    ck_assert_int_eq(sdc_safetensors_read(st, E("i64"), f, SDC_F32, &err), SDC_OK);
    ck_assert(f[0] == 5 && f[1] == -7 && f[2] == 3e9f);
    /* I64 -> I32 is range-checked: 3e9 does not fit. */
    ck_assert_int_eq(sdc_safetensors_read(st, E("i64"), w, SDC_I32, &err), SDC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "tensor 'i64': element 2 (3000000000) is not a whole number that fits in I32"));
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_int_eq(sdc_safetensors_read(st, E("f64"), f, SDC_F32, &err), SDC_OK);
    ck_assert(f[0] == 0.25f && f[1] == -1e10f);
    /* position_ids may be stored as F32: whole numbers read as integers. */
    ck_assert_int_eq(sdc_safetensors_read(st, E("whole"), w, SDC_I32, &err), SDC_OK);
    ck_assert(w[0] == 3 && w[1] == -4);
    ck_assert_int_eq(sdc_safetensors_read(st, E("whole"), l, SDC_I64, &err), SDC_OK);
    ck_assert(l[1] == -4);
    ck_assert_int_eq(sdc_safetensors_read(st, E("frac"), w, SDC_I32, &err), SDC_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "element 0 (2.5)"));
    ck_assert_int_eq(sdc_safetensors_read(st, E("i16"), w, SDC_I32, &err), SDC_OK);
    ck_assert(w[0] == -300 && w[1] == 300);
    ck_assert_int_eq(sdc_safetensors_read(st, E("i8"), f, SDC_F32, &err), SDC_OK);
    ck_assert(f[0] == -5 && f[1] == 6);
    ck_assert_int_eq(sdc_safetensors_read(st, E("bool"), w, SDC_I32, &err), SDC_OK);
    ck_assert(w[0] == 0 && w[1] == 1 && w[2] == 1);
    uint16_t b[2];
    ck_assert_int_eq(sdc_safetensors_read(st, E("whole"), b, SDC_BF16, &err), SDC_OK);
    ck_assert(sdc_bf16_to_f32(b[0]) == 3 && sdc_bf16_to_f32(b[1]) == -4);
    unsigned char u8[3];
    ck_assert_int_eq(sdc_safetensors_read(st, E("whole"), u8, SDC_U8, &err), SDC_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot read F32 as U8"));
    ck_assert_int_eq(sdc_safetensors_read(st, E("bool"), u8, SDC_BOOL, &err), SDC_OK); /* same type */
#undef E
    sdc_safetensors_close(st);
}
END_TEST

START_TEST(find_many_names) {
    /* 200 names written in scrambled order; every one is found by bsearch. */
    const char *dir = test_tmpdir();
    enum { N = 200 };
    static char names[N][32];
    static sdc_tensor t[N];
    static uint8_t vals[N];
    sdc_st_write_item items[N];
    for (int i = 0; i < N; i++) {
        int j = (i * 73) % N;
        snprintf(names[i], sizeof names[i], "blocks.%d.w", j);
        vals[i] = (uint8_t)j;
        int64_t one = 1;
        t[i] = host(SDC_U8, 1, &one, &vals[i]);
        items[i] = (sdc_st_write_item){names[i], &t[i]};
    }
    char path[512];
    snprintf(path, sizeof path, "%s/many.safetensors", dir);
    sdc_err err = {0};
    ck_assert_int_eq(sdc_safetensors_write(path, items, N, NULL, 0, &err), SDC_OK);
    sdc_safetensors *st = sdc_safetensors_open(path, &err);
    ck_assert_msg(st, "%s", err.msg);
    for (int j = 0; j < N; j++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d.w", j);
        const sdc_st_entry *e = sdc_safetensors_find(st, name);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(*(const uint8_t *)e->data, j);
    }
    ck_assert_ptr_null(sdc_safetensors_find(st, "blocks.200.w"));
    ck_assert_ptr_null(sdc_safetensors_find(st, ""));
    sdc_safetensors_close(st);
}
END_TEST

START_TEST(open_non_files) {
    const char *dir = test_tmpdir();
    sdc_err err = {0};
    ck_assert_ptr_null(sdc_safetensors_open(dir, &err));
    ck_assert_int_eq(err.code, SDC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    char path[512];
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    ck_assert_ptr_null(sdc_safetensors_open(path, &err));
    ck_assert_int_eq(err.code, SDC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.safetensors: cannot open: No such file"));
    ck_assert_ptr_null(sdc_safetensors_open_memory(NULL, 3, "m", &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
}
END_TEST

/* ---------------------------------------------------------------- layout */

START_TEST(layout_detection) {
    const char *dir = test_tmpdir();
    float x = 0;
    sdc_tensor t = host(SDC_F32, 0, NULL, &x);
    sdc_st_write_item items[2] = {{"model.diffusion_model.out.0.weight", &t},
                                  {"first_stage_model.decoder.conv_in.bias", &t}};
    char path[1024];
    sdc_layout_info li;
    sdc_err err = {0};
    snprintf(path, sizeof path, "%s/orig.safetensors", dir);
    ck_assert_int_eq(sdc_safetensors_write(path, items, 2, NULL, 0, &err), SDC_OK);
    ck_assert_int_eq(sdc_detect_layout(path, &li, &err), SDC_OK);
    ck_assert_int_eq(li.layout, SDC_LAYOUT_ORIGINAL);
    ck_assert(li.has[SDC_COMPONENT_UNET] && li.has[SDC_COMPONENT_VAE] && !li.has[SDC_COMPONENT_TEXT]);
    ck_assert_str_eq(sdc_layout_name(li.layout), "original");

    /* VAE keys alone do not make a checkpoint. */
    snprintf(path, sizeof path, "%s/vae_only.safetensors", dir);
    ck_assert_int_eq(sdc_safetensors_write(path, items + 1, 1, NULL, 0, &err), SDC_OK);
    ck_assert_int_eq(sdc_detect_layout(path, &li, &err), SDC_OK);
    ck_assert_int_eq(li.layout, SDC_LAYOUT_UNKNOWN);
    ck_assert(li.has[SDC_COMPONENT_VAE]);

    /* A folder with only an fp16 UNet and a text encoder. */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/diff", dir);
    ck_assert_int_eq(sdc_detect_layout(sub, &li, &err), SDC_ERR_IO);
    mkdir(sub, 0777);
    ck_assert_int_eq(sdc_detect_layout(sub, &li, &err), SDC_OK);
    ck_assert_int_eq(li.layout, SDC_LAYOUT_UNKNOWN);
    snprintf(path, sizeof path, "%s/unet", sub);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/text_encoder", sub);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.fp16.safetensors", sub);
    ck_assert_int_eq(sdc_safetensors_write(path, items, 1, NULL, 0, &err), SDC_OK);
    snprintf(path, sizeof path, "%s/text_encoder/model.safetensors", sub);
    ck_assert_int_eq(sdc_safetensors_write(path, items, 1, NULL, 0, &err), SDC_OK);
    ck_assert_int_eq(sdc_detect_layout(sub, &li, &err), SDC_OK);
    ck_assert_int_eq(li.layout, SDC_LAYOUT_DIFFUSERS);
    ck_assert_str_eq(li.file[SDC_COMPONENT_UNET], "unet/diffusion_pytorch_model.fp16.safetensors");
    ck_assert_str_eq(li.file[SDC_COMPONENT_TEXT], "text_encoder/model.safetensors");
    ck_assert_ptr_null(li.file[SDC_COMPONENT_VAE]);
    ck_assert(!li.has[SDC_COMPONENT_VAE]);
    ck_assert_str_eq(sdc_component_name(SDC_COMPONENT_TEXT), "text_encoder");

    /* model_index.json alone is enough to call it diffusers. */
    snprintf(sub, sizeof sub, "%s/idx", dir);
    mkdir(sub, 0777);
    snprintf(path, sizeof path, "%s/model_index.json", sub);
    ck_assert(st_write_bytes(path, "{}", 2));
    ck_assert_int_eq(sdc_detect_layout(sub, &li, &err), SDC_OK);
    ck_assert_int_eq(li.layout, SDC_LAYOUT_DIFFUSERS);

    /* A malformed file is an error, not "unknown". */
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    ck_assert(st_write_bytes(path, "xx", 2));
    ck_assert_int_eq(sdc_detect_layout(path, &li, &err), SDC_ERR_FORMAT);
}
END_TEST

/* ---------------------------------------------------------------- malformed files */

static void expect_rejected(const st_case *c, sdc_safetensors *st, const sdc_err *err,
                            const char *label) {
    ck_assert_msg(!st, "%s: opened", c->name);
    ck_assert_msg(err->code == c->code, "%s: code %s, want %s (%s)", c->name,
                  sdc_status_name(err->code), sdc_status_name(c->code), err->msg);
    size_t ll = strlen(label);
    ck_assert_msg(strncmp(err->msg, label, ll) == 0 && strncmp(err->msg + ll, ": ", 2) == 0,
                  "%s: message does not start with the label: %s", c->name, err->msg);
    ck_assert_msg(strstr(err->msg, c->expect), "%s: message '%s' lacks '%s'", c->name, err->msg,
                  c->expect);
}

START_TEST(malformed_rejected_from_memory) {
    const st_case *c = &st_cases[_i];
    size_t len;
    unsigned char *p = st_case_bytes(c, &len);
    char label[64];
    snprintf(label, sizeof label, "%s.safetensors", c->name);
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open_memory(p, len, label, &err);
    expect_rejected(c, st, &err, label);
    free(p);
}
END_TEST

START_TEST(malformed_rejected_from_file) {
    const st_case *c = &st_cases[_i];
    char path[512];
    ck_assert(st_case_write(c, test_tmpdir(), path, sizeof path));
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(path, &err);
    expect_rejected(c, st, &err, path);
}
END_TEST

START_TEST(malformed_messages_distinct) {
    static char msgs[128][SDC_ERR_MSG_MAX];
    ck_assert_uint_le(st_n_cases, 128);
    ck_assert_uint_ge(st_n_cases, 20);
    for (size_t i = 0; i < st_n_cases; i++) {
        size_t len;
        unsigned char *p = st_case_bytes(&st_cases[i], &len);
        sdc_err err = {0};
        ck_assert_ptr_null(sdc_safetensors_open_memory(p, len, "same-label", &err));
        free(p);
        snprintf(msgs[i], sizeof msgs[i], "%s", err.msg);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(msgs[i], msgs[j]) != 0, "%s and %s share '%s'",
                          st_cases[i].name, st_cases[j].name, msgs[i]);
    }
}
END_TEST

/* Every truncation of a valid file is rejected (and never crashes). */
START_TEST(every_truncation_rejected) {
    const char *dir = test_tmpdir();
    float v[3] = {1, 2, 3};
    int64_t s3[] = {3};
    sdc_tensor t = host(SDC_F32, 1, s3, v);
    sdc_st_write_item items[2] = {{"a", &t}, {"b", &t}};
    const char *meta[] = {"k", "v"};
    char path[512];
    snprintf(path, sizeof path, "%s/full.safetensors", dir);
    ck_assert_int_eq(sdc_safetensors_write(path, items, 2, meta, 1, NULL), SDC_OK);
    size_t len;
    unsigned char *raw = tu_slurp_ok(path, &len);
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *p = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
        memcpy(p, raw, cut);
        sdc_err err = {0};
        sdc_safetensors *st = sdc_safetensors_open_memory(p, cut, "cut", &err);
        ck_assert_msg(!st, "a %zu-byte prefix opened", cut);
        ck_assert_int_eq(err.code, SDC_ERR_FORMAT);
        free(p);
    }
    sdc_safetensors *st = sdc_safetensors_open_memory(raw, len, "whole", NULL);
    ck_assert_ptr_nonnull(st);
    sdc_safetensors_close(st);
    free(raw);
}
END_TEST

Suite *suite_safetensors(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_add_test(tc, write_read_round_trip);
    tcase_add_test(tc, writer_matches_reference_bytes);
    tcase_add_test(tc, writer_rejects_bad_input);
    tcase_add_test(tc, unaligned_data_and_odd_headers);
    tcase_add_test(tc, read_conversions);
    tcase_add_test(tc, find_many_names);
    tcase_add_test(tc, open_non_files);
    tcase_add_test(tc, layout_detection);
    tcase_add_loop_test(tc, malformed_rejected_from_memory, 0, (int)st_n_cases);
    tcase_add_loop_test(tc, malformed_rejected_from_file, 0, (int)st_n_cases);
    tcase_add_test(tc, malformed_messages_distinct);
    tcase_add_test(tc, every_truncation_rejected);
    suite_add_tcase(s, tc);
    return s;
}
