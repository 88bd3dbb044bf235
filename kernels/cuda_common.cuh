/* cuda_common.cuh — what the CUDA backend's files share: the backend's state,
 * error helpers that turn CUDA/cuBLAS failures into sdc_status with a message
 * naming the call, scratch buffers, dtype helpers (every kernel computes in
 * F32 and loads/stores F32, F16 or BF16) and the op functions' declarations.
 * All work goes to one stream (cu_stream), in order, so an op may reuse a
 * scratch buffer as soon as it has queued its kernels. */
#ifndef SDC_CUDA_COMMON_CUH
#define SDC_CUDA_COMMON_CUH

#include "sdc_cuda.h"
#include "sdc_ops.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

/* Scratch slots: converted weights (one per GEMM operand kind), im2col
 * columns, group-norm partial sums (also attention_backward's row
 * statistics), conv2d_backward's flipped kernel, attention scores (the GEMM
 * path). */
enum { CU_SLOT_WEIGHT = 0, CU_SLOT_COL, CU_SLOT_STATS, CU_SLOT_FLIP, CU_SLOT_ATTN, CU_NSLOTS };

typedef struct cu_alloc {
    void *ptr;
    size_t bytes;
} cu_alloc;

typedef struct cuda_impl {
    int device;
    cudaDeviceProp prop;
    cublasHandle_t blas;
    void *slot[CU_NSLOTS];
    size_t slot_bytes[CU_NSLOTS];
    unsigned long long *flag; /* device: 2 counters for checks (embedding ids, NaN count) */
    cu_alloc *allocs;         /* live allocations, for in_use / peak */
    size_t n_allocs, cap_allocs;
    size_t in_use, peak;
    cudaEvent_t ev_start, ev_stop;
    bool timing;
    bool capturing;           /* between sdc_cuda_graph_begin and _end */
    bool stream_ref;          /* holds a reference to cu_stream */
    void *blas_workspace;     /* cuBLAS's, ours: a graph replays its address */
    sdc_cuda_conv_algo conv;
    sdc_cuda_attn_algo attn;
} cuda_impl;

static inline cuda_impl *cu_impl(sdc_backend *be) { return (cuda_impl *)be->impl; }

/* The stream every kernel, copy and cuBLAS call goes to. Not the legacy
 * default stream, which cannot be recorded into a CUDA graph; created with
 * the first backend and shared by the backends alive at once (one device per
 * process). Blocking, so the legacy stream's synchronous copies still wait
 * for it. */
extern cudaStream_t cu_stream;

/* SDC_OK for cudaSuccess; else SDC_ERR_DEVICE with "cuda: <what>: <error>". */
sdc_status cu_check(cudaError_t e, sdc_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The launch error of the last kernel (bad configuration, no image for this GPU). */
sdc_status cu_check_launch(sdc_err *err, const char *what);
sdc_status cu_check_blas(cublasStatus_t s, sdc_err *err, const char *what);
/* A device buffer of at least `bytes` in `slot`, valid until the slot's next use. */
void *cu_scratch(sdc_backend *be, int slot, size_t bytes, sdc_err *err);
/* t's data as dtype dt: t itself when it already is, else converted into `slot`. */
const void *cu_as_dtype(sdc_backend *be, const sdc_tensor *t, sdc_dtype dt, int slot,
                        sdc_err *err);
/* y[i] = x[i] converted between F32/F16/BF16 (round to nearest even), n elements. */
sdc_status cu_convert_raw(const void *x, sdc_dtype xt, void *y, sdc_dtype yt, int64_t n,
                          sdc_err *err);
/* y [outer, nb, inner] (dtype yt) = b[c] broadcast, or zeros when b is NULL:
 * the starting value of a GEMM that adds onto it (beta = 1). */
sdc_status cu_fill_bias(void *y, sdc_dtype yt, const sdc_tensor *b, int64_t outer, int64_t nb,
                        int64_t inner, sdc_err *err);
/* cuBLAS's name for an sdc float dtype. */
cudaDataType_t cu_blas_type(sdc_dtype t);

/* Kernels index within a tensor in 32 bits (64-bit division is slow on a GPU;
 * SD's largest tensor, a 2048² VAE activation, has 2^29 elements): larger
 * tensors are refused. 2^30 leaves room for a grid-stride step (< 2^29). */
#define CU_MAX_ELEMS ((int64_t)1 << 30)
static inline sdc_status cu_check_elems(int64_t n, const char *what, sdc_err *err) {
    if (n <= CU_MAX_ELEMS) return SDC_OK;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                       "%s: %lld elements exceed the 2^30 a cuda kernel indexes", what,
                       (long long)n);
}

