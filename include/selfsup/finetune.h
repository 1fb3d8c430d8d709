/* Fine-tuning for sequence classification, and the classifier it produces.
 *
 *   texts -> token sequences (selfsup/textseq.h) -> length-bucketed, padded
 *   batches -> body + CLS head -> AdamW -> dev metrics every epoch -> the
 *   best weights kept in OUT/ (read back by ss_classifier_load, selfsup/infer.h).
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

/* ---- Options (src/train/finetune_opts.c) ------------------------------------------ */
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
/* The rows of --train a run trains on, in place: --train-size's seeded
 * subset or --per-class's (m: the classes, from every row of --train), or
 * every row; the same rows for the same options, so self-training's
 * teachers and students see what the first teacher saw. An impossible
 * subset is SS_ERR_ARG naming --train. */
ss_status ss_finetune_train_subset(ss_labeled_set *rows, const ss_label_map *m, const ss_finetune_opts *o,
                                   ss_error *err);

/* ---- The run (src/train/finetune.c) ----------------------------------------------- */
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
