/* op_ref.h — naive double-precision references for every op in sdc_ops.h,
 * and the error metric (max-abs, rel-L2) the op test and bench report.
 * Written independently of src/: own F16/BF16 decoding and rounding. */
#ifndef SDC_TEST_OP_REF_H
#define SDC_TEST_OP_REF_H

#include "sdc_ops.h"

/* Computes op's result in double into y, which holds numel of the dst shape
 * sdc_op_infer() gives (dst_shape; for several outputs, every output's
 * numel, concatenated in order). op's sources are host tensors (F32, F16,
 * BF16, I32, or F64 for exact perturbations); op->dst may be NULL.
 * Returns false when the kind has no reference or memory runs out. */
bool op_ref(const sdc_op *op, const sdc_tensor *dst_shape, double *y);

/* Element i of a host tensor (F32, F16, BF16, I32 or F64) as a double. */
double op_ref_load(const sdc_tensor *t, size_t i);
/* x rounded to dtype t (F32, F16, BF16), nearest-even, overflow to Inf. */
double op_ref_round(double x, sdc_dtype t);

/* got (a host tensor) against ref: max |got-ref| and ||got-ref||₂/||ref||₂.
 * A non-finite value counts as equal only to the same non-finite value;
 * any other makes both metrics Inf. worst is the index of the max-abs error. */
typedef struct op_error {
    double max_abs, rel_l2;
    size_t nonfinite; /* mismatching non-finite elements */
    size_t worst;
    double worst_got, worst_ref;
    int worst_out;    /* of several outputs, the one with the worst max-abs */
} op_error;
void op_ref_compare(const sdc_tensor *got, const double *ref, op_error *e);

#endif
