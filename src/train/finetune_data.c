/* Fine-tuning data: the labelled splits, the label map (from train), class
 * weights, token sequences, and each epoch's length-bucketed batches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune_internal.h"

static ss_status read_split(ft_split *s, const char *path, const ss_labeled_opts *o, ss_error *err) {
    s->path = path;
    ss_labeled_opts lo = *o;
    lo.need_label = 1;
    ss_status st = ss_labeled_read(&s->rows, path, &lo, err);
    if (!st && s->rows.n == 0) st = ss_fail(err, SS_ERR_FORMAT, "%s: no rows", path);
    return st;
}

static ss_status apply_labels(ft_run *r, ft_split *s, ss_error *err) {
    if (!s->path) return SS_OK;
    s->y = malloc((s->rows.n ? s->rows.n : 1) * sizeof(int32_t));
    if (!s->y) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    return ss_label_map_apply(&r->labels, &s->rows, s->path, s->y, err);
}

/* "balanced": n / (K * count_k), sklearn's rule; or "w0,w1,..." in label order. */
static ss_status class_weights(ft_run *r, ss_error *err) {
    const char *spec = r->o.class_weights;
    int K = r->labels.n;
    if (!spec) return SS_OK;
    if (!(r->class_w = calloc((size_t)K, sizeof(float)))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (strcmp(spec, "balanced") == 0) {
        for (size_t i = 0; i < r->train.rows.n; i++) r->class_w[r->train.y[i]] += 1.0f;
        for (int k = 0; k < K; k++)
            r->class_w[k] = r->class_w[k] > 0 ? (float)r->train.rows.n / ((float)K * r->class_w[k]) : 0.0f;
        return SS_OK;
    }
    const char *p = spec;
    for (int k = 0; k < K; k++) {
        char *end;
        double w = strtod(p, &end);
        if (end == p || !(w >= 0) || !isfinite(w) || (k < K - 1 ? *end != ',' : *end != '\0'))
            return ss_fail(err, SS_ERR_ARG, "--class-weights '%s': give 'balanced' or %d non-negative numbers "
                           "separated by commas, in label order", spec, K);
        r->class_w[k] = (float)w;
        p = end + 1;
    }
    return SS_OK;
}

ss_status ss_finetune_train_subset(ss_labeled_set *rows, const ss_label_map *m, const ss_finetune_opts *o,
                                   ss_error *err) {
    if (o->train_size > 0) {
        if ((size_t)o->train_size > rows->n)
            return ss_fail(err, SS_ERR_ARG, "--train-size %zu exceeds the %zu rows of %s", (size_t)o->train_size,
                           rows->n, o->train_path);
        ss_labeled_subsample(rows, (size_t)o->train_size, o->seed);
    } else if (o->per_class > 0) {
        ss_status st = ss_labeled_subsample_per_class(rows, m, (size_t)o->per_class, o->seed, o->train_path, err);
        if (st) return ss_error_prefix(err, "--per-class: ");
    }
    return SS_OK;
}

ss_status ft_load_data(ft_run *r, ss_error *err) {
    const ss_finetune_opts *o = &r->o;
    ss_labeled_opts table = {.text_column = o->text_column, .label_column = o->label_column, .format = o->format,
                             .skip_bad_rows = o->skip_bad_rows};
    ss_status st = read_split(&r->train, o->train_path, &table, err);
    if (!st) st = read_split(&r->dev, o->dev_path, &table, err);
    if (!st && o->test_path) st = read_split(&r->test, o->test_path, &table, err);
    if (st) return st;
    ft_split *split[3] = {&r->train, &r->dev, &r->test}; /* read as the classifier will read */
    for (int i = 0; i < 3; i++)
        for (size_t j = 0; split[i]->path && j < split[i]->rows.n; j++)
            ss_text_normalize(split[i]->rows.texts[j], o->detokenize);
    /* classes from every training row, so a small subset cannot lose one */
    if ((st = ss_label_map_build(&r->labels, &r->train.rows, o->train_path, err))) return st;
    if ((st = ss_finetune_train_subset(&r->train.rows, &r->labels, o, err))) return st;
    st = apply_labels(r, &r->train, err);
    if (!st) st = apply_labels(r, &r->dev, err);
    if (!st) st = apply_labels(r, &r->test, err);
    if (!st) st = class_weights(r, err);
    return st;
}

/* Prompt-based: the split's rows through each template in turn (ft_split). */
static ss_status encode_prompts(ft_run *r, ft_split *s, ss_error *err) {
    size_t n = s->rows.n;
    ss_status st = (s->pos = malloc((n ? n : 1) * (size_t)r->n_prompts * sizeof(int32_t))) ? SS_OK
                 : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (int t = 0; t < r->n_prompts && !st; t++) {
        ss_seqs one;
        int32_t *pos;
        if ((st = ss_prompt_encode(r->prompts[t], s->rows.texts, n, &one, &pos, err))) break;
        st = ss_seqs_append(&s->seqs, &one, err);
        if (!st) memcpy(s->pos + (size_t)t * n, pos, n * sizeof(int32_t));
        ss_seqs_free(&one);
        free(pos);
    }
    return st;
}

ss_status ft_encode_data(ft_run *r, ss_error *err) {
    ft_split *s[3] = {&r->train, &r->dev, &r->test};
    for (int i = 0; i < 3; i++) {
        if (!s[i]->path) continue;
        ss_status st = r->n_prompts ? encode_prompts(r, s[i], err)
                                    : ss_seqs_encode(&s[i]->seqs, r->tok, &r->fmt, s[i]->rows.texts, s[i]->rows.n, err);
        if (st) return ss_error_prefix(err, "%s: ", s[i]->path);
    }
    size_t n = r->train.seqs.n, B = (size_t)r->o.batch, T = (size_t)r->fmt.max_seq;
    r->order = malloc(n * sizeof(size_t));
    r->batch_at = malloc((n / B + 1) * sizeof(size_t));
    r->batch_len = malloc((n / B + 1) * sizeof(int));
    r->tokens = malloc(B * T * sizeof(int32_t));
    r->batch_y = malloc(B * sizeof(int32_t));
    r->valid = malloc(B * T);
    if (!r->order || !r->batch_at || !r->batch_len || !r->tokens || !r->batch_y || !r->valid)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    return SS_OK;
}

static void free_split(ft_split *s) {
    ss_labeled_free(&s->rows);
    ss_seqs_free(&s->seqs);
    free(s->pos);
    free(s->y);
}

void ft_free_data(ft_run *r) {
    free_split(&r->train);
    free_split(&r->dev);
    free_split(&r->test);
    ss_label_map_free(&r->labels);
    free(r->class_w);
    free(r->order);
    free(r->batch_at);
    free(r->batch_len);
    free(r->tokens);
    free(r->batch_y);
    free(r->valid);
}

static int by_length(const void *a, const void *b, void *seqs) {
    size_t la = ss_seqs_len(seqs, *(const size_t *)a), lb = ss_seqs_len(seqs, *(const size_t *)b);
    return (la > lb) - (la < lb);
}

static void shuffle(size_t *v, size_t n, ss_rng *rng) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)ss_rng_below(rng, i), tmp = v[i - 1];
        v[i - 1] = v[j];
        v[j] = tmp;
    }
}