/* Grid for a grid-stride loop over n items with `threads` per block (capped:
 * the loops cover the rest). n > 0. */
static inline unsigned cu_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 65535 * 32 ? b : 65535 * 32);
}

/* ---------------------------------------------------------------- dtypes */

template <typename T> struct cu_num;
template <> struct cu_num<float> {
    static __device__ __forceinline__ float load(float v) { return v; }
    static __device__ __forceinline__ float store(float v) { return v; }
};
template <> struct cu_num<__half> {
    static __device__ __forceinline__ float load(__half v) { return __half2float(v); }
    static __device__ __forceinline__ __half store(float v) { return __float2half_rn(v); }
};
template <> struct cu_num<__nv_bfloat16> {
    static __device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
    static __device__ __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

template <typename T> __device__ __forceinline__ float cu_ld(const T *p, int64_t i) {
    return cu_num<T>::load(p[i]);
}
template <typename T> __device__ __forceinline__ void cu_st(T *p, int64_t i, float v) {
    p[i] = cu_num<T>::store(v);
}

/* Weights (gamma, beta, bias, table) keep their stored dtype: loaded by a
 * runtime switch, uniform across a warp. */
__device__ __forceinline__ float cu_ld_any(const void *p, int dt, int64_t i) {
    if (dt == SDC_F16) return __half2float(((const __half *)p)[i]);
    if (dt == SDC_BF16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return ((const float *)p)[i];
}

/* Runs the statements with T bound to the C++ type of dtype dt (F32, F16,
 * BF16); any other dtype returns SDC_ERR_UNSUPPORTED from the caller. */
#define CU_DISPATCH(dt, T, what, err, ...)                                                   \
    switch (dt) {                                                                            \
    case SDC_F32: { typedef float T; __VA_ARGS__; } break;                                   \
    case SDC_F16: { typedef __half T; __VA_ARGS__; } break;                                  \
    case SDC_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break;                          \
    default:                                                                                 \
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: dtype %s is not supported on cuda", \
                           what, sdc_dtype_name(dt));                                        \
    }

/* ---------------------------------------------------------------- reductions */

__device__ __forceinline__ float cu_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float cu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the result. `red` is 32 floats of shared memory; the call
 * begins and ends with a barrier so it may be used repeatedly. */
__device__ __forceinline__ float cu_block_sum(float v, float *red) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cu_warp_sum(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.0f;
    return cu_warp_sum(v);
}

__device__ __forceinline__ float cu_block_max(float v, float *red) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cu_warp_max(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : -INFINITY;
    return cu_warp_max(v);
}

/* ---------------------------------------------------------------- ops */

/* One function per row of SDC_OPS (include/sdc_ops.h): sdc_cuda_<name>. */
#define SDC_DECLARE_CUDA_OP(kind, name, outs, act) \
    sdc_status sdc_cuda_##name(sdc_backend *be, const sdc_op *op, sdc_err *err);
SDC_OPS(SDC_DECLARE_CUDA_OP)
#undef SDC_DECLARE_CUDA_OP

/* The implicit-GEMM conv (conv2d_igemm.cu): F16/BF16 x and dst only. */
sdc_status cu_conv2d_implicit(sdc_backend *be, const sdc_op *op, sdc_err *err);
/* Flash attention on tensor cores (attention_flash.cu): the warps per block
 * (4, 2 or 1, what fits the shared memory; 0 when dtype or head dim d does
 * not fit the kernel) and the launch with them. */
int cu_flash_warps(const cuda_impl *c, sdc_dtype dt, int d, size_t *bytes);
sdc_status cu_attention_flash(const sdc_op *op, int heads, float scale, int nw, size_t bytes,
                              sdc_err *err);
/* Attention through cuBLAS (attention_gemm.cu): any dtype and head dim. */
sdc_status cu_attention_gemm(sdc_backend *be, const sdc_op *op, int heads, float scale,
                             sdc_err *err);

#endif /* SDC_CUDA_COMMON_CUH */
