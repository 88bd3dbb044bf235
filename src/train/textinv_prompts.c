/* textinv_prompts.c — see textinv_prompts.h. */
#include "textinv_prompts.h"

#include "../pipeline/prompt.h"
#include "../text/unicode.h"

#include <stdlib.h>
#include <string.h>

/* The object templates of textual inversion (Gal et al. 2022), as the list
 * `imagenet_templates_small` of diffusers' examples/textual_inversion/
 * textual_inversion.py holds them, in the same order (the order decides which
 * template a seeded draw picks). */
static const char *const templates[SDC_TI_N_TEMPLATES] = {
    "a photo of a {}",          "a rendering of a {}",      "a cropped photo of the {}",
    "the photo of a {}",        "a photo of a clean {}",    "a photo of a dirty {}",
    "a dark photo of the {}",   "a photo of my {}",         "a photo of the cool {}",
    "a close-up photo of a {}", "a bright photo of the {}", "a cropped photo of a {}",
    "a photo of the {}",        "a good photo of the {}",   "a photo of one {}",
    "a close-up photo of the {}", "a rendition of the {}",  "a photo of the clean {}",
    "a rendition of a {}",      "a photo of a nice {}",     "a good photo of a {}",
    "a photo of the nice {}",   "a photo of the small {}",  "a photo of the weird {}",
    "a photo of the large {}",  "a photo of a cool {}",     "a photo of a small {}",
};

const char *sdc_ti_template(int k) {
    return k >= 0 && k < SDC_TI_N_TEMPLATES ? templates[k] : NULL;
}

char *sdc_ti_format(const char *tmpl, const char *word) {
    size_t n = 1, wl = strlen(word);
    for (const char *p = tmpl; *p; p++) n += p[0] == '{' && p[1] == '}' ? (p++, wl) : 1;
    char *out = malloc(n), *o = out;
    if (!out) return NULL;
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, word, wl);
            o += wl;
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

sdc_status sdc_ti_prompt_ids(const sdc_tokenizer *tok, const sdc_embedding_set *ph, int k,
                             int32_t ids[SDC_TOKENS_MAX], sdc_err *err) {
    const char *word = NULL;
    if (!sdc_ti_template(k) || !sdc_embeddings_at(ph, 0, &word, NULL, NULL, NULL))
        return sdc_err_set(err, SDC_ERR_ARG, "textual inversion: no template %d or no placeholder", k);
    char *text = sdc_ti_format(templates[k], word);
    if (!text) return sdc_err_set(err, SDC_ERR_OOM, "textual inversion: out of memory");
    /* The prompt planner matches the trigger and tokenizes the text between
     * on its own: the same ids as transformers' added-token split. */
    sdc_cond_plan plan = {0};
    sdc_status s = sdc_prompt_plan(tok, text, SDC_PROMPT_PLAIN, ph, &plan, err);
    if (!s) memcpy(ids, plan.ids, sizeof *ids * SDC_TOKENS_MAX);
    sdc_cond_plan_free(&plan);
    free(text);
    return s;
}

sdc_status sdc_ti_check_placeholder(const sdc_tokenizer *tok, const char *token, sdc_err *err) {
    size_t len = token ? strlen(token) : 0, nu = 0;
    if (len == 0 || len > 100)
        return sdc_err_set(err, SDC_ERR_ARG, "placeholder token '%s' must be 1 to 100 bytes", token ? token : "");
    if (sdc_utf8_decode(token, len, "placeholder token", NULL, &nu, err)) return err ? err->code : SDC_ERR_ARG;
    for (const unsigned char *p = (const unsigned char *)token; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("/\\{}", *p))
            return sdc_err_set(err, SDC_ERR_ARG, "placeholder token '%s' holds '%c' (no whitespace, control "
                               "characters, '/', '\\', '{' or '}': it becomes a trigger word and a file name)",
                               token, *p >= ' ' ? *p : '?');
    int32_t ids[4];
    size_t n = 0;
    sdc_status s = sdc_tokenize(tok, token, len, ids, 4, &n, err);
    if (s) return s;
    int32_t direct = sdc_tokenizer_lookup(tok, token);
    if (n == 1 || direct >= 0)
        return sdc_err_set(err, SDC_ERR_ARG, "placeholder token '%s' is already in CLIP's vocabulary (token id "
                           "%d): a new concept needs a new word, such as <%s-x>", token,
                           (int)(n == 1 ? ids[0] : direct), token);
    return SDC_OK;
}

sdc_status sdc_ti_init_ids(const sdc_tokenizer *tok, const char *word, bool single, int32_t *ids,
                           int *n, sdc_err *err) {
    size_t cnt = 0, len = word ? strlen(word) : 0;
    int32_t tmp[SDC_EMB_MAX_VECTORS + 1];
    sdc_status s = sdc_tokenize(tok, word ? word : "", len, tmp, SDC_EMB_MAX_VECTORS + 1, &cnt, err);
    if (s) return sdc_err_wrap(err, "initializer '%s'", word ? word : "");
    if (cnt == 0)
        return sdc_err_set(err, SDC_ERR_ARG, "initializer '%s' has no tokens", word ? word : "");
    if (single && cnt != 1)
        return sdc_err_set(err, SDC_ERR_ARG, "initializer '%s' is %zu tokens; it must be a single token "
                           "(a word CLIP's vocabulary holds whole, e.g. 'dog')", word, cnt);
    if (cnt > SDC_EMB_MAX_VECTORS)
        return sdc_err_set(err, SDC_ERR_ARG, "initializer '%s' is %zu tokens; at most %d", word, cnt,
                           SDC_EMB_MAX_VECTORS);
    memcpy(ids, tmp, sizeof *ids * cnt);
    *n = (int)cnt;
    return SDC_OK;
}
