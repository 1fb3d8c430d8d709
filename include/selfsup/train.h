/* Pretraining: the training loop, checkpoints with exact resume, and
 * evaluation on the val split. */
#ifndef SELFSUP_TRAIN_H
#define SELFSUP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/model.h"
#include "selfsup/optim.h"
#include "selfsup/rng.h"

typedef enum { SS_OBJ_CLM = 0, SS_OBJ_MLM, SS_OBJ_RTD } ss_objective;
const char *ss_objective_name(ss_objective o);
ss_status ss_objective_parse(const char *s, ss_objective *o, ss_error *err);

/* ---- Token splits held in memory (src/data/tokens.c) ------------------------- */
typedef struct {
    int32_t *ids;
    size_t n;
    uint64_t text_bytes;   /* UTF-8 bytes the split's tokens stand for */
    uint32_t vocab_size, separator_id;
} ss_token_split;
ss_status ss_token_split_load(ss_token_split *s, const char *dir, const char *split, ss_error *err);
void ss_token_split_free(ss_token_split *s);

/* CLM batch from random windows: tokens = ids[s..s+T), targets = ids[s+1..s+T]. */
void ss_clm_sample(const ss_token_split *s, ss_rng *rng, int B, int T, int32_t *tokens, int32_t *targets);

/* ---- Options ------------------------------------------------------------------ */
typedef struct {
    const char *data_dir, *out_dir;
    ss_objective objective;
    ss_model_config model;     /* vocab_size is taken from the data */
    int seq, batch, grad_accum;
    int64_t steps, tokens;     /* one of steps / tokens / flops / time_limit */
    double flops;              /* training FLOPs budget (ss_train_flops_per_token) */
    double time_limit;         /* seconds */
    double lr, lr_min, weight_decay, clip, beta1, beta2, eps;
    int64_t warmup;            /* steps; -1: 5% of the run (with --time: of its time), at most 1000 */
    uint64_t seed;
    int threads;
    int64_t eval_every, save_every, log_every;
    int64_t eval_tokens;       /* val tokens per evaluation, 0 = the whole split */
    int max_bad_steps;         /* consecutive non-finite steps before stopping */
    int resume;
    /* masked LM and replaced-token detection */
    float mask_prob, mask_replace, mask_random; /* 0.15, 0.8, 0.1 */
    int whole_word;
    double gen_size;           /* generator width / discriminator width, 0.25 */
    double disc_weight;        /* weight of the discriminator loss, 50 */
    volatile int *stop;        /* set asynchronously (SIGINT): save and return */
} ss_train_opts;

void ss_train_opts_defaults(ss_train_opts *o);
/* JSON of the options that define a run, stored with each checkpoint. */
char *ss_train_opts_to_json(const ss_train_opts *o, int64_t total_steps);
ss_status ss_train_opts_from_json(ss_train_opts *o, int64_t *total_steps, const char *json,
                                  const char *src, ss_error *err);

/* What the loop reports after each step (and after each evaluation). */
typedef struct {
    int64_t step, total_steps;
    double loss, lr, grad_norm, tokens_per_s, mfu, elapsed, eta;
    int is_eval, skipped;
    ss_objective objective;
    double mlm_acc;            /* mlm: masked-token accuracy; rtd: the generator's */
    double gen_loss, disc_loss, disc_acc, disc_precision, disc_recall; /* rtd */
    double val_loss, val_bpb, val_acc, val_disc_acc, val_disc_base, val_auc;
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

/* ---- Checkpoints (src/train/checkpoint.c) -------------------------------------- */
typedef struct {
    int64_t step, total_steps, tokens_seen, bad_steps;
    double elapsed;
    uint64_t data_rng[4];
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
 * one complete checkpoint. */
ss_status ss_checkpoint_save(const char *run, const ss_train_models *tm, const ss_train_state *st,
                             const char *opts_json, int keep_previous, ss_error *err);
/* Load the newest complete checkpoint: RUN, else RUN/.previous. When the
 * fallback was used, *from_previous is set and err->msg says why (status
 * SS_OK). */
ss_status ss_checkpoint_load(const char *run, ss_train_models *tm, ss_train_state *st, char **opts_json,
                             int *from_previous, ss_error *err);

/* Training FLOPs per input token of an objective: 6 x (weights used per
 * token) + 12 L T C attention, for both models of rtd (gen may be NULL
 * otherwise); the LM head counts only on the mask_prob share for mlm/rtd. */
double ss_train_flops_per_token(ss_objective o, const ss_model_config *model, const ss_model_config *gen, int T,
                                double mask_prob);
/* ELECTRA's generator for a discriminator: gen_size times its width, heads
 * and MLP, same depth, embeddings shared (d_embed = the discriminator's width). */
ss_model_config ss_electra_generator_config(const ss_model_config *disc, double gen_size);

/* sgemm GFLOP/s on this machine with the current thread count (best of
 * 1024^3 products over at least 0.3 s), the denominator of MFU. */
double ss_sgemm_peak_gflops(void);

#endif
