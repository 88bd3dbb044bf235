// emu.cpp — the emulator's scheduler (one ucontext fiber per CUDA thread,
// blocks one at a time, barriers with deadlock detection), the subset of the
// CUDA runtime sdc's backend calls (device memory is host memory, with copy
// directions checked), and cuBLAS's GEMMs (naive, F32 accumulation, with
// cuBLAS's argument checks).
#include "emu.h"

#include <map>
#include <vector>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

namespace emu {
uint3 g_blockIdx;
dim3 g_blockDim, g_gridDim;

struct Fiber {
    ucontext_t ctx;
    uint3 t;
    int lin;
    bool done;
};
static const size_t STACK = 512 * 1024;
static std::vector<Fiber> F;
static std::vector<char *> stacks;
static int cur = -1, nthreads = 0, ndone = 0;
static ucontext_t sched_ctx;
static const std::function<void()> *body;
static long bgen = 0, barrived = 0, progress = 0;
static std::vector<long> wgen, warrived, wdone, wsize;
static std::vector<uint64_t> wbuf;
static unsigned char *dsmem = nullptr; /* dynamic shared memory, 128-byte aligned */
static size_t dsmem_bytes = 0;
static cudaError_t last_error = cudaSuccess;
static std::map<const void *, int> max_dyn_smem;
#if EMU_ASAN
static void *fake_stack = nullptr;
static const void *main_bottom = nullptr;
static size_t main_size = 0;
#endif

uint3 &tid() { return F[cur].t; }
unsigned char *dyn_smem() { return dsmem; }

static void to_sched_final(bool dying) {
    (void)dying;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(dying ? nullptr : &fake_stack, main_bottom, main_size);
#endif
    swapcontext(&F[cur].ctx, &sched_ctx);
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, &main_bottom, &main_size);
#endif
}
static void to_sched() { to_sched_final(false); }

static void trampoline() {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &main_bottom, &main_size);
#endif
    (*body)();
    F[cur].done = true;
    to_sched_final(true);
}

void syncthreads() {
    long gen = bgen;
    progress++;
    if (++barrived + ndone == nthreads) {
        barrived = 0;
        bgen++;
        return;
    }
    while (bgen == gen) to_sched();
}

void syncwarp() {
    int w = F[cur].lin / 32;
    long gen = wgen[w];
    progress++;
    if (++warrived[w] + wdone[w] == wsize[w]) {
        warrived[w] = 0;
        wgen[w]++;
        return;
    }
    while (wgen[w] == gen) to_sched();
}

uint64_t exchange(uint64_t v, int x, bool sum) {
    int lane = F[cur].lin % 32, w = F[cur].lin / 32;
    if (wdone[w]) { fprintf(stderr, "emu: shuffle in a warp with exited lanes\n"); abort(); }
    wbuf[w * 32 + lane] = v;
    syncwarp();
    uint64_t r = 0;
    if (sum) {
        for (int i = 0; i < wsize[w]; i++) r += wbuf[w * 32 + i];
    } else {
        int src = lane ^ x;
        if (src >= wsize[w]) { fprintf(stderr, "emu: shuffle from a missing lane\n"); abort(); }
        r = wbuf[w * 32 + src];
    }
    syncwarp();
    return r;
}

