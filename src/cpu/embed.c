/* embed.c — CPU ops (stub: to be implemented). */
#include "cpu_ops.h"

sdc_status sdc_cpu_timestep_embedding(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "timestep_embedding: not implemented yet");
}

sdc_status sdc_cpu_embedding(sdc_backend *be, const sdc_op *op, sdc_err *err) {
    (void)be; (void)op;
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "embedding: not implemented yet");
}

