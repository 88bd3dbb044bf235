/* layout.c — CPU ops (stub: to be implemented). */
#include "cpu_ops.h"

sdc_status sdc_cpu_upsample2x(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "upsample2x: not implemented yet");
}

sdc_status sdc_cpu_concat(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "concat: not implemented yet");
}

sdc_status sdc_cpu_transpose(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "transpose: not implemented yet");
}

