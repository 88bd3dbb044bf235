/* op_fd.h — proves the backward references of op_ref.c: each backward op's
 * double reference against central differences of its forward op's double
 * reference, L(x) = <dy, forward(x)>, dL/dx_e ≈ (L(x + h·e) - L(x - h·e)) / 2h,
 * on double copies of a row's inputs (so the steps are exact). */
#ifndef SDC_TEST_OP_FD_H
#define SDC_TEST_OP_FD_H

#include "op_cases.h"

/* True for the backward kinds that have a forward counterpart (all but slice,
 * which only moves data and is checked against its plain reference). */
bool op_fd_applies(sdc_op_kind k);

/* Builds row c's inputs (from seed, at the row's own shape), and compares
 * every output element of its backward reference, or max_probes of them per
 * output spread evenly, with central differences: e gets the max-abs and
 * rel-L2 of the analytic gradient against the differences. Returns false when
 * c's kind does not apply or memory runs out (err says which). */
bool op_fd_check(const op_case *c, uint64_t seed, int max_probes, op_error *e, sdc_err *err);

#endif
