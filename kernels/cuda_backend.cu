/* cuda_backend.cu — the CUDA backend: device selection ("no CUDA device" is
 * SDC_ERR_UNSUPPORTED), the stream, tracked device memory (in use and peak),
 * upload and download, synchronize reporting asynchronous failures, the op
 * table, and the helpers the kernels share (errors, scratch, weight
 * conversion), plus the extras of sdc_cuda.h (CUDA graphs among them). */
#include "cuda_common.cuh"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cudaStream_t cu_stream = NULL;
static int stream_users = 0, stream_device = -1;

/* cuBLAS's workspace, owned by the backend so that a recorded GEMM's
 * workspace stays where it was: 32 MiB, NVIDIA's advice for Hopper (4 MiB
 * suffices before it). */
#define BLAS_WORKSPACE_BYTES ((size_t)32 << 20)

/* ---------------------------------------------------------------- errors */

sdc_status cu_check(cudaError_t e, sdc_err *err, const char *fmt, ...) {
    if (e == cudaSuccess) return SDC_OK;
    (void)cudaGetLastError(); /* clears a non-sticky error so later calls can run */
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sdc_err_set(err, SDC_ERR_DEVICE, "cuda: %s: %s (%s)", what, cudaGetErrorString(e),
                       cudaGetErrorName(e));
}

sdc_status cu_check_launch(sdc_err *err, const char *what) {
    return cu_check(cudaGetLastError(), err, "%s (kernel launch)", what);
}

static const char *blas_status_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
    }
}

sdc_status cu_check_blas(cublasStatus_t s, sdc_err *err, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return SDC_OK;
    return sdc_err_set(err, SDC_ERR_DEVICE, "cuda: %s: %s (%d)", what, blas_status_name(s), (int)s);
}

cudaDataType_t cu_blas_type(sdc_dtype t) {
    return t == SDC_F16 ? CUDA_R_16F : t == SDC_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

/* ---------------------------------------------------------------- memory */

static bool track_add(cuda_impl *c, void *p, size_t bytes) {
    if (c->n_allocs == c->cap_allocs) {
        size_t cap = c->cap_allocs ? 2 * c->cap_allocs : 1024;
        cu_alloc *n = (cu_alloc *)realloc(c->allocs, cap * sizeof *n);
        if (!n) return false;
        c->allocs = n;
        c->cap_allocs = cap;
    }
    cu_alloc a = {p, bytes};
    c->allocs[c->n_allocs++] = a;
    c->in_use += bytes;
    if (c->in_use > c->peak) c->peak = c->in_use;
    return true;
}

/* Forgets p; false when p was not allocated here. Searches from the end:
 * arenas and scratch free what they allocated last. */
static bool track_remove(cuda_impl *c, void *p) {
    for (size_t i = c->n_allocs; i-- > 0;) {
        if (c->allocs[i].ptr != p) continue;
        c->in_use -= c->allocs[i].bytes;
        c->allocs[i] = c->allocs[--c->n_allocs];
        return true;
    }
    return false;
}

/* 256-byte aligned (cudaMalloc), so 64-byte alignment holds. */
static void *cu_alloc_fn(sdc_backend *be, size_t bytes) {
    cuda_impl *c = cu_impl(be);
    size_t size = bytes ? bytes : 64;
    void *p = NULL;
    if (cudaMalloc(&p, size) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    if (!track_add(c, p, size)) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cu_free_fn(sdc_backend *be, void *p) {
    if (!p) return;
    if (track_remove(cu_impl(be), p)) cudaFree(p);
}

static void release_slot(sdc_backend *be, int slot) {
    cuda_impl *c = cu_impl(be);
    cu_free_fn(be, c->slot[slot]);
    c->slot[slot] = NULL;
    c->slot_bytes[slot] = 0;
}

void *cu_scratch(sdc_backend *be, int slot, size_t bytes, sdc_err *err) {
    cuda_impl *c = cu_impl(be);
    if (c->slot_bytes[slot] >= bytes && c->slot[slot]) return c->slot[slot];
    /* Freeing the old buffer would wait for the device, which a recording
     * stream cannot; and a graph must not lose an address it recorded. */
    if (c->capturing) {
        sdc_err_set(err, SDC_ERR_DEVICE, "cuda: scratch slot %d must grow to %zu bytes while a "
                    "graph is recorded (run the work once before recording it)", slot, bytes);
        return NULL;
    }
    /* cudaFree waits for queued work, so the old buffer is no longer in use. */
    release_slot(be, slot);
    size_t size = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1); /* whole MiB */
    void *p = cu_alloc_fn(be, size);
    if (!p) {
        sdc_err_set(err, SDC_ERR_OOM, "cuda: cannot allocate %zu bytes of scratch (%zu in use)",
                    size, c->in_use);
        return NULL;
    }
    c->slot[slot] = p;
    c->slot_bytes[slot] = size;
    return p;
}

const void *cu_as_dtype(sdc_backend *be, const sdc_tensor *t, sdc_dtype dt, int slot,
                        sdc_err *err) {
    if (t->dtype == dt) return t->data;
    int64_t n = sdc_tensor_numel(t);
    void *dst = cu_scratch(be, slot, (size_t)n * sdc_dtype_size(dt), err);
    if (!dst) return NULL;
    if (cu_convert_raw(t->data, t->dtype, dst, dt, n, err)) return NULL;
    return dst;
}

/* Host data is read (staged) before cudaMemcpyAsync returns from pageable
 * memory, so src may change afterwards; the copy is ordered with the kernels
 * on the stream, and the host does not wait for them. */
static sdc_status cu_upload_fn(sdc_backend *be, void *dst, const void *src, size_t bytes,
                               sdc_err *err) {
    if (!bytes) return SDC_OK;
    if (cu_impl(be)->capturing)
        return sdc_err_set(err, SDC_ERR_DEVICE, "cuda: upload while a graph is recorded "
                           "(a graph cannot hold host data)");
    return cu_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu_stream), err,
                    "upload (cudaMemcpyAsync, %zu bytes)", bytes);
}

