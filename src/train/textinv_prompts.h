/* textinv_prompts.h — the training prompts of textual inversion: the small
 * ImageNet-style object templates ("a photo of a {}", ...) with the
 * placeholder's vectors in place of "{}", as token ids for the text encoder.
 *
 *     int32_t ids[77];
 *     sdc_ti_prompt_ids(tok, ph, 0, ids, &err);   // "a photo of a <tok>"
 *     // ids: BOS, the template's tokens with SDC_EMB_ID_BASE + 0..n-1 for the
 *     // placeholder's n vectors, EOS, EOS padding
 */
#ifndef SDC_TRAIN_TEXTINV_PROMPTS_H
#define SDC_TRAIN_TEXTINV_PROMPTS_H

#include "../pipeline/embeddings.h"

#define SDC_TI_N_TEMPLATES 27

/* Template k (0..SDC_TI_N_TEMPLATES-1), "{}" marking the placeholder. */
const char *sdc_ti_template(int k);

/* ids[77] of template k with "{}" replaced by the placeholder: ph holds one
 * trigger word (its vectors' values do not matter here). Tokenized as
 * transformers tokenizes text around an added token: the text on either side
 * on its own, the placeholder's ids between. */
sdc_status sdc_ti_prompt_ids(const sdc_tokenizer *tok, const sdc_embedding_set *ph, int k,
                             int32_t ids[SDC_TOKENS_MAX], sdc_err *err);

/* Refuses a placeholder that CLIP's vocabulary already holds as one token
 * (diffusers refuses a token its tokenizer already has; sdc also refuses any
 * word that tokenizes to a single token, such as "Cat", which would take
 * over that word in prompts) or that is unfit as a trigger word and file
 * name: empty, over 100 bytes, invalid UTF-8, whitespace or control
 * characters, '/', '\\', '{' or '}'. */
sdc_status sdc_ti_check_placeholder(const sdc_tokenizer *tok, const char *token, sdc_err *err);

/* The token ids of word (no BOS/EOS) into ids[SDC_EMB_MAX_VECTORS], *n of
 * them. With single, anything but exactly one token is refused (diffusers'
 * --initializer_token rule); otherwise 1 to SDC_EMB_MAX_VECTORS. */
sdc_status sdc_ti_init_ids(const sdc_tokenizer *tok, const char *word, bool single, int32_t *ids,
                           int *n, sdc_err *err);

/* A prompt with "{}" (every occurrence) replaced by word; malloc'ed, NULL
 * when out of memory. */
char *sdc_ti_format(const char *tmpl, const char *word);

#endif
