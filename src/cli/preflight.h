/* preflight.h — what the commands check before they load a model or sample:
 * the CLIP vocabulary is found, an output path can be written, the disk has
 * room, the checkpoint has the parts the command needs. Each failure prints
 * nothing: it fills an sdc_err the command reports. */
#ifndef SDC_CLI_PREFLIGHT_H
#define SDC_CLI_PREFLIGHT_H

#include "sdc.h"

#include <stdbool.h>
#include <stddef.h>

#define CLI_VOCAB_NAME "bpe_simple_vocab_16e6.txt.gz"

/* The CLIP merges file: explicit (--vocab) if given, else the first of
 * $SDC_VOCAB, next to the sdc binary, <prefix>/share/sdc/ (the binary's
 * ../share/sdc, then the build's PREFIX), ./weights/, and ../weights or
 * ../../weights from the binary (a build tree). Writes the path to out. A
 * miss is SDC_ERR_IO with every place tried and how to fix it. */
sdc_status cli_find_vocab(const char *explicit_path, char *out, size_t cap, sdc_err *err);

/* The vocabulary a model uses: a diffusers folder's own tokenizer/ files when
 * it has them and no --vocab is given (*path = NULL then), else
 * cli_find_vocab's. */
sdc_status cli_model_vocab(const char *model, const char *explicit_path, char *buf, size_t cap,
                           const char **path, sdc_err *err);

/* An output file path can be created: its folder exists and takes a new file
 * (probed with a temp file, since root ignores permission bits), and the path
 * is not a folder. what names it ("-o", "--preview"). */
sdc_status cli_check_writable(const char *path, const char *what, sdc_err *err);
/* The same for an output folder that may not exist yet (then its parent). */
sdc_status cli_check_writable_dir(const char *dir, const char *what, sdc_err *err);
/* The file system holding path (a file or folder) has bytes free. */
sdc_status cli_check_space(const char *path, unsigned long long bytes, const char *what,
                           sdc_err *err);
/* The checkpoint has these parts (a mask of 1 << SDC_COMPONENT_*). */
sdc_status cli_check_model_parts(const char *model, unsigned parts, sdc_err *err);

/* Bytes an RGB PNG of w x h can take at most (stored, not compressed), plus
 * its text: a bound for the space check. */
unsigned long long cli_png_bound(int w, int h);

#endif
