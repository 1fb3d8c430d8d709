/* Texts as the token sequences a classifier reads, padded batches of them,
 * and batched class probabilities. */
#include <stdlib.h>
#include <string.h>

#include "selfsup/textseq.h"

static ss_status special_id(const ss_tokenizer *tok, const char *name, int32_t *id, ss_error *err) {
    *id = ss_tokenizer_token_id(tok, name);
    if (*id < 0) return ss_fail(err, SS_ERR_NOT_FOUND, "the tokenizer has no %s token", name);
    return SS_OK;
}

ss_status ss_text_format_init(ss_text_format *f, const ss_tokenizer *tok, ss_model_kind kind, int max_seq,
                              ss_error *err) {
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->max_seq = max_seq;
    if (max_seq < 3) return ss_fail(err, SS_ERR_ARG, "max_seq %d is too short (at least 3)", max_seq);
    if (kind == SS_DECODER) {
        ss_status st = special_id(tok, "<|endoftext|>", &f->end_id, err);
        f->pad_id = f->end_id; /* padding is never read: causal attention, last-position pooling */
        f->cls_id = f->sep_id = -1;
        return st;
    }
    ss_status st = special_id(tok, "[CLS]", &f->cls_id, err);
    if (!st) st = special_id(tok, "[SEP]", &f->sep_id, err);
    if (!st) st = special_id(tok, "[PAD]", &f->pad_id, err);
    f->end_id = -1;
    return st;
}

void ss_seqs_free(ss_seqs *s) {
    free(s->ids);
    free(s->off);
    memset(s, 0, sizeof *s);
}

/* Append one text's sequence to s (ids grown geometrically by ss_ids). */
static ss_status encode_one(ss_tokenizer *tok, const ss_text_format *f, const char *text, ss_ids *all,
                            ss_ids *tmp, size_t *n_truncated, ss_error *err) {
    tmp->n = 0;
    ss_status st = ss_tokenizer_encode(tok, text, strlen(text), 0, tmp, err);
    if (st) return st;
    size_t room = (size_t)f->max_seq - (f->kind == SS_ENCODER ? 2 : 1), n = tmp->n;
    if (n > room) {
        n = room;
        (*n_truncated)++;
    }
    if (f->kind == SS_ENCODER && (st = ss_ids_push(all, f->cls_id, err))) return st;
    for (size_t i = 0; i < n && !st; i++) st = ss_ids_push(all, tmp->ids[i], err);
    if (!st) st = ss_ids_push(all, f->kind == SS_ENCODER ? f->sep_id : f->end_id, err);
    return st;
}

ss_status ss_seqs_encode(ss_seqs *out, ss_tokenizer *tok, const ss_text_format *f, char *const *texts, size_t n,
                         ss_error *err) {
    memset(out, 0, sizeof *out);
    ss_ids all = {0}, tmp = {0};
    out->off = malloc((n + 1) * sizeof(size_t));
    if (!out->off) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = SS_OK;
    out->off[0] = 0;
    for (size_t i = 0; i < n && !st; i++) {
        st = encode_one(tok, f, texts[i], &all, &tmp, &out->n_truncated, err);
        out->off[i + 1] = all.n;
    }
    ss_ids_free(&tmp);
    out->ids = all.ids;
    out->n = n;
    if (st) ss_seqs_free(out);
    return st;
}

ss_status ss_seqs_append(ss_seqs *dst, const ss_seqs *src, ss_error *err) {
    size_t have = dst->n ? dst->off[dst->n] : 0, add = src->n ? src->off[src->n] : 0;
    int32_t *ids = realloc(dst->ids, (have + add + 1) * sizeof(int32_t));
    if (ids) dst->ids = ids;
    size_t *off = ids ? realloc(dst->off, (dst->n + src->n + 1) * sizeof(size_t)) : NULL;
    if (!off) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    dst->off = off;
    if (add) memcpy(dst->ids + have, src->ids, add * sizeof(int32_t));
    off[0] = dst->n ? off[0] : 0;
    for (size_t i = 0; i < src->n; i++) off[dst->n + i + 1] = have + src->off[i + 1];
    dst->n += src->n;
    dst->n_truncated += src->n_truncated;
    return SS_OK;
}

int ss_seqs_batch(const ss_seqs *s, const size_t *idx, int B, int32_t pad_id, int32_t *tokens, uint8_t *key_valid) {
    int T = 1;
    for (int b = 0; b < B; b++)
        if ((int)ss_seqs_len(s, idx[b]) > T) T = (int)ss_seqs_len(s, idx[b]);
    for (int b = 0; b < B; b++) {
        size_t len = ss_seqs_len(s, idx[b]);
        const int32_t *src = s->ids + s->off[idx[b]];
        for (int t = 0; t < T; t++) {
            int real = (size_t)t < len;
            tokens[(size_t)b * T + t] = real ? src[t] : pad_id;
            key_valid[(size_t)b * T + t] = (uint8_t)real;
        }
    }
    return T;
}

static int by_length(const void *a, const void *b, void *seqs) {
    size_t la = ss_seqs_len(seqs, *(const size_t *)a), lb = ss_seqs_len(seqs, *(const size_t *)b);
    if (la != lb) return la < lb ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : *(const size_t *)a > *(const size_t *)b;
}

/* Sequences sorted by length go through in batches, so padding is small;
 * each row's probabilities land at its own index. */
ss_status ss_classify_seqs(ss_model *m, const ss_seqs *s, int batch, int32_t pad_id, float *probs, ss_error *err) {
    int K = ss_model_config_of(m)->n_classes, T = ss_model_config_of(m)->max_seq;
    /* the batch buffers hold batch x max_seq tokens: refuse what would overflow them */
    if (batch < 1) return ss_fail(err, SS_ERR_ARG, "classification batch %d must be >= 1", batch);
    for (size_t i = 0; i < s->n; i++)
        if (ss_seqs_len(s, i) > (size_t)T)
            return ss_fail(err, SS_ERR_ARG, "sequence %zu has %zu tokens, more than the model's max_seq %d", i,
                           ss_seqs_len(s, i), T);
    size_t *order = malloc((s->n ? s->n : 1) * sizeof(size_t));
    int32_t *tokens = malloc((size_t)batch * T * sizeof(int32_t));
    uint8_t *valid = malloc((size_t)batch * T);
    float *p = malloc((size_t)batch * K * sizeof(float));
    ss_status st = order && tokens && valid && p ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < s->n; i++) order[i] = i;
    if (!st) qsort_r(order, s->n, sizeof(size_t), by_length, (void *)s);
    for (size_t i = 0; i < s->n && !st; i += (size_t)batch) {
        int B = s->n - i < (size_t)batch ? (int)(s->n - i) : batch;
        int Tb = ss_seqs_batch(s, order + i, B, pad_id, tokens, valid);
        ss_cls_stats cs;
        st = ss_model_body_forward(m, tokens, valid, B, Tb, 0, 0, NULL, err);
        if (!st) st = ss_cls_head(m, valid, NULL, NULL, 0.0f, 0, p, &cs, err);
        for (int b = 0; b < B && !st; b++) memcpy(probs + order[i + b] * K, p + (size_t)b * K, K * sizeof(float));
    }
    free(order);
    free(tokens);
    free(valid);
    free(p);
    return st;
}
