/* bpe_vocab.h — the inside of sdc_tokenizer, shared by bpe_vocab.c (loading)
 * and tokenizer.c (encoding). Symbols are interned strings: every vocabulary
 * entry, every byte symbol and every merge part/result has one; BPE works on
 * symbol indices and maps the final ones to vocabulary ids. */
#ifndef SDC_TEXT_BPE_VOCAB_H
#define SDC_TEXT_BPE_VOCAB_H

#include "sdc.h"

#include <stdint.h>

#define SDC_BPE_NO_RANK UINT32_MAX
/* transformers and CLIP keep merges[1 : 49152 - 256 - 2 + 1]. */
#define SDC_BPE_MAX_MERGES (49152 - 256 - 2)

typedef struct sdc_bpe_sym {
    uint32_t off, len; /* the UTF-8 string in pool */
    int32_t id;        /* vocabulary id, or -1 if not in the vocabulary (-> unk) */
} sdc_bpe_sym;

typedef struct sdc_bpe_merge {
    uint32_t a, b, ab; /* symbols: first, second, their concatenation */
} sdc_bpe_merge;

struct sdc_tokenizer {
    char *pool;
    size_t pool_len, pool_cap;
    sdc_bpe_sym *syms;
    uint32_t n_syms, syms_cap;
    uint32_t *sym_slots; /* open addressing: symbol index + 1, 0 = empty */
    uint32_t sym_mask;
    sdc_bpe_merge *merges; /* [n_merges], index = rank */
    uint32_t n_merges;
    uint64_t *pair_keys; /* open addressing: a << 32 | b, UINT64_MAX = empty */
    uint32_t *pair_rank;
    uint32_t pair_mask;
    uint32_t byte_sym[256], byte_sym_w[256]; /* symbol of byte b, and of b + "</w>" */
    int32_t bos, eos, unk;
};

/* The merge rank of the adjacent pair (a, b), or SDC_BPE_NO_RANK. */
uint32_t sdc_bpe_rank(const sdc_tokenizer *t, uint32_t a, uint32_t b);
/* A 64-bit hash of n bytes (FNV-1a with a final mix). */
uint64_t sdc_hash_bytes(const void *p, size_t n);

#endif
