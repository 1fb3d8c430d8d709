/* State of one fine-tuning run, shared by src/train/finetune*.c. */
#ifndef SELFSUP_FINETUNE_INTERNAL_H
#define SELFSUP_FINETUNE_INTERNAL_H

#include "selfsup/engine.h"
#include "selfsup/finetune.h"
#include "selfsup/labeled.h"
#include "selfsup/metrics.h"
#include "selfsup/optim.h"
#include "selfsup/prompt.h"
#include "selfsup/rng.h"
#include "selfsup/textseq.h"
#include "selfsup/tokenizer.h"

/* One labelled split, read and encoded. Prompt-based with several
 * templates, seqs and pos hold every row through each template in turn:
 * sequence t * rows.n + i is row i through template t (label y[i]). */
typedef struct {
    const char *path;
    ss_labeled_set rows;
    ss_seqs seqs;
    int32_t *pos; /* prompt-based: the position of the word in each sequence */
    int32_t *y;   /* [rows.n] */
} ft_split;

typedef struct {
    ss_finetune_opts o;
    char *saved_strings, *opts_json; /* resumed: the saved options' strings; the options to save */
    ss_tokenizer *tok;
    ss_text_format fmt;
    ss_label_map labels;
    ft_split train, dev, test;
    float *class_w;             /* [K] or NULL */
    ss_prompt **prompts;        /* --template (one per template): the class logits come from the LM head's of verb */
    int n_prompts;
    int32_t *verb_ids, *verb_labels; /* [words]: each verbalizer word's token and label */
    ss_verbalizer_tokens verb;  /* views of them */
    int32_t *positions;         /* [batch]: b*T + pos of each row (prompt-based) */
    ss_model *model;            /* = tm.model */
    ss_train_models tm;         /* the model and its AdamW state */
    ss_train_state state;       /* step, epoch and position in it, the best so far: in the checkpoint */
    ss_engine eng;
    int keep_previous;          /* resumed from checkpoint/.previous */
    size_t first_trained;       /* 0, or the head's offset with --freeze-encoder */
    float *best;                /* parameters of the best evaluation so far */
    int64_t total_steps, warmup;
    ss_metrics *metrics;
    ss_rng rng;                 /* epoch order (its state at the epoch's start is state.data_rng) */
    /* batches of the current epoch: order[] holds sequence indices, batch b
     * is order[batch_at[b] .. +batch_len[b]) */
    size_t *order, *batch_at;
    int *batch_len;
    size_t n_batches;
    int32_t *tokens, *batch_y;
    uint8_t *valid;
    int cur_n, cur_T;           /* the micro-batch drawn by prepare: texts, padded length */
    const size_t *cur_idx;      /* and its texts' rows in the split */
    double cur_wsum;            /* and its summed class weights (the loss's normaliser) */
    double t0;
    double log_loss, shown_loss, last_shown; /* since the last metrics line / progress report */
    int64_t log_n, shown_n;
    int lock_fd;                /* DIR/.lock held while this process writes DIR (ss_run_lock); -1: none */
    ss_finetune_progress_fn fn;
    void *ctx;
} ft_run;

/* src/train/finetune_data.c */
ss_status ft_load_data(ft_run *r, ss_error *err);
ss_status ft_encode_data(ft_run *r, ss_error *err);
void ft_free_data(ft_run *r);
/* Length-bucketed shuffle of the training set into this epoch's batches. */
void ft_plan_epoch(ft_run *r);

/* src/train/finetune_eval.c */
ss_status ft_eval_split(ft_run *r, const ft_split *s, ss_class_metrics *m, ss_error *err);
ss_status ft_save_best(ft_run *r, ss_error *err);
ss_status ft_write_eval_json(ft_run *r, const ss_finetune_result *res, ss_error *err);
double ft_score(const ft_run *r, const ss_class_metrics *m);
/* The run's prompt.json (ss_prompt_specs_to_json of its templates); NULL when out of memory. */
char *ft_prompt_json(const ft_run *r);

#endif
