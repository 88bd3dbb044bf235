/* sampler_step.c — one scheduler.step of each diffusers 0.31 method on plain
 * float arrays (epsilon prediction). Scalars are formed in float32 like the 0-d
 * torch tensors diffusers uses, and elementwise formulas keep its operation order. */
#include "sampler_impl.h"

#include <math.h>
#include <string.h>

/* alphas_cumprod at a timestep; before 0 it is final_alpha_cumprod, which
 * is alphas_cumprod[0] with set_alpha_to_one=False. Past 999 (PLMS's warm-up
 * looks one ratio above the first timestep, which at 1000 steps is 1000, where
 * diffusers fails) the last entry. */
static float alpha_at(const sdc_sampler *s, int t) {
    if (t >= SDC_TRAIN_STEPS) return s->ac[SDC_TRAIN_STEPS - 1];
    return t >= 0 ? s->ac[t] : s->ac[0];
}

/* ---------------------------------------------------------------- DDIM */

sdc_status sdc_step_ddim(sdc_sampler *s, int idx, const float *eps, float *x, sdc_rng *rngs,
                         int n_rngs, sdc_err *err) {
    int t = (int)s->ts[idx], prev = t - s->ratio;
    float a_t = alpha_at(s, t), a_prev = alpha_at(s, prev);
    float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
    float std = s->o.eta * sqrtf(variance);
    float sb = sqrtf(b_t), sa = sqrtf(a_t), sa_prev = sqrtf(a_prev);
    float dir_c = sqrtf(1.0f - a_prev - std * std);
    for (size_t k = 0; k < s->n; k++) {
        float x0 = (x[k] - sb * eps[k]) / sa;
        x[k] = sa_prev * x0 + dir_c * eps[k];
    }
    if (s->o.eta > 0.0f) {
        if (!rngs) return sdc_err_set(err, SDC_ERR_ARG, "sampler ddim: eta > 0 needs an rng");
        /* randn_tensor(model_output.shape, generator) */
        sdc_rng_randn_rows(rngs, n_rngs, s->tmp, s->n);
        for (size_t k = 0; k < s->n; k++) x[k] = x[k] + std * s->tmp[k];
    }
    return SDC_OK;
}

/* ---------------------------------------------------------------- PLMS */

/* PNDMScheduler._get_prev_sample: x_{t-delta} from x_t and eps (formula (9) of
 * the PNDM paper). */
static void pndm_prev(const sdc_sampler *s, const float *x, int t, int prev, const float *e,
                      float *out) {
    float a_t = alpha_at(s, t), a_prev = alpha_at(s, prev);
    float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    float sample_c = sqrtf(a_prev / a_t);
    float denom = a_t * sqrtf(b_prev) + sqrtf(a_t * b_t * a_prev);
    float diff = a_prev - a_t;
    for (size_t k = 0; k < s->n; k++) out[k] = sample_c * x[k] - diff * e[k] / denom;
}

sdc_status sdc_step_pndm(sdc_sampler *s, int idx, const float *eps, float *x) {
    int t = (int)s->ts[idx], prev = t - s->ratio;
    int counter = s->taken;
    float *e = s->tmp;
    if (counter != 1) {
        sdc_sampler_push_hist(s, eps, 4);
    } else {
        /* The repeated timestep: redo the first step with the averaged eps. */
        prev = t;
        t = t + s->ratio;
    }
    float **h = s->hist;
    int m = s->n_hist;
    if (m == 1 && counter == 0) {
        memcpy(e, eps, s->n * sizeof(float));
        memcpy(s->keep, x, s->n * sizeof(float)); /* cur_sample */
    } else if (m == 1 && counter == 1) {
        for (size_t k = 0; k < s->n; k++) e[k] = (eps[k] + h[0][k]) / 2.0f;
        memcpy(x, s->keep, s->n * sizeof(float));
    } else if (m == 2) {
        for (size_t k = 0; k < s->n; k++) e[k] = (3.0f * h[1][k] - h[0][k]) / 2.0f;
    } else if (m == 3) {
        for (size_t k = 0; k < s->n; k++)
            e[k] = (23.0f * h[2][k] - 16.0f * h[1][k] + 5.0f * h[0][k]) / 12.0f;
    } else {
        for (size_t k = 0; k < s->n; k++)
            e[k] = (1.0f / 24.0f) *
                   (55.0f * h[3][k] - 59.0f * h[2][k] + 37.0f * h[1][k] - 9.0f * h[0][k]);
    }
    pndm_prev(s, x, t, prev, e, x);
    return SDC_OK;
}

