/* Encoding and decoding: decode(encode(x)) == x for every byte string x,
 * invalid UTF-8 included, with and without special tokens matched, on a
 * small tokenizer trained here at start-up (the default special tokens, 256
 * bytes, merges learnt from a fixed text in a few scripts). Without special
 * tokens allowed no special id comes out, and never more ids than bytes. */
#include "fuzz.h"

#include "selfsup/tokenizer.h"

static ss_tokenizer *tok;

static const char train_text[] =
    "The quick brown fox jumps over the lazy dog. It's the dog's day; they'll see, we've been there.\n"
    "Numbers 12345 and 3.14159, tabs\tand  double  spaces, trailing spaces   \n"
    "Ünïcödé: café, naïve, Straße. Ελληνικά κείμενα. Русский текст. 日本語のテキスト。 中文文本。\n"
    "Emoji 🙂🙃 and marks: «quotes», — dashes, …ellipsis. <|endoftext|> [MASK] [CLS] text [SEP]\n"
    "the the the then there these those other another mother brother weather whether\n";

static const char *const specials[] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    /* distinct pre-tokens of the text and their counts */
    ss_word_count words[512];
    size_t n = 0, len = sizeof train_text - 1;
    for (size_t pos = 0; pos < len;) {
        size_t end = ss_pretoken_next(train_text, len, pos), k = 0;
        while (k < n && !(words[k].len == end - pos && memcmp(words[k].bytes, train_text + pos, end - pos) == 0)) k++;
        if (k == n) {
            if (n == sizeof words / sizeof *words) abort();
            words[n++] = (ss_word_count){train_text + pos, end - pos, 0};
        }
        words[k].count++;
        pos = end;
    }
    ss_bpe_train_opts o = {.vocab_size = 6 + 256 + 120, .min_frequency = 1, .special_tokens = specials,
                           .n_special = 6, .nthreads = 1};
    int32_t(*merges)[2] = NULL;
    size_t n_merges = 0;
    ss_error err = {0};
    if (ss_bpe_train_counts(&o, words, n, &merges, &n_merges, &err) ||
        ss_tokenizer_from_merges(&o, (const int32_t(*)[2])merges, n_merges, &tok, &err)) {
        fprintf(stderr, "fuzz_roundtrip: training the tokenizer failed: %s\n", err.msg);
        abort();
    }
    free(merges);
    if (n_merges < 50) {
        fprintf(stderr, "fuzz_roundtrip: only %zu merges learnt\n", n_merges);
        abort();
    }
    return 0;
}

static void roundtrip(const uint8_t *data, size_t size, int allow_special) {
    ss_ids ids = {0};
    ss_buf back = {0};
    ss_error err = {0};
    ss_status st = ss_tokenizer_encode(tok, (const char *)data, size, allow_special, &ids, &err);
    FZ_CHECK(st == SS_OK, "encode failed: %s", err.msg);
    FZ_CHECK(ids.n <= size, "%zu ids for %zu bytes", ids.n, size);
    for (size_t i = 0; i < ids.n; i++)
        FZ_CHECK(allow_special || !ss_tokenizer_is_special(tok, ids.ids[i]),
                 "special id %d at %zu without allow_special", ids.ids[i], i);
    st = ss_tokenizer_decode(tok, ids.ids, ids.n, &back, &err);
    FZ_CHECK(st == SS_OK, "decode failed: %s", err.msg);
    FZ_CHECK(back.len == size && (size == 0 || memcmp(back.data, data, size) == 0),
             "decode(encode(x)) != x (%zu bytes in, %zu out, allow_special %d)", size, back.len, allow_special);
    ss_ids_free(&ids);
    ss_buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    roundtrip(data, size, 0);
    roundtrip(data, size, 1);
    return 0;
}
