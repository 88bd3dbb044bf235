/* op_ref.c — the naive reference of every op kind: plain loops in double over
 * the stored input values, one function per kind, picked by a table indexed
 * by sdc_op_kind. Loops are ordered so the innermost one is contiguous and
 * free of reductions (the compiler keeps it fast), nothing cleverer. */
#include "op_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Vectorize the contiguous inner loops even at -O2 (GCC's default cost model
 * there only takes loops that need no remainder). The loops are elementwise,
 * so the double results are the same bit for bit; reductions stay in order. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

/* ---------------------------------------------------------------- values */

static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

double op_ref_load(const sdc_tensor *t, size_t i) {
    const unsigned char *p = t->data;
    uint16_t h;
    switch (t->dtype) {
    case SDC_F32: {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    case SDC_F16: memcpy(&h, p + 2 * i, 2); return half_to_double(h);
    case SDC_BF16: {
        memcpy(&h, p + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16; /* bf16 is the top half of an f32 */
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case SDC_I32: {
        int32_t v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    case SDC_F64: { /* the finite-difference checks feed the references doubles */
        double v;
        memcpy(&v, p + 8 * i, 8);
        return v;
    }
    default: return NAN;
    }
}

/* Rounds to a binary format with `mant` explicit mantissa bits and exponent
 * range [emin, emax]: nearest-even, gradual underflow, overflow to Inf. */
static double round_fmt(double x, int mant, int emin, int emax) {
    if (isnan(x) || isinf(x) || x == 0) return x;
    double a = fabs(x);
    int e;
    frexp(a, &e); /* a = f·2^e, f in [0.5, 1) */
    e -= 1;
    if (e < emin) e = emin; /* subnormal: a fixed quantum */
    double q = ldexp(1.0, e - mant);
    double r = nearbyint(a / q) * q; /* the default rounding mode is nearest-even */
    if (r >= ldexp(2.0, emax)) r = INFINITY;
    return x < 0 ? -r : r;
}

double op_ref_round(double x, sdc_dtype t) {
    switch (t) {
    case SDC_F32: return round_fmt(x, 23, -126, 127);
    case SDC_F16: return round_fmt(x, 10, -14, 15);
    case SDC_BF16: return round_fmt(x, 7, -126, 127);
    default: return x;
    }
}

static size_t numel(const sdc_tensor *t) { return (size_t)sdc_tensor_numel(t); }

/* A whole tensor widened to double (malloc'ed; NULL on OOM). */
static double *widen(const sdc_tensor *t) {
    size_t n = numel(t);
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++) d[i] = op_ref_load(t, i);
    return d;
}

/* 1 + erf(z) as erfc(-z): no cancellation in the left tail, where 1 + erf
 * keeps no digits past z = -6 (the finite differences of geglub_edge_2
 * showed it). */
static double gelu(double x) { return 0.5 * x * erfc(-x * M_SQRT1_2); }
static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

/* ---------------------------------------------------------------- ops */

typedef bool (*ref_fn)(const sdc_op *op, const sdc_tensor *out, double *y);

/* [lo, hi): the outputs j whose input tap j*s + off lands inside [0, len). */
static void tap_range(int64_t nout, int s, int64_t off, int64_t len, int64_t *lo, int64_t *hi) {
    *lo = 0;
    while (*lo < nout && *lo * s + off < 0) (*lo)++;
    *hi = *lo;
    while (*hi < nout && *hi * s + off < len) (*hi)++;
}

static bool ref_conv2d(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *xt = op->src[0], *wt = op->src[1];
    int64_t N = xt->shape[0], C = xt->shape[1], H = xt->shape[2], W = xt->shape[3];
    int64_t OC = wt->shape[0], KH = wt->shape[2], KW = wt->shape[3];
    int s = op->p.conv2d.stride, pt = op->p.conv2d.pad_top, pl = op->p.conv2d.pad_left;
    int64_t OH = (H + pt + op->p.conv2d.pad_bottom - KH) / s + 1;
    int64_t OW = (W + pl + op->p.conv2d.pad_right - KW) / s + 1;
    (void)out;
    double *x = widen(xt), *w = widen(wt), *b = op->src[2] ? widen(op->src[2]) : NULL;
    int64_t *rng = malloc(4 * (size_t)(KH + KW) * sizeof *rng); /* ilo, ihi per u; jlo, jhi per v */
    bool ok = x && w && rng && (!op->src[2] || b);
    if (ok) {
        for (int64_t u = 0; u < KH; u++) tap_range(OH, s, u - pt, H, &rng[2 * u], &rng[2 * u + 1]);
        for (int64_t v = 0; v < KW; v++)
            tap_range(OW, s, v - pl, W, &rng[2 * KH + 2 * v], &rng[2 * KH + 2 * v + 1]);
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) {
                double *acc = y + (n * OC + o) * OH * OW;
                for (int64_t i = 0; i < OH * OW; i++) acc[i] = b ? b[o] : 0;
                for (int64_t c = 0; c < C; c++)
                    for (int64_t u = 0; u < KH; u++)
                        for (int64_t v = 0; v < KW; v++) {
                            double wv = w[((o * C + c) * KH + u) * KW + v];
                            int64_t jlo = rng[2 * KH + 2 * v], jhi = rng[2 * KH + 2 * v + 1];
                            for (int64_t i = rng[2 * u]; i < rng[2 * u + 1]; i++) {
                                const double *xr = x + ((n * C + c) * H + i * s + u - pt) * W;
                                double *yr = acc + i * OW;
                                for (int64_t j = jlo; j < jhi; j++) yr[j] += wv * xr[j * s + v - pl];
                            }
                        }
            }
    }
    free(x);
    free(w);
    free(b);
    free(rng);
    return ok;
}

static bool ref_linear(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *xt = op->src[0], *wt = op->src[1];
    int64_t K = wt->shape[1], NO = wt->shape[0], M = (int64_t)numel(xt) / K;
    (void)out;
    double *x = widen(xt), *w = widen(wt), *b = op->src[2] ? widen(op->src[2]) : NULL;
    double *wtr = malloc((size_t)(K * NO) * sizeof *wtr); /* w transposed: [K, NO] */
    bool ok = x && w && wtr && (!op->src[2] || b);
    if (ok) {
        for (int64_t n = 0; n < NO; n++)
            for (int64_t k = 0; k < K; k++) wtr[k * NO + n] = w[n * K + k];
        for (int64_t m = 0; m < M; m++) {
            double *acc = y + m * NO;
            for (int64_t n = 0; n < NO; n++) acc[n] = b ? b[n] : 0;
            for (int64_t k = 0; k < K; k++) {
                double xv = x[m * K + k];
                for (int64_t n = 0; n < NO; n++) acc[n] += xv * wtr[k * NO + n];
            }
        }
    }
    free(x);
    free(w);
    free(b);
    free(wtr);
    return ok;
}

/* Normalizes `cnt` values at x (stride 1) with mean/biased variance; channel
 * c of the block owns `per` consecutive values and gamma/beta[c0 + c]. */
static void normalize(const double *x, double *y, int64_t cnt, int64_t per, const double *gamma,
                      const double *beta, int64_t c0, double eps, bool silu) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < cnt; i++) mean += x[i];
    mean /= (double)cnt;
    for (int64_t i = 0; i < cnt; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (double)cnt;
    double inv = 1 / sqrt(var + eps);
    for (int64_t i = 0; i < cnt; i++) {
        int64_t c = c0 + i / per;
        double v = (x[i] - mean) * inv * gamma[c] + beta[c];
        y[i] = silu ? v * sigmoid(v) : v;
    }
}

static bool ref_norm(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *xt = op->src[0];
    (void)out;
    double *x = widen(xt), *g = widen(op->src[1]), *b = widen(op->src[2]);
    bool ok = x && g && b;
    if (ok && op->kind == SDC_OP_GROUP_NORM) {
        int64_t N = xt->shape[0], C = xt->shape[1], S = (int64_t)numel(xt) / (N * C);
        int64_t G = op->p.group_norm.groups, cg = C / G;
        for (int64_t n = 0; n < N; n++)
            for (int64_t gi = 0; gi < G; gi++) {
                int64_t at = (n * C + gi * cg) * S;
                normalize(x + at, y + at, cg * S, S, g, b, gi * cg, op->p.group_norm.eps,
                          op->p.group_norm.silu);
            }
    } else if (ok) {
        int64_t C = xt->shape[xt->ndim - 1], R = (int64_t)numel(xt) / C;
        for (int64_t r = 0; r < R; r++)
            normalize(x + r * C, y + r * C, C, 1, g, b, 0, op->p.layer_norm.eps, false);
    }
    free(x);
    free(g);
    free(b);
    return ok;
}

static bool ref_attention(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *qt = op->src[0], *kt_ = op->src[1];
    int64_t B = qt->shape[0], NQ = qt->shape[1], HD = qt->shape[2], NK = kt_->shape[1];
    int64_t H = op->p.attention.heads, D = HD / H;
    double scale = op->p.attention.scale != 0 ? op->p.attention.scale : 1 / sqrt((double)D);
    (void)out;
    double *q = widen(qt), *k = widen(kt_), *v = widen(op->src[2]);
    /* Per (batch, head): k transposed to [D, NK] and v as [NK, D]; per query
     * row the NK scores. Never the NQ×NK matrix. */
    double *kt = malloc((size_t)(D * NK) * sizeof *kt), *vh = malloc((size_t)(D * NK) * sizeof *vh);
    double *s = malloc((size_t)NK * sizeof *s);
    bool ok = q && k && v && kt && vh && s;
    for (int64_t b = 0; ok && b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t j = 0; j < NK; j++)
                for (int64_t d = 0; d < D; d++) {
                    kt[d * NK + j] = k[(b * NK + j) * HD + h * D + d];
                    vh[j * D + d] = v[(b * NK + j) * HD + h * D + d];
                }
            for (int64_t i = 0; i < NQ; i++) {
                int64_t nk = op->p.attention.causal ? i + 1 : NK; /* keys visible to query i */
                const double *qi = q + (b * NQ + i) * HD + h * D;
                for (int64_t j = 0; j < nk; j++) s[j] = 0;
                for (int64_t d = 0; d < D; d++)
                    for (int64_t j = 0; j < nk; j++) s[j] += qi[d] * kt[d * NK + j];
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < nk; j++) {
                    s[j] *= scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int64_t j = 0; j < nk; j++) sum += s[j] = exp(s[j] - mx);
                double *o = y + (b * NQ + i) * HD + h * D;
                for (int64_t d = 0; d < D; d++) o[d] = 0;
                for (int64_t j = 0; j < nk; j++)
                    for (int64_t d = 0; d < D; d++) o[d] += s[j] * vh[j * D + d];
                for (int64_t d = 0; d < D; d++) o[d] /= sum;
            }
        }
    free(q);
    free(k);
    free(v);
    free(kt);
    free(vh);
    free(s);
    return ok;
}

