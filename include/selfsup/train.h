/* Pretraining: the training loop, checkpoints with exact resume, and
 * evaluation on the val split. */
#ifndef SELFSUP_TRAIN_H
#define SELFSUP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/gemm.h"
#include "selfsup/model.h"
#include "selfsup/optim.h"
#include "selfsup/options.h"
#include "selfsup/rng.h"
#include "selfsup/tokens.h"

typedef enum { SS_OBJ_CLM = 0, SS_OBJ_MLM, SS_OBJ_RTD, SS_OBJ_HYBRID } ss_objective;
const char *ss_objective_name(ss_objective o);
ss_status ss_objective_parse(const char *s, ss_objective *o, ss_error *err);
/* 1 when the objective's model has no biases in its body by default
 * (ss_model_config.no_bias; the CLI's --bias / --no-bias override it): mlm,
 * where the learning study measured biases off better (eval/RESULTS.md).
 * The presets (ss_config_preset) keep biases: a library caller sets
 * no_bias from this. */
int ss_objective_default_no_bias(ss_objective o);

/* ---- Options ------------------------------------------------------------------ */
extern const char *const ss_objective_names[]; /* "clm", "mlm", "rtd", "hybrid", NULL */
/* Where an rtd run's replacements come from (--rtd-generator). */
enum { SS_RTD_GEN_MODEL = 0, SS_RTD_GEN_UNIFORM };
extern const char *const ss_rtd_generator_names[]; /* "model", "uniform", NULL */
/* Where an rtd discriminator starts (--disc-init). */
enum { SS_DISC_INIT_FRESH = 0, SS_DISC_INIT_GENERATOR, SS_DISC_INIT_AUTO };
extern const char *const ss_disc_init_names[]; /* "fresh", "generator", "auto", NULL */
/* Whether an rtd generator shares the discriminator's embeddings (--gen-embeddings). */
enum { SS_GEN_EMB_SHARED = 0, SS_GEN_EMB_OWN };
extern const char *const ss_gen_embeddings_names[]; /* "shared", "own", NULL */
/* The lr schedule after the warmup (--schedule). */
enum { SS_SCHEDULE_COSINE = 0, SS_SCHEDULE_ONE_CYCLE };
extern const char *const ss_schedule_names[]; /* "cosine", "one-cycle", NULL */

/* The fields come from selfsup/train_opts.def, one row per option. */
typedef struct {
#define SS_OPT(type, ctype, field, ...) ctype field;
#include "selfsup/train_opts.def"
#undef SS_OPT
    /* vocab_size is taken from the data; on resume, from the checkpoint. With
     * init (continued pretraining) the architecture is the init run's: only
     * model.dropout is read from here. */
    ss_model_config model;
    uint64_t given;            /* SS_OPT_BIT(SS_TRAIN_OPT_x): given by the user (see selfsup/options.h) */
    volatile int *stop;        /* set asynchronously (SIGINT): save and return */
} ss_train_opts;

/* SS_TRAIN_OPT_lr ...: row indices of ss_train_opt_table. */
enum {
#define SS_OPT(type, ctype, field, ...) SS_TRAIN_OPT_##field,
#include "selfsup/train_opts.def"
#undef SS_OPT
    SS_TRAIN_OPT_COUNT
};
extern const ss_opt_table ss_train_opt_table;

void ss_train_opts_defaults(ss_train_opts *o);
/* Ranges of every option, and exactly one run length (at most one with
 * resume): what ss_pretrain checks first, and the CLI before it. */
ss_status ss_train_opts_check(const ss_train_opts *o, ss_error *err);
/* JSON of the options that define a run, stored with each checkpoint. */
char *ss_train_opts_to_json(const ss_train_opts *o, int64_t total_steps);
/* Read them back (a saved option missing is SS_ERR_FORMAT naming it; the
 * run length may be absent in runs saved before it was stored). String
 * fields point into *keep, which the caller frees with free(). */
ss_status ss_train_opts_from_json(ss_train_opts *o, int64_t *total_steps, const char *json,
                                  const char *src, char **keep, ss_error *err);

/* What the loop reports after each step (and after each evaluation). */
typedef struct {
    int64_t step, total_steps;
    double loss, lr, grad_norm, tokens_per_s, mfu, elapsed, eta;
    int is_eval, skipped;
    ss_objective objective;
    double mlm_acc;            /* mlm: masked-token accuracy; rtd: the generator's */
    double gen_loss, disc_loss, disc_acc, disc_precision, disc_recall; /* rtd */
    double disc_weight;        /* rtd: the step's discriminator loss weight (0: off, not computed) */
    int64_t tokens_seen;       /* input tokens trained on so far (the run's, resumed runs included) */
    double val_loss, val_bpb, val_acc, val_disc_acc, val_disc_base, val_auc;
    double val_spread_cos, val_spread_pr; /* encoders: ss_eval_result's spread_cos, spread_participation */
    const char *message;       /* warnings and notes (NaN skips, saves) */
} ss_train_progress;
typedef void (*ss_train_progress_fn)(void *ctx, const ss_train_progress *p);

ss_status ss_pretrain(const ss_train_opts *o, ss_train_progress_fn fn, void *ctx, ss_error *err);

