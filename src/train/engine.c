/* The step engine: one optimizer step at a time over K micro-batches, with
 * the schedule, clipping, AdamW, the non-finite policy and the cadence of
 * logs, evaluations and checkpoints; the objective plugs in as hooks
 * (selfsup/engine.h). */
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>

#include "selfsup/engine.h"

/* Cosine by the elapsed share of a time budget: by default a linear warmup
 * over the first SS_WARMUP_SHARE of the budget (ending sooner if
 * SS_WARMUP_MAX steps come first), then the cosine over the rest, so warmup
 * is 5% of the steps however fast they run; with an explicit warmup N, N
 * steps of warmup, then the cosine by the elapsed share. The elapsed time is
 * in the checkpoint, so a resumed run continues the schedule. */
static double time_lr(const ss_engine *e) {
    const ss_engine_config *c = &e->c;
    int64_t step = e->st->step;
    double share = e->st->elapsed / c->sched_time, start = 0;
    if (c->warmup >= 0 && step < c->warmup) return ss_lr_schedule(step, 1, c->warmup, c->lr, c->lr_min);
    if (c->warmup < 0) {
        double w = fmax((double)(step + 1) / SS_WARMUP_MAX, share / SS_WARMUP_SHARE);
        if (w < 1) return c->lr * w;
        start = SS_WARMUP_SHARE;
    }
    const int64_t res = 1000000;
    double p = share > start ? (share - start) / (1 - start) : 0;
    int64_t pos = (int64_t)(p * (double)res);
    return ss_lr_schedule(pos < res ? pos : res, res, 0, c->lr, c->lr_min);
}

double ss_engine_lr(const ss_engine *e) {
    const ss_engine_config *c = &e->c;
    if (c->schedule == SS_SCHED_LINEAR) return ss_lr_linear(e->st->step, c->sched_steps, c->warmup, c->lr);
    if (c->sched_steps > 0) return ss_lr_schedule(e->st->step, c->sched_steps, c->warmup, c->lr, c->lr_min);
    return time_lr(e);
}

int ss_engine_finished(const ss_engine *e) {
    if (e->c.total_steps > 0) return e->st->step >= e->c.total_steps;
    return e->st->elapsed >= e->c.time_limit;
}

/* The joint global gradient norm of every trained model (before clipping). */
static double grad_norm_all(const ss_engine *e) {
    ss_model *ms[2] = {e->tm->model, e->tm->gen};
    double sq = 0;
    for (int i = 0; i < 2; i++)
        if (ms[i]) {
            size_t first = i == 0 ? e->c.first : 0;
            double n = ss_grad_norm(ss_model_grads(ms[i]) + first, ss_model_num_params(ms[i]) - first);
            sq += n * n;
        }
    return sqrt(sq);
}

/* AdamW on every trained model, with clipping by the joint norm (torch
 * semantics) folded into the update as a factor on the gradients. */
static void adamw_all(ss_engine *e, double lr, double norm) {
    const ss_engine_config *c = &e->c;
    ss_train_models *tm = e->tm;
    ss_adamw_hparams h = {(float)lr, (float)c->beta1, (float)c->beta2, (float)c->eps, (float)c->weight_decay,
                          (float)c->layer_decay};
    float gs = ss_clip_factor(norm, c->clip);
    ss_adamw_step_scaled(&tm->opt, tm->model, ss_model_params(tm->model), ss_model_grads(tm->model), &h, c->first, gs);
    if (tm->gen) ss_adamw_step_scaled(&tm->gen_opt, tm->gen, ss_model_params(tm->gen), ss_model_grads(tm->gen), &h, 0, gs);
}

/* One optimizer step over the step's micro-batches; a non-finite loss or
 * norm skips the update and counts as a bad step. */
