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
 * exact resume is ss_train_state (step, clock, bad steps).
 *
 * Data parallel (selfsup/dist.h): the global batch of each micro-batch is
 * cut into `shards` parts (a multiple of the ranks); every rank draws the
 * whole global batch (prepare: the same data stream on every rank) and
 * computes its own parts (micro). Each part's gradient is accumulated on its
 * own over the micro-batches; the parts' gradients are then summed in one
 * fixed tree order, on the rank and across the ranks (ss_dist_sum_f32), so
 * every rank applies the same clipped AdamW step to the same bits, and the
 * same shards give the same bits on any rank count R with shards / R a
 * power of two (1 rank x 2 shards = 2 ranks x 1). One shard on one rank is
 * the plain computation, unchanged. The loss and the hook's statistics are
 * summed per part the same way; rank 0's step time and the stop flag of any
 * rank travel with them, so every rank keeps the same clock and stops after
 * the same step. With one part per rank and comm_overlap, each block's
 * gradients are summed across the ranks as soon as the last micro-batch's
 * backward has computed them, while it computes the blocks below (gradient
 * buckets, overlapped: the same sums, so the same bits). */
#ifndef SELFSUP_ENGINE_H
#define SELFSUP_ENGINE_H

#include "selfsup/train.h"

typedef enum {
    SS_SCHED_COSINE = 0, /* linear warmup, cosine decay to lr_min (pretraining) */
    SS_SCHED_LINEAR,     /* linear warmup, linear decay to lr_min (fine-tuning: to 0; pretrain --schedule
                            one-cycle) */
} ss_schedule_kind;

/* Default warmup of a time-budgeted run: this share of the budget, at most
 * SS_WARMUP_MAX steps; with the linear schedule SS_ONE_CYCLE_PEAK of it,
 * uncapped (the one-cycle triangle peaks mid-run). */
#define SS_WARMUP_SHARE 0.05
#define SS_WARMUP_MAX 1000
#define SS_ONE_CYCLE_PEAK 0.5

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
    double batch_ramp;         /* > 0: the micro-batches grow from 1 to grad_accum over this share of the schedule
                                  (ss_batch_ramp_micro); 0: grad_accum every step */
    int64_t log_every, eval_every, save_every;
    size_t first;              /* the model trains its floats from here on (a frozen body: the head's offset) */
    int shards;                /* parts of the global batch (ss_engine_shards); 0: one per rank */
    int comm_overlap;          /* several ranks: gradient buckets summed during the backward (see step) */
    const char *fail_note;     /* appended to the non-finite error ("The last checkpoint in RUN holds ...") */
    volatile int *stop;
} ss_engine_config;

/* What the engine tells the hooks after a step. */
typedef struct {
    double loss, lr, grad_norm, seconds; /* seconds: of this step (rank 0's) */
    const double *stats;                 /* the hooks' n_stats, summed over the parts and the ranks */
    double comm_seconds;                 /* of it in the reductions across ranks after the backward pass (waiting
                                            for the others included; overlapped buckets: the part not hidden) */
    int64_t tokens;
    int micro;                           /* the step's micro-batches */
    int skipped, last;                   /* not applied (non-finite); the run's last step */
    int log_due, eval_due, save_due;     /* log: every log_every, the last and a skipped step; eval: every
                                            eval_every (>0) and the last; save: every save_every (>0) */
} ss_engine_step;

