/* rng.c — torch's CPU random numbers reproduced bit for bit (the CUDA
 * generator is rng_philox.c): mt19937 as ATen seeds
 * and steps it, 24-bit float uniforms, and torch.randn's two float32 normal paths
 * (the 16-wide Box-Muller with Cephes log/sincos for n >= 16, the double scalar
 * Box-Muller with its cached second value for n < 16). */
#include "rng.h"

#include <math.h>
#include <string.h>

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

/* ---------------------------------------------------------------- mt19937 */

void sdc_rng_seed(sdc_rng *r, uint64_t seed) {
    /* ATen keeps only the low 32 bits of a 64-bit seed (init_with_uint32). */
    r->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < SDC_MT_N; j++) {
        uint32_t p = r->state[j - 1];
        r->state[j] = 1812433253u * (p ^ (p >> 30)) + j;
    }
    r->left = 1; /* the first draw twists */
    r->next = 0;
    r->has_normal = false;
    r->cached_normal = 0.0;
    r->source = SDC_RNG_CPU;
    r->philox_seed = 0;
    r->philox_offset = 0;
    r->grid_cap = 0;
}

void sdc_rng_seed_as(sdc_rng *r, sdc_rng_source source, uint64_t seed, uint32_t grid_cap) {
    if (source == SDC_RNG_CUDA) sdc_rng_seed_cuda(r, seed, grid_cap);
    else sdc_rng_seed(r, seed);
}

static uint32_t twist(uint32_t u, uint32_t v) {
    uint32_t mixed = (u & MT_UPPER) | (v & MT_LOWER);
    return (mixed >> 1) ^ ((v & 1u) ? MT_MATRIX_A : 0u);
}

static void next_state(sdc_rng *r) {
    uint32_t *s = r->state;
    int k = 0;
    for (; k < SDC_MT_N - MT_M; k++) s[k] = s[k + MT_M] ^ twist(s[k], s[k + 1]);
    for (; k < SDC_MT_N - 1; k++) s[k] = s[k + MT_M - SDC_MT_N] ^ twist(s[k], s[k + 1]);
    s[k] = s[k + MT_M - SDC_MT_N] ^ twist(s[k], s[0]);
    r->left = SDC_MT_N;
    r->next = 0;
}

