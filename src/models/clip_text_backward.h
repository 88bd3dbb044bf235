/* clip_text_backward.h — reverse mode through the frozen CLIP text encoder:
 * d loss / d the textual-inversion rows (the token embeddings of ids >= vocab,
 * sdc_clip_text_forward's `extra`). No weight gradient is computed.
 *
 *     sdc_clip_tape tape;
 *     sdc_tensor c = sdc_clip_text_forward_tape(ex, clip, ids, B, 0, extra, n, &tape);
 *     ... dc = d loss / d c [B, 77, D] ...
 *     sdc_clip_text_backward(ex, clip, &tape, dc, grad);   // grad [n, D]; frees the tape
 *
 * The tape keeps each layer's input [B, 77, D] (a few MB); the backward
 * reruns one layer at a time from it. */
#ifndef SDC_CLIP_TEXT_BACKWARD_H
#define SDC_CLIP_TEXT_BACKWARD_H

#include "clip_text.h"

typedef struct sdc_clip_tape {
    sdc_tensor *x;         /* [layers run + 1]: each layer's input, then the final norm's */
    int nx;
    int batch;
    const int32_t *ids;    /* [B, max_pos], the caller's: which rows are extra */
    int n_extra;
} sdc_clip_tape;

/* sdc_clip_text_forward (the same result) that fills *tape. ids must stay
 * alive until sdc_clip_text_backward. On failure the tape is released. */
sdc_tensor sdc_clip_text_forward_tape(sdc_exec *ex, const sdc_clip_text *m, const int32_t *ids,
                                      int batch, int skip, const float *extra, int n_extra,
                                      sdc_clip_tape *tape);

/* dy: d loss / d last_hidden_state [B, max_pos, D]. grad [n_extra, D] (host)
 * gets d loss / d extra: the embedding gradient of every position whose id
 * is vocab + r, summed into row r (overwritten). Releases the tape. */
sdc_status sdc_clip_text_backward(sdc_exec *ex, const sdc_clip_text *m, sdc_clip_tape *tape,
                                  sdc_tensor dy, float *grad);

void sdc_clip_tape_free(sdc_exec *ex, sdc_clip_tape *tape);

#endif
