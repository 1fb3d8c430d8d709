/* Fine-tuning loop: a pretrained body (or a fresh one) + a CLS head,
 * cross-entropy on length-bucketed batches, AdamW with linear warmup and
 * decay, dev evaluation every epoch (or every N steps), the best weights
 * saved as they appear, early stopping with patience. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune_internal.h"
#include "selfsup/io.h"

void ss_finetune_opts_defaults(ss_finetune_opts *o) {
    memset(o, 0, sizeof *o);
    ss_config_preset(&o->scratch, "small", NULL);
    o->scratch.kind = SS_ENCODER;
    o->epochs = 3;
    o->batch = 32;
    o->max_seq = 128;
    o->lr = 1e-4;
    o->warmup_ratio = 0.1;
    o->weight_decay = 0.01;
    o->clip = 1.0;
    o->dropout = 0.1;
    o->seed = 1337;
    o->patience = 0;
    o->pooling = -1;
    o->pooler = -1;
}

static void note(ft_run *r, const char *msg) {
    ss_finetune_progress p = {.step = r->step, .total_steps = r->total_steps, .message = msg};
    if (r->fn) r->fn(r->ctx, &p);
}

/* The CLS model's config: the pretrained body's (or --scratch's), plus the head. */
static ss_status model_config(ft_run *r, ss_model_config *c, ss_error *err) {
    const ss_finetune_opts *o = &r->o;
    if (o->init) {
        ss_status st = ss_model_load_config(c, o->init, err);
        if (st) return st;
    } else {
        *c = o->scratch;
    }
    /* A classifier reads as many positions as its model has: give it the
     * fine-tuning length (a pretrained body's position table is cut to it),
     * so it classifies texts exactly as it was trained and evaluated. */
    if (c->max_seq > o->max_seq) c->max_seq = o->max_seq;
    if (!o->init) c->vocab_size = (int)ss_tokenizer_vocab_size(r->tok);
    else if ((size_t)c->vocab_size != ss_tokenizer_vocab_size(r->tok))
        return ss_fail(err, SS_ERR_FORMAT, "%s: model vocabulary %d differs from its tokenizer's %zu", o->init,
                       c->vocab_size, ss_tokenizer_vocab_size(r->tok));
    c->d_embed = 0;
    c->head = SS_HEAD_CLS;
    c->n_classes = r->labels.n;
    c->pooling = o->pooling >= 0 ? (ss_pooling)o->pooling : c->kind == SS_ENCODER ? SS_POOL_CLS : SS_POOL_LAST;
    c->pooler = o->pooler >= 0 ? o->pooler : c->pooling == SS_POOL_CLS;
    c->dropout = (float)o->dropout;
    return ss_config_validate(c, err);
}

static ss_status setup_model(ft_run *r, ss_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", r->o.init ? r->o.init : "");
    ss_status st = ss_tokenizer_load(&r->tok, r->o.init ? path : r->o.tokenizer, err);
    ss_model_config c;
    if (!st) st = model_config(r, &c, err);
    if (!st) st = ss_model_create(&r->model, &c, err);
    if (st) return st;
    ss_model_init_weights(r->model, r->o.seed);
    if (r->o.init && (st = ss_model_load_body(r->model, r->o.init, err))) return st;
    int T = r->o.max_seq < c.max_seq ? r->o.max_seq : c.max_seq;
    if ((st = ss_text_format_init(&r->fmt, r->tok, c.kind, T, err))) return st;
    size_t n = ss_model_num_params(r->model);
    r->first_trained = r->o.freeze_encoder ? ss_model_head_offset(r->model) : 0;
    if (!(r->best = malloc(n * sizeof(float)))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    return ss_adamw_init(&r->opt, n, err);
}

/* OUT/ gets the tokenizer and the class names now, the model at each new best. */
static ss_status setup_output(ft_run *r, ss_error *err) {
    char path[4096];
    ss_status st = ss_mkdir_p(r->o.out_dir, err);
    snprintf(path, sizeof path, "%s/tokenizer.json", r->o.out_dir);
    if (!st) st = ss_tokenizer_save(r->tok, path, err);
    if (!st) st = ss_tokenizer_save_config(r->tok, r->o.out_dir, ss_model_config_of(r->model)->max_seq, err);
    char *labels = st ? NULL : ss_label_map_to_json(&r->labels);
    snprintf(path, sizeof path, "%s/labels.json", r->o.out_dir);
    if (!st) st = labels ? ss_write_file_atomic(path, labels, strlen(labels), err)
                         : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    free(labels);
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->o.out_dir);
    if (!st) st = ss_metrics_open(&r->metrics, path, 0, err);
    return st;
}

