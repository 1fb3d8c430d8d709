/* The three pretraining objectives, one micro-batch at a time:
 *   clm  random windows, next-token loss on every position (decoder)
 *   mlm  packed documents, BERT masking, loss on the masked positions (encoder + MLM head)
 *   rtd  ELECTRA: a small MLM generator proposes tokens for the masked
 *        positions; the discriminator tells, for every real token, whether
 *        it was replaced. loss = gen_mlm + disc_weight * disc_bce
 * plus model creation, evaluation and FLOPs per token for each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/encoder_eval.h"
#include "selfsup/path.h"
#include "trainer_internal.h"

uint64_t obj_step_seed(const trainer *t, int micro) {
    return (t->o.seed + 0x9E3779B97F4A7C15ull * (uint64_t)(t->state.step + 1)) ^ ((uint64_t)micro << 48);
}

ss_status obj_setup(trainer *t, ss_error *err) {
    size_t n = (size_t)t->o.batch * t->o.seq;
    t->tokens = malloc(n * sizeof(int32_t));
    t->targets = malloc(n * sizeof(int32_t));
    t->samples = malloc(n * sizeof(int32_t));
    t->key_valid = malloc(n);
    t->replaced = malloc(n);
    if (!t->tokens || !t->targets || !t->samples || !t->key_valid || !t->replaced)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (t->o.objective == SS_OBJ_CLM) return SS_OK;
    char path[SS_PATH_MAX];
    ss_tokenizer *tok;
    ss_status st = ss_path_join(path, sizeof path, t->o.data_dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_tokenizer_load(&tok, path, err);
    if (st) return st;
    st = ss_mlm_config_from_tokenizer(&t->mlm, tok, err);
    ss_tokenizer_free(tok);
    if (st) return ss_error_prefix(err, "%s: ", path);
    t->mlm.mask_prob = t->o.mask_prob;
    t->mlm.mask_replace = t->o.mask_replace;
    t->mlm.mask_random = t->o.mask_random;
    t->mlm.whole_word = t->o.whole_word;
    if ((st = ss_mlm_config_check(&t->mlm, err))) return st;
    if (t->o.seq < 3) return ss_fail(err, SS_ERR_ARG, "--seq must be at least 3 for [CLS] token [SEP]");
    st = ss_doc_index_build(&t->train_docs, &t->train, err);
    if (!st) st = ss_doc_index_build(&t->val_docs, &t->val, err);
    return st;
}

void obj_free(trainer *t) {
    free(t->tokens); free(t->targets); free(t->samples); free(t->key_valid); free(t->replaced);
    ss_doc_index_free(&t->train_docs);
    ss_doc_index_free(&t->val_docs);
    ss_mlm_config_free(&t->mlm);
}

/* The generator of an RTD run: gen_size times the discriminator's width,
 * heads and MLP, same depth, reading the discriminator's embeddings (E = C). */
static ss_model_config generator_config(const ss_model_config *d, double gs) {
    ss_model_config g = *d;
    g.n_head = (int)lround(d->n_head * gs) > 0 ? (int)lround(d->n_head * gs) : 1;
    int per_head = (int)lround(d->d_model * gs / g.n_head);
    g.d_model = (per_head > 0 ? per_head : 1) * g.n_head;
    g.d_ff = (int)lround(d->d_ff * gs) > 0 ? (int)lround(d->d_ff * gs) : 1;
    g.d_embed = d->d_model;
    g.head = SS_HEAD_MLM;
    return g;
}

