/* GPT-2's encoder.json + vocab.bpe, as a directory given to --tokenizer:
 * the input is encoder.json, then the line "--vocab.bpe--", then vocab.bpe
 * (without that line, all of it is encoder.json and vocab.bpe is empty).
 * Both go into a directory that ss_tokenizer_load reads. A tokenizer that
 * loads round-trips the input's bytes. */
#include "fuzz.h"

#include "selfsup/tokenizer.h"

#define SEP "\n--vocab.bpe--\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t enc_len, bpe_len;
    const uint8_t *bpe;
    fz_split(data, size, SEP, &enc_len, &bpe, &bpe_len);
    char path[1024];
    fz_subdir("gpt2");
    fz_write(path, sizeof path, "gpt2/encoder.json", data, enc_len);
    fz_write(path, sizeof path, "gpt2/vocab.bpe", bpe, bpe_len);
    fz_path(path, sizeof path, "gpt2");
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    ss_status st = ss_tokenizer_load(&t, path, &err);
    fz_note("encoder.json + vocab.bpe", st, &err);
    if (st) {
        fz_check_error(st, &err);
        FZ_CHECK(t == NULL, "a failed load returned a tokenizer");
        return 0;
    }
    FZ_CHECK(ss_tokenizer_vocab_size(t) >= 256, "vocab size %zu", ss_tokenizer_vocab_size(t));
    ss_ids ids = {0};
    ss_buf back = {0};
    st = ss_tokenizer_encode(t, (const char *)data, size, 0, &ids, &err);
    if (st) fz_check_error(st, &err);
    else {
        st = ss_tokenizer_decode(t, ids.ids, ids.n, &back, &err);
        FZ_CHECK(st == SS_OK, "decode of its own ids failed: %s", err.msg);
        FZ_CHECK(back.len == size && (size == 0 || memcmp(back.data, data, size) == 0), "decode(encode(x)) != x");
    }
    ss_ids_free(&ids);
    ss_buf_free(&back);
    ss_tokenizer_free(t);
    return 0;
}
