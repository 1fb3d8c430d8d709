/* Pretraining on the step engine (engine.c): sample -> forward/backward
 * (x grad_accum) -> clip -> AdamW, with periodic evaluation, metrics and
 * atomic checkpoints. Data parallel under mpirun (engine.h): every rank
 * draws the same global batches and computes its shards of them; rank 0
 * alone writes the run directory (checkpoints, metrics) and reports.
 * Same seed and thread count give bit-identical runs, and a run resumed from
 * a checkpoint continues exactly as if it had not stopped: the model, AdamW
 * moments, step and data RNG are all in the checkpoint, and dropout masks
 * are a function of (seed, step). */
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optable.h"
#include "selfsup/dist.h"
#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/tokenizer.h"
#include "trainer_internal.h"

static void note(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(trainer *t, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ss_train_progress p = {.step = t->state.step, .total_steps = t->total_steps, .message = msg};
    if (t->fn) t->fn(t->ctx, &p);
}

static ss_status copy_tokenizer_to(const trainer *t, const char *dir, ss_error *err) {
    char src[SS_PATH_MAX], dst[SS_PATH_MAX];
    ss_buf b = {0};
    ss_status st = ss_path_join(src, sizeof src, t->o.data_dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_path_join(dst, sizeof dst, dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_read_file(src, &b, err);
    if (!st) st = ss_write_file_atomic(dst, b.data, b.len, err);
    ss_buf_free(&b);
    ss_tokenizer *tok = NULL; /* and Hugging Face's tokenizer_config.json beside it */
    if (!st) st = ss_tokenizer_load(&tok, dst, err);
    if (!st) st = ss_tokenizer_save_config(tok, dir, t->o.model.max_seq, err);
    ss_tokenizer_free(tok);
    return st;
}

static ss_status load_data(trainer *t, ss_error *err) {
    ss_status st = ss_token_split_load(&t->train, t->o.data_dir, "train", err);
    if (!st) st = ss_token_split_load(&t->val, t->o.data_dir, "val", err);
    if (st) return st;
    if (t->train.n < (size_t)t->o.seq + 1)
        return ss_fail(err, SS_ERR_ARG, "%s: the train split has %zu tokens, fewer than one window (--seq %d + 1)",
                       t->o.data_dir, t->train.n, t->o.seq);
    if (t->o.objective == SS_OBJ_CLM && t->o.eval_every > 0 && t->val.n < (size_t)t->o.seq + 1)
        return ss_fail(err, SS_ERR_ARG, "%s: the val split has %zu tokens, fewer than one window (--seq %d + 1); "
                       "prepare with a larger --val-fraction or use a smaller --seq", t->o.data_dir, t->val.n,
                       t->o.seq);
    return SS_OK;
}

/* Total steps from --steps, --tokens or --flops (the objective's FLOPs per
 * token decide the steps; a batch ramp's smaller steps count as what they
 * are), or 0 for --time (schedule by time). */
static int64_t plan_steps(const trainer *t, const ss_train_opts *o) {
    if (o->steps > 0) return o->steps;
    int64_t per_micro = (int64_t)o->batch * o->seq, per_step = per_micro * o->grad_accum;
    if (o->tokens > 0 && o->batch_ramp <= 0) return (o->tokens + per_step - 1) / per_step;
    if (o->tokens > 0) return obj_steps_for_budget(t, (double)o->tokens, 1, per_micro);
    if (o->flops > 0) return obj_steps_for_budget(t, o->flops, 0, per_micro);
    return 0;
}

static ss_status setup_fresh(trainer *t, ss_error *err) {
    if (t->o.seq > t->o.model.max_seq)
        return ss_fail(err, SS_ERR_ARG, "--seq %d exceeds the %smodel's max_seq %d", t->o.seq,
                       t->o.init ? "--init run's " : "", t->o.model.max_seq);
    ss_status st;
    if (t->o.init) { /* continued pretraining: the architecture is already the init run's */
        char msg[SS_PATH_MAX + 256];
        if ((st = obj_init_models(t, msg, sizeof msg, err))) return st;
        note(t, "%s", msg);
    } else {
        t->o.model.vocab_size = (int)t->train.vocab_size;
        if ((st = obj_create_models(t, err))) return st;
    }
    if (t->o.mask_prob <= 0) t->o.mask_prob = obj_default_mask_prob(t->o.objective); /* before: FLOPs count it */
    t->total_steps = plan_steps(t, &t->o);
    if (t->o.warmup < 0 && t->total_steps > 0) { /* with --time it stays -1: warmup by time (ss_engine_lr) */
        int64_t w = t->total_steps / 20; /* SS_WARMUP_SHARE */
        t->o.warmup = t->o.schedule == SS_SCHEDULE_ONE_CYCLE ? t->total_steps / 2 /* SS_ONE_CYCLE_PEAK */
                      : w > SS_WARMUP_MAX                    ? SS_WARMUP_MAX
                                                             : w;
    }
    if (t->o.lr <= 0) t->o.lr = obj_default_lr(t->o.objective);
    if (t->o.lr_min < 0) t->o.lr_min = obj_default_lr_min(t->o.objective, t->o.lr);
    ss_rng_seed(&t->data_rng, t->o.seed ^ 0x5DEECE66Dull);
    t->state.total_steps = t->total_steps;
    t->state.sched_steps = t->total_steps;
    t->state.sched_time = t->o.time_limit;
    t->state.disc_from = -1;
    return SS_OK;
}

static const char *length_flag(const ss_train_opts *o) {
    return o->steps > 0 ? "--steps" : o->tokens > 0 ? "--tokens" : o->flops > 0 ? "--flops" : "--time";
}

/* The run length on resume: the saved one, or a longer one given now (the
 * schedule keeps its length; the added steps run at its final lr). */
static ss_status resume_length(trainer *t, const ss_train_opts *saved, int64_t total, ss_error *err) {
    ss_train_opts *o = &t->o;
    t->total_steps = total;
    if (t->state.sched_steps < 0) t->state.sched_steps = total; /* saved before the schedule was stored */
    if (t->state.sched_time < 0) t->state.sched_time = saved->time_limit;
    if (!(o->steps > 0 || o->tokens > 0 || o->flops > 0 || o->time_limit > 0)) {
        o->steps = saved->steps, o->tokens = saved->tokens, o->flops = saved->flops, o->time_limit = saved->time_limit;
        return SS_OK;
    }
    const char *flag = length_flag(o);
    if ((total > 0) != (o->time_limit <= 0))
        return ss_fail(err, SS_ERR_ARG, "%s: the run's length is %s; give its length as %s to extend it", flag,
                       total > 0 ? "in steps" : "a time budget", total > 0 ? "--steps, --tokens or --flops" : "--time");
    int64_t want = plan_steps(t, o);
    if (total > 0 ? want < total : o->time_limit < saved->time_limit)
        return ss_fail(err, SS_ERR_ARG, "%s: shorter than the run's length (%.0f %s): a run can be extended on "
                       "--resume, not shortened (Ctrl-C stops it early)", flag,
                       total > 0 ? (double)total : saved->time_limit, total > 0 ? "steps" : "s");
    if (total > 0 ? want > total : o->time_limit > saved->time_limit)
        note(t, "extending the run to %s %s: the schedule keeps its length, the added part runs at lr %.2e", flag,
             total > 0 ? "steps" : "seconds", o->lr_min);
    t->total_steps = total > 0 ? want : 0;
    t->state.total_steps = t->total_steps;
    return SS_OK;
}

/* Load the checkpoint and take the run's options from it: an option given
 * now that differs is an error naming it (optable.c), the length may grow. */
static ss_status setup_resume(trainer *t, ss_error *err) {
    char *opts_json = NULL;
    ss_error warn = {0};
    ss_status st = ss_checkpoint_load(t->o.out_dir, &t->tm, &t->state, &opts_json, &t->keep_previous, &warn);
    if (st) {
        *err = warn;
        return ss_error_prefix(err, "cannot resume: ");
    }
    if (warn.msg[0]) note(t, "warning: %s", warn.msg);
    ss_train_opts saved = t->o;
    int64_t total = 0;
    if (!opts_json) st = ss_fail(err, SS_ERR_FORMAT, "%s/trainer_state.json: no 'options'", t->o.out_dir);
    else st = ss_train_opts_from_json(&saved, &total, opts_json, t->o.out_dir, &t->saved_strings, err);
    free(opts_json);
    if (!st) st = opts_resume(&ss_train_opt_table, &t->o, &saved, t->o.given, err);
    if (st) return st;
    t->o.model = *ss_model_config_of(t->tm.model);
    if ((t->o.objective == SS_OBJ_RTD) != (t->tm.gen != NULL))
        return ss_fail(err, SS_ERR_FORMAT, "%s: the checkpoint does not fit objective %s", t->o.out_dir,
                       ss_objective_name(t->o.objective));
    if ((st = resume_length(t, &saved, total, err))) return st;
    return ss_rng_state_set(&t->data_rng, t->state.data_rng, err);
}

static ss_status check_resumed_data(trainer *t, ss_error *err) {
    if ((uint32_t)t->o.model.vocab_size != t->train.vocab_size)
        return ss_fail(err, SS_ERR_FORMAT, "%s: the data's vocabulary (%u) does not match the checkpoint's (%d)",
                       t->o.data_dir, t->train.vocab_size, t->o.model.vocab_size);
    note(t, "resumed %s at step %" PRId64, t->o.out_dir, t->state.step);
    return SS_OK;
}

static ss_status evaluate(trainer *t, ss_error *err) {
    ss_eval_result r;
    ss_status st = obj_evaluate(t, &r, err);
    if (st) return st;
    ss_objective ob = t->o.objective;
    ss_metric_field f[11] = {SS_MF_I("step", t->state.step), SS_MF_D("val_loss", r.loss), SS_MF_I("val_tokens", r.tokens)};
    size_t n = 3;
    if (ob == SS_OBJ_CLM) {
        f[n++] = SS_MF_D("val_bpb", r.bits_per_byte);
        f[n++] = SS_MF_D("val_ppl", r.perplexity);
    } else {
        f[n++] = SS_MF_D("val_acc", r.mlm_acc);
        f[n++] = SS_MF_D("val_spread_cos", r.spread_cos); /* the encoder's vectors: a collapse monitor */
        f[n++] = SS_MF_D("val_spread_pr", r.spread_participation);
    }
    if (ob == SS_OBJ_RTD) {
        f[n++] = SS_MF_D("val_disc_loss", r.disc_loss);
        f[n++] = SS_MF_D("val_disc_acc", r.disc_acc);
        f[n++] = SS_MF_D("val_disc_base", r.disc_base);
        f[n++] = SS_MF_D("val_auc", r.auc);
    }
    if (t->metrics && (st = ss_metrics_write(t->metrics, f, n, err))) return st;
    ss_train_progress p = {.step = t->state.step, .total_steps = t->total_steps, .is_eval = 1, .objective = ob,
                           .val_loss = r.loss, .val_bpb = r.bits_per_byte, .val_acc = r.mlm_acc,
                           .val_disc_acc = r.disc_acc, .val_disc_base = r.disc_base, .val_auc = r.auc,
                           .val_spread_cos = r.spread_cos, .val_spread_pr = r.spread_participation,
                           .elapsed = t->state.elapsed};
    if (t->fn) t->fn(t->ctx, &p);
    return SS_OK;
}

static ss_status save(trainer *t, ss_error *err) {
    ss_rng_state_get(&t->data_rng, t->state.data_rng);
    if (ss_dist_rank() != 0) return SS_OK; /* rank 0 writes the run directory */
    ss_status st = ss_checkpoint_save(t->o.out_dir, &t->tm, &t->state, t->opts_json, t->keep_previous, err);
    if (!st) t->keep_previous = 0;
    if (!st && t->tm.gen) { /* the encoder to fine-tune, as a model directory of its own */
        char dir[SS_PATH_MAX];
        st = ss_path_join(dir, sizeof dir, t->o.out_dir, SS_RUN_DISCRIMINATOR, err);
        char sstep[32];
        snprintf(sstep, sizeof sstep, "%" PRId64, t->state.step);
        ss_meta_kv meta[] = {{"step", sstep}};
        if (!st) st = ss_model_save(t->tm.model, dir, meta, 1, err);
        if (!st) st = copy_tokenizer_to(t, dir, err);
    }
    if (!st) note(t, "saved checkpoint at step %" PRId64 " to %s", t->state.step, t->o.out_dir);
    return st;
}

static void report_step(trainer *t, const step_stats *s, double gnorm, double lr, int skipped, double dt_tokens,
                        double dt_flops, double dt, double comm) {
    double tps = dt > 0 ? dt_tokens / dt : 0;
    double peak = t->peak_gflops * ss_dist_size(); /* every rank's GEMM peak */
    double mfu = peak > 0 && dt > 0 ? dt_flops / dt / (peak * 1e9) : 0;
    ss_train_progress p = {.step = t->state.step, .total_steps = t->total_steps, .loss = s->loss, .lr = lr,
                           .grad_norm = gnorm, .tokens_per_s = tps, .mfu = mfu, .elapsed = t->state.elapsed,
                           .skipped = skipped, .objective = t->o.objective, .mlm_acc = s->mlm_acc,
                           .gen_loss = s->gen_loss, .disc_loss = s->disc_loss, .disc_acc = s->disc_acc,
                           .disc_precision = s->disc_precision, .disc_recall = s->disc_recall,
                           .disc_weight = s->disc_weight, .tokens_seen = t->state.tokens_seen};
    if (t->total_steps > 0 && t->state.step > 0)
        p.eta = t->state.elapsed / (double)t->state.step * (double)(t->total_steps - t->state.step);
    else if (t->o.time_limit > 0)
        p.eta = t->o.time_limit - t->state.elapsed;
    if (skipped) p.message = "warning: non-finite loss or gradient; step skipped";
    if (t->fn) t->fn(t->ctx, &p);
    ss_metric_field f[16] = {SS_MF_I("step", t->state.step), SS_MF_D("loss", s->loss), SS_MF_D("lr", lr),
                             SS_MF_D("grad_norm", gnorm), SS_MF_D("tokens_per_s", tps), SS_MF_D("mfu", mfu),
                             SS_MF_D("elapsed_s", t->state.elapsed), SS_MF_I("tokens", t->state.tokens_seen)};
    size_t n = 8;
    if (t->o.objective != SS_OBJ_CLM) f[n++] = SS_MF_D(t->o.objective == SS_OBJ_RTD ? "gen_acc" : "mlm_acc", s->mlm_acc);
    if (t->o.objective == SS_OBJ_RTD) f[n++] = SS_MF_D("gen_loss", s->gen_loss);
    if (t->o.objective == SS_OBJ_RTD && s->disc_weight > 0) { /* steps without the discriminator log none */
        f[n++] = SS_MF_D("disc_weight", s->disc_weight);
        f[n++] = SS_MF_D("disc_loss", s->disc_loss);
        f[n++] = SS_MF_D("disc_acc", s->disc_acc);
        f[n++] = SS_MF_D("disc_precision", s->disc_precision);
        f[n++] = SS_MF_D("disc_recall", s->disc_recall);
    }
    if (ss_dist_size() > 1) f[n++] = SS_MF_D("comm_s", comm); /* since the last line: the reductions' share */
    ss_error ignore;
    if (t->metrics) ss_metrics_write(t->metrics, f, n, &ignore);
}

/* Engine hooks: a micro-batch of the objective (drawn whole, computed by
 * parts); log, evaluate and save after a step; save when stopped. */
static ss_status prepare(void *ctx, int k, ss_error *err) { return obj_prepare(ctx, k, err); }

static ss_status part(void *ctx, int k, int part, int parts, float scale, double *stats, ss_error *err) {
    return obj_micro_part(ctx, k, part, parts, scale, stats, err);
}

static ss_status after_step(void *ctx, const ss_engine_step *s, ss_error *err) {
    trainer *t = ctx;
    double now = omp_get_wtime();
    obj_step_stats(t, s->stats, s->micro, &t->stats);
    t->window_tokens += (double)s->tokens;
    t->window_flops += (double)s->tokens * obj_flops_per_token_at(t, t->state.step - 1); /* the step just done */
    t->window_comm += s->comm_seconds;
    if (s->log_due) {
        report_step(t, &t->stats, s->grad_norm, s->lr, s->skipped, t->window_tokens, t->window_flops,
                    now - t->window_t0, t->window_comm);
        t->window_t0 = omp_get_wtime();
        t->window_tokens = 0;
        t->window_flops = 0;
        t->window_comm = 0;
    }
    ss_status st = SS_OK;
    if (s->eval_due) st = evaluate(t, err);
    if (!st && (s->last || s->save_due)) st = save(t, err);
    if (!st && s->log_due) t->window_t0 = omp_get_wtime();
    return st;
}

static ss_status on_stop(void *ctx, ss_error *err) {
    trainer *t = ctx;
    note(t, "interrupted at step %" PRId64 ": saving", t->state.step);
    return save(t, err);
}

static ss_status loop(trainer *t, ss_error *err) {
    const ss_train_opts *o = &t->o;
    snprintf(t->fail_note, sizeof t->fail_note, "The last checkpoint in %s holds finite weights.", o->out_dir);
    t->eng = (ss_engine){
        .c = {.lr = o->lr, .lr_min = o->lr_min, .weight_decay = o->weight_decay, .clip = o->clip, .beta1 = o->beta1,
              .beta2 = o->beta2, .eps = o->eps,
              .schedule = o->schedule == SS_SCHEDULE_ONE_CYCLE ? SS_SCHED_LINEAR : SS_SCHED_COSINE, .warmup = o->warmup,
              .sched_steps = t->state.sched_steps, .sched_time = t->state.sched_time, .total_steps = t->total_steps,
              .time_limit = o->time_limit, .grad_accum = o->grad_accum, .batch_ramp = o->batch_ramp,
              .max_bad_steps = o->max_bad_steps,
              .comm_overlap = o->comm_overlap,
              .log_every = o->log_every, .eval_every = o->eval_every, .save_every = o->save_every,
              .shards = (int)t->state.shards, .fail_note = t->fail_note, .stop = o->stop},
        .tm = &t->tm, .st = &t->state,
        .h = {.ctx = t, .n_stats = obj_n_stats(t), .prepare = prepare, .micro = part, .after_step = after_step,
              .on_stop = on_stop}};
    t->window_t0 = omp_get_wtime();
    t->window_tokens = t->window_flops = 0;
    return ss_engine_run(&t->eng, err);
}

static void describe_model(trainer *t, const char *what, const ss_model *m) {
    const ss_model_config *c = ss_model_config_of(m);
    note(t, "%s: %s %s, %d layers, d_model %d, %d heads, d_ff %d, vocab %d, %s head%s, %.2fM parameters%s", what,
         ss_objective_name(t->o.objective), ss_model_kind_name(c->kind), c->n_layer, c->d_model, c->n_head, c->d_ff,
         c->vocab_size, ss_head_kind_name(c->head), c->no_bias ? ", no biases in the body" : "",
         (double)ss_model_num_params(m) / 1e6,
         m == t->tm.gen ? " (plus the shared embeddings)" : "");
}

static void describe(trainer *t) {
    const ss_model *m = t->tm.model, *g = t->tm.gen;
    size_t np = ss_model_num_params(m) + (g ? ss_model_num_params(g) : 0);
    double act = (double)ss_model_activation_bytes(ss_model_config_of(m), t->o.batch, t->o.seq) +
                 (g ? (double)ss_model_activation_bytes(ss_model_config_of(g), t->o.batch, t->o.seq) : 0);
    double need = (double)np * 4 * 4 + act + (double)(t->train.n + t->val.n) * 4;
    describe_model(t, g ? "discriminator" : "model", m);
    if (g) describe_model(t, "generator", g);
    note(t, "data: %zu train / %zu val tokens; batch %d x seq %d x accum %d = %d tokens/step",
         t->train.n, t->val.n, t->o.batch, t->o.seq, t->o.grad_accum, t->o.batch * t->o.seq * t->o.grad_accum);
    if (t->o.batch_ramp > 0)
        note(t, "batch ramp: 1 micro-batch (%d tokens) per step at the start, one more at each %.3g%% of the run, "
             "all %d from %.3g%% of it on (by %s)", t->o.batch * t->o.seq,
             100 * t->o.batch_ramp / (t->o.grad_accum - 1), t->o.grad_accum, 100 * t->o.batch_ramp,
             t->total_steps > 0 ? "the share of its steps" : "the elapsed share of its time budget");
    int R = ss_dist_size(), G = (int)t->state.shards;
    if (R > 1 || G > 1)
        note(t, "data parallel: %d rank%s (%s); each batch in %d shards of %d-%d windows, %d per rank, gradients "
             "summed in a fixed order%s%s", R, R > 1 ? "s" : "", ss_dist_name(), G, t->o.batch / G,
             (t->o.batch + G - 1) / G, G / R, R > 1 ? ", across the ranks " : "",
             R > 1 ? ss_engine_reduction_name(G, t->o.comm_overlap) : "");
    note(t, "memory need: %.1f MB (params+grads+AdamW %.1f, activations %.1f, token data %.1f)", need / 1e6,
         (double)np * 16 / 1e6, act / 1e6, (double)(t->train.n + t->val.n) * 4 / 1e6);
    double fpt = obj_flops_per_token(t), early = obj_flops_per_token_at(t, 0);
    char alone[96] = "";
    if (early != fpt)
        snprintf(alone, sizeof alone, " (%.1f before the discriminator starts: the generator alone)", early / 1e6);
    note(t, "GEMM peak here (%s, 1024^3, the MFU denominator): %.1f GFLOP/s; training: %.1f MFLOP per token%s",
         t->state.gemm, t->peak_gflops, fpt / 1e6, alone);
    const ss_train_opts *o = &t->o;
    const char *decay = o->schedule == SS_SCHEDULE_ONE_CYCLE ? "a straight line (one-cycle)" : "cosine";
    if (t->total_steps <= 0 && o->warmup < 0 && o->schedule == SS_SCHEDULE_ONE_CYCLE)
        note(t, "lr: warmup over the first %.0f%% of the %.0f s budget, then %s from %.2e to %.2e by the elapsed share",
             100 * SS_ONE_CYCLE_PEAK, t->state.sched_time, decay, o->lr, o->lr_min);
    else if (t->total_steps <= 0 && o->warmup < 0)
        note(t, "lr: warmup over the first %.0f%% of the %.0f s budget (at most %d steps), then %s from %.2e to "
             "%.2e by the elapsed share", 100 * SS_WARMUP_SHARE, t->state.sched_time, SS_WARMUP_MAX, decay, o->lr,
             o->lr_min);
    else
        note(t, "lr: warmup %" PRId64 " steps, then %s from %.2e to %.2e %s", o->warmup, decay, o->lr, o->lr_min,
             t->total_steps > 0 ? "over the steps" : "by the elapsed share of the time budget");
    if (o->objective == SS_OBJ_RTD && o->gen_temperature != 1.0f)
        note(t, "rtd: the generator's replacements are drawn at temperature %g", (double)o->gen_temperature);
    int64_t from = o->objective == SS_OBJ_RTD ? obj_disc_from(t) : 0;
    char when[96];
    snprintf(when, sizeof when, "step %" PRId64, from + 1);
    if (from < 0) /* a --time budget: decided when the elapsed time passes the share */
        snprintf(when, sizeof when, "the step after %.0f%% of the %.0f s budget", 100 * o->disc_start_share,
                 t->state.sched_time);
    if (from != 0)
        note(t, "rtd: the discriminator is off (not run, the generator learning alone) until %s%s", when,
             o->disc_start > 0 || from < 0 ? "" : " (--disc-start-share of the steps)");
    if (o->objective == SS_OBJ_RTD && o->disc_init == SS_DISC_INIT_GENERATOR)
        note(t, "rtd: at %s the discriminator's blocks are set to the generator's (--disc-init; fresh keeps its own)",
             when);
    if (o->objective == SS_OBJ_RTD && o->disc_warmup > 0)
        note(t, "rtd: the discriminator loss weight rises linearly from %g to %g over %" PRId64 " steps from %s",
             o->disc_weight / (double)o->disc_warmup, o->disc_weight, o->disc_warmup, when);
}

static void cleanup(trainer *t) {
    obj_free(t);
    ss_model_free(t->tm.gen);
    ss_model_free(t->tm.model);
    ss_adamw_free(&t->tm.opt);
    ss_adamw_free(&t->tm.gen_opt);
    ss_token_split_free(&t->train);
    ss_token_split_free(&t->val);
    free(t->opts_json);
    free(t->saved_strings);
    ss_error ignore;
    ss_metrics_close(t->metrics, &ignore);
    ss_run_unlock(t->lock_fd);
}

ss_status ss_pretrain(const ss_train_opts *opts, ss_train_progress_fn fn, void *ctx, ss_error *err) {
    trainer t = {.o = *opts, .fn = fn, .ctx = ctx, .lock_fd = -1};
    ss_status st = ss_train_opts_check(opts, err);
    if (!st) st = ss_mkdir_p(opts->out_dir, err);
    if (!st && ss_dist_rank() == 0) st = ss_run_lock(opts->out_dir, &t.lock_fd, err); /* rank 0 writes RUN */
    if (!st && opts->resume) st = setup_resume(&t, err);
    else if (!st && opts->init) st = obj_init_config(&t, err); /* before the data: a wrong --init fails at once */
    if (!st) st = load_data(&t, err);
    if (!st) st = opts->resume ? check_resumed_data(&t, err) : setup_fresh(&t, err);
    char pmsg[512];
    if (!st) st = ss_engine_precision(t.o.precision, opts->resume, &t.state, pmsg, sizeof pmsg, err);
    if (!st) note(&t, "%s", pmsg);
    int shards = 0;
    if (!st) st = ss_engine_shards(t.o.shards, opts->resume ? t.state.shards : 0, t.o.batch, "--batch", &shards, pmsg,
                                   sizeof pmsg, err);
    if (!st && pmsg[0]) note(&t, "%s", pmsg);
    t.state.shards = shards;
    char mpath[SS_PATH_MAX];
    int writer = ss_dist_rank() == 0; /* rank 0 alone writes the run directory */
    if (!st) st = ss_path_join(mpath, sizeof mpath, opts->out_dir, SS_RUN_METRICS, err);
    if (!st && writer && opts->resume) st = ss_metrics_truncate_after_step(mpath, t.state.step, err);
    if (!st && writer) st = ss_metrics_open(&t.metrics, mpath, opts->resume, err);
    if (!st && writer) st = copy_tokenizer_to(&t, t.o.out_dir, err);
    if (!st) st = obj_setup(&t, err);
    if (!st && !(t.opts_json = ss_train_opts_to_json(&t.o, t.total_steps)))
        st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) {
        t.peak_gflops = ss_gemm_peak_gflops();
        describe(&t);
        st = loop(&t, err);
    }
    cleanup(&t);
    return st;
}
