/* Streaming text input: plain files, stdin and zstd (possibly multi-frame).
 *
 * The stream keeps one window of decoded bytes (data[pos..len)). For plain
 * input the window is the read buffer itself; for zstd input it is the
 * decompression output buffer. next_line returns a pointer straight into the
 * window when a whole line is there, and only copies into the line buffer
 * when a line straddles two windows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "selfsup/io.h"
#include "selfsup/textstream.h"

#define PLAIN_CHUNK (1u << 18)

struct ss_textstream {
    FILE *f;
    int is_stdin, zstd, eof;
    char *path;
    /* raw input: for zstd the compressed bytes, for plain the text window */
    char *ibuf;
    size_t icap;
    ZSTD_inBuffer in;
    ZSTD_DStream *ds;
    size_t zret;         /* last ZSTD_decompressStream hint: 0 = frame done */
    int out_was_full;    /* zstd may hold more output without new input */
    char *obuf;
    size_t ocap;
    const char *data;    /* current window of text */
    size_t pos, len;
    ss_buf line;
    size_t line_no;
    uint64_t bytes_in, bytes_out;
};

static ss_status read_raw(ss_textstream *s, size_t *got, ss_error *err) {
    *got = fread(s->ibuf, 1, s->icap, s->f);
    if (*got == 0 && ferror(s->f))
        return ss_fail(err, SS_ERR_IO, "%s: read error: %s", s->path, strerror(errno));
    s->bytes_in += *got;
    return SS_OK;
}

static ss_status fill_plain(ss_textstream *s, ss_error *err) {
    size_t got;
    ss_status st = read_raw(s, &got, err);
    if (st) return st;
    s->data = s->ibuf;
    s->pos = 0;
    s->len = got;
    if (got == 0) s->eof = 1;
    return SS_OK;
}

/* Decompress until some output appears or the input ends. A stream that ends
 * inside a frame (zret != 0) is truncated. */
static ss_status fill_zstd(ss_textstream *s, ss_error *err) {
    for (;;) {
        if (s->in.pos == s->in.size && !s->out_was_full) {
            size_t got;
            ss_status st = read_raw(s, &got, err);
            if (st) return st;
            if (got == 0) {
                s->eof = 1;
                s->pos = s->len = 0;
                if (s->zret != 0)
                    return ss_fail(err, SS_ERR_FORMAT,
                                   "%s: truncated zstd stream (input ends inside a frame)",
                                   s->path);
                return SS_OK;
            }
            s->in.src = s->ibuf;
            s->in.size = got;
            s->in.pos = 0;
        }
        ZSTD_outBuffer out = {s->obuf, s->ocap, 0};
        size_t r = ZSTD_decompressStream(s->ds, &out, &s->in);
        if (ZSTD_isError(r))
            return ss_fail(err, SS_ERR_FORMAT, "%s: corrupt zstd stream near byte %llu: %s",
                           s->path, (unsigned long long)(s->bytes_in - (s->in.size - s->in.pos)),
                           ZSTD_getErrorName(r));
        s->zret = r;
        s->out_was_full = out.pos == out.size;
        if (out.pos) {
            s->data = s->obuf;
            s->pos = 0;
            s->len = out.pos;
            return SS_OK;
        }
    }
}

/* Refill the window (only call when it is used up). */
static ss_status fill(ss_textstream *s, ss_error *err) {
    if (s->eof) { s->pos = s->len = 0; return SS_OK; }
    ss_status st = s->zstd ? fill_zstd(s, err) : fill_plain(s, err);
    if (!st) s->bytes_out += s->len;
    return st;
}

void ss_textstream_close(ss_textstream *s) {
    if (!s) return;
    if (s->f && !s->is_stdin) fclose(s->f);
    ZSTD_freeDStream(s->ds);
    free(s->ibuf);
    free(s->obuf);
    free(s->path);
    ss_buf_free(&s->line);
    free(s);
}

