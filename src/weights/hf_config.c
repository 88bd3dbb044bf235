/* hf_config.c — small, strict JSON config reading (see hf_config.h). */
#include "hf_config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONFIG_BYTES (1 << 20)

cJSON *sdc_json_load(const char *path, sdc_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        sdc_err_set(err, SDC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_CONFIG_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_CONFIG_BYTES + 1, f) : 0;
    int read_err = ferror(f);
    fclose(f);
    if (!buf || read_err || n > MAX_CONFIG_BYTES) {
        free(buf);
        sdc_err_set(err, buf ? SDC_ERR_FORMAT : SDC_ERR_OOM, "%s: %s", path,
                    !buf ? "out of memory" : read_err ? "read error" : "larger than 1 MiB");
        return NULL;
    }
    buf[n] = '\0';
    cJSON *root = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        sdc_err_set(err, SDC_ERR_FORMAT, "%s: not a JSON object", path);
        return NULL;
    }
    return root;
}

sdc_status sdc_json_int(const cJSON *obj, const char *path, const char *key, long lo, long hi,
                        long def, int *out, sdc_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (def < lo) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: missing \"%s\"", path, key);
        *out = (int)def;
        return SDC_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"%s\" must be an integer in [%ld, %ld]",
                           path, key, lo, hi);
    *out = (int)d;
    return SDC_OK;
}

sdc_status sdc_json_float(const cJSON *obj, const char *path, const char *key, double lo,
                          double hi, double def, float *out, sdc_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (!(def >= lo)) return sdc_err_set(err, SDC_ERR_FORMAT, "%s: missing \"%s\"", path, key);
        *out = (float)def;
        return SDC_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= lo && d <= hi))
        return sdc_err_set(err, SDC_ERR_FORMAT, "%s: \"%s\" must be a number in [%g, %g]", path,
                           key, lo, hi);
    *out = (float)d;
    return SDC_OK;
}

const char *sdc_json_str(const cJSON *obj, const char *key, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}
