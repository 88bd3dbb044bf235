// mma.h (emulator) — WMMA fragments as whole 16x16 matrices held by every
// lane: the ops are warp-collective, so each lane computes the same result.
// Checks: 256-bit aligned pointers, ldm multiples the hardware requires.
// A load is collective: every lane has loaded before any goes on (a barrier
// after it, as the warp executes it converged). No barrier before a load or
// after a store: a missing __syncwarp shows up as wrong data.
#pragma once
#include "emu.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
inline float emu_f(float v) { return v; }
inline float emu_f(__half v) { return __half2float(v); }
inline float emu_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename Use, int M, int N, int K, typename T, typename L = void> struct fragment {
    static constexpr int R = std::is_same<Use, matrix_b>::value ? K : M;
    static constexpr int C = std::is_same<Use, matrix_a>::value ? K : N;
    T x[R * C];
};
template <typename T> inline void emu_check(const void *p, unsigned ldm, const char *what) {
    if ((uintptr_t)p % 32) { fprintf(stderr, "wmma %s: pointer %p not 256-bit aligned\n", what, p); abort(); }
    unsigned need = std::is_same<T, float>::value ? 4 : 8;
    if (ldm % need) { fprintf(stderr, "wmma %s: ldm %u not a multiple of %u\n", what, ldm, need); abort(); }
}
template <typename Use, int M, int N, int K, typename T, typename L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm) {
    emu_check<T>(p, ldm, "load");
    typedef fragment<Use, M, N, K, T, L> F;
    for (int r = 0; r < F::R; r++)
        for (int c = 0; c < F::C; c++)
            f.x[r * F::C + c] = std::is_same<L, col_major>::value ? p[c * ldm + r] : p[r * ldm + c];
    emu::syncwarp();
}
template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm, layout_t l) {
    emu_check<float>(p, ldm, "load acc");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) f.x[r * N + c] = l == mem_col_major ? p[c * ldm + r] : p[r * ldm + c];
    emu::syncwarp();
}
template <int M, int N, int K>
inline void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t l) {
    emu_check<float>(p, ldm, "store");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) (l == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[r * N + c];
}
template <typename Use, int M, int N, int K, typename T, typename L>
inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, T v) {
    for (auto &e : f.x) e = v;
}
template <int M, int N, int K, typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
                     const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = c.x[i * N + j];
            for (int k = 0; k < K; k++) s += emu_f(a.x[i * K + k]) * emu_f(b.x[k * N + j]);
            out[i * N + j] = s;
        }
    for (int i = 0; i < M * N; i++) d.x[i] = out[i];
}
} // namespace wmma
} // namespace nvcuda
