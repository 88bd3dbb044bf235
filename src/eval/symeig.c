/* symeig.c — symmetric eigen-decomposition through LAPACK's dsyevd (see
 * symeig.h). */
#include "symeig.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (column-major Fortran). The trailing size_t are gfortran's hidden
 * lengths of the two CHARACTER arguments: omitting them is undefined. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

sdc_status sym_eig(double *a, int n, double *w, bool vectors, sdc_err *err) {
    if (n < 1) return sdc_err_set(err, SDC_ERR_ARG, "eigen-decomposition of a %d x %d matrix", n, n);
    for (size_t i = 0; i < (size_t)n * n; i++)
        if (!isfinite(a[i])) return sdc_err_set(err, SDC_ERR_NUMERIC, "eigen-decomposition: the matrix is not finite");
    /* Row-major symmetric = column-major symmetric: "L" in Fortran's view is
     * our upper triangle; eigenvectors come back as Fortran columns, which
     * are our rows. */
    const char jobz = vectors ? 'V' : 'N', uplo = 'L';
    int info = 0, lwork = -1, liwork = -1, iq;
    double wq;
    dsyevd_(&jobz, &uplo, &n, a, &n, w, &wq, &lwork, &iq, &liwork, &info, 1, 1);
    if (info) return sdc_err_set(err, SDC_ERR_NUMERIC, "eigen-decomposition: workspace query failed (info %d)", info);
    lwork = (int)wq;
    liwork = iq;
    double *work = malloc(sizeof *work * (size_t)lwork);
    int *iwork = malloc(sizeof *iwork * (size_t)liwork);
    if (!work || !iwork) {
        free(work), free(iwork);
        return sdc_err_set(err, SDC_ERR_OOM, "eigen-decomposition: out of memory (%d x %d)", n, n);
    }
    dsyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work), free(iwork);
    if (info)
        return sdc_err_set(err, SDC_ERR_NUMERIC, "eigen-decomposition of a %d x %d matrix did not converge "
                           "(LAPACK info %d)", n, n, info);
    return SDC_OK;
}

sdc_status sym_sqrt_psd(double *a, int n, sdc_err *err) {
    double *w = malloc(sizeof *w * (size_t)n), *vs = malloc(sizeof *vs * (size_t)n * n);
    if (!w || !vs) {
        free(w), free(vs);
        return sdc_err_set(err, SDC_ERR_OOM, "matrix square root: out of memory (%d x %d)", n, n);
    }
    sdc_status s = sym_eig(a, n, w, true, err);
    if (!s) {
        /* a = Vᵀ diag(sqrt w) V with V's rows the eigenvectors: scale rows, then one GEMM. */
        memcpy(vs, a, sizeof *vs * (size_t)n * n);
        for (int i = 0; i < n; i++) {
            double r = sqrt(fmax(w[i], 0.0));
            for (int j = 0; j < n; j++) vs[(size_t)i * n + j] *= r;
        }
        double *v = malloc(sizeof *v * (size_t)n * n);
        if (!v) {
            s = sdc_err_set(err, SDC_ERR_OOM, "matrix square root: out of memory (%d x %d)", n, n);
        } else {
            memcpy(v, a, sizeof *v * (size_t)n * n);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0, v, n, vs, n, 0.0, a, n);
            free(v);
        }
    }
    free(w), free(vs);
    return s;
}
