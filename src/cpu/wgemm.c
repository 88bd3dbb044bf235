/* wgemm.c — the weight-times-activations GEMM of wgemm.h: blocking, panel
 * packing straight from F32/F16/BF16, the threading, and the AVX2 kernel.
 *
 * Blocking: a task owns MC output features × NC columns of C. For each
 * KC-deep slice of k it packs its MC weight rows into 32-row panels
 * ap [KC][32] (widened on the way, in cache), then runs every 12-column
 * tile of its columns against every panel; the tile's accumulators live in
 * the task's `part` buffer between slices. C is read once (the start
 * values) and written once per element. */
#include "wgemm.h"
#include "cpu_avx512.h"
#include "cpu_isa.h"
#include "cpu_ops.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MR 32         /* panel rows (features); the kernels' accumulator height */
#define NR 12         /* tile columns; the kernels' accumulator width */
#define MC (4 * MR)   /* features per task: 4 panels */
#define NC (16 * NR)  /* columns per task */
#define KC 384        /* k per slice: a panel is 48 KiB, a tile's 12 rows 18 KiB */

/* acc [NR][MR] += the kc-deep product of a packed panel ap [kc][MR] and NR
 * rows b[j][0, kc): AVX2 here, AVX-512 in wgemm_avx512.c. */
typedef void (*kernel_fn)(int64_t kc, const float *ap, const float *const *b, float *acc);
static void kernel_avx2(int64_t kc, const float *ap, const float *const *b, float *acc);

typedef struct wctx {
    const sdc_wgemm *g;
    kernel_fn kernel;
    int64_t ncb, ntasks; /* column blocks; tasks = feature blocks × ncb */
    atomic_llong next;   /* the next task to take */
    float *scratch;      /* per lane: ap [MC][KC] then part [MC][NC] */
} wctx;

#define LANE_FLOATS ((int64_t)MC * KC + (int64_t)MC * NC)

/* Padding columns of a tile read these (their results are dropped). */
static const float zero_row[KC] __attribute__((aligned(64)));

static inline float load1(const sdc_wgemm *g, int64_t off) {
    switch (g->wtype) {
    case SDC_F16:
        return sdc_f16_to_f32(((const uint16_t *)g->w)[off]);
    case SDC_BF16:
        return sdc_bf16_to_f32(((const uint16_t *)g->w)[off]);
    default:
        return ((const float *)g->w)[off];
    }
}

#ifdef __AVX2__
#include <immintrin.h>

/* 8 consecutive weight elements from `off` as F32 (exact for every dtype). */
static inline __m256 load8(const sdc_wgemm *g, int64_t off) {
    switch (g->wtype) {
    case SDC_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)g->w + off)));
    case SDC_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)g->w + off));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default:
        return _mm256_loadu_ps((const float *)g->w + off);
    }
}

/* r[q] = column q of the 8x8 block whose rows were r[0..7]. */
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int q = 0; q < 8; q += 2) {
        t[q] = _mm256_unpacklo_ps(r[q], r[q + 1]);
        t[q + 1] = _mm256_unpackhi_ps(r[q], r[q + 1]);
    }
    for (int q = 0; q < 8; q += 4) {
        u[q] = _mm256_shuffle_ps(t[q], t[q + 2], 0x44);
        u[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], 0xEE);
        u[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
        u[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x31);
    }
}

/* ap [kc][32] = weight rows [i0, i0 + rows) × k [k0, k0 + kc) as F32, rows
 * past `rows` zero. With `ahead`, each cache line read asks for the line
 * KC elements on (the next slice's): a row's slice alone is too short a run
 * for the hardware prefetcher, and without this the packing waited on
 * memory (2x the kernel's time on a 4x4 conv, measured with perf). */
static void pack_panel(const sdc_wgemm *g, int64_t i0, int64_t rows, int64_t k0, int64_t kc,
                       bool ahead, float *ap) {
    int64_t es = (int64_t)sdc_dtype_size(g->wtype), line = 64 / es;
    for (int64_t r0 = 0; r0 < MR; r0 += 8) {
        int64_t kk = 0;
        for (; kk + 8 <= kc; kk += 8) {
            __m256 r[8];
            bool fetch = ahead && kk % line == 0;
            for (int q = 0; q < 8; q++) {
                if (r0 + q >= rows) {
                    r[q] = _mm256_setzero_ps();
                    continue;
                }
                int64_t off = (i0 + r0 + q) * g->ldw + k0 + kk;
                if (fetch) __builtin_prefetch((const char *)g->w + (off + KC) * es, 0, 2);
                r[q] = load8(g, off);
            }
            transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_store_ps(ap + (kk + q) * MR + r0, r[q]);
        }
        for (; kk < kc; kk++)
            for (int q = 0; q < 8; q++)
                ap[kk * MR + r0 + q] =
                    r0 + q < rows ? load1(g, (i0 + r0 + q) * g->ldw + k0 + kk) : 0.0f;
    }
}
#else
static void pack_panel(const sdc_wgemm *g, int64_t i0, int64_t rows, int64_t k0, int64_t kc,
                       bool ahead, float *ap) {
    (void)ahead;
    for (int64_t kk = 0; kk < kc; kk++)
        for (int64_t r = 0; r < MR; r++)
            ap[kk * MR + r] = r < rows ? load1(g, (i0 + r) * g->ldw + k0 + kk) : 0.0f;
}
#endif

