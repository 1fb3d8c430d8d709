/* Internal to corpora/: the conversions of a downloaded original into a
 * corpus file (convert.c) and git blob ids, used by fetch.c. */
#ifndef SELFSUP_CORPORA_CONVERT_H
#define SELFSUP_CORPORA_CONVERT_H

#include "selfsup/corpus.h"

/* Where converted bytes go. */
typedef ss_status (*corpus_write_fn)(void *ctx, const void *data, size_t n, ss_error *err);

/* Convert the original by src->convert and apply src->patches, writing the
 * result through write(ctx, ...). input is the downloaded file, or for an
 * archive the directory it was extracted into (the conversion reads
 * input/src->member). Malformed input is SS_ERR_FORMAT naming the original
 * file and line. */
ss_status corpus_convert(const ss_corpus_source *src, const char *input, corpus_write_fn write,
                         void *ctx, ss_error *err);

/* The git blob id of a file: the SHA-1 of "blob SIZE\0" followed by its bytes,
 * as 40 lowercase hex digits. */
ss_status corpus_git_blob_file(const char *path, char hex[41], ss_error *err);

#endif
