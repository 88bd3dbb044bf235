/* backend_models.h — what the model-level backend suites (test_cuda.c,
 * test_vulkan_models.c) share: one side of a comparison (a backend, its
 * arena and the tiny checkpoint), device-to-host results, a reported
 * closeness check, and the UNet and VAE run on one side. */
#ifndef SDC_TESTS_BACKEND_MODELS_H
#define SDC_TESTS_BACKEND_MODELS_H

#include "../src/core/exec.h"
#include "../src/models/checkpoint.h"
#include "../src/models/unet.h"
#include "../src/models/vae.h"

typedef struct bm_side {
    sdc_backend *be;
    sdc_arena *arena;
    sdc_checkpoint *ck;
} bm_side;

/* Takes be (non-NULL; destroyed by bm_side_close) and opens model on it. */
bm_side bm_side_open(sdc_backend *be, const char *model);
/* Checks that every activation was released, then closes all three. */
void bm_side_close(bm_side *s);
/* t (any float dtype, on ex's backend) as a new host F32 tensor; frees t. */
sdc_tensor *bm_take_host(sdc_exec *ex, sdc_tensor *t);
/* Prints "<backend>: <what> <act> vs cpu: max-abs, rel-L2 (tol)" and fails
 * the test when rel-L2 is over tol. */
void bm_expect_close(const char *backend, const char *what, sdc_dtype act, const sdc_tensor *got,
                     const sdc_tensor *want, double tol);
/* x [B,4,h,w], t [B] (F32 on the device whatever act), c [B,77,D] -> the
 * UNet's prediction, on the host. */
sdc_tensor *bm_unet_run(bm_side *sd, const sdc_unet *m, sdc_dtype act, const sdc_tensor *x,
                        const sdc_tensor *t, const sdc_tensor *c);
/* img [B,3,H,W] -> out[0] mean, out[1] logvar; z [B,4,h,w] -> out[2] image. */
void bm_vae_run(bm_side *sd, const sdc_vae *m, sdc_dtype act, const sdc_tensor *img,
                const sdc_tensor *z, sdc_tensor *out[3]);

#endif
