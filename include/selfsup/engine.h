/* The step engine shared by pretraining and fine-tuning.
 *
 * It owns what every training run does the same way: AdamW (betas, eps and
 * weight decay from the options), the learning-rate schedule, gradient
 * accumulation (K micro-batches, gradients summed with scale 1/K), clipping
 * by the global norm, the non-finite policy (a step whose loss or gradient
 * is not finite is skipped; max_bad_steps in a row stop the run), the
 * logging / evaluation / checkpoint cadence, and the stop flag. What a step
 * computes (the objective) and what happens at a log line, an evaluation or
 * a save plug in as hooks. The state that a checkpoint must hold for an
 * exact resume is ss_train_state (step, clock, bad steps). */
#ifndef SELFSUP_ENGINE_H
#define SELFSUP_ENGINE_H

#include "selfsup/train.h"

typedef enum {
    SS_SCHED_COSINE = 0, /* linear warmup, cosine decay to lr_min (pretraining) */
    SS_SCHED_LINEAR,     /* linear warmup, linear decay to 0 (BERT's fine-tuning) */
} ss_schedule_kind;

/* Default warmup of a time-budgeted run: this share of the budget, at most
 * SS_WARMUP_MAX steps. */
#define SS_WARMUP_SHARE 0.05
#define SS_WARMUP_MAX 1000

typedef struct {
    double lr, lr_min, weight_decay, clip, beta1, beta2, eps;
    double layer_decay;        /* ss_adamw_hparams.layer_decay; 0 or 1: off */
    ss_schedule_kind schedule;
    int64_t warmup;            /* steps; -1 (time schedule only): SS_WARMUP_SHARE of the time */
    /* The schedule's length: sched_steps steps, or (sched_steps 0) sched_time
     * seconds of training. A run extended on resume keeps its schedule: the
     * added steps run at the schedule's final lr. */
    int64_t sched_steps;
    double sched_time;
    int64_t total_steps;       /* the run ends here, or (0) after time_limit seconds */
    double time_limit;
    int grad_accum, max_bad_steps;
    int64_t log_every, eval_every, save_every;
    size_t first;              /* the model trains its floats from here on (a frozen body: the head's offset) */
    const char *fail_note;     /* appended to the non-finite error ("The last checkpoint in RUN holds ...") */
    volatile int *stop;
} ss_engine_config;

/* What the engine tells the hooks after a step. */
typedef struct {
    double loss, lr, grad_norm, seconds; /* seconds: of this step */
    int64_t tokens;
    int skipped, last;                   /* not applied (non-finite); the run's last step */
    int log_due, eval_due, save_due;     /* log: every log_every, the last and a skipped step; eval: every
                                            eval_every (>0) and the last; save: every save_every (>0) */
} ss_engine_step;

typedef struct {
    void *ctx;
    /* Forward and backward on micro-batch `micro` of the step, gradients
     * added with `scale` (1/micro-batches), the loss added times scale to
     * *loss and the input tokens to *tokens. Required. */
    ss_status (*micro)(void *ctx, int micro, float scale, double *loss, int64_t *tokens, ss_error *err);
    /* Micro-batches of the coming step; NULL: grad_accum. */
    int (*micro_count)(void *ctx);
    /* After each step (log, evaluate, save as the flags say). Required. */
    ss_status (*after_step)(void *ctx, const ss_engine_step *s, ss_error *err);
    /* The run should end now (early stopping); NULL: never. */
    int (*done)(void *ctx);
    /* The stop flag was raised: save what --resume needs. NULL: nothing. */
    ss_status (*on_stop)(void *ctx, ss_error *err);
} ss_engine_hooks;

typedef struct {
    ss_engine_config c;
    ss_train_models *tm;       /* model (+ generator), their AdamW states */
    ss_train_state *st;        /* step, tokens_seen, bad_steps, elapsed: in the checkpoint */
    ss_engine_hooks h;
} ss_engine;

/* The lr of the coming step (st->step, st->elapsed). */
/* Choose the GEMM backend of a run (gemm.h) and record it in st->gemm: a
 * resumed run whose checkpoint names an available backend keeps it (the
 * same numbers as an uninterrupted run); otherwise ss_gemm_select(want).
 * msg receives one line for the run's log: the choice, why, the peaks. */
ss_status ss_engine_precision(ss_precision want, int resumed, ss_train_state *st, char *msg, size_t cap,
                              ss_error *err);

double ss_engine_lr(const ss_engine *e);
/* Whether the run has reached its length. */
int ss_engine_finished(const ss_engine *e);
/* Steps until the run is finished, the stop flag is raised or done(). */
ss_status ss_engine_run(ss_engine *e, ss_error *err);

#endif
