/* The pretraining loop: sample -> forward/backward (x grad_accum) -> clip ->
 * AdamW, with periodic evaluation, metrics and atomic checkpoints.
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

#include "selfsup/io.h"
#include "selfsup/metrics.h"
#include "selfsup/tokenizer.h"
#include "selfsup/train.h"

typedef struct {
    ss_train_opts o;
    int64_t total_steps;
    char *opts_json;
    ss_model *model;
    ss_adamw opt;
    ss_train_state state;
    ss_rng data_rng;
    int keep_previous; /* resumed from RUN/.previous: do not link the broken set over it */
    ss_token_split train, val;
    int32_t *tokens, *targets;
    ss_metrics *metrics;
    double peak_gflops, flops_per_token;
    ss_train_progress_fn fn;
    void *ctx;
} trainer;

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

static ss_status copy_tokenizer(const trainer *t, ss_error *err) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/tokenizer.json", t->o.data_dir);
    snprintf(dst, sizeof dst, "%s/tokenizer.json", t->o.out_dir);
    ss_buf b = {0};
    ss_status st = ss_read_file(src, &b, err);
    if (!st) st = ss_write_file_atomic(dst, b.data, b.len, err);
    ss_buf_free(&b);
    return st;
}

static ss_status load_data(trainer *t, ss_error *err) {
    ss_status st = ss_token_split_load(&t->train, t->o.data_dir, "train", err);
    if (!st) st = ss_token_split_load(&t->val, t->o.data_dir, "val", err);
    if (st) return st;
    if (t->train.n < (size_t)t->o.seq + 1)
        return ss_fail(err, SS_ERR_ARG, "%s: the train split has %zu tokens, fewer than one window (--seq %d + 1)",
                       t->o.data_dir, t->train.n, t->o.seq);
    if (t->o.eval_every > 0 && t->val.n < (size_t)t->o.seq + 1)
        return ss_fail(err, SS_ERR_ARG, "%s: the val split has %zu tokens, fewer than one window (--seq %d + 1); "
                       "prepare with a larger --val-fraction or use a smaller --seq", t->o.data_dir, t->val.n,
                       t->o.seq);
    return SS_OK;
}

/* Total steps from --steps, --tokens, or (for --time) 0 = schedule by time. */
static int64_t plan_steps(const ss_train_opts *o) {
    if (o->steps > 0) return o->steps;
    int64_t per_step = (int64_t)o->batch * o->seq * o->grad_accum;
    if (o->tokens > 0) return (o->tokens + per_step - 1) / per_step;
    return 0;
}

static ss_status setup_fresh(trainer *t, ss_error *err) {
    t->total_steps = plan_steps(&t->o);
    if (t->total_steps <= 0 && t->o.time_limit <= 0)
        return ss_fail(err, SS_ERR_ARG, "give the run length with --steps, --tokens or --time");
    if (t->o.warmup < 0) {
        int64_t w = t->total_steps > 0 ? t->total_steps / 20 : 100;
        t->o.warmup = w > 1000 ? 1000 : w;
    }
    if (t->o.lr_min < 0) t->o.lr_min = t->o.lr / 10;
    t->o.model.vocab_size = (int)t->train.vocab_size;
    if (t->o.seq > t->o.model.max_seq)
        return ss_fail(err, SS_ERR_ARG, "--seq %d exceeds the model's max_seq %d", t->o.seq, t->o.model.max_seq);
    ss_status st = ss_model_create(&t->model, &t->o.model, err);
    if (st) return st;
    ss_model_init_weights(t->model, t->o.seed);
    if ((st = ss_adamw_init(&t->opt, ss_model_num_params(t->model), err))) return st;
    ss_rng_seed(&t->data_rng, t->o.seed ^ 0x5DEECE66Dull);
    t->state.total_steps = t->total_steps;
    return SS_OK;
}