/* Read the first chunk and look for the zstd frame magic 28 B5 2F FD. */
static ss_status detect(ss_textstream *s, ss_error *err) {
    size_t got;
    ss_status st = read_raw(s, &got, err);
    if (st) return st;
    static const unsigned char magic[4] = {0x28, 0xB5, 0x2F, 0xFD};
    if (got >= 4 && memcmp(s->ibuf, magic, 4) == 0) {
        s->zstd = 1;
        s->ds = ZSTD_createDStream();
        s->ocap = ZSTD_DStreamOutSize();
        s->obuf = malloc(s->ocap);
        if (!s->ds || !s->obuf) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        ZSTD_initDStream(s->ds);
        s->in.src = s->ibuf;
        s->in.size = got;
        s->in.pos = 0;
        s->zret = 1;
        s->data = s->obuf;
        s->pos = s->len = 0;
        return SS_OK;
    }
    s->data = s->ibuf;
    s->pos = 0;
    s->len = got;
    s->bytes_out = got;
    if (got == 0) s->eof = 1;
    return SS_OK;
}

ss_status ss_textstream_open(ss_textstream **out, const char *path, ss_error *err) {
    *out = NULL;
    ss_textstream *s = calloc(1, sizeof *s);
    if (!s) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    s->is_stdin = strcmp(path, "-") == 0;
    s->path = strdup(s->is_stdin ? "<stdin>" : path);
    size_t zin = ZSTD_DStreamInSize();
    s->icap = zin > PLAIN_CHUNK ? zin : PLAIN_CHUNK;
    s->ibuf = malloc(s->icap);
    if (!s->path || !s->ibuf) {
        ss_textstream_close(s);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    s->f = s->is_stdin ? stdin : fopen(path, "rb");
    if (!s->f) {
        ss_fail(err, SS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        ss_textstream_close(s);
        return SS_ERR_IO;
    }
    ss_status st = detect(s, err);
    if (st) { ss_textstream_close(s); return st; }
    *out = s;
    return SS_OK;
}

ss_status ss_textstream_next_text(ss_textstream *s, int need_utf8, const char **line, size_t *len, ss_error *err) {
    ss_status st = ss_textstream_next_line(s, line, len, err);
    if (st || !*line) return st;
    while (*len && ((*line)[*len - 1] == '\n' || (*line)[*len - 1] == '\r')) (*len)--;
    if (memchr(*line, 0, *len))
        return ss_fail(err, SS_ERR_FORMAT, "%s:%zu: a NUL byte in the text", ss_textstream_path(s), s->line_no);
    if (need_utf8 && !ss_utf8_valid(*line, *len))
        return ss_fail(err, SS_ERR_FORMAT, "%s:%zu: the line is not valid UTF-8", ss_textstream_path(s), s->line_no);
    return SS_OK;
}

ss_status ss_textstream_next_line(ss_textstream *s, const char **line, size_t *len,
                                  ss_error *err) {
    *line = NULL;
    *len = 0;
    s->line.len = 0;
    for (;;) {
        if (s->pos == s->len) {
            ss_status st = fill(s, err);
            if (st) return st;
            if (s->len == 0) break; /* end of input */
        }
        const char *start = s->data + s->pos;
        size_t avail = s->len - s->pos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) + 1 : avail;
        s->pos += take;
        if (nl && s->line.len == 0) { /* whole line inside the window */
            *line = start;
            *len = take;
            s->line_no++;
            return SS_OK;
        }
        ss_status st = ss_buf_append(&s->line, start, take, err);
        if (st) return st;
        if (nl) break;
    }
    if (s->line.len == 0) return SS_OK;
    *line = s->line.data;
    *len = s->line.len;
    s->line_no++;
    return SS_OK;
}

ss_status ss_textstream_read(ss_textstream *s, void *buf, size_t cap, size_t *got,
                             ss_error *err) {
    *got = 0;
    while (*got < cap) {
        if (s->pos == s->len) {
            if (*got) break; /* return what we have rather than block */
            ss_status st = fill(s, err);
            if (st) return st;
            if (s->len == 0) break;
        }
        size_t n = s->len - s->pos;
        if (n > cap - *got) n = cap - *got;
        memcpy((char *)buf + *got, s->data + s->pos, n);
        s->pos += n;
        *got += n;
    }
    return SS_OK;
}

size_t ss_textstream_line_no(const ss_textstream *s) { return s->line_no; }
uint64_t ss_textstream_bytes_in(const ss_textstream *s) { return s->bytes_in; }
uint64_t ss_textstream_bytes_out(const ss_textstream *s) { return s->bytes_out; }
int ss_textstream_is_zstd(const ss_textstream *s) { return s->zstd; }
const char *ss_textstream_path(const ss_textstream *s) { return s->path; }
