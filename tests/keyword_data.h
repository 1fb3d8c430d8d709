/* The keyword task of the fine-tuning tests (test_train_finetune.c,
 * test_train_prompt.c): short texts of filler words with "good" or "bad"
 * among them, labelled by that word, so a classifier that learns at all
 * separates them. A fixed LCG (kw_seed) makes every file the same on every
 * run and machine. */
#ifndef SELFSUP_TESTS_KEYWORD_DATA_H
#define SELFSUP_TESTS_KEYWORD_DATA_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "selfsup/io.h"
#include "selfsup/tokenizer.h"

static const char *const KW_FILLER[] = {"the",   "movie", "was",    "plot",    "actors",   "really", "quite",
                                        "story", "film",  "music",  "and",     "scenes",   "ending", "very",
                                        "this",  "felt",  "though", "overall", "somewhat", "cast"};
enum { KW_N_FILLER = sizeof KW_FILLER / sizeof KW_FILLER[0] };

static uint64_t kw_lcg_state;
static inline void kw_seed(uint64_t s) { kw_lcg_state = s; }
static inline uint32_t kw_below(uint32_t n) {
    kw_lcg_state = kw_lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((kw_lcg_state >> 33) % n);
}

/* 2..8 filler words, `key` inserted among them at a random position. */
static inline void kw_make_text(char *buf, size_t cap, const char *key) {
    int n = 2 + (int)kw_below(7), at = (int)kw_below((uint32_t)n + 1);
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i <= n; i++) {
        if (i == at) k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? " " : "", key);
        if (i < n) k += (size_t)snprintf(buf + k, cap - k, "%s%s", k ? " " : "", KW_FILLER[kw_below(KW_N_FILLER)]);
    }
}

/* A TSV (columns sentence, label) of n keyword rows: "good" -> pos, "bad"
 * -> neg, alternating (the labels the other way round with flip); each
 * text and a tab appended to corpus when given (a tokenizer's training
 * text). */
static inline void kw_write_tsv(const char *path, int n, ss_buf *corpus, int flip) {
    ss_buf b = {0};
    ss_error err = {0};
    char text[256], row[300];
    CHECK_OK(ss_buf_append(&b, "sentence\tlabel\n", 15, &err), &err);
    for (int i = 0; i < n; i++) {
        kw_make_text(text, sizeof text, i % 2 ? "good" : "bad");
        int m = snprintf(row, sizeof row, "%s\t%s\n", text, (i % 2) ^ flip ? "pos" : "neg");
        CHECK_OK(ss_buf_append(&b, row, (size_t)m, &err), &err);
        if (corpus) CHECK_OK(ss_buf_append(corpus, row, strlen(text) + 1, &err), &err);
    }
    CHECK_OK(ss_write_file_atomic(path, b.data, b.len, &err), &err);
    ss_buf_free(&b);
}

/* A byte-level BPE tokenizer trained on the file corpus: the n_special
 * special tokens, the 256 bytes and 120 merges. */
static inline ss_tokenizer *kw_train_tok(const char *corpus, const char *const *specials, size_t n_special) {
    ss_bpe_train_opts o = {.vocab_size = n_special + 256 + 120, .special_tokens = specials,
                           .n_special = n_special, .nthreads = 1};
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    CHECK_OK(ss_bpe_train_files(&o, &corpus, 1, &t, &err), &err);
    return t;
}

/* The task in dir, drawn from seed 42: train.tsv (n_train rows), dev.tsv
 * (n_dev) and corpus.txt (the training texts), their paths written to
 * train, dev and corpus (cap bytes each); returns a tokenizer trained on
 * the corpus with <|endoftext|> [PAD] [CLS] [SEP] [MASK]. */
static inline ss_tokenizer *kw_make_task(const char *dir, int n_train, int n_dev, char *train, char *dev,
                                         char *corpus, size_t cap) {
    ss_error err = {0};
    snprintf(train, cap, "%s/train.tsv", dir);
    snprintf(dev, cap, "%s/dev.tsv", dir);
    snprintf(corpus, cap, "%s/corpus.txt", dir);
    kw_seed(42);
    ss_buf text = {0};
    kw_write_tsv(train, n_train, &text, 0);
    kw_write_tsv(dev, n_dev, NULL, 0);
    CHECK_OK(ss_write_file_atomic(corpus, text.data, text.len, &err), &err);
    ss_buf_free(&text);
    static const char *const specials[] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]"};
    return kw_train_tok(corpus, specials, 5);
}

#endif
