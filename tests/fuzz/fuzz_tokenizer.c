/* fuzz_tokenizer.c — libFuzzer target: CLIP's BPE tokenizer (loaded once from
 * weights/bpe_simple_vocab_16e6.txt.gz, or $SDC_FUZZ_VOCAB) on the raw input
 * bytes: sdc_tokenize with a small and a large cap, then sdc_tokenize_77. */
#include "sdc.h"

#include <stdio.h>
#include <stdlib.h>

static sdc_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *path = getenv("SDC_FUZZ_VOCAB");
    if (!path) path = "weights/bpe_simple_vocab_16e6.txt.gz";
    sdc_err err = {0};
    tok = sdc_tokenizer_load_bpe_gz(path, &err);
    if (!tok) {
        fprintf(stderr, "fuzz_tokenizer: %s (run from the repo root after make setup)\n", err.msg);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int32_t ids[4096];
    sdc_err err = {0};
    size_t n = 0, n2 = 0;
    sdc_status s = sdc_tokenize(tok, (const char *)data, size, ids, 8, &n, &err);
    sdc_err err2 = {0};
    sdc_status s2 = sdc_tokenize(tok, (const char *)data, size, ids, 4096, &n2, &err2);
    if (s != s2 || (s == SDC_OK && n != n2)) __builtin_trap(); /* cap must not change the count */
    if (s2 == SDC_OK)
        for (size_t i = 0; i < n2 && i < 4096; i++)
            if (ids[i] < 0 || ids[i] >= 49408) __builtin_trap();
    int32_t ids77[SDC_TOKENS_MAX];
    bool cut = false;
    sdc_err err3 = {0};
    if (sdc_tokenize_77(tok, (const char *)data, size, ids77, &cut, &err3) == SDC_OK)
        for (int i = 0; i < SDC_TOKENS_MAX; i++)
            if (ids77[i] < 0 || ids77[i] >= 49408) __builtin_trap();
    return 0;
}
