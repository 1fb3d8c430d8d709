/* metrics.jsonl appender and resume-time truncation. Each line is built in a
 * reused buffer (no allocation per line once it has grown) and flushed. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/io.h"
#include "selfsup/metrics.h"

struct ss_metrics {
    FILE *fp;
    char *path;
    ss_buf line;
};

ss_status ss_metrics_open(ss_metrics **out, const char *path, int append, ss_error *err) {
    *out = NULL;
    ss_metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    if (!(m->fp = fopen(path, append ? "ab" : "wb"))) {
        ss_fail(err, SS_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
        free(m->path);
        free(m);
        return SS_ERR_IO;
    }
    *out = m;
    return SS_OK;
}

static ss_status put_string(ss_buf *b, const char *str, ss_error *err) {
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    ss_status st = ss_buf_append(b, "\"", 1, err);
    for (size_t i = 0; !st && i < n;) {
        size_t len = ss_utf8_seq_len(s + i, n - i);
        char esc[8];
        if (len == 0) { st = ss_buf_append(b, "\\ufffd", 6, err); i++; continue; }
        if (len > 1 || (s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')) {
            st = ss_buf_append(b, s + i, len, err);
            i += len;
            continue;
        }
        switch (s[i]) {
        case '"': strcpy(esc, "\\\""); break;
        case '\\': strcpy(esc, "\\\\"); break;
        case '\n': strcpy(esc, "\\n"); break;
        case '\t': strcpy(esc, "\\t"); break;
        case '\r': strcpy(esc, "\\r"); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", s[i]);
        }
        st = ss_buf_append(b, esc, strlen(esc), err);
        i++;
    }
    return st ? st : ss_buf_append(b, "\"", 1, err);
}

/* Shortest %.Ng (N = 15..17) that reads back as the same double. */
static ss_status put_number(ss_buf *b, double d, ss_error *err) {
    if (!isfinite(d)) return ss_buf_append(b, "null", 4, err);
    char num[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(num, sizeof num, "%.*g", prec, d);
        if (strtod(num, NULL) == d) break;
    }
    return ss_buf_append(b, num, strlen(num), err);
}

static ss_status put_field(ss_metrics *m, const ss_metric_field *f, ss_error *err) {
    if (!f->key) return ss_fail(err, SS_ERR_ARG, "%s: metric field with NULL key", m->path);
    ss_status st = put_string(&m->line, f->key, err);
    if (!st) st = ss_buf_append(&m->line, ":", 1, err);
    if (st) return st;
    char num[24];
    switch (f->kind) {
    case SS_MF_INT:
        snprintf(num, sizeof num, "%" PRId64, f->i);
        return ss_buf_append(&m->line, num, strlen(num), err);
    case SS_MF_NUM: return put_number(&m->line, f->d, err);
    case SS_MF_STR: return f->s ? put_string(&m->line, f->s, err) : ss_buf_append(&m->line, "null", 4, err);
    }
    return ss_fail(err, SS_ERR_ARG, "%s: metric '%s' has unknown kind %d", m->path, f->key, (int)f->kind);
}

ss_status ss_metrics_write(ss_metrics *m, const ss_metric_field *fields, size_t n, ss_error *err) {
    m->line.len = 0;
    ss_status st = ss_buf_append(&m->line, "{", 1, err);
    for (size_t i = 0; !st && i < n; i++) {
        if (i) st = ss_buf_append(&m->line, ",", 1, err);
        if (!st) st = put_field(m, &fields[i], err);
    }
    if (!st) st = ss_buf_append(&m->line, "}\n", 2, err);
    if (st) return st;
    if (fwrite(m->line.data, 1, m->line.len, m->fp) != m->line.len || fflush(m->fp) != 0)
        return ss_fail(err, SS_ERR_IO, "%s: write failed: %s", m->path, strerror(errno));
    return SS_OK;
}

ss_status ss_metrics_close(ss_metrics *m, ss_error *err) {
    if (!m) return SS_OK;
    ss_status st = SS_OK;
    if (fclose(m->fp) != 0) st = ss_fail(err, SS_ERR_IO, "%s: close failed: %s", m->path, strerror(errno));
    ss_buf_free(&m->line);
    free(m->path);
    free(m);
    return st;
}

/* Does the line [s, s+len) end the kept prefix? 1 = cut here, 0 = keep,
 * or an error for a malformed line. `last_torn` marks a final line without
 * newline, which a crash may have left half-written: dropped if invalid. */
static ss_status line_cuts(const char *path, size_t lineno, const char *s, size_t len, int last_torn,
                           int64_t step, int *cut, ss_error *err) {
    *cut = 0;
    size_t k = 0;
    while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
    if (k == len) return SS_OK; /* blank line */
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    while (obj && end < s + len && (*end == ' ' || *end == '\t' || *end == '\r')) end++;
    ss_status st = SS_OK;
    if (!cJSON_IsObject(obj) || end != s + len) {
        if (last_torn) *cut = 1;
        else st = ss_fail(err, SS_ERR_FORMAT, "%s: line %zu: not a JSON object", path, lineno);
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "step");
        if (v && (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)))
            st = ss_fail(err, SS_ERR_FORMAT, "%s: line %zu: \"step\" is not an integer", path, lineno);
        else if (v && v->valuedouble > (double)step)
            *cut = 1;
    }
    cJSON_Delete(obj);
    return st;
}

ss_status ss_metrics_truncate_after_step(const char *path, int64_t step, ss_error *err) {
    if (!ss_file_exists(path)) return SS_OK;
    ss_buf b = {0};
    ss_status st = ss_read_file(path, &b, err);
    size_t keep = 0, lineno = 0;
    int cut = 0;
    while (!st && !cut && keep < b.len) {
        const char *s = b.data + keep, *nl = memchr(s, '\n', b.len - keep);
        size_t len = nl ? (size_t)(nl - s) : b.len - keep;
        st = line_cuts(path, ++lineno, s, len, !nl, step, &cut, err);
        if (!st && !cut) keep += len + (nl != NULL);
    }
    if (!st && (keep < b.len || (keep && b.data[keep - 1] != '\n'))) {
        b.len = keep;
        if (keep && b.data[keep - 1] != '\n') st = ss_buf_append(&b, "\n", 1, err);
        if (!st) st = ss_write_file_atomic(path, b.data, b.len, err);
    }
    ss_buf_free(&b);
    return st;
}
