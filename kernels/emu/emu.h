// emu.h — runs sdc's CUDA kernel sources on the host, to test them on a
// machine without a GPU (see kernels/emu/run.sh): gen.py turns each
// kernels/*.cu into C++ that includes this first. One fiber per CUDA thread,
// blocks one at a time; __syncthreads/__syncwarp are real barriers (a fiber
// runs until it reaches one, so a missing barrier shows up as wrong data, and
// a barrier some threads never reach aborts as a deadlock); shuffles go
// through a warp buffer; __shared__ variables become statics (one block runs
// at a time). Not a GPU: it checks indexing, barriers, WMMA layouts and,
// under ASan, bounds — not timing or the memory model.
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>
#include <cmath>
#include <math.h>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

namespace emu {
uint3 &tid();
extern uint3 g_blockIdx;
extern dim3 g_blockDim, g_gridDim;
void syncthreads();
void syncwarp();
uint64_t exchange(uint64_t v, int src_lane_xor, bool sum);
unsigned char *dyn_smem();
struct Cfg {
    dim3 grid, block;
    size_t smem;
};
inline Cfg cfg(dim3 g, dim3 b, size_t s = 0) { return Cfg{g, b, s}; }
inline Cfg cfg(dim3 g, dim3 b, size_t s, cudaStream_t) { return Cfg{g, b, s}; } // one stream
void run(const Cfg &c, const void *fn, const std::function<void()> &body);
// Stream capture (CUDA graphs): while recording, launches, cuBLAS calls and
// async copies are stored as closures over their arguments (copied, as a
// graph's kernel nodes copy theirs) and cudaGraphLaunch replays them in order.
bool recording();
bool check_cfg(const Cfg &c, const void *fn);
void record(std::function<void()> f);
template <typename... P, typename... A> void launch(void (*k)(P...), Cfg c, A &&...a) {
    std::tuple<std::decay_t<P>...> args(static_cast<std::decay_t<P>>(a)...);
    if (recording()) {
        if (check_cfg(c, (const void *)k))
            record([k, c, args]() { run(c, (const void *)k, [&]() { std::apply(k, args); }); });
        return;
    }
    run(c, (const void *)k, [&]() { std::apply(k, args); });
}
} // namespace emu
#define threadIdx (emu::tid())
#define blockIdx (emu::g_blockIdx)
#define blockDim (emu::g_blockDim)
#define gridDim (emu::g_gridDim)
inline void __syncthreads() { emu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::syncwarp(); }
inline float __shfl_xor_sync(unsigned, float v, int o) {
    uint64_t b = 0;
    memcpy(&b, &v, 4);
    b = emu::exchange(b, o, false);
    float r;
    memcpy(&r, &b, 4);
    return r;
}
inline unsigned __reduce_add_sync(unsigned, unsigned v) { return (unsigned)emu::exchange(v, 0, true); }
inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) {
    unsigned long long o = *p;
    if (v < o) *p = v;
    return o;
}
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
    unsigned long long o = *p;
    *p = o + v;
    return o;
}