static bool ref_softmax(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *xt = op->src[0];
    int64_t C = xt->shape[xt->ndim - 1], R = (int64_t)numel(xt) / C;
    (void)out;
    double *x = widen(xt);
    for (int64_t r = 0; x && r < R; r++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t c = 0; c < C; c++)
            if (x[r * C + c] > mx) mx = x[r * C + c];
        for (int64_t c = 0; c < C; c++) sum += y[r * C + c] = exp(x[r * C + c] - mx);
        for (int64_t c = 0; c < C; c++) y[r * C + c] /= sum;
    }
    free(x);
    return x != NULL;
}

/* gelu, quick_gelu, silu: elementwise, straight from the formulas. */
static bool ref_unary(const sdc_op *op, const sdc_tensor *out, double *y) {
    size_t n = numel(op->src[0]);
    (void)out;
    for (size_t i = 0; i < n; i++) {
        double x = op_ref_load(op->src[0], i);
        switch (op->kind) {
        case SDC_OP_GELU: y[i] = gelu(x); break;
        case SDC_OP_QUICK_GELU: y[i] = x * sigmoid(1.702 * x); break;
        default: y[i] = x * sigmoid(x); break;
        }
    }
    return true;
}

static bool ref_geglu(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *x = op->src[0];
    int64_t F = x->shape[x->ndim - 1] / 2, R = (int64_t)numel(x) / (2 * F);
    (void)out;
    for (int64_t r = 0; r < R; r++)
        for (int64_t f = 0; f < F; f++)
            y[r * F + f] = op_ref_load(x, (size_t)(r * 2 * F + f)) *
                           gelu(op_ref_load(x, (size_t)(r * 2 * F + F + f)));
    return true;
}