/* Shuffle, sort each window of 50 batches by length, cut into batches, and
 * shuffle the batch order: batches hold texts of similar length (little
 * padding) while every epoch still sees a fresh random order. */
void ft_plan_epoch(ft_run *r) {
    size_t n = r->train.seqs.n, B = (size_t)r->o.batch, W = 50 * B;
    for (size_t i = 0; i < n; i++) r->order[i] = i;
    shuffle(r->order, n, &r->rng);
    for (size_t i = 0; i < n; i += W)
        qsort_r(r->order + i, n - i < W ? n - i : W, sizeof(size_t), by_length, &r->train.seqs);
    r->n_batches = 0;
    for (size_t i = 0; i < n; i += B) {
        r->batch_at[r->n_batches] = i;
        r->batch_len[r->n_batches++] = (int)(n - i < B ? n - i : B);
    }
    for (size_t i = r->n_batches; i > 1; i--) { /* shuffle batches (pairs of start, length) */
        size_t j = (size_t)ss_rng_below(&r->rng, i), a = r->batch_at[i - 1];
        int l = r->batch_len[i - 1];
        r->batch_at[i - 1] = r->batch_at[j];
        r->batch_len[i - 1] = r->batch_len[j];
        r->batch_at[j] = a;
        r->batch_len[j] = l;
    }
}