/* ---- Evaluation (src/train/evaluate.c) ----------------------------------------- */
typedef struct {
    double loss, perplexity, bits_per_byte;
    int64_t tokens;            /* predicted tokens (mlm: masked positions) */
    double mlm_acc;            /* mlm/rtd: masked-token accuracy (rtd: the generator's) */
    double disc_loss, disc_acc, auc; /* rtd: the discriminator on every real token */
    double disc_base;          /* rtd: share of real tokens not replaced = accuracy of "never replaced" */
    double spread_cos, spread_participation; /* encoders: how spread the body's mean vectors of the evaluated
                                                rows are (selfsup/spread.h; the discriminator's for rtd): a
                                                collapse monitor; NaN for decoders */
} ss_eval_result;
/* What an evaluation reports after each batch (fn may be NULL). */
typedef struct {
    int64_t batches, total_batches; /* done, and all (an estimate for encoders) */
    int64_t tokens;                 /* input tokens evaluated so far */
    double fraction;                /* share of the evaluation done, 0..1 */
    double elapsed;                 /* seconds since the evaluation began */
} ss_eval_progress;
typedef void (*ss_eval_progress_fn)(void *ctx, const ss_eval_progress *p);

/* Loss on the split in non-overlapping windows of T (max_tokens 0 = all).
 * bits/byte = loss_sum / ln 2 / (split text bytes * evaluated share). */
ss_status ss_evaluate_clm(ss_model *m, const ss_token_split *s, int B, int T, int64_t max_tokens,
                          ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err);
/* The same with the windows cut into `parts` contiguous parts (a multiple
 * of the ranks, selfsup/dist.h): each rank evaluates its parts and the sums
 * are reduced in a fixed order, so the result is the same bits on any rank
 * count dividing parts. ss_evaluate_clm: one part per rank. */
ss_status ss_evaluate_clm_parts(ss_model *m, const ss_token_split *s, int B, int T, int64_t max_tokens, int parts,
                                ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err);

/* ---- Checkpoints (src/train/checkpoint.c) -------------------------------------- */
typedef struct {
    int64_t step, total_steps, tokens_seen, bad_steps;
    double elapsed;
    uint64_t data_rng[4];      /* fine-tuning: the generator at the start of the current epoch */
    /* The lr schedule's length in steps, or (0) seconds: a run extended on
     * resume keeps it. -1 when loaded from a run saved before it was stored. */
    int64_t sched_steps;
    double sched_time;
    /* The GEMM backend the run computes with (gemm.h names; "" in runs saved
     * before it was stored): a resumed run keeps it, so it stays bit-identical. */
    char gemm[32];
    /* Continued pretraining (--init RUN): the sha256 of RUN's model.safetensors
     * and the step it records (-1: none), saved in trainer_state.json as
     * "init" {"run", "step", "model_sha256"} beside the options' "init" path;
     * "" when the run started from random weights. */
    char init_sha256[65];
    int64_t init_step;
    /* The data-parallel shards the steps were computed in (engine.h; 1 in
     * runs saved before they were recorded): --resume keeps them when the
     * ranks divide them. */
    int64_t shards;
    /* rtd with --disc-start-share and a --time budget: the step at which the
     * elapsed share passed it and the discriminator started (-1: not yet, or
     * not decided by time), saved as "disc_from_step". */
    int64_t disc_from;
    /* Fine-tuning: the epoch and the batches of it done, the best evaluation
     * so far, the train loss summed since the last evaluation. */
    int64_t epoch, epoch_batch, best_step, best_epoch, evals_since_best, have_best, loss_n;
    double best_score, loss_sum;
} ss_train_state;

/* What a run trains: the model (for RTD the discriminator) and, for RTD,
 * the generator that shares its embeddings; one AdamW state each. */
typedef struct {
    ss_model *model, *gen;
    ss_adamw opt, gen_opt;
} ss_train_models;

/* RUN/{config.json, model.safetensors, optimizer.safetensors, trainer_state.json}
 * (generator tensors and moments beside the model's, prefixed "generator.").
 * Before the files are replaced, the current set is hard-linked into
 * RUN/.previous/ (unless keep_previous: after resuming from .previous, the
 * broken set must not be linked over it), so a crash during a save leaves
 * one complete checkpoint. Temp files left by a killed save are removed first. */
ss_status ss_checkpoint_save(const char *run, const ss_train_models *tm, const ss_train_state *st,
                             const char *opts_json, int keep_previous, ss_error *err);
/* Load the newest complete checkpoint: RUN, else RUN/.previous. When the
 * fallback was used, *from_previous is set and err->msg says why (status
 * SS_OK). */
ss_status ss_checkpoint_load(const char *run, ss_train_models *tm, ss_train_state *st, char **opts_json,
                             int *from_previous, ss_error *err);

/* Training FLOPs per input token of an objective: 6 x (weights used per
 * token) + 12 L T C attention, for both models of rtd (gen may be NULL
 * otherwise); the LM head counts only on the mask_prob share for mlm/rtd;
 * hybrid averages its causal steps (head on every position, a causal_share
 * of the steps) and its masked ones. */
double ss_train_flops_per_token(ss_objective o, const ss_model_config *model, const ss_model_config *gen, int T,
                                double mask_prob, double causal_share);
/* ELECTRA's generator for a discriminator: gen_size times its width, heads
 * and MLP, same depth, embeddings shared (d_embed = the discriminator's width). */
ss_model_config ss_electra_generator_config(const ss_model_config *disc, double gen_size);

#endif
