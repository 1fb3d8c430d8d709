/* Texts as token sequences for a model of either kind (src/train/textseq.c):
 * what fine-tuning trains on and a fine-tuned classifier reads, and the
 * class probabilities of a batch of them. */
#ifndef SELFSUP_TEXTSEQ_H
#define SELFSUP_TEXTSEQ_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"
#include "selfsup/model.h"
#include "selfsup/tokenizer.h"

/* An encoder reads "[CLS] text [SEP]", a decoder "text <|endoftext|>" (the
 * separator it saw between documents in pretraining, so the last position
 * has read the whole text). Texts longer than max_seq keep their start. */
typedef struct {
    ss_model_kind kind;
    int32_t cls_id, sep_id, end_id, pad_id;
    int max_seq;
} ss_text_format;
/* The ids come from the tokenizer (a missing one is SS_ERR_NOT_FOUND naming it). */
ss_status ss_text_format_init(ss_text_format *f, const ss_tokenizer *tok, ss_model_kind kind, int max_seq,
                              ss_error *err);

/* n sequences in one array: sequence i is ids[off[i] .. off[i+1]). */
typedef struct {
    int32_t *ids;
    size_t *off;
    size_t n, n_truncated;
} ss_seqs;
ss_status ss_seqs_encode(ss_seqs *out, ss_tokenizer *tok, const ss_text_format *f, char *const *texts, size_t n,
                         ss_error *err);
void ss_seqs_free(ss_seqs *s);
/* src's sequences after dst's (dst may be empty, zeroed); the truncation
 * counts add up. src is unchanged. */
ss_status ss_seqs_append(ss_seqs *dst, const ss_seqs *src, ss_error *err);
static inline size_t ss_seqs_len(const ss_seqs *s, size_t i) { return s->off[i + 1] - s->off[i]; }

/* Gather sequences idx[0..B) into a right-padded batch: tokens [B, T] and
 * key_valid [B, T] with T the longest of them. Returns T. */
int ss_seqs_batch(const ss_seqs *s, const size_t *idx, int B, int32_t pad_id, int32_t *tokens, uint8_t *key_valid);

/* Class probabilities [n, K] for every sequence (no dropout), in batches of
 * up to `batch` sequences of similar length. SS_ERR_ARG for batch < 1 or a
 * sequence longer than the model's max_seq. */
ss_status ss_classify_seqs(ss_model *m, const ss_seqs *s, int batch, int32_t pad_id, float *probs, ss_error *err);

#endif
