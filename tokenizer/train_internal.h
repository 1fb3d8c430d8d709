/* Internal interface between the two phases of BPE training:
 * train_count.c (stream files -> distinct pre-tokens with counts) and
 * train.c (counts -> merges -> tokenizer). Not part of the public API. */
#ifndef SELFSUP_TRAIN_INTERNAL_H
#define SELFSUP_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/tokenizer.h"

/* Distinct pre-tokens of a corpus. words[i].bytes point into storage owned
 * by this struct; free with ss_bpe_counts_free. */
typedef struct {
    ss_word_count *words;
    size_t n_words;
    uint64_t n_pretokens;   /* total pre-tokens counted (sum of counts) */
    uint64_t n_bytes;       /* text bytes pre-tokenized (after normalization) */
    char *arena;            /* the bytes of every distinct pre-token */
} ss_bpe_counts;

/* Checks the options shared by every training entry point: vocab_size at
 * least n_special + 256, special tokens non-empty and distinct. */
ss_status ss_bpe_check_opts(const ss_bpe_train_opts *opts, ss_error *err);

/* Phase 1: count the pre-tokens of every file (plain or zstd). batch_bytes is
 * the text read per round (0 = default); tests pass tiny values to exercise
 * the chunk-boundary logic. */
ss_status ss_bpe_count_files(const ss_bpe_train_opts *opts,
                             const char *const *paths, size_t n_paths,
                             size_t batch_bytes, ss_bpe_counts *out,
                             ss_error *err);
void ss_bpe_counts_free(ss_bpe_counts *c);

#endif
