/* cmd_tokenize.c — sdc tokenize: the CLIP token ids SD 1.x would feed its
 * text encoder for a prompt (or the raw ids, untruncated). */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VOCAB_NAME "bpe_simple_vocab_16e6.txt.gz"

static const char *usage =
    "usage: sdc tokenize [--vocab PATH | --model DIR] [--json] [--raw] TEXT\n\n"
    "Prints the 77 token ids of TEXT as SD 1.x uses them (BOS, the first 75\n"
    "tokens, EOS, padded with EOS), space-separated on one line; a warning goes\n"
    "to stderr when the prompt is longer and was cut. TEXT '-' reads the prompt\n"
    "from stdin; `-- TEXT` passes a prompt that starts with '-'. Ids match\n"
    "transformers' CLIPTokenizer (as installed without ftfy).\n\n"
    "  --vocab PATH  CLIP's merges file (default: weights/" VOCAB_NAME "\n"
    "                in the current directory, else in ../weights/ or ../../weights/\n"
    "                from the binary's directory)\n"
    "  --model DIR   a diffusers folder: DIR/tokenizer/vocab.json and merges.txt\n"
    "  --raw         all ids, without BOS/EOS, padding or truncation\n"
    "  --json        one JSON object: {\"ids\": [...], \"tokens\": N, \"truncated\": B}\n";

static bool exists(const char *p) { return access(p, R_OK) == 0; }

/* weights/<vocab> under the current directory, then ../weights and
 * ../../weights next to the binary; NULL (with the tried paths in tried) if none. */
static const char *default_vocab(char *buf, size_t cap, char *tried, size_t tcap) {
    snprintf(tried, tcap, "weights/" VOCAB_NAME);
    if (exists("weights/" VOCAB_NAME)) return "weights/" VOCAB_NAME;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    static const char *const rel[] = {"../weights/", "../../weights/"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(buf, cap, "%s/%s" VOCAB_NAME, exe, rel[i]);
        size_t used = strlen(tried);
        snprintf(tried + used, tcap - used, ", %s", buf);
        if (exists(buf)) return buf;
    }
    return NULL;
}

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
    const char *vocab = NULL, *model = NULL, *text = NULL;
    bool json = false, raw = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--vocab") == 0 || strcmp(argv[i], "--model") == 0) {
            if (i + 1 >= argc) return cli_usage_error("tokenize", "%s needs a value", argv[i]);
            *(argv[i][2] == 'v' ? &vocab : &model) = argv[i + 1];
            i++;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--raw") == 0) {
            raw = true;
        } else if (strcmp(argv[i], "--") == 0) { /* the prompt follows, even if it starts with '-' */
            if (text || i + 2 != argc) return cli_usage_error("tokenize", "'--' must precede the one TEXT");
            text = argv[++i];
        } else if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0) {
            return cli_usage_error("tokenize", "unknown option '%s'", argv[i]);
        } else if (!text) {
            text = argv[i];
        } else {
            return cli_usage_error("tokenize", "unexpected argument '%s' (quote the prompt)", argv[i]);
        }
    }
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
        char buf[PATH_MAX + 64], tried[3 * PATH_MAX];
        if (!vocab && !(vocab = default_vocab(buf, sizeof buf, tried, sizeof tried))) {
            fprintf(stderr, "sdc tokenize: CLIP's vocabulary %s not found (tried %s); run `make "
                            "setup` or pass --vocab PATH\n", VOCAB_NAME, tried);
            return EXIT_RUNTIME;
        }
        tok = sdc_tokenizer_load_bpe_gz(vocab, &err);
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
    int rc = EXIT_OK;
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
