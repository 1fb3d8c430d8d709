#include "selfsup/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ss_status ss_fail(ss_error *err, ss_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

ss_status ss_error_prefix(ss_error *err, const char *fmt, ...) {
    if (!err) return SS_ERR_ARG;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t np = strlen(prefix), no = strnlen(old, sizeof old - 1);
    if (np > sizeof err->msg - 1) np = sizeof err->msg - 1;
    if (no > sizeof err->msg - 1 - np) no = sizeof err->msg - 1 - np;
    memcpy(err->msg, prefix, np);
    memcpy(err->msg + np, old, no);
    err->msg[np + no] = '\0';
    return err->code;
}

const char *ss_status_name(ss_status code) {
    switch (code) {
    case SS_OK: return "ok";
    case SS_ERR_ARG: return "invalid argument";
    case SS_ERR_IO: return "i/o error";
    case SS_ERR_FORMAT: return "format error";
    case SS_ERR_CHECKSUM: return "checksum mismatch";
    case SS_ERR_NOT_FOUND: return "not found";
    case SS_ERR_RANGE: return "out of range";
    case SS_ERR_NOMEM: return "out of memory";
    case SS_ERR_EXTERNAL: return "external program failed";
    }
    return "unknown error";
}
