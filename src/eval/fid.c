/* fid.c — the Fréchet distance of two feature sets (see dist.h). */
#include "dist.h"
#include "symeig.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows converted to double per block for the covariance's dsyrk. */
#define COV_BLOCK 1024

sdc_status feat_stats_compute(const float *x, int64_t n, int d, feat_stats *s, sdc_err *err) {
    *s = (feat_stats){.d = d, .n = n};
    if (n < 2 || d < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "mean and covariance need 2 or more rows (got %lld)", (long long)n);
    s->mu = calloc((size_t)d, sizeof *s->mu);
    s->cov = calloc((size_t)d * d, sizeof *s->cov);
    double *blk = malloc(sizeof *blk * (size_t)COV_BLOCK * d);
    if (!s->mu || !s->cov || !blk) {
        free(blk);
        feat_stats_free(s);
        return sdc_err_set(err, SDC_ERR_OOM, "out of memory (covariance %d x %d)", d, d);
    }
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < d; i++) s->mu[i] += x[(size_t)r * d + i];
    for (int i = 0; i < d; i++) s->mu[i] /= (double)n;
    /* Two passes (centred rows), so a large common offset does not cancel. */
    for (int64_t r0 = 0; r0 < n; r0 += COV_BLOCK) {
        int64_t rows = n - r0 < COV_BLOCK ? n - r0 : COV_BLOCK;
        for (int64_t r = 0; r < rows; r++)
            for (int i = 0; i < d; i++) blk[r * d + i] = x[(size_t)(r0 + r) * d + i] - s->mu[i];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, (int)rows, 1.0, blk, d, 1.0, s->cov, d);
    }
    free(blk);
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            double v = s->cov[(size_t)i * d + j] / (double)(n - 1);
            s->cov[(size_t)i * d + j] = s->cov[(size_t)j * d + i] = v;
        }
    return SDC_OK;
}

void feat_stats_free(feat_stats *s) {
    free(s->mu);
    free(s->cov);
    *s = (feat_stats){0};
}

static double mean_term(const double *ma, const double *mb, int d) {
    double m = 0;
    for (int i = 0; i < d; i++) m += (ma[i] - mb[i]) * (ma[i] - mb[i]);
    return m;
}

/* Sum of sqrt(max(eig, 0)) of a symmetric PSD m [n, n] (clobbered). */
static sdc_status trace_sqrt(double *m, int n, double *out, sdc_err *err) {
    double *w = malloc(sizeof *w * (size_t)n);
    if (!w) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    sdc_status s = sym_eig(m, n, w, false, err);
    double t = 0;
    for (int i = 0; !s && i < n; i++) t += sqrt(fmax(w[i], 0.0));
    free(w);
    *out = t;
    return s;
}

sdc_status fid_from_stats(const feat_stats *a, const feat_stats *b, double *fid, sdc_err *err) {
    int d = a->d;
    if (b->d != d) return sdc_err_set(err, SDC_ERR_SHAPE, "FID: %d-d against %d-d features", d, b->d);
    size_t dd = (size_t)d * d;
    double *ra = malloc(sizeof *ra * dd), *t = malloc(sizeof *t * dd), *m = malloc(sizeof *m * dd);
    sdc_status s = SDC_OK;
    if (!ra || !t || !m) s = sdc_err_set(err, SDC_ERR_OOM, "FID: out of memory (%d x %d)", d, d);
    if (!s) {
        memcpy(ra, a->cov, sizeof *ra * dd);
        s = sym_sqrt_psd(ra, d, err);
    }
    if (!s) {
        /* m = S_a^1/2 S_b S_a^1/2, symmetrized against rounding. */
        cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, d, d, 1.0, b->cov, d, ra, d, 0.0, t, d);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, ra, d, t, d, 0.0, m, d);
        for (int i = 0; i < d; i++)
            for (int j = i + 1; j < d; j++) {
                double v = 0.5 * (m[(size_t)i * d + j] + m[(size_t)j * d + i]);
                m[(size_t)i * d + j] = m[(size_t)j * d + i] = v;
            }
        double tr = 0, tra = 0, trb = 0;
        if (!(s = trace_sqrt(m, d, &tr, err))) {
            for (int i = 0; i < d; i++) tra += a->cov[(size_t)i * d + i], trb += b->cov[(size_t)i * d + i];
            *fid = mean_term(a->mu, b->mu, d) + tra + trb - 2 * tr;
        }
    }
    free(ra), free(t), free(m);
    return s;
}

