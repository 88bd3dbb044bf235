/* cpu_isa.h — which instruction set sdc's own CPU kernels run with, chosen
 * once per process at run time, so one binary serves AVX2-only machines
 * (Zen3) and AVX-512 ones (Xeons).
 *
 * The library is built for x86-64-v3 (AVX2, FMA, F16C): that path is the
 * baseline and the fallback. Kernels with an AVX-512 form live in files
 * named *_avx512.c, which the Makefile alone compiles with the AVX-512 flags
 * (F, BW, VL, DQ); they are called only when this module chose AVX-512.
 *
 * The choice: SDC_CPU_PATH=auto (or unset) takes AVX-512 when cpuid and the
 * OS (xgetbv) allow F, BW, VL and DQ, else AVX2; SDC_CPU_PATH=avx2 forces
 * AVX2; SDC_CPU_PATH=avx512 asks for AVX-512 and, on a processor without
 * it, falls back to AVX2 with a warning on stderr (once) and a note in
 * `sdc info --cpu`. Any other value is treated as auto, with a note.
 *
 * Every AVX-512 kernel does each output element's arithmetic in the same
 * order as its AVX2 form (wider vectors, the same per-lane operations), so
 * the two paths give the same bits. */
#ifndef SDC_CPU_ISA_H
#define SDC_CPU_ISA_H

#include "cpu_features.h"

#include <stdbool.h>

typedef enum sdc_cpu_isa {
    SDC_CPU_ISA_AVX2 = 0,   /* AVX2 + FMA + F16C (the build's -march) */
    SDC_CPU_ISA_AVX512 = 1, /* AVX-512 F/BW/VL/DQ kernels where they exist, AVX2 elsewhere */
} sdc_cpu_isa;

typedef struct sdc_cpu_isa_choice {
    sdc_cpu_isa isa;
    char request[16];  /* "auto", "avx2", "avx512", or the unknown value (cut short) */
    bool fell_back;    /* the request could not be met (or was not understood) */
    char note[160];    /* why this path: one line */
} sdc_cpu_isa_choice;

/* Pure decision from a request (NULL or "" = auto) and features; no I/O. */
sdc_cpu_isa_choice sdc_cpu_isa_decide(const char *request, const sdc_cpu_features *f);

/* Whether f has what the AVX-512 kernels were compiled for. */
bool sdc_cpu_isa_avx512_ok(const sdc_cpu_features *f);

/* This process's choice, made once (from SDC_CPU_PATH and cpuid) on first
 * call; thread-safe. A fallback is reported once on stderr. */
const sdc_cpu_isa_choice *sdc_cpu_isa_choice_get(void);

/* The chosen path; the kernels' dispatch test. */
static inline sdc_cpu_isa sdc_cpu_isa_active(void) { return sdc_cpu_isa_choice_get()->isa; }

/* Switches this process's path to isa and returns the one before, for
 * tests and benchmarks that compare the paths in one process. Not while
 * ops run; isa must be one sdc_cpu_isa_avx512_ok allows. */
sdc_cpu_isa sdc_cpu_isa_override(sdc_cpu_isa isa);

/* "avx2" or "avx512". */
const char *sdc_cpu_isa_name(sdc_cpu_isa isa);

#endif