/* Waits for the kernels queued before it, then copies. */
static sdc_status cu_download_fn(sdc_backend *be, void *dst, const void *src, size_t bytes,
                                 sdc_err *err) {
    if (!bytes) return SDC_OK;
    if (cu_impl(be)->capturing)
        return sdc_err_set(err, SDC_ERR_DEVICE, "cuda: download while a graph is recorded");
    sdc_status s = cu_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu_stream),
                            err, "download (cudaMemcpyAsync, %zu bytes)", bytes);
    return s ? s : cu_check(cudaStreamSynchronize(cu_stream), err, "download (%zu bytes): a "
                            "queued kernel or copy failed", bytes);
}

static sdc_status cu_sync_fn(sdc_backend *be, sdc_err *err) {
    if (cu_impl(be)->capturing)
        return sdc_err_set(err, SDC_ERR_DEVICE, "cuda: synchronize while a graph is recorded");
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) e = cudaGetLastError();
    return cu_check(e, err, "synchronize (a queued kernel or copy failed)");
}

static bool cu_supports_fn(const sdc_backend *be, sdc_op_kind kind, sdc_dtype t) {
    (void)be;
    (void)kind;
    /* Every op computes in F32 and loads/stores any of the three. */
    return t == SDC_F32 || t == SDC_F16 || t == SDC_BF16;
}

/* cudaFree waits for queued work, so no kernel still reads the scratch. A
 * recording keeps it: the graph holds its addresses. */
static void cu_trim_fn(sdc_backend *be) {
    if (cu_impl(be)->capturing) return;
    for (int i = 0; i < CU_NSLOTS; i++) release_slot(be, i);
}

static void cu_destroy_fn(sdc_backend *be) {
    if (!be) return;
    cuda_impl *c = cu_impl(be);
    if (c) {
        for (int i = 0; i < CU_NSLOTS; i++) release_slot(be, i);
        if (c->capturing) { /* a recording left open: end it, drop the graph */
            cudaGraph_t g = NULL;
            if (cudaStreamEndCapture(cu_stream, &g) == cudaSuccess && g) cudaGraphDestroy(g);
            (void)cudaGetLastError();
        }
        if (c->flag) cudaFree(c->flag);
        if (c->ev_start) cudaEventDestroy(c->ev_start);
        if (c->ev_stop) cudaEventDestroy(c->ev_stop);
        if (c->blas) cublasDestroy(c->blas);
        cu_free_fn(be, c->blas_workspace);
        if (c->stream_ref && --stream_users == 0) {
            cudaStreamDestroy(cu_stream);
            cu_stream = NULL;
            stream_device = -1;
        }
        /* Allocations still live belong to their owners (weights, arenas),
         * which must be freed before the backend. */
        free(c->allocs);
        free(c);
    }
    free(be);
}