static inline float *c_at(const sdc_wgemm *g, int64_t j, int64_t i) {
    return g->c + j / g->group * g->group_stride + j % g->group * g->cs + i * g->rs;
}

/* acc [NR][MR] = C's start values for columns [j0, j0 + nj) × features
 * [i0, i0 + mi) (0 elsewhere, and everywhere without `accumulate`). */
static void load_tile(const sdc_wgemm *g, float *acc, int64_t j0, int64_t nj, int64_t i0,
                      int64_t mi) {
    memset(acc, 0, sizeof(float) * NR * MR);
    if (!g->accumulate) return;
    for (int64_t j = 0; j < nj; j++) {
        const float *c = c_at(g, j0 + j, i0);
        if (g->rs == 1) memcpy(acc + j * MR, c, sizeof(float) * (size_t)mi);
        else for (int64_t i = 0; i < mi; i++) acc[j * MR + i] = c[i * g->rs];
    }
}

static void store_tile(const sdc_wgemm *g, const float *acc, int64_t j0, int64_t nj, int64_t i0,
                       int64_t mi) {
    for (int64_t j = 0; j < nj; j++) {
        float *c = c_at(g, j0 + j, i0);
        if (g->rs == 1) memcpy(c, acc + j * MR, sizeof(float) * (size_t)mi);
        else for (int64_t i = 0; i < mi; i++) c[i * g->rs] = acc[j * MR + i];
    }
}

static void run_task(const wctx *cx, int64_t t, float *ap, float *part) {
    const sdc_wgemm *g = cx->g;
    int64_t i0 = t / cx->ncb * MC, j0 = t % cx->ncb * NC;
    int64_t mi = g->m - i0 < MC ? g->m - i0 : MC, nj = g->n - j0 < NC ? g->n - j0 : NC;
    int64_t panels = (mi + MR - 1) / MR, tiles = (nj + NR - 1) / NR;
    for (int64_t k0 = 0; k0 < g->k; k0 += KC) {
        int64_t kc = g->k - k0 < KC ? g->k - k0 : KC;
        bool first = k0 == 0, last = k0 + kc == g->k;
        for (int64_t p = 0; p < panels; p++) {
            int64_t rows = mi - p * MR < MR ? mi - p * MR : MR;
            pack_panel(g, i0 + p * MR, rows, k0, kc, !last, ap + p * KC * MR);
        }
        for (int64_t tl = 0; tl < tiles; tl++) {
            int64_t jt = j0 + tl * NR, nv = g->n - jt < NR ? g->n - jt : NR;
            const float *b[NR];
            for (int64_t j = 0; j < NR; j++) b[j] = j < nv ? g->x + (jt + j) * g->ldx + k0 : zero_row;
            for (int64_t p = 0; p < panels; p++) {
                float *acc = part + (p * (NC / NR) + tl) * NR * MR;
                int64_t rows = mi - p * MR < MR ? mi - p * MR : MR;
                if (first) load_tile(g, acc, jt, nv, i0 + p * MR, rows);
                cx->kernel(kc, ap + p * KC * MR, b, acc);
                if (last) store_tile(g, acc, jt, nv, i0 + p * MR, rows);
            }
        }
    }
}

/* Each lane is one thread's scratch; lanes take tasks until none are left,
 * so an unequal split still keeps every thread busy. */
static void run_lanes(void *p, int64_t begin, int64_t end) {
    wctx *cx = p;
    for (int64_t lane = begin; lane < end; lane++) {
        float *ap = cx->scratch + lane * LANE_FLOATS, *part = ap + (int64_t)MC * KC;
        for (;;) {
            int64_t t = atomic_fetch_add(&cx->next, 1);
            if (t >= cx->ntasks) break;
            run_task(cx, t, ap, part);
        }
    }
}

bool sdc_wgemm_pays(sdc_dtype wtype, int64_t cols, int64_t k, bool transpose_only) {
    static atomic_int mode = -1;
    int m = atomic_load(&mode);
    if (m < 0) {
        const char *e = getenv("SDC_WGEMM");
        m = !(e && strcmp(e, "0") == 0);
        atomic_store(&mode, m);
    }
    return m && wtype != SDC_F32 && k >= 256 && cols >= NR &&
           cols <= (transpose_only ? 64 : 256);
}