static void run_block(bool reverse) {
    int n = nthreads;
    ndone = 0;
    barrived = 0;
    int nw = (n + 31) / 32;
    wgen.assign(nw, 0);
    warrived.assign(nw, 0);
    wdone.assign(nw, 0);
    wsize.assign(nw, 0);
    for (int i = 0; i < n; i++) wsize[i / 32]++;
    wbuf.assign((size_t)nw * 32, 0);
    F.assign(n, Fiber());
    while ((int)stacks.size() < n) stacks.push_back((char *)malloc(STACK));
    for (int i = 0; i < n; i++) {
        Fiber &f = F[i];
        f.lin = i;
        f.t.x = i % g_blockDim.x;
        f.t.y = (i / g_blockDim.x) % g_blockDim.y;
        f.t.z = i / (g_blockDim.x * g_blockDim.y);
        f.done = false;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = stacks[i];
        f.ctx.uc_stack.ss_size = STACK;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, trampoline, 0);
    }
    if (dsmem_bytes) memset(dsmem, 0xff, dsmem_bytes); // garbage: NaN in every float type
    int alive = n;
    while (alive) {
        long before = progress;
        for (int k = 0; k < n; k++) {
            int i = reverse ? n - 1 - k : k;
            if (F[i].done) continue;
            cur = i;
#if EMU_ASAN
            void *fs = nullptr;
            __sanitizer_start_switch_fiber(&fs, stacks[i], STACK);
#endif
            swapcontext(&sched_ctx, &F[i].ctx);
#if EMU_ASAN
            __sanitizer_finish_switch_fiber(fs, nullptr, nullptr);
#endif
            if (F[i].done) {
                alive--;
                ndone++;
                progress++;
                int w = i / 32;
                wdone[w]++;
                if (barrived > 0 && barrived + ndone == n) { barrived = 0; bgen++; }
                if (warrived[w] > 0 && warrived[w] + wdone[w] == wsize[w]) { warrived[w] = 0; wgen[w]++; }
            }
        }
        if (alive && progress == before) {
            fprintf(stderr, "emu: deadlock in block (%u,%u,%u): %ld at the block barrier, %d done of %d\n",
                    g_blockIdx.x, g_blockIdx.y, g_blockIdx.z, barrived, ndone, n);
            abort();
        }
    }
    cur = -1;
}

static int smem_optin() {
    const char *s = getenv("EMU_SMEM_OPTIN");
    return s ? atoi(s) : 101376; // sm_86/89: 99 KB
}

bool check_cfg(const Cfg &c, const void *fn) {
    unsigned long long threads = (unsigned long long)c.block.x * c.block.y * c.block.z;
    if (threads == 0 || threads > 1024 || c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 ||
        c.grid.y > 65535 || c.grid.z > 65535 || c.grid.x > 2147483647u) {
        last_error = cudaErrorInvalidConfiguration;
        return false;
    }
    int limit = 48 * 1024;
    auto it = max_dyn_smem.find(fn);
    if (it != max_dyn_smem.end() && it->second > limit) limit = it->second;
    if (c.smem > (size_t)limit) {
        last_error = cudaErrorInvalidValue;
        fprintf(stderr, "emu: %zu bytes of dynamic shared memory over the limit %d\n", c.smem, limit);
        return false;
    }
    return true;
}

static std::vector<std::function<void()>> *capture_list = nullptr;
static bool capture_broken = false;
bool recording() { return capture_list != nullptr; }
void record(std::function<void()> f) { capture_list->push_back(std::move(f)); }
// What a real recording stream refuses (a synchronous copy, a sync, a free):
// the call fails and the recording is invalidated, as CUDA does.
static cudaError_t refuse_while_recording(const char *what) {
    fprintf(stderr, "emu: %s while a graph is recorded\n", what);
    capture_broken = true;
    last_error = cudaErrorStreamCaptureUnsupported;
    return cudaErrorStreamCaptureUnsupported;
}

void run(const Cfg &c, const void *fn, const std::function<void()> &b) {
    if (!check_cfg(c, fn)) return;
    const char *rv = getenv("EMU_REVERSE");
    bool reverse = rv && *rv == '1';
    body = &b;
    g_gridDim = c.grid;
    g_blockDim = c.block;
    nthreads = (int)((unsigned long long)c.block.x * c.block.y * c.block.z);
    free(dsmem);
    dsmem = nullptr;
    dsmem_bytes = c.smem;
    if (c.smem && posix_memalign((void **)&dsmem, 128, c.smem)) abort();
    for (unsigned z = 0; z < c.grid.z; z++)
        for (unsigned y = 0; y < c.grid.y; y++)
            for (unsigned x = 0; x < c.grid.x; x++) {
                g_blockIdx.x = x, g_blockIdx.y = y, g_blockIdx.z = z;
                run_block(reverse);
            }
}

static std::map<uintptr_t, size_t> allocs; // start -> bytes

static bool is_dev(const void *p, size_t n) {
    auto it = allocs.upper_bound((uintptr_t)p);
    if (it == allocs.begin()) return false;
    --it;
    return (uintptr_t)p >= it->first && (uintptr_t)p + n <= it->first + it->second;
}
static cudaError_t fail(cudaError_t e) { last_error = e; return e; }
static int emu_smem_optin() { return smem_optin(); }
} // namespace emu

using namespace emu;

