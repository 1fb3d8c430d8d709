/* Hugging Face tokenizer.json, as `--tokenizer FILE` reads it: the input is
 * the file given to ss_tokenizer_load. A tokenizer that loads must answer
 * every query about its vocabulary, and when it neither normalizes nor
 * lowercases, decode(encode(x)) == x on the input itself (with and without
 * special tokens). */
#include "fuzz.h"

#include "selfsup/tokenizer.h"

static void roundtrip(ss_tokenizer *t, const uint8_t *data, size_t size, int allow_special) {
    ss_ids ids = {0};
    ss_buf back = {0};
    ss_error err = {0};
    ss_status st = ss_tokenizer_encode(t, (const char *)data, size, allow_special, &ids, &err);
    if (st) {
        fz_check_error(st, &err);
        return;
    }
    st = ss_tokenizer_decode(t, ids.ids, ids.n, &back, &err);
    FZ_CHECK(st == SS_OK, "decode of its own ids failed: %s", err.msg);
    FZ_CHECK(back.len == size && (size == 0 || memcmp(back.data, data, size) == 0),
             "decode(encode(x)) != x (%zu bytes in, %zu out, allow_special %d)", size, back.len, allow_special);
    ss_ids_free(&ids);
    ss_buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024];
    fz_write(path, sizeof path, "tokenizer.json", data, size);
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    ss_status st = ss_tokenizer_load(&t, path, &err);
    fz_note("tokenizer.json", st, &err);
    if (st) {
        fz_check_error(st, &err);
        FZ_CHECK(t == NULL, "a failed load returned a tokenizer");
        return 0;
    }
    size_t V = ss_tokenizer_vocab_size(t);
    FZ_CHECK(V >= 256, "vocab size %zu", V);
    for (size_t id = 0; id < V; id++) {
        size_t len = 0;
        const char *s = ss_tokenizer_token(t, (int32_t)id);
        FZ_CHECK(s != NULL && ss_tokenizer_token_bytes(t, (int32_t)id, &len) != NULL, "token %zu", id);
        FZ_CHECK(ss_tokenizer_token_id(t, s) == (int32_t)id, "token %zu '%s' looks up as another id", id, s);
    }
    for (size_t r = 0; r < ss_tokenizer_num_merges(t); r++) {
        int32_t pair[2];
        FZ_CHECK(ss_tokenizer_merge(t, r, pair) == 0 && pair[0] >= 0 && (size_t)pair[0] < V && pair[1] >= 0 &&
                     (size_t)pair[1] < V,
                 "merge %zu", r);
    }
    char *cfg = ss_tokenizer_config_json(t, 0);
    FZ_CHECK(cfg != NULL, "tokenizer_config.json");
    free(cfg);
    if (ss_tokenizer_normalization(t) == SS_NORM_NONE && !ss_tokenizer_lowercase(t)) {
        roundtrip(t, data, size, 0);
        roundtrip(t, data, size, 1);
    }
    ss_tokenizer_free(t);
    return 0;
}
