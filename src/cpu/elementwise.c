/* elementwise.c — CPU add and mul with broadcasting of b onto a (dst may
 * alias a). Dims are collapsed so that every case becomes rows of a with
 * either a matching row of b or one scalar of b: same shape, [C] bias,
 * per-channel [N, C, 1, 1] and scalars all take the AVX2 inner loops. */
#include "cpu_ops.h"
#include "vmath.h"

typedef struct bin_ctx {
    const float *a; /* a [...], contiguous */
    const float *b; /* b broadcast: offset of row r from bstride/shape below */
    float *y;       /* like a; may be a */
    int nd;         /* collapsed outer dims (0..3) */
    int64_t shape[4], bstride[4]; /* outer dims, outermost first; b's strides (0 = broadcast) */
    int64_t inner;  /* row length */
    bool b_row;     /* b has a full row (stride 1) or one scalar (stride 0) per row */
    bool mul;
} bin_ctx;

/* y[i] = a[i] op (b_row ? b[i] : b[0]) for i in [0, n); y may be a. */
static inline void row_op(bool mul, bool b_row, const float *a, const float *b, float *y,
                          int64_t n) {
    int64_t i = 0;
#ifdef __AVX2__
    __m256 bs = _mm256_set1_ps(*b);
    for (; i + 8 <= n; i += 8) {
        __m256 va = _mm256_loadu_ps(a + i), vb = b_row ? _mm256_loadu_ps(b + i) : bs;
        _mm256_storeu_ps(y + i, mul ? _mm256_mul_ps(va, vb) : _mm256_add_ps(va, vb));
    }
#endif
    for (; i < n; i++) {
        float vb = b_row ? b[i] : *b;
        y[i] = mul ? a[i] * vb : a[i] + vb;
    }
}

/* The four specializations, so the flags are constants in each loop. */
typedef void (*row_fn)(const float *a, const float *b, float *y, int64_t n);
static void add_row(const float *a, const float *b, float *y, int64_t n) {
    row_op(false, true, a, b, y, n);
}
static void add_one(const float *a, const float *b, float *y, int64_t n) {
    row_op(false, false, a, b, y, n);
}
static void mul_row(const float *a, const float *b, float *y, int64_t n) {
    row_op(true, true, a, b, y, n);
}
static void mul_one(const float *a, const float *b, float *y, int64_t n) {
    row_op(true, false, a, b, y, n);
}

/* Items are flat element indices [b, e) of a; rows are split where needed. */
static void bin_range(void *arg, int64_t begin, int64_t end) {
    const bin_ctx *k = arg;
    row_fn fn = k->mul ? (k->b_row ? mul_row : mul_one) : (k->b_row ? add_row : add_one);
    while (begin < end) {
        int64_t row = begin / k->inner, j = begin % k->inner;
        int64_t len = k->inner - j < end - begin ? k->inner - j : end - begin;
        int64_t boff = 0, rem = row;
        for (int d = k->nd - 1; d >= 0; d--) {
            boff += (rem % k->shape[d]) * k->bstride[d];
            rem /= k->shape[d];
        }
        fn(k->a + begin, k->b + boff + (k->b_row ? j : 0), k->y + begin, len);
        begin += len;
    }
}

/* Right-aligns b to a, gives broadcast dims stride 0, drops size-1 dims and
 * merges neighbours that step through b the same way (both broadcast, or
 * both contiguous). What is left: outer dims and one inner row. */
static void collapse(const sdc_tensor *a, const sdc_tensor *b, bin_ctx *k) {
    int64_t sh[4], bs[4];
    int n = 0;
    int64_t stride = 1;
    int64_t rsh[4], rbs[4]; /* innermost first while building */
    for (int i = 0; i < a->ndim; i++) {
        int64_t da = a->shape[a->ndim - 1 - i];
        int64_t db = i < b->ndim ? b->shape[b->ndim - 1 - i] : 1;
        int64_t s = db == 1 ? 0 : stride;
        stride *= db;
        if (da == 1) continue;
        if (n > 0 && ((s == 0 && rbs[n - 1] == 0) || (s != 0 && rbs[n - 1] != 0 &&
                                                      s == rbs[n - 1] * rsh[n - 1]))) {
            rsh[n - 1] *= da; /* merge into the inner neighbour */
            continue;
        }
        rsh[n] = da;
        rbs[n] = s;
        n++;
    }
    if (n == 0) { /* every dim is 1: one element */
        rsh[0] = 1;
        rbs[0] = 0;
        n = 1;
    }
    for (int i = 0; i < n; i++) {
        sh[i] = rsh[n - 1 - i];
        bs[i] = rbs[n - 1 - i];
    }
    k->inner = sh[n - 1];
    k->b_row = bs[n - 1] != 0; /* then it is 1: b's innermost kept dim is contiguous */
    k->nd = n - 1;
    for (int i = 0; i < n - 1; i++) {
        k->shape[i] = sh[i];
        k->bstride[i] = bs[i];
    }
}

/* Memory-bound: ~32K elements (384 KB touched) per chunk before threading. */
#define BIN_GRAIN 32768

/* a [...], b broadcastable to a -> y like a (y may be a) */
static sdc_status binary(const sdc_op *op, bool mul) {
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    bin_ctx k = {.a = a->data, .b = b->data, .y = op->dst->data, .mul = mul};
    int64_t n = sdc_tensor_numel(a);
    if (n == 0) return SDC_OK;
    collapse(a, b, &k);
    sdc_parallel_for(n, BIN_GRAIN, bin_range, &k);
    return SDC_OK;
}

sdc_status sdc_cpu_add(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return binary(op, false);
}

sdc_status sdc_cpu_mul(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    return binary(op, true);
}
