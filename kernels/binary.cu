/* binary.cu — add and mul with b broadcast onto a (dst may alias a: each
 * element is read before it is written, by the same thread). Same-shape and
 * scalar b take direct loops; other broadcasts index b through per-dim
 * strides (0 where b's dim is 1) of a's shape padded to 4 dims. */
#include "cuda_common.cuh"

typedef struct bin_geom {
    int shape[4];   /* a's dims, right-aligned in 4 (leading 1s) */
    int bstride[4]; /* b's element stride per dim of a; 0 = broadcast */
} bin_geom;

/* mode 0: b like a; 1: b scalar; 2: general broadcast through g. */
template <typename T, bool MUL>
__global__ void binary_kernel(const T *a, const T *b, T *y, int64_t n, int mode, bin_geom g) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t bi = 0;
        if (mode == 0) {
            bi = i;
        } else if (mode == 2) {
            int rem = (int)i; /* n <= 2^31: checked by the caller */
            for (int d = 3; d >= 0; d--) {
                int q = rem / g.shape[d];
                bi += (rem - q * g.shape[d]) * g.bstride[d];
                rem = q;
            }
        }
        float va = cu_ld(a, i), vb = cu_ld(b, bi);
        cu_st(y, i, MUL ? va * vb : va + vb);
    }
}

/* a [...], b broadcastable to a -> y like a */
template <bool MUL> static sdc_status binary(const sdc_op *op, const char *name, sdc_err *err) {
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    int64_t n = sdc_tensor_numel(a), nb = sdc_tensor_numel(b);
    if (n == 0) return SDC_OK;
    if (cu_check_elems(n, name, err)) return err->code;
    bin_geom g;
    int mode = nb == n ? 0 : nb == 1 ? 1 : 2;
    int64_t stride = 1;
    for (int i = 0; i < 4; i++) { /* i counts dims from the innermost */
        int64_t da = i < a->ndim ? a->shape[a->ndim - 1 - i] : 1;
        int64_t db = i < b->ndim ? b->shape[b->ndim - 1 - i] : 1;
        g.shape[3 - i] = (int)da;
        g.bstride[3 - i] = db == 1 ? 0 : (int)stride;
        stride *= db;
    }
    CU_DISPATCH(a->dtype, T, name, err,
                binary_kernel<T, MUL><<<cu_blocks(n, 256), 256, 0, cu_stream>>>(
                    (const T *)a->data, (const T *)b->data, (T *)op->dst->data, n, mode, g));
    return cu_check_launch(err, name);
}

sdc_status sdc_cuda_add(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    return binary<false>(op, "add", err);
}

sdc_status sdc_cuda_mul(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be;
    return binary<true>(op, "mul", err);
}
