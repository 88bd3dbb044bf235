/* op_cases.h — the op table: every op of sdc_ops.h at SD 1.x's real shapes
 * plus edge cases, one row each with its tolerance and cost. The one table
 * drives the op test (tests/test_ops.c), the op bench (bench/ops.c) and a
 * backend's conformance run, through op_case_run() or the op_inst steps:
 *
 *     op_opts o = { .seed = op_seed() };
 *     op_error e;
 *     for (size_t i = 0; i < op_case_count; i++)
 *         op_case_run(&op_cases[i], &o, backend, &e, &err);  // vs the double reference
 */
#ifndef SDC_TEST_OP_CASES_H
#define SDC_TEST_OP_CASES_H

#include "op_ref.h"

/* add/mul: b's shape, given a's. */
typedef enum op_bcast {
    OP_B_SAME = 0, /* b like a */
    OP_B_NC11,     /* [N, C, 1, 1] for a [N, C, H, W] (time embedding into a ResNet) */
    OP_B_LAST,     /* rank 1: a's last dim (a bias over channels-last) */
    OP_B_SCALAR,   /* [1] */
    OP_B_RANK0,    /* rank 0 */
    OP_B_MID,      /* rank ndim-1, a's dims from 1 on, with the middle one 1 */
    OP_B_LEAD1,    /* a's rank and dims, but dim 0 is 1 */
} op_bcast;

typedef struct op_tol {
    double rel_l2, max_abs;
} op_tol;

/* One row. Every source's shape follows from the first source's (x, q, a,
 * t, ids, or a backward op's dy) and the row's extents, so a bench can
 * override that one shape (conv2d_backward rows with an in_h/in_w and slice
 * rows keep their params: override those shapes consistently). */
typedef struct op_case {
    const char *name;
    sdc_op op;           /* kind and params; sources and dst are filled at build */
    int ndim;            /* the first source's shape */
    int64_t shape[4];
    int64_t n;           /* conv2d: out channels; linear: out features; attention and
                            attention_backward: keys (0: as many as queries); concat: b's
                            channels; embedding: V; conv2d_backward: dx's channels;
                            linear_backward: dx's features */
    int64_t d;           /* embedding: row width D */
    int kh, kw;          /* conv2d kernel */
    bool bias;           /* conv2d, linear */
    sdc_dtype wtype;     /* weights (w, bias, gamma, beta, table); 0 is F32 */
    sdc_dtype from, to;  /* convert: source and dst dtypes */
    op_bcast bcast;      /* add, mul */
    bool inplace;        /* add, mul: dst aliases a */
    double xmean, xscale; /* first source's distribution, if xscale != 0 */
    op_tol tol;          /* {0, 0}: the op's default (op_case_tol) */
    int64_t san_shape[4]; /* "big" rows: the first source's shape under sanitizers */
} op_case;

extern const op_case op_cases[];
extern const size_t op_case_count;

/* The tolerance a row is held to (its own, or its op's default). */
op_tol op_case_tol(const op_case *c);
/* Whether the op's cost is counted in FLOPs (else it is memory-bound: bytes). */
bool op_case_compute_bound(sdc_op_kind k);

/* True when built with ASan (the big rows shrink to san_shape). */
#if defined(__SANITIZE_ADDRESS__)
#define OP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OP_SANITIZED 1
#endif
#endif
#ifndef OP_SANITIZED
#define OP_SANITIZED 0
#endif

/* The run's random seed: $SDC_TEST_SEED, else from the clock. */
uint64_t op_seed(void);

typedef struct op_opts {
    uint64_t seed;
    sdc_dtype act;      /* activation dtype on the backend; 0 is F32 */
    bool reduced;       /* use san_shape where a row has one */
    int ndim;           /* > 0: overrides the first source's shape */
    int64_t shape[4];
} op_opts;

/* A row built on a backend: host inputs (kept for the reference), device
 * copies, and the op over the device copies. */
typedef struct op_inst {
    const op_case *c;
    sdc_backend *be;
    sdc_op op;                         /* device tensors */
    sdc_tensor hsrc[SDC_OP_MAX_SRC];   /* host copies */
    sdc_tensor dsrc[SDC_OP_MAX_SRC];
    sdc_tensor hdst[SDC_OP_MAX_DST], ddst[SDC_OP_MAX_DST]; /* every output */
    int nsrc, ndst;
} op_inst;

/* Generates inputs (from o->seed and the row's name), uploads them and
 * NaN-fills dst so an element the op skips shows. */
sdc_status op_inst_build(op_inst *in, const op_case *c, const op_opts *o, sdc_backend *be,
                         sdc_err *err);
/* Runs the op once and waits for it. */
sdc_status op_inst_exec(op_inst *in, sdc_err *err);
/* Downloads every dst, runs the reference and compares (several outputs:
 * the worst of each metric over them). */
sdc_status op_inst_check(op_inst *in, op_error *e, sdc_err *err);
void op_inst_free(op_inst *in);
/* FLOPs (multiply-add = 2) and bytes read + written of one run. */
double op_inst_flops(const op_inst *in);
double op_inst_bytes(const op_inst *in);
/* "[2, 320, 64, 64]": the first source's shape as built. */
const char *op_inst_shape(const op_inst *in, char *buf, size_t cap);

/* build + exec + check + free. */
sdc_status op_case_run(const op_case *c, const op_opts *o, sdc_backend *be, op_error *e,
                       sdc_err *err);

#endif
