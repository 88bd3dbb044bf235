/* status.c — error slots: a status code plus a message naming the culprit. */
#include "sdc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sdc_status sdc_err_set(sdc_err *err, sdc_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

sdc_status sdc_err_wrap(sdc_err *err, const char *fmt, ...) {
    if (!err) return SDC_ERR_ARG;
    char prefix[SDC_ERR_MSG_MAX], old[SDC_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Truncation is fine here: the message stays NUL-terminated. */
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3, len = strlen(old);
    if (len > room) len = room;
    memcpy(err->msg + n + 2, old, len);
    err->msg[n + 2 + len] = '\0';
    return err->code;
}

const char *sdc_status_name(sdc_status s) {
    switch (s) {
    case SDC_OK: return "ok";
    case SDC_ERR_ARG: return "invalid argument";
    case SDC_ERR_IO: return "i/o error";
    case SDC_ERR_FORMAT: return "malformed input";
    case SDC_ERR_SHAPE: return "shape mismatch";
    case SDC_ERR_UNSUPPORTED: return "unsupported";
    case SDC_ERR_OOM: return "out of memory";
    case SDC_ERR_NUMERIC: return "non-finite value";
    case SDC_ERR_DEVICE: return "device error";
    }
    return "unknown status";
}
