/* probe.c — splits, leak-free training sets and the seeds x methods table
 * of the linear probe (see probe.h). */
#include "probe.h"
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

probe_opts probe_defaults(void) {
    return (probe_opts){.val_split = 0.2, .seeds = 5, .seed = 0, .lr = logreg_defaults()};
}

static const char *class_name(const probe_input *in, int c) {
    static char buf[32];
    if (in->class_names) return in->class_names[c];
    snprintf(buf, sizeof buf, "%d", c);
    return buf;
}

sdc_status probe_split(const probe_input *in, double val_split, uint64_t seed, int s, unsigned char *is_val,
                       sdc_err *err) {
    int64_t *idx = malloc(sizeof *idx * (size_t)(in->n_real ? in->n_real : 1));
    if (!idx) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    memset(is_val, 0, (size_t)in->n_real);
    sdc_status st = SDC_OK;
    for (int c = 0; !st && c < in->k; c++) {
        int64_t n = 0;
        for (int64_t i = 0; i < in->n_real; i++)
            if (in->real_cls[i] == c) idx[n++] = i;
        int64_t nv = (int64_t)llround(val_split * (double)n);
        if (nv < 1) nv = 1;
        if (n - nv < 1) {
            st = sdc_err_set(err, SDC_ERR_ARG, "class '%s' has %lld real image%s: a validation split of %g "
                             "would leave its %s empty (each class needs 2 or more images)", class_name(in, c),
                             (long long)n, n == 1 ? "" : "s", val_split, n ? "training set" : "validation set");
            break;
        }
        /* Per class and seed its own stream: adding a class does not reshuffle the others. */
        eval_rng r = eval_rng_seed(seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(s + 1), (uint64_t)c);
        for (int64_t i = 0; i < nv; i++) {
            int64_t j = i + (int64_t)eval_rng_below(&r, (uint64_t)(n - i)), t = idx[i];
            idx[i] = idx[j], idx[j] = t;
            is_val[idx[i]] = 1;
        }
    }
    free(idx);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Is sha one of the sorted val hashes? */
static bool in_sorted(const char *const *v, int64_t n, const char *sha) {
    return sha && n && bsearch(&sha, v, (size_t)n, sizeof *v, cmp_str);
}

typedef struct fit_buf {
    float *x;
    int *y;
    int64_t n;
} fit_buf;

static void add_row(fit_buf *b, const float *x, int y, int d) {
    memcpy(b->x + (size_t)b->n * d, x, sizeof *x * (size_t)d);
    b->y[b->n++] = y;
}

/* Trains on b, scores on the held-out rows: top-1 into *acc. */
static sdc_status fit_score(const probe_input *in, const probe_opts *o, const fit_buf *b, const fit_buf *val,
                            double *acc, lbfgs_result *info, sdc_err *err) {
    logreg_data data = {b->x, b->y, b->n, in->d, in->k};
    logreg_model m;
    sdc_status s = logreg_fit(&data, &o->lr, &m, info, err);
    int *pred = s ? NULL : malloc(sizeof *pred * (size_t)val->n);
    if (!s && !pred) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s) s = logreg_predict(&m, val->x, val->n, pred, err);
    int64_t right = 0;
    for (int64_t i = 0; !s && i < val->n; i++) right += pred[i] == val->y[i];
    if (!s) *acc = (double)right / (double)val->n;
    free(pred);
    logreg_free(&m);
    return s;
}

