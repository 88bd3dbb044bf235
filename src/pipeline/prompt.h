/* prompt.h — from a prompt string to the token ids and per-token weights the
 * CLIP text encoder needs, in diffusers' plain syntax or A1111's emphasis
 * syntax, with textual-inversion triggers replaced by placeholder ids.
 *
 *     sdc_cond_plan plan;
 *     if (sdc_prompt_plan(tok, "a (red:1.3) cat", SDC_PROMPT_A1111, emb, &plan, &err)) ...
 *     for (int c = 0; c < plan.n_chunks; c++) {
 *         // encode plan.ids + 77*c (ids >= SDC_EMB_ID_BASE: embedding table rows)
 *         // into z [77, 768], then
 *         sdc_prompt_apply_weights(z, plan.weights + 77*c, 77, 768);
 *     }
 *     // conditioning = the chunks' z concatenated along the token axis
 *     sdc_cond_plan_free(&plan);
 *
 * The default for `sdc generate` is SDC_PROMPT_PLAIN: it reproduces
 * StableDiffusionPipeline exactly (one 77-token chunk, no emphasis), so sdc's
 * images can be checked against diffusers; a1111 is opt-in for prompts
 * written for the web UI. */
#ifndef SDC_PIPELINE_PROMPT_H
#define SDC_PIPELINE_PROMPT_H

#include "sdc.h"
#include "embeddings.h"

#define SDC_PROMPT_CHUNK 75        /* content tokens per chunk (77 with BOS and EOS) */
#define SDC_PROMPT_MAX_CHUNKS 32   /* 2400 content tokens; the rest is dropped (truncated) */
#define SDC_PROMPT_MAX_DEPTH 256   /* bracket nesting beyond this is an error */
#define SDC_PROMPT_COMMA_BACKTRACK 20 /* A1111's default "comma padding backtrack" */

typedef enum sdc_prompt_syntax { SDC_PROMPT_PLAIN = 0, SDC_PROMPT_A1111 } sdc_prompt_syntax;

/* "plain" / "a1111"; false for anything else. */
bool sdc_prompt_syntax_from_name(const char *name, sdc_prompt_syntax *out);
const char *sdc_prompt_syntax_name(sdc_prompt_syntax s);

typedef struct sdc_cond_plan {
    int n_chunks;
    int32_t *ids;     /* [n_chunks * 77]: BOS, 75 content ids padded with EOS, EOS */
    float *weights;   /* [n_chunks * 77]: 1.0 on BOS, EOS and padding */
    bool truncated;   /* tokens were dropped (plain: past 75; a1111: past MAX_CHUNKS) */
} sdc_cond_plan;

/* Builds the plan for prompt (NUL-terminated UTF-8; invalid UTF-8 is
 * SDC_ERR_ARG naming the byte offset). emb may be NULL. On failure *out is
 * zeroed. */
sdc_status sdc_prompt_plan(const sdc_tokenizer *tok, const char *prompt, sdc_prompt_syntax syntax,
                           const sdc_embedding_set *emb, sdc_cond_plan *out, sdc_err *err);
void sdc_cond_plan_free(sdc_cond_plan *p);
/* Appends empty chunks (BOS, EOS x76, weights 1) until p has n_chunks, as A1111
 * does so that a prompt and its negative prompt have the same length. */
sdc_status sdc_cond_plan_pad(sdc_cond_plan *p, const sdc_tokenizer *tok, int n_chunks, sdc_err *err);

/* A1111's weighting of one chunk's hidden states z [n_tokens, dim] in place:
 * each row times its weight, then all of z times old_mean / new_mean so the
 * mean over z is restored (means in double; left unscaled when the new mean
 * is 0 or not finite, where A1111 would produce Inf/NaN). Call once per
 * 77-token chunk: A1111 takes the mean per chunk. All-1 weights change nothing. */
void sdc_prompt_apply_weights(float *z, const float *weights, int n_tokens, int dim);

/* One piece of A1111's parse: text with its weight, or a BREAK marker. */
typedef struct sdc_prompt_piece {
    const char *text;  /* NUL-terminated, len bytes ("" for a BREAK) */
    size_t len;
    double weight;     /* product of the multipliers, in A1111's order (Python floats) */
    bool is_break;
} sdc_prompt_piece;

/* A1111's parse_prompt_attention, rebuilt from its documented behaviour (see
 * prompt_parse.c). *pieces is one allocation: free() it. Never empty: a
 * prompt without text gives one piece "" of weight 1. */
sdc_status sdc_prompt_parse_a1111(const char *text, sdc_prompt_piece **pieces, size_t *n, sdc_err *err);

#endif
