/* schedule.c — SD 1.x's noise schedule and diffusers 0.31's timestep grids and
 * sigma tables, computed with the same roundings as torch/numpy do (float32
 * where they keep float32, numpy's linspace/arange/interp/round formulas). */
#include "schedule.h"

#include <math.h>

#define BETA_START 0.00085
#define BETA_END 0.012

void sdc_schedule_alphas_cumprod(float ac[SDC_TRAIN_STEPS]) {
    /* torch.linspace in float32: start + step*i for the first half, end -
     * step*(n-1-i) for the second, step rounded to float first. */
    const int n = SDC_TRAIN_STEPS;
    const float start = (float)sqrt(BETA_START), end = (float)sqrt(BETA_END);
    const float step = (end - start) / (float)(n - 1);
    /* torch.cumprod accumulates float32 inputs in double on the CPU. */
    double prod = 1.0;
    for (int i = 0; i < n; i++) {
        float r = i < n / 2 ? start + step * (float)i : end - step * (float)(n - 1 - i);
        float beta = r * r;
        float alpha = 1.0f - beta;
        prod *= (double)alpha;
        ac[i] = (float)prod;
    }
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

static int leading(sdc_ts_family fam, int steps, double *t) {
    if (fam == SDC_TS_DPM) {
        int ratio = SDC_TRAIN_STEPS / (steps + 1);
        for (int i = 0; i < steps; i++) t[i] = (double)((steps - i) * ratio + SDC_STEPS_OFFSET);
        return steps;
    }
    int ratio = SDC_TRAIN_STEPS / steps;
    for (int i = 0; i < steps; i++) {
        int k = fam == SDC_TS_PNDM ? i : steps - 1 - i;
        t[i] = (double)(k * ratio + SDC_STEPS_OFFSET);
    }
    return steps;
}

static int linspace(sdc_ts_family fam, int steps, double *t) {
    const double last = SDC_TRAIN_STEPS - 1;
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
        for (int i = 0; i < steps; i++) t[i] = np_round(np_linspace(last, steps + 1, steps - i));
        break;
    }
    return steps;
}

static int trailing(sdc_ts_family fam, int steps, double *t, int cap) {
    const double start = SDC_TRAIN_STEPS, step = (double)SDC_TRAIN_STEPS / steps;
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

int sdc_schedule_timesteps(sdc_ts_family fam, sdc_spacing spacing, int steps, double *t, int cap) {
    if (steps < 1 || steps > SDC_TRAIN_STEPS) return -1;
    switch (spacing) {
    case SDC_SPACING_LEADING: return cap < steps ? -1 : leading(fam, steps, t);
    case SDC_SPACING_LINSPACE: return cap < steps ? -1 : linspace(fam, steps, t);
    case SDC_SPACING_TRAILING: return trailing(fam, steps, t, cap);
    default: return -1;
    }
}

/* The float32 table ((1 - ac) / ac) ** 0.5 diffusers interpolates in. */
static float sigma_table(const float ac[SDC_TRAIN_STEPS], int i) {
    return sqrtf((1.0f - ac[i]) / ac[i]);
}

void sdc_schedule_sigmas_at(const float ac[SDC_TRAIN_STEPS], const double *t, int n, double *sig) {
    for (int k = 0; k < n; k++) {
        double x = t[k];
        if (x <= 0.0) { sig[k] = sigma_table(ac, 0); continue; }
        if (x >= SDC_TRAIN_STEPS - 1) { sig[k] = sigma_table(ac, SDC_TRAIN_STEPS - 1); continue; }
        int j = (int)floor(x);
        double y0 = sigma_table(ac, j), y1 = sigma_table(ac, j + 1);
        double slope = (y1 - y0) / 1.0; /* numpy's interp: slope*(x - xj) + yj */
        sig[k] = slope * (x - (double)j) + y0;
    }
}

/* diffusers' _sigma_to_t: fractional index of log(sigma) among the table's logs. */
static double sigma_to_t(const float *log_sig, double sigma) {
    double ls = log(fmax(sigma, 1e-10));
    int low = 0;
    for (int i = 0; i < SDC_TRAIN_STEPS; i++)
        if (ls - (double)log_sig[i] >= 0.0) low = i;
    if (low > SDC_TRAIN_STEPS - 2) low = SDC_TRAIN_STEPS - 2;
    double lo = log_sig[low], hi = log_sig[low + 1];
    double w = (lo - ls) / (lo - hi);
    w = fmin(fmax(w, 0.0), 1.0);
    return (1.0 - w) * low + w * (low + 1);
}

void sdc_schedule_karras(const float ac[SDC_TRAIN_STEPS], int n, double *sig, double *t) {
    float log_sig[SDC_TRAIN_STEPS];
    for (int i = 0; i < SDC_TRAIN_STEPS; i++) log_sig[i] = logf(sigma_table(ac, i));
    const double rho = 7.0;
    double smin = sigma_table(ac, 0), smax = sigma_table(ac, SDC_TRAIN_STEPS - 1);
    double min_inv = pow(smin, 1.0 / rho), max_inv = pow(smax, 1.0 / rho);
    for (int i = 0; i < n; i++) {
        double ramp = np_linspace(1.0, n, i);
        sig[i] = pow(max_inv + ramp * (min_inv - max_inv), rho);
        t[i] = np_round(sigma_to_t(log_sig, sig[i]));
    }
}
