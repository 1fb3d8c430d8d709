/* Masked-LM batches (BERT): documents packed into [CLS] doc [SEP] doc [SEP]
 * ... [PAD] sequences, and BERT's 80/10/10 masking, token- or word-level.
 *
 * All randomness comes from an explicit ss_rng, so a batch is a pure
 * function of the RNG state (exact resume, reproducible runs). */
#ifndef SELFSUP_MLM_H
#define SELFSUP_MLM_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"
#include "selfsup/rng.h"
#include "selfsup/tokenizer.h"
#include "selfsup/tokens.h"

/* ---- Configuration ---------------------------------------------------------------- */
typedef struct {
    int32_t cls_id, sep_id, pad_id, mask_id;
    int vocab_size;
    uint8_t *is_special;   /* [vocab_size] 1 = never chosen, never a random replacement */
    uint8_t *word_start;   /* [vocab_size] 1 = token starts a word; NULL = every token does */
    int32_t *ordinary;     /* the ids with is_special 0, ascending: random replacements */
    size_t n_ordinary;
    float mask_prob;       /* chance a position (or word) is chosen, default 0.15 (pretrain
                              --mask-prob resolves its default by objective) */
    float mask_replace;    /* share of chosen positions that become [MASK], default 0.8 */
    float mask_random;     /* share that become a random ordinary token, default 0.1;
                              the rest (default 0.1) keep their token */
    int whole_word;        /* 1: choose whole words (default 0) */
    float gen_temperature; /* rtd: an ELECTRA generator's replacements are drawn from
                              softmax(logits / gen_temperature), default 1 */
} ss_mlm_config;

/* Fill cfg from a tokenizer: the ids of [CLS] [SEP] [PAD] [MASK] (a missing
 * one is SS_ERR_NOT_FOUND naming it), is_special (the tokenizer's special
 * tokens plus those four), word_start (ss_tokenizer_starts_word), the
 * ordinary id list and the defaults above. Tables are malloc'd: free with
 * ss_mlm_config_free (also safe after a failure). */
ss_status ss_mlm_config_from_tokenizer(ss_mlm_config *cfg, const ss_tokenizer *t, ss_error *err);
void ss_mlm_config_free(ss_mlm_config *cfg);
/* SS_ERR_ARG unless 0 < mask_prob <= 1, mask_replace and mask_random are
 * in [0, 1] and their sum is at most 1. */
ss_status ss_mlm_config_check(const ss_mlm_config *cfg, ss_error *err);

/* ---- Documents -------------------------------------------------------------------- */
/* A document is a maximal run of ids between separators (empty runs are
 * skipped). cum[d] = total length of documents 0..d-1 (cum[n_docs] = all
 * document tokens), for sampling a start proportionally to length. */
typedef struct {
    const int32_t *ids;    /* the split's ids (not owned) */
    size_t n_docs;
    size_t *start, *len, *cum;
} ss_doc_index;
/* SS_ERR_FORMAT when the split holds no document token at all. */
ss_status ss_doc_index_build(ss_doc_index *d, const ss_token_split *s, ss_error *err);
void ss_doc_index_free(ss_doc_index *d);

/* ---- Packing (T >= 3) --------------------------------------------------------------
 * A sequence is [CLS] doc [SEP] doc [SEP] ... [PAD]...: whole documents are
 * added while they fit (a document of length L takes L+1 slots with its
 * [SEP]); the rest is [PAD] with key_valid 0 (1 everywhere else). A document
 * longer than T-2 is cut into pieces of T-2 tokens (the last one shorter),
 * each its own sequence [CLS] piece [SEP] [PAD]..., so no token is lost.
 * tokens and key_valid are [B*T]. */

/* Training: each sequence starts at the document (and for a long one, the
 * piece) holding a uniformly random document token, and packs the documents
 * that follow while they fit. Drawing a token rather than a document keeps
 * every token about equally likely to be seen: with documents drawn
 * uniformly, each piece of a k-piece document would come up k times less
 * often than a short document. */
void ss_mlm_pack_random(const ss_doc_index *d, const ss_mlm_config *cfg, ss_rng *rng, int B, int T,
                        int32_t *tokens, uint8_t *key_valid);

/* Evaluation: walks documents and pieces in order from *cursor (start with
 * 0; it encodes document << 32 | piece), fills up to B sequences and returns
 * how many (0 once the split is done); rows after those are all [PAD] with
 * key_valid 0. Every document token appears exactly once over the pass. */
int ss_mlm_pack_sequential(const ss_doc_index *d, const ss_mlm_config *cfg, uint64_t *cursor, int B,
                           int T, int32_t *tokens, uint8_t *key_valid);

/* ---- Masking -----------------------------------------------------------------------
 * In place, as BERT does it. Eligible positions: key_valid 1 and an ordinary
 * token (not special, id inside the vocab). Each is chosen with probability
 * mask_prob; with whole_word, each word (an eligible word-start token, or an
 * eligible token after a non-eligible one, plus the eligible non-word-start
 * tokens after it) is chosen as a unit with probability mask_prob. Each
 * chosen token independently becomes [MASK] (mask_replace), a uniformly
 * random ordinary token (mask_random) or stays. targets[i] = original id at
 * chosen positions, -1 elsewhere. A sequence with eligible tokens but none
 * chosen gets one position (word) chosen uniformly, so every sequence
 * contributes to the loss. Deterministic for a given rng state. Returns the
 * number of chosen positions. */
size_t ss_mlm_mask(const ss_mlm_config *cfg, ss_rng *rng, int B, int T, int32_t *tokens,
                   const uint8_t *key_valid, int32_t *targets);

#endif