uint32_t sdc_rng_u32(sdc_rng *r) {
    if (--r->left == 0) next_state(r);
    uint32_t y = r->state[r->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* torch's random64(): the first draw is the high word. */
static uint64_t rng_u64(sdc_rng *r) {
    uint64_t hi = sdc_rng_u32(r);
    uint64_t lo = sdc_rng_u32(r);
    return (hi << 32) | lo;
}

/* uniform_real_distribution<float>(0, 1): 24 random bits / 2^24 (exact). */
static float uniform_f32(sdc_rng *r) {
    return (float)(sdc_rng_u32(r) & 0xffffffu) * (1.0f / 16777216.0f);
}

/* uniform_real_distribution<double>(0, 1): 53 bits of random64() / 2^53. */
static double uniform_f64(sdc_rng *r) {
    return (double)(rng_u64(r) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

void sdc_rng_rand(sdc_rng *r, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = uniform_f32(r);
}

/* ---------------------------------------------------------------- Cephes float math
 * torch's AVX2 normal path uses Pommier's avx_mathfun (Cephes polynomials in
 * float). These are scalar equivalents, operation for operation. torch's binary
 * was built by GCC with -mfma, which fused some a*b+c pairs into one rounding;
 * MAD marks exactly the pairs fused in torch 2.5.1's libtorch_cpu.so (read off
 * its disassembly), the rest round twice. This file is compiled as ISO C
 * (-std=c11), where GCC never contracts on its own. */
#define MAD(a, b, c) fmaf((a), (b), (c))

static float bits_to_f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Natural log for x in (0, 1] (the only arguments Box-Muller gives it). */
static float cephes_logf(float x) {
    const float min_norm = bits_to_f(0x00800000u);
    if (x < min_norm) x = min_norm;                 /* cut off denormals */
    uint32_t b = f_to_bits(x);
    int32_t expo = (int32_t)(b >> 23) - 0x7f;
    x = bits_to_f((b & ~0x7f800000u) | f_to_bits(0.5f)); /* mantissa in [0.5, 1) */
    float e = (float)expo + 1.0f;
    float tmp = 0.0f;
    if (x < (float)0.707106781186547524) {          /* x < sqrt(1/2): use 2x - 1 */
        e = e - 1.0f;
        tmp = x;
    } else {
        e = e - 0.0f;
    }
    x = (x - 1.0f) + tmp;
    float z = x * x;
    float y = 7.0376836292E-2f;
    y = MAD(y, x, -1.1514610310E-1f);
    y = MAD(y, x, 1.1676998740E-1f);
    y = MAD(y, x, -1.2420140846E-1f);
    y = MAD(y, x, 1.4249322787E-1f);
    y = MAD(y, x, -1.6668057665E-1f);
    y = MAD(y, x, 2.0000714765E-1f);
    y = MAD(y, x, -2.4999993993E-1f);
    y = MAD(y, x, 3.3333331174E-1f);
    y = y * x;
    y = MAD(y, z, e * -2.12194440e-4f);
    y = MAD(-z, 0.5f, y);
    x = x + y;
    x = MAD(e, 0.693359375f, x);
    return x;
}

/* sin and cos of x >= 0 (theta = 2*pi*u, u in [0, 1)). */
static void cephes_sincosf(float x, float *s, float *c) {
    uint32_t sign_sin = f_to_bits(x) & 0x80000000u;
    x = fabsf(x);
    float y = x * 1.27323954473516f;                /* 4/pi */
    int32_t j = (int32_t)y;                         /* truncation, as cvttps */
    j = (j + 1) & ~1;
    y = (float)j;
    uint32_t swap_sin = ((uint32_t)j & 4u) << 29;
    bool first_poly = (j & 2) == 0;
    /* Extended precision reduction: x - y*pi/4 in three parts. */
    x = MAD(y, -0.78515625f, x);
    x = MAD(y, -2.4187564849853515625e-4f, x);
    x = MAD(y, -3.77489497744594108e-8f, x);
    uint32_t sign_cos = ((uint32_t)~(j - 2) & 4u) << 29;
    sign_sin ^= swap_sin;

    float z = x * x;
    float yc = 2.443315711809948E-005f;             /* cos polynomial on [0, pi/4] */
    yc = MAD(yc, z, -1.388731625493765E-003f);
    yc = MAD(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = MAD(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = -1.9515295891E-4f;                   /* sin polynomial on [0, pi/4] */
    ys = MAD(ys, z, 8.3321608736E-3f);
    ys = MAD(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = MAD(ys, x, x);

    /* Select as the vector code does (masked adds, so -0 becomes +0 the same way). */
    float sin_part_s = first_poly ? ys : 0.0f, sin_part_c = first_poly ? 0.0f : yc;
    float cos_s = ys - sin_part_s, cos_c = yc - sin_part_c;
    float vs = sin_part_c + sin_part_s, vc = cos_c + cos_s;
    *s = bits_to_f(f_to_bits(vs) ^ sign_sin);
    *c = bits_to_f(f_to_bits(vc) ^ sign_cos);
}

/* ---------------------------------------------------------------- normals */

/* Box-Muller on 16 uniforms in place: data[0..8) give the radii, data[8..16)
 * the angles; cosines go to the first half, sines to the second. */
static void normal_fill_16(float *d) {
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int k = 0; k < 8; k++) {
        float u1 = 1.0f - d[k];                     /* [0,1) -> (0,1] for the log */
        float u2 = d[k + 8];
        float radius = sqrtf(-2.0f * cephes_logf(u1));
        float s, c;
        cephes_sincosf(two_pi * u2, &s, &c);
        /* torch ends with fmadd(n, std=1, mean=0): n + 0 turns -0 into +0. */
        d[k] = fmaf(radius * c, 1.0f, 0.0f);
        d[k + 8] = fmaf(radius * s, 1.0f, 0.0f);
    }
}

/* normal_distribution<double>: one new pair per two outputs, the sine cached in
 * the generator (it survives across randn calls until the next seed). */
static double normal_f64(sdc_rng *r) {
    if (r->has_normal) {
        r->has_normal = false;
        return r->cached_normal;
    }
    double u1 = uniform_f64(r);
    double u2 = uniform_f64(r);
    double rad = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    r->cached_normal = rad * sin(theta);
    r->has_normal = true;
    return rad * cos(theta);
}

void sdc_rng_randn(sdc_rng *r, float *out, size_t n) {
    if (r->source == SDC_RNG_CUDA) {
        sdc_philox_randn(r, out, n);
        return;
    }
    if (n < 16) {
        for (size_t i = 0; i < n; i++) out[i] = (float)(normal_f64(r) * 1.0 + 0.0);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = uniform_f32(r);
    for (size_t i = 0; i + 16 <= n; i += 16) normal_fill_16(out + i);
    if (n % 16 != 0) {
        /* torch redraws the last 16 uniforms and recomputes that window. */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform_f32(r);
        normal_fill_16(tail);
    }
}

void sdc_rng_randn_rows(sdc_rng *rngs, int n_rngs, float *out, size_t n) {
    size_t per = n / (size_t)n_rngs;
    for (int b = 0; b < n_rngs; b++) sdc_rng_randn(&rngs[b], out + (size_t)b * per, per);
}