/* One optimizer step on batch b of the epoch. */
static ss_status train_step(ft_run *r, size_t b, ss_error *err) {
    ss_model *m = r->model;
    int B = r->batch_len[b];
    const size_t *idx = r->order + r->batch_at[b];
    int T = ss_seqs_batch(&r->train.seqs, idx, B, r->fmt.pad_id, r->tokens, r->valid);
    double wsum = 0;
    for (int i = 0; i < B; i++) {
        r->batch_y[i] = r->train.y[idx[i]];
        wsum += r->class_w ? r->class_w[r->batch_y[i]] : 1.0;
    }
    ss_model_zero_grads(m);
    ss_cls_stats cs;
    uint64_t seed = r->o.seed * 0x9E3779B97F4A7C15ull + (uint64_t)r->step + 1;
    ss_status st = ss_model_body_forward(m, r->tokens, r->valid, B, T, 1, seed, NULL, err);
    if (!st) st = ss_cls_head(m, r->valid, r->batch_y, r->class_w, wsum > 0 ? (float)(1.0 / wsum) : 0.0f, 1, NULL,
                              &cs, err);
    if (st) return st;
    if (!r->o.freeze_encoder) ss_model_body_backward(m);
    size_t n = ss_model_num_params(m), f = r->first_trained;
    double norm = ss_grad_norm(ss_model_grads(m) + f, n - f);
    double loss = wsum > 0 ? cs.loss_sum / wsum : 0;
    if (!isfinite(loss) || !isfinite(norm))
        return ss_fail(err, SS_ERR_RANGE, "the loss or gradient became non-finite at step %lld; lower --lr",
                       (long long)r->step + 1);
    double lr = ss_lr_linear(r->step, r->total_steps, r->warmup, r->o.lr);
    ss_adamw_hparams h = {(float)lr, 0.9f, 0.999f, 1e-8f, (float)r->o.weight_decay};
    ss_adamw_step_scaled(&r->opt, m, ss_model_params(m), ss_model_grads(m), &h, f, ss_clip_factor(norm, r->o.clip));
    r->step++;
    r->loss_acc += loss;
    r->loss_n++;
    r->log_loss += loss;
    r->log_n++;
    r->shown_loss += loss;
    r->shown_n++;
    return SS_OK;
}

/* Evaluate on dev; keep and save the weights when they are the best so far. */
static ss_status evaluate(ft_run *r, ss_error *err) {
    ss_class_metrics m = {0};
    ss_status st = ft_eval_split(r, &r->dev, &m, err);
    if (st) return st;
    double score = ft_score(r, &m), train_loss = r->loss_n ? r->loss_acc / (double)r->loss_n : NAN;
    int improved = !r->have_best || score > r->best_score;
    if (improved) {
        r->have_best = 1;
        r->best_score = score;
        r->best_step = r->step;
        r->best_epoch = r->epoch;
        r->evals_since_best = 0;
        memcpy(r->best, ss_model_params(r->model), ss_model_num_params(r->model) * sizeof(float));
        st = ft_save_best(r, err);
    } else {
        r->evals_since_best++;
    }
    ss_metric_field f[] = {SS_MF_I("step", r->step), SS_MF_I("epoch", r->epoch), SS_MF_D("train_loss", train_loss),
                           SS_MF_D("dev_accuracy", m.accuracy), SS_MF_D("dev_macro_f1", m.macro_f1),
                           SS_MF_D("dev_mcc", m.mcc)};
    if (!st) st = ss_metrics_write(r->metrics, f, sizeof f / sizeof f[0], err);
    ss_finetune_progress p = {.is_eval = 1, .improved = improved, .epoch = r->epoch, .step = r->step,
                              .total_steps = r->total_steps, .loss = train_loss, .dev = &m,
                              .elapsed = omp_get_wtime() - r->t0};
    r->last_shown = p.elapsed;
    if (!st && r->fn) r->fn(r->ctx, &p);
    r->loss_acc = 0;
    r->loss_n = 0;
    ss_class_metrics_free(&m);
    return st;
}

