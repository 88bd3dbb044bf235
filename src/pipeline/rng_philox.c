/* rng_philox.c — torch's CUDA normal generator (torch.randn(..., device='cuda',
 * generator=g) in float32) computed on the host, for A1111's "GPU" seeds on
 * any backend. Built from the algorithm's documented structure:
 *   - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 *     3", SC'11): a 128-bit counter and a 64-bit key, ten rounds, four 32-bit
 *     words out;
 *   - curand's Philox state: thread t of a launch counts in its own
 *     subsequence (counter words 2-3 = t) from the generator's offset
 *     (counter words 0-1 = offset / 4, plus one per draw of four words);
 *   - curand_normal4: Box-Muller on two pairs of words, u = x·2^-32 + 2^-33,
 *     v = y·(2^-32·2π) + 2^-32·π, normals s·sin(v) and s·cos(v) with
 *     s = sqrt(-2 ln u);
 *   - torch's launch: 256-thread blocks, as many as the tensor needs up to
 *     the device's resident blocks (grid_cap), each thread drawing four
 *     normals per pass over a grid-stride loop, the j-th of them going to
 *     element (its index + pass·4·stride + j·stride), extras discarded; after
 *     the call the generator's offset advances by 4 per pass.
 * The Philox words and the layout are exact. The device computes sin and cos
 * with its fast hardware approximation (__sincosf), which host code cannot
 * reproduce bit for bit: here they are exact functions of the same reduced
 * angle, so normals differ from the device's in the last bits
 * (tests/test_rng.c measures it against torch on an H200). */
#include "rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* key schedule: golden ratio */
#define PHILOX_W1 0xBB67AE85u /* key schedule: sqrt(3) - 1 */
#define BLOCK 256             /* torch's threads per block for random kernels */

void sdc_rng_seed_cuda(sdc_rng *r, uint64_t seed, uint32_t grid_cap) {
    sdc_rng_seed(r, seed);
    r->source = SDC_RNG_CUDA;
    r->philox_seed = seed;
    r->philox_offset = 0;
    r->grid_cap = grid_cap;
}

/* Philox4x32-10 of counter c under key k, into out. */
static void philox(const uint32_t c_in[4], uint64_t key, uint32_t out[4]) {
    uint32_t c0 = c_in[0], c1 = c_in[1], c2 = c_in[2], c3 = c_in[3];
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* d rounded to float toward zero. */
static float round_to_zero(double d) {
    float f = (float)d;
    return fabs((double)f) > fabs(d) ? nextafterf(f, 0.0f) : f;
}

/* Box-Muller on one pair of words: out[0] = s·sin(v), out[1] = s·cos(v). */
static void box_muller(uint32_t x, uint32_t y, float out[2]) {
    const float inv32 = 0x1p-32f;
    const float inv32_2pi = 0x1p-32f * 6.2831855f; /* curand's float constant, rounded once */
    /* x·2^-32 is exact, so the device's fused multiply-add and this agree. */
    float u = (float)x * inv32 + inv32 / 2.0f;
    float v = fmaf((float)y, inv32_2pi, inv32_2pi / 2.0f); /* nvcc contracts this to an FMA */
    /* The device's logf is within 1 ulp; the correctly rounded value is its
     * usual result. */
    float s = sqrtf(-2.0f * (float)log((double)u));
    /* The device's __sincosf turns v into revolutions with one float multiply
     * rounded toward zero, then its sine unit approximates sin(2π·rev). Taking
     * that same rev (and rounding the exact values toward zero) matches the
     * device best of the models tried: 26 % of the values bit-exact, max-abs
     * 1.2e-6, and no bias (the sum of 2^19 normals within 9e-4 of torch's;
     * the exact sin(v) drifts by 2e-2 there). */
    float rev = round_to_zero((double)v * (double)0.15915494f);
    double angle = 6.283185307179586 * (double)rev;
    float sn = round_to_zero(sin(angle)), cs = round_to_zero(cos(angle));
    /* torch's transform, rand * std + mean with std 1 and mean 0, turns -0 into +0. */
    out[0] = sn * s + 0.0f;
    out[1] = cs * s + 0.0f;
}

void sdc_philox_randn(sdc_rng *r, float *out, size_t n) {
    if (n == 0) return;
    uint64_t blocks = ((uint64_t)n + BLOCK - 1) / BLOCK;
    if (r->grid_cap && blocks > r->grid_cap) blocks = r->grid_cap;
    uint64_t stride = blocks * BLOCK;
    uint64_t passes = ((uint64_t)n - 1) / (stride * 4) + 1;
    uint64_t base = r->philox_offset / 4;
    for (uint64_t t = 0; t < stride; t++) {
        for (uint64_t pass = 0; pass < passes; pass++) {
            uint64_t first = t + pass * 4 * stride;
            if (first >= n) break; /* this thread's later draws all fall past the end */
            uint64_t ctr = base + pass;
            uint32_t c[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), (uint32_t)t,
                             (uint32_t)(t >> 32)};
            uint32_t w[4];
            philox(c, r->philox_seed, w);
            for (int pair = 0; pair < 2; pair++) {
                uint64_t e0 = first + (uint64_t)(2 * pair) * stride;
                if (e0 >= n) break;
                float z[2];
                box_muller(w[2 * pair], w[2 * pair + 1], z);
                out[e0] = z[0];
                if (e0 + stride < n) out[e0 + stride] = z[1];
            }
        }
    }
    r->philox_offset += passes * 4;
}
