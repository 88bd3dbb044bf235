/* lbfgs.c — L-BFGS with a weak-Wolfe line search (see lbfgs.h). */
#include "lbfgs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Line-search constants: sufficient decrease c1, curvature c2 (weak Wolfe,
 * the usual quasi-Newton pair), and Hager-Zhang's delta for the approximate
 * test (their published default). */
#define C1 1e-4
#define C2 0.9
#define HZ_DELTA 0.1
#define MAX_LS 40
#define STALL 50

lbfgs_opts lbfgs_defaults(void) {
    return (lbfgs_opts){.memory = 10, .max_iter = 1000, .gtol = 1e-6, .fnoise = 1e-6};
}

const char *lbfgs_stop_name(lbfgs_stop s) {
    switch (s) {
    case LBFGS_CONVERGED: return "converged";
    case LBFGS_MAX_ITER: return "iteration limit";
    case LBFGS_NO_PROGRESS: return "no further progress at this precision";
    }
    return "?";
}

static double dot(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* The next trial step inside the bracket [lo, hi] (hi may be infinite):
 * where the slope, interpolated linearly between the bracket's ends, is
 * zero (exact for a quadratic along the line), kept 10 % away from the
 * ends; while nothing overshot yet, extrapolated from the last two short
 * steps (plo, lo), 1.5 to 50 times lo. */
static double next_step(double plo, double dplo, double lo, double dlo, double hi, double dhi) {
    if (isinf(hi)) { /* lo > 0: too short so far; extrapolate from the last two */
        double a = dlo > dplo ? lo - dlo * (lo - plo) / (dlo - dplo) : 4 * lo;
        return fmin(fmax(a, 1.5 * lo), 50 * lo);
    }
    double a = dhi > dlo ? lo - dlo * (hi - lo) / (dhi - dlo) : 0.5 * (lo + hi);
    double m = 0.1 * (hi - lo);
    return fmin(fmax(a, lo + m), hi - m);
}

sdc_status lbfgs_minimize(int64_t n, double *x, lbfgs_fn fn, void *ctx, const lbfgs_opts *o,
                          lbfgs_result *r, sdc_err *err) {
    *r = (lbfgs_result){0};
    int m = o->memory > 0 ? o->memory : 10;
    if (n <= 0) return sdc_err_set(err, SDC_ERR_ARG, "lbfgs: %lld variables", (long long)n);
    size_t vec = sizeof(double) * (size_t)n;
    double *g = malloc(vec), *p = malloc(vec), *xn = malloc(vec), *gn = malloc(vec);
    double *S = malloc(vec * (size_t)m), *Y = malloc(vec * (size_t)m);
    double *rho = malloc(sizeof *rho * (size_t)m), *alpha = malloc(sizeof *alpha * (size_t)m);
    sdc_status s = SDC_OK;
    if (!g || !p || !xn || !gn || !S || !Y || !rho || !alpha) {
        s = sdc_err_set(err, SDC_ERR_OOM, "lbfgs: out of memory (%lld variables, %d pairs)",
                        (long long)n, m);
        goto done;
    }
    double f;
    if ((s = fn(ctx, x, &f, g, err))) goto done;
    r->evals = 1;
    r->gmax0 = r->gmax = max_abs(g, n);
    r->stop = LBFGS_MAX_ITER;
    int stored = 0, newest = -1; /* ring buffer of (s, y) pairs */
    /* At the precision floor of a float objective, steps keep passing the
     * approximate test while the gradient stops shrinking: give up after
     * STALL iterations without a 10 % better gradient. */
    double best = r->gmax;
    int since_best = 0;
    for (r->iters = 0; r->iters < o->max_iter; r->iters++) {
        if (r->gmax <= o->gtol) { r->stop = LBFGS_CONVERGED; break; }
        /* p = -H g by the two-loop recursion, H0 = (s·y / y·y) I. */
        for (int64_t i = 0; i < n; i++) p[i] = -g[i];
        for (int k = 0, j = newest; k < stored; k++, j = (j - 1 + m) % m) {
            alpha[j] = rho[j] * dot(S + (size_t)j * n, p, n);
            const double *yj = Y + (size_t)j * n;
            for (int64_t i = 0; i < n; i++) p[i] -= alpha[j] * yj[i];
        }
        if (stored) {
            const double *yj = Y + (size_t)newest * n;
            double gamma = 1.0 / (rho[newest] * dot(yj, yj, n));
            for (int64_t i = 0; i < n; i++) p[i] *= gamma;
        }
        for (int k = 0, j = (newest - stored + 1 + m) % m; k < stored; k++, j = (j + 1) % m) {
            double b = rho[j] * dot(Y + (size_t)j * n, p, n);
            const double *sj = S + (size_t)j * n;
            for (int64_t i = 0; i < n; i++) p[i] += (alpha[j] - b) * sj[i];
        }
        double d0 = dot(g, p, n);
        if (!(d0 < 0)) { /* not a descent direction (rounding): restart from -g */
            stored = 0;
            for (int64_t i = 0; i < n; i++) p[i] = -g[i];
            d0 = -dot(g, g, n);
        }
        /* The first step (no curvature known yet) has unit length. */
        double a = stored ? 1.0 : 1.0 / sqrt(-d0), fn_new = 0;
        double lo = 0, dlo = d0, hi = INFINITY, dhi = 0; /* bracket and slopes at its ends */
        double plo = 0, dplo = d0;                        /* the short step before lo */
        bool ok = false;
        for (int ls = 0; ls < MAX_LS && !ok; ls++) {
            for (int64_t i = 0; i < n; i++) xn[i] = x[i] + a * p[i];
            if ((s = fn(ctx, xn, &fn_new, gn, err))) goto done;
            r->evals++;
            double d = dot(gn, p, n);
            bool decrease = fn_new <= f + C1 * a * d0;
            bool approx = o->fnoise > 0 && fn_new <= f + o->fnoise * fabs(f) &&
                          d <= (2 * HZ_DELTA - 1) * d0;
            if (!(decrease || approx)) hi = a, dhi = d;
            else if (d < C2 * d0) plo = lo, dplo = dlo, lo = a, dlo = d; /* still steep: too short */
            else ok = true;
            if (!ok) a = next_step(plo, dplo, lo, dlo, hi, dhi);
        }
        if (!ok) { r->stop = LBFGS_NO_PROGRESS; break; }
        /* The pair (s, y); curvature s·y > 0 is guaranteed by the Wolfe test. */
        newest = (newest + 1) % m;
        double *sj = S + (size_t)newest * n, *yj = Y + (size_t)newest * n;
        for (int64_t i = 0; i < n; i++) {
            sj[i] = xn[i] - x[i];
            yj[i] = gn[i] - g[i];
        }
        double sy = dot(sj, yj, n);
        if (sy > 0) {
            rho[newest] = 1.0 / sy;
            if (stored < m) stored++;
        } else { /* not kept (rounding); its slot held the oldest pair, now gone too */
            newest = (newest - 1 + m) % m;
            if (stored == m) stored--;
        }
        memcpy(x, xn, vec);
        memcpy(g, gn, vec);
        f = fn_new;
        r->gmax = max_abs(g, n);
        if (r->gmax < 0.9 * best) best = r->gmax, since_best = 0;
        else if (++since_best >= STALL && o->fnoise > 0) { r->iters++; r->stop = LBFGS_NO_PROGRESS; break; }
    }
    if (r->stop == LBFGS_MAX_ITER && r->gmax <= o->gtol) r->stop = LBFGS_CONVERGED;
    r->f = f;
done:
    free(g), free(p), free(xn), free(gn), free(S), free(Y), free(rho), free(alpha);
    return s;
}
