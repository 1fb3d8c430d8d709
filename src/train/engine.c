/* The step engine: one optimizer step at a time over K micro-batches, with
 * the schedule, clipping, AdamW, the non-finite policy and the cadence of
 * logs, evaluations and checkpoints; the objective plugs in as hooks
 * (selfsup/engine.h). */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/dist.h"
#include "selfsup/engine.h"

/* The schedule by the elapsed share of a time budget: by default a linear
 * warmup over the first SS_WARMUP_SHARE of the budget (ending sooner if
 * SS_WARMUP_MAX steps come first; the linear schedule: SS_ONE_CYCLE_PEAK of
 * it, uncapped), then the cosine (or the straight line) to lr_min over the
 * rest, so warmup is a share of the steps however fast they run; with an
 * explicit warmup N, N steps of warmup, then the decay by the elapsed share.
 * The elapsed time is in the checkpoint, so a resumed run continues the
 * schedule. */
static double time_lr(const ss_engine *e) {
    const ss_engine_config *c = &e->c;
    int linear = c->schedule == SS_SCHED_LINEAR;
    int64_t step = e->st->step;
    double share = e->st->elapsed / c->sched_time, start = 0;
    if (c->warmup >= 0 && step < c->warmup) return ss_lr_schedule(step, 1, c->warmup, c->lr, c->lr_min);
    if (c->warmup < 0) {
        double peak = linear ? SS_ONE_CYCLE_PEAK : SS_WARMUP_SHARE;
        double w = linear ? share / peak : fmax((double)(step + 1) / SS_WARMUP_MAX, share / peak);
        if (w < 1) return c->lr * w;
        start = peak;
    }
    const int64_t res = 1000000;
    double p = share > start ? (share - start) / (1 - start) : 0;
    int64_t pos = (int64_t)(p * (double)res);
    pos = pos < res ? pos : res;
    return linear ? ss_lr_linear(pos, res, 0, c->lr, c->lr_min) : ss_lr_schedule(pos, res, 0, c->lr, c->lr_min);
}

double ss_engine_lr(const ss_engine *e) {
    const ss_engine_config *c = &e->c;
    if (c->sched_steps <= 0 && c->sched_time > 0) return time_lr(e);
    if (c->schedule == SS_SCHED_LINEAR) return ss_lr_linear(e->st->step, c->sched_steps, c->warmup, c->lr, c->lr_min);
    return ss_lr_schedule(e->st->step, c->sched_steps, c->warmup, c->lr, c->lr_min);
}

int ss_batch_ramp_micro(double share, double ramp, int K) {
    if (ramp <= 0 || K <= 1 || share >= ramp) return K;
    int k = 1 + (int)floor((double)(K - 1) * fmax(share, 0) / ramp);
    return k < K ? k : K;
}

