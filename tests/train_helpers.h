/* Helpers shared by the training tests: interrupt a run after a given step
 * (as Ctrl-C would) and resume it; progress of long runs as TAP comments. */
#ifndef SELFSUP_TRAIN_HELPERS_H
#define SELFSUP_TRAIN_HELPERS_H

#include <stdio.h>

#include "selfsup/train.h"

typedef struct {
    int64_t stop_at;
    volatile int *stop;
} stopper;

/* Progress callback: raise the stop flag once a training step >= stop_at is reported. */
static inline void stop_cb(void *ctx, const ss_train_progress *p) {
    stopper *s = ctx;
    if (s->stop_at > 0 && !p->message && !p->is_eval && p->step >= s->stop_at) *s->stop = 1;
}

/* Progress of a long test run as TAP comments: a line every ~10 s of
 * training and one per evaluation, so a case that trains for minutes shows
 * what it is doing (tests/run.sh streams them). */
typedef struct {
    const char *what;
    double last;
} test_progress;

static inline void test_progress_cb(void *ctx, const ss_train_progress *p) {
    test_progress *t = ctx;
    if (p->message) return;
    if (p->is_eval) {
        printf("# %s: step %lld: val loss %.4f\n", t->what, (long long)p->step, p->val_loss);
    } else {
        if (p->elapsed - t->last < 10 && p->step != p->total_steps) return;
        t->last = p->elapsed;
        printf("# %s: step %lld/%lld, loss %.4f (%.0f s of training)\n", t->what, (long long)p->step,
               (long long)p->total_steps, p->loss, p->elapsed);
    }
    fflush(stdout);
}

/* Run o, stopping it after step stop_at (it saves there), then resume it to the end. */
static inline ss_status run_interrupted(ss_train_opts o, int64_t stop_at, int64_t eval_every, int64_t save_every,
                                        ss_error *err) {
    volatile int stop = 0;
    stopper s = {stop_at, &stop};
    o.stop = &stop;
    ss_status st = ss_pretrain(&o, stop_cb, &s, err);
    if (st) return st;
    ss_train_opts r;
    ss_train_opts_defaults(&r);
    r.data_dir = o.data_dir;
    r.out_dir = o.out_dir;
    r.resume = 1;
    r.log_every = o.log_every;
    r.eval_every = eval_every;
    r.save_every = save_every;
    return ss_pretrain(&r, NULL, NULL, err);
}

#endif
