/* sbuf.h — a growable text buffer for the report renderings (Markdown,
 * HTML): printf, HTML escaping and base64 appends. An allocation failure is
 * sticky: sb_take then returns NULL. */
#ifndef SDC_EVAL_SBUF_H
#define SDC_EVAL_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_puts(sbuf *b, const char *s);
/* s with & < > " ' escaped for HTML text and attribute values. */
void sb_html(sbuf *b, const char *s);
/* s with | and newlines escaped for a Markdown table cell. */
void sb_md(sbuf *b, const char *s);
void sb_base64(sbuf *b, const uint8_t *d, size_t n);
/* The text (malloc'ed, the caller frees), or NULL after an allocation failure. */
char *sb_take(sbuf *b);

#endif
