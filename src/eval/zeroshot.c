/* zeroshot.c — class queries and zero-shot probabilities (see zeroshot.h). */
#include "zeroshot.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

sdc_tokenizer *zs_tokenizer_open(const sdc_clip_model *m, const char *vocab_gz, sdc_err *err) {
    char vj[PATH_MAX], mt[PATH_MAX];
    snprintf(vj, sizeof vj, "%s/vocab.json", m->path);
    snprintf(mt, sizeof mt, "%s/merges.txt", m->path);
    if (access(vj, R_OK) == 0 && access(mt, R_OK) == 0) return sdc_tokenizer_load_files(vj, mt, err);
    return sdc_tokenizer_load_bpe_gz(vocab_gz, err);
}

char *zs_fill(const char *tmpl, const char *word) {
    size_t cap = strlen(tmpl) + 1, wl = strlen(word);
    for (const char *p = tmpl; (p = strchr(p, '{')); p++) cap += wl;
    char *out = malloc(cap), *o = out;
    if (!out) return NULL;
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{}", 2)) { memcpy(o, word, wl); o += wl; p += 2; }
        else if (!strncmp(p, "{name}", 6)) { memcpy(o, word, wl); o += wl; p += 6; }
        else *o++ = *p++;
    }
    *o = '\0';
    return out;
}

sdc_status zs_class_queries(const sdc_clip_model *m, sdc_backend *be, sdc_arena *arena,
                            const sdc_tokenizer *tok, const char *const *templates, int nt,
                            const char *const *names, int k, float *out, sdc_err *err) {
    int P = m->cfg.proj;
    if (nt < 1) return sdc_err_set(err, SDC_ERR_ARG, "zero-shot classifier: no prompt templates");
    int32_t *ids = malloc(sizeof *ids * (size_t)nt * SDC_TOKENS_MAX);
    float *emb = malloc(sizeof *emb * (size_t)nt * P);
    sdc_status s = ids && emb ? SDC_OK : sdc_err_set(err, SDC_ERR_OOM, "out of memory");
    for (int c = 0; !s && c < k; c++) {
        for (int t = 0; !s && t < nt; t++) {
            char *prompt = zs_fill(templates[t], names[c]);
            if (!prompt) s = sdc_err_set(err, SDC_ERR_OOM, "out of memory");
            else s = sdc_tokenize_77(tok, prompt, strlen(prompt), ids + (size_t)t * SDC_TOKENS_MAX, NULL, err);
            if (s && prompt) sdc_err_wrap(err, "class prompt '%s'", prompt);
            free(prompt);
        }
        for (int t = 0; !s && t < nt; t += 16) {
            int n = nt - t < 16 ? nt - t : 16;
            sdc_exec ex = sdc_exec_begin(be, arena, err);
            s = sdc_clip_encode_text(&ex, m, ids + (size_t)t * SDC_TOKENS_MAX, n, SDC_TOKENS_MAX, true,
                                     emb + (size_t)t * P, NULL);
        }
        float *o = out + (size_t)c * P;
        for (int i = 0; !s && i < P; i++) {
            double sum = 0;
            for (int t = 0; t < nt; t++) sum += emb[(size_t)t * P + i];
            o[i] = (float)(sum / nt);
        }
        if (!s && (s = sdc_l2_normalize(o, P, err))) sdc_err_wrap(err, "class %s", names[c]);
    }
    free(ids);
    free(emb);
    return s;
}

float zs_logit_scale(const sdc_clip_model *m) {
    const sdc_tensor *t = &m->logit_scale;
    float v = 0;
    if (!t->data || t->device != SDC_DEVICE_CPU || sdc_convert(&v, SDC_F32, t->data, t->dtype, 1, NULL) ||
        !isfinite(v))
        return 100.0f;
    return fminf(expf(v), 100.0f);
}

void zs_probs(const float *e, const float *queries, int k, int P, float scale, float *probs) {
    double mx = -INFINITY, sum = 0;
    for (int c = 0; c < k; c++) { /* logits first, then their softmax in place */
        double dot = 0;
        for (int i = 0; i < P; i++) dot += (double)e[i] * queries[(size_t)c * P + i];
        probs[c] = (float)(scale * dot);
        mx = fmax(mx, probs[c]);
    }
    for (int c = 0; c < k; c++) sum += (probs[c] = (float)exp(probs[c] - mx));
    for (int c = 0; c < k; c++) probs[c] = (float)(probs[c] / sum);
}
