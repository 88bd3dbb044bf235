/* zeroshot.h — CLIP's zero-shot classifier: one text query per class (the
 * class name through prompt templates, each prompt's embedding normalized,
 * the mean normalized, as CLIP's paper builds its ImageNet classifier) and
 * class probabilities softmax(scale · cos(image, query)). Used by the
 * filter of `sdc augment --filter clip` and by `sdc report`.
 *
 *     sdc_tokenizer *tok = zs_tokenizer_open(m, "weights/bpe_simple_vocab_16e6.txt.gz", &err);
 *     float q[n_classes * P];
 *     zs_class_queries(m, be, arena, tok, templates, n_templates, names, n_classes, q, &err);
 *     zs_probs(image_embed, q, n_classes, P, zs_logit_scale(m), probs);
 */
#ifndef SDC_EVAL_ZEROSHOT_H
#define SDC_EVAL_ZEROSHOT_H

#include "../models/clip_model.h"

/* The CLIPModel folder's own vocab.json + merges.txt when present, else
 * CLIP's gzip'ed merges file at vocab_gz. */
sdc_tokenizer *zs_tokenizer_open(const sdc_clip_model *m, const char *vocab_gz, sdc_err *err);

/* tmpl with "{}" or "{name}" replaced by word (malloc'ed; NULL: out of memory). */
char *zs_fill(const char *tmpl, const char *word);

/* out: [k, proj] normalized queries of the class names. */
sdc_status zs_class_queries(const sdc_clip_model *m, sdc_backend *be, sdc_arena *arena,
                            const sdc_tokenizer *tok, const char *const *templates, int n_templates,
                            const char *const *names, int k, float *out, sdc_err *err);

/* exp(logit_scale) of the model, capped at 100 as CLIP trains it; 100 when
 * the checkpoint has no logit_scale. */
float zs_logit_scale(const sdc_clip_model *m);

/* probs[k] = softmax over classes of scale · e·queries[c] (e normalized). */
void zs_probs(const float *e, const float *queries, int k, int P, float scale, float *probs);

#endif