static ss_status setup_resume(trainer *t, ss_error *err) {
    char *opts_json = NULL;
    ss_error warn = {0};
    ss_status st = ss_checkpoint_load(t->o.out_dir, &t->model, &t->opt, &t->state, &opts_json,
                                      &t->keep_previous, &warn);
    if (st) {
        *err = warn;
        return ss_error_prefix(err, "cannot resume: ");
    }
    if (warn.msg[0]) note(t, "warning: %s", warn.msg);
    int64_t total = 0;
    if (!opts_json) st = ss_fail(err, SS_ERR_FORMAT, "%s/trainer_state.json: no 'options'", t->o.out_dir);
    else st = ss_train_opts_from_json(&t->o, &total, opts_json, t->o.out_dir, err);
    free(opts_json);
    if (st) return st;
    t->total_steps = total;
    t->o.model = *ss_model_config_of(t->model);
    if ((uint32_t)t->o.model.vocab_size != t->train.vocab_size)
        return ss_fail(err, SS_ERR_FORMAT, "%s: the data's vocabulary (%u) does not match the checkpoint's (%d)",
                       t->o.data_dir, t->train.vocab_size, t->o.model.vocab_size);
    if ((st = ss_rng_state_set(&t->data_rng, t->state.data_rng, err))) return st;
    note(t, "resumed %s at step %" PRId64, t->o.out_dir, t->state.step);
    return SS_OK;
}

/* lr for the coming step. With --time the cosine follows the elapsed share
 * of the time budget instead of the step count. */
static double current_lr(const trainer *t) {
    const ss_train_opts *o = &t->o;
    if (t->total_steps > 0) return ss_lr_schedule(t->state.step, t->total_steps, o->warmup, o->lr, o->lr_min);
    if (t->state.step < o->warmup) return ss_lr_schedule(t->state.step, 1, o->warmup, o->lr, o->lr_min);
    const int64_t res = 1000000;
    int64_t pos = (int64_t)(t->state.elapsed / o->time_limit * (double)res);
    return ss_lr_schedule(pos < res ? pos : res, res, 0, o->lr, o->lr_min);
}

static uint64_t step_seed(const trainer *t, int micro) {
    return (t->o.seed + 0x9E3779B97F4A7C15ull * (uint64_t)(t->state.step + 1)) ^ ((uint64_t)micro << 48);
}

/* One optimizer step over grad_accum micro-batches. Returns the mean loss and
 * the gradient norm (before clipping); a non-finite loss or norm skips the
 * update and counts as a bad step. */
static ss_status train_step(trainer *t, double *loss, double *gnorm, int *skipped, ss_error *err) {
    const ss_train_opts *o = &t->o;
    int B = o->batch, T = o->seq, K = o->grad_accum;
    ss_model_zero_grads(t->model);
    *loss = 0;
    for (int k = 0; k < K; k++) {
        ss_clm_sample(&t->train, &t->data_rng, B, T, t->tokens, t->targets);
        ss_batch b = {t->tokens, t->targets, NULL, B, T};
        ss_loss_stats ls;
        float scale = 1.0f / ((float)B * (float)T * (float)K);
        ss_status st = ss_model_forward_backward(t->model, &b, scale, step_seed(t, k), &ls, err);
        if (st) return st;
        *loss += ls.loss_sum / (double)ls.n_targets / K;
    }
    float *g = ss_model_grads(t->model);
    size_t n = ss_model_num_params(t->model);
    *gnorm = ss_clip_grad_norm(g, n, o->clip);
    *skipped = !isfinite(*loss) || !isfinite(*gnorm);
    if (*skipped) {
        t->state.bad_steps++;
        if (t->state.bad_steps >= o->max_bad_steps)
            return ss_fail(err, SS_ERR_RANGE, "stopping: the loss or gradient was not finite for %" PRId64
                           " consecutive steps (last at step %" PRId64 "); lower --lr or check the data. "
                           "The last checkpoint in %s holds finite weights.", t->state.bad_steps,
                           t->state.step + 1, o->out_dir);
    } else {
        t->state.bad_steps = 0;
        ss_adamw_hparams h = {(float)current_lr(t), (float)o->beta1, (float)o->beta2, (float)o->eps,
                              (float)o->weight_decay};
        ss_adamw_step(&t->opt, t->model, ss_model_params(t->model), g, &h);
    }
    t->state.step++;
    t->state.tokens_seen += (int64_t)B * T * K;
    return SS_OK;
}

