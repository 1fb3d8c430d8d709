#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/io.h"

ss_status ss_buf_reserve(ss_buf *b, size_t extra, ss_error *err) {
    if (b->len + extra + 1 <= b->cap) return SS_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return SS_OK;
}

ss_status ss_buf_append(ss_buf *b, const void *data, size_t len, ss_error *err) {
    ss_status st = ss_buf_reserve(b, len, err);
    if (st) return st;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return SS_OK;
}

void ss_buf_free(ss_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

ss_status ss_read_file(const char *path, ss_buf *out, ss_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ss_fail(err, SS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char chunk[65536];
    size_t got;
    ss_status st = SS_OK;
    out->len = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if ((st = ss_buf_append(out, chunk, got, err))) break;
    if (!st && ferror(f)) st = ss_fail(err, SS_ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (!st && !out->data) st = ss_buf_append(out, "", 0, err);
    fclose(f);
    return st;
}
