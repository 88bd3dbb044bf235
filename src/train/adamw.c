/* adamw.c — see adamw.h. torch's _single_tensor_adamw, step by step:
 *   param *= 1 - lr * wd                  (decoupled weight decay first)
 *   m.lerp_(g, 1 - beta1)                 m + (1 - beta1) * (g - m): weight < 0.5
 *   v = v * beta2 + (1 - beta2) * g * g   (mul_, then addcmul_)
 *   denom = sqrt(v) / sqrt(1 - beta2^step) + eps
 *   param += (-(lr / (1 - beta1^step)) * m) / denom   (addcdiv_)
 * Python-float scalars enter the float32 kernels rounded to float. torch's
 * vectorized lerp fuses its multiply-add (fmaf here); its tail elements do
 * not, which can differ in the last bit. */
#include "adamw.h"

#include <math.h>

sdc_adamw sdc_adamw_defaults(double lr) {
    return (sdc_adamw){.lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-2};
}

void sdc_adamw_step(const sdc_adamw *o, int64_t step, float *param, float *m, float *v,
                    const float *grad, size_t n) {
    double bc1 = 1.0 - pow(o->beta1, (double)step), bc2 = 1.0 - pow(o->beta2, (double)step);
    float decay = (float)(1.0 - o->lr * o->weight_decay);
    float w1 = (float)(1.0 - o->beta1), b2 = (float)o->beta2, w2 = (float)(1.0 - o->beta2);
    float bc2_sqrt = (float)sqrt(bc2), eps = (float)o->eps, step_size = (float)-(o->lr / bc1);
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        param[i] *= decay;
        m[i] = fmaf(w1, g - m[i], m[i]);
        float vm = v[i] * b2, gg = w2 * g;
        v[i] = vm + gg * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        param[i] = param[i] + step_size * m[i] / denom; /* (value * m) / denom */
    }
}