/* ---------------------------------------------------------------- Euler, Euler a */

sdc_status sdc_step_euler(sdc_sampler *s, int idx, const float *eps, float *x, sdc_rng *rngs,
                          int n_rngs, bool ancestral, sdc_err *err) {
    float sigma = s->sig[idx], sigma_to = s->sig[idx + 1];
    float dt = sigma_to - sigma, up = 0.0f;
    if (ancestral) {
        float sf2 = sigma * sigma, st2 = sigma_to * sigma_to;
        up = sqrtf(st2 * (sf2 - st2) / sf2);
        float down = sqrtf(st2 - up * up);
        dt = down - sigma;
    }
    for (size_t k = 0; k < s->n; k++) {
        float x0 = x[k] - sigma * eps[k];
        float d = (x[k] - x0) / sigma;
        x[k] = x[k] + d * dt;
    }
    if (ancestral) {
        if (!rngs) return sdc_err_set(err, SDC_ERR_ARG, "sampler euler_a: needs an rng");
        sdc_rng_randn_rows(rngs, n_rngs, s->tmp, s->n);
        for (size_t k = 0; k < s->n; k++) x[k] = x[k] + s->tmp[k] * up;
    }
    return SDC_OK;
}

/* ---------------------------------------------------------------- DPM++ 2M */

/* VP form of a sigma: alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma*alpha_t, lambda = log(alpha/sigma). */
static void dpm_coeffs(float sigma, float *alpha_t, float *sigma_t, float *lambda) {
    *alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sigma_t = sigma * *alpha_t;
    *lambda = logf(*alpha_t) - logf(*sigma_t);
}

sdc_status sdc_step_dpmpp_2m(sdc_sampler *s, int idx, const float *eps, float *x) {
    int len = s->n_ts;
    float a_s0, s_s0, l_s0, a_t, s_t, l_t;
    dpm_coeffs(s->sig[idx], &a_s0, &s_s0, &l_s0);
    dpm_coeffs(s->sig[idx + 1], &a_t, &s_t, &l_t);
    /* convert_model_output: data prediction x0 = (x - sigma_t eps) / alpha_t. */
    for (size_t k = 0; k < s->n; k++) s->tmp[k] = (x[k] - s_s0 * eps[k]) / a_s0;
    sdc_sampler_push_hist(s, s->tmp, 2);
    /* lower_order_final: the last step (sigma 0) is always first order;
     * lower_order_second with fewer than 15 steps. */
    bool final = idx == len - 1;
    bool second_last = idx == len - 2 && len < 15;
    float h = l_t - l_s0;
    float ratio = s_t / s_s0, c = a_t * (expf(-h) - 1.0f);
    const float *m0 = s->hist[s->n_hist - 1];
    float a_s1 = 0, s_s1 = 0, l_s1 = 0;
    if (idx > 0) dpm_coeffs(s->sig[idx - 1], &a_s1, &s_s1, &l_s1);
    /* A repeated sigma (timestep grids of several hundred steps round two
     * entries together) makes r0 = 0, where diffusers divides by zero and
     * yields Inf/NaN; take the first-order update there instead. */
    bool degenerate = idx == 0 || l_s0 - l_s1 == 0.0f || h == 0.0f;
    if (s->taken < 1 || s->n_hist < 2 || final || degenerate) {
        for (size_t k = 0; k < s->n; k++) x[k] = ratio * x[k] - c * m0[k];
    } else {
        (void)second_last; /* order 2 at most: the second-order update either way */
        float r0 = (l_s0 - l_s1) / h;
        float inv_r0 = 1.0f / r0;
        const float *m1 = s->hist[s->n_hist - 2];
        for (size_t k = 0; k < s->n; k++) {
            float d1 = inv_r0 * (m0[k] - m1[k]);
            x[k] = ratio * x[k] - c * m0[k] - 0.5f * c * d1;
        }
    }
    return SDC_OK;
}