static bool ref_binary(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    /* Both right-aligned into 4 dims, missing leading dims 1. */
    int64_t ad[4], bd[4];
    for (int i = 0; i < 4; i++) {
        ad[i] = i >= 4 - a->ndim ? a->shape[i - (4 - a->ndim)] : 1;
        bd[i] = i >= 4 - b->ndim ? b->shape[i - (4 - b->ndim)] : 1;
    }
    (void)out;
    size_t ai = 0;
    for (int64_t i0 = 0; i0 < ad[0]; i0++)
        for (int64_t i1 = 0; i1 < ad[1]; i1++)
            for (int64_t i2 = 0; i2 < ad[2]; i2++)
                for (int64_t i3 = 0; i3 < ad[3]; i3++, ai++) {
                    int64_t j0 = bd[0] == 1 ? 0 : i0, j1 = bd[1] == 1 ? 0 : i1;
                    int64_t j2 = bd[2] == 1 ? 0 : i2, j3 = bd[3] == 1 ? 0 : i3;
                    size_t bi = (size_t)(((j0 * bd[1] + j1) * bd[2] + j2) * bd[3] + j3);
                    double va = op_ref_load(a, ai), vb = op_ref_load(b, bi);
                    y[ai] = op->kind == SDC_OP_ADD ? va + vb : va * vb;
                }
    return true;
}

