/* Internals shared by the training loop (trainer.c) and the objectives
 * (objectives.c). */
#ifndef SELFSUP_TRAINER_INTERNAL_H
#define SELFSUP_TRAINER_INTERNAL_H

#include "selfsup/engine.h"
#include "selfsup/metrics.h"
#include "selfsup/mlm.h"
#include "selfsup/train.h"

/* The statistics a part of a micro-batch adds to (engine.h n_stats): the
 * loss, tokens and means below, each times scale (so they sum to the step's
 * means), then for rtd per micro-batch k the discriminator's tp, fp and
 * positives at ST_FIXED + 3k (precision and recall need the whole
 * micro-batch's counts). */
enum { ST_LOSS, ST_TOKENS, ST_MLM_ACC, ST_GEN_LOSS, ST_DISC_LOSS, ST_DISC_ACC, ST_FIXED };

/* What one optimizer step measured (means over its micro-batches). */
typedef struct {
    double loss, mlm_acc, gen_loss, disc_loss, disc_acc, disc_precision, disc_recall;
    double disc_weight;        /* rtd: the discriminator loss's weight (0: off, the generator alone) */
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
    int init_other_kind;       /* --init: the init run is of the other kind (its body changes kind) */
    ss_token_split train, val;
    ss_doc_index train_docs, val_docs; /* mlm/rtd */
    ss_mlm_config mlm;
    int32_t *tokens, *targets, *samples; /* the micro-batch's global batch [batch, seq] */
    uint8_t *key_valid, *replaced;
    size_t batch_masked, batch_real;   /* mlm/rtd: of the global batch */
    int step_causal;                   /* hybrid: this step is a causal (next-token) one */
    float step_disc_weight;            /* rtd: this step's w(step) (0: the discriminator is skipped) */
    ss_rng sample_rng;                 /* rtd: where the generator's samples of the batch start */
    ss_metrics *metrics;
    double peak_gflops;
    ss_engine eng;
    step_stats stats;          /* of the current step */
    double window_t0, window_tokens; /* since the last log line: tokens/s */
    double window_flops;       /* and the FLOPs of its steps (MFU) */
    double window_comm;        /* and seconds in the reductions across ranks (rank 0's) */
    char fail_note[4200];
    int lock_fd;               /* RUN/.lock held while this process writes RUN (ss_run_lock); -1: none */
    ss_train_progress_fn fn;
    void *ctx;
} trainer;

/* Objectives (objectives.c) */
ss_status obj_setup(trainer *t, ss_error *err);                 /* data indices, mlm config, buffers */
ss_status obj_create_models(trainer *t, ss_error *err);         /* fresh models for the objective */
/* Draw micro-batch `micro` (the global batch); compute part `part` of it. */
ss_status obj_prepare(trainer *t, int micro, ss_error *err);
ss_status obj_micro_part(trainer *t, int micro, int part, int parts, float scale, double *stats, ss_error *err);
int obj_n_stats(const trainer *t);
/* The step's statistics (summed over parts and ranks) as logged. */
void obj_step_stats(const trainer *t, const double *stats, int micro, step_stats *out);
ss_status obj_evaluate(trainer *t, ss_eval_result *r, ss_error *err);
/* Training FLOPs per input token: of a full step, of step `step` (rtd's steps
 * before --disc-start run the generator alone), and the steps that a
 * budget of FLOPs (or with count_tokens of tokens) buys at tokens_per_micro
 * input tokens per micro-batch, --grad-accum of them a step or fewer while
 * the batch ramps up (--batch-ramp). */
double obj_flops_per_token(const trainer *t);
/* rtd: the step at which the discriminator starts (--disc-start, or
 * --disc-start-share of the scheduled steps, or with a --time budget the
 * step recorded when the elapsed share passed it; -1: not yet). */
int64_t obj_disc_from(const trainer *t);
double obj_flops_per_token_at(const trainer *t, int64_t step);
int64_t obj_steps_for_budget(const trainer *t, double budget, int count_tokens, int64_t tokens_per_micro);
/* --mask-prob 0: the objective's rate, 0.3 for mlm and rtd, 0.15 for hybrid
 * (SS_MASK_PROB_MLM / SS_MASK_PROB_OTHER). */
float obj_default_mask_prob(ss_objective o);
/* --lr 0 and --lr-min -1: the objective's (5e-4 and lr/10 for clm, 1e-3 and
 * lr/100 for the encoders). */
double obj_default_lr(ss_objective o);
double obj_default_lr_min(ss_objective o, double lr);
void obj_free(trainer *t);
/* Continued pretraining (init_run.c): the architecture from the --init run
 * (the kind the objective's, its tokenizer checked against the data's) into
 * t->o.model; then the models from its weights, msg saying what came from
 * where. */
ss_status obj_init_config(trainer *t, ss_error *err);
ss_status obj_init_models(trainer *t, char *msg, size_t cap, ss_error *err);
uint64_t obj_step_seed(const trainer *t, int micro);

#endif