/* A reference to the shared stream, created on first use; one device per
 * process while backends are alive. */
static sdc_status stream_acquire(cuda_impl *c, sdc_err *err) {
    if (stream_users > 0 && stream_device != c->device)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "cuda: device %d while a backend on device "
                           "%d is alive (sdc uses one GPU per process)", c->device, stream_device);
    if (stream_users == 0) {
        sdc_status s = cu_check(cudaStreamCreate(&cu_stream), err, "cudaStreamCreate");
        if (s) return s;
        stream_device = c->device;
    }
    stream_users++;
    c->stream_ref = true;
    return SDC_OK;
}

/* ---------------------------------------------------------------- create */

static sdc_cuda_conv_algo conv_from_env(void) {
    const char *s = getenv("SDC_CUDA_CONV");
    return s && !strcmp(s, "implicit") ? SDC_CUDA_CONV_IMPLICIT : SDC_CUDA_CONV_IM2COL;
}

static sdc_cuda_attn_algo attn_from_env(void) {
    const char *s = getenv("SDC_CUDA_ATTN");
    return s && !strcmp(s, "simple") ? SDC_CUDA_ATTN_SIMPLE : SDC_CUDA_ATTN_AUTO;
}

extern "C" sdc_backend *sdc_cuda_backend_create(int device_index, sdc_err *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        sdc_err_set(err, SDC_ERR_UNSUPPORTED, "no CUDA device: cudaGetDeviceCount: %s (%s)",
                    cudaGetErrorString(e), cudaGetErrorName(e));
        return NULL;
    }
    if (n == 0) {
        sdc_err_set(err, SDC_ERR_UNSUPPORTED, "no CUDA device: cudaGetDeviceCount found none");
        return NULL;
    }
    if (device_index < 0 || device_index >= n) {
        sdc_err_set(err, SDC_ERR_ARG, "cuda: device %d does not exist (%d found)", device_index, n);
        return NULL;
    }
    sdc_backend *be = (sdc_backend *)calloc(1, sizeof *be);
    cuda_impl *c = (cuda_impl *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        sdc_err_set(err, SDC_ERR_OOM, "cuda backend: out of host memory");
        return NULL;
    }
    be->impl = c;
    c->device = device_index;
    c->conv = conv_from_env();
    c->attn = attn_from_env();
    sdc_status s = cu_check(cudaSetDevice(device_index), err, "cudaSetDevice(%d)", device_index);
    if (!s) s = cu_check(cudaGetDeviceProperties(&c->prop, device_index), err,
                         "cudaGetDeviceProperties(%d)", device_index);
    /* The kernels are built for sm_80 and up (WMMA BF16, 163 KB shared memory
     * on sm_80); PTX covers newer GPUs. */
    if (!s && c->prop.major < 8)
        s = sdc_err_set(err, SDC_ERR_UNSUPPORTED,
                        "cuda: %s has compute capability %d.%d; sdc needs 8.0 or newer",
                        c->prop.name, c->prop.major, c->prop.minor);
    if (!s) s = stream_acquire(c, err);
    if (!s) s = cu_check_blas(cublasCreate(&c->blas), err, "cublasCreate");
    if (!s) s = cu_check_blas(cublasSetStream(c->blas, cu_stream), err, "cublasSetStream");
    /* After cublasSetStream, which resets the workspace to cuBLAS's own pool. */
    if (!s && !(c->blas_workspace = cu_alloc_fn(be, BLAS_WORKSPACE_BYTES)))
        s = sdc_err_set(err, SDC_ERR_OOM, "cuda: cannot allocate cuBLAS's %zu-byte workspace",
                        BLAS_WORKSPACE_BYTES);
    if (!s) s = cu_check_blas(cublasSetWorkspace(c->blas, c->blas_workspace, BLAS_WORKSPACE_BYTES),
                              err, "cublasSetWorkspace");
    if (!s) s = cu_check(cudaMalloc((void **)&c->flag, 2 * sizeof *c->flag), err,
                         "cudaMalloc (check flags)");
    if (!s) s = cu_check(cudaEventCreate(&c->ev_start), err, "cudaEventCreate");
    if (!s) s = cu_check(cudaEventCreate(&c->ev_stop), err, "cudaEventCreate");
    if (s) {
        cu_destroy_fn(be);
        return NULL;
    }
    be->name = "cuda";
    be->device = SDC_DEVICE_CUDA;
