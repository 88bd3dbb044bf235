/* adamw.h — torch.optim.AdamW's update (torch 2.5.1, the single-tensor path
 * that CPU tensors take: no foreach, no fused, no amsgrad), on plain arrays.
 *
 *     sdc_adamw o = sdc_adamw_defaults(5e-4);   // betas 0.9/0.999, eps 1e-8, wd 1e-2
 *     for (int64_t step = 1; ...; step++)       // 1 on the first update, as torch
 *         sdc_adamw_step(&o, step, param, m, v, grad, n);
 *
 * m and v start at zero; the caller keeps them (and the step count) for
 * checkpoints. Hyperparameters are doubles as in torch (Python floats); the
 * element-wise arithmetic is float32 in torch's order. */
#ifndef SDC_TRAIN_ADAMW_H
#define SDC_TRAIN_ADAMW_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdc_adamw {
    double lr, beta1, beta2, eps, weight_decay;
} sdc_adamw;

/* diffusers' textual_inversion.py defaults with learning rate lr. */
sdc_adamw sdc_adamw_defaults(double lr);

/* One update of param[n] with grad[n]; m[n], v[n] are the first and second
 * moments (exp_avg, exp_avg_sq), updated in place. step >= 1 counts updates
 * including this one. */
void sdc_adamw_step(const sdc_adamw *o, int64_t step, float *param, float *m, float *v,
                    const float *grad, size_t n);

#endif
