/* cpu_features.c — cpuid/xgetbv feature detection and the OpenBLAS core
 * choice (see cpu_features.h for why). */
#include "cpu_features.h"
#include "cpu_isa.h"

#include <cblas.h>
#include <cpuid.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

#define BIT(r, n) (((r) >> (n)) & 1u)

void sdc_cpu_features_detect(sdc_cpu_features *f) {
    memset(f, 0, sizeof *f);
    unsigned a = 0, b = 0, c = 0, d = 0, max = 0;
    if (!__get_cpuid(0, &max, &b, &c, &d)) return;
    memcpy(f->vendor, &b, 4);
    memcpy(f->vendor + 4, &d, 4);
    memcpy(f->vendor + 8, &c, 4);
    unsigned ext = __get_cpuid_max(0x80000000u, NULL);
    if (ext >= 0x80000004u) {
        unsigned *w = (unsigned *)f->brand;
        for (unsigned leaf = 0; leaf < 3; leaf++)
            __get_cpuid(0x80000002u + leaf, &w[leaf * 4], &w[leaf * 4 + 1], &w[leaf * 4 + 2],
                        &w[leaf * 4 + 3]);
        f->brand[48] = '\0';
        char *s = f->brand;
        while (*s == ' ') s++;
        memmove(f->brand, s, strlen(s) + 1);
        for (size_t n = strlen(f->brand); n > 0 && f->brand[n - 1] == ' '; n--) f->brand[n - 1] = '\0';
    }
    __get_cpuid(1, &a, &b, &c, &d);
    int fam = (int)((a >> 8) & 0xf), mod = (int)((a >> 4) & 0xf);
    if (fam == 0xf) fam += (int)((a >> 20) & 0xff);
    if (fam == 0x6 || fam >= 0xf) mod += (int)((a >> 16) & 0xf) << 4;
    f->family = fam;
    f->model = mod;
    f->sse3 = BIT(c, 0);
    bool osxsave = BIT(c, 27);
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    bool ymm = (xcr0 & 0x6) == 0x6;            /* SSE and AVX state */
    bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;   /* opmask, ZMM0-15 upper, ZMM16-31 */
    bool tiles = (xcr0 & 0x60000) == 0x60000;  /* AMX TILECFG and TILEDATA */
    f->avx = ymm && BIT(c, 28);
    f->fma = f->avx && BIT(c, 12);
    f->f16c = f->avx && BIT(c, 29);
    if (max >= 7) {
        __get_cpuid_count(7, 0, &a, &b, &c, &d);
        f->avx2 = f->avx && BIT(b, 5);
        f->avx512f = zmm && BIT(b, 16);
        f->avx512dq = f->avx512f && BIT(b, 17);
        f->avx512cd = f->avx512f && BIT(b, 28);
        f->avx512bw = f->avx512f && BIT(b, 30);
        f->avx512vl = f->avx512f && BIT(b, 31);
        f->avx512vnni = f->avx512f && BIT(c, 11);
        f->avx512fp16 = f->avx512f && BIT(d, 23);
        f->amx_tile = tiles && BIT(d, 24);
        unsigned sub = a;
        if (sub >= 1) {
            __get_cpuid_count(7, 1, &a, &b, &c, &d);
            f->avx512bf16 = f->avx512f && BIT(a, 5);
        }
    }
}

void sdc_cpu_features_string(const sdc_cpu_features *f, char *buf, int cap) {
    static const struct { const char *name; size_t off; } flags[] = {
#define F(x) {#x, offsetof(sdc_cpu_features, x)}
        F(sse3), F(avx), F(fma), F(f16c), F(avx2), F(avx512f), F(avx512dq), F(avx512cd),
        F(avx512bw), F(avx512vl), F(avx512vnni), F(avx512bf16), F(avx512fp16), F(amx_tile),
#undef F
    };
    int n = 0;
    if (cap > 0) buf[0] = '\0';
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (*(const bool *)((const char *)f + flags[i].off) && n < cap)
            n += snprintf(buf + n, (size_t)(cap - n), "%s%s", n ? " " : "", flags[i].name);
}

const char *sdc_blas_core_for(const sdc_cpu_features *f) {
    if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq) return "SkylakeX";
    if (f->avx2 && f->fma) return strcmp(f->vendor, "AuthenticAMD") ? "Haswell" : "Zen";
    if (f->avx) return "Sandybridge";
    return NULL;
}

int sdc_blas_core_rank(const char *core) {
    static const struct { const char *name; int rank; } ranks[] = {
        {"Katmai", 1}, {"Coppermine", 1}, {"Northwood", 1}, {"Prescott", 1}, {"Banias", 1},
        {"Core2", 1}, {"Penryn", 1}, {"Dunnington", 1}, {"Nehalem", 1}, {"Atom", 1},
        {"Athlon", 1}, {"Opteron", 1}, {"Opteron_SSE3", 1}, {"Barcelona", 1}, {"Nano", 1},
        {"Sandybridge", 2}, {"Bulldozer", 2}, {"Piledriver", 2}, {"Steamroller", 2},
        {"Excavator", 2},
        {"Haswell", 3}, {"Zen", 3},
        {"SkylakeX", 4},
        {"Cooperlake", 5}, {"SapphireRapids", 5},
    };
    for (size_t i = 0; core && i < sizeof ranks / sizeof ranks[0]; i++)
        if (!strcasecmp(core, ranks[i].name)) return ranks[i].rank;
    return 0;
}

const char *sdc_blas_core_upgrade(const sdc_cpu_features *f, const char *current) {
    const char *want = sdc_blas_core_for(f);
    if (!want) return NULL;
    /* An unknown name (a newer OpenBLAS) is trusted: it knows its own cores. */
    int have = sdc_blas_core_rank(current);
    if (have == 0 && current && *current) return NULL;
    return sdc_blas_core_rank(want) > have ? want : NULL;
}

const char *sdc_blas_core_current(void) { return openblas_get_corename(); }
const char *sdc_blas_config(void) { return openblas_get_config(); }

/* The run-time choice of cpu_isa.c; the build itself is x86-64-v3. */
const char *sdc_cpu_kernel_path(void) {
    return sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512
               ? "avx512 (AVX-512 F/BW/VL/DQ kernels where written, AVX2+FMA+F16C elsewhere)"
               : "avx2+fma+f16c";
}
