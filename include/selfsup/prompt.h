/* Prompt-based classification through a language model's own head
 * (src/infer/prompt.c): a template places the text, a verbalizer names the
 * word(s) of each label, and each label is scored by the probability the LM
 * gives its words where the template puts them. Zero-shot on a pretrained run
 * (no labelled row), and the class probabilities of a prompt-fine-tuned model
 * (selfsup/finetune.h: --template, --verbalizer).
 *
 *   template    "{text} It was [MASK]."  one {text}; for an encoder one [MASK],
 *               the word's place; for a decoder the word continues the
 *               template (an optional [MASK] may end it)
 *   verbalizer  "0=terrible,bad;1=great,good"  LABEL=WORD[,WORD...] entries
 *               separated by ';' (spaces around names and words are dropped)
 *
 * A space just before {text} or [MASK] belongs to what follows, as byte-level
 * BPE attaches a space to the next word: "It was [MASK]." scores " great" in
 * "It was" + [MASK] + "."; a decoder template without [MASK] is continued by
 * " great" (unless it ends in a line break or tab: then "great").
 *
 * Sequences: an encoder reads "[CLS] prompt [SEP]", a decoder
 * "<|endoftext|> prompt" (the separator that precedes every document it was
 * pretrained on). A text too long for the model keeps its start.
 *
 * Scores: log P(word) is the sum of its tokens' log-probabilities (no length
 * normalization: it is the word's probability, so words of different lengths
 * compare as strings). A decoder predicts token q after the prompt and
 * tokens < q; an encoder gets as many [MASK]s as the word has tokens and
 * each is read at its own [MASK] (all masked at once). A label scores
 * log sum_{its words} P(word) (log-sum-exp), and the class probabilities are
 * the softmax of the label scores. With calibration (Zhao et al. 2021,
 * "Calibrate before use"), the label probabilities p_cf of content-free
 * inputs (the texts "N/A" and "", averaged) divide them out:
 * softmax(score - log p_cf). With words of one token each this is the
 * softmax over labels of the logsumexp of the LM head's logits of each
 * label's tokens, which prompt-based fine-tuning trains (ss_verbalizer_head,
 * selfsup/model.h). */
#ifndef SELFSUP_PROMPT_H
#define SELFSUP_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"
#include "selfsup/labeled.h"
#include "selfsup/model.h"
#include "selfsup/textseq.h"
#include "selfsup/tokenizer.h"

typedef struct {
    const char *template_text;
    const char *verbalizer;
    int calibrate;
} ss_prompt_spec;

typedef struct ss_prompt ss_prompt;

/* Parse and check the template and verbalizer for a model of this kind and
 * length, and tokenize the words. SS_ERR_ARG with a message saying what is
 * wrong: no or several {text}, an unknown {placeholder}, an encoder template
 * without exactly one [MASK], text after a decoder's [MASK], a verbalizer
 * entry without '=', an empty label or word, a label twice, a word under two
 * labels, fewer than 2 labels, a template and word too long for max_seq.
 * The tokenizer is used (encode) by the prompt until it is freed. */
ss_status ss_prompt_create(ss_prompt **out, const ss_prompt_spec *spec, ss_tokenizer *tok, ss_model_kind kind,
                           int max_seq, ss_error *err);
void ss_prompt_free(ss_prompt *p);
/* The spec it was made from (its strings live as long as the prompt). */
ss_prompt_spec ss_prompt_spec_of(const ss_prompt *p);
void ss_prompt_set_calibrate(ss_prompt *p, int on);
int ss_prompt_num_labels(const ss_prompt *p);
int ss_prompt_num_words(const ss_prompt *p);
const char *ss_prompt_label(const ss_prompt *p, int k);
/* Renumber the labels as m numbers them (a fine-tuning run's classes): the
 * verbalizer must name exactly m's labels (SS_ERR_ARG naming the one missing
 * or extra; `source` names where m's labels come from). */
ss_status ss_prompt_order_labels(ss_prompt *p, const ss_label_map *m, const char *source, ss_error *err);
/* For prompt-based fine-tuning (ss_verbalizer_tokens, selfsup/model.h):
 * ids[j] = the token of word j and labels[j] its label, for the
 * ss_prompt_num_words words in the verbalizer's order; every word must be
 * one token (SS_ERR_ARG naming the word and its tokens). */
ss_status ss_prompt_word_tokens(const ss_prompt *p, int32_t *ids, int32_t *labels, ss_error *err);

/* Texts as prompt sequences, and pos[i] (malloc'd) the position whose LM
 * logits predict the word: the [MASK] (encoder), the last token (decoder).
 * out->n_truncated counts the texts that were cut. */
ss_status ss_prompt_encode(ss_prompt *p, char *const *texts, size_t n, ss_seqs *out, int32_t **pos, ss_error *err);
/* Class probabilities probs[n, K] of encoded texts with model m (an LM or
 * MLM head of the prompt's kind; no dropout), up to `batch` sequences per
 * forward pass. */
ss_status ss_prompt_classify_seqs(ss_prompt *p, ss_model *m, const ss_seqs *s, const int32_t *pos, int batch,
                                  float *probs, ss_error *err);
/* The same from texts. */
ss_status ss_prompt_classify(ss_prompt *p, ss_model *m, char *const *texts, size_t n, int batch, float *probs,
                             ss_error *err);

/* Several prompts (classify's templates, a model fine-tuned through
 * several): probs = softmax_k(mean_i log p_i(k)), p_i prompt i's class
 * probabilities, floored at FLT_MIN so that one prompt's underflowed zero
 * does not veto the others with log 0 = -inf. acc (zeroed by the caller)
 * gathers each prompt's probs[n_values] with ss_prompt_mean_add; then
 * ss_prompt_mean_probs writes the softmax of acc's n rows of K. */
void ss_prompt_mean_add(double *acc, const float *probs, size_t n_values, int n_prompts);
void ss_prompt_mean_probs(const double *acc, size_t n, int K, float *probs);

/* Prompt specs sharing one verbalizer and calibration (the first's) as
 * JSON, a prompt-fine-tuned model's prompt.json: {"template": string (one
 * spec) or [strings], "verbalizer", "calibrate"} (malloc'd, NULL when out
 * of memory); and back: *specs (*n of them) and their strings in one block,
 * *keep, which the caller frees; SS_ERR_FORMAT naming `source`. */
char *ss_prompt_specs_to_json(const ss_prompt_spec *s, int n);
ss_status ss_prompt_specs_from_json(ss_prompt_spec **specs, int *n, const char *json, const char *source,
                                    char **keep, ss_error *err);

#endif
