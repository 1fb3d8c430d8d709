/* Masked-LM batches: the special-token tables, the document index, packing
 * documents into [CLS] doc [SEP] ... sequences, and BERT's masking. */
#include <stdlib.h>
#include <string.h>

#include "selfsup/mlm.h"

/* ---- Configuration ---------------------------------------------------------------- */
static const char *const mlm_token_names[4] = {"[CLS]", "[SEP]", "[PAD]", "[MASK]"};

ss_status ss_mlm_config_from_tokenizer(ss_mlm_config *cfg, const ss_tokenizer *t, ss_error *err) {
    memset(cfg, 0, sizeof *cfg);
    int32_t *ids[4] = {&cfg->cls_id, &cfg->sep_id, &cfg->pad_id, &cfg->mask_id};
    for (int i = 0; i < 4; i++) {
        *ids[i] = ss_tokenizer_token_id(t, mlm_token_names[i]);
        if (*ids[i] < 0)
            return ss_fail(err, SS_ERR_NOT_FOUND,
                           "the tokenizer has no %s token; masked-LM batches need [CLS], [SEP], [PAD] and "
                           "[MASK]: train the tokenizer with the default special tokens "
                           "('selfsup tokenizer train' without --special-tokens)",
                           mlm_token_names[i]);
    }
    size_t V = ss_tokenizer_vocab_size(t);
    if (V > INT32_MAX) return ss_fail(err, SS_ERR_RANGE, "vocab size %zu is too large", V);
    cfg->vocab_size = (int)V;
    cfg->is_special = malloc(V);
    cfg->word_start = malloc(V);
    cfg->ordinary = malloc(V * sizeof(int32_t));
    if (!cfg->is_special || !cfg->word_start || !cfg->ordinary) {
        ss_mlm_config_free(cfg);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for masked-LM tables (vocab %zu)", V);
    }
    for (size_t id = 0; id < V; id++) {
        cfg->is_special[id] = ss_tokenizer_is_special(t, (int32_t)id) ? 1 : 0;
        cfg->word_start[id] = ss_tokenizer_starts_word(t, (int32_t)id) ? 1 : 0;
    }
    for (int i = 0; i < 4; i++) cfg->is_special[*ids[i]] = 1; /* even if added as non-special */
    for (size_t id = 0; id < V; id++)
        if (!cfg->is_special[id]) cfg->ordinary[cfg->n_ordinary++] = (int32_t)id;
    if (cfg->n_ordinary == 0) {
        ss_mlm_config_free(cfg);
        return ss_fail(err, SS_ERR_FORMAT, "the tokenizer has only special tokens: nothing to mask");
    }
    cfg->mask_prob = 0.15f;
    cfg->mask_replace = 0.8f;
    cfg->mask_random = 0.1f;
    cfg->gen_temperature = 1.0f;
    return SS_OK;
}

void ss_mlm_config_free(ss_mlm_config *cfg) {
    free(cfg->is_special);
    free(cfg->word_start);
    free(cfg->ordinary);
    cfg->is_special = cfg->word_start = NULL;
    cfg->ordinary = NULL;
    cfg->n_ordinary = 0;
}

ss_status ss_mlm_config_check(const ss_mlm_config *cfg, ss_error *err) {
    /* written so that NaN fails every test */
    if (!(cfg->mask_prob > 0.0f && cfg->mask_prob <= 1.0f))
        return ss_fail(err, SS_ERR_ARG, "mask probability %g must be in (0, 1]", (double)cfg->mask_prob);
    if (!(cfg->mask_replace >= 0.0f && cfg->mask_replace <= 1.0f))
        return ss_fail(err, SS_ERR_ARG, "mask-replace share %g must be in [0, 1]", (double)cfg->mask_replace);
    if (!(cfg->mask_random >= 0.0f && cfg->mask_random <= 1.0f))
        return ss_fail(err, SS_ERR_ARG, "mask-random share %g must be in [0, 1]", (double)cfg->mask_random);
    if (!(cfg->mask_replace + cfg->mask_random <= 1.0f + 1e-6f))
        return ss_fail(err, SS_ERR_ARG, "mask-replace %g + mask-random %g exceed 1",
                       (double)cfg->mask_replace, (double)cfg->mask_random);
    if (!(cfg->gen_temperature > 0.0f && cfg->gen_temperature <= 100.0f))
        return ss_fail(err, SS_ERR_ARG, "generator temperature %g must be in (0, 100]", (double)cfg->gen_temperature);
    return SS_OK;
}

