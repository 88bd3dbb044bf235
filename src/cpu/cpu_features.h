/* cpu_features.h — what the processor (and the OS) lets sdc use, from cpuid
 * and xgetbv; and which OpenBLAS core suits it.
 *
 * Why the OpenBLAS part exists: Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH)
 * picks its kernels by cpuid model number at load time, and falls back to
 * its generic SSE3 "Prescott" kernels on processors newer than it knows
 * (e.g. Intel Xeons of cpuid model 207): sgemm then runs ~2.4x slower. It
 * reads OPENBLAS_CORETYPE only when it loads, so the sdc command re-executes
 * itself once with the variable set (sdc_blas_select, blas_select.c).
 * Programs linking libsdc call sdc_blas_select first thing in main, or set
 * OPENBLAS_CORETYPE themselves (sdc_blas_core_upgrade tells them what to).
 */
#ifndef SDC_CPU_FEATURES_H
#define SDC_CPU_FEATURES_H

#include <stdbool.h>

typedef struct sdc_cpu_features {
    char vendor[13];  /* "GenuineIntel", "AuthenticAMD", ... */
    char brand[49];   /* the processor's brand string, trimmed */
    int family, model; /* display family and model (extended fields folded in) */
    /* Each flag is set only when the OS also saves the registers it needs. */
    bool sse3, avx, fma, f16c, avx2;
    bool avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512vnni, avx512bf16, avx512fp16;
    bool amx_tile;
} sdc_cpu_features;

/* This processor's features. */
void sdc_cpu_features_detect(sdc_cpu_features *f);

/* The features as a space-separated list ("avx2 fma f16c avx512f ..."). */
void sdc_cpu_features_string(const sdc_cpu_features *f, char *buf, int cap);

/* The OpenBLAS core whose kernels suit f: "SkylakeX" with AVX-512 F/BW/VL/DQ,
 * "Zen" (AMD) or "Haswell" with AVX2 and FMA, "Sandybridge" with AVX, else
 * NULL (nothing better than what any OpenBLAS picks). */
const char *sdc_blas_core_for(const sdc_cpu_features *f);

/* How capable an OpenBLAS core name's kernels are: 0 unknown, 1 SSE-only
 * cores, 2 AVX, 3 AVX2 (Haswell, Zen), 4 AVX-512 (SkylakeX), 5 AVX-512 with
 * BF16 and newer (Cooperlake, SapphireRapids). Case-insensitive. */
int sdc_blas_core_rank(const char *core);

/* The core to force when OpenBLAS picked `current` on a processor with
 * features f: sdc_blas_core_for(f) if it ranks above current, else NULL. */
const char *sdc_blas_core_upgrade(const sdc_cpu_features *f, const char *current);

/* sdc's own CPU kernels: the path chosen at run time (cpu_isa.h), in words. */
const char *sdc_cpu_kernel_path(void);

/* OpenBLAS's own report: the core in use, and its build configuration. */
const char *sdc_blas_core_current(void);
const char *sdc_blas_config(void);

/* Called first in a program's main(): when OpenBLAS's pick ranks below what
 * this processor suits and the user set no OPENBLAS_CORETYPE, sets it and
 * re-executes the program (argv unchanged), once; else returns. */
void sdc_blas_select(char **argv);

typedef enum sdc_blas_origin {
    SDC_BLAS_BY_OPENBLAS, /* OpenBLAS's own choice, which sdc found good enough */
    SDC_BLAS_BY_USER,     /* the user's OPENBLAS_CORETYPE */
    SDC_BLAS_BY_SDC,      /* sdc_blas_select set OPENBLAS_CORETYPE and re-executed */
} sdc_blas_origin;

typedef struct sdc_blas_state {
    const char *core;          /* the core in use */
    const char *config;        /* OpenBLAS's build configuration */
    sdc_blas_origin origin;
    const char *openblas_pick; /* with SDC_BLAS_BY_SDC: what OpenBLAS had picked */
} sdc_blas_state;

sdc_blas_state sdc_blas_state_get(void);

#endif
