/* convert.c — CPU dtype conversion between F32, F16 and BF16 (round to
 * nearest even, NaN/Inf kept): sdc_convert from core/dtype.c, run in
 * parallel chunks; widening F16 takes the chosen CPU path (sdc_cpu_widen). */
#include "cpu_ops.h"

typedef struct cvt_ctx {
    const unsigned char *x; /* [n] of dtype xt */
    unsigned char *y;       /* [n] of dtype yt */
    sdc_dtype xt, yt;
} cvt_ctx;

static void convert_range(void *arg, int64_t begin, int64_t end) {
    const cvt_ctx *k = arg;
    /* Cannot fail: the dtype pair was checked before the split. */
    if (k->yt == SDC_F32) {
        (void)sdc_cpu_widen((float *)k->y + begin, k->x + (size_t)begin * sdc_dtype_size(k->xt),
                            k->xt, (size_t)(end - begin), NULL);
        return;
    }
    (void)sdc_convert(k->y + (size_t)begin * sdc_dtype_size(k->yt), k->yt,
                      k->x + (size_t)begin * sdc_dtype_size(k->xt), k->xt, (size_t)(end - begin),
                      NULL);
}

/* x [...] -> y [...] of dst's dtype */
sdc_status sdc_cpu_convert(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    const sdc_tensor *x = op->src[0];
    cvt_ctx k = {.x = x->data, .y = op->dst->data, .xt = x->dtype, .yt = op->dst->dtype};
    if (sdc_convert(k.y, k.yt, k.x, k.xt, 0, err)) return sdc_err_wrap(err, "convert");
    /* 64K elements per chunk: the scalar BF16 path runs ~1 ns per element. */
    sdc_parallel_for(sdc_tensor_numel(x), 65536, convert_range, &k);
    return SDC_OK;
}