static int should_stop(const ft_run *r) {
    return (r->o.stop && *r->o.stop) || (r->o.patience > 0 && r->evals_since_best >= r->o.patience);
}

/* Every FT_LOG_EVERY steps a metrics line (the mean loss of those steps);
 * a progress report at most every FT_SHOW_MIN seconds at those steps, and
 * at the first step end FT_SHOW_MAX seconds after the previous report, so
 * a run shows a line every few seconds whatever its speed. */
#define FT_LOG_EVERY 20
#define FT_SHOW_MIN 2.0
#define FT_SHOW_MAX 10.0

static void report_step(ft_run *r) {
    double el = omp_get_wtime() - r->t0, lr = ss_lr_linear(r->step - 1, r->total_steps, r->warmup, r->o.lr);
    if (r->step % FT_LOG_EVERY == 0) {
        ss_metric_field f[] = {SS_MF_I("step", r->step), SS_MF_I("epoch", r->epoch),
                               SS_MF_D("loss", r->log_loss / (double)r->log_n), SS_MF_D("lr", lr),
                               SS_MF_D("elapsed_s", el)};
        ss_error ignore;
        ss_metrics_write(r->metrics, f, sizeof f / sizeof f[0], &ignore);
        r->log_loss = 0;
        r->log_n = 0;
    }
    double since = el - r->last_shown;
    if (!((r->step % FT_LOG_EVERY == 0 && since >= FT_SHOW_MIN) || since >= FT_SHOW_MAX)) return;
    ss_finetune_progress p = {.epoch = r->epoch, .step = r->step, .total_steps = r->total_steps,
                              .loss = r->shown_loss / (double)r->shown_n, .lr = lr, .elapsed = el,
                              .seqs_per_s = el > 0 ? (double)r->step * r->o.batch / el : 0};
    r->last_shown = el;
    r->shown_loss = 0;
    r->shown_n = 0;
    if (r->fn) r->fn(r->ctx, &p);
}

/* What was read: rows per split, skipped rows, classes, truncation. */
static void data_note(ft_run *r) {
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "data: train %zu rows, dev %zu", r->train.rows.n, r->dev.rows.n);
    if (r->test.path) n += snprintf(msg + n, sizeof msg - (size_t)n, ", test %zu", r->test.rows.n);
    n += snprintf(msg + n, sizeof msg - (size_t)n, "; %d classes (%s ... %s); %zu train texts cut to %d tokens",
                  r->labels.n, r->labels.names[0], r->labels.names[r->labels.n - 1], r->train.seqs.n_truncated,
                  r->fmt.max_seq);
    note(r, msg);
    ft_split *s[3] = {&r->train, &r->dev, &r->test};
    for (int i = 0; i < 3; i++) {
        if (!s[i]->path || !s[i]->rows.n_bad) continue;
        snprintf(msg, sizeof msg, "skipped %zu malformed rows of %s (first: %s)", s[i]->rows.n_bad, s[i]->path,
                 s[i]->rows.first_bad);
        note(r, msg);
    }
}

