/* schedule.c — noise schedules and diffusers' timestep grids and sigma
 * tables, computed with the same roundings as torch/numpy do (float32 where
 * they keep float32, numpy's linspace/arange/interp/round formulas). */
#include "schedule.h"

#include <math.h>
#include <stdlib.h>

#define SD_BETA_START 0.00085
#define SD_BETA_END 0.012

/* torch.linspace(start, end, n) in float32: start + step*i for the first
 * half, end - step*(n-1-i) for the second, step rounded to float first. */
static float torch_linspace_f32(double start_d, double end_d, int n, int i) {
    const float start = (float)start_d, end = (float)end_d;
    if (n == 1) return start;
    const float step = (end - start) / (float)(n - 1);
    return i < n / 2 ? start + step * (float)i : end - step * (float)(n - 1 - i);
}

/* diffusers' betas_for_alpha_bar (cosine), in Python's double, then float32. */
static float cosine_beta(int i, int n) {
    double t1 = (double)i / n, t2 = (double)(i + 1) / n;
    double a1 = cos((t1 + 0.008) / 1.008 * M_PI / 2), a2 = cos((t2 + 0.008) / 1.008 * M_PI / 2);
    double b = 1 - (a2 * a2) / (a1 * a1);
    return (float)(b < 0.999 ? b : 0.999);
}

/* torch.cumprod accumulates float32 inputs in double on the CPU. */
static void cumprod(const float *alpha, int n, float *ac) {
    double prod = 1.0;
    for (int i = 0; i < n; i++) {
        prod *= (double)alpha[i];
        ac[i] = (float)prod;
    }
}

/* rescale_zero_terminal_snr (Lin et al. 2023, Algorithm 1), in float32 as
 * diffusers runs it on torch tensors; b[n] is rewritten in place. */
static void rescale_zero_snr(float *b, int n, float *tmp) {
    if (n < 2) return;
    for (int i = 0; i < n; i++) tmp[i] = 1.0f - b[i];
    cumprod(tmp, n, tmp);
    for (int i = 0; i < n; i++) tmp[i] = sqrtf(tmp[i]);
    float s0 = tmp[0], sT = tmp[n - 1];
    float scale = s0 / (s0 - sT);
    for (int i = 0; i < n; i++) {
        float v = (tmp[i] - sT) * scale;
        tmp[i] = v * v; /* alphas_bar */
    }
    /* alphas = [bar0, bar[1:] / bar[:-1]], betas = 1 - alphas (backwards, in place) */
    for (int i = n - 1; i >= 1; i--) b[i] = 1.0f - tmp[i] / tmp[i - 1];
    b[0] = 1.0f - tmp[0];
}

void sdc_schedule_alphas_cumprod_cfg(const sdc_sched_config *c, float *ac) {
    const int n = c->train_steps;
    float *b = ac; /* betas, then alphas, then the product, all in ac */
    for (int i = 0; i < n; i++) {
        switch (c->betas) {
        case SDC_BETAS_LINEAR: b[i] = torch_linspace_f32(c->beta_start, c->beta_end, n, i); break;
        case SDC_BETAS_SCALED_LINEAR: {
            float r = torch_linspace_f32(sqrt(c->beta_start), sqrt(c->beta_end), n, i);
            b[i] = r * r;
            break;
        }
        case SDC_BETAS_SQUAREDCOS_CAP_V2: b[i] = cosine_beta(i, n); break;
        case SDC_BETAS_TRAINED: b[i] = c->trained_betas[i]; break;
        }
    }
    float *tmp = c->rescale_zero_snr ? malloc(sizeof *tmp * (size_t)n) : NULL;
    if (tmp) rescale_zero_snr(b, n, tmp);
    free(tmp);
    for (int i = 0; i < n; i++) b[i] = 1.0f - b[i];
    cumprod(b, n, ac);
}

void sdc_schedule_alphas_cumprod(float ac[SDC_TRAIN_STEPS]) {
    sdc_sched_config c = {.train_steps = SDC_TRAIN_STEPS, .betas = SDC_BETAS_SCALED_LINEAR,
                          .beta_start = SD_BETA_START, .beta_end = SD_BETA_END};
    sdc_schedule_alphas_cumprod_cfg(&c, ac);
}

/* numpy.linspace(0, stop, n)[j]: j * (stop / (n - 1)), the last one exact. */
static double np_linspace(double stop, int n, int j) {
    if (n == 1) return 0.0;
    if (j == n - 1) return stop;
    return (double)j * (stop / (double)(n - 1));
}

/* numpy.arange(start, 0, -step): its length and i-th value (numpy fills with
 * start + i * ((start - step) - start)). */
static int np_arange_len(double start, double step) {
    return (int)ceil((0.0 - start) / -step);
}

static double np_arange_at(double start, double step, int i) {
    double delta = (start + -step) - start;
    return start + (double)i * delta;
}

/* numpy.round: half to even (the default rounding mode of rint). */
static double np_round(double x) { return rint(x); }

static int leading(sdc_ts_family fam, int steps, int N, int offset, int last, double *t) {
    if (fam == SDC_TS_DPM) {
        int ratio = last / (steps + 1);
        for (int i = 0; i < steps; i++) t[i] = (double)((steps - i) * ratio + offset);
        return steps;
    }
    int ratio = N / steps;
    for (int i = 0; i < steps; i++) {
        int k = fam == SDC_TS_PNDM ? i : steps - 1 - i;
        t[i] = (double)(k * ratio + offset);
    }
    return steps;
}

