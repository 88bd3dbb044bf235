/* rng.h — torch's generators on the host, so that a seed gives the noise
 * torch would:
 *   - SDC_RNG_CPU (the default): torch.Generator('cpu').manual_seed(s) then
 *     torch.randn(n, generator=g, dtype=torch.float32) calls, bit for bit, as
 *     torch 2.5.1 computes them on x86-64 with AVX2 (the path every
 *     AVX2/AVX-512 CPU takes);
 *   - SDC_RNG_CUDA: the same calls with device='cuda' (torch's Philox normal
 *     generator, A1111's default "GPU" seeds), computed on the host
 *     (rng_philox.c) so it serves every backend.
 *
 *     sdc_rng r;
 *     sdc_rng_seed(&r, 42);                    // or sdc_rng_seed_cuda(&r, 42, 0)
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

#include "sdc.h"

#define SDC_MT_N 624

typedef struct sdc_rng {
    uint32_t state[SDC_MT_N]; /* mt19937 state words */
    int next;                 /* index of the next word to temper */
    int left;                 /* words left before the next twist (torch's counting) */
    bool has_normal;          /* torch caches the second normal of a scalar pair */
    double cached_normal;
    sdc_rng_source source;    /* which generator randn draws from */
    uint64_t philox_seed;     /* CUDA: the whole 64-bit seed (the Philox key) */
    uint64_t philox_offset;   /* CUDA: the counter offset of the next call (a multiple of 4) */
    uint32_t grid_cap;        /* CUDA: the device's resident 256-thread blocks; 0 = no cap */
} sdc_rng;

/* torch's manual_seed: mt19937 seeded with the low 32 bits of seed, normal
 * cache cleared; randn draws from the CPU generator. */
void sdc_rng_seed(sdc_rng *r, uint64_t seed);
/* torch.Generator('cuda').manual_seed(seed): randn draws from the Philox
 * generator (all 64 bits of the seed, offset 0). torch launches at most
 * SMs x (max threads per SM / 256) blocks, so tensors over 256 x that many
 * elements depend on the GPU: grid_cap is that product for the GPU to
 * imitate (1056 on an H100/H200, 768 on an RTX 4090), or 0 for a GPU big
 * enough (what every GPU gives for SD latents up to 512x512 per image). u32
 * and rand stay the CPU generator's (seeded with the same seed). */
void sdc_rng_seed_cuda(sdc_rng *r, uint64_t seed, uint32_t grid_cap);
/* The seeding of `source` (grid_cap only for CUDA). */
void sdc_rng_seed_as(sdc_rng *r, sdc_rng_source source, uint64_t seed, uint32_t grid_cap);
/* n float32 standard normals = torch.randn(n, generator=g, device='cuda'):
 * what sdc_rng_randn does for a CUDA generator. */
void sdc_philox_randn(sdc_rng *r, float *out, size_t n);
/* One 32-bit mt19937 draw (torch's generator->random()). */
uint32_t sdc_rng_u32(sdc_rng *r);
/* n float32 standard normals = torch.randn(n, generator=g) for any shape of
 * n elements, from the generator's source. */
void sdc_rng_randn(sdc_rng *r, float *out, size_t n);
/* n normals from n_rngs generators: one randn of n/n_rngs from each, in
 * order (diffusers' randn_tensor with a list of generators, one per batch
 * row). n_rngs == 1 is sdc_rng_randn. */
void sdc_rng_randn_rows(sdc_rng *rngs, int n_rngs, float *out, size_t n);
/* n float32 uniforms in [0, 1) = torch.rand(n, generator=g). */
void sdc_rng_rand(sdc_rng *r, float *out, size_t n);

#endif