int ss_engine_micro_count(const ss_engine *e) {
    const ss_engine_config *c = &e->c;
    if (c->batch_ramp <= 0) return c->grad_accum;
    double share = c->sched_steps > 0 ? (double)e->st->step / (double)c->sched_steps
                   : c->sched_time > 0 ? e->st->elapsed / c->sched_time
                                       : 1;
    return ss_batch_ramp_micro(share, c->batch_ramp, c->grad_accum);
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
static void adamw_all(ss_engine *e, double lr, double norm, int min_depth) {
    const ss_engine_config *c = &e->c;
    ss_train_models *tm = e->tm;
    ss_adamw_hparams h = {(float)lr, (float)c->beta1, (float)c->beta2, (float)c->eps, (float)c->weight_decay,
                          (float)c->layer_decay, min_depth};
    float gs = ss_clip_factor(norm, c->clip);
    ss_adamw_step_scaled(&tm->opt, tm->model, ss_model_params(tm->model), ss_model_grads(tm->model), &h, c->first, gs);
    h.min_depth = 0;
    if (tm->gen) ss_adamw_step_scaled(&tm->gen_opt, tm->gen, ss_model_params(tm->gen), ss_model_grads(tm->gen), &h, 0, gs);
}

/* Gradual unfreezing: the gradients of the model's tensors below min_depth
 * are zero, as if they had none. */
static void zero_frozen_grads(ss_engine *e, int min_depth) {
    const ss_model *m = e->tm->model;
    float *g = ss_model_grads(e->tm->model);
    for (size_t i = 0; i < ss_model_num_tensors(m); i++) {
        const ss_param_info *t = ss_model_tensor(m, i);
        if (t->depth < min_depth && t->offset >= e->c.first) memset(g + t->offset, 0, t->numel * sizeof(float));
    }
}

/* The gradient segments the engine trains: the model's from `first` on,
 * and the generator's. */
typedef struct {
    float *g;
    size_t n;
} segment;

static int segments(const ss_engine *e, segment seg[2]) {
    int n = 0;
    size_t np = ss_model_num_params(e->tm->model);
    seg[n++] = (segment){ss_model_grads(e->tm->model) + e->c.first, np - e->c.first};
    if (e->tm->gen) seg[n++] = (segment){ss_model_grads(e->tm->gen), ss_model_num_params(e->tm->gen)};
    return n;
}

static void zero_grads(ss_engine *e) {
    ss_model_zero_grads(e->tm->model);
    if (e->tm->gen) ss_model_zero_grads(e->tm->gen);
}

/* Several parts on this rank: part jj's gradients live in acc[jj] between
 * its micro-batches; `store` copies the model's gradients there, `load` back. */
static void move_grads(ss_engine *e, float *buf, int store) {
    segment seg[2];
    int ns = segments(e, seg);
    for (int i = 0; i < ns; i++) {
        if (store) memcpy(buf, seg[i].g, seg[i].n * sizeof(float));
        else memcpy(seg[i].g, buf, seg[i].n * sizeof(float));
        buf += seg[i].n;
    }
}

/* The step's gradients summed over the ranks (the fixed tree order). */
static ss_status sum_over_ranks(ss_engine *e, ss_error *err) {
    segment seg[2];
    int ns = segments(e, seg);
    ss_status st = SS_OK;
    for (int i = 0; !st && i < ns; i++) st = ss_dist_sum_f32(seg[i].g, seg[i].n, err);
    return st;
}

/* ---- gradient buckets overlapped with the backward pass ----------------------------
 * --comm-overlap, several ranks, one part per rank, communication thread available
 * (ss_dist_async): when the backward of the step's last micro-batch has
 * computed block l's gradients (ss_model_set_block_hook), they are copied
 * into bucket l (the block's 12 tensors are slices of per-layer arrays, not
 * one range) and the communication thread sums the bucket across the ranks
 * while the main thread computes the blocks below. After the backward,
 * the buckets are copied back and the rest of the model's trained floats
 * (embeddings, final LayerNorm, head) and a generator's are summed as
 * before. Element by element these are the sums of sum_over_ranks, so the
 * bits are the same; the price is one copy of the blocks' gradients. */
typedef struct {
    size_t off, n;
} grad_range;

struct ss_overlap {
    int n_layer, per;          /* blocks; tensors per block */
    grad_range *slices;        /* [n_layer][per]: block l's tensors in the gradient array */
    float **bucket;            /* [n_layer] */
    size_t *bucket_n;          /* [n_layer] floats */
    grad_range rest[2];        /* the model's trained floats outside the blocks */
    int n_rest;
    int next;                  /* the block the backward reports next; -1: all started */
    ss_status st;              /* a start that failed (reported after the backward) */
    ss_error err;
};

static void overlap_free(struct ss_overlap *o) {
    if (!o) return;
    for (int l = 0; o->bucket && l < o->n_layer; l++) free(o->bucket[l]);
    free(o->bucket);
    free(o->bucket_n);
    free(o->slices);
    free(o);
}

/* The blocks' tensors must tile one range [lo, hi) of the trained floats
 * (params.c: the per-layer arrays sit together); otherwise no overlap. */
static ss_status overlap_create(ss_engine *e, ss_error *err) {
    ss_model *m = e->tm->model;
    int L = ss_model_config_of(m)->n_layer;
    size_t nt = ss_model_num_tensors(m), np = ss_model_num_params(m), lo = SIZE_MAX, hi = 0, in_blocks = 0;
    int per = 0;
    for (size_t i = 0; i < nt; i++) {
        const ss_param_info *t = ss_model_tensor(m, i);
        if (t->depth < 1 || t->depth > L) continue;
        if (t->depth == 1) per++;
        lo = t->offset < lo ? t->offset : lo;
        hi = t->offset + t->numel > hi ? t->offset + t->numel : hi;
        in_blocks += t->numel;
    }
    if (L < 1 || per < 1 || in_blocks != hi - lo || lo < e->c.first) return SS_OK;
    struct ss_overlap *o = calloc(1, sizeof *o);
    if (!o) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    o->n_layer = L, o->per = per;
    o->slices = calloc((size_t)L * per, sizeof *o->slices);
    o->bucket = calloc((size_t)L, sizeof *o->bucket);
    o->bucket_n = calloc((size_t)L, sizeof *o->bucket_n);
    int *fill = calloc((size_t)L, sizeof *fill);
    ss_status st = o->slices && o->bucket && o->bucket_n && fill ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < nt; i++) {
        const ss_param_info *t = ss_model_tensor(m, i);
        if (t->depth < 1 || t->depth > L) continue;
        int l = t->depth - 1;
        if (fill[l] == per) { /* blocks of unequal tensor counts: not a layout this code knows */
            overlap_free(o), free(fill);
            return SS_OK;
        }
        o->slices[(size_t)l * per + fill[l]++] = (grad_range){t->offset, t->numel};
        o->bucket_n[l] += t->numel;
    }
    for (int l = 0; !st && l < L; l++)
        if (!(o->bucket[l] = malloc(o->bucket_n[l] * sizeof(float))))
            st = ss_fail(err, SS_ERR_NOMEM, "out of memory for the gradient buckets (%.0f MB)",
                         (double)in_blocks * 4 / 1e6);
    free(fill);
    if (st) {
        overlap_free(o);
        return st;
    }
    if (lo > e->c.first) o->rest[o->n_rest++] = (grad_range){e->c.first, lo - e->c.first};
    if (hi < np) o->rest[o->n_rest++] = (grad_range){hi, np - hi};
    e->ov = o;
    return SS_OK;
}

