/* Fine-tuning on the step engine (engine.c): a pretrained body (or a fresh
 * one) + a CLS head, cross-entropy on length-bucketed batches (x grad_accum),
 * AdamW with linear warmup and decay, dev evaluation every epoch (or every N
 * steps), the best weights saved as they appear, early stopping with
 * patience. A checkpoint (DIR/checkpoint/: the current weights, AdamW
 * moments, the epoch's order and position, the best so far) is written on
 * Ctrl-C and every --save-every steps, and removed when the run ends:
 * --resume continues exactly, as if the run had not stopped. Data parallel
 * under mpirun like pretraining (engine.h): every rank plans the same epochs
 * and draws each whole batch, computes its shards of it, evaluates its parts
 * of dev; rank 0 alone writes DIR. */
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "finetune_internal.h"
#include "optable.h"
#include "selfsup/dist.h"
#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/safetensors.h"

static void note(ft_run *r, const char *msg) {
    ss_finetune_progress p = {.step = r->state.step, .total_steps = r->total_steps, .message = msg};
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
    c->text_norm = o->detokenize;
    if (o->template.n) { /* the pretrained LM head is the classifier */
        if (c->head != SS_HEAD_LM && c->head != SS_HEAD_MLM)
            return ss_fail(err, SS_ERR_ARG, "%s has a '%s' head: prompt-based fine-tuning (--template) trains a "
                           "language model head, a clm or mlm run's%s", o->init, ss_head_kind_name(c->head),
                           c->head == SS_HEAD_DISC ? " (an rtd run's discriminator has none; its generator classifies "
                           "zero-shot with 'selfsup classify --template')" : "");
        c->dropout = (float)o->dropout;
        return ss_config_validate(c, err);
    }
    c->d_embed = 0;
    c->head = SS_HEAD_CLS;
    c->n_classes = r->labels.n;
    c->pooling = o->pooling >= 0 ? (ss_pooling)o->pooling : c->kind == SS_ENCODER ? SS_POOL_CLS : SS_POOL_WMEAN;
    c->pooler = o->pooler >= 0 ? o->pooler : c->pooling == SS_POOL_CLS;
    if (o->attention >= 0) {
        if (c->kind == SS_ENCODER)
            return ss_fail(err, SS_ERR_ARG, "--attention is for a decoder: an encoder's attention is bidirectional");
        c->bidirectional = o->attention == 1;
    }
    c->dropout = (float)o->dropout;
    return ss_config_validate(c, err);
}

/* A fresh model, or (resumed) the checkpoint's, which must fit the data. */
static ss_status create_model(ft_run *r, ss_error *err) {
    ss_model_config c;
    ss_status st = model_config(r, &c, err);
    if (st) return st;
    if (r->tm.model) {
        const ss_model_config *k = ss_model_config_of(r->tm.model);
        if (k->head != c.head || k->n_classes != c.n_classes || k->vocab_size != c.vocab_size || k->kind != c.kind ||
            k->bidirectional != c.bidirectional)
            return ss_fail(err, SS_ERR_FORMAT, "%s/checkpoint: the checkpoint's model (head %s, %d classes, "
                           "vocabulary %d, %s attention) does not fit this data and tokenizer (head %s, %d, %d, %s)",
                           r->o.out_dir, ss_head_kind_name(k->head), k->n_classes, k->vocab_size,
                           k->bidirectional ? "bidirectional" : "its kind's", ss_head_kind_name(c.head), c.n_classes,
                           c.vocab_size, c.bidirectional ? "bidirectional" : "its kind's");
        r->model = r->tm.model;
        return SS_OK;
    }
    if ((st = ss_model_create(&r->tm.model, &c, err))) return st;
    r->model = r->tm.model;
    ss_model_init_weights(r->model, r->o.seed);
    if (r->o.init && (st = r->o.template.n ? ss_model_load_weights(r->model, r->o.init, err)
                                         : ss_model_load_body(r->model, r->o.init, err)))
        return st;
    return ss_adamw_init(&r->tm.opt, ss_model_num_params(r->model), err);
}

/* --template: a prompt per template, its labels numbered as the training
 * file's, and the token and label of each verbalizer word (the same tokens
 * through every template: one verbalizer head scores a batch of rows
 * through any of them). */
