/* sampler_step.c — one scheduler.step of each diffusers method on plain float
 * arrays, for epsilon, v and sample predictions. Scalars are formed in float32
 * like the 0-d torch tensors diffusers uses, and elementwise formulas keep its
 * operation order. */
#include "sampler_impl.h"

#include <math.h>
#include <string.h>

/* Pushes a copy of v[n] as newest history entry (dropping the oldest past max). */
static void push_hist(sdc_sampler *s, const float *v, int max) {
    if (s->n_hist == max) {
        float *old = s->hist[0];
        memmove(s->hist, s->hist + 1, (size_t)(max - 1) * sizeof s->hist[0]);
        s->hist[max - 1] = old;
        s->n_hist--;
    }
    memcpy(s->hist[s->n_hist++], v, s->n * sizeof(float));
}

/* alphas_cumprod at a timestep; before 0 it is final_alpha_cumprod (1 with
 * set_alpha_to_one, else alphas_cumprod[0]). Past N-1 (PLMS's warm-up looks one
 * ratio above the first timestep, which at N steps is N, where diffusers
 * fails) the last entry. */
static float alpha_at(const sdc_sampler *s, int t) {
    if (t >= s->N) return s->ac[s->N - 1];
    return t >= 0 ? s->ac[t] : s->final_alpha;
}

/* x0 of a sigma-parameterized sampler (Euler, Euler a, LMS, Heun) at sigma. */
static float x0_of(sdc_prediction p, float x, float out, float sigma, float c_out, float c_in) {
    switch (p) {
    case SDC_PRED_V: return out * c_out + x / c_in;
    case SDC_PRED_SAMPLE: return out;
    default: return x - sigma * out;
    }
}

/* ---------------------------------------------------------------- DDIM */

sdc_status sdc_step_ddim(sdc_sampler *s, int idx, const float *out, float *x, sdc_rng *rngs,
                         int n_rngs, sdc_err *err) {
    int t = (int)s->ts[idx], prev = t - s->ratio;
    float a_t = alpha_at(s, t), a_prev = alpha_at(s, prev);
    float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
    float std = s->o.eta * sqrtf(variance);
    float sb = sqrtf(b_t), sa = sqrtf(a_t), sa_prev = sqrtf(a_prev);
    float dir_c = sqrtf(1.0f - a_prev - std * std);
    float r = (float)s->c.clip_sample_range;
    sdc_prediction p = s->c.prediction;
    for (size_t k = 0; k < s->n; k++) {
        float x0, e;
        if (p == SDC_PRED_V) {
            x0 = sa * x[k] - sb * out[k];
            e = sa * out[k] + sb * x[k];
        } else if (p == SDC_PRED_SAMPLE) {
            x0 = out[k];
            e = (x[k] - sa * x0) / sb;
        } else {
            x0 = (x[k] - sb * out[k]) / sa;
            e = out[k];
        }
        if (s->c.clip_sample) x0 = fminf(fmaxf(x0, -r), r);
        x[k] = sa_prev * x0 + dir_c * e;
    }
    if (s->o.eta > 0.0f) {
        if (!rngs) return sdc_err_set(err, SDC_ERR_ARG, "sampler ddim: eta > 0 needs an rng");
        /* randn_tensor(model_output.shape, generator) */
        sdc_rng_randn_rows(rngs, n_rngs, s->noise, s->n);
        for (size_t k = 0; k < s->n; k++) x[k] = x[k] + std * s->noise[k];
    }
    return SDC_OK;
}

/* ---------------------------------------------------------------- PNDM */

/* PNDMScheduler._get_prev_sample: x_{t-delta} from x_t and eps (formula (9) of
 * the PNDM paper); a v prediction is turned into eps first. */
static void pndm_prev(const sdc_sampler *s, const float *x, int t, int prev, const float *e,
                      float *out) {
    float a_t = alpha_at(s, t), a_prev = alpha_at(s, prev);
    float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    float sample_c = sqrtf(a_prev / a_t);
    float denom = a_t * sqrtf(b_prev) + sqrtf(a_t * b_t * a_prev);
    float diff = a_prev - a_t;
    float sa = sqrtf(a_t), sb = sqrtf(b_t);
    bool v = s->c.prediction == SDC_PRED_V;
    for (size_t k = 0; k < s->n; k++) {
        float ek = v ? sa * e[k] + sb * x[k] : e[k];
        out[k] = sample_c * x[k] - diff * ek / denom;
    }
}

/* PNDMScheduler.step_prk: four evaluations per Runge-Kutta step, combined
 * 1/6, 1/3, 1/3, 1/6; every evaluation moves from the step's start sample. */
