/* logreg.c — the multinomial logistic-regression probe (see logreg.h): the
 * objective and its gradient over blocks of rows, and L-BFGS on top. */
#include "logreg.h"

#include "../core/parallel.h"
#include "../cpu/vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Logit rows per block: a [rows, k] float buffer of about 16 MiB. */
#define BLOCK_BYTES ((int64_t)16 << 20)

logreg_opts logreg_defaults(void) {
    return (logreg_opts){.C = 1.0, .max_iter = 1000, .tol = 1e-4};
}

typedef struct objective {
    const logreg_data *data;
    double lambda;     /* 1 / (C n) */
    double *mu;        /* [d] feature mean */
    float *wf, *bf;    /* [k, d], [k]: the current W and the effective bias b - W mu */
    float *z;          /* [block, k] logits, then P - Y */
    float *gw;         /* [k, d] sum over rows of (P - Y)ᵀ x */
    double *loss;      /* [block] per-row cross-entropy */
    int64_t block;
} objective;

typedef struct rows_job {
    objective *ob;
    int64_t r0;        /* first data row of the block */
} rows_job;

/* Softmax of each logit row, its cross-entropy, and P - Y in place. */
static void softmax_rows(void *p, int64_t begin, int64_t end) {
    rows_job *j = p;
    const objective *ob = j->ob;
    int k = ob->data->k;
    for (int64_t r = begin; r < end; r++) {
        float *z = ob->z + (size_t)r * k;
        int y = ob->data->y[j->r0 + r];
        float mx = -INFINITY;
        for (int c = 0; c < k; c++) {
            z[c] += ob->bf[c];
            mx = fmaxf(mx, z[c]);
        }
        double zy = z[y], sum = 0;
        int c = 0;
#ifdef __AVX2__
        __m256 acc = _mm256_setzero_ps(), vmx = _mm256_set1_ps(mx);
        for (; c + 8 <= k; c += 8) {
            __m256 e = sdc_v_exp(_mm256_sub_ps(_mm256_loadu_ps(z + c), vmx));
            _mm256_storeu_ps(z + c, e);
            acc = _mm256_add_ps(acc, e);
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, acc);
        for (int l = 0; l < 8; l++) sum += lanes[l];
#endif
        for (; c < k; c++) {
            z[c] = expf(z[c] - mx);
            sum += z[c];
        }
        ob->loss[r] = log(sum) + mx - zy;
        float inv = (float)(1.0 / sum);
        for (c = 0; c < k; c++) z[c] *= inv;
        z[y] -= 1.0f;
    }
}

/* f and its gradient at theta = [W (k x d), b (k)], in the centred
 * coordinates of logreg.h. */
static sdc_status objective_fg(void *p, const double *theta, double *f, double *g, sdc_err *err) {
    objective *ob = p;
    const logreg_data *D = ob->data;
    int d = D->d, k = D->k;
    const double *W = theta, *b = theta + (size_t)k * d;
    double pen = 0;
    for (int c = 0; c < k; c++) {
        double wmu = 0;
        for (int i = 0; i < d; i++) {
            double w = W[(size_t)c * d + i];
            ob->wf[(size_t)c * d + i] = (float)w;
            wmu += w * ob->mu[i];
            pen += w * w;
        }
        ob->bf[c] = (float)(b[c] - wmu);
    }
    double *gb = g + (size_t)k * d, loss = 0;
    memset(gb, 0, sizeof *gb * (size_t)k);
    for (int64_t r0 = 0; r0 < D->n; r0 += ob->block) {
        int64_t rows = D->n - r0 < ob->block ? D->n - r0 : ob->block;
        const float *x = D->x + (size_t)r0 * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, k, d, 1.0f, x, d, ob->wf, d,
                    0.0f, ob->z, k);
        rows_job j = {ob, r0};
        sdc_parallel_for(rows, 64, softmax_rows, &j);
        for (int64_t r = 0; r < rows; r++) { /* in row order: the same sums at any thread count */
            loss += ob->loss[r];
            const float *z = ob->z + (size_t)r * k;
            for (int c = 0; c < k; c++) gb[c] += z[c];
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, (int)rows, 1.0f, ob->z, k, x, d,
                    r0 ? 1.0f : 0.0f, ob->gw, d);
    }

    double inv_n = 1.0 / (double)D->n;
    *f = loss * inv_n + 0.5 * ob->lambda * pen;
    if (!isfinite(*f)) return sdc_err_set(err, SDC_ERR_NUMERIC, "logistic regression: the loss is not finite");
    for (int c = 0; c < k; c++) {
        gb[c] *= inv_n;
        for (int i = 0; i < d; i++) {
            size_t at = (size_t)c * d + i;
            g[at] = ob->gw[at] * inv_n - gb[c] * ob->mu[i] + ob->lambda * W[at];
        }
    }
    return SDC_OK;
}