/* Copy block l's gradients into its bucket (pack) or back (unpack). */
static void bucket_copy(ss_engine *e, int l, int pack) {
    struct ss_overlap *o = e->ov;
    float *g = ss_model_grads(e->tm->model), *b = o->bucket[l];
    for (int i = 0; i < o->per; i++) {
        const grad_range *r = &o->slices[(size_t)l * o->per + i];
        if (pack) memcpy(b, g + r->off, r->n * sizeof(float));
        else memcpy(g + r->off, b, r->n * sizeof(float));
        b += r->n;
    }
}

static void bucket_start(ss_engine *e, int l) {
    struct ss_overlap *o = e->ov;
    bucket_copy(e, l, 1);
    ss_status st = ss_dist_sum_f32_start(o->bucket[l], o->bucket_n[l], &o->err);
    if (st && !o->st) o->st = st;
}

/* The model's hook: block l's gradients are complete. Blocks come from the
 * top down, once each; anything else would mean a gradient still changing
 * after its sum began, so it stops the step. */
static void on_block_grads(void *ctx, int l) {
    ss_engine *e = ctx;
    struct ss_overlap *o = e->ov;
    if (o->st) return;
    if (l != o->next) {
        o->st = ss_fail(&o->err, SS_ERR_ARG, "internal: block %d's gradients were reported after block %d's "
                        "(the backward must visit each block once, from the top): run without --comm-overlap", l,
                        o->next + 1);
        return;
    }
    bucket_start(e, l);
    o->next--;
}

/* After the backward: blocks it did not report (a part without a backward
 * pass) start now, in the same order as on every rank; then wait, copy the
 * sums back, and sum the rest. */