static bool ref_upsample(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *x = op->src[0];
    int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OH = out->shape[2], OW = out->shape[3]; /* 2H or 2H - 1 */
    for (int64_t p = 0; p < NC; p++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++)
                y[(p * OH + i) * OW + j] = op_ref_load(x, (size_t)((p * H + i / 2) * W + j / 2));
    return true;
}

static bool ref_concat(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *a = op->src[0], *b = op->src[1];
    int axis = a->ndim == 1 ? 0 : 1;
    int64_t outer = axis == 0 ? 1 : a->shape[0], inner = 1;
    for (int i = axis + 1; i < a->ndim; i++) inner *= a->shape[i];
    int64_t na = a->shape[axis] * inner, nb = b->shape[axis] * inner; /* per outer index */
    (void)out;
    size_t k = 0;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < na; i++) y[k++] = op_ref_load(a, (size_t)(o * na + i));
        for (int64_t i = 0; i < nb; i++) y[k++] = op_ref_load(b, (size_t)(o * nb + i));
    }
    return true;
}

static bool ref_timestep(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *t = op->src[0];
    int dim = op->p.timestep.dim, half = dim / 2;
    bool flip = op->p.timestep.flip_sin_to_cos;
    (void)out;
    for (int64_t n = 0; n < t->shape[0]; n++) {
        double tv = op_ref_load(t, (size_t)n), *row = y + n * dim;
        for (int i = 0; i < half; i++) {
            double f = exp(-log((double)op->p.timestep.max_period) * i /
                           (half - (double)op->p.timestep.freq_shift));
            double arg = tv * f;
            row[i] = flip ? cos(arg) : sin(arg);
            row[half + i] = flip ? sin(arg) : cos(arg);
        }
        if (dim % 2) row[dim - 1] = 0;
    }
    return true;
}

static bool ref_embedding(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *ids = op->src[0], *tab = op->src[1];
    int64_t V = tab->shape[0], D = tab->shape[1];
    (void)out;
    for (size_t i = 0; i < numel(ids); i++) {
        double id = op_ref_load(ids, i);
        if (id < 0 || id >= (double)V) return false;
        for (int64_t d = 0; d < D; d++)
            y[i * (size_t)D + (size_t)d] = op_ref_load(tab, (size_t)((int64_t)id * D + d));
    }
    return true;
}

