/* test_rng.c — sdc_rng against torch's CPU generator, raw float bits compared
 * (memcmp): sequences of randn calls on one generator for several seeds, then
 * rand, from tests/fixtures/rng_io.safetensors; plus copy/reseed behavior. */
#include "suites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/pipeline/rng.h"
#include "sdc.h"

#define RNG_FIXTURE "tests/fixtures/rng_io.safetensors"
#define RNG_REGEN "build/venv/bin/python tests/fixtures/fx_rng.py"

static sdc_safetensors *open_fixture(void) {
    sdc_err err = {0};
    sdc_safetensors *st = sdc_safetensors_open(RNG_FIXTURE, &err);
    ck_assert_msg(st != NULL, "%s; regenerate it with: %s", err.msg, RNG_REGEN);
    return st;
}

static int64_t *read_i64(const sdc_safetensors *st, const char *name, size_t *n) {
    sdc_err err = {0};
    const sdc_st_entry *e = sdc_safetensors_find(st, name);
    ck_assert_msg(e != NULL, "%s: no tensor %s (regenerate: %s)", RNG_FIXTURE, name, RNG_REGEN);
    *n = (size_t)sdc_st_entry_numel(e);
    int64_t *v = malloc(*n * sizeof *v);
    ck_assert(sdc_safetensors_read(st, e, v, SDC_I64, &err) == SDC_OK);
    return v;
}

static float *read_f32(const sdc_safetensors *st, const char *name, size_t *n) {
    sdc_err err = {0};
    const sdc_st_entry *e = sdc_safetensors_find(st, name);
    ck_assert_msg(e != NULL, "%s: no tensor %s (regenerate: %s)", RNG_FIXTURE, name, RNG_REGEN);
    *n = (size_t)sdc_st_entry_numel(e);
    float *v = malloc(*n * sizeof *v);
    ck_assert(sdc_safetensors_read(st, e, v, SDC_F32, &err) == SDC_OK);
    return v;
}

/* Index of the first differing float, or -1. */
static long first_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return (long)i;
    return -1;
}

START_TEST(randn_sequences_bit_exact) {
    sdc_safetensors *st = open_fixture();
    size_t n_seeds, n_sizes;
    int64_t *seeds = read_i64(st, "seeds", &n_seeds);
    int64_t *sizes = read_i64(st, "sizes", &n_sizes);
    for (size_t s = 0; s < n_seeds; s++) {
        char name[32];
        size_t n_want, n_rand;
        snprintf(name, sizeof name, "randn.%zu", s);
        float *want = read_f32(st, name, &n_want);
        snprintf(name, sizeof name, "rand.%zu", s);
        float *want_u = read_f32(st, name, &n_rand);
        float *got = malloc(n_want * sizeof *got), *got_u = malloc(n_rand * sizeof *got_u);
        sdc_rng r;
        sdc_rng_seed(&r, (uint64_t)seeds[s]);
        size_t off = 0;
        for (size_t k = 0; k < n_sizes; k++) {
            ck_assert(off + (size_t)sizes[k] <= n_want);
            sdc_rng_randn(&r, got + off, (size_t)sizes[k]);
            long d = first_diff(got + off, want + off, (size_t)sizes[k]);
            ck_assert_msg(d < 0, "seed %lld, call %zu (randn(%lld)): element %ld is %.9g, torch %.9g",
                          (long long)seeds[s], k, (long long)sizes[k], d, got[off + d], want[off + d]);
            off += (size_t)sizes[k];
        }
        ck_assert_uint_eq(off, n_want);
        sdc_rng_rand(&r, got_u, n_rand);
        long d = first_diff(got_u, want_u, n_rand);
        ck_assert_msg(d < 0, "seed %lld: rand element %ld is %.9g, torch %.9g", (long long)seeds[s],
                      d, got_u[d < 0 ? 0 : d], want_u[d < 0 ? 0 : d]);
        free(want), free(want_u), free(got), free(got_u);
    }
    free(seeds), free(sizes);
    sdc_safetensors_close(st);
}
END_TEST

/* A copied struct replays the same stream; reseeding clears the cached normal. */
START_TEST(copy_and_reseed) {
    sdc_rng a, b;
    float x[40], y[40];
    sdc_rng_seed(&a, 1234);
    sdc_rng_randn(&a, x, 1); /* leaves a cached second normal */
    b = a;
    sdc_rng_randn(&a, x, 40);
    sdc_rng_randn(&b, y, 40);
    ck_assert(memcmp(x, y, sizeof x) == 0);
    sdc_rng_seed(&a, 1234);
    sdc_rng_seed(&b, 1234);
    sdc_rng_randn(&b, y, 1);
    sdc_rng_seed(&b, 1234); /* the cache from the call above must not leak */
    sdc_rng_randn(&a, x, 3);
    sdc_rng_randn(&b, y, 3);
    ck_assert(memcmp(x, y, 3 * sizeof(float)) == 0);
    /* torch keeps only the low 32 bits of the seed. */
    sdc_rng_seed(&a, 7);
    sdc_rng_seed(&b, (1ull << 32) + 7);
    sdc_rng_randn(&a, x, 17);
    sdc_rng_randn(&b, y, 17);
    ck_assert(memcmp(x, y, 17 * sizeof(float)) == 0);
}
END_TEST

Suite *suite_rng(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_add_test(tc, randn_sequences_bit_exact);
    tcase_add_test(tc, copy_and_reseed);
    suite_add_tcase(s, tc);
    return s;
}