/* ---- Documents -------------------------------------------------------------------- */
ss_status ss_doc_index_build(ss_doc_index *d, const ss_token_split *s, ss_error *err) {
    memset(d, 0, sizeof *d);
    const int32_t *ids = s->ids;
    int32_t sep = (int32_t)s->separator_id;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) /* a document begins at a non-separator after a separator */
        n += ids[i] != sep && (i == 0 || ids[i - 1] == sep);
    if (n == 0)
        return ss_fail(err, SS_ERR_FORMAT, "the split holds no document tokens (%zu tokens, all separators)", s->n);
    d->start = malloc(n * sizeof(size_t));
    d->len = malloc(n * sizeof(size_t));
    d->cum = malloc((n + 1) * sizeof(size_t));
    if (!d->start || !d->len || !d->cum) {
        ss_doc_index_free(d);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory indexing %zu documents", n);
    }
    size_t k = 0, total = 0;
    for (size_t i = 0; i < s->n;) {
        if (ids[i] == sep) { i++; continue; }
        size_t j = i;
        while (j < s->n && ids[j] != sep) j++;
        d->start[k] = i;
        d->len[k] = j - i;
        d->cum[k++] = total;
        total += j - i;
        i = j;
    }
    d->cum[n] = total;
    d->ids = ids;
    d->n_docs = n;
    return SS_OK;
}

void ss_doc_index_free(ss_doc_index *d) {
    free(d->start);
    free(d->len);
    free(d->cum);
    memset(d, 0, sizeof *d);
}

/* ---- Packing ---------------------------------------------------------------------- */
static void pad_row(const ss_mlm_config *c, int from, int T, int32_t *tok, uint8_t *kv) {
    for (int t = from; t < T; t++) tok[t] = c->pad_id;
    memset(kv + from, 0, (size_t)(T - from));
}

/* [CLS] piece [SEP] [PAD]... for piece `piece` (of T-2 tokens) of a long document. */
static void put_piece(const ss_doc_index *d, const ss_mlm_config *c, size_t doc, size_t piece, int T,
                      int32_t *tok, uint8_t *kv) {
    size_t W = (size_t)T - 2, off = piece * W, n = d->len[doc] - off < W ? d->len[doc] - off : W;
    tok[0] = c->cls_id;
    memcpy(tok + 1, d->ids + d->start[doc] + off, n * sizeof(int32_t));
    tok[n + 1] = c->sep_id;
    memset(kv, 1, n + 2);
    pad_row(c, (int)n + 2, T, tok, kv);
}

/* [CLS] doc [SEP] and the following documents while they fit, then padding.
 * The first document fits (len <= T-2). Returns the next document. */
static size_t pack_docs(const ss_doc_index *d, const ss_mlm_config *c, size_t doc, int T, int32_t *tok,
                        uint8_t *kv) {
    size_t n = 1;
    tok[0] = c->cls_id;
    while (doc < d->n_docs && n + d->len[doc] + 1 <= (size_t)T) {
        memcpy(tok + n, d->ids + d->start[doc], d->len[doc] * sizeof(int32_t));
        n += d->len[doc];
        tok[n++] = c->sep_id;
        doc++;
    }
    memset(kv, 1, n);
    pad_row(c, (int)n, T, tok, kv);
    return doc;
}