static bool ref_convert(const sdc_op *op, const sdc_tensor *out, double *y) {
    size_t n = numel(op->src[0]);
    for (size_t i = 0; i < n; i++) y[i] = op_ref_round(op_ref_load(op->src[0], i), out->dtype);
    return true;
}

static bool ref_transpose(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *x = op->src[0];
    int64_t B = x->shape[0], M = x->shape[1], N = x->shape[2];
    (void)out;
    for (int64_t b = 0; b < B; b++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t m = 0; m < M; m++)
                y[(b * N + n) * M + m] = op_ref_load(x, (size_t)((b * M + m) * N + n));
    return true;
}

/* ---------------------------------------------------------------- backward
 * Each straight from the adjoint's formula in sdc_ops.h; op_fd.c checks
 * them against central differences of the forward references above. */

static bool ref_conv2d_backward(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *dyt = op->src[0], *wt = op->src[1];
    int64_t N = dyt->shape[0], OC = dyt->shape[1], OH = dyt->shape[2], OW = dyt->shape[3];
    int64_t C = wt->shape[1], KH = wt->shape[2], KW = wt->shape[3];
    int64_t H = out->shape[2], W = out->shape[3];
    int s = op->p.conv2d.stride, pt = op->p.conv2d.pad_top, pl = op->p.conv2d.pad_left;
    double *dy = widen(dyt), *w = widen(wt);
    int64_t *rng = malloc(4 * (size_t)(KH + KW) * sizeof *rng);
    bool ok = dy && w && rng;
    if (ok) {
        for (int64_t u = 0; u < KH; u++) tap_range(OH, s, u - pt, H, &rng[2 * u], &rng[2 * u + 1]);
        for (int64_t v = 0; v < KW; v++)
            tap_range(OW, s, v - pl, W, &rng[2 * KH + 2 * v], &rng[2 * KH + 2 * v + 1]);
        memset(y, 0, (size_t)(N * C * H * W) * sizeof *y);
        /* dx[n, c, i·s+u-pt, j·s+v-pl] += w[o, c, u, v]·dy[n, o, i, j] */
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t o = 0; o < OC; o++)
                    for (int64_t u = 0; u < KH; u++)
                        for (int64_t v = 0; v < KW; v++) {
                            double wv = w[((o * C + c) * KH + u) * KW + v];
                            int64_t jlo = rng[2 * KH + 2 * v], jhi = rng[2 * KH + 2 * v + 1];
                            for (int64_t i = rng[2 * u]; i < rng[2 * u + 1]; i++) {
                                double *xr = y + ((n * C + c) * H + i * s + u - pt) * W;
                                const double *dr = dy + ((n * OC + o) * OH + i) * OW;
                                for (int64_t j = jlo; j < jhi; j++)
                                    xr[j * s + v - pl] += wv * dr[j];
                            }
                        }
    }
    free(dy);
    free(w);
    free(rng);
    return ok;
}

static bool ref_linear_backward(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *dyt = op->src[0], *wt = op->src[1];
    int64_t NO = wt->shape[0], K = wt->shape[1], M = NO ? (int64_t)numel(dyt) / NO : 0;
    (void)out;
    double *dy = widen(dyt), *w = widen(wt);
    bool ok = dy && w;
    for (int64_t m = 0; ok && m < M; m++) { /* dx[m, :] = Σ_n dy[m, n]·w[n, :] */
        double *acc = y + m * K;
        for (int64_t k = 0; k < K; k++) acc[k] = 0;
        for (int64_t n = 0; n < NO; n++) {
            double d = dy[m * NO + n];
            for (int64_t k = 0; k < K; k++) acc[k] += d * w[n * K + k];
        }
    }
    free(dy);
    free(w);
    return ok;
}

/* `cnt` values as normalize() sees them; dx = rstd·(g - mean(g) - x̂·mean(g·x̂))
 * with g = dy·gamma, times silu'(x̂·gamma + beta) when silu. */