static ss_status evaluate(trainer *t, ss_error *err) {
    ss_eval_result r;
    ss_status st = ss_evaluate_clm(t->model, &t->val, t->o.batch, t->o.seq, t->o.eval_tokens, &r, err);
    if (st) return st;
    ss_metric_field f[] = {SS_MF_I("step", t->state.step), SS_MF_D("val_loss", r.loss),
                           SS_MF_D("val_bpb", r.bits_per_byte), SS_MF_D("val_ppl", r.perplexity),
                           SS_MF_I("val_tokens", r.tokens)};
    if ((st = ss_metrics_write(t->metrics, f, 5, err))) return st;
    ss_train_progress p = {.step = t->state.step, .total_steps = t->total_steps, .is_eval = 1,
                           .val_loss = r.loss, .val_bpb = r.bits_per_byte, .elapsed = t->state.elapsed};
    if (t->fn) t->fn(t->ctx, &p);
    return SS_OK;
}

static ss_status save(trainer *t, ss_error *err) {
    ss_rng_state_get(&t->data_rng, t->state.data_rng);
    ss_status st = ss_checkpoint_save_ex(t->o.out_dir, t->model, &t->opt, &t->state, t->opts_json,
                                         t->keep_previous, err);
    if (!st) t->keep_previous = 0;
    if (!st) note(t, "saved checkpoint at step %" PRId64 " to %s", t->state.step, t->o.out_dir);
    return st;
}

static int finished(const trainer *t) {
    if (t->total_steps > 0) return t->state.step >= t->total_steps;
    return t->state.elapsed >= t->o.time_limit;
}

static void report_step(trainer *t, double loss, double gnorm, double lr, int skipped, double dt_tokens,
                        double dt) {
    double tps = dt > 0 ? dt_tokens / dt : 0;
    double mfu = t->peak_gflops > 0 ? t->flops_per_token * tps / (t->peak_gflops * 1e9) : 0;
    ss_train_progress p = {.step = t->state.step, .total_steps = t->total_steps, .loss = loss, .lr = lr,
                           .grad_norm = gnorm, .tokens_per_s = tps, .mfu = mfu, .elapsed = t->state.elapsed,
                           .skipped = skipped};
    if (t->total_steps > 0 && t->state.step > 0)
        p.eta = t->state.elapsed / (double)t->state.step * (double)(t->total_steps - t->state.step);
    else if (t->o.time_limit > 0)
        p.eta = t->o.time_limit - t->state.elapsed;
    if (skipped) p.message = "warning: non-finite loss or gradient; step skipped";
    if (t->fn) t->fn(t->ctx, &p);
    ss_metric_field f[] = {SS_MF_I("step", t->state.step), SS_MF_D("loss", loss), SS_MF_D("lr", lr),
                           SS_MF_D("grad_norm", gnorm), SS_MF_D("tokens_per_s", tps), SS_MF_D("mfu", mfu),
                           SS_MF_D("elapsed_s", t->state.elapsed)};
    ss_error ignore;
    ss_metrics_write(t->metrics, f, 7, &ignore);
}

