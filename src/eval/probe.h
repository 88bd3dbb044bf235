/* probe.h — the linear-probe table of `sdc probe`: does adding a method's
 * synthetic images to the real training images raise top-1 accuracy on
 * held-out real images? (The study's comparison, in miniature.)
 *
 *     probe_input in = {.k = n_classes, .d = 768, .real = x, .real_cls = y, .n_real = n,
 *                       .sets = sets, .n_sets = n_methods};
 *     probe_opts o = probe_defaults();                 // 20 % validation, 5 seeds, C = 1
 *     probe_result r;
 *     if (probe_run(&in, &o, &r, &err)) ...
 *     r.m[0]: real only; r.m[1 + j]: real + sets[j]  (top-1 mean ± std, gain)
 *
 * Per seed, each class's real images are shuffled and round(val_split · n_c)
 * of them (at least 1) are held out; the rest train. Every method is trained
 * on the same real training images plus its outputs, and all are scored on
 * the same held-out images, so the gain over real-only is paired per seed.
 * Held-out images are never seen by a generator: an output made from one
 * (its manifest's source), or whose content equals one (a retrieved copy),
 * is left out of that seed's training set and counted; the assembled
 * training set is then checked once more against the held-out set, and a
 * leak is an error, never a number. */
#ifndef SDC_EVAL_PROBE_H
#define SDC_EVAL_PROBE_H

#include "logreg.h"

typedef struct probe_set {
    const char *label;
    const float *x;               /* [n, d] */
    const int *cls;               /* [n] */
    const int64_t *source;        /* [n] the real image each was made from, or -1 */
    const char *const *sha256;    /* [n] content hashes, or NULL */
    int64_t n;
} probe_set;

typedef struct probe_input {
    int k, d;
    const char *const *class_names;  /* [k], for messages */
    const float *real;               /* [n_real, d] */
    const int *real_cls;             /* [n_real] */
    const char *const *real_sha256;  /* [n_real] or NULL */
    int64_t n_real;
    const probe_set *sets;
    int n_sets;
} probe_input;

typedef struct probe_opts {
    double val_split;             /* fraction of each class held out, in (0, 1) */
    int seeds;                    /* splits (>= 1) */
    uint64_t seed;                /* base of the splits */
    logreg_opts lr;
    void (*progress)(void *ctx, int done, int total); /* after each fit (may be NULL) */
    void *ctx;
} probe_opts;

probe_opts probe_defaults(void);

typedef struct probe_method {
    const char *label;            /* "real only" or the set's */
    double top1_mean, top1_std;   /* over seeds, fractions */
    double gain_mean, gain_std;   /* top-1 minus real-only's, paired per seed */
    double train_mean;            /* training rows */
    double left_out_source;       /* outputs left out per seed: made from a held-out image */
    double left_out_copy;         /* ... whose content equals a held-out image */
    int max_iters;                /* most L-BFGS iterations of a fit */
    int unconverged;              /* fits that stopped at the iteration limit */
} probe_method;

typedef struct probe_result {
    int n_methods;                /* 1 + n_sets */
    probe_method *m;
    int seeds;
    double *top1;                 /* [n_methods, seeds] */
    int64_t n_val, n_train_real;  /* per seed */
} probe_result;

/* The split of seed number s: is_val[n_real] set to 1 for held-out images.
 * A class with fewer than 2 images cannot give both sides one: SDC_ERR_ARG
 * naming it. */
sdc_status probe_split(const probe_input *in, double val_split, uint64_t seed, int s, unsigned char *is_val,
                       sdc_err *err);

sdc_status probe_run(const probe_input *in, const probe_opts *o, probe_result *r, sdc_err *err);
void probe_result_free(probe_result *r);

#endif
