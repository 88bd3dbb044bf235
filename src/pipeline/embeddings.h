/* embeddings.h — textual-inversion embeddings: trigger words mapped to learned
 * token vectors, loaded from safetensors files (A1111 and diffusers layouts).
 *
 *     sdc_embedding_set *set;
 *     if (sdc_embeddings_load(&set, "embeddings/", 768, &err)) return fail(err.msg);
 *     int n;
 *     const float *v = sdc_embeddings_find(set, "<cat-toy>", &n);  // [n, 768] or NULL
 *     ... sdc_prompt_plan(tok, prompt, SDC_PROMPT_A1111, set, &plan, &err) ...
 *     sdc_embeddings_free(set);
 *
 * All vectors of all triggers live in one table [n_rows, dim]; trigger i owns
 * rows [row, row + n_vectors). A prompt plan refers to row r by the
 * placeholder token id SDC_EMB_ID_BASE + r (ids past CLIP's 49408-entry
 * vocabulary), which the text encoder replaces by that row before adding
 * position embeddings. */
#ifndef SDC_PIPELINE_EMBEDDINGS_H
#define SDC_PIPELINE_EMBEDDINGS_H

#include "sdc.h"

#define SDC_EMB_ID_BASE 49408   /* CLIP's vocabulary size: first id that is not a token */
#define SDC_EMB_MAX_VECTORS 75  /* one chunk of content tokens */
#define SDC_EMB_MAX_ROWS (1 << 20) /* sanity bound on the whole table */

typedef struct sdc_embedding_set sdc_embedding_set;

/* Loads one .safetensors file or every .safetensors in a directory (sorted by
 * name, hidden files skipped). dim is the text encoder's width (768 for SD
 * 1.x). Pickle files (.pt .pth .bin .ckpt) are refused. On failure *set is
 * NULL and err names the file and the reason. */
sdc_status sdc_embeddings_load(sdc_embedding_set **set, const char *path, int dim, sdc_err *err);
void sdc_embeddings_free(sdc_embedding_set *s);
/* A set of one trigger word whose vectors [n_vectors, dim] are copied from
 * memory (a textual-inversion run's current embedding, for its prompts and
 * validation images). Same checks as a file's: word non-empty UTF-8, 1 to
 * SDC_EMB_MAX_VECTORS vectors, finite values. */
sdc_status sdc_embeddings_from_memory(sdc_embedding_set **set, const char *word,
                                      const float *vectors, int n_vectors, int dim, sdc_err *err);

/* Number of trigger words (0 for NULL). */
size_t sdc_embeddings_count(const sdc_embedding_set *s);
/* The vectors [n_vectors, dim] of a trigger word (exact, case-sensitive), or NULL. */
const float *sdc_embeddings_find(const sdc_embedding_set *s, const char *word, int *n_vectors);
/* Trigger i (0..count-1, in load order): word, first table row, vector count
 * and the file it came from. Any out pointer may be NULL; false if i is out
 * of range. */
bool sdc_embeddings_at(const sdc_embedding_set *s, size_t i, const char **word, size_t *row,
                       int *n_vectors, const char **file);
/* The whole table [*n_rows, *dim] (row r is placeholder id SDC_EMB_ID_BASE + r). */
const float *sdc_embeddings_table(const sdc_embedding_set *s, size_t *n_rows, int *dim);

#endif
