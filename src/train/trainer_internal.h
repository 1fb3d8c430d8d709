/* Internals shared by the training loop (trainer.c) and the objectives
 * (objectives.c). */
#ifndef SELFSUP_TRAINER_INTERNAL_H
#define SELFSUP_TRAINER_INTERNAL_H

#include "selfsup/engine.h"
#include "selfsup/metrics.h"
#include "selfsup/mlm.h"
#include "selfsup/train.h"

/* What one optimizer step measured (means over its micro-batches). */
typedef struct {
    double loss, mlm_acc, gen_loss, disc_loss, disc_acc, disc_precision, disc_recall;
    int64_t tokens;            /* input tokens processed (non-padding) */
} step_stats;

typedef struct {
    ss_train_opts o;
    char *saved_strings;       /* resumed: the saved options' strings */
    int64_t total_steps;
    char *opts_json;
    ss_train_models tm;        /* model (rtd: discriminator) + generator */
    ss_train_state state;
    ss_rng data_rng;           /* windows, masks and generator samples */
    int keep_previous;         /* resumed from RUN/.previous: do not link the broken set over it */
    ss_token_split train, val;
    ss_doc_index train_docs, val_docs; /* mlm/rtd */
    ss_mlm_config mlm;
    int32_t *tokens, *targets, *samples;
    uint8_t *key_valid, *replaced;
    ss_metrics *metrics;
    double peak_gflops, flops_per_token;
    ss_engine eng;
    step_stats stats;          /* of the current step */
    double window_t0, window_tokens; /* since the last log line: tokens/s */
    char fail_note[4200];
    ss_train_progress_fn fn;
    void *ctx;
} trainer;

/* Objectives (objectives.c) */
ss_status obj_setup(trainer *t, ss_error *err);                 /* data indices, mlm config, buffers */
ss_status obj_create_models(trainer *t, ss_error *err);         /* fresh models for the objective */
ss_status obj_micro_step(trainer *t, int micro, float scale, step_stats *s, ss_error *err);
ss_status obj_evaluate(trainer *t, ss_eval_result *r, ss_error *err);
double obj_flops_per_token(const trainer *t);
void obj_free(trainer *t);
/* Continued pretraining (init_run.c): the architecture from the --init run
 * (its kind checked against the objective, its tokenizer against the
 * data's) into t->o.model; then the models from its weights, msg saying what
 * came from where. */
ss_status obj_init_config(trainer *t, ss_error *err);
ss_status obj_init_models(trainer *t, char *msg, size_t cap, ss_error *err);
uint64_t obj_step_seed(const trainer *t, int micro);

#endif
