/* cmd_textinv_init.c — sdc textinv-init: an A1111-format textual-inversion
 * file whose vectors are the text encoder's token embeddings of a word, the
 * usual starting point of textual-inversion training (and what `make demo`
 * uses in place of learned embeddings). */
#include "cli.h"
#include "preflight.h"

#include "../models/checkpoint.h"

#include <stdlib.h>
#include <string.h>

static const cli_spec spec = {
    "textinv-init", "--model M --word WORD [--vocab PATH] -o OUT.safetensors",
    "Writes emb_params [n, D]: the token embeddings of WORD's n CLIP tokens (at most 75)\n"
    "from the checkpoint M. The trigger word of the file is its name without .safetensors.",
    NULL};

int cmd_textinv_init(int argc, char **argv) {
    const char *model = NULL, *word = NULL, *out = NULL, *vocab_arg = NULL;
    cli_opt opts[] = {
        CLI_MODEL(&model, CLI_REQUIRED),
        {"word", 0, CLI_STRING, &word, CLI_REQUIRED, .metavar = "WORD", .help = "the initializing word(s)"},
        CLI_OUT(&out, CLI_REQUIRED, "OUT.safetensors"),
        CLI_VOCAB(&vocab_arg),
        CLI_END};
    int rc = cli_parse(&spec, opts, argc, argv, NULL);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    sdc_err pre = {0};
    char vocab[4096];
    if (cli_find_vocab(vocab_arg, vocab, sizeof vocab, &pre) || cli_check_writable(out, "-o", &pre))
        return cli_error("textinv-init", &pre);
    sdc_err err = {0};
    sdc_status s = SDC_OK;
    sdc_backend *be = sdc_cpu_backend_create(&err);
    sdc_checkpoint *ck = be ? sdc_checkpoint_open(model, &err) : NULL;
    sdc_tokenizer *tok = ck ? sdc_tokenizer_load_bpe_gz(vocab, &err) : NULL;
    sdc_clip_text clip = {0};
    sdc_tensor *emb = NULL;
    int32_t ids[76];
    size_t n = 0;
    if (!tok) s = err.code ? err.code : SDC_ERR_IO;
    if (!s) s = sdc_tokenize(tok, word, strlen(word), ids, 76, &n, &err);
    if (!s && (n < 1 || n > 75))
        s = sdc_err_set(&err, SDC_ERR_ARG, "--word '%s' has %zu tokens; 1 to 75 are allowed",
                        word, n);
    if (!s) s = sdc_clip_text_load(&clip, ck, be, &err);
    int D = clip.cfg.width;
    if (!s && !(emb = sdc_tensor_new(SDC_F32, 2, (const int64_t[]){(int64_t)n, D}, &err)))
        s = err.code;
    /* One row of the (possibly F16, memory-mapped) token table per token. */
    size_t esz = s ? 0 : sdc_dtype_size(clip.token_emb.dtype);
    for (size_t i = 0; !s && i < n; i++)
        s = sdc_convert((float *)emb->data + i * D, SDC_F32,
                        (const char *)clip.token_emb.data + (size_t)ids[i] * D * esz,
                        clip.token_emb.dtype, (size_t)D, &err);
    if (!s) {
        sdc_st_write_item item = {"emb_params", emb};
        s = sdc_safetensors_write(out, &item, 1, NULL, 0, &err);
    }
    sdc_tensor_free(emb);
    sdc_clip_text_free(&clip);
    sdc_tokenizer_free(tok);
    sdc_checkpoint_close(ck);
    sdc_backend_destroy(be);
    if (s) return cli_error("textinv-init", &err);
    printf("%s: %zu vector(s) of width %d for '%s'\n", out, n, D, word);
    return EXIT_OK;
}
