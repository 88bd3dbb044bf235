/* report.c — the numbers of the per-class quality report (see report.h). */
#include "report.h"
#include "dist.h"
#include "stats.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

report_opts report_defaults(void) {
    return (report_opts){.dedup = 0.94, .kid_subsets = 100, .kid_size = 1000, .seed = 0};
}

static report_stats empty_stats(void) {
    return (report_stats){.clip_score = NAN, .zero_shot = NAN, .fid = NAN, .fid_class_mean = NAN, .kid = NAN,
                          .kid_std = NAN, .diversity = NAN, .near_dup = NAN};
}

/* Rows of x [n, d] whose class is c (all rows when c < 0) into out. */
static int64_t gather(const feat_group *g, int c, int d, float *out) {
    int64_t m = 0;
    for (int64_t i = 0; i < g->n; i++)
        if (c < 0 || g->items[i].cls == c) memcpy(out + (size_t)m++ * d, g->x + (size_t)i * d, sizeof *out * (size_t)d);
    return m;
}

/* CLIP score and zero-shot accuracy of rows x [n, d] of class c (all rows:
 * cls[i] per row when c < 0); cosines by sgemm in blocks of rows. */
static sdc_status text_stats(const float *x, int64_t n, const int *cls, int c, const float *q, int k, int d,
                             report_stats *st, sdc_err *err) {
    enum { ROWS = 1024 };
    float *sim = malloc(sizeof *sim * (size_t)ROWS * k);
    if (!sim) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    double score = 0;
    int64_t right = 0;
    for (int64_t r0 = 0; r0 < n; r0 += ROWS) {
        int rows = (int)(n - r0 < ROWS ? n - r0 : ROWS);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, k, d, 1.0f, x + (size_t)r0 * d, d, q, d, 0.0f,
                    sim, k);
        for (int i = 0; i < rows; i++) {
            const float *v = sim + (size_t)i * k;
            int own = c >= 0 ? c : cls[r0 + i], best = 0;
            for (int j = 1; j < k; j++)
                if (v[j] > v[best]) best = j;
            score += 100.0 * fmax(v[own], 0.0);
            right += best == own;
        }
    }
    free(sim);
    st->clip_score = n ? score / (double)n : NAN;
    st->zero_shot = n ? (double)right / (double)n : NAN;
    return SDC_OK;
}

/* FID, KID, diversity and near-duplicates of rows x [n, d] against real [nr, d]. */
static sdc_status dist_stats(const float *x, int64_t n, const float *real, int64_t nr, const float *all_real,
                             int64_t n_all_real, int d, const report_opts *o, uint64_t seed, report_stats *st,
                             sdc_err *err) {
    sdc_status s = SDC_OK;
    st->diversity = eval_mean_pairwise_cos(x, n, d);
    if (n >= 2 && nr >= 2) {
        if ((s = fid_compute(real, nr, x, n, d, &st->fid, err))) return s;
        kid_opts ko = {.subsets = o->kid_subsets, .subset_size = o->kid_size, .seed = seed};
        kid_result kr;
        if ((s = kid_compute(real, nr, x, n, d, &ko, &kr, NULL, err))) return s;
        st->kid = kr.mean, st->kid_std = kr.std, st->kid_subsets = kr.subsets, st->kid_size = kr.subset_size;
    }
    if (!all_real || !n) return SDC_OK;
    float *best = malloc(sizeof *best * (size_t)n);
    if (!best) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!(s = eval_nearest_cos(x, n, all_real, n_all_real, d, best, err))) {
        int64_t dup = 0;
        for (int64_t i = 0; i < n; i++) dup += best[i] >= o->dedup;
        st->near_dup = (double)dup / (double)n;
    }
    free(best);
    return s;
}

static sdc_status group_stats(const feat_set *fs, const feat_group *g, bool is_real, const float *q,
                              const report_opts *o, uint64_t seed, float *buf, float *rbuf, int *cls,
                              report_group *rg, sdc_err *err) {
    int k = fs->data.n_classes, d = fs->dim;
    rg->label = g->label, rg->method = g->method, rg->dir = g->dir, rg->failed = g->n_failed;
    if (!(rg->cls = malloc(sizeof *rg->cls * (size_t)k))) return sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    sdc_status s = SDC_OK;
    double fid_sum = 0, div_sum = 0;
    int fid_n = 0, div_n = 0;
    for (int c = 0; !s && c < k; c++) {
        report_stats *st = &rg->cls[c];
        *st = empty_stats();
        int64_t n = gather(g, c, d, buf), nr = gather(&fs->real, c, d, rbuf);
        st->count = n;
        st->rejected = g->n_rejected ? g->n_rejected[c] : 0;
        if ((s = text_stats(buf, n, NULL, c, q, k, d, st, err))) break;
        if (is_real) {
            st->diversity = eval_mean_pairwise_cos(buf, n, d);
        } else {
            s = dist_stats(buf, n, rbuf, nr, fs->real.x, fs->real.n, d, o, seed + (uint64_t)c, st, err);
            if (!isnan(st->fid)) fid_sum += st->fid, fid_n++;
        }
        if (!isnan(st->diversity)) div_sum += st->diversity, div_n++;
    }
    report_stats *all = &rg->all;
    *all = empty_stats();
    for (int64_t i = 0; i < g->n; i++) cls[i] = g->items[i].cls;
    all->count = g->n;
    for (int c = 0; c < k; c++) all->rejected += rg->cls[c].rejected;
    if (!s) s = text_stats(g->x, g->n, cls, -1, q, k, d, all, err);
    if (!s && !is_real) {
        s = dist_stats(g->x, g->n, fs->real.x, fs->real.n, fs->real.x, fs->real.n, d, o, seed + 0xA11, all, err);
        all->fid_class_mean = fid_n ? fid_sum / fid_n : NAN;
    }
    all->diversity = div_n ? div_sum / div_n : NAN; /* within classes: pooled pairs would mix them */
    return s;
}

sdc_status report_compute(const feat_set *fs, const float *queries, const report_opts *o, report *r,
                          sdc_err *err) {
    *r = (report){.k = fs->data.n_classes, .data = &fs->data, .n_outs = fs->n_outs, .dedup = o->dedup};
    int64_t most = fs->real.n;
    for (int j = 0; j < fs->n_outs; j++) most = fs->outs[j].n > most ? fs->outs[j].n : most;
    float *buf = malloc(sizeof *buf * (size_t)(most + 1) * fs->dim);
    float *rbuf = malloc(sizeof *rbuf * (size_t)(fs->real.n + 1) * fs->dim);
    int *cls = malloc(sizeof *cls * (size_t)(most + 1));
    r->outs = calloc((size_t)(fs->n_outs ? fs->n_outs : 1), sizeof *r->outs);
    sdc_status s = buf && rbuf && cls && r->outs ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    if (!s) s = group_stats(fs, &fs->real, true, queries, o, o->seed, buf, rbuf, cls, &r->real, err);
    for (int j = 0; !s && j < fs->n_outs; j++)
        s = group_stats(fs, &fs->outs[j], false, queries, o, o->seed + 1000003ULL * (uint64_t)(j + 1), buf, rbuf,
                        cls, &r->outs[j], err);
    free(buf), free(rbuf), free(cls);
    if (s) report_free(r);
    return s;
}

void report_free(report *r) {
    free(r->real.cls);
    for (int j = 0; r->outs && j < r->n_outs; j++) free(r->outs[j].cls);
    free(r->outs);
    *r = (report){0};
}
