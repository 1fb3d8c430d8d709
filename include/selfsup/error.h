/* Errors are values: library functions return ss_status (SS_OK == 0) and, on
 * failure, fill an ss_error whose message names the file, line or field at
 * fault. Only the CLI prints messages and chooses exit codes. */
#ifndef SELFSUP_ERROR_H
#define SELFSUP_ERROR_H

#include <stddef.h>

typedef enum {
    SS_OK = 0,
    SS_ERR_ARG,      /* bad argument or option value */
    SS_ERR_IO,       /* open/read/write/rename failed */
    SS_ERR_FORMAT,   /* malformed file contents (JSON, shard header, ...) */
    SS_ERR_CHECKSUM, /* data does not match its recorded checksum */
    SS_ERR_NOT_FOUND,/* a named thing (file, corpus, token) does not exist */
    SS_ERR_RANGE,    /* a value is out of range (unknown token id, ...) */
    SS_ERR_NOMEM,    /* allocation failed */
    SS_ERR_EXTERNAL  /* an external program (curl, bible) failed */
} ss_status;

typedef struct {
    ss_status code;
    char msg[1024];
} ss_error;

/* Fill err (if non-NULL) with a printf-style message and return code. */
ss_status ss_fail(ss_error *err, ss_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message, e.g. with the file being processed:
 * "corpus.txt: " + "line 3: bad byte". Returns err->code. */
ss_status ss_error_prefix(ss_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Short name of a status code ("io error", "format error", ...). */
const char *ss_status_name(ss_status code);

#endif