static ss_status setup_prompt(ft_run *r, ss_model_kind kind, int T, ss_error *err) {
    int n = r->o.template.n;
    if (!(r->prompts = calloc((size_t)n, sizeof *r->prompts))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = SS_OK;
    for (; r->n_prompts < n && !st; r->n_prompts++) {
        ss_prompt_spec spec = {r->o.template.v[r->n_prompts], r->o.verbalizer, 0};
        if ((st = ss_prompt_create(&r->prompts[r->n_prompts], &spec, r->tok, kind, T, err))) break;
        st = ss_prompt_order_labels(r->prompts[r->n_prompts], &r->labels, r->o.train_path, err);
    }
    int W = st ? 0 : ss_prompt_num_words(r->prompts[0]);
    int32_t *ids = NULL, *labels = NULL;
    if (!st && (!(r->verb_ids = malloc((size_t)W * sizeof(int32_t))) ||
                !(r->verb_labels = malloc((size_t)W * sizeof(int32_t))) ||
                !(ids = malloc((size_t)W * sizeof(int32_t))) || !(labels = malloc((size_t)W * sizeof(int32_t))) ||
                !(r->positions = malloc((size_t)r->o.batch * sizeof(int32_t)))))
        st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_prompt_word_tokens(r->prompts[0], r->verb_ids, r->verb_labels, err);
    for (int i = 1; i < n && !st; i++) {
        if ((st = ss_prompt_word_tokens(r->prompts[i], ids, labels, err))) break;
        if (memcmp(ids, r->verb_ids, (size_t)W * sizeof(int32_t)))
            st = ss_fail(err, SS_ERR_ARG, "--template '%s' gives the verbalizer's words other tokens than '%s' (a "
                         "template that ends in a line break or tab is continued by words without their leading "
                         "space): templates fine-tuned together must share the words' tokens", r->o.template.v[i],
                         r->o.template.v[0]);
    }
    free(ids);
    free(labels);
    r->verb = (ss_verbalizer_tokens){r->verb_ids, r->verb_labels, W, r->labels.n};
    return st;
}

/* --lr 0 and --layer-decay 0 (the defaults): what the learning study found
 * best (eval/RESULTS.md, SST-2 dev, 3 seeds). A pretrained encoder under a
 * new head wants a larger rate than the decoders, and its lower layers less
 * of it: lr 5e-4 with layer decay 0.8 gave 81.08 +- 0.42 against 80.58 at
 * 5e-4 alone and 78.82 at 1e-3 (a shorter masked LM: 79.17 at 5e-4, 78.10
 * at 2e-4). Prompt-based fine-tuning of a decoder (its LM head is the
 * classifier, trained from what pretraining put there) wants much less,
 * the less the fewer its rows: with 100 or 300 labels (75 or 30 epochs
 * over them) lr 1e-5 gave 78.48 and 79.74 against 77.03 and 78.59 at 5e-5
 * and 74.12 at 2e-4 (100). From 1,000 rows it takes the encoder's shape:
 * lr 2e-4 with layer decay 0.8 gave 82.49 +- 0.93 at 1,000 labels (5e-5:
 * 82.19 and 82.03; 2e-4 alone 80.73; five more pairs 81.7-82.2) and
 * 84.94 +- 0.13 with all 6,920, against 84.37 +- 0.29 at 5e-5 (eleventh
 * part). Decoders under a new head, models from random weights and the
 * masked LM's prompt-based fine-tuning keep the recipe they were measured
 * with: lr 2e-4, no decay (random weights: 78.13 at 2e-4 against 76.49 at
 * 5e-4). A resumed run has the values it started with. */
static void auto_hparams(ft_run *r, const ss_model_config *c) {
    if (r->o.lr > 0 && r->o.layer_decay > 0) return;
    int pretrained_encoder = r->o.init && c->kind == SS_ENCODER && !r->o.template.n;
    int prompt_decoder = r->o.template.n && c->kind == SS_DECODER;
    size_t rows = r->train.rows.n;
    int prompt_decoder_many = prompt_decoder && rows >= 1000;
    if (r->o.lr == 0) r->o.lr = pretrained_encoder ? 5e-4 : !prompt_decoder ? 2e-4 : rows < 1000 ? 1e-5 : 2e-4;
    if (r->o.layer_decay == 0) r->o.layer_decay = pretrained_encoder || prompt_decoder_many ? 0.8 : 1.0;
    char msg[256], what[96];
    if (prompt_decoder)
        snprintf(what, sizeof what, "prompt-based fine-tuning of a decoder on %s 1,000 rows",
                 rows < 1000 ? "fewer than" : "at least");
    snprintf(msg, sizeof msg, "learning rate %g, layer decay %g%s (defaults for %s; --lr, --layer-decay)", r->o.lr,
             r->o.layer_decay, r->o.layer_decay == 1.0 ? " (off)" : "",
             pretrained_encoder ? "a pretrained encoder with a new head"
             : !r->o.init       ? "a model from random weights"
             : prompt_decoder   ? what
             : r->o.template.n  ? "prompt-based fine-tuning of an encoder"
                                : "a decoder");
    note(r, msg);
}

static ss_status setup_model(ft_run *r, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_status st = r->o.init ? ss_path_join(path, sizeof path, r->o.init, SS_RUN_TOKENIZER, err) : SS_OK;
    if (!st) st = ss_tokenizer_load(&r->tok, r->o.init ? path : r->o.tokenizer, err);
    if (!st) st = create_model(r, err);
    if (st) return st;
    const ss_model_config *c = ss_model_config_of(r->model);
    auto_hparams(r, c);
    int T = r->o.max_seq < c->max_seq ? r->o.max_seq : c->max_seq;
    if ((st = ss_text_format_init(&r->fmt, r->tok, c->kind, T, err))) return st;
    if (r->o.template.n && (st = setup_prompt(r, c->kind, T, err))) return st;
    size_t n = ss_model_num_params(r->model);
    r->first_trained = r->o.freeze_encoder ? ss_model_head_offset(r->model) : 0;
    if (!(r->best = malloc(n * sizeof(float)))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    return SS_OK;
}

/* Resumed: the best weights so far are DIR/model.safetensors, saved at the
 * checkpoint's best step. */
static ss_status load_best(ft_run *r, ss_error *err) {
    if (!r->state.have_best) return SS_OK;
    char path[SS_PATH_MAX];
    ss_safetensors *f;
    ss_status st = ss_path_join(path, sizeof path, r->o.out_dir, SS_RUN_MODEL, err);
    if (!st) st = ss_safetensors_open_header(&f, path, err); /* its data: checked by ss_model_load below */
    if (st) return st;
    const char *ms = ss_safetensors_meta(f, "step"); /* the step of the best weights (README) */
    int same = ms && strtoll(ms, NULL, 10) == r->state.best_step;
    ss_safetensors_close(f);
    if (!same)
        return ss_fail(err, SS_ERR_FORMAT, "%s: saved at step %s, not at the checkpoint's best step %" PRId64
                       " (interrupted between saves?): cannot resume", path, ms ? ms : "(unknown)", r->state.best_step);
    ss_model *m;
    if ((st = ss_model_load(&m, r->o.out_dir, err))) return st;
    if (ss_model_num_params(m) != ss_model_num_params(r->model))
        st = ss_fail(err, SS_ERR_FORMAT, "%s: not the checkpoint's model", path);
    else memcpy(r->best, ss_model_params(m), ss_model_num_params(m) * sizeof(float));
    ss_model_free(m);
    return st;
}

/* DIR/prompt.json: what 'selfsup classify' reads the model with. */
static ss_status write_prompt(ft_run *r, ss_error *err) {
    char path[SS_PATH_MAX];
    char *json = ft_prompt_json(r);
    ss_status st = json ? ss_path_join(path, sizeof path, r->o.out_dir, SS_RUN_PROMPT, err)
                        : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_write_file_atomic(path, json, strlen(json), err);
    free(json);
    return st;
}

/* OUT/ gets the tokenizer, the class names (and the prompt) now, the model at each new best. */
static ss_status setup_output(ft_run *r, ss_error *err) {
    char path[SS_PATH_MAX];
    if (ss_dist_rank() != 0) return SS_OK; /* rank 0 writes DIR */
    ss_status st = ss_mkdir_p(r->o.out_dir, err);
    if (!st) st = ss_run_lock(r->o.out_dir, &r->lock_fd, err); /* before its first write */
    if (!st) st = ss_path_join(path, sizeof path, r->o.out_dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_tokenizer_save(r->tok, path, err);
    if (!st) st = ss_tokenizer_save_config(r->tok, r->o.out_dir, ss_model_config_of(r->model)->max_seq, err);
    char *labels = st ? NULL : ss_label_map_to_json(&r->labels);
    if (!st) st = ss_path_join(path, sizeof path, r->o.out_dir, SS_RUN_LABELS, err);
    if (!st) st = labels ? ss_write_file_atomic(path, labels, strlen(labels), err)
                         : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    free(labels);
    if (!st && r->n_prompts) st = write_prompt(r, err);
    if (!st) st = ss_path_join(path, sizeof path, r->o.out_dir, SS_RUN_METRICS, err);
    if (!st && r->o.resume) st = ss_metrics_truncate_after_step(path, r->state.step, err);
    if (!st) st = ss_metrics_open(&r->metrics, path, r->o.resume, err);
    return st;
}

static ss_status checkpoint_dir(const ft_run *r, char *out, size_t cap, ss_error *err) {
    return ss_path_join(out, cap, r->o.out_dir, SS_RUN_CHECKPOINT, err);
}

static ss_status save_checkpoint(ft_run *r, ss_error *err) {
    if (ss_dist_rank() != 0) return SS_OK; /* rank 0 writes DIR */
    char dir[SS_PATH_MAX];
    ss_status st = checkpoint_dir(r, dir, sizeof dir, err);
    if (st) return st;
    r->state.total_steps = r->total_steps;
    st = ss_checkpoint_save(dir, &r->tm, &r->state, r->opts_json, r->keep_previous, err);
    if (!st) r->keep_previous = 0;
    return st;
}

/* A finished run needs no checkpoint: its result is DIR. */
static void remove_checkpoint(const ft_run *r) {
    if (ss_dist_rank() != 0) return;
    static const char *const files[] = {SS_RUN_CONFIG, SS_RUN_MODEL, SS_RUN_OPTIMIZER, SS_RUN_STATE};
    char dirs[2][SS_PATH_MAX], path[SS_PATH_MAX];
    if (checkpoint_dir(r, dirs[1], sizeof dirs[1], NULL) ||
        ss_path_join(dirs[0], sizeof dirs[0], dirs[1], SS_RUN_PREVIOUS, NULL))
        return;
    for (int d = 0; d < 2; d++) { /* .previous first */
        for (int i = 0; i < 4; i++)
            if (!ss_path_join(path, sizeof path, dirs[d], files[i], NULL)) unlink(path);
        rmdir(dirs[d]);
    }
}

/* Resume: the checkpoint, and the run's options from it (an option given
 * now that differs is an error naming it). */
static ss_status load_checkpoint(ft_run *r, ss_error *err) {
    char dir[SS_PATH_MAX], *json = NULL;
    ss_status st = checkpoint_dir(r, dir, sizeof dir, err);
    if (st) return st;
    if (!ss_file_exists(dir))
        return ss_fail(err, SS_ERR_NOT_FOUND, "cannot resume: %s has no checkpoint (one is saved on Ctrl-C and "
                       "every --save-every steps, and removed when a run finishes)", r->o.out_dir);
    ss_error warn = {0};
    st = ss_checkpoint_load(dir, &r->tm, &r->state, &json, &r->keep_previous, &warn);
    if (st) {
        *err = warn;
        return ss_error_prefix(err, "cannot resume: ");
    }
    if (warn.msg[0]) note(r, warn.msg);
    ss_finetune_opts saved = r->o;
    if (!json) st = ss_fail(err, SS_ERR_FORMAT, "%s/trainer_state.json: no 'options'", dir);
    else st = ss_finetune_opts_from_json(&saved, json, dir, &r->saved_strings, err);
    free(json);
    if (!st) st = opts_resume(&ss_finetune_opt_table, &r->o, &saved, r->o.given, err);
    if (!st) {
        ss_finetune_opts c = r->o;
        c.resume = 0;
        st = ss_finetune_opts_check(&c, err);
    }
    return st;
}

/* The next epoch's order, from the generator's state now (kept in the
 * checkpoint: a resumed run plans the same epoch again). */
static void next_epoch(ft_run *r) {
    ss_rng_state_get(&r->rng, r->state.data_rng);
    r->state.epoch++;
    r->state.epoch_batch = 0;
    ft_plan_epoch(r);
}

/* Engine hooks. A step takes up to grad_accum batches of the epoch. */
static int micro_count(void *ctx) {
    ft_run *r = ctx;
    if (r->state.epoch == 0 || (size_t)r->state.epoch_batch >= r->n_batches) next_epoch(r);
    size_t left = r->n_batches - (size_t)r->state.epoch_batch;
    return left < (size_t)r->o.grad_accum ? (int)left : r->o.grad_accum;
}

/* The step's next batch, whole (every rank the same): its texts padded to
 * the longest, labels, and the summed class weights. */
static ss_status prepare(void *ctx, int k, ss_error *err) {
    (void)k, (void)err;
    ft_run *r = ctx;
    size_t b = (size_t)r->state.epoch_batch++;
    int B = r->batch_len[b];
    const size_t *idx = r->order + r->batch_at[b];
    r->cur_n = B;
    r->cur_idx = idx;
    r->cur_T = ss_seqs_batch(&r->train.seqs, idx, B, r->fmt.pad_id, r->tokens, r->valid);
    double wsum = 0;
    for (int i = 0; i < B; i++) {
        r->batch_y[i] = r->train.y[idx[i] % r->train.rows.n]; /* sequence t * rows + i is row i */
        wsum += r->class_w ? r->class_w[r->batch_y[i]] : 1.0;
    }
    r->cur_wsum = wsum;
    return SS_OK;
}

/* Gradual unfreezing (--unfreeze-every N, ULMFiT): at step s the tensors of
 * depth L + 1 - floor(s / N) and up train (ss_param_info.depth: the final
 * LayerNorm and head at L + 1, block l at l + 1, the embeddings at 0). */
static int frozen_below(void *ctx) {
    const ft_run *r = ctx;
    if (r->o.unfreeze_every <= 0) return 0;
    int64_t top = ss_model_config_of(r->model)->n_layer + 1, stage = r->state.step / r->o.unfreeze_every;
    return stage >= top ? 0 : (int)(top - stage);
}

/* Part `part` of the batch (its texts [lo, hi)): loss = sum_i w_i CE_i /
 * sum_i w_i over the whole batch, gradients added times scale. */
static ss_status micro(void *ctx, int k, int part, int parts, float scale, double *stats, ss_error *err) {
    ft_run *r = ctx;
    ss_model *m = r->model;
    int T = r->cur_T;
    size_t lo = ss_part_lo((size_t)r->cur_n, part, parts), rows = ss_part_lo((size_t)r->cur_n, part + 1, parts) - lo;
    size_t off = lo * (size_t)T;
    double wsum = r->cur_wsum;
    if (rows == 0) return SS_OK;
    for (size_t i = 0; i < rows * (size_t)T; i++) stats[1] += r->valid[off + i];
    ss_cls_stats cs;
    uint64_t seed = (r->o.seed * 0x9E3779B97F4A7C15ull + (uint64_t)r->state.step + 1) ^ ((uint64_t)k << 48);
    float gs = wsum > 0 ? (float)(1.0 / wsum) * scale : 0.0f;
    ss_model_set_row_offset(m, lo);
    ss_status st = ss_model_body_forward(m, r->tokens + off, r->valid + off, (int)rows, T, 1, seed, NULL, err);
    if (!st && r->n_prompts) {
        for (size_t i = 0; i < rows; i++) r->positions[i] = (int32_t)(i * (size_t)T) + r->train.pos[r->cur_idx[lo + i]];
        st = ss_verbalizer_head(m, r->positions, (int)rows, &r->verb, r->batch_y + lo, r->class_w, gs,
                                1, NULL, &cs, err);
    } else if (!st) {
        st = ss_cls_head(m, r->valid + off, r->batch_y + lo, r->class_w, gs, 1, NULL, &cs, err);
    }
    if (st) return st;
    if (!r->o.freeze_encoder) ss_model_body_backward_to(m, frozen_below(r)); /* no gradients for frozen blocks */
    stats[0] += (wsum > 0 ? cs.loss_sum / wsum : 0) * scale;
    return SS_OK;
}

/* Evaluate on dev; keep and save the weights when they are the best so far. */
static ss_status evaluate(ft_run *r, ss_error *err) {
    ss_train_state *s = &r->state;
    ss_class_metrics m = {0};
    ss_status st = ft_eval_split(r, &r->dev, &m, err);
    if (st) return st;
    double score = ft_score(r, &m), train_loss = s->loss_n ? s->loss_sum / (double)s->loss_n : NAN;
    int improved = !s->have_best || score > s->best_score;
    if (improved) {
        s->have_best = 1;
        s->best_score = score;
        s->best_step = s->step;
        s->best_epoch = s->epoch;
        s->evals_since_best = 0;
        memcpy(r->best, ss_model_params(r->model), ss_model_num_params(r->model) * sizeof(float));
        if (ss_dist_rank() == 0) st = ft_save_best(r, err); /* rank 0 writes DIR */
    } else {
        s->evals_since_best++;
    }
    ss_metric_field f[] = {SS_MF_I("step", s->step), SS_MF_I("epoch", s->epoch), SS_MF_D("train_loss", train_loss),
                           SS_MF_D("dev_accuracy", m.accuracy), SS_MF_D("dev_macro_f1", m.macro_f1),
                           SS_MF_D("dev_mcc", m.mcc)};
    if (!st && r->metrics) st = ss_metrics_write(r->metrics, f, sizeof f / sizeof f[0], err);
    ss_finetune_progress p = {.is_eval = 1, .improved = improved, .epoch = (int)s->epoch, .step = s->step,
                              .total_steps = r->total_steps, .loss = train_loss, .dev = &m,
                              .elapsed = omp_get_wtime() - r->t0};
    r->last_shown = p.elapsed;
    if (!st && r->fn) r->fn(r->ctx, &p);
    s->loss_sum = 0;
    s->loss_n = 0;
    ss_class_metrics_free(&m);
    return st;
}

/* Stopped (Ctrl-C): every rank agrees after the same step (engine.c). */
static int stopped(const ft_run *r) { return ss_engine_stopped(&r->eng); }

static int patience_out(const ft_run *r) {
    return r->o.patience > 0 && r->state.evals_since_best >= r->o.patience;
}

static int done(void *ctx) { return patience_out(ctx); }

/* A metrics line (the mean loss of the steps since the last one) at the
 * engine's log cadence; a progress report at most every FT_SHOW_MIN seconds
 * at those steps, and at the first step FT_SHOW_MAX seconds after the
 * previous report, so a run shows a line every few seconds whatever its
 * speed; and always at the last step, so even a run of a second shows one. */
#define FT_SHOW_MIN 2.0
#define FT_SHOW_MAX 10.0

static void report_step(ft_run *r, const ss_engine_step *s) {
    double el = omp_get_wtime() - r->t0;
    if (s->skipped) note(r, "warning: non-finite loss or gradient; step skipped");
    if (s->log_due && r->log_n > 0) {
        ss_metric_field f[] = {SS_MF_I("step", r->state.step), SS_MF_I("epoch", r->state.epoch),
                               SS_MF_D("loss", r->log_loss / (double)r->log_n), SS_MF_D("lr", s->lr),
                               SS_MF_D("elapsed_s", el)};
        ss_error ignore;
        if (r->metrics) ss_metrics_write(r->metrics, f, sizeof f / sizeof f[0], &ignore);
        r->log_loss = 0;
        r->log_n = 0;
    }
    double since = el - r->last_shown;
    int last = r->state.step >= r->total_steps;
    if (r->shown_n == 0 || !(last || (s->log_due && since >= FT_SHOW_MIN) || since >= FT_SHOW_MAX)) return;
    ss_finetune_progress p = {.epoch = (int)r->state.epoch, .step = r->state.step, .total_steps = r->total_steps,
                              .loss = r->shown_loss / (double)r->shown_n, .lr = s->lr, .elapsed = el,
                              .seqs_per_s = el > 0 ? (double)r->state.step * r->o.batch * r->o.grad_accum / el : 0};
    r->last_shown = el;
    r->shown_loss = 0;
    r->shown_n = 0;
    if (r->fn) r->fn(r->ctx, &p);
}

static ss_status after_step(void *ctx, const ss_engine_step *s, ss_error *err) {
    ft_run *r = ctx;
    if (!s->skipped) {
        r->state.loss_sum += s->loss;
        r->state.loss_n++;
        r->log_loss += s->loss;
        r->log_n++;
        r->shown_loss += s->loss;
        r->shown_n++;
    }
    report_step(r, s);
    int epoch_end = (size_t)r->state.epoch_batch >= r->n_batches;
    int due = r->o.eval_every > 0 ? s->eval_due : epoch_end && !stopped(r);
    ss_status st = due ? evaluate(r, err) : SS_OK;
    if (!st && s->save_due) st = save_checkpoint(r, err);
    return st;
}

static ss_status on_stop(void *ctx, ss_error *err) { return save_checkpoint(ctx, err); }

/* What was read: rows per split, skipped rows, classes, truncation. */
static void data_note(ft_run *r) {
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "data: train %zu rows, dev %zu", r->train.rows.n, r->dev.rows.n);
    if (r->test.path) n += snprintf(msg + n, sizeof msg - (size_t)n, ", test %zu", r->test.rows.n);
    n += snprintf(msg + n, sizeof msg - (size_t)n, "; %d classes (%s ... %s); %zu train %s cut to %d tokens",
                  r->labels.n, r->labels.names[0], r->labels.names[r->labels.n - 1], r->train.seqs.n_truncated,
                  r->n_prompts > 1 ? "sequences (rows x templates)" : "texts", r->fmt.max_seq);
    note(r, msg);
    int R = ss_dist_size(), G = (int)r->state.shards;
    if (R > 1 || G > 1) {
        snprintf(msg, sizeof msg, "data parallel: %d rank%s (%s); each batch in %d shards, %d per rank, gradients "
                 "summed in a fixed order%s%s; dev evaluated in %d parts", R, R > 1 ? "s" : "", ss_dist_name(), G,
                 G / R, R > 1 ? ", across the ranks " : "",
                 R > 1 ? ss_engine_reduction_name(r->o.freeze_encoder ? 0 : G, !r->o.freeze_encoder && r->o.comm_overlap)
                       : "", G);
        note(r, msg);
    }
    ft_split *s[3] = {&r->train, &r->dev, &r->test};
    for (int i = 0; i < 3; i++) {
        if (!s[i]->path || !s[i]->rows.n_bad) continue;
        snprintf(msg, sizeof msg, "skipped %zu malformed rows of %s (first: %s)", s[i]->rows.n_bad, s[i]->path,
                 s[i]->rows.first_bad);
        note(r, msg);
    }
}

/* Steps: ceil(batches per epoch / grad_accum) per epoch (the last step of
 * an epoch may take fewer batches); warmup: a share of them. A resumed run
 * replans the epoch it was in and continues at its batch. */
static ss_status plan(ft_run *r, ss_error *err) {
    const ss_finetune_opts *o = &r->o;
    int64_t batches = (int64_t)((r->train.seqs.n + (size_t)o->batch - 1) / (size_t)o->batch); /* rows x templates */
    r->total_steps = (batches + o->grad_accum - 1) / o->grad_accum * o->epochs;
    r->warmup = (int64_t)llround(o->warmup_ratio * (double)r->total_steps);
    ss_rng_seed(&r->rng, o->seed ^ 0xF17E7u);
    if (o->unfreeze_every > 0 && !o->resume) {
        int64_t top = ss_model_config_of(r->model)->n_layer + 1;
        int64_t all = o->unfreeze_every > INT64_MAX / top ? INT64_MAX : top * o->unfreeze_every; /* no overflow */
        char msg[256];
        snprintf(msg, sizeof msg, "gradual unfreezing: the head alone for %" PRId64 " steps, then one block more every "
                 "%" PRId64 ", everything from step %" PRId64 "%s", o->unfreeze_every, o->unfreeze_every, all,
                 all >= r->total_steps ? " (after the run's last step: the lowest layers never train)" : "");
        note(r, msg);
    }
    if (!o->resume || r->state.epoch == 0) return SS_OK;
    ss_status st = ss_rng_state_set(&r->rng, r->state.data_rng, err);
    if (st) return st;
    ft_plan_epoch(r);
    if (r->state.epoch_batch > (int64_t)r->n_batches || r->state.step > r->total_steps)
        return ss_fail(err, SS_ERR_FORMAT, "%s/checkpoint: its position (step %" PRId64 ", batch %" PRId64
                       ") does not fit this data", o->out_dir, r->state.step, r->state.epoch_batch);
    char msg[256];
    snprintf(msg, sizeof msg, "resumed %s at step %" PRId64 " (epoch %" PRId64 ")", o->out_dir, r->state.step,
             r->state.epoch);
    note(r, msg);
    return SS_OK;
}

static ss_status train_loop(ft_run *r, ss_error *err) {
    const ss_finetune_opts *o = &r->o;
    r->eng = (ss_engine){
        .c = {.lr = o->lr, .weight_decay = o->weight_decay, .layer_decay = o->layer_decay, .clip = o->clip,
              .beta1 = o->beta1, .beta2 = o->beta2,
              .eps = o->eps, .schedule = SS_SCHED_LINEAR, .warmup = r->warmup, .sched_steps = r->total_steps,
              .total_steps = r->total_steps, .grad_accum = o->grad_accum, .max_bad_steps = o->max_bad_steps,
              .comm_overlap = o->comm_overlap,
              .log_every = o->log_every, .eval_every = o->eval_every, .save_every = o->save_every,
              .first = r->first_trained, .shards = (int)r->state.shards,
              .fail_note = "The best weights so far are in the output directory.", .stop = o->stop},
        .tm = &r->tm, .st = &r->state,
        .h = {.ctx = r, .n_stats = 2, .micro_count = micro_count, .prepare = prepare, .micro = micro,
              .after_step = after_step, .done = done, .frozen_below = frozen_below, .on_stop = on_stop}};
    ss_status st = ss_engine_run(&r->eng, err);
    if (!st && patience_out(r)) note(r, "early stop: no dev improvement");
    if (!st && !r->state.have_best) st = evaluate(r, err); /* stopped before the first evaluation */
    return st;
}

/* The best weights back in the model, measured on dev (and test). */
static ss_status finish(ft_run *r, ss_finetune_result *res, ss_error *err) {
    memcpy(ss_model_params(r->model), r->best, ss_model_num_params(r->model) * sizeof(float));
    ss_gemm_weights_changed(); /* the bf16 copies of the weights were the last step's */
    res->best_step = r->state.best_step;
    res->best_epoch = (int)r->state.best_epoch;
    res->steps = r->state.step;
    res->train_rows = r->train.rows.n;
    res->train_bad_rows = r->train.rows.n_bad;
    ss_status st = ft_eval_split(r, &r->dev, &res->dev, err);
    if (!st && r->test.path) st = ft_eval_split(r, &r->test, &res->test, err);
    if (!st) st = ft_write_eval_json(r, res, err);
    return st;
}

static void free_run(ft_run *r) {
    ss_run_unlock(r->lock_fd);
    ft_free_data(r);
    for (int i = 0; i < r->n_prompts; i++) ss_prompt_free(r->prompts[i]);
    free(r->prompts);
    free(r->verb_ids);
    free(r->verb_labels);
    free(r->positions);
    ss_model_free(r->tm.model);
    ss_tokenizer_free(r->tok);
    ss_adamw_free(&r->tm.opt);
    free(r->best);
    free(r->saved_strings);
    free(r->opts_json);
    ss_error ignore;
    ss_metrics_close(r->metrics, &ignore);
}

ss_status ss_finetune(const ss_finetune_opts *o, ss_finetune_result *res, ss_finetune_progress_fn fn, void *ctx,
                      ss_error *err) {
    memset(res, 0, sizeof *res);
    ss_status st = ss_finetune_opts_check(o, err);
    if (st) return st;
    if (o->unlabeled)
        return ss_fail(err, SS_ERR_ARG, "unlabelled texts are for self-training (ss_selftrain, selfsup/selftrain.h)");
    ft_run r = {.o = *o, .fn = fn, .ctx = ctx, .lock_fd = -1};
    if (o->resume) st = load_checkpoint(&r, err);
    char pmsg[512];
    if (!st) st = ss_engine_precision(r.o.precision, o->resume, &r.state, pmsg, sizeof pmsg, err);
    if (!st) note(&r, pmsg);
    int shards = 0;
    if (!st) st = ss_engine_shards(r.o.shards, o->resume ? r.state.shards : 0, r.o.batch, "--batch", &shards, pmsg,
                                   sizeof pmsg, err);
    if (!st && pmsg[0]) note(&r, pmsg);
    r.state.shards = shards;
    if (!st) st = ft_load_data(&r, err);
    if (!st) st = setup_model(&r, err);
    if (!st) st = ft_encode_data(&r, err);
    if (!st && o->resume) st = load_best(&r, err);
    if (!st) st = setup_output(&r, err);
    if (!st && !(r.opts_json = ss_finetune_opts_to_json(&r.o))) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = plan(&r, err);
    if (!st) {
        r.t0 = omp_get_wtime() - r.state.elapsed;
        data_note(&r);
        st = train_loop(&r, err);
    }
    if (!st) st = finish(&r, res, err);
    if (!st && !stopped(&r)) remove_checkpoint(&r);
    free_run(&r);
    if (st) ss_finetune_result_free(res);
    return st;
}

void ss_finetune_result_free(ss_finetune_result *r) {
    ss_class_metrics_free(&r->dev);
    ss_class_metrics_free(&r->test);
}
