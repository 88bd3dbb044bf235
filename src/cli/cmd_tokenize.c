/* cmd_tokenize.c — sdc tokenize: the CLIP token ids SD 1.x would feed its
 * text encoder for a prompt (or the raw ids, untruncated). */
#include "cli.h"
#include "preflight.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_spec spec = {
    "tokenize", "[--vocab PATH | --model DIR] [--json] [--raw] TEXT",
    "Prints the 77 token ids of TEXT as SD 1.x uses them (BOS, the first 75\n"
    "tokens, EOS, padded with EOS), space-separated on one line; a warning goes\n"
    "to stderr when the prompt is longer and was cut. TEXT '-' reads the prompt\n"
    "from stdin; `-- TEXT` passes a prompt that starts with '-'. Ids match\n"
    "transformers' CLIPTokenizer (as installed without ftfy).", NULL};

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
        if (n == cap) {
            if (cap > ((size_t)512 << 20)) break; /* the library refuses > 256 MiB anyway */
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

static void print_ids(const int32_t *ids, size_t n, bool json, size_t tokens, bool truncated) {
    if (json) printf("{\"ids\": [");
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? (json ? ", " : " ") : "", ids[i]);
    if (json) printf("], \"tokens\": %zu, \"truncated\": %s}", tokens, truncated ? "true" : "false");
    printf("\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL, *model = NULL, *text = NULL, *prompt = NULL;
    bool json = false, raw = false;
    cli_opt opts[] = {
        CLI_VOCAB(&vocab),
        {"model", 'm', CLI_STRING, &model, .metavar = "DIR",
         .help = "a diffusers folder: DIR/tokenizer/vocab.json and merges.txt"},
        {"prompt", 'p', CLI_STRING, &prompt, .metavar = "TEXT", .help = "the prompt (or as the argument)"},
        {"raw", 0, CLI_FLAG, &raw, .help = "all ids, without BOS/EOS, padding or truncation"},
        {"json", 0, CLI_FLAG, &json, .help = "one JSON object: {\"ids\": [...], \"tokens\": N, \"truncated\": B}"},
        CLI_END};
    cli_positional pos = {&text, 1, 0, "TEXT"};
    int rc = cli_parse(&spec, opts, argc, argv, &pos);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (text && prompt) return cli_usage_error("tokenize", "give the prompt once (TEXT or --prompt)");
    if (!text) text = prompt;
    if (!text) return cli_usage_error("tokenize", "needs the prompt TEXT");
    if (vocab && model) return cli_usage_error("tokenize", "--vocab and --model exclude each other");

    sdc_err err = {0};
    sdc_tokenizer *tok;
    if (model) {
        char vj[PATH_MAX], mt[PATH_MAX];
        snprintf(vj, sizeof vj, "%s/tokenizer/vocab.json", model);
        snprintf(mt, sizeof mt, "%s/tokenizer/merges.txt", model);
        tok = sdc_tokenizer_load_files(vj, mt, &err);
    } else {
        char buf[PATH_MAX + 64];
        if (cli_find_vocab(vocab, buf, sizeof buf, &err)) return cli_error("tokenize", &err);
        tok = sdc_tokenizer_load_bpe_gz(buf, &err);
    }
    if (!tok) return cli_error("tokenize", &err);

    size_t len = 0;
    char *owned = NULL;
    if (strcmp(text, "-") == 0) {
        if (!(owned = read_stdin(&len))) {
            sdc_tokenizer_free(tok);
            fprintf(stderr, "sdc tokenize: out of memory reading stdin\n");
            return EXIT_RUNTIME;
        }
        text = owned;
    } else {
        len = strlen(text);
    }
    size_t total = 0;
    if (raw) {
        int32_t *ids = NULL;
        if (sdc_tokenize(tok, text, len, NULL, 0, &total, &err) ||
            !(ids = malloc((total ? total : 1) * sizeof *ids)) ||
            sdc_tokenize(tok, text, len, ids, total, &total, &err)) {
            if (!ids && !err.msg[0]) sdc_err_set(&err, SDC_ERR_OOM, "out of memory");
            rc = cli_error("tokenize", &err);
        } else {
            print_ids(ids, total, json, total, false);
        }
        free(ids);
    } else {
        int32_t ids[SDC_TOKENS_MAX];
        bool cut = false;
        if (sdc_tokenize_77(tok, text, len, ids, &cut, &err)) {
            rc = cli_error("tokenize", &err);
        } else {
            /* The full count, for the warning and --json (a second pass). */
            if (sdc_tokenize(tok, text, len, NULL, 0, &total, &err)) total = 0;
            if (cut)
                fprintf(stderr, "sdc tokenize: warning: the prompt is %zu tokens; only the first %d "
                                "are used\n", total, SDC_TOKENS_MAX - 2);
            print_ids(ids, SDC_TOKENS_MAX, json, total, cut);
        }
    }
    free(owned);
    sdc_tokenizer_free(tok);
    return rc;
}
