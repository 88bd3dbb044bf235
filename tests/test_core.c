/* test_core.c — the core layer: F16/BF16 conversion (exhaustive where cheap),
 * tensor metadata, the activation arena and the worker pool. */
#include "suites.h"

#include "../src/core/arena.h"
#include "../src/core/parallel.h"
#include "../src/core/sha256.h"
#include "sdc_ops.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

/* Reference rounding of a double to a binary format with `mant` explicit
 * mantissa bits and exponent range [emin, emax], nearest-even, saturating to
 * Inf. Written independently of src/core/dtype.c. */
static double round_to_format(double x, int mant, int emin, int emax) {
    if (isnan(x) || isinf(x) || x == 0) return x;
    double a = fabs(x);
    int e;
    frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    e -= 1;       /* a = g * 2^e, g in [1, 2) */
    if (e < emin) e = emin; /* subnormal: fixed quantum */
    double q = ldexp(1.0, e - mant);
    double r = nearbyint(a / q) * q; /* default rounding mode is nearest-even */
    if (r >= ldexp(2.0, emax)) r = INFINITY;
    return x < 0 ? -r : r;
}

static uint32_t rng_state = 12345;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

START_TEST(f16_roundtrip_exhaustive) {
    /* Every F16 bit pattern widens exactly and narrows back to itself. */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sdc_f16_to_f32((uint16_t)h);
        uint16_t back = sdc_f32_to_f16(f);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            ck_assert_msg(isnan(f) && (back & 0x7c00) == 0x7c00 && (back & 0x3ff),
                          "NaN 0x%04x lost", h);
        } else {
            ck_assert_msg(back == h, "0x%04x -> %g -> 0x%04x", h, f, back);
            double want = ((h >> 10) & 0x1f) == 0 ? ldexp((double)(h & 0x3ff), -24)
                          : ((h >> 10) & 0x1f) == 0x1f ? INFINITY
                          : ldexp(1.0 + (h & 0x3ff) / 1024.0, (int)((h >> 10) & 0x1f) - 15);
            if (h & 0x8000) want = -want;
            ck_assert_msg((double)f == want, "0x%04x widened to %g, want %g", h, f, want);
        }
    }
}
END_TEST

START_TEST(f16_bf16_rounding_random) {
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = rng_u32();
        /* Bias toward the F16 range so subnormals and overflow are hit. */
        if (i & 1) u = (u & 0x807fffffu) | ((100 + rng_u32() % 60) << 23);
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        float h = sdc_f16_to_f32(sdc_f32_to_f16(f));
        double want = round_to_format(f, 10, -14, 15);
        ck_assert_msg((double)h == want || (isinf(h) && isinf(want)),
                      "f16(%a) = %a, want %a", f, h, want);
        float b = sdc_bf16_to_f32(sdc_f32_to_bf16(f));
        double wantb = round_to_format(f, 7, -126, 127);
        ck_assert_msg((double)b == wantb || (isinf(b) && isinf(wantb)),
                      "bf16(%a) = %a, want %a", f, b, wantb);
    }
    ck_assert(isnan(sdc_bf16_to_f32(sdc_f32_to_bf16(NAN))));
    ck_assert(isinf(sdc_f16_to_f32(sdc_f32_to_f16(70000.0f))));
    ck_assert(sdc_f16_to_f32(sdc_f32_to_f16(65504.0f)) == 65504.0f);
}
END_TEST

START_TEST(bulk_convert_matches_scalar) {
    enum { N = 1037 }; /* not a multiple of the SIMD width */
    float src[N], back[N];
    unsigned char buf[2 * N + 1];
    for (int i = 0; i < N; i++) src[i] = (float)((int)(rng_u32() % 200001) - 100000) / 997.0f;
    sdc_err err = {0};
    /* Misaligned destination, as safetensors data can be. */
    ck_assert_int_eq(sdc_convert(buf + 1, SDC_F16, src, SDC_F32, N, &err), SDC_OK);
    ck_assert_int_eq(sdc_convert(back, SDC_F32, buf + 1, SDC_F16, N, &err), SDC_OK);
    for (int i = 0; i < N; i++) {
        uint16_t h;
        memcpy(&h, buf + 1 + 2 * i, 2);
        ck_assert_uint_eq(h, sdc_f32_to_f16(src[i]));
        ck_assert(back[i] == sdc_f16_to_f32(h));
    }
    ck_assert_int_eq(sdc_convert(buf, SDC_BF16, src, SDC_F32, N, &err), SDC_OK);
    ck_assert_int_eq(sdc_convert(back, SDC_F32, buf, SDC_BF16, N, &err), SDC_OK);
    for (int i = 0; i < N; i++) ck_assert(back[i] == sdc_bf16_to_f32(sdc_f32_to_bf16(src[i])));
    ck_assert_int_eq(sdc_convert(back, SDC_F32, buf, SDC_I32, 4, &err), SDC_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "I32"));
}
END_TEST