static int linspace(sdc_ts_family fam, int steps, int N, int last_t, double *t) {
    const double last = N - 1;
    switch (fam) {
    case SDC_TS_DDIM:
        for (int i = 0; i < steps; i++) t[i] = np_round(np_linspace(last, steps, steps - 1 - i));
        break;
    case SDC_TS_PNDM:
        for (int i = 0; i < steps; i++) t[i] = np_round(np_linspace(last, steps, i));
        break;
    case SDC_TS_FLOAT: /* computed in double, then kept as float32 */
        for (int i = 0; i < steps; i++) t[i] = (float)np_linspace(last, steps, steps - 1 - i);
        break;
    case SDC_TS_DPM:
        for (int i = 0; i < steps; i++) t[i] = np_round(np_linspace(last_t - 1, steps + 1, steps - i));
        break;
    }
    return steps;
}

static int trailing(sdc_ts_family fam, int steps, int N, int last, double *t, int cap) {
    const double start = fam == SDC_TS_DPM ? last : N, step = (double)N / steps;
    int n = np_arange_len(start, step);
    if (n > cap) return -1;
    for (int i = 0; i < n; i++) {
        /* PNDM reverses into ascending order; the others stay descending. */
        int k = fam == SDC_TS_PNDM ? n - 1 - i : i;
        double v = np_round(np_arange_at(start, step, k)) - 1.0;
        t[i] = fam == SDC_TS_FLOAT ? (double)(float)v : v;
    }
    return n;
}

int sdc_schedule_timesteps_n(sdc_ts_family fam, sdc_spacing spacing, int steps, int N, int offset,
                             int last, double *t, int cap) {
    if (steps < 1 || steps > N || last < 1) return -1;
    switch (spacing) {
    case SDC_SPACING_LEADING: return cap < steps ? -1 : leading(fam, steps, N, offset, last, t);
    case SDC_SPACING_LINSPACE: return cap < steps ? -1 : linspace(fam, steps, N, last, t);
    case SDC_SPACING_TRAILING: return trailing(fam, steps, N, last, t, cap);
    default: return -1;
    }
}

int sdc_schedule_timesteps(sdc_ts_family fam, sdc_spacing spacing, int steps, double *t, int cap) {
    return sdc_schedule_timesteps_n(fam, spacing, steps, SDC_TRAIN_STEPS, SDC_STEPS_OFFSET,
                                    SDC_TRAIN_STEPS, t, cap);
}

/* The float32 table ((1 - ac) / ac) ** 0.5 diffusers interpolates in. */
float sdc_schedule_sigma_table(const float *ac, int i) { return sqrtf((1.0f - ac[i]) / ac[i]); }

void sdc_schedule_sigmas_at_n(const float *ac, int N, const double *t, int n, double *sig) {
    for (int k = 0; k < n; k++) {
        double x = t[k];
        if (x <= 0.0) { sig[k] = sdc_schedule_sigma_table(ac, 0); continue; }
        if (x >= N - 1) { sig[k] = sdc_schedule_sigma_table(ac, N - 1); continue; }
        int j = (int)floor(x);
        double y0 = sdc_schedule_sigma_table(ac, j), y1 = sdc_schedule_sigma_table(ac, j + 1);
        double slope = (y1 - y0) / 1.0; /* numpy's interp: slope*(x - xj) + yj */
        sig[k] = slope * (x - (double)j) + y0;
    }
}

void sdc_schedule_sigmas_at(const float ac[SDC_TRAIN_STEPS], const double *t, int n, double *sig) {
    sdc_schedule_sigmas_at_n(ac, SDC_TRAIN_STEPS, t, n, sig);
}

/* diffusers' _sigma_to_t: fractional index of log(sigma) among the table's
 * float32 logs. */
static double sigma_to_t(const float *log_sig, int N, double sigma) {
    double ls = log(fmax(sigma, 1e-10));
    int low = 0;
    for (int i = 0; i < N; i++)
        if (ls - (double)log_sig[i] >= 0.0) low = i;
    if (low > N - 2) low = N - 2;
    if (low < 0) low = 0;
    double lo = log_sig[low], hi = log_sig[low + 1];
    double w = (lo - ls) / (lo - hi);
    w = fmin(fmax(w, 0.0), 1.0);
    return (1.0 - w) * low + w * (low + 1);
}

void sdc_schedule_sigma_to_t(const float *ac, int N, const double *sig, int n, double *t) {
    float *log_sig = malloc(sizeof *log_sig * (size_t)N);
    if (!log_sig) { /* tiny; a failure leaves t at 0 rather than crash */
        for (int i = 0; i < n; i++) t[i] = 0;
        return;
    }
    for (int i = 0; i < N; i++) log_sig[i] = logf(sdc_schedule_sigma_table(ac, i));
    for (int i = 0; i < n; i++) t[i] = N >= 2 ? sigma_to_t(log_sig, N, sig[i]) : 0.0;
    free(log_sig);
}

void sdc_schedule_karras_range(double smin, double smax, int n, double *sig) {
    const double rho = 7.0;
    double min_inv = pow(smin, 1.0 / rho), max_inv = pow(smax, 1.0 / rho);
    for (int i = 0; i < n; i++) {
        double ramp = np_linspace(1.0, n, i);
        sig[i] = pow(max_inv + ramp * (min_inv - max_inv), rho);
    }
}

void sdc_schedule_karras(const float ac[SDC_TRAIN_STEPS], int n, double *sig, double *t) {
    sdc_schedule_karras_range(sdc_schedule_sigma_table(ac, 0),
                              sdc_schedule_sigma_table(ac, SDC_TRAIN_STEPS - 1), n, sig);
    sdc_schedule_sigma_to_t(ac, SDC_TRAIN_STEPS, sig, n, t);
    for (int i = 0; i < n; i++) t[i] = np_round(t[i]);
}
