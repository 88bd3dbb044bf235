/* symeig.h — eigenvalues (and optionally eigenvectors) of a real symmetric
 * matrix in double precision, through LAPACK's divide-and-conquer dsyevd
 * from the OpenBLAS build sdc already links (no new library: Debian's
 * libopenblas0 carries LAPACK; there is no LAPACKE header, so the Fortran
 * symbol is declared here with gfortran's hidden string lengths). The
 * matrix square roots of FID are built on it. */
#ifndef SDC_EVAL_SYMEIG_H
#define SDC_EVAL_SYMEIG_H

#include "sdc.h"

#include <stdbool.h>

/* a: [n, n] symmetric (row-major; only one triangle is read). w: [n]
 * eigenvalues, ascending. With vectors, a is overwritten so that row i of
 * a is the unit eigenvector of w[i]; without, a is clobbered. */
sdc_status sym_eig(double *a, int n, double *w, bool vectors, sdc_err *err);

/* The symmetric square root of a positive semi-definite a [n, n] in place:
 * V diag(sqrt(max(w, 0))) Vᵀ (negative eigenvalues are rounding: clamped). */
sdc_status sym_sqrt_psd(double *a, int n, sdc_err *err);

#endif
