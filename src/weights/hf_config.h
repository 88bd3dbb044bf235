/* hf_config.h — reading the config.json files of diffusers/transformers
 * folders into sdc's model configs, with range checks on every value. */
#ifndef SDC_HF_CONFIG_H
#define SDC_HF_CONFIG_H

#include "sdc.h"

#include <cJSON.h>

/* Parses a JSON file (at most 1 MiB). Caller frees with cJSON_Delete. */
cJSON *sdc_json_load(const char *path, sdc_err *err);
/* An integer field in [lo, hi], or def when absent (def < lo: required). */
sdc_status sdc_json_int(const cJSON *obj, const char *path, const char *key, long lo, long hi,
                        long def, int *out, sdc_err *err);
sdc_status sdc_json_float(const cJSON *obj, const char *path, const char *key, double lo,
                          double hi, double def, float *out, sdc_err *err);
/* A string field, or def when absent. Returns a pointer into obj. */
const char *sdc_json_str(const cJSON *obj, const char *key, const char *def);

#endif