START_TEST(tensor_init_rejects_bad_shapes) {
    sdc_tensor t;
    sdc_err err = {0};
    int64_t five[5] = {1, 1, 1, 1, 1};
    ck_assert_int_eq(sdc_tensor_init(&t, SDC_F32, 5, five, NULL, &err), SDC_ERR_SHAPE);
    int64_t neg[2] = {3, -1};
    ck_assert_int_eq(sdc_tensor_init(&t, SDC_F32, 2, neg, NULL, &err), SDC_ERR_SHAPE);
    int64_t huge[4] = {1LL << 40, 1LL << 40, 1, 1};
    ck_assert_int_eq(sdc_tensor_init(&t, SDC_F32, 4, huge, NULL, &err), SDC_ERR_OOM);
    int64_t ok[3] = {2, 3, 4};
    ck_assert_int_eq(sdc_tensor_init(&t, SDC_F16, 3, ok, NULL, &err), SDC_OK);
    ck_assert_int_eq(sdc_tensor_numel(&t), 24);
    ck_assert_uint_eq(sdc_tensor_nbytes(&t), 48);
    char buf[64];
    ck_assert_str_eq(sdc_shape_str(&t, buf, sizeof buf), "[2, 3, 4]");
}
END_TEST

START_TEST(arena_alloc_release_coalesce) {
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    ck_assert_ptr_nonnull(be);
    sdc_arena *a = sdc_arena_create(be, 1 << 20, &err);
    ck_assert_ptr_nonnull(a);
    enum { K = 200 };
    unsigned char *p[K] = {0};
    size_t sz[K];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < K; i++) {
            if (p[i] && rng_u32() % 2) {
                for (size_t j = 0; j < sz[i]; j++) ck_assert_uint_eq(p[i][j], (unsigned char)i);
                sdc_arena_release(a, p[i]);
                p[i] = NULL;
            } else if (!p[i]) {
                sz[i] = 1 + rng_u32() % 50000;
                p[i] = sdc_arena_alloc(a, sz[i], &err);
                ck_assert_ptr_nonnull(p[i]);
                ck_assert_uint_eq((uintptr_t)p[i] % 64, 0);
                memset(p[i], i, sz[i]); /* overlapping blocks would clobber */
            }
        }
    }
    for (int i = 0; i < K; i++) sdc_arena_release(a, p[i]);
    ck_assert_uint_eq(sdc_arena_in_use(a), 0);
    size_t cap = sdc_arena_capacity(a), peak = sdc_arena_peak(a);
    ck_assert(peak > 0 && peak <= cap);
    /* Reset merges the grown blocks into one; it then satisfies the peak. */
    ck_assert_int_eq(sdc_arena_reset(a, &err), SDC_OK);
    ck_assert_uint_eq(sdc_arena_capacity(a), cap);
    void *big = sdc_arena_alloc(a, peak, &err);
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_eq(sdc_arena_capacity(a), cap);
    sdc_arena_release(a, big);
    sdc_tensor t;
    int64_t shape[4] = {2, 4, 8, 8};
    ck_assert_int_eq(sdc_arena_tensor(a, &t, SDC_F32, 4, shape, &err), SDC_OK);
    ck_assert_uint_eq(sdc_arena_in_use(a), 2 * 4 * 8 * 8 * 4);
    sdc_arena_release(a, t.data);
    sdc_arena_destroy(a);
    sdc_backend_destroy(be);
}
END_TEST

/* Trim frees exactly the empty blocks; live data stays where it was. */
START_TEST(arena_trim_frees_empty_blocks_only) {
    sdc_err err = {0};
    sdc_backend *be = sdc_cpu_backend_create(&err);
    ck_assert_ptr_nonnull(be);
    sdc_arena *a = sdc_arena_create(be, 1 << 16, &err);
    ck_assert_ptr_nonnull(a);
    enum { K = 12 };
    unsigned char *p[K];
    size_t sz[K];
    for (int i = 0; i < K; i++) { /* each fills most of a block, so K blocks */
        sz[i] = (1 << 16) - 64 * (1 + rng_u32() % 16);
        p[i] = sdc_arena_alloc(a, sz[i], &err);
        ck_assert_ptr_nonnull(p[i]);
        memset(p[i], 1 + i, sz[i]);
    }
    ck_assert_uint_eq(sdc_arena_capacity(a), (size_t)K << 16);
    for (int i = 0; i < K; i += 3) sdc_arena_release(a, p[i]);
    ck_assert_uint_eq(sdc_arena_trim(a), (size_t)(K / 3) << 16);
    ck_assert_uint_eq(sdc_arena_capacity(a), (size_t)(K - K / 3) << 16);
    ck_assert_uint_eq(sdc_arena_trim(a), 0);
    for (int i = 0; i < K; i++) {
        if (i % 3 == 0) continue;
        for (size_t j = 0; j < sz[i]; j++) ck_assert_uint_eq(p[i][j], (unsigned char)(1 + i));
        sdc_arena_release(a, p[i]); /* the kept blocks are still found after the compaction */
    }
    ck_assert_uint_eq(sdc_arena_in_use(a), 0);
    ck_assert_uint_eq(sdc_arena_trim(a), (size_t)(K - K / 3) << 16);
    ck_assert_uint_eq(sdc_arena_capacity(a), 0);
    void *q = sdc_arena_alloc(a, 100, &err); /* an empty arena grows again */
    ck_assert_ptr_nonnull(q);
    sdc_arena_release(a, q);
    sdc_arena_destroy(a);
    sdc_backend_destroy(be);
}
END_TEST

