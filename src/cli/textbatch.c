/* Input lines in batches: `classify` and `embed` read their files the same way. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "selfsup/textstream.h"

static void free_texts(char **texts, size_t n) {
    for (size_t i = 0; i < n; i++) free(texts[i]);
}

ss_status cli_text_batches(const char *path, int keep_empty, size_t cap, cli_text_flush flush, void *ctx,
                           ss_error *err) {
    char **texts = calloc(cap ? cap : 1, sizeof *texts);
    if (!texts) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_textstream *ts;
    ss_status st = ss_textstream_open(&ts, path, err);
    if (st) {
        free(texts);
        return st;
    }
    int interactive = strcmp(path, "-") == 0 && isatty(0);
    size_t n = 0;
    const char *line;
    size_t len;
    while (!(st = ss_textstream_next_text(ts, keep_empty, &line, &len, err)) && line) {
        if (!(texts[n] = strndup(line, len))) {
            st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
            break;
        }
        if (++n == cap || interactive) {
            st = flush(ctx, texts, n, err);
            free_texts(texts, n);
            n = 0;
            if (st) break;
        }
    }
    if (!st && n) st = flush(ctx, texts, n, err);
    free_texts(texts, n);
    free(texts);
    ss_textstream_close(ts);
    return st;
}
