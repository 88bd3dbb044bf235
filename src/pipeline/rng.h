/* rng.h — torch's CPU generator, bit for bit: torch.Generator('cpu').manual_seed(s)
 * followed by torch.randn(n, generator=g, dtype=torch.float32) calls, as torch
 * 2.5.1 computes them on x86-64 with AVX2 (the path every AVX2/AVX-512 CPU takes).
 *
 *     sdc_rng r;
 *     sdc_rng_seed(&r, 42);
 *     float noise[4 * 64 * 64];
 *     sdc_rng_randn(&r, noise, 4 * 64 * 64);   // == torch.randn(4, 64, 64, generator=g)
 *
 * The struct is plain data: copying it forks the stream.
 */
#ifndef SDC_PIPELINE_RNG_H
#define SDC_PIPELINE_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SDC_MT_N 624

typedef struct sdc_rng {
    uint32_t state[SDC_MT_N]; /* mt19937 state words */
    int next;                 /* index of the next word to temper */
    int left;                 /* words left before the next twist (torch's counting) */
    bool has_normal;          /* torch caches the second normal of a scalar pair */
    double cached_normal;
} sdc_rng;

/* torch's manual_seed: mt19937 seeded with the low 32 bits of seed, normal cache cleared. */
void sdc_rng_seed(sdc_rng *r, uint64_t seed);
/* One 32-bit mt19937 draw (torch's generator->random()). */
uint32_t sdc_rng_u32(sdc_rng *r);
/* n float32 standard normals = torch.randn(n, generator=g) for any shape of n elements. */
void sdc_rng_randn(sdc_rng *r, float *out, size_t n);
/* n normals from n_rngs generators: one randn of n/n_rngs from each, in
 * order (diffusers' randn_tensor with a list of generators, one per batch
 * row). n_rngs == 1 is sdc_rng_randn. */
void sdc_rng_randn_rows(sdc_rng *rngs, int n_rngs, float *out, size_t n);
/* n float32 uniforms in [0, 1) = torch.rand(n, generator=g). */
void sdc_rng_rand(sdc_rng *r, float *out, size_t n);

#endif