sdc_status sdc_cpu_wgemm(sdc_backend *be, const sdc_wgemm *g, sdc_err *err) {
    if (g->m <= 0 || g->n <= 0) return SDC_OK;
    if (g->wtype != SDC_F32 && g->wtype != SDC_F16 && g->wtype != SDC_BF16)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "wgemm: weight dtype %s",
                           sdc_dtype_name(g->wtype));
    if (g->k == 0) { /* no products: C keeps its start values */
        if (!g->accumulate)
            for (int64_t j = 0; j < g->n; j++)
                for (int64_t i = 0; i < g->m; i++) *c_at(g, j, i) = 0.0f;
        return SDC_OK;
    }
    wctx cx = {.g = g,
               .kernel = sdc_cpu_isa_active() == SDC_CPU_ISA_AVX512 ? sdc_wgemm_kernel_avx512
                                                                    : kernel_avx2,
               .ncb = (g->n + NC - 1) / NC};
    cx.ntasks = (g->m + MC - 1) / MC * cx.ncb;
    int64_t lanes = sdc_get_threads();
    if (lanes > cx.ntasks) lanes = cx.ntasks;
    if (lanes < 1) lanes = 1;
    cx.scratch = sdc_cpu_scratch(be, 3, (size_t)(lanes * LANE_FLOATS), err);
    if (!cx.scratch) return sdc_err_wrap(err, "wgemm: scratch");
    atomic_init(&cx.next, 0);
    sdc_parallel_for(lanes, 1, run_lanes, &cx);
    return SDC_OK;
}

#ifdef __AVX2__
/* 32 × 12 in three-column passes (12 accumulators of 8 floats: AVX2 has 16
 * registers). Each element: acc = fma(a, b, acc) in k order. */
static void kernel_avx2(int64_t kc, const float *ap, const float *const *b, float *acc) {
    for (int j = 0; j < NR; j += 3) {
        const float *b0 = b[j], *b1 = b[j + 1], *b2 = b[j + 2];
        float *c = acc + j * MR;
        __m256 c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8),
               c02 = _mm256_loadu_ps(c + 16), c03 = _mm256_loadu_ps(c + 24);
        __m256 c10 = _mm256_loadu_ps(c + 32), c11 = _mm256_loadu_ps(c + 40),
               c12 = _mm256_loadu_ps(c + 48), c13 = _mm256_loadu_ps(c + 56);
        __m256 c20 = _mm256_loadu_ps(c + 64), c21 = _mm256_loadu_ps(c + 72),
               c22 = _mm256_loadu_ps(c + 80), c23 = _mm256_loadu_ps(c + 88);
        const float *a = ap;
        for (int64_t k = 0; k < kc; k++, a += MR) {
            __m256 x0 = _mm256_broadcast_ss(b0 + k), x1 = _mm256_broadcast_ss(b1 + k),
                   x2 = _mm256_broadcast_ss(b2 + k);
#define WG_QUARTER(q)                                    \
    {                                                    \
        __m256 aq = _mm256_load_ps(a + 8 * (q));         \
        c0##q = _mm256_fmadd_ps(aq, x0, c0##q);          \
        c1##q = _mm256_fmadd_ps(aq, x1, c1##q);          \
        c2##q = _mm256_fmadd_ps(aq, x2, c2##q);          \
    }
            WG_QUARTER(0) WG_QUARTER(1) WG_QUARTER(2) WG_QUARTER(3)
#undef WG_QUARTER
        }
        _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
        _mm256_storeu_ps(c + 16, c02), _mm256_storeu_ps(c + 24, c03);
        _mm256_storeu_ps(c + 32, c10), _mm256_storeu_ps(c + 40, c11);
        _mm256_storeu_ps(c + 48, c12), _mm256_storeu_ps(c + 56, c13);
        _mm256_storeu_ps(c + 64, c20), _mm256_storeu_ps(c + 72, c21);
        _mm256_storeu_ps(c + 80, c22), _mm256_storeu_ps(c + 88, c23);
    }
}
#else
/* Builds without AVX2: the same order, one element at a time. */
static void kernel_avx2(int64_t kc, const float *ap, const float *const *b, float *acc) {
    for (int j = 0; j < NR; j++)
        for (int i = 0; i < MR; i++) {
            float s = acc[j * MR + i];
            for (int64_t k = 0; k < kc; k++) s = fmaf(ap[k * MR + i], b[j][k], s);
            acc[j * MR + i] = s;
        }
}
#endif