ss_status obj_create_models(trainer *t, ss_error *err) {
    ss_model_config *c = &t->o.model;
    ss_train_models *tm = &t->tm;
    c->head = t->o.objective == SS_OBJ_MLM ? SS_HEAD_MLM : t->o.objective == SS_OBJ_RTD ? SS_HEAD_DISC : SS_HEAD_LM;
    if (t->o.objective != SS_OBJ_CLM && c->kind != SS_ENCODER)
        return ss_fail(err, SS_ERR_ARG, "objective %s trains an encoder (--kind encoder)", ss_objective_name(t->o.objective));
    if (t->o.objective == SS_OBJ_RTD && !(t->o.gen_size > 0 && t->o.gen_size <= 1))
        return ss_fail(err, SS_ERR_ARG, "--gen-size %g must be in (0, 1]", t->o.gen_size);
    ss_status st = ss_model_create(&tm->model, c, err);
    if (st) return st;
    ss_model_init_weights(tm->model, t->o.seed);
    st = ss_adamw_init(&tm->opt, ss_model_num_params(tm->model), err);
    if (st || t->o.objective != SS_OBJ_RTD) return st;
    ss_model_config g = ss_electra_generator_config(c, t->o.gen_size);
    st = ss_model_create_shared(&tm->gen, &g, tm->model, err);
    if (!st) ss_model_init_weights(tm->gen, t->o.seed + 1);
    if (!st) st = ss_adamw_init(&tm->gen_opt, ss_model_num_params(tm->gen), err);
    return st;
}

static ss_status clm_micro(trainer *t, int micro, float scale, step_stats *s, ss_error *err) {
    int B = t->o.batch, T = t->o.seq;
    ss_clm_sample(&t->train, &t->data_rng, B, T, t->tokens, t->targets);
    ss_batch b = {t->tokens, t->targets, NULL, B, T};
    ss_loss_stats ls;
    ss_status st = ss_model_forward_backward(t->tm.model, &b, scale / (float)(B * T), obj_step_seed(t, micro), &ls, err);
    s->loss += ls.loss_sum / (double)ls.n_targets * scale;
    s->tokens += (int64_t)B * T;
    return st;
}

/* One packed, masked batch into tokens/key_valid/targets; returns #masked. */
static size_t masked_batch(trainer *t, int64_t *real_tokens) {
    int B = t->o.batch, T = t->o.seq;
    ss_mlm_pack_random(&t->train_docs, &t->mlm, &t->data_rng, B, T, t->tokens, t->key_valid);
    for (int i = 0; i < B * T; i++) *real_tokens += t->key_valid[i];
    return ss_mlm_mask(&t->mlm, &t->data_rng, B, T, t->tokens, t->key_valid, t->targets);
}

static ss_status mlm_micro(trainer *t, int micro, float scale, step_stats *s, ss_error *err) {
    size_t nm = masked_batch(t, &s->tokens);
    ss_batch b = {t->tokens, t->targets, t->key_valid, t->o.batch, t->o.seq};
    ss_loss_stats ls;
    ss_status st = ss_model_forward_backward(t->tm.model, &b, scale / (float)nm, obj_step_seed(t, micro), &ls, err);
    s->loss += ls.loss_sum / (double)nm * scale;
    s->mlm_acc += (double)ls.n_correct / (double)nm * scale;
    return st;
}

/* Generator: MLM loss on the masked batch, and samples for the masked
 * positions (drawn from its softmax; no gradient flows through them). */
static ss_status rtd_generator(trainer *t, int micro, float scale, size_t nm, step_stats *s, ss_error *err) {
    ss_model *g = t->tm.gen;
    if (t->o.rtd_generator == SS_RTD_GEN_UNIFORM) { /* the sanity check: context-free replacements */
        size_t n = (size_t)t->o.batch * t->o.seq, n_ord = t->mlm.n_ordinary;
        for (size_t i = 0; i < n; i++)
            if (t->targets[i] >= 0) t->samples[i] = t->mlm.ordinary[ss_rng_below(&t->data_rng, n_ord)];
        return SS_OK;
    }
    ss_loss_stats ls;
    ss_status st = ss_model_body_forward(g, t->tokens, t->key_valid, t->o.batch, t->o.seq, 1,
                                         obj_step_seed(t, micro) ^ 0x6E6ull, NULL, err);
    if (!st) st = ss_lm_head_sample(g, t->targets, scale / (float)nm, 1, &t->data_rng, t->samples, &ls, err);
    if (st) return st;
    ss_model_body_backward(g);
    s->gen_loss += ls.loss_sum / (double)nm * scale;
    s->loss += ls.loss_sum / (double)nm * scale; /* total = gen + w * disc */
    s->mlm_acc += (double)ls.n_correct / (double)nm * scale;
    return SS_OK;
}

