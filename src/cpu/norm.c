/* norm.c — CPU ops (stub: to be implemented). */
#include "cpu_ops.h"

sdc_status sdc_cpu_group_norm(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "group_norm: not implemented yet");
}

sdc_status sdc_cpu_layer_norm(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "layer_norm: not implemented yet");
}

