/* elementwise.c — CPU ops (stub: to be implemented). */
#include "cpu_ops.h"

sdc_status sdc_cpu_add(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "add: not implemented yet");
}

sdc_status sdc_cpu_mul(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "mul: not implemented yet");
}