static ss_status rtd_micro(trainer *t, int micro, float scale, step_stats *s, ss_error *err) {
    int64_t before = s->tokens;
    size_t nm = masked_batch(t, &s->tokens), n = (size_t)t->o.batch * t->o.seq;
    int64_t real = s->tokens - before;
    ss_status st = rtd_generator(t, micro, scale, nm, s, err);
    if (st) return st;
    /* the discriminator's input: samples in place of the masked tokens;
     * a sample equal to the original counts as original */
    for (size_t i = 0; i < n; i++) {
        if (t->targets[i] >= 0) t->tokens[i] = t->samples[i];
        t->replaced[i] = t->targets[i] >= 0 && t->samples[i] != t->targets[i];
    }
    ss_model *d = t->tm.model;
    ss_disc_stats ds;
    float w = (float)t->o.disc_weight;
    st = ss_model_body_forward(d, t->tokens, t->key_valid, t->o.batch, t->o.seq, 1, obj_step_seed(t, micro), NULL, err);
    if (!st) st = ss_disc_head(d, t->key_valid, t->replaced, w * scale / (float)real, 1, NULL, &ds, err);
    if (st) return st;
    ss_model_body_backward(d);
    double dl = ds.loss_sum / (double)ds.n;
    s->disc_loss += dl * scale;
    s->loss += (ds.loss_sum / (double)ds.n * w) * scale;
    s->disc_acc += (double)ds.correct / (double)ds.n * scale;
    s->disc_precision += (ds.tp + ds.fp ? (double)ds.tp / (double)(ds.tp + ds.fp) : 0) * scale;
    s->disc_recall += (ds.positives ? (double)ds.tp / (double)ds.positives : 0) * scale;
    return SS_OK;
}

ss_status obj_micro_step(trainer *t, int micro, float scale, step_stats *s, ss_error *err) {
    switch (t->o.objective) {
    case SS_OBJ_MLM: return mlm_micro(t, micro, scale, s, err);
    case SS_OBJ_RTD: return rtd_micro(t, micro, scale, s, err);
    default: return clm_micro(t, micro, scale, s, err);
    }
}

ss_status obj_evaluate(trainer *t, ss_eval_result *r, ss_error *err) {
    if (t->o.objective == SS_OBJ_CLM)
        return ss_evaluate_clm(t->tm.model, &t->val, t->o.batch, t->o.seq, t->o.eval_tokens, NULL, NULL, r, err);
    ss_model *mlm = t->o.objective == SS_OBJ_RTD ? t->tm.gen : t->tm.model;
    ss_model *disc = t->o.objective == SS_OBJ_RTD ? t->tm.model : NULL;
    return ss_evaluate_encoder(mlm, disc, disc && t->o.rtd_generator == SS_RTD_GEN_UNIFORM, &t->val_docs, &t->mlm, t->o.batch, t->o.seq, t->o.eval_tokens, NULL, NULL,
                               r, err);
}

double ss_train_flops_per_token(ss_objective o, const ss_model_config *c, const ss_model_config *g, int T,
                                double mask_prob) {
    /* the LM head runs on every position for clm, on the masked share otherwise */
    if (o == SS_OBJ_CLM) return ss_model_flops_per_token(c, T);
    if (o == SS_OBJ_MLM) return ss_model_body_flops(c, T) + mask_prob * ss_model_head_flops(c);
    return ss_model_body_flops(c, T) + ss_model_head_flops(c) + ss_model_body_flops(g, T) +
           mask_prob * ss_model_head_flops(g);
}

double obj_flops_per_token(const trainer *t) {
    return ss_train_flops_per_token(t->o.objective, ss_model_config_of(t->tm.model),
                                    t->tm.gen ? ss_model_config_of(t->tm.gen) : NULL, t->o.seq, t->o.mask_prob);
}

ss_model_config ss_electra_generator_config(const ss_model_config *disc, double gen_size) {
    return generator_config(disc, gen_size);
}