/* ---------------------------------------------------------------- LMS */

/* integral over [a, b] of the Lagrange basis polynomial j on nodes[0..m):
 * 4-point Gauss-Legendre in double, exact for the degree <= 3 basis (diffusers
 * uses scipy's adaptive quad on a float32 integrand instead). */
static double lagrange_integral(const float *nodes, int m, int j, double a, double b) {
    static const double X[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                                0.8611363115940526};
    static const double W[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                                0.3478548451374538};
    double mid = 0.5 * (a + b), half = 0.5 * (b - a), sum = 0.0;
    for (int q = 0; q < 4; q++) {
        double tau = mid + half * X[q], p = 1.0;
        for (int k = 0; k < m; k++)
            if (k != j) p *= (tau - nodes[k]) / ((double)nodes[j] - nodes[k]);
        sum += W[q] * p;
    }
    return half * sum;
}

sdc_status sdc_step_lms(sdc_sampler *s, int idx, const float *eps, float *x) {
    float sigma = s->sig[idx];
    for (size_t k = 0; k < s->n; k++) {
        float x0 = x[k] - sigma * eps[k];
        s->tmp[k] = (x[k] - x0) / sigma;
    }
    sdc_sampler_push_hist(s, s->tmp, 4);
    /* order = min(step_index + 1, 4), even after img2img skipped steps (then
     * zip() below uses only as many coefficients as derivatives exist). */
    int order = idx + 1 < 4 ? idx + 1 : 4;
    float nodes[4];
    for (int k = 0; k < order; k++) nodes[k] = s->sig[idx - k];
    /* Repeated sigmas (leading spacing at 1000 steps clamps t = 1000 onto the
     * table's end) make the Lagrange basis divide by zero, where diffusers
     * yields NaN; use only the distinct leading nodes. */
    for (int k = 1; k < order; k++)
        for (int j = 0; j < k; j++)
            if (nodes[k] == nodes[j]) order = k;
    int used = order < s->n_hist ? order : s->n_hist;
    float coef[4];
    for (int j = 0; j < used; j++)
        coef[j] = (float)lagrange_integral(nodes, order, j, s->sig[idx], s->sig[idx + 1]);
    /* prev = x + sum(coef_j * derivative_{newest - j}), summed left to right from 0. */
    for (size_t k = 0; k < s->n; k++) {
        float acc = 0.0f;
        for (int j = 0; j < used; j++) acc = acc + coef[j] * s->hist[s->n_hist - 1 - j][k];
        x[k] = x[k] + acc;
    }
    return SDC_OK;
}

/* ---------------------------------------------------------------- Heun */

sdc_status sdc_step_heun(sdc_sampler *s, int idx, const float *eps, float *x) {
    if (!s->heun_second) {
        float sigma = s->sig[idx], sigma_next = s->sig[idx + 1];
        s->heun_dt = sigma_next - sigma;
        for (size_t k = 0; k < s->n; k++) {
            float x0 = x[k] - sigma * eps[k];
            float d = (x[k] - x0) / sigma;
            s->keep2[k] = d;         /* prev_derivative */
            s->keep[k] = x[k];       /* sample */
            x[k] = x[k] + d * s->heun_dt;
        }
        s->heun_second = true;
    } else {
        float sigma_next = s->sig[idx];
        for (size_t k = 0; k < s->n; k++) {
            float x0 = x[k] - sigma_next * eps[k];
            float d = (x[k] - x0) / sigma_next;
            d = (s->keep2[k] + d) / 2.0f;
            x[k] = s->keep[k] + d * s->heun_dt;
        }
        s->heun_second = false;
    }
    return SDC_OK;
}