sdc_status probe_run(const probe_input *in, const probe_opts *o, probe_result *r, sdc_err *err) {
    *r = (probe_result){.n_methods = 1 + in->n_sets, .seeds = o->seeds};
    if (!(o->val_split > 0 && o->val_split < 1) || o->seeds < 1)
        return sdc_err_set(err, SDC_ERR_ARG, "probe: validation split %g must be in (0, 1) and seeds %d >= 1",
                           o->val_split, o->seeds);
    for (int j = 0; j < in->n_sets; j++)
        for (int64_t i = 0; i < in->sets[j].n; i++)
            if (in->sets[j].cls[i] < 0 || in->sets[j].cls[i] >= in->k ||
                in->sets[j].source[i] >= in->n_real)
                return sdc_err_set(err, SDC_ERR_ARG, "probe: %s, row %lld: class or source out of range",
                                   in->sets[j].label, (long long)i);
    int64_t most = 0;
    for (int j = 0; j < in->n_sets; j++) most = in->sets[j].n > most ? in->sets[j].n : most;
    int d = in->d, M = r->n_methods;
    r->m = calloc((size_t)M, sizeof *r->m);
    r->top1 = calloc((size_t)M * o->seeds, sizeof *r->top1);
    unsigned char *is_val = malloc((size_t)(in->n_real ? in->n_real : 1));
    const char **val_sha = malloc(sizeof *val_sha * (size_t)(in->n_real ? in->n_real : 1));
    fit_buf tr = {.x = malloc(sizeof(float) * (size_t)(in->n_real + most) * d),
                  .y = malloc(sizeof(int) * (size_t)(in->n_real + most))};
    fit_buf val = {.x = malloc(sizeof(float) * (size_t)in->n_real * d),
                   .y = malloc(sizeof(int) * (size_t)(in->n_real ? in->n_real : 1))};
    int64_t *origin = malloc(sizeof *origin * (size_t)(most ? most : 1)); /* output row of each synthetic training row */
    double *left_src = calloc((size_t)M, sizeof *left_src), *left_copy = calloc((size_t)M, sizeof *left_copy);
    double *train_n = calloc((size_t)M, sizeof *train_n);
    sdc_status s = SDC_OK;
    if (!r->m || !r->top1 || !is_val || !val_sha || !tr.x || !tr.y || !val.x || !val.y || !origin || !left_src ||
        !left_copy || !train_n)
        s = sdc_err_set(err, SDC_ERR_OOM, "probe: out of memory (%lld real rows, %lld outputs)",
                        (long long)in->n_real, (long long)most);
    int done = 0, total = o->seeds * M;
    for (int seed = 0; !s && seed < o->seeds; seed++) {
        if ((s = probe_split(in, o->val_split, o->seed, seed, is_val, err))) break;
        val.n = 0;
        int64_t nvs = 0;
        for (int64_t i = 0; i < in->n_real; i++)
            if (is_val[i]) {
                add_row(&val, in->real + (size_t)i * d, in->real_cls[i], d);
                if (in->real_sha256) val_sha[nvs++] = in->real_sha256[i];
            }
        if (nvs) qsort(val_sha, (size_t)nvs, sizeof *val_sha, cmp_str);
        r->n_val = val.n;
        for (int j = 0; !s && j < M; j++) {
            tr.n = 0;
            for (int64_t i = 0; i < in->n_real; i++)
                if (!is_val[i]) add_row(&tr, in->real + (size_t)i * d, in->real_cls[i], d);
            r->n_train_real = tr.n;
            const probe_set *ps = j ? &in->sets[j - 1] : NULL;
            int64_t n_syn = 0;
            for (int64_t i = 0; ps && i < ps->n; i++) {
                const char *sha = ps->sha256 ? ps->sha256[i] : NULL;
                if (ps->source[i] >= 0 && is_val[ps->source[i]]) { left_src[j]++; continue; }
                if (in_sorted(val_sha, nvs, sha)) { left_copy[j]++; continue; }
                add_row(&tr, ps->x + (size_t)i * d, ps->cls[i], d);
                origin[n_syn++] = i;
            }
            /* The check, on what was assembled: every synthetic training row
             * traced back to its output, whose source and content must not
             * be held out. A leak stops the run; it never becomes a number. */
            for (int64_t t = 0; ps && t < n_syn; t++) {
                int64_t i = origin[t], src = ps->source[i];
                if ((src >= 0 && is_val[src]) || in_sorted(val_sha, nvs, ps->sha256 ? ps->sha256[i] : NULL))
                    s = sdc_err_set(err, SDC_ERR_ARG, "probe: %s, output %lld would train on a held-out image "
                                    "(seed %d)", ps->label, (long long)i, seed);
            }
            if (s) break;
            train_n[j] += (double)tr.n;
            lbfgs_result info;
            if ((s = fit_score(in, o, &tr, &val, &r->top1[(size_t)j * o->seeds + seed], &info, err))) {
                sdc_err_wrap(err, "probe (%s, seed %d)", j ? ps->label : "real only", seed);
                break;
            }
            if (info.iters > r->m[j].max_iters) r->m[j].max_iters = info.iters;
            if (info.stop == LBFGS_MAX_ITER) r->m[j].unconverged++;
            if (o->progress) o->progress(o->ctx, ++done, total);
        }
    }
    for (int j = 0; !s && j < M; j++) {
        probe_method *pm = &r->m[j];
        pm->label = j ? in->sets[j - 1].label : "real only";
        eval_mean_std(r->top1 + (size_t)j * o->seeds, o->seeds, &pm->top1_mean, &pm->top1_std);
        double *g = malloc(sizeof *g * (size_t)o->seeds);
        if (!g) { s = sdc_err_set(err, SDC_ERR_OOM, "out of memory"); break; }
        for (int t = 0; t < o->seeds; t++) g[t] = r->top1[(size_t)j * o->seeds + t] - r->top1[t];
        eval_mean_std(g, o->seeds, &pm->gain_mean, &pm->gain_std);
        free(g);
        pm->train_mean = train_n[j] / o->seeds;
        pm->left_out_source = left_src[j] / o->seeds;
        pm->left_out_copy = left_copy[j] / o->seeds;
    }
    free(is_val), free(val_sha), free(tr.x), free(tr.y), free(val.x), free(val.y), free(origin);
    free(left_src), free(left_copy), free(train_n);
    if (s) probe_result_free(r);
    return s;
}

void probe_result_free(probe_result *r) {
    free(r->m);
    free(r->top1);
    *r = (probe_result){0};
}