static void normalize_backward(const double *x, const double *dy, double *dx, int64_t cnt,
                               int64_t per, const double *gamma, const double *beta, int64_t c0,
                               double eps, bool silu) {
    double mean = 0, var = 0, m1 = 0, m2 = 0;
    for (int64_t i = 0; i < cnt; i++) mean += x[i];
    mean /= (double)cnt;
    for (int64_t i = 0; i < cnt; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (double)cnt;
    double inv = 1 / sqrt(var + eps);
    for (int64_t i = 0; i < cnt; i++) {
        int64_t c = c0 + i / per;
        double xh = (x[i] - mean) * inv, g = dy[i];
        if (silu) {
            double v = xh * gamma[c] + beta[c], sg = sigmoid(v);
            g *= sg * (1 + v * (1 - sg));
        }
        dx[i] = g * gamma[c];
        m1 += dx[i];
        m2 += dx[i] * xh;
    }
    m1 /= (double)cnt;
    m2 /= (double)cnt;
    for (int64_t i = 0; i < cnt; i++) dx[i] = inv * (dx[i] - m1 - (x[i] - mean) * inv * m2);
}

static bool ref_norm_backward(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *xt = op->src[0];
    bool gn = op->kind == SDC_OP_GROUP_NORM_BACKWARD;
    (void)out;
    double *x = widen(xt), *g = widen(op->src[1]), *b = gn ? widen(op->src[2]) : NULL;
    double *dy = widen(op->src[gn ? 3 : 2]);
    bool ok = x && g && dy && (!gn || b);
    if (ok && gn) {
        int64_t N = xt->shape[0], C = xt->shape[1], S = (int64_t)numel(xt) / (N * C);
        int64_t G = op->p.group_norm.groups, cg = C / G;
        for (int64_t n = 0; n < N; n++)
            for (int64_t gi = 0; gi < G; gi++) {
                int64_t at = (n * C + gi * cg) * S;
                normalize_backward(x + at, dy + at, y + at, cg * S, S, g, b, gi * cg,
                                   op->p.group_norm.eps, op->p.group_norm.silu);
            }
    } else if (ok) {
        int64_t C = xt->shape[xt->ndim - 1], R = (int64_t)numel(xt) / C;
        for (int64_t r = 0; r < R; r++)
            normalize_backward(x + r * C, dy + r * C, y + r * C, C, 1, g, NULL, 0,
                               op->p.layer_norm.eps, false);
    }
    free(x);
    free(g);
    free(b);
    free(dy);
    return ok;
}

/* y = [dq, dk, dv] concatenated. Per (batch, head, query row): P, dP = dy·vᵀ,
 * delta = Σ P∘dP, dS = P∘(dP - delta); dq = scale·dS·k, dk += scale·dSᵀq,
 * dv += Pᵀdy. Never the NQ×NK matrix. k and v are transposed per head to
 * [D, NK] so the score loops run along keys (as ref_attention). */
static bool ref_attention_backward(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *qt = op->src[0], *kt_ = op->src[1];
    int64_t B = qt->shape[0], NQ = qt->shape[1], HD = qt->shape[2], NK = kt_->shape[1];
    int64_t H = op->p.attention.heads, D = HD / H;
    double scale = op->p.attention.scale != 0 ? op->p.attention.scale : 1 / sqrt((double)D);
    (void)out;
    double *q = widen(qt), *k = widen(kt_), *v = widen(op->src[2]), *dy = widen(op->src[3]);
    size_t nk1 = (size_t)(NK ? NK : 1);
    double *p = malloc(nk1 * sizeof *p), *dp = malloc(nk1 * sizeof *dp);
    double *kt = malloc(nk1 * (size_t)(D ? D : 1) * sizeof *kt);
    double *vt = malloc(nk1 * (size_t)(D ? D : 1) * sizeof *vt);
    bool ok = q && k && v && dy && p && dp && kt && vt;
    double *dq = y, *dk = y + B * NQ * HD, *dv = dk + B * NK * HD;
    if (ok) memset(y, 0, (size_t)(B * (NQ + 2 * NK) * HD) * sizeof *y);
    for (int64_t b = 0; ok && b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t j = 0; j < NK; j++)
                for (int64_t d = 0; d < D; d++) {
                    kt[d * NK + j] = k[(b * NK + j) * HD + h * D + d];
                    vt[d * NK + j] = v[(b * NK + j) * HD + h * D + d];
                }
            for (int64_t i = 0; i < NQ; i++) {
                int64_t nk = op->p.attention.causal ? i + 1 : NK;
                const double *qi = q + (b * NQ + i) * HD + h * D;
                const double *yi = dy + (b * NQ + i) * HD + h * D;
                double mx = -INFINITY, sum = 0, delta = 0;
                for (int64_t j = 0; j < nk; j++) p[j] = dp[j] = 0;
                for (int64_t d = 0; d < D; d++)
                    for (int64_t j = 0; j < nk; j++) {
                        p[j] += qi[d] * kt[d * NK + j];
                        dp[j] += yi[d] * vt[d * NK + j];
                    }
                for (int64_t j = 0; j < nk; j++) {
                    p[j] *= scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int64_t j = 0; j < nk; j++) sum += p[j] = exp(p[j] - mx);
                for (int64_t j = 0; j < nk; j++) {
                    p[j] /= sum;
                    delta += p[j] * dp[j];
                }
                double *dqi = dq + (b * NQ + i) * HD + h * D;
                for (int64_t j = 0; j < nk; j++) {
                    double ds = scale * p[j] * (dp[j] - delta), pj = p[j];
                    const double *kj = k + (b * NK + j) * HD + h * D;
                    double *dkj = dk + (b * NK + j) * HD + h * D;
                    double *dvj = dv + (b * NK + j) * HD + h * D;
                    for (int64_t d = 0; d < D; d++) {
                        dqi[d] += ds * kj[d];
                        dkj[d] += ds * qi[d];
                        dvj[d] += pj * yi[d];
                    }
                }
            }
        }
    free(q);
    free(k);
    free(v);
    free(dy);
    free(p);
    free(dp);
    free(kt);
    free(vt);
    return ok;
}

