/* compare.c — error metrics between two float tensors: max-abs and relative
 * L2, accumulated in double (used by tests, `sdc compare` and the benches). */
#include "sdc.h"

#include <math.h>
#include <stdlib.h>

sdc_status sdc_compare(const sdc_tensor *got, const sdc_tensor *want, sdc_compare_result *r,
                       sdc_err *err) {
    if (!sdc_tensor_same_shape(got, want)) {
        char a[96], b[96];
        return sdc_err_set(err, SDC_ERR_SHAPE, "compare: shapes differ: %s vs %s",
                           sdc_shape_str(got, a, sizeof a), sdc_shape_str(want, b, sizeof b));
    }
    size_t n = (size_t)sdc_tensor_numel(got);
    float *x = malloc((n ? n : 1) * sizeof *x), *y = malloc((n ? n : 1) * sizeof *y);
    sdc_status s = !x || !y ? sdc_err_set(err, SDC_ERR_OOM, "compare: out of memory") : SDC_OK;
    if (!s) s = sdc_convert(x, SDC_F32, got->data, got->dtype, n, err);
    if (!s) s = sdc_convert(y, SDC_F32, want->data, want->dtype, n, err);
    if (!s) {
        double max_abs = 0, num = 0, den = 0;
        size_t nonfinite = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(x[i]) || !isfinite(y[i])) {
                nonfinite++;
                continue;
            }
            double d = fabs((double)x[i] - (double)y[i]);
            if (d > max_abs) max_abs = d;
            num += d * d;
            den += (double)y[i] * y[i];
        }
        r->max_abs = max_abs;
        r->rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
        r->nonfinite = nonfinite;
        if (nonfinite) r->max_abs = r->rel_l2 = INFINITY;
    }
    free(x);
    free(y);
    return s;
}
