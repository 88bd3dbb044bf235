/* logreg.h — multinomial logistic regression with an L2 penalty: the linear
 * probe of `sdc probe`, trained by L-BFGS (lbfgs.h) on float features.
 *
 *     logreg_data d = {.x = feats, .y = labels, .n = n, .d = 768, .k = n_classes};
 *     logreg_opts o = logreg_defaults();                     // C = 1
 *     logreg_model m;
 *     lbfgs_result info;
 *     if (logreg_fit(&d, &o, &m, &info, &err)) ...
 *     logreg_predict(&m, val, n_val, pred, &err);
 *     logreg_free(&m);
 *
 * The objective is scikit-learn's LogisticRegression(C, lbfgs, multinomial):
 *     f(W, b) = (1/n) sum_i -log softmax(W x_i + b)[y_i] + ||W||² / (2 C n)
 * with one weight row per class (k rows, also for k = 2) and an unpenalized
 * intercept, so the same C gives the same minimizer. W is unique; b is unique
 * up to a constant added to every class, and is returned with mean 0.
 *
 * Internally the features are centred on their mean mu (W x + b = W (x - mu)
 * + (b + W mu): the same model and penalty, a better-conditioned problem);
 * the logits and the gradient's GEMMs run in float through BLAS over blocks
 * of rows (memory: the features, a [block, k] logit buffer, and the L-BFGS
 * pairs, 2 * memory * k * (d + 1) doubles); losses and the optimizer work in
 * double. (A warm start from a subsample's minimizer was tried and dropped:
 * with the same penalty the subsample overfits, and its minimizer had a
 * larger gradient on the whole set than W = 0: 41 iterations instead of 15
 * at 50k x 768 x 500.) */
#ifndef SDC_EVAL_LOGREG_H
#define SDC_EVAL_LOGREG_H

#include "lbfgs.h"

typedef struct logreg_data {
    const float *x;   /* [n, d] features */
    const int *y;     /* [n] labels in [0, k) */
    int64_t n;
    int d, k;
} logreg_data;

typedef struct logreg_opts {
    double C;         /* inverse penalty strength, > 0 (scikit-learn's C) */
    int max_iter;     /* L-BFGS iterations */
    double tol;       /* stop at max|gradient| <= tol * its value at W = 0, b = 0 */
} logreg_opts;

logreg_opts logreg_defaults(void);

typedef struct logreg_model {
    int d, k;
    double *w;        /* [k, d] */
    double *b;        /* [k], mean 0 */
} logreg_model;

/* Fits on data; info (may be NULL) gets the optimizer's iterations and stop
 * reason. Labels out of range, non-finite features, k < 2 or an empty set are
 * SDC_ERR_ARG naming the row. */
sdc_status logreg_fit(const logreg_data *data, const logreg_opts *o, logreg_model *m,
                      lbfgs_result *info, sdc_err *err);
void logreg_free(logreg_model *m);

/* The arg-max class of each row of x [n, d] into pred [n] (ties: lowest). */
sdc_status logreg_predict(const logreg_model *m, const float *x, int64_t n, int *pred,
                          sdc_err *err);

#endif
