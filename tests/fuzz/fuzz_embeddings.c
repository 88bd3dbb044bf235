/* fuzz_embeddings.c — libFuzzer target: the textual-inversion loader
 * (sdc_embeddings_load). It only takes a path, so the input minus its first
 * byte is written to one per-process .safetensors file on tmpfs (/dev/shm, or
 * $SDC_FUZZ_TMPDIR). The first byte picks the text encoder width: 768 (SD
 * 1.x) or 4 / 8, small enough for the fuzzer to build valid tables. A loaded
 * set is walked (at, find, table) and used in an A1111 prompt plan naming its
 * first trigger. */
#include "pipeline/embeddings.h"
#include "pipeline/prompt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];
static sdc_tokenizer *tok;

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("SDC_FUZZ_TMPDIR");
    if (!dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/sdc-fuzz-emb-%d.safetensors", dir, (int)getpid());
    atexit(cleanup);
    const char *vocab = getenv("SDC_FUZZ_VOCAB");
    if (!vocab) vocab = "weights/bpe_simple_vocab_16e6.txt.gz";
    sdc_err err = {0};
    tok = sdc_tokenizer_load_bpe_gz(vocab, &err);
    if (!tok) {
        fprintf(stderr, "fuzz_embeddings: %s (run from the repo root after make setup)\n", err.msg);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int dims[] = {4, 8, 768};
    int dim = dims[data[0] % 3];
    data++, size--;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    if (off != size) return 0;

    sdc_embedding_set *set = NULL;
    sdc_err err = {0};
    if (sdc_embeddings_load(&set, path, dim, &err) != SDC_OK) {
        if (set) __builtin_trap();   /* documented: NULL on failure */
        return 0;
    }
    size_t n_rows = 0;
    int tdim = 0;
    const float *table = sdc_embeddings_table(set, &n_rows, &tdim);
    if (tdim != dim || (n_rows && !table)) __builtin_trap();
    const char *first = NULL;
    for (size_t i = 0, n = sdc_embeddings_count(set); i < n; i++) {
        const char *word = NULL, *file = NULL;
        size_t row = 0;
        int nv = 0;
        if (!sdc_embeddings_at(set, i, &word, &row, &nv, &file) || !word) __builtin_trap();
        if (nv < 1 || nv > SDC_EMB_MAX_VECTORS || row + (size_t)nv > n_rows) __builtin_trap();
        int nv2 = 0;
        if (!sdc_embeddings_find(set, word, &nv2)) __builtin_trap();
        if (!first) first = word;
    }
    if (first && strlen(first) < 200) {
        char prompt[512];
        snprintf(prompt, sizeof prompt, "a (%s:1.2) photo, %s", first, first);
        sdc_cond_plan plan;
        sdc_err e2 = {0};
        if (sdc_prompt_plan(tok, prompt, SDC_PROMPT_A1111, set, &plan, &e2) == SDC_OK)
            sdc_cond_plan_free(&plan);
    }
    sdc_embeddings_free(set);
    return 0;
}