#define CUDA_OP_SLOT(kind, name, outs, act) be->op[SDC_OP_##kind] = sdc_cuda_##name;
    SDC_OPS(CUDA_OP_SLOT)
#undef CUDA_OP_SLOT
    be->alloc = cu_alloc_fn;
    be->free = cu_free_fn;
    be->upload = cu_upload_fn;
    be->download = cu_download_fn;
    be->synchronize = cu_sync_fn;
    be->trim = cu_trim_fn;
    be->supports = cu_supports_fn;
    be->destroy = cu_destroy_fn;
    return be;
}

/* ---------------------------------------------------------------- extras */

static sdc_status need_cuda(sdc_backend *be, sdc_err *err) {
    if (!be || be->device != SDC_DEVICE_CUDA || !be->impl)
        return sdc_err_set(err, SDC_ERR_ARG, "cuda: not a CUDA backend");
    return SDC_OK;
}

extern "C" sdc_status sdc_cuda_info_get(sdc_backend *be, sdc_cuda_info *info, sdc_err *err) {
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    cuda_impl *c = cu_impl(be);
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", c->prop.name);
    info->device = c->device;
    info->cc_major = c->prop.major;
    info->cc_minor = c->prop.minor;
    info->sm_count = c->prop.multiProcessorCount;
    info->total_bytes = c->prop.totalGlobalMem;
    info->in_use_bytes = c->in_use;
    info->peak_bytes = c->peak;
    info->conv = c->conv;
    info->attn = c->attn;
    return SDC_OK;
}

extern "C" sdc_status sdc_cuda_reset_peak(sdc_backend *be, sdc_err *err) {
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    cu_impl(be)->peak = cu_impl(be)->in_use;
    return SDC_OK;
}

extern "C" sdc_status sdc_cuda_set_algos(sdc_backend *be, sdc_cuda_conv_algo conv,
                                         sdc_cuda_attn_algo attn, sdc_err *err) {
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    if ((unsigned)conv > SDC_CUDA_CONV_IMPLICIT || (unsigned)attn > SDC_CUDA_ATTN_SIMPLE)
        return sdc_err_set(err, SDC_ERR_ARG, "cuda: unknown conv or attention algorithm");
    cu_impl(be)->conv = conv;
    cu_impl(be)->attn = attn;
    return SDC_OK;
}

/* Counts elements that are NaN or ±Inf into *count. */
template <typename T>
__global__ void count_nonfinite_kernel(const T *x, int64_t n, unsigned long long *count) {
    unsigned long long local = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        local += !isfinite(cu_ld(x, i));
    local = __reduce_add_sync(0xffffffffu, (unsigned)local);
    if ((threadIdx.x & 31) == 0 && local) atomicAdd(count, local);
}

extern "C" sdc_status sdc_cuda_count_nonfinite(sdc_backend *be, const sdc_tensor *t,
                                               int64_t *count, sdc_err *err) {
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    if (t->device != SDC_DEVICE_CUDA)
        return sdc_err_set(err, SDC_ERR_ARG, "cuda: count_nonfinite: the tensor is not on the device");
    cuda_impl *c = cu_impl(be);
    int64_t n = sdc_tensor_numel(t);
    *count = 0;
    if (c->capturing)
        return sdc_err_set(err, SDC_ERR_DEVICE, "cuda: count_nonfinite waits for the device, "
                           "which a graph being recorded cannot");
    if (n == 0) return SDC_OK;
    if ((s = cu_check(cudaMemsetAsync(c->flag, 0, sizeof *c->flag, cu_stream), err,
                      "cudaMemsetAsync (count)")))
        return s;
    CU_DISPATCH(t->dtype, T, "count_nonfinite", err,
                count_nonfinite_kernel<T><<<cu_blocks(n, 256), 256, 0, cu_stream>>>((const T *)t->data, n,
                                                                      c->flag));
    if ((s = cu_check_launch(err, "count_nonfinite"))) return s;
    unsigned long long got = 0;
    s = cu_download_fn(be, &got, c->flag, sizeof got, err);
    *count = (int64_t)got;
    return s;
}

