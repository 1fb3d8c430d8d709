/* Text normalization before tokenizing (src/data/textnorm.c): what a
 * classifier applies to every text it reads, training rows and inputs alike.
 *
 *   none  the text as given
 *   ptb   undo Penn Treebank tokenization, as in the Stanford Sentiment
 *         Treebank and GLUE's SST-2 ("it 's a -lrb- mild -rrb- joy , does
 *         n't it ?" -> "it's a (mild) joy, doesn't it?"): clitics ('s 're 've
 *         'll 'd 'm n't) and closing punctuation (, . ! ? ; : % ... ) ] } and
 *         closing quotes '' ') join the word before, opening brackets and
 *         quotes (( [ { `` `) and $ # the word after; -lrb- -rrb- -lsb- -rsb-
 *         -lcb- -rcb- become brackets, `` and '' double quotes, ` a single
 *         one, \/ and \* / and *. Tokens are the text's runs of non-spaces;
 *         they are joined by single spaces. A model pretrained on ordinary
 *         text (where "doesn't" is one word and "," follows its word) then
 *         reads the labelled sentences as it read its pretraining text. */
#ifndef SELFSUP_TEXTNORM_H
#define SELFSUP_TEXTNORM_H

#include <stddef.h>

#include "selfsup/error.h"

typedef enum { SS_TEXT_NORM_NONE = 0, SS_TEXT_NORM_PTB } ss_text_norm;
extern const char *const ss_text_norm_names[]; /* "none", "ptb", NULL: by ss_text_norm */
ss_status ss_text_norm_parse(const char *s, ss_text_norm *out, ss_error *err);

/* Normalize text in place (the result is never longer than the text). */
void ss_text_normalize(char *text, ss_text_norm how);

/* Normalized copies of texts[0..n) (the caller's stay as they are): *out is
 * an array of n strings, freed with ss_texts_free. */
ss_status ss_texts_normalized(char *const *texts, size_t n, ss_text_norm how, char ***out, ss_error *err);
void ss_texts_free(char **texts, size_t n);

#endif
