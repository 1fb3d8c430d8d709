/* Text embeddings (src/infer/embed.c): one vector per text from a trained
 * model's body -- the hidden states after the final LayerNorm, pooled --
 * for search, clustering and linear probes; and NumPy .npy files to hold
 * them. */
#ifndef SELFSUP_EMBED_H
#define SELFSUP_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"
#include "selfsup/model.h"
#include "selfsup/textseq.h"
#include "selfsup/tokenizer.h"

/* A model directory read for embeddings: a pretraining run (a clm decoder,
 * an mlm encoder, an rtd run's discriminator, RUN/discriminator/) or a
 * fine-tuned classifier (its body; the head is not used). Texts are read as
 * fine-tuning and classify read them: "[CLS] text [SEP]" for an encoder,
 * "text <|endoftext|>" for a decoder, cut to max_seq tokens keeping their
 * start. */
typedef struct {
    ss_model *model;
    ss_tokenizer *tok;
    ss_text_format fmt;       /* fmt.max_seq: the length texts are cut to */
    ss_pooling default_pooling; /* mean (encoder), last (decoder); a classifier: its head's */
    ss_text_norm default_text_norm; /* the model's config.json (a classifier fine-tuned with --detokenize) */
} ss_embedder;
/* max_seq 0: the model's; else at most the model's (SS_ERR_ARG above it or below 3). */
ss_status ss_embedder_load(ss_embedder *e, const char *dir, int max_seq, ss_error *err);
void ss_embedder_free(ss_embedder *e);
int ss_embedder_dim(const ss_embedder *e); /* d_model */

typedef struct {
    ss_pooling pooling; /* mean: over the non-padding positions ([CLS] and [SEP] or <|endoftext|> included);
                           cls: position 0 (encoders only); last: the last non-padding position;
                           wmean: position-weighted mean (selfsup/model.h) */
    int normalize;      /* 1: divide each vector by its L2 norm (a zero vector stays zero) */
    int batch;          /* texts per forward pass, >= 1 */
    ss_text_norm text_norm; /* applied to every text first (selfsup/textnorm.h) */
} ss_embed_opts;

/* out[n, d_model]: the vector of each text, in order (no dropout). Texts go
 * through in batches of similar length; a batch's result does not depend on
 * the other texts in it (padding is masked or, in a decoder, never read).
 * *n_truncated (may be NULL) counts the texts cut to max_seq. SS_ERR_ARG:
 * cls pooling on a decoder, batch < 1. */
ss_status ss_embed(ss_embedder *e, char *const *texts, size_t n, const ss_embed_opts *o, float *out,
                   size_t *n_truncated, ss_error *err);
/* The same on sequences already encoded (ss_seqs_encode), pad_id filling
 * the batches. SS_ERR_ARG for a sequence longer than the model's max_seq. */
ss_status ss_embed_seqs(ss_model *m, const ss_seqs *s, int32_t pad_id, const ss_embed_opts *o, float *out,
                        ss_error *err);

/* ---- NumPy .npy files (format version 1.0), float32 [n, d] ---------------------
 * Magic "\x93NUMPY", version 1.0, a little-endian u16 header length, the
 * header {'descr': '<f4', 'fortran_order': False, 'shape': (n, d), } padded
 * with spaces and a newline to 128 bytes, then the rows. Rows are appended
 * as they come (n is written at commit), into a temporary file renamed into
 * place at commit (atomic: an aborted or failed write leaves PATH as it was). */
typedef struct ss_npy_writer ss_npy_writer;
ss_status ss_npy_open(ss_npy_writer **out, const char *path, int d, ss_error *err);
ss_status ss_npy_append(ss_npy_writer *w, const float *rows, size_t n, ss_error *err);
ss_status ss_npy_commit(ss_npy_writer *w, ss_error *err); /* frees w */
void ss_npy_abort(ss_npy_writer *w);                      /* frees w */
#define SS_NPY_HEADER_BYTES 128

#endif
