/* fuzz_prompt.c — libFuzzer target: A1111 emphasis parsing
 * (sdc_prompt_parse_a1111) and sdc_prompt_plan in both syntaxes, on the input
 * as a NUL-terminated string. The tokenizer is loaded once, as in
 * fuzz_tokenizer ($SDC_FUZZ_VOCAB or weights/bpe_simple_vocab_16e6.txt.gz). */
#include "pipeline/prompt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sdc_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *path = getenv("SDC_FUZZ_VOCAB");
    if (!path) path = "weights/bpe_simple_vocab_16e6.txt.gz";
    sdc_err err = {0};
    tok = sdc_tokenizer_load_bpe_gz(path, &err);
    if (!tok) {
        fprintf(stderr, "fuzz_prompt: %s (run from the repo root after make setup)\n", err.msg);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;

    sdc_err err = {0};
    sdc_prompt_piece *pieces = NULL;
    size_t n = 0;
    if (sdc_prompt_parse_a1111(s, &pieces, &n, &err) == SDC_OK) {
        if (n == 0 || !pieces) __builtin_trap();   /* documented: never empty */
        for (size_t i = 0; i < n; i++)
            if (!pieces[i].text || strlen(pieces[i].text) != pieces[i].len) __builtin_trap();
    }
    free(pieces);

    for (int syn = 0; syn < 2; syn++) {
        sdc_cond_plan plan;
        sdc_err e2 = {0};
        if (sdc_prompt_plan(tok, s, syn ? SDC_PROMPT_A1111 : SDC_PROMPT_PLAIN, NULL, &plan, &e2) ==
            SDC_OK) {
            if (plan.n_chunks < 1 || plan.n_chunks > SDC_PROMPT_MAX_CHUNKS) __builtin_trap();
            for (int i = 0; i < plan.n_chunks * 77; i++)
                if (plan.ids[i] < 0 || plan.ids[i] >= SDC_EMB_ID_BASE) __builtin_trap();
            sdc_err e3 = {0};
            (void)sdc_cond_plan_pad(&plan, tok, plan.n_chunks + 1, &e3);
            sdc_cond_plan_free(&plan);
        }
    }
    free(s);
    return 0;
}