static ss_status loop(trainer *t, ss_error *err) {
    const ss_train_opts *o = &t->o;
    double window_t0 = omp_get_wtime(), window_tokens = 0;
    ss_status st = SS_OK;
    while (!st && !finished(t) && !(o->stop && *o->stop)) {
        double lr = current_lr(t), loss, gnorm, t0 = omp_get_wtime();
        int skipped;
        if ((st = train_step(t, &loss, &gnorm, &skipped, err))) break;
        double now = omp_get_wtime();
        t->state.elapsed += now - t0;
        window_tokens += (double)o->batch * o->seq * o->grad_accum;
        int last = finished(t);
        if (t->state.step % o->log_every == 0 || last || skipped) {
            report_step(t, loss, gnorm, lr, skipped, window_tokens, now - window_t0);
            window_t0 = omp_get_wtime();
            window_tokens = 0;
        }
        if (o->eval_every > 0 && (t->state.step % o->eval_every == 0 || last)) st = evaluate(t, err);
        if (!st && (last || (o->save_every > 0 && t->state.step % o->save_every == 0))) st = save(t, err);
        if (!st && (t->state.step % o->log_every == 0 || last)) window_t0 = omp_get_wtime();
    }
    if (!st && o->stop && *o->stop) {
        note(t, "interrupted at step %" PRId64 ": saving", t->state.step);
        st = save(t, err);
    }
    return st;
}

static void describe(trainer *t) {
    const ss_model_config *c = ss_model_config_of(t->model);
    size_t np = ss_model_num_params(t->model);
    double act = (double)ss_model_activation_bytes(c, t->o.batch, t->o.seq);
    double need = (double)np * 4 * 4 + act + (double)(t->train.n + t->val.n) * 4;
    note(t, "%s %s: %d layers, d_model %d, %d heads, d_ff %d, vocab %d, %.2fM parameters",
         ss_objective_name(t->o.objective), ss_model_kind_name(c->kind), c->n_layer, c->d_model, c->n_head,
         c->d_ff, c->vocab_size, (double)np / 1e6);
    note(t, "data: %zu train / %zu val tokens; batch %d x seq %d x accum %d = %d tokens/step",
         t->train.n, t->val.n, t->o.batch, t->o.seq, t->o.grad_accum, t->o.batch * t->o.seq * t->o.grad_accum);
    note(t, "memory need: %.1f MB (params+grads+AdamW %.1f, activations %.1f, token data %.1f)", need / 1e6,
         (double)np * 16 / 1e6, act / 1e6, (double)(t->train.n + t->val.n) * 4 / 1e6);
    note(t, "sgemm peak here: %.1f GFLOP/s; model: %.1f MFLOP per token (6N + 12LTC)", t->peak_gflops, t->flops_per_token / 1e6);
}

static void cleanup(trainer *t) {
    ss_model_free(t->model);
    ss_adamw_free(&t->opt);
    ss_token_split_free(&t->train);
    ss_token_split_free(&t->val);
    free(t->tokens);
    free(t->targets);
    free(t->opts_json);
    ss_error ignore;
    ss_metrics_close(t->metrics, &ignore);
}

ss_status ss_pretrain(const ss_train_opts *opts, ss_train_progress_fn fn, void *ctx, ss_error *err) {
    trainer t = {.o = *opts, .fn = fn, .ctx = ctx};
    if (opts->objective != SS_OBJ_CLM)
        return ss_fail(err, SS_ERR_ARG, "objective '%s' is not available yet (this build trains clm)",
                       ss_objective_name(opts->objective));
    ss_status st = ss_mkdir_p(opts->out_dir, err);
    if (!st) st = load_data(&t, err);
    if (!st) st = opts->resume ? setup_resume(&t, err) : setup_fresh(&t, err);
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", opts->out_dir);
    if (!st && opts->resume) st = ss_metrics_truncate_after_step(mpath, t.state.step, err);
    if (!st) st = ss_metrics_open(&t.metrics, mpath, opts->resume, err);
    if (!st) st = copy_tokenizer(&t, err);
    if (!st) {
        t.opts_json = ss_train_opts_to_json(&t.o, t.total_steps);
        t.tokens = malloc((size_t)t.o.batch * t.o.seq * sizeof(int32_t));
        t.targets = malloc((size_t)t.o.batch * t.o.seq * sizeof(int32_t));
        if (!t.opts_json || !t.tokens || !t.targets) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        t.peak_gflops = ss_sgemm_peak_gflops();
        t.flops_per_token = ss_model_flops_per_token(ss_model_config_of(t.model), t.o.seq);
        describe(&t);
        st = loop(&t, err);
    }
    cleanup(&t);
    return st;
}