typedef struct {
    void *ctx;
    /* Doubles per part that micro adds to (at least 2): [0] the loss times
     * scale, [1] the input tokens; the rest are the hooks' own. */
    int n_stats;
    /* Micro-batches of the coming step; NULL: ss_engine_micro_count. */
    int (*micro_count)(void *ctx);
    /* Draw micro-batch `micro` of the coming step: the whole global batch,
     * the same on every rank. NULL: nothing to draw. */
    ss_status (*prepare)(void *ctx, int micro, ss_error *err);
    /* Forward and backward on part `part` of `parts` of micro-batch `micro`
     * (ss_part_lo: its rows), gradients added with `scale` (1/micro-batches)
     * times the normalisation of the whole global batch, so the parts'
     * gradients sum to the batch's; adds to stats[0..n_stats). Required. */
    ss_status (*micro)(void *ctx, int micro, int part, int parts, float scale, double *stats, ss_error *err);
    /* After each step (log, evaluate, save as the flags say). Required. */
    ss_status (*after_step)(void *ctx, const ss_engine_step *s, ss_error *err);
    /* The run should end now (early stopping); NULL: never. */
    int (*done)(void *ctx);
    /* Gradual unfreezing: the depth (ss_param_info.depth) below which the
     * model's tensors are frozen at the coming step; their gradients are
     * set to zero after the backward (so the norm and clipping see only the
     * trained tensors, as if the frozen ones had no gradient) and AdamW
     * leaves them and their moments as they are. A function of the step
     * alone, so a resumed run freezes as the uninterrupted one. NULL: 0. */
    int (*frozen_below)(void *ctx);
    /* The stop flag was raised: save what --resume needs. NULL: nothing. */
    ss_status (*on_stop)(void *ctx, ss_error *err);
} ss_engine_hooks;

typedef struct {
    ss_engine_config c;
    ss_train_models *tm;       /* model (+ generator), their AdamW states */
    ss_train_state *st;        /* step, tokens_seen, bad_steps, elapsed: in the checkpoint */
    ss_engine_hooks h;
    /* the run's working state (ss_engine_run) */
    int part_lo, part_hi;      /* this rank's parts */
    int stop_agreed;           /* some rank's stop flag was up at the last step (several ranks) */
    double *slots, *stats;     /* [shards][n_stats] + rank 0's seconds and the stop flags; [n_stats] */
    float **acc;               /* several parts on this rank: each part's gradients */
    size_t n_acc;
    struct ss_overlap *ov;     /* gradient buckets overlapped with the backward (engine.c); NULL: none */
} ss_engine;

/* The shards of a run: `given` (--shards) when > 0, else the saved count
 * when the ranks divide it (a resumed run then continues bit-identically),
 * else one per rank. It must be a multiple of the ranks and at most `batch`
 * (each shard needs a row). note (cap bytes) receives a line for the log
 * when a saved count could not be kept ("" otherwise). */
ss_status ss_engine_shards(int given, int64_t saved, int batch, const char *batch_flag, int *out, char *note,
                           size_t cap, ss_error *err);
/* How a run of `shards` shards sums its gradients across the ranks, for
 * its log: "after the backward pass", or (several ranks, one shard each,
 * the communication thread available, comm_overlap set) "each block's
 * during the backward pass". A frozen body has no block gradients: there,
 * too, everything is summed after the backward. */
int ss_engine_overlaps(int shards, int comm_overlap);
const char *ss_engine_reduction_name(int shards, int comm_overlap);
/* Whether the run was stopped (the stop flag; with several ranks: raised on
 * some rank by the last step, which every rank sees the same). */
int ss_engine_stopped(const ss_engine *e);

/* The lr of the coming step (st->step, st->elapsed). */
/* Choose the GEMM backend of a run (gemm.h) and record it in st->gemm: a
 * resumed run whose checkpoint names an available backend keeps it (the
 * same numbers as an uninterrupted run); otherwise ss_gemm_select(want).
 * msg receives one line for the run's log: the choice, why, the peaks.
 * With several ranks, rank 0 chooses and every rank takes its choice. */
ss_status ss_engine_precision(ss_precision want, int resumed, ss_train_state *st, char *msg, size_t cap,
                              ss_error *err);

double ss_engine_lr(const ss_engine *e);
/* The batch-size ramp (Cramming, Geiping & Goldstein 2022: small batches
 * while the loss falls fast, the full batch later): the micro-batches of a
 * step taken when `share` of the run is done, for a ramp over its first
 * `ramp` share up to K micro-batches: 1 + floor((K - 1) share / ramp), and K
 * from share >= ramp on (ramp 0: K). */
int ss_batch_ramp_micro(double share, double ramp, int K);
/* The coming step's micro-batches without a micro_count hook: the ramp by
 * the share of sched_steps done, or of sched_time elapsed. */
int ss_engine_micro_count(const ss_engine *e);
/* Whether the run has reached its length. */
int ss_engine_finished(const ss_engine *e);
/* Steps until the run is finished, the stop flag is raised or done(). */
ss_status ss_engine_run(ss_engine *e, ss_error *err);

#endif
