/* cpu_isa.c — the run-time choice of the CPU kernel path (see cpu_isa.h). */
#include "cpu_isa.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sdc_cpu_isa_name(sdc_cpu_isa isa) {
    return isa == SDC_CPU_ISA_AVX512 ? "avx512" : "avx2";
}

bool sdc_cpu_isa_avx512_ok(const sdc_cpu_features *f) {
    return f->avx2 && f->fma && f->f16c && f->avx512f && f->avx512bw && f->avx512vl &&
           f->avx512dq;
}

sdc_cpu_isa_choice sdc_cpu_isa_decide(const char *request, const sdc_cpu_features *f) {
    sdc_cpu_isa_choice c;
    memset(&c, 0, sizeof c);
    bool can512 = sdc_cpu_isa_avx512_ok(f);
    const char *r = request && *request ? request : "auto";
    snprintf(c.request, sizeof c.request, "%s", r);
    if (!strcmp(r, "avx2")) {
        c.isa = SDC_CPU_ISA_AVX2;
        snprintf(c.note, sizeof c.note, "SDC_CPU_PATH=avx2");
    } else if (!strcmp(r, "avx512")) {
        c.isa = can512 ? SDC_CPU_ISA_AVX512 : SDC_CPU_ISA_AVX2;
        c.fell_back = !can512;
        snprintf(c.note, sizeof c.note, "%s",
                 can512 ? "SDC_CPU_PATH=avx512"
                        : "SDC_CPU_PATH=avx512 asked, but this processor (or OS) lacks AVX-512 "
                          "F/BW/VL/DQ: avx2 instead");
    } else {
        bool known = !strcmp(r, "auto");
        c.isa = can512 ? SDC_CPU_ISA_AVX512 : SDC_CPU_ISA_AVX2;
        c.fell_back = !known;
        snprintf(c.note, sizeof c.note, "%s%s%s",
                 known ? "" : "SDC_CPU_PATH has an unknown value (want auto, avx2 or avx512): ",
                 "auto, by cpuid: ", can512 ? "AVX-512 F/BW/VL/DQ present" : "no AVX-512 F/BW/VL/DQ");
    }
    return c;
}

static sdc_cpu_isa_choice g_choice;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void choose(void) {
    sdc_cpu_features f;
    sdc_cpu_features_detect(&f);
    g_choice = sdc_cpu_isa_decide(getenv("SDC_CPU_PATH"), &f);
    if (g_choice.fell_back) fprintf(stderr, "sdc: warning: %s\n", g_choice.note);
}

const sdc_cpu_isa_choice *sdc_cpu_isa_choice_get(void) {
    pthread_once(&g_once, choose);
    return &g_choice;
}

sdc_cpu_isa sdc_cpu_isa_override(sdc_cpu_isa isa) {
    pthread_once(&g_once, choose);
    sdc_cpu_isa was = g_choice.isa;
    g_choice.isa = isa;
    return was;
}