static sdc_status check_data(const logreg_data *D, sdc_err *err) {
    if (D->n < 1 || D->d < 1 || D->k < 2)
        return sdc_err_set(err, SDC_ERR_ARG, "logistic regression: needs rows, features and two classes "
                           "(got %lld x %d, %d classes)", (long long)D->n, D->d, D->k);
    if (D->n > INT32_MAX || (int64_t)D->k * D->d > INT32_MAX)
        return sdc_err_set(err, SDC_ERR_ARG, "logistic regression: %lld rows x %d classes x %d features "
                           "is too large", (long long)D->n, D->k, D->d);
    for (int64_t r = 0; r < D->n; r++) {
        if (D->y[r] < 0 || D->y[r] >= D->k)
            return sdc_err_set(err, SDC_ERR_ARG, "logistic regression: row %lld has label %d, not in [0, %d)",
                               (long long)r, D->y[r], D->k);
        for (int i = 0; i < D->d; i++)
            if (!isfinite(D->x[(size_t)r * D->d + i]))
                return sdc_err_set(err, SDC_ERR_NUMERIC, "logistic regression: row %lld, feature %d is not finite",
                                   (long long)r, i);
    }
    return SDC_OK;
}

/* max|g| at W = 0, b = 0, in closed form (every class equally likely):
 * g_W[c] = -(n_c / n)(mu_c - mu) and g_b[c] = 1/k - n_c / n. The tolerance
 * is relative to it: a scale of the problem that a start elsewhere (init)
 * does not move. */
static sdc_status grad0_max(const logreg_data *D, double *out, sdc_err *err) {
    int d = D->d, k = D->k;
    double *sum = calloc((size_t)k * d, sizeof *sum), *all = calloc((size_t)d, sizeof *all);
    int64_t *cnt = calloc((size_t)k, sizeof *cnt);
    if (!sum || !all || !cnt) {
        free(sum), free(all), free(cnt);
        return sdc_err_set(err, SDC_ERR_OOM, "logistic regression: out of memory");
    }
    for (int64_t r = 0; r < D->n; r++) {
        cnt[D->y[r]]++;
        for (int i = 0; i < d; i++) {
            double v = D->x[(size_t)r * d + i];
            sum[(size_t)D->y[r] * d + i] += v;
            all[i] += v;
        }
    }
    double m = 0, n = (double)D->n;
    for (int c = 0; c < k; c++) {
        m = fmax(m, fabs(1.0 / k - cnt[c] / n));
        for (int i = 0; i < d; i++) m = fmax(m, fabs(sum[(size_t)c * d + i] - cnt[c] / n * all[i]) / n);
    }
    free(sum), free(all), free(cnt);
    *out = m;
    return SDC_OK;
}

/* One minimization over D with penalty lambda, from init (uncentred; NULL:
 * zeros) until max|g| <= gtol. */