static double gelu_grad(double x) {
    return 0.5 * erfc(-x * M_SQRT1_2) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
}

/* d/dx of x·sigmoid(a·x) */
static double sig_grad(double x, double a) {
    double s = sigmoid(a * x);
    return s + a * x * s * (1 - s);
}

static bool ref_act_backward(const sdc_op *op, const sdc_tensor *out, double *y) {
    size_t n = numel(op->src[0]);
    (void)out;
    for (size_t i = 0; i < n; i++) {
        double x = op_ref_load(op->src[0], i), d = op_ref_load(op->src[1], i);
        switch (op->kind) {
        case SDC_OP_GELU_BACKWARD: y[i] = d * gelu_grad(x); break;
        case SDC_OP_QUICK_GELU_BACKWARD: y[i] = d * sig_grad(x, 1.702); break;
        default: y[i] = d * sig_grad(x, 1.0); break;
        }
    }
    return true;
}

static bool ref_geglu_backward(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *x = op->src[0], *dy = op->src[1];
    int64_t F = x->shape[x->ndim - 1] / 2, R = F ? (int64_t)numel(x) / (2 * F) : 0;
    (void)out;
    for (int64_t r = 0; r < R; r++)
        for (int64_t f = 0; f < F; f++) {
            double v = op_ref_load(x, (size_t)(r * 2 * F + f));
            double g = op_ref_load(x, (size_t)(r * 2 * F + F + f));
            double d = op_ref_load(dy, (size_t)(r * F + f));
            y[r * 2 * F + f] = d * gelu(g);
            y[r * 2 * F + F + f] = d * v * gelu_grad(g);
        }
    return true;
}

static bool ref_upsample_backward(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *dy = op->src[0];
    int64_t NC = dy->shape[0] * dy->shape[1], OH = dy->shape[2], OW = dy->shape[3];
    int64_t H = out->shape[2], W = out->shape[3];
    memset(y, 0, (size_t)(NC * H * W) * sizeof *y);
    for (int64_t p = 0; p < NC; p++) /* each output pixel adds to the pixel it copied */
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++)
                y[(p * H + i / 2) * W + j / 2] += op_ref_load(dy, (size_t)((p * OH + i) * OW + j));
    return true;
}

