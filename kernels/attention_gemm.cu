/* attention_gemm.cu — attention as two cuBLAS GEMMs around a row softmax,
 * for what the tensor-core flash kernel does not take: head dims over 256
 * (the VAE's single 512-wide head) and F32 activations. Per batch item and
 * block of query rows:
 *   S [H, rows, Nk] (F32) = scale · Q_h · K_hᵀ       one strided-batched GEMM over heads
 *   P = softmax(S) per row, in the activation dtype  (F32 statistics; causal mask)
 *   O_h [rows, D] = P_h · V_h                        one strided-batched GEMM over heads
 * The scores exist only for one block of rows at a time, at most
 * ATTN_GEMM_SCORES elements (64 MiB of F32), so memory stays bounded whatever
 * Nq·Nk is. FLOPs as the flash kernel's (4·Nq·Nk·D per head); the bytes add
 * three passes over the scores (write S; read S, write P; read P), small
 * against the GEMMs when D is large: at 4096 tokens and D = 512, 34 GFLOP
 * against 0.2 GB. cuBLAS computes in F32 (not TF32), as the other F32 GEMMs. */
#include "cuda_common.cuh"

#define ATTN_GEMM_SCORES ((int64_t)16 << 20) /* F32 elements of S per block of rows */
#define SM_THREADS 256

/* s [H, rows, nk] (F32) -> p [H, rows, nk] (T): row r of head blockIdx.y is
 * query q0 + r; under causal it sees keys 0..q0 + r. One block per row. */
template <typename T>
__global__ void __launch_bounds__(SM_THREADS)
    attn_rows_softmax_kernel(const float *s, T *p, int64_t rows, int64_t nk, int64_t q0,
                             bool causal) {
    __shared__ float red[32];
    const int64_t r = blockIdx.x, at = ((int64_t)blockIdx.y * rows + r) * nk;
    const float *sr = s + at;
    T *pr = p + at;
    const int64_t qi = q0 + r, end = causal && qi + 1 < nk ? qi + 1 : nk;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < end; j += blockDim.x) m = fmaxf(m, sr[j]);
    m = cu_block_max(m, red);
    float l = 0.0f;
    for (int64_t j = threadIdx.x; j < end; j += blockDim.x) l += expf(sr[j] - m);
    l = cu_block_sum(l, red);
    const float inv = 1.0f / l;
    for (int64_t j = threadIdx.x; j < nk; j += blockDim.x)
        cu_st(pr, j, j < end ? expf(sr[j] - m) * inv : 0.0f);
}

/* q [B, Nq, H·D], k/v [B, Nk, H·D] -> o [B, Nq, H·D]; any float dtype. */
sdc_status cu_attention_gemm(sdc_backend *be, const sdc_op *op, int heads, float scale,
                             sdc_err *err) {
    const sdc_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2];
    const int64_t nb = q->shape[0], nq = q->shape[1], nk = k->shape[1], hd = q->shape[2];
    const int64_t d = hd / heads;
    const bool causal = op->p.attention.causal;
    const sdc_dtype dt = op->dst->dtype;
    const size_t es = sdc_dtype_size(dt);
    if (nk == 0) return SDC_OK;
    if (hd > INT32_MAX || nk > INT32_MAX || heads > 65535)
        return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "attention: %lld keys of width %lld are "
                           "over cuBLAS's 32-bit sizes", (long long)nk, (long long)hd);
    /* Rows per block: the scores of every head within the cap (at least one row). */
    int64_t rows = ATTN_GEMM_SCORES / (nk * heads);
    if (rows < 1) rows = 1;
    if (rows > nq) rows = nq;
    size_t s_bytes = (size_t)(heads * rows * nk) * sizeof(float);
    size_t p_off = (s_bytes + 255) & ~(size_t)255; /* P after S, 256-byte aligned for cuBLAS */
    char *scratch = (char *)cu_scratch(be, CU_SLOT_ATTN, p_off + (size_t)(heads * rows * nk) * es, err);
    if (!scratch) return err->code;
    float *S = (float *)scratch;
    void *P = scratch + p_off;
    cublasHandle_t h = cu_impl(be)->blas;
    const cudaDataType ct = cu_blas_type(dt);
    const float one = 1.0f, zero = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const char *qb = (const char *)q->data + (size_t)(b * nq * hd) * es;
        const char *kb = (const char *)k->data + (size_t)(b * nk * hd) * es;
        const char *vb = (const char *)v->data + (size_t)(b * nk * hd) * es;
        char *ob = (char *)op->dst->data + (size_t)(b * nq * hd) * es;
        for (int64_t q0 = 0; q0 < nq; q0 += rows) {
            int64_t n = nq - q0 < rows ? nq - q0 : rows;
            /* Column-major view: Sᵀ_h [Nk, n] = K_h [Nk, D] · Q_hᵀ [D, n]; K and Q
             * rows are H·D apart, head h starts D elements in. */
            sdc_status s = cu_check_blas(
                cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)nk, (int)n, (int)d,
                                           &scale, kb, ct, (int)hd, d, qb + (size_t)(q0 * hd) * es,
                                           ct, (int)hd, d, &zero, S, CUDA_R_32F, (int)nk, n * nk,
                                           heads, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                err, "attention (cublasGemmStridedBatchedEx, scores)");
            if (s) return s;
            dim3 grid((unsigned)n, (unsigned)heads);
            CU_DISPATCH(dt, T, "attention", err,
                        attn_rows_softmax_kernel<T><<<grid, SM_THREADS, 0, cu_stream>>>(
                            S, (T *)P, n, nk, q0, causal));
            if ((s = cu_check_launch(err, "attention (softmax)"))) return s;
            /* Oᵀ_h [D, n] = V_hᵀ [D, Nk] · Pᵀ_h [Nk, n], written into O's head columns. */
            s = cu_check_blas(
                cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)d, (int)n, (int)nk,
                                           &one, vb, ct, (int)hd, d, P, ct, (int)nk, n * nk, &zero,
                                           ob + (size_t)(q0 * hd) * es, ct, (int)hd, d, heads,
                                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                err, "attention (cublasGemmStridedBatchedEx, P·V)");
            if (s) return s;
        }
    }
    return SDC_OK;
}