static sdc_status step_prk(sdc_sampler *s, int idx, const float *out, float *x) {
    int counter = s->taken;
    int diff_to_prev = counter % 2 ? 0 : s->N / s->o.steps / 2;
    int prev = (int)s->ts[idx] - diff_to_prev;
    int t = (int)s->prk_ts[counter / 4 * 4];
    const float *e = out;
    switch (counter % 4) {
    case 0:
        for (size_t k = 0; k < s->n; k++) s->keep2[k] = (float)(1.0 / 6) * out[k];
        push_hist(s, out, 4);
        memcpy(s->keep, x, s->n * sizeof(float)); /* cur_sample */
        break;
    case 1:
    case 2:
        for (size_t k = 0; k < s->n; k++) s->keep2[k] = s->keep2[k] + (float)(1.0 / 3) * out[k];
        break;
    default:
        for (size_t k = 0; k < s->n; k++) s->tmp[k] = s->keep2[k] + (float)(1.0 / 6) * out[k];
        e = s->tmp;
    }
    pndm_prev(s, s->keep, t, prev, e, x);
    return SDC_OK;
}

sdc_status sdc_step_pndm(sdc_sampler *s, int idx, const float *out, float *x) {
    if (!s->c.skip_prk_steps && s->taken < s->n_prk) return step_prk(s, idx, out, x);
    int t = (int)s->ts[idx], prev = t - s->ratio;
    int counter = s->taken;
    float *e = s->tmp;
    if (counter != 1) {
        push_hist(s, out, 4);
    } else {
        /* The repeated timestep: redo the first step with the averaged output. */
        prev = t;
        t = t + s->ratio;
    }
    float **h = s->hist;
    int m = s->n_hist;
    if (m == 1 && counter == 0) {
        memcpy(e, out, s->n * sizeof(float));
        memcpy(s->keep, x, s->n * sizeof(float)); /* cur_sample */
    } else if (m == 1 && counter == 1) {
        for (size_t k = 0; k < s->n; k++) e[k] = (out[k] + h[0][k]) / 2.0f;
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

sdc_status sdc_step_euler(sdc_sampler *s, int idx, const float *out, float *x, sdc_rng *rngs,
                          int n_rngs, bool ancestral, sdc_err *err) {
    float sigma = s->sig[idx], sigma_to = s->sig[idx + 1];
    float dt = sigma_to - sigma, up = 0.0f;
    if (ancestral) {
        float sf2 = sigma * sigma, st2 = sigma_to * sigma_to;
        up = sqrtf(st2 * (sf2 - st2) / sf2);
        float down = sqrtf(st2 - up * up);
        dt = down - sigma;
    }
    float c_in = sigma * sigma + 1.0f, c_out = -sigma / sqrtf(c_in);
    sdc_prediction p = s->c.prediction;
    for (size_t k = 0; k < s->n; k++) {
        float x0 = x0_of(p, x[k], out[k], sigma, c_out, c_in);
        float d = (x[k] - x0) / sigma;
        x[k] = x[k] + d * dt;
    }
    if (ancestral) {
        if (!rngs) return sdc_err_set(err, SDC_ERR_ARG, "sampler euler_a: needs an rng");
        sdc_rng_randn_rows(rngs, n_rngs, s->noise, s->n);
        for (size_t k = 0; k < s->n; k++) x[k] = x[k] + s->noise[k] * up;
    }
    return SDC_OK;
}

/* ---------------------------------------------------------------- DPM-Solver */

/* VP form of a sigma: alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma*alpha_t, lambda = log(alpha/sigma). */
static void dpm_coeffs(float sigma, float *alpha_t, float *sigma_t, float *lambda) {
    *alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sigma_t = sigma * *alpha_t;
    *lambda = logf(*alpha_t) - logf(*sigma_t);
}

/* convert_model_output: x0 for the ++ algorithms, eps for dpmsolver. */
static void dpm_convert(const sdc_sampler *s, float a, float sg, const float *out, const float *x,
                        float *m) {
    sdc_prediction p = s->c.prediction;
    if (s->c.algorithm != SDC_DPM_PLAIN) {
        for (size_t k = 0; k < s->n; k++)
            m[k] = p == SDC_PRED_V ? a * x[k] - sg * out[k]
                   : p == SDC_PRED_SAMPLE ? out[k] : (x[k] - sg * out[k]) / a;
    } else {
        for (size_t k = 0; k < s->n; k++)
            m[k] = p == SDC_PRED_V ? a * out[k] + sg * x[k]
                   : p == SDC_PRED_SAMPLE ? (x[k] - a * out[k]) / sg : out[k];
    }
}

sdc_status sdc_step_dpm(sdc_sampler *s, int idx, const float *out, float *x, sdc_rng *rngs,
                        int n_rngs, sdc_err *err) {
    const sdc_sched_config *c = &s->c;
    int len = s->n_ts;
    float a_s0, s_s0, l_s0, a_t, s_t, l_t;
    dpm_coeffs(s->sig[idx], &a_s0, &s_s0, &l_s0);
    dpm_coeffs(s->sig[idx + 1], &a_t, &s_t, &l_t);
    dpm_convert(s, a_s0, s_s0, out, x, s->tmp);
    push_hist(s, s->tmp, 2);
    bool sde = c->algorithm == SDC_DPM_SDE_PLUSPLUS, plain = c->algorithm == SDC_DPM_PLAIN;
    if (sde) { /* drawn before every update, first-order ones included */
        if (!rngs) return sdc_err_set(err, SDC_ERR_ARG, "sampler dpmpp_2m_sde: needs an rng");
        sdc_rng_randn_rows(rngs, n_rngs, s->noise, s->n);
    }
    /* lower_order_final: the last step is first order when the final sigma is
     * 0, with euler_at_final, or (lower_order_final) with fewer than 15 steps. */
    bool final = idx == len - 1 && (c->euler_at_final || (c->lower_order_final && len < 15) ||
                                     c->final_sigma == SDC_FINAL_SIGMA_ZERO);
    float h = l_t - l_s0;
    const float *m0 = s->hist[s->n_hist - 1];
    float a_s1 = 0, s_s1 = 0, l_s1 = 0;
    if (idx > 0) dpm_coeffs(s->sig[idx - 1], &a_s1, &s_s1, &l_s1);
    /* A repeated sigma (timestep grids of several hundred steps round two
     * entries together) makes r0 = 0, where diffusers divides by zero and
     * yields Inf/NaN; take the first-order update there instead. */
    bool degenerate = idx == 0 || l_s0 - l_s1 == 0.0f || h == 0.0f;
    bool first = c->solver_order == 1 || s->taken < 1 || s->n_hist < 2 || final || degenerate;
    float eh = expf(-h), e2h = expf(-2.0f * h), ehp = expf(h);
    float noise_c = sde ? s_t * sqrtf(1.0f - e2h) : 0.0f;
    /* x = A x + B D0 + C D1 + noise_c * noise, in diffusers' order per form */
    float A, B, C = 0.0f;
    if (plain) {
        A = a_t / a_s0;
        B = s_t * (ehp - 1.0f);
    } else if (sde) {
        A = s_t / s_s0 * eh;
        B = a_t * (1.0f - e2h);
    } else {
        A = s_t / s_s0;
        B = a_t * (eh - 1.0f);
    }
    if (!first) {
        if (plain) C = c->solver_heun ? s_t * ((ehp - 1.0f) / h - 1.0f) : 0.5f * B;
        else if (sde) C = c->solver_heun ? a_t * ((1.0f - e2h) / (-2.0f * h) + 1.0f) : 0.5f * B;
        else C = c->solver_heun ? a_t * ((eh - 1.0f) / h + 1.0f) : 0.5f * B;
    }
    const float *m1 = first ? m0 : s->hist[s->n_hist - 2];
    float inv_r0 = first ? 0.0f : 1.0f / ((l_s0 - l_s1) / h);
    for (size_t k = 0; k < s->n; k++) {
        float v;
        if (sde) v = A * x[k] + B * m0[k];
        else v = A * x[k] - B * m0[k];
        if (!first) {
            float d1 = inv_r0 * (m0[k] - m1[k]);
            /* midpoint subtracts (plain, ++) or adds (SDE) 0.5 B D1; heun's
             * term carries its own sign: + for ++ and SDE, - for plain */
            if (plain) v = v - C * d1;
            else if (sde) v = v + C * d1;
            else v = c->solver_heun ? v + C * d1 : v - C * d1;
        }
        if (sde) v = v + noise_c * s->noise[k];
        x[k] = v;
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

sdc_status sdc_step_lms(sdc_sampler *s, int idx, const float *out, float *x) {
    float sigma = s->sig[idx];
    float c_in = sigma * sigma + 1.0f, c_out = -sigma / sqrtf(c_in);
    for (size_t k = 0; k < s->n; k++) {
        float x0 = x0_of(s->c.prediction, x[k], out[k], sigma, c_out, c_in);
        s->tmp[k] = (x[k] - x0) / sigma;
    }
    push_hist(s, s->tmp, 4);
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

sdc_status sdc_step_heun(sdc_sampler *s, int idx, const float *out, float *x) {
    bool first = !s->heun_second;
    float sigma = first ? s->sig[idx] : s->sig[idx - 1];
    float sigma_next = first ? s->sig[idx + 1] : s->sig[idx];
    float si = first ? sigma : sigma_next; /* sigma_input */
    float c_in = si * si + 1.0f, c_out = -si / sqrtf(c_in);
    float r = (float)s->c.clip_sample_range;
    if (first) s->heun_dt = sigma_next - sigma;
    for (size_t k = 0; k < s->n; k++) {
        float x0 = x0_of(s->c.prediction, x[k], out[k], si, c_out, c_in);
        if (s->c.clip_sample) x0 = fminf(fmaxf(x0, -r), r);
        if (first) {
            float d = (x[k] - x0) / sigma;
            s->keep2[k] = d;   /* prev_derivative */
            s->keep[k] = x[k]; /* sample */
            x[k] = x[k] + d * s->heun_dt;
        } else {
            float d = (x[k] - x0) / sigma_next;
            d = (s->keep2[k] + d) / 2.0f;
            x[k] = s->keep[k] + d * s->heun_dt;
        }
    }
    s->heun_second = first;
    return SDC_OK;
}