static bool ref_slice(const sdc_op *op, const sdc_tensor *out, double *y) {
    const sdc_tensor *x = op->src[0];
    int axis = x->ndim == 1 ? 0 : 1;
    int64_t outer = axis == 0 ? 1 : x->shape[0], inner = 1;
    for (int i = axis + 1; i < x->ndim; i++) inner *= x->shape[i];
    int64_t c = x->shape[axis], len = op->p.slice.len, start = op->p.slice.start;
    (void)out;
    size_t k = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = start * inner; i < (start + len) * inner; i++)
            y[k++] = op_ref_load(x, (size_t)(o * c * inner + i));
    return true;
}

static const ref_fn ref_table[SDC_OP_COUNT] = {
    [SDC_OP_CONV2D] = ref_conv2d,        [SDC_OP_LINEAR] = ref_linear,
    [SDC_OP_GROUP_NORM] = ref_norm,      [SDC_OP_LAYER_NORM] = ref_norm,
    [SDC_OP_ATTENTION] = ref_attention,  [SDC_OP_SOFTMAX] = ref_softmax,
    [SDC_OP_GELU] = ref_unary,           [SDC_OP_QUICK_GELU] = ref_unary,
    [SDC_OP_GEGLU] = ref_geglu,          [SDC_OP_SILU] = ref_unary,
    [SDC_OP_ADD] = ref_binary,           [SDC_OP_MUL] = ref_binary,
    [SDC_OP_UPSAMPLE2X] = ref_upsample,  [SDC_OP_CONCAT] = ref_concat,
    [SDC_OP_TIMESTEP_EMBED] = ref_timestep, [SDC_OP_EMBEDDING] = ref_embedding,
    [SDC_OP_CONVERT] = ref_convert,      [SDC_OP_TRANSPOSE] = ref_transpose,
    [SDC_OP_CONV2D_BACKWARD] = ref_conv2d_backward,
    [SDC_OP_LINEAR_BACKWARD] = ref_linear_backward,
    [SDC_OP_GROUP_NORM_BACKWARD] = ref_norm_backward,
    [SDC_OP_LAYER_NORM_BACKWARD] = ref_norm_backward,
    [SDC_OP_ATTENTION_BACKWARD] = ref_attention_backward,
    [SDC_OP_GELU_BACKWARD] = ref_act_backward,
    [SDC_OP_QUICK_GELU_BACKWARD] = ref_act_backward,
    [SDC_OP_SILU_BACKWARD] = ref_act_backward,
    [SDC_OP_GEGLU_BACKWARD] = ref_geglu_backward,
    [SDC_OP_UPSAMPLE2X_BACKWARD] = ref_upsample_backward,
    [SDC_OP_SLICE] = ref_slice,
};

bool op_ref(const sdc_op *op, const sdc_tensor *dst_shape, double *y) {
    if ((unsigned)op->kind >= SDC_OP_COUNT || !ref_table[op->kind]) return false;
    return ref_table[op->kind](op, dst_shape, y);
}

/* ---------------------------------------------------------------- metric */

void op_ref_compare(const sdc_tensor *got, const double *ref, op_error *e) {
    size_t n = numel(got);
    double num = 0, den = 0;
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        double g = op_ref_load(got, i), r = ref[i];
        if (!isfinite(g) || !isfinite(r)) {
            bool same = (isnan(g) && isnan(r)) || g == r;
            if (!same && e->nonfinite++ == 0) {
                e->worst = i;
                e->worst_got = g;
                e->worst_ref = r;
            }
            continue;
        }
        double d = fabs(g - r);
        if (d > e->max_abs && !e->nonfinite) {
            e->max_abs = d;
            e->worst = i;
            e->worst_got = g;
            e->worst_ref = r;
        }
        num += d * d;
        den += r * r;
    }
    e->rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    if (e->nonfinite) e->max_abs = e->rel_l2 = INFINITY;
}
