/* lbfgs.h — limited-memory BFGS for smooth unconstrained minimization in
 * double precision, used by the linear probe (logreg.h).
 *
 *     static sdc_status fg(void *ctx, const double *x, double *f, double *g, sdc_err *err);
 *     lbfgs_opts o = lbfgs_defaults();
 *     lbfgs_result r;
 *     if (lbfgs_minimize(n, x, fg, ctx, &o, &r, &err)) ...   // x: start in, minimizer out
 *
 * The line search asks for the weak Wolfe conditions (sufficient decrease and
 * curvature), found by expansion and bisection. Objectives evaluated in
 * float (the probe's GEMMs) stop decreasing measurably long before their
 * gradient stops shrinking, so a step whose value rose by less than the
 * noise level fnoise·|f| is also accepted when its slope fell enough (the
 * "approximate Wolfe" test of Hager and Zhang): the search keeps following
 * the gradient, which is accurate, instead of failing on the value. */
#ifndef SDC_EVAL_LBFGS_H
#define SDC_EVAL_LBFGS_H

#include "sdc.h"

#include <stdbool.h>
#include <stdint.h>

/* f(x) into *f and its gradient into g[n]. A failure stops the minimizer. */
typedef sdc_status (*lbfgs_fn)(void *ctx, const double *x, double *f, double *g, sdc_err *err);

typedef struct lbfgs_opts {
    int memory;      /* correction pairs kept (default 10) */
    int max_iter;    /* iterations (default 1000) */
    double gtol;     /* stop when max|g| <= gtol (absolute; default 1e-6) */
    double fnoise;   /* relative noise of f (default 1e-6; 0 for an exact f) */
} lbfgs_opts;

lbfgs_opts lbfgs_defaults(void);

typedef enum lbfgs_stop {
    LBFGS_CONVERGED = 0, /* the gradient test passed */
    LBFGS_MAX_ITER,      /* max_iter reached */
    LBFGS_NO_PROGRESS,   /* the line search found no acceptable step (precision floor) */
} lbfgs_stop;

typedef struct lbfgs_result {
    lbfgs_stop stop;
    int iters, evals;
    double f;
    double gmax, gmax0;  /* max|g| at the end and at the start */
} lbfgs_result;

const char *lbfgs_stop_name(lbfgs_stop s);

/* Minimizes fn from x[n] (overwritten with the best point found). Only an
 * error of fn or an allocation failure is an error; how it stopped is in r. */
sdc_status lbfgs_minimize(int64_t n, double *x, lbfgs_fn fn, void *ctx, const lbfgs_opts *o,
                          lbfgs_result *r, sdc_err *err);

#endif