/* The document holding document-token number pos: largest d with cum[d] <= pos. */
static size_t doc_of(const ss_doc_index *d, size_t pos) {
    size_t lo = 0, hi = d->n_docs; /* cum[lo] <= pos < cum[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->cum[mid] <= pos) lo = mid;
        else hi = mid;
    }
    return lo;
}

void ss_mlm_pack_random(const ss_doc_index *d, const ss_mlm_config *c, ss_rng *rng, int B, int T,
                        int32_t *tokens, uint8_t *key_valid) {
    size_t W = (size_t)T - 2;
    for (int b = 0; b < B; b++) {
        int32_t *tok = tokens + (size_t)b * T;
        uint8_t *kv = key_valid + (size_t)b * T;
        size_t pos = (size_t)ss_rng_below(rng, d->cum[d->n_docs]), doc = doc_of(d, pos);
        if (d->len[doc] > W) put_piece(d, c, doc, (pos - d->cum[doc]) / W, T, tok, kv);
        else pack_docs(d, c, doc, T, tok, kv);
    }
}

int ss_mlm_pack_sequential(const ss_doc_index *d, const ss_mlm_config *c, uint64_t *cursor, int B,
                           int T, int32_t *tokens, uint8_t *key_valid) {
    size_t W = (size_t)T - 2, doc = (size_t)(*cursor >> 32), piece = (size_t)(*cursor & 0xFFFFFFFFu);
    int b = 0;
    for (; b < B && doc < d->n_docs; b++) {
        int32_t *tok = tokens + (size_t)b * T;
        uint8_t *kv = key_valid + (size_t)b * T;
        if (d->len[doc] > W) {
            put_piece(d, c, doc, piece, T, tok, kv);
            if (++piece * W >= d->len[doc]) doc++, piece = 0;
        } else {
            doc = pack_docs(d, c, doc, T, tok, kv);
            piece = 0;
        }
    }
    for (int r = b; r < B; r++) pad_row(c, 0, T, tokens + (size_t)r * T, key_valid + (size_t)r * T);
    *cursor = (uint64_t)doc << 32 | (uint64_t)piece;
    return b;
}

/* ---- Masking ---------------------------------------------------------------------- */
typedef struct {
    const ss_mlm_config *c;
    ss_rng *rng;
    float p_replace, p_random; /* cumulative thresholds for one uniform draw */
} masker;

static inline int eligible(const ss_mlm_config *c, int32_t id, uint8_t kv) {
    return kv && (uint32_t)id < (uint32_t)c->vocab_size && !c->is_special[id];
}

/* Record the target and apply BERT's 80/10/10 (by default) to one token. */
static inline void choose(const masker *m, int32_t *tok, int32_t *tg) {
    *tg = *tok;
    float r = ss_rng_uniform(m->rng);
    if (r < m->p_replace) *tok = m->c->mask_id;
    else if (r < m->p_random) *tok = m->c->ordinary[ss_rng_below(m->rng, m->c->n_ordinary)];
}

static size_t mask_row_tokens(const masker *m, int T, int32_t *tok, const uint8_t *kv, int32_t *tg) {
    const ss_mlm_config *c = m->c;
    size_t n_elig = 0, chosen = 0;
    for (int t = 0; t < T; t++) {
        tg[t] = -1;
        if (!eligible(c, tok[t], kv[t])) continue;
        n_elig++;
        if (ss_rng_uniform(m->rng) < c->mask_prob) choose(m, tok + t, tg + t), chosen++;
    }
    if (n_elig && !chosen) { /* nothing was changed, so eligibility is as before */
        size_t k = (size_t)ss_rng_below(m->rng, n_elig);
        for (int t = 0; t < T; t++)
            if (eligible(c, tok[t], kv[t]) && k-- == 0) {
                choose(m, tok + t, tg + t);
                return 1;
            }
    }
    return chosen;
}

/* End of the word starting at eligible position t: the eligible tokens after
 * it that do not start a word. Looks only forward, at unmasked tokens. */
static inline int word_end(const ss_mlm_config *c, int t, int T, const int32_t *tok, const uint8_t *kv) {
    int e = t + 1;
    while (e < T && eligible(c, tok[e], kv[e]) && !c->word_start[tok[e]]) e++;
    return e;
}

static size_t mask_row_words(const masker *m, int T, int32_t *tok, const uint8_t *kv, int32_t *tg) {
    const ss_mlm_config *c = m->c;
    size_t n_words = 0, chosen = 0;
    for (int t = 0; t < T; t++) tg[t] = -1;
    for (int t = 0; t < T;) {
        if (!eligible(c, tok[t], kv[t])) { t++; continue; }
        int e = word_end(c, t, T, tok, kv);
        n_words++;
        if (ss_rng_uniform(m->rng) < c->mask_prob)
            for (; t < e; t++) choose(m, tok + t, tg + t), chosen++;
        t = e;
    }
    if (n_words && !chosen) {
        size_t k = (size_t)ss_rng_below(m->rng, n_words);
        for (int t = 0; t < T;) {
            if (!eligible(c, tok[t], kv[t])) { t++; continue; }
            int e = word_end(c, t, T, tok, kv);
            if (k-- == 0) {
                for (; t < e; t++) choose(m, tok + t, tg + t), chosen++;
                break;
            }
            t = e;
        }
    }
    return chosen;
}

size_t ss_mlm_mask(const ss_mlm_config *cfg, ss_rng *rng, int B, int T, int32_t *tokens,
                   const uint8_t *key_valid, int32_t *targets) {
    masker m = {cfg, rng, cfg->mask_replace, cfg->mask_replace + cfg->mask_random};
    int words = cfg->whole_word && cfg->word_start;
    size_t chosen = 0;
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * T;
        chosen += words ? mask_row_words(&m, T, tokens + o, key_valid + o, targets + o)
                        : mask_row_tokens(&m, T, tokens + o, key_valid + o, targets + o);
    }
    return chosen;
}
