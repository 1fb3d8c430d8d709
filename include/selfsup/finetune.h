/* Fine-tuning for sequence classification, and the classifier it produces.
 *
 *   texts -> token sequences (ss_text_format: how a model of each kind reads
 *   a text) -> length-bucketed, padded batches -> body + CLS head -> AdamW
 *   -> dev metrics every epoch -> the best weights kept in OUT/.
 *
 * A fine-tuned model directory holds config.json (head "cls"),
 * model.safetensors, tokenizer.json, labels.json (class names in id order),
 * metrics.jsonl (one line per evaluation) and eval.json (final metrics). */
#ifndef SELFSUP_FINETUNE_H
#define SELFSUP_FINETUNE_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/classmetrics.h"
#include "selfsup/gemm.h"
#include "selfsup/labeled.h"
#include "selfsup/model.h"
#include "selfsup/options.h"
#include "selfsup/tokenizer.h"

/* ---- Texts as token sequences (src/train/textseq.c) -------------------------------
 * An encoder reads "[CLS] text [SEP]", a decoder "text <|endoftext|>" (the
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
static inline size_t ss_seqs_len(const ss_seqs *s, size_t i) { return s->off[i + 1] - s->off[i]; }

/* Gather sequences idx[0..B) into a right-padded batch: tokens [B, T] and
 * key_valid [B, T] with T the longest of them. Returns T. */
int ss_seqs_batch(const ss_seqs *s, const size_t *idx, int B, int32_t pad_id, int32_t *tokens, uint8_t *key_valid);

/* Class probabilities [n, K] for every sequence (no dropout), in batches of
 * up to `batch` sequences of similar length. SS_ERR_ARG for batch < 1 or a
 * sequence longer than the model's max_seq. */
ss_status ss_classify_seqs(ss_model *m, const ss_seqs *s, int batch, int32_t pad_id, float *probs, ss_error *err);

/* ---- Fine-tuning (src/train/finetune.c) -------------------------------------------- */
typedef enum { SS_SELECT_ACCURACY = 0, SS_SELECT_MACRO_F1, SS_SELECT_MCC } ss_select_metric;

/* The fields come from selfsup/finetune_opts.def, one row per option. */
typedef struct {
#define SS_OPT(type, ctype, field, ...) ctype field;
#include "selfsup/finetune_opts.def"
#undef SS_OPT
    ss_model_config scratch;    /* from scratch: kind and architecture (vocab from the tokenizer) */
    uint64_t given;             /* SS_OPT_BIT(SS_FINETUNE_OPT_x): given by the user (see selfsup/options.h) */
    volatile int *stop;         /* set asynchronously: save a checkpoint, finish with the best weights so far */
} ss_finetune_opts;

/* SS_FINETUNE_OPT_lr ...: row indices of ss_finetune_opt_table. */
enum {
#define SS_OPT(type, ctype, field, ...) SS_FINETUNE_OPT_##field,
#include "selfsup/finetune_opts.def"
#undef SS_OPT
    SS_FINETUNE_OPT_COUNT
};
extern const ss_opt_table ss_finetune_opt_table;

void ss_finetune_opts_defaults(ss_finetune_opts *o);
/* Ranges of every option and the files a run needs (with resume, from the
 * checkpoint): what ss_finetune checks first, and the CLI before it. */
ss_status ss_finetune_opts_check(const ss_finetune_opts *o, ss_error *err);
/* The options that define a run as JSON (stored with its checkpoint), and
 * back (strings point into *keep, freed by the caller with free()). */
char *ss_finetune_opts_to_json(const ss_finetune_opts *o);
ss_status ss_finetune_opts_from_json(ss_finetune_opts *o, const char *json, const char *src, char **keep,
                                     ss_error *err);

typedef struct {
    int is_eval, improved, epoch;
    int64_t step, total_steps;
    double loss, lr, elapsed, seqs_per_s;
    const ss_class_metrics *dev; /* is_eval */
    const char *message;         /* notes: data summary, early stopping, saves */
} ss_finetune_progress;
typedef void (*ss_finetune_progress_fn)(void *ctx, const ss_finetune_progress *p);

typedef struct {
    ss_class_metrics dev, test; /* of the best weights; test.n == 0 without a test file */
    int64_t best_step, steps;
    int best_epoch;
    size_t train_rows, train_bad_rows;
} ss_finetune_result;

ss_status ss_finetune(const ss_finetune_opts *o, ss_finetune_result *r, ss_finetune_progress_fn fn, void *ctx,
                      ss_error *err);
void ss_finetune_result_free(ss_finetune_result *r);

#endif