/* Centred rows of x [n, d] in double, and their mean. */
static double *centred(const float *x, int64_t n, int d, double *mu) {
    double *c = malloc(sizeof *c * (size_t)n * d);
    if (!c) return NULL;
    for (int i = 0; i < d; i++) mu[i] = 0;
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < d; i++) mu[i] += x[(size_t)r * d + i];
    for (int i = 0; i < d; i++) mu[i] /= (double)n;
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < d; i++) c[(size_t)r * d + i] = x[(size_t)r * d + i] - mu[i];
    return c;
}

sdc_status fid_compute_gram(const float *a, int64_t na, const float *b, int64_t nb, int d,
                            double *fid, sdc_err *err) {
    if (na < 2 || nb < 2)
        return sdc_err_set(err, SDC_ERR_ARG, "FID needs 2 or more rows per set (got %lld and %lld)",
                           (long long)na, (long long)nb);
    if (na > 20000 || nb > 20000)
        return sdc_err_set(err, SDC_ERR_ARG, "FID: %lld x %lld rows is too large for the small-matrix route",
                           (long long)na, (long long)nb);
    /* Let a be the smaller set: the eigenproblem is min(na, nb) square. */
    if (nb < na) {
        const float *tp = a; a = b; b = tp;
        int64_t tn = na; na = nb; nb = tn;
    }
    double *mua = malloc(sizeof *mua * (size_t)d), *mub = malloc(sizeof *mub * (size_t)d);
    double *ca = mua ? centred(a, na, d, mua) : NULL, *cb = mub ? centred(b, nb, d, mub) : NULL;
    double *g = malloc(sizeof *g * (size_t)na * nb), *m = malloc(sizeof *m * (size_t)na * na);
    sdc_status s = SDC_OK;
    if (!mua || !mub || !ca || !cb || !g || !m) s = sdc_err_set(err, SDC_ERR_OOM, "FID: out of memory");
    if (!s) {
        double scale = 1.0 / ((double)(na - 1) * (double)(nb - 1)), tra = 0, trb = 0, tr = 0;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)na, (int)nb, d, 1.0, ca, d, cb, d, 0.0, g, (int)nb);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)na, (int)nb, scale, g, (int)nb, 0.0, m, (int)na);
        if (!(s = trace_sqrt(m, (int)na, &tr, err))) {
            for (size_t i = 0; i < (size_t)na * d; i++) tra += ca[i] * ca[i];
            for (size_t i = 0; i < (size_t)nb * d; i++) trb += cb[i] * cb[i];
            *fid = mean_term(mua, mub, d) + tra / (double)(na - 1) + trb / (double)(nb - 1) - 2 * tr;
        }
    }
    free(mua), free(mub), free(ca), free(cb), free(g), free(m);
    return s;
}

sdc_status fid_compute(const float *a, int64_t na, const float *b, int64_t nb, int d, double *fid,
                       sdc_err *err) {
    if (na < 2 || nb < 2)
        return sdc_err_set(err, SDC_ERR_ARG, "FID needs 2 or more rows per set (got %lld and %lld)",
                           (long long)na, (long long)nb);
    if (na < d || nb < d) return fid_compute_gram(a, na, b, nb, d, fid, err);
    feat_stats sa, sb = {0};
    sdc_status s = feat_stats_compute(a, na, d, &sa, err);
    if (!s) s = feat_stats_compute(b, nb, d, &sb, err);
    if (!s) s = fid_from_stats(&sa, &sb, fid, err);
    feat_stats_free(&sa);
    feat_stats_free(&sb);
    return s;
}