static ss_status overlap_finish(ss_engine *e, ss_error *err) {
    struct ss_overlap *o = e->ov;
    while (!o->st && o->next >= 0) bucket_start(e, o->next--);
    ss_status st = ss_dist_sum_wait(err);
    if (!st && o->st) {
        *err = o->err;
        st = o->st;
    }
    if (st) return st;
    for (int l = 0; l < o->n_layer; l++) bucket_copy(e, l, 0);
    float *g = ss_model_grads(e->tm->model);
    for (int i = 0; !st && i < o->n_rest; i++) st = ss_dist_sum_f32(g + o->rest[i].off, o->rest[i].n, err);
    if (!st && e->tm->gen) st = ss_dist_sum_f32(ss_model_grads(e->tm->gen), ss_model_num_params(e->tm->gen), err);
    return st;
}

/* One optimizer step over the step's micro-batches: this rank's parts of
 * each, each part's gradients accumulated on their own, then summed over
 * the parts (on the rank, then across the ranks) in the tree order; the
 * statistics likewise (slots, selfsup/dist.h). A non-finite loss or norm
 * skips the update and counts as a bad step; every rank decides the same. */
static ss_status step(ss_engine *e, ss_engine_step *s, double t0, ss_error *err) {
    int K = e->h.micro_count ? e->h.micro_count(e->h.ctx) : ss_engine_micro_count(e);
    s->micro = K;
    int G = e->c.shards, L = e->part_hi - e->part_lo, F = e->h.n_stats, R = ss_dist_size();
    ss_status st = SS_OK;
    zero_grads(e);
    memset(e->slots, 0, ((size_t)G * F + 2) * sizeof(double));
    if (e->ov) {
        e->ov->next = e->ov->n_layer - 1;
        e->ov->st = SS_OK;
    }
    for (int k = 0; !st && k < K; k++) {
        if (e->h.prepare) st = e->h.prepare(e->h.ctx, k, err);
        for (int jj = 0; !st && jj < L; jj++) {
            int j = e->part_lo + jj;
            if (L > 1 && k > 0) move_grads(e, e->acc[jj], 0);
            else if (L > 1 && jj > 0) zero_grads(e);
            if (e->ov && k == K - 1) ss_model_set_block_hook(e->tm->model, on_block_grads, e);
            st = e->h.micro(e->h.ctx, k, j, G, 1.0f / (float)K, e->slots + (size_t)j * F, err);
            ss_model_set_block_hook(e->tm->model, NULL, NULL);
            if (L > 1) move_grads(e, e->acc[jj], 1);
        }
    }
    if (st) {
        ss_error ignore;
        if (e->ov) ss_dist_sum_wait(&ignore); /* the thread must be done with the buckets */
        return st;
    }
    if (L > 1) {
        ss_tree_sum_f32(e->acc, L, e->n_acc);
        move_grads(e, e->acc[0], 0);
    }
    if (R > 1) {
        double c0 = omp_get_wtime();
        if ((st = e->ov ? overlap_finish(e, err) : sum_over_ranks(e, err))) return st;
        double *extra = e->slots + (size_t)G * F;
        extra[0] = ss_dist_rank() == 0 ? omp_get_wtime() - t0 : 0; /* every rank keeps rank 0's clock */
        extra[1] = e->c.stop && *e->c.stop;
        if ((st = ss_dist_sum_f64(e->slots, (size_t)G * F + 2, err))) return st;
        s->comm_seconds = omp_get_wtime() - c0;
        s->seconds = extra[0];
        e->stop_agreed = extra[1] > 0;
        if (e->stop_agreed && e->c.stop) *e->c.stop = 1; /* the caller sees it on every rank */
    }
    ss_tree_sum_parts(e->slots, G, F, e->stats);
    s->stats = e->stats;
    s->loss = e->stats[0];
    s->tokens = (int64_t)e->stats[1];
    int min_depth = e->h.frozen_below ? e->h.frozen_below(e->h.ctx) : 0;
    if (min_depth > 0) zero_frozen_grads(e, min_depth);
    s->grad_norm = grad_norm_all(e);
    s->skipped = !isfinite(s->loss) || !isfinite(s->grad_norm);
    ss_train_state *ts = e->st;
    if (s->skipped) {
        if (++ts->bad_steps >= e->c.max_bad_steps)
            return ss_fail(err, SS_ERR_RANGE, "stopping: the loss or gradient was not finite for %" PRId64
                           " consecutive steps (last at step %" PRId64 "); lower --lr or check the data.%s%s",
                           ts->bad_steps, ts->step + 1, e->c.fail_note ? " " : "", e->c.fail_note ? e->c.fail_note : "");
    } else {
        ts->bad_steps = 0;
        adamw_all(e, s->lr, s->grad_norm, min_depth);
    }
    ts->step++;
    ts->tokens_seen += s->tokens;
    return SS_OK;
}