typedef struct {
    atomic_int *hits;
    int64_t n;
} cover_ctx;

static void cover(void *ctx, int64_t b, int64_t e) {
    cover_ctx *c = ctx;
    for (int64_t i = b; i < e; i++) atomic_fetch_add(&c->hits[i], 1);
}

static void nested(void *ctx, int64_t b, int64_t e) {
    cover_ctx *c = ctx;
    for (int64_t i = b; i < e; i++) sdc_parallel_for(1, 1, cover, &(cover_ctx){c->hits + i, 1});
}

START_TEST(parallel_for_covers_each_index_once) {
    static atomic_int hits[100003];
    int64_t sizes[] = {1, 2, 3, 17, 1000, 100003};
    for (int threads = 1; threads <= 4; threads++) {
        sdc_set_threads(threads);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            for (int64_t grain = 1; grain <= 4096; grain *= 64) {
                int64_t n = sizes[s];
                for (int64_t i = 0; i < n; i++) atomic_store(&hits[i], 0);
                cover_ctx c = {hits, n};
                sdc_parallel_for(n, grain, cover, &c);
                for (int64_t i = 0; i < n; i++) ck_assert_int_eq(atomic_load(&hits[i]), 1);
            }
        }
        for (int64_t i = 0; i < 64; i++) atomic_store(&hits[i], 0);
        sdc_parallel_for(64, 1, nested, &(cover_ctx){hits, 64}); /* nested runs serially */
        for (int64_t i = 0; i < 64; i++) ck_assert_int_eq(atomic_load(&hits[i]), 1);
    }
    sdc_set_threads(2);
}
END_TEST

/* FIPS 180-4 examples, and a long input fed in odd pieces. */
START_TEST(sha256_known_answers) {
    static const struct { const char *msg; const char *hex; } kat[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t k = 0; k < sizeof kat / sizeof *kat; k++) {
        sdc_sha256 s;
        uint8_t d[32];
        char hex[65];
        sdc_sha256_init(&s);
        sdc_sha256_update(&s, kat[k].msg, strlen(kat[k].msg));
        sdc_sha256_final(&s, d);
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
        ck_assert_str_eq(hex, kat[k].hex);
    }
    /* One million 'a', in pieces of 7 bytes. */
    sdc_sha256 s;
    uint8_t d[32];
    char hex[65], a[7];
    memset(a, 'a', sizeof a);
    sdc_sha256_init(&s);
    for (int i = 0; i < 1000000 / 7; i++) sdc_sha256_update(&s, a, 7);
    sdc_sha256_update(&s, a, 1000000 % 7);
    sdc_sha256_final(&s, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* The same million in one piece (many whole blocks at once, the SHA-NI
     * path where the CPU has it), and with the portable rounds forced. */
    char *big = malloc(1000000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', 1000000);
    for (int portable = 0; portable < 2; portable++) {
        if (portable) setenv("SDC_SHA256_PORTABLE", "1", 1);
        sdc_sha256_init(&s);
        sdc_sha256_update(&s, big, 1000000);
        sdc_sha256_final(&s, d);
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
        ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    unsetenv("SDC_SHA256_PORTABLE");
    free(big);
}
END_TEST

Suite *suite_core(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, f16_roundtrip_exhaustive);
    tcase_add_test(tc, f16_bf16_rounding_random);
    tcase_add_test(tc, bulk_convert_matches_scalar);
    tcase_add_test(tc, tensor_init_rejects_bad_shapes);
    tcase_add_test(tc, arena_alloc_release_coalesce);
    tcase_add_test(tc, arena_trim_frees_empty_blocks_only);
    tcase_add_test(tc, parallel_for_covers_each_index_once);
    tcase_add_test(tc, sha256_known_answers);
    suite_add_tcase(s, tc);
    return s;
}