static ss_status train_loop(ft_run *r, ss_error *err) {
    ss_status st = SS_OK;
    for (r->epoch = 1; r->epoch <= r->o.epochs && !st && !should_stop(r); r->epoch++) {
        ft_plan_epoch(r);
        for (size_t b = 0; b < r->n_batches && !st && !should_stop(r); b++) {
            if ((st = train_step(r, b, err))) break;
            report_step(r);
            if (r->o.eval_every > 0 && r->step % r->o.eval_every == 0) st = evaluate(r, err);
        }
        if (!st && r->o.eval_every <= 0 && !(r->o.stop && *r->o.stop)) st = evaluate(r, err);
    }
    if (r->epoch > r->o.epochs) r->epoch = r->o.epochs;
    if (!st && r->o.patience > 0 && r->evals_since_best >= r->o.patience) note(r, "early stop: no dev improvement");
    if (!st && !r->have_best) st = evaluate(r, err); /* stopped before the first evaluation */
    return st;
}

/* The best weights back in the model, measured on dev (and test). */
static ss_status finish(ft_run *r, ss_finetune_result *res, ss_error *err) {
    memcpy(ss_model_params(r->model), r->best, ss_model_num_params(r->model) * sizeof(float));
    res->best_step = r->best_step;
    res->best_epoch = r->best_epoch;
    res->steps = r->step;
    res->train_rows = r->train.rows.n;
    res->train_bad_rows = r->train.rows.n_bad;
    ss_status st = ft_eval_split(r, &r->dev, &res->dev, err);
    if (!st && r->test.path) st = ft_eval_split(r, &r->test, &res->test, err);
    if (!st) st = ft_write_eval_json(r, res, err);
    return st;
}

static ss_status check_opts(const ss_finetune_opts *o, ss_error *err) {
    if (!o->train_path || !o->dev_path || !o->out_dir)
        return ss_fail(err, SS_ERR_ARG, "fine-tuning needs a train file, a dev file and an output directory");
    if (!o->init && !o->tokenizer)
        return ss_fail(err, SS_ERR_ARG, "a model from scratch (--init none) needs --tokenizer");
    if (o->epochs < 1 || o->batch < 1 || o->max_seq < 3)
        return ss_fail(err, SS_ERR_ARG, "--epochs and --batch must be >= 1 and --max-seq >= 3");
    if (!(o->lr > 0) || !(o->warmup_ratio >= 0 && o->warmup_ratio < 1) || o->weight_decay < 0 || o->clip < 0)
        return ss_fail(err, SS_ERR_ARG, "--lr must be > 0, --warmup-ratio in [0, 1), --weight-decay and --clip >= 0");
    if (!(o->dropout >= 0 && o->dropout < 1)) return ss_fail(err, SS_ERR_ARG, "--dropout must be in [0, 1)");
    return SS_OK;
}

static void free_run(ft_run *r) {
    ft_free_data(r);
    ss_model_free(r->model);
    ss_tokenizer_free(r->tok);
    ss_adamw_free(&r->opt);
    free(r->best);
    ss_error ignore;
    ss_metrics_close(r->metrics, &ignore);
}

ss_status ss_finetune(const ss_finetune_opts *o, ss_finetune_result *res, ss_finetune_progress_fn fn, void *ctx,
                      ss_error *err) {
    memset(res, 0, sizeof *res);
    ss_status st = check_opts(o, err);
    if (st) return st;
    ft_run r = {.o = *o, .fn = fn, .ctx = ctx};
    ss_rng_seed(&r.rng, o->seed ^ 0xF17E7u);
    st = ft_load_data(&r, err);
    if (!st) st = setup_model(&r, err);
    if (!st) st = ft_encode_data(&r, err);
    if (!st) st = setup_output(&r, err);
    if (!st) {
        int64_t per_epoch = (int64_t)((r.train.rows.n + (size_t)o->batch - 1) / (size_t)o->batch);
        r.total_steps = per_epoch * o->epochs;
        r.warmup = (int64_t)llround(o->warmup_ratio * (double)r.total_steps);
        r.t0 = omp_get_wtime();
        data_note(&r);
        st = train_loop(&r, err);
    }
    if (!st) st = finish(&r, res, err);
    free_run(&r);
    if (st) ss_finetune_result_free(res);
    return st;
}

void ss_finetune_result_free(ss_finetune_result *r) {
    ss_class_metrics_free(&r->dev);
    ss_class_metrics_free(&r->test);
}