int ss_engine_stopped(const ss_engine *e) {
    if (ss_dist_size() > 1) return e->stop_agreed;
    return e->c.stop && *e->c.stop;
}

static int every(int64_t step, int64_t n) { return n > 0 && step % n == 0; }

ss_status ss_engine_shards(int given, int64_t saved, int batch, const char *batch_flag, int *out, char *note,
                           size_t cap, ss_error *err) {
    int R = ss_dist_size();
    note[0] = 0;
    if (given > 0) *out = given;
    else if (saved > 0 && saved % R == 0 && saved <= batch) *out = (int)saved;
    else {
        *out = R;
        if (saved > 0 && saved != R)
            snprintf(note, cap, "the run was computed in %" PRId64 " shards, which %d ranks do not divide: it "
                     "continues in %d (correct, but no longer bit-identical to an uninterrupted run)", saved, R, R);
    }
    if (*out % R)
        return ss_fail(err, SS_ERR_ARG, "--shards %d: must be a multiple of the %d ranks (each rank computes "
                       "--shards / ranks parts of every batch)", *out, R);
    if (*out > batch)
        return ss_fail(err, SS_ERR_ARG, "%s %d is smaller than the %d shards the batch is cut into (%s): give a "
                       "%s of at least %d", batch_flag, batch, *out, given > 0 ? "--shards" : "one per rank",
                       batch_flag, *out);
    return SS_OK;
}

/* FNV-1a 64 of bytes, continuing h. */
static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Several ranks must start from the same weights, moments and position: a
 * fresh run draws them from the seed, a resumed one reads them from the
 * run directory, which therefore must be the same on every rank. */
static ss_status check_same_start(ss_engine *e, ss_error *err) {
    ss_model *ms[2] = {e->tm->model, e->tm->gen};
    const ss_adamw *os[2] = {&e->tm->opt, &e->tm->gen_opt};
    uint64_t h = fnv(&e->st->step, sizeof e->st->step, 0xcbf29ce484222325ull);
    for (int i = 0; i < 2; i++)
        if (ms[i]) {
            h = fnv(ss_model_params(ms[i]), ss_model_num_params(ms[i]) * sizeof(float), h);
            if (os[i]->m) h = fnv(os[i]->m, os[i]->n * sizeof(float), fnv(os[i]->v, os[i]->n * sizeof(float), h));
        }
    uint64_t h0 = h;
    double differ;
    ss_status st = ss_dist_bcast(&h0, sizeof h0, err);
    differ = h0 != h;
    if (!st) st = ss_dist_sum_f64(&differ, 1, err);
    if (!st && differ > 0)
        st = ss_fail(err, SS_ERR_FORMAT, "%.0f of the %d ranks start from other weights or another step than rank "
                     "0: a resumed run reads its checkpoint on every rank, so the run directory must be the same "
                     "(a shared filesystem) on all of them", differ, ss_dist_size());
    return st;
}

static void release(ss_engine *e) {
    overlap_free(e->ov);
    e->ov = NULL;
    free(e->slots);
    free(e->stats);
    for (int i = 0; e->acc && i < e->part_hi - e->part_lo; i++) free(e->acc[i]);
    free(e->acc);
    e->slots = e->stats = NULL;
    e->acc = NULL;
}

int ss_engine_overlaps(int shards, int comm_overlap) {
    int R = ss_dist_size();
    return R > 1 && (shards <= 0 || shards == R) && comm_overlap && ss_dist_async();
}

const char *ss_engine_reduction_name(int shards, int comm_overlap) {
    return ss_engine_overlaps(shards, comm_overlap) ? "each block's during the backward pass"
                                                       : "after the backward pass";
}

