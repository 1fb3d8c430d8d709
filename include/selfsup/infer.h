/* Inference with trained encoders and classifiers, without the CLI:
 * fill-mask with a masked LM, and a fine-tuned classifier directory.
 * (Text generation with a decoder: selfsup/generate.h.) */
#ifndef SELFSUP_INFER_H
#define SELFSUP_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/io.h"
#include "selfsup/labeled.h"
#include "selfsup/model.h"
#include "selfsup/textseq.h"
#include "selfsup/tokenizer.h"

/* ---- Fill-mask (src/infer/fill_mask.c) -------------------------------------
 * A masked LM: an mlm run, or the generator of an rtd run (its discriminator
 * cannot fill masks), with the run's tokenizer. */
typedef struct ss_masked_lm ss_masked_lm;
ss_status ss_masked_lm_load(ss_masked_lm **out, const char *dir, ss_error *err);
void ss_masked_lm_free(ss_masked_lm *f);
const ss_tokenizer *ss_masked_lm_tokenizer(const ss_masked_lm *f);

typedef struct {
    int32_t id;
    double prob;
} ss_token_prob;

typedef struct {
    int n_masks, k;     /* k = min(top_k, vocabulary size) */
    ss_token_prob *top; /* [n_masks, k]: each [MASK]'s most probable tokens, most probable
                           first (ties: lower id first) */
    ss_buf filled;      /* the text with every [MASK] replaced by its most probable token */
} ss_fill_result;

/* Run the model over [CLS] text [SEP] (text may contain [MASK]). SS_ERR_ARG
 * for a text without [MASK] or longer than the model's max_seq. */
ss_status ss_fill_mask(ss_masked_lm *f, const char *text, size_t len, int top_k, ss_fill_result *r, ss_error *err);
void ss_fill_result_free(ss_fill_result *r);

/* ---- A fine-tuned classifier directory (src/infer/classifier.c) ------------
 * The model with its CLS head, the tokenizer it reads with, and the class
 * names (labels.json). */
typedef struct {
    ss_model *model;
    ss_tokenizer *tok;
    ss_label_map labels;
    ss_text_format fmt;
} ss_classifier;
ss_status ss_classifier_load(ss_classifier *c, const char *dir, ss_error *err);
void ss_classifier_free(ss_classifier *c);
/* Class probabilities probs[n, K] of n texts (no dropout), in batches of
 * up to `batch` texts of similar length. */
ss_status ss_classify(ss_classifier *c, char *const *texts, size_t n, int batch, float *probs, ss_error *err);

#endif
