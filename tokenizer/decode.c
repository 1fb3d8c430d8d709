/* Decoding: each id contributes the raw bytes it stands for (the byte-level
 * characters mapped back through GPT-2's byte map at build time; an added
 * token its literal content). */
#include <string.h>

#include "selfsup/tokenizer.h"
#include "tok_internal.h"

ss_status ss_tokenizer_decode(const ss_tokenizer *t, const int32_t *ids, size_t n, ss_buf *out,
                              ss_error *err) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= t->vocab_size)
            return ss_fail(err, SS_ERR_RANGE, "token id %d at position %zu is out of range "
                           "(vocab size %zu)", id, i, t->vocab_size);
        size_t off = t->byte_off[id], len = t->byte_off[id + 1] - off;
        if (out->len + len + 1 > out->cap) {
            ss_status st = ss_buf_reserve(out, len + (n - i) * 4, err);
            if (st) return st;
        }
        memcpy(out->data + out->len, t->byte_arena + off, len);
        out->len += len;
    }
    if (out->data) out->data[out->len] = '\0';
    return SS_OK;
}