extern "C" sdc_status sdc_cuda_timer_start(sdc_backend *be, sdc_err *err) {
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    cu_impl(be)->timing = true;
    return cu_check(cudaEventRecord(cu_impl(be)->ev_start, cu_stream), err, "cudaEventRecord");
}

extern "C" sdc_status sdc_cuda_timer_stop(sdc_backend *be, double *ms, sdc_err *err) {
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    cuda_impl *c = cu_impl(be);
    if (!c->timing) return sdc_err_set(err, SDC_ERR_ARG, "cuda: timer stopped before it started");
    c->timing = false;
    float t = 0;
    if ((s = cu_check(cudaEventRecord(c->ev_stop, cu_stream), err, "cudaEventRecord")) ||
        (s = cu_check(cudaEventSynchronize(c->ev_stop), err, "cudaEventSynchronize")) ||
        (s = cu_check(cudaEventElapsedTime(&t, c->ev_start, c->ev_stop), err,
                      "cudaEventElapsedTime")))
        return s;
    *ms = t;
    return SDC_OK;
}

/* ---------------------------------------------------------------- graphs */

struct sdc_cuda_graph {
    cudaGraphExec_t exec;
};

extern "C" sdc_status sdc_cuda_graph_begin(sdc_backend *be, sdc_err *err) {
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    cuda_impl *c = cu_impl(be);
    if (c->capturing) return sdc_err_set(err, SDC_ERR_ARG, "cuda: a graph is already being recorded");
    /* Relaxed: an arena that grows may still cudaMalloc while recording. */
    s = cu_check(cudaStreamBeginCapture(cu_stream, cudaStreamCaptureModeRelaxed), err,
                 "cudaStreamBeginCapture");
    if (!s) c->capturing = true;
    return s;
}

extern "C" sdc_status sdc_cuda_graph_end(sdc_backend *be, sdc_cuda_graph **graph, sdc_err *err) {
    *graph = NULL;
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    cuda_impl *c = cu_impl(be);
    if (!c->capturing) return sdc_err_set(err, SDC_ERR_ARG, "cuda: no graph is being recorded");
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(cu_stream, &g);
    c->capturing = false;
    if (e != cudaSuccess) {
        if (g) cudaGraphDestroy(g);
        return cu_check(e, err, "cudaStreamEndCapture (the recording was invalidated)");
    }
    cudaGraphExec_t exec = NULL;
    s = cu_check(cudaGraphInstantiate(&exec, g, 0), err, "cudaGraphInstantiate");
    cudaGraphDestroy(g);
    if (s) return s;
    sdc_cuda_graph *r = (sdc_cuda_graph *)calloc(1, sizeof *r);
    if (!r) {
        cudaGraphExecDestroy(exec);
        return sdc_err_set(err, SDC_ERR_OOM, "cuda graph: out of host memory");
    }
    r->exec = exec;
    *graph = r;
    return SDC_OK;
}

extern "C" sdc_status sdc_cuda_graph_launch(sdc_backend *be, sdc_cuda_graph *graph, sdc_err *err) {
    sdc_status s = need_cuda(be, err);
    if (s) return s;
    if (!graph) return sdc_err_set(err, SDC_ERR_ARG, "cuda: launch of a NULL graph");
    if (cu_impl(be)->capturing)
        return sdc_err_set(err, SDC_ERR_ARG, "cuda: graph launch while a graph is recorded");
    return cu_check(cudaGraphLaunch(graph->exec, cu_stream), err, "cudaGraphLaunch");
}

extern "C" void sdc_cuda_graph_free(sdc_backend *be, sdc_cuda_graph *graph) {
    (void)be;
    if (!graph) return;
    cudaGraphExecDestroy(graph->exec);
    free(graph);
}
