/* cuda_stub.c — sdc_cuda_backend_create when sdc is built without CUDA. */
#include "sdc_ops.h"

#ifndef SDC_WITH_CUDA
sdc_backend *sdc_cuda_backend_create(int device_index, sdc_err *err) {
    (void)device_index;
    sdc_err_set(err, SDC_ERR_UNSUPPORTED, "this sdc was built without CUDA (rebuild with make CUDA=1)");
    return NULL;
}
#endif
