/* metrics.jsonl: one JSON object per line ({"step":100,"loss":3.21,...}),
 * each line flushed as soon as it is written so a crash loses at most the
 * line being written, and a resumed run can cut the file back to its step. */
#ifndef SELFSUP_METRICS_H
#define SELFSUP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

typedef enum { SS_MF_INT, SS_MF_NUM, SS_MF_STR } ss_metric_kind;

/* One key/value of a line; non-finite numbers are written as null. */
typedef struct {
    const char *key;
    ss_metric_kind kind;
    union {
        int64_t i;
        double d;
        const char *s;
    };
} ss_metric_field;

#define SS_MF_I(k, v) ((ss_metric_field){.key = (k), .kind = SS_MF_INT, .i = (v)})
#define SS_MF_D(k, v) ((ss_metric_field){.key = (k), .kind = SS_MF_NUM, .d = (v)})
#define SS_MF_S(k, v) ((ss_metric_field){.key = (k), .kind = SS_MF_STR, .s = (v)})

typedef struct ss_metrics ss_metrics;

/* Open PATH for appending (append != 0) or start it afresh (append == 0). */
ss_status ss_metrics_open(ss_metrics **out, const char *path, int append, ss_error *err);
/* Append one line holding FIELDS in order, and flush it. Strings are escaped
 * (invalid UTF-8 bytes become U+FFFD); numbers use the shortest form that
 * reads back to the same double. */
ss_status ss_metrics_write(ss_metrics *m, const ss_metric_field *fields, size_t n, ss_error *err);
/* Flush and close; reports a failed final flush. NULL is fine. */
ss_status ss_metrics_close(ss_metrics *m, ss_error *err);

/* For a run resumed at STEP: keep the lines before the first line whose
 * "step" exceeds STEP, dropping that line and everything after it, and
 * rewrite PATH atomically. A torn last line (no newline, invalid JSON) from
 * a crash is dropped too; any other malformed line, or a non-integer "step",
 * is SS_ERR_FORMAT naming the line. A missing PATH is not an error. */
ss_status ss_metrics_truncate_after_step(const char *path, int64_t step, ss_error *err);

#endif
