/* textinv_output.h — what a textual-inversion run leaves in its folder, each
 * file written atomically:
 *   learned_embeds.safetensors  diffusers' layout: {token: F32 [n, D]},
 *                               metadata {"format": "pt"}, as save_progress()
 *                               writes it (load_textual_inversion, sdc)
 *   NAME.safetensors            A1111's layout: emb_params F32 [n, D]; NAME is
 *                               the token without its enclosing <...>, A1111's
 *                               trigger word (as `sdc textinv-init` writes)
 *   loss.csv                    step,loss: each update's mean loss
 *   train.json                  the run's settings and results (written last:
 *                               its presence means the run finished)
 * Nothing in them depends on time or machine, so a resumed run ends with the
 * same bytes as an uninterrupted one. */
#ifndef SDC_TRAIN_TEXTINV_OUTPUT_H
#define SDC_TRAIN_TEXTINV_OUTPUT_H

#include "sdc.h"

#define SDC_TI_LEARNED_EMBEDS "learned_embeds.safetensors"

/* A1111's file name for token: "<cat-toy>" -> "cat-toy.safetensors" (a token
 * that is only brackets keeps them). cap >= strlen(token) + 13. */
void sdc_ti_a1111_name(const char *token, char *name, size_t cap);

/* Writes both embedding files of emb [n, D] into dir; learned_sha256
 * (may be NULL) receives the hex SHA-256 of learned_embeds.safetensors. */
sdc_status sdc_ti_write_embeddings(const char *dir, const char *token, const float *emb, int n,
                                   int D, char learned_sha256[65], sdc_err *err);

/* "step,loss" then one line per update (loss with 9 significant digits). */
sdc_status sdc_ti_write_loss_csv(const char *path, const float *loss, int n, sdc_err *err);

#endif
