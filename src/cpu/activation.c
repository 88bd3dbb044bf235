/* activation.c — CPU ops (stub: to be implemented). */
#include "cpu_ops.h"

sdc_status sdc_cpu_gelu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "gelu: not implemented yet");
}

sdc_status sdc_cpu_quick_gelu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "quick_gelu: not implemented yet");
}

sdc_status sdc_cpu_geglu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "geglu: not implemented yet");
}

sdc_status sdc_cpu_silu(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "silu: not implemented yet");
}