static ss_status step(ss_engine *e, ss_engine_step *s, ss_error *err) {
    int K = e->h.micro_count ? e->h.micro_count(e->h.ctx) : e->c.grad_accum;
    ss_model_zero_grads(e->tm->model);
    if (e->tm->gen) ss_model_zero_grads(e->tm->gen);
    for (int k = 0; k < K; k++) {
        ss_status st = e->h.micro(e->h.ctx, k, 1.0f / (float)K, &s->loss, &s->tokens, err);
        if (st) return st;
    }
    s->grad_norm = grad_norm_all(e);
    s->skipped = !isfinite(s->loss) || !isfinite(s->grad_norm);
    ss_train_state *st = e->st;
    if (s->skipped) {
        if (++st->bad_steps >= e->c.max_bad_steps)
            return ss_fail(err, SS_ERR_RANGE, "stopping: the loss or gradient was not finite for %" PRId64
                           " consecutive steps (last at step %" PRId64 "); lower --lr or check the data.%s%s",
                           st->bad_steps, st->step + 1, e->c.fail_note ? " " : "", e->c.fail_note ? e->c.fail_note : "");
    } else {
        st->bad_steps = 0;
        adamw_all(e, s->lr, s->grad_norm);
    }
    st->step++;
    st->tokens_seen += s->tokens;
    return SS_OK;
}

static int stopped(const ss_engine *e) { return e->c.stop && *e->c.stop; }

static int every(int64_t step, int64_t n) { return n > 0 && step % n == 0; }

ss_status ss_engine_run(ss_engine *e, ss_error *err) {
    ss_status st = SS_OK;
    while (!st && !ss_engine_finished(e) && !stopped(e) && !(e->h.done && e->h.done(e->h.ctx))) {
        ss_engine_step s = {.lr = ss_engine_lr(e)};
        double t0 = omp_get_wtime();
        if ((st = step(e, &s, err))) break;
        s.seconds = omp_get_wtime() - t0;
        e->st->elapsed += s.seconds;
        int64_t n = e->st->step;
        s.last = ss_engine_finished(e);
        s.log_due = every(n, e->c.log_every) || s.last || s.skipped;
        s.eval_due = e->c.eval_every > 0 && (every(n, e->c.eval_every) || s.last);
        s.save_due = every(n, e->c.save_every);
        st = e->h.after_step(e->h.ctx, &s, err);
    }
    if (!st && stopped(e) && e->h.on_stop) st = e->h.on_stop(e->h.ctx, err);
    return st;
}

ss_status ss_engine_precision(ss_precision want, int resumed, ss_train_state *st, char *msg, size_t cap,
                              ss_error *err) {
    ss_gemm_backend saved;
    ss_error ignore;
    if (resumed && st->gemm[0] && ss_gemm_backend_parse(st->gemm, &saved, &ignore) == SS_OK &&
        ss_gemm_available(saved)) {
        ss_status s = ss_gemm_use(saved, err);
        if (!s) snprintf(msg, cap, "precision: matrix products through %s, as the run computed them before", st->gemm);
        return s;
    }
    if (resumed && !st->gemm[0]) { /* saved before the backend was recorded: it computed with OpenBLAS */
        snprintf(st->gemm, sizeof st->gemm, "%s", ss_gemm_backend_name(SS_GEMM_OPENBLAS));
        snprintf(msg, cap, "precision: fp32 matrix products through %s, as the run (saved before selfsup recorded "
                 "its GEMM backend) computed them", st->gemm);
        return ss_gemm_use(SS_GEMM_OPENBLAS, err);
    }
    ss_gemm_choice c;
    ss_status s = ss_gemm_select(want, &c, err);
    if (s) return s;
    int n = snprintf(msg, cap, "precision: %s matrix products through %s (%s%s); GEMM peaks here (2048x1024x256):",
                     ss_precision_name(c.precision), ss_gemm_backend_name(c.backend), c.reason,
                     resumed && st->gemm[0] ? "; the run's backend is not available here: numbers will differ"
                                            : "");
    for (int be = 0; be < SS_GEMM_N_BACKENDS && n > 0 && (size_t)n < cap; be++)
        if (c.peak[be] > 0)
            n += snprintf(msg + n, cap - (size_t)n, " %s %.0f", ss_gemm_backend_name((ss_gemm_backend)be), c.peak[be]);
    if (n > 0 && (size_t)n < cap) snprintf(msg + n, cap - (size_t)n, " GFLOP/s; oneDNN ISA %s", c.isa);
    snprintf(st->gemm, sizeof st->gemm, "%s", ss_gemm_backend_name(c.backend));
    return SS_OK;
}
