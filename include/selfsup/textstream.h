/* Streaming reader for raw text files, plain or zstd-compressed (detected by
 * the zstd frame magic, so a .zst extension is not required). Memory is
 * constant apart from the longest line. */
#ifndef SELFSUP_TEXTSTREAM_H
#define SELFSUP_TEXTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

typedef struct ss_textstream ss_textstream;

/* path "-" reads standard input (named "<stdin>" in messages). A zstd input
 * may hold several concatenated frames (and skippable frames); a truncated
 * or corrupt zstd stream is SS_ERR_FORMAT naming the file. A missing or
 * unreadable file is SS_ERR_IO. */
ss_status ss_textstream_open(ss_textstream **out, const char *path, ss_error *err);

/* Next line including its '\n' (the last line may lack one; "\r\n" is kept
 * as is). Lines may contain NUL bytes: use *len. *line stays
 * valid until the next call. At end of input: SS_OK with *len == 0 and
 * *line == NULL. Errors (corrupt zstd, read failure) name the file. */
ss_status ss_textstream_next_line(ss_textstream *s, const char **line,
                                  size_t *len, ss_error *err);

/* The next line as a text: without its line break ("\n", "\r\n"), a NUL
 * byte in it SS_ERR_FORMAT "FILE:LINE: a NUL byte in the text", and with
 * need_utf8 invalid UTF-8 SS_ERR_FORMAT "FILE:LINE: the line is not valid
 * UTF-8". End of input as next_line. One rule for every command that reads
 * texts one per line (classify, embed, self-training's unlabelled file). */
ss_status ss_textstream_next_text(ss_textstream *s, int need_utf8, const char **line, size_t *len, ss_error *err);

/* Raw decompressed bytes, up to cap; *got == 0 at end of input. Do not mix
 * with next_line on the same stream. */
ss_status ss_textstream_read(ss_textstream *s, void *buf, size_t cap,
                             size_t *got, ss_error *err);

/* 1-based number of the line last returned by next_line. */
size_t ss_textstream_line_no(const ss_textstream *s);
/* Bytes read from the file so far (compressed size for zstd input) and
 * bytes of text delivered so far (decompressed). */
uint64_t ss_textstream_bytes_in(const ss_textstream *s);
uint64_t ss_textstream_bytes_out(const ss_textstream *s);
/* 1 when the input is zstd-compressed. */
int ss_textstream_is_zstd(const ss_textstream *s);
const char *ss_textstream_path(const ss_textstream *s);
void ss_textstream_close(ss_textstream *s);

#endif