static ss_status setup(ss_engine *e, ss_error *err) {
    int R = ss_dist_size();
    if (e->c.shards <= 0) e->c.shards = R;
    if (e->c.shards % R)
        return ss_fail(err, SS_ERR_ARG, "%d shards: not a multiple of the %d ranks", e->c.shards, R);
    if (e->h.n_stats < 2) return ss_fail(err, SS_ERR_ARG, "the engine's hooks need n_stats >= 2");
    ss_dist_my_parts(e->c.shards, &e->part_lo, &e->part_hi);
    e->slots = calloc((size_t)e->c.shards * e->h.n_stats + 2, sizeof(double));
    e->stats = calloc((size_t)e->h.n_stats, sizeof(double));
    if (!e->slots || !e->stats) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    int L = e->part_hi - e->part_lo;
    if (L > 1) {
        segment seg[2];
        int ns = segments(e, seg);
        e->n_acc = 0;
        for (int i = 0; i < ns; i++) e->n_acc += seg[i].n;
        if (!(e->acc = calloc((size_t)L, sizeof *e->acc))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < L; i++)
            if (!(e->acc[i] = malloc(e->n_acc * sizeof(float))))
                return ss_fail(err, SS_ERR_NOMEM, "out of memory for %d shards' gradients on one rank (%.0f MB)", L,
                               (double)L * (double)e->n_acc * 4 / 1e6);
    }
    e->stop_agreed = 0;
    e->ov = NULL;
    ss_status st = ss_engine_overlaps(e->c.shards, e->c.comm_overlap) ? overlap_create(e, err) : SS_OK;
    return !st && R > 1 ? check_same_start(e, err) : st;
}

ss_status ss_engine_run(ss_engine *e, ss_error *err) {
    ss_status st = setup(e, err);
    while (!st && !ss_engine_finished(e) && !ss_engine_stopped(e) && !(e->h.done && e->h.done(e->h.ctx))) {
        ss_engine_step s = {.lr = ss_engine_lr(e)};
        double t0 = omp_get_wtime();
        if ((st = step(e, &s, t0, err))) break;
        if (ss_dist_size() == 1) s.seconds = omp_get_wtime() - t0;
        e->st->elapsed += s.seconds;
        int64_t n = e->st->step;
        s.last = ss_engine_finished(e);
        s.log_due = every(n, e->c.log_every) || s.last || s.skipped;
        s.eval_due = e->c.eval_every > 0 && (every(n, e->c.eval_every) || s.last);
        s.save_due = every(n, e->c.save_every);
        st = e->h.after_step(e->h.ctx, &s, err);
    }
    if (!st && ss_engine_stopped(e) && e->h.on_stop) st = e->h.on_stop(e->h.ctx, err);
    release(e);
    return st;
}

static ss_status choose_precision(ss_precision want, int resumed, ss_train_state *st, char *msg, size_t cap,
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

/* Several ranks compute with rank 0's backend: its probe decides (timing
 * noise must not give the ranks different products). */
ss_status ss_engine_precision(ss_precision want, int resumed, ss_train_state *st, char *msg, size_t cap,
                              ss_error *err) {
    int R = ss_dist_size(), rank = ss_dist_rank();
    ss_status s = rank == 0 ? choose_precision(want, resumed, st, msg, cap, err) : SS_OK;
    if (R == 1) return s;
    struct {
        int ok;
        char gemm[sizeof st->gemm];
    } c = {.ok = s == SS_OK};
    memcpy(c.gemm, st->gemm, sizeof c.gemm);
    ss_error ignore;
    if (ss_dist_bcast(&c, sizeof c, rank == 0 ? &ignore : err)) return rank == 0 ? s : SS_ERR_IO;
    if (rank == 0) return s;
    if (!c.ok) return ss_fail(err, SS_ERR_ARG, "rank 0 could not set up the matrix products (its message says why)");
    ss_gemm_backend be;
    memcpy(st->gemm, c.gemm, sizeof st->gemm);
    if ((s = ss_gemm_backend_parse(st->gemm, &be, err)) || (s = ss_gemm_use(be, err))) return s;
    snprintf(msg, cap, "precision: matrix products through %s, as rank 0 chose", st->gemm);
    return SS_OK;
}