extern "C" {
cudaError_t cudaGetDeviceCount(int *n) {
    const char *s = getenv("EMU_NO_DEVICE");
    if (s && *s == '1') return fail(cudaErrorNoDevice);
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "emulator (host fibers)");
    p->major = 8;
    p->minor = 6;
    p->multiProcessorCount = 4;
    p->totalGlobalMem = (size_t)8 << 30;
    p->sharedMemPerBlockOptin = (size_t)emu_smem_optin();
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t n) {
    if (posix_memalign(p, 256, n ? n : 1)) return fail(cudaErrorMemoryAllocation);
    allocs[(uintptr_t)*p] = n;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    if (recording()) return refuse_while_recording("cudaFree");
    if (!allocs.erase((uintptr_t)p)) { fprintf(stderr, "emu: cudaFree of %p, not allocated\n", p); abort(); }
    free(p);
    return cudaSuccess;
}
static cudaError_t copy(void *d, const void *s, size_t n, cudaMemcpyKind k) {
    bool ok = k == cudaMemcpyHostToDevice ? is_dev(d, n) && !is_dev(s, n)
            : k == cudaMemcpyDeviceToHost ? is_dev(s, n) && !is_dev(d, n)
            : k == cudaMemcpyDeviceToDevice ? is_dev(s, n) && is_dev(d, n) : true;
    if (!ok) { fprintf(stderr, "emu: cudaMemcpy kind %d with wrong pointers (%p <- %p, %zu)\n", (int)k, d, s, n); abort(); }
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k) {
    if (recording()) return refuse_while_recording("cudaMemcpy");
    return copy(d, s, n, k);
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t) {
    if (recording()) {
        // A graph may copy device to device; host memory is not a graph's to hold here.
        if (k != cudaMemcpyDeviceToDevice) return refuse_while_recording("cudaMemcpyAsync to or from the host");
        record([=]() { copy(d, s, n, k); });
        return cudaSuccess;
    }
    return copy(d, s, n, k);
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    if (recording()) return refuse_while_recording("cudaMemset");
    if (!is_dev(p, n)) abort();
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) {
    if (!is_dev(p, n)) abort();
    if (recording()) {
        record([=]() { memset(p, v, n); });
        return cudaSuccess;
    }
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    if (recording()) return refuse_while_recording("cudaDeviceSynchronize");
    return cudaSuccess;
}
struct CUstream_st { int x; };
cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = new CUstream_st{0}; return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    if (recording()) return refuse_while_recording("cudaStreamSynchronize");
    return cudaSuccess;
}
struct CUgraph_st { std::vector<std::function<void()>> work; };
struct CUgraphExec_st { std::vector<std::function<void()>> work; };
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
    if (recording()) return fail(cudaErrorIllegalState);
    capture_list = new std::vector<std::function<void()>>();
    capture_broken = false;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    if (!recording()) return fail(cudaErrorIllegalState);
    std::vector<std::function<void()>> *w = capture_list;
    capture_list = nullptr;
    *g = nullptr;
    if (capture_broken) {
        delete w;
        return cudaErrorStreamCaptureInvalidated;
    }
    *g = new CUgraph_st{std::move(*w)};
    delete w;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long) {
    *x = new CUgraphExec_st{g->work};
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) { delete x; return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t) {
    if (recording()) return refuse_while_recording("cudaGraphLaunch");
    for (auto &f : x->work) f();
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
const char *cudaGetErrorName(cudaError_t e) {
    static char b[32];
    snprintf(b, sizeof b, "cudaError%d", (int)e);
    return b;
}
struct CUevent_st { double t; };
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new CUevent_st{0}; return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 1.0f; return cudaSuccess; }
cudaError_t cudaFuncSetAttribute(const void *fn, cudaFuncAttribute a, int v) {
    if (a == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (v > emu_smem_optin()) return fail(cudaErrorInvalidValue);
        max_dyn_smem[fn] = v;
    }
    return cudaSuccess;
}
} // extern "C"

// ---------------------------------------------------------------- cuBLAS

