/* augment_train.h — the training phase of `sdc augment --method textinv
 * --train` (cmd_augment_train.c): each class of this shard learns its own
 * token from its own images before any image is generated with it. */
#ifndef SDC_CLI_AUGMENT_TRAIN_H
#define SDC_CLI_AUGMENT_TRAIN_H

#include "../augment/augment.h"
#include "../pipeline/embeddings.h"

#include <cJSON.h>

typedef struct aug_train_opts {
    bool on;                    /* --train */
    long long steps, batch, accum, size, ckpt_every, eval_samples, num_vectors;
    double lr;                  /* before scaling */
    bool no_scale;
    const char *init_token;     /* NULL: each class name's own tokens, one vector each */
} aug_train_opts;

/* The help text of these options. */
#define AUG_TRAIN_USAGE \
    "  --train                textinv: learn each class's token <class folder> from its\n" \
    "                         images first (OUT/<class>/.textinv/), then generate with it;\n" \
    "                         shards then split whole classes\n" \
    "  --train-steps N (1000) --train-batch N (4) --train-accum N (1)\n" \
    "  --train-lr X (5e-4, times batch x accum unless --train-no-scale-lr)\n" \
    "  --train-size N         training image side (default: the smaller side of --size)\n" \
    "  --train-init WORD      one-token initializer for every class (default: each class\n" \
    "                         name's tokens, one vector per token, as DA-Fusion)\n" \
    "  --train-vectors N      vectors per token with --train-init (default 1)\n" \
    "  --train-checkpoint-every N (10)  --train-eval-samples N (16)\n"

/* The token of a class: "<folder>" with whitespace, control characters and
 * '/', '\\', '{', '}' turned into '-'. */
void aug_train_token(const char *folder, char *token, size_t cap);

/* Trains the tokens of this shard's classes (class % sn == sk) that have
 * items, each into out/<folder>/.textinv/ (resumed; a finished class is only
 * read back), after checking every one's images and initializer first, so
 * that a bad class stops the run before anything is written. Fills sets[c]
 * with the learned embedding and extra[c] with the manifest fields (token,
 * token_file, token_sha256, token_steps, token_loss, token_init_loss). */
sdc_status aug_train_classes(const aug_train_opts *o, const char *data, const char *out,
                             const char *model, const char *vocab, uint64_t seed,
                             const aug_dataset *d, const aug_plan *plan, long long sk, long long sn,
                             bool quiet, sdc_embedding_set **sets, cJSON **extra, sdc_err *err);

#endif
