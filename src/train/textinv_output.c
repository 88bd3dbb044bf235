/* textinv_output.c — see textinv_output.h. */
#include "textinv_output.h"

#include "../core/atomic_file.h"
#include "../core/sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sdc_ti_a1111_name(const char *token, char *name, size_t cap) {
    size_t n = strlen(token);
    const char *p = token;
    if (n > 2 && token[0] == '<' && token[n - 1] == '>') p++, n -= 2;
    snprintf(name, cap, "%.*s.safetensors", (int)n, p);
}

sdc_status sdc_ti_write_embeddings(const char *dir, const char *token, const float *emb, int n,
                                   int D, char learned_sha256[65], sdc_err *err) {
    sdc_tensor t;
    sdc_status s = sdc_tensor_init(&t, SDC_F32, 2, (const int64_t[]){n, D}, (void *)emb, err);
    if (s) return s;
    char path[4352], name[256];
    snprintf(path, sizeof path, "%s/%s", dir, SDC_TI_LEARNED_EMBEDS);
    sdc_st_write_item item = {token, &t};
    const char *meta[] = {"format", "pt"};
    if ((s = sdc_safetensors_write(path, &item, 1, meta, 1, err))) return s;
    if (learned_sha256 && (s = sdc_sha256_file(path, learned_sha256, err))) return s;
    sdc_ti_a1111_name(token, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    item.name = "emb_params";
    return sdc_safetensors_write(path, &item, 1, NULL, 0, err);
}

sdc_status sdc_ti_write_loss_csv(const char *path, const float *loss, int n, sdc_err *err) {
    size_t cap = 16 + (size_t)n * 32;
    char *buf = malloc(cap);
    if (!buf) return sdc_err_set(err, SDC_ERR_OOM, "%s: out of memory", path);
    size_t len = (size_t)snprintf(buf, cap, "step,loss\n");
    for (int i = 0; i < n; i++) len += (size_t)snprintf(buf + len, cap - len, "%d,%.9g\n", i + 1, loss[i]);
    sdc_status s = sdc_write_file_atomic(path, buf, len, err);
    free(buf);
    return s;
}
