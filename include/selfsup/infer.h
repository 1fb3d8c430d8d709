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
#include "selfsup/prompt.h"
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

/* ---- Classifiers (src/infer/classifier.c) -----------------------------------
 * A fine-tuned classifier directory: the model with its CLS head, or (fine-
 * tuned with --template) the model with its LM head and the prompt it was
 * trained with (DIR/prompt.json); the tokenizer it reads with, and the class
 * names (labels.json). Or, zero-shot, any model with a language model head
 * (a clm or mlm run, an rtd run's generator) and a prompt given here. */
typedef struct {
    ss_model *model;
    ss_tokenizer *tok;
    ss_label_map labels;
    ss_text_format fmt;
    ss_prompt **prompts; /* n_prompts: none for a CLS head, one for a prompt-fine-tuned directory; */
    int n_prompts;       /* zero-shot, one per template (their class log-probabilities averaged) */
    ss_model *owner;   /* an rtd run whose generator is model; else NULL */
    ss_text_norm text_norm; /* applied to every text (the model's config.json; the caller may change it) */
} ss_classifier;
ss_status ss_classifier_load(ss_classifier *c, const char *dir, ss_error *err);
/* Prompt-based classification with the model of DIR and n_specs >= 1
 * templates and verbalizers (the labels in the first verbalizer's order;
 * every verbalizer must name the same labels): a pretrained run (clm, mlm,
 * or rtd: its generator), or a prompt-fine-tuned directory with other
 * prompts. With several, the class probabilities are the softmax of the mean
 * over the prompts of each prompt's class log-probabilities (calibrated
 * where its spec says so): the normalized geometric mean, which is what
 * averaging the label logits of the prompts gives (PET's ensemble of
 * patterns, with one model). SS_ERR_ARG for a model without a language
 * model head, or verbalizers naming different labels. */
ss_status ss_classifier_load_prompt(ss_classifier *c, const char *dir, const ss_prompt_spec *specs, int n_specs,
                                    ss_error *err);
void ss_classifier_free(ss_classifier *c);
/* Class probabilities probs[n, K] of n texts (no dropout), in batches of
 * up to `batch` texts (prompts: sequences) of similar length. */
ss_status ss_classify(ss_classifier *c, char *const *texts, size_t n, int batch, float *probs, ss_error *err);

#endif