struct cublasContext { int x; };
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) { *h = new cublasContext{0}; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t) { h->x |= 1; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *p, size_t n) {
    // cuBLAS wants it on the device, 256-byte aligned, and after cublasSetStream (which resets it).
    if (!(h->x & 1) || !is_dev(p, n) || (uintptr_t)p % 256) {
        fprintf(stderr, "emu cublas: bad workspace %p (%zu bytes)\n", p, n);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

static float ld(const void *p, cudaDataType t, size_t i) {
    if (t == CUDA_R_16F) return __half2float(((const __half *)p)[i]);
    if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return ((const float *)p)[i];
}
static void st(void *p, cudaDataType t, size_t i, float v) {
    if (t == CUDA_R_16F) ((__half *)p)[i] = __float2half_rn(v);
    else if (t == CUDA_R_16BF) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((float *)p)[i] = v;
}

static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const void *alpha, const void *A, cudaDataType at, int lda, long long sa,
                           const void *B, cudaDataType bt, int ldb, long long sb, const void *beta,
                           void *C, cudaDataType ct, int ldc, long long sc, int batch,
                           cublasComputeType_t comp) {
    if (m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k) || ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) ||
        ldc < std::max(1, m)) {
        fprintf(stderr, "emu cublas: bad leading dims m=%d n=%d k=%d lda=%d ldb=%d ldc=%d\n", m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    // cuBLAS's CUBLAS_COMPUTE_32F combinations: A and B of one type, C of theirs or F32.
    if (at != bt || (at != ct && ct != CUDA_R_32F) || comp != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    float a = *(const float *)alpha, b = *(const float *)beta;
    std::vector<float> Am((size_t)m * k), Bm((size_t)n * k); // op(A) [m][k], op(B)ᵀ [n][k]
    for (int q = 0; q < batch; q++) {
        const char *Ab = (const char *)A + (size_t)(q * sa) * (at == CUDA_R_32F ? 4 : 2);
        const char *Bb = (const char *)B + (size_t)(q * sb) * (bt == CUDA_R_32F ? 4 : 2);
        char *Cb = (char *)C + (size_t)(q * sc) * (ct == CUDA_R_32F ? 4 : 2);
        if (!is_dev(Ab, 1) || !is_dev(Bb, 1) || !is_dev(Cb, 1)) {
            fprintf(stderr, "emu cublas: an operand of batch %d is not device memory\n", q);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
        for (int i = 0; i < m; i++)
            for (int l = 0; l < k; l++)
                Am[(size_t)i * k + l] = ld(Ab, at, ta == CUBLAS_OP_N ? i + (size_t)l * lda : l + (size_t)i * lda);
        for (int j = 0; j < n; j++)
            for (int l = 0; l < k; l++)
                Bm[(size_t)j * k + l] = ld(Bb, bt, tb == CUBLAS_OP_N ? l + (size_t)j * ldb : j + (size_t)l * ldb);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                const float *x = &Am[(size_t)i * k], *y = &Bm[(size_t)j * k];
                float s = 0;
                for (int l = 0; l < k; l++) s += x[l] * y[l];
                size_t ci = i + (size_t)j * ldc;
                float v = a * s + (b != 0 ? b * ld(Cb, ct, ci) : 0.0f);
                st(Cb, ct, ci, v);
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

// While recording: the scalars (host pointers) are read now, as cuBLAS does
// with CUBLAS_POINTER_MODE_HOST; the GEMM runs at replay.
static cublasStatus_t gemm_or_record(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                     const void *alpha, const void *A, cudaDataType at, int lda, long long sa,
                                     const void *B, cudaDataType bt, int ldb, long long sb, const void *beta,
                                     void *C, cudaDataType ct, int ldc, long long sc, int batch,
                                     cublasComputeType_t comp) {
    if (!recording())
        return gemm(ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc, batch, comp);
    float a = *(const float *)alpha, b = *(const float *)beta;
    record([=]() {
        if (gemm(ta, tb, m, n, k, &a, A, at, lda, sa, B, bt, ldb, sb, &b, C, ct, ldc, sc, batch, comp))
            abort(); // it was valid when recorded below
    });
    // Validate now, as a real call would, on a zero-size copy of the problem.
    float zero = 0;
    return gemm(ta, tb, m, 0 * n, k, &zero, A, at, lda, sa, B, bt, ldb, sb, &zero, C, ct, ldc, sc, 0, comp);
}

cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                            cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t comp, cublasGemmAlgo_t) {
    return gemm_or_record(ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1, comp);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m,
                                          int n, int k, const void *alpha, const void *A, cudaDataType at,
                                          int lda, long long sa, const void *B, cudaDataType bt, int ldb,
                                          long long sb, const void *beta, void *C, cudaDataType ct, int ldc,
                                          long long sc, int batch, cublasComputeType_t comp,
                                          cublasGemmAlgo_t) {
    return gemm_or_record(ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc, batch, comp);
}