static sdc_status fit_level(const logreg_data *D, double lambda, const logreg_model *init, double gtol,
                            int max_iter, logreg_model *m, lbfgs_result *info, sdc_err *err) {
    int d = D->d, k = D->k;
    int64_t nparam = (int64_t)k * d + k;
    objective ob = {.data = D, .lambda = lambda};
    ob.block = BLOCK_BYTES / ((int64_t)k * (int64_t)sizeof(float));
    if (ob.block < 64) ob.block = 64;
    if (ob.block > D->n) ob.block = D->n;
    ob.mu = calloc((size_t)d, sizeof *ob.mu);
    ob.wf = malloc(sizeof *ob.wf * (size_t)k * d);
    ob.bf = malloc(sizeof *ob.bf * (size_t)k);
    ob.gw = malloc(sizeof *ob.gw * (size_t)k * d);
    ob.z = malloc(sizeof *ob.z * (size_t)ob.block * k);
    ob.loss = malloc(sizeof *ob.loss * (size_t)ob.block);
    double *theta = calloc((size_t)nparam, sizeof *theta);
    m->w = malloc(sizeof *m->w * (size_t)k * d);
    m->b = malloc(sizeof *m->b * (size_t)k);
    m->d = d;
    m->k = k;
    sdc_status s = SDC_OK;
    if (!ob.mu || !ob.wf || !ob.bf || !ob.gw || !ob.z || !ob.loss || !theta || !m->w || !m->b) {
        s = sdc_err_set(err, SDC_ERR_OOM, "logistic regression: out of memory (%d classes x %d features)", k, d);
        goto done;
    }
    for (int64_t r = 0; r < D->n; r++)
        for (int i = 0; i < d; i++) ob.mu[i] += D->x[(size_t)r * d + i];
    for (int i = 0; i < d; i++) ob.mu[i] /= (double)D->n;
    for (int c = 0; init && c < k; c++) { /* centred: b~ = b + W mu */
        double wmu = 0;
        for (int i = 0; i < d; i++) {
            theta[(size_t)c * d + i] = init->w[(size_t)c * d + i];
            wmu += init->w[(size_t)c * d + i] * ob.mu[i];
        }
        theta[(size_t)k * d + c] = init->b[c] + wmu;
    }
    lbfgs_opts lo = lbfgs_defaults();
    lo.max_iter = max_iter;
    lo.gtol = gtol;
    lbfgs_result res;
    if ((s = lbfgs_minimize(nparam, theta, objective_fg, &ob, &lo, &res, err))) goto done;
    if (info) *info = res;
    /* Back to uncentred coordinates: b = b~ - W mu, then mean 0. */
    double bmean = 0;
    for (int c = 0; c < k; c++) {
        double wmu = 0;
        for (int i = 0; i < d; i++) {
            m->w[(size_t)c * d + i] = theta[(size_t)c * d + i];
            wmu += theta[(size_t)c * d + i] * ob.mu[i];
        }
        m->b[c] = theta[(size_t)k * d + c] - wmu;
        bmean += m->b[c] / k;
    }
    for (int c = 0; c < k; c++) m->b[c] -= bmean;
done:
    free(ob.mu), free(ob.wf), free(ob.bf), free(ob.gw), free(ob.z), free(ob.loss), free(theta);
    if (s) logreg_free(m);
    return s;
}

sdc_status logreg_fit(const logreg_data *D, const logreg_opts *o, logreg_model *m,
                      lbfgs_result *info, sdc_err *err) {
    *m = (logreg_model){0};
    if (!(o->C > 0) || !isfinite(o->C))
        return sdc_err_set(err, SDC_ERR_ARG, "logistic regression: C = %g must be positive", o->C);
    sdc_status s = check_data(D, err);
    if (s) return s;
    double g0 = 0;
    if ((s = grad0_max(D, &g0, err))) return s;
    return fit_level(D, 1.0 / (o->C * (double)D->n), NULL, o->tol * g0, o->max_iter, m, info, err);
}

void logreg_free(logreg_model *m) {
    free(m->w);
    free(m->b);
    *m = (logreg_model){0};
}

sdc_status logreg_predict(const logreg_model *m, const float *x, int64_t n, int *pred, sdc_err *err) {
    int d = m->d, k = m->k;
    int64_t block = BLOCK_BYTES / ((int64_t)k * (int64_t)sizeof(float));
    if (block < 1) block = 1;
    float *wf = malloc(sizeof *wf * (size_t)k * d), *z = malloc(sizeof *z * (size_t)block * k);
    if (!wf || !z) {
        free(wf), free(z);
        return sdc_err_set(err, SDC_ERR_OOM, "logistic regression: out of memory");
    }
    for (size_t i = 0; i < (size_t)k * d; i++) wf[i] = (float)m->w[i];
    for (int64_t r0 = 0; r0 < n; r0 += block) {
        int64_t rows = n - r0 < block ? n - r0 : block;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, k, d, 1.0f, x + (size_t)r0 * d, d,
                    wf, d, 0.0f, z, k);
        for (int64_t r = 0; r < rows; r++) {
            int best = 0;
            double bv = -INFINITY;
            for (int c = 0; c < k; c++) {
                double v = (double)z[(size_t)r * k + c] + m->b[c];
                if (v > bv) bv = v, best = c;
            }
            pred[r0 + r] = best;
        }
    }
    free(wf);
    free(z);
    return SDC_OK;
}
