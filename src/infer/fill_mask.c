/* Fill-mask: the most probable tokens at each [MASK] of [CLS] text [SEP],
 * from one forward pass of a masked LM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/infer.h"
#include "selfsup/path.h"

struct ss_masked_lm {
    ss_model *owner, *mlm; /* mlm is owner (an mlm run) or its generator (an rtd run) */
    ss_tokenizer *tok;
    int32_t cls, sep, mask;
};

void ss_masked_lm_free(ss_masked_lm *f) {
    if (!f) return;
    if (f->mlm != f->owner) ss_model_free(f->mlm);
    ss_model_free(f->owner);
    ss_tokenizer_free(f->tok);
    free(f);
}

const ss_tokenizer *ss_masked_lm_tokenizer(const ss_masked_lm *f) { return f->tok; }

/* The model that can fill masks: an MLM, or the generator of an RTD run. */
static ss_status load_model(ss_masked_lm *f, const char *dir, ss_error *err) {
    ss_status st = ss_model_load(&f->owner, dir, err);
    if (st) return st;
    const ss_model_config *cfg = ss_model_config_of(f->owner);
    if (cfg->kind == SS_DECODER)
        return ss_fail(err, SS_ERR_ARG, "%s is a decoder (next-token LM): it cannot fill masks", dir);
    if (cfg->head == SS_HEAD_MLM) {
        f->mlm = f->owner;
        return SS_OK;
    }
    st = ss_model_load_generator(f->owner, dir, &f->mlm, err);
    if (st == SS_ERR_NOT_FOUND)
        return ss_fail(err, SS_ERR_ARG, "%s has no masked-LM head (an rtd discriminator alone cannot fill masks: "
                       "use the rtd run directory, whose generator can)", dir);
    return st;
}

ss_status ss_masked_lm_load(ss_masked_lm **out, const char *dir, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_masked_lm *f = calloc(1, sizeof *f);
    if (!f) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_TOKENIZER, err);
    if (!st) st = load_model(f, dir, err);
    if (!st) st = ss_tokenizer_load(&f->tok, path, err);
    if (!st) {
        f->cls = ss_tokenizer_token_id(f->tok, "[CLS]");
        f->sep = ss_tokenizer_token_id(f->tok, "[SEP]");
        f->mask = ss_tokenizer_token_id(f->tok, "[MASK]");
        if (f->cls < 0 || f->sep < 0 || f->mask < 0)
            st = ss_fail(err, SS_ERR_FORMAT, "%s lacks [CLS], [SEP] or [MASK]", path);
    }
    if (st) ss_masked_lm_free(f);
    else *out = f;
    return st;
}

void ss_fill_result_free(ss_fill_result *r) {
    free(r->top);
    ss_buf_free(&r->filled);
    memset(r, 0, sizeof *r);
}

/* The k most probable tokens of softmax(z), most probable first (ties:
 * the lower id), with their probabilities. taken[V] is scratch. */
static void top_k(const float *z, int V, int k, char *taken, ss_token_prob *top) {
    float mx = z[0];
    for (int v = 1; v < V; v++) mx = fmaxf(mx, z[v]);
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)(z[v] - mx));
    memset(taken, 0, (size_t)V);
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int v = 0; v < V; v++)
            if (!taken[v] && (best < 0 || z[v] > z[best])) best = v;
        taken[best] = 1;
        top[r] = (ss_token_prob){best, exp((double)(z[best] - mx)) / sum};
    }
}

/* ids = [CLS] text [SEP]; the [MASK] positions. */
static ss_status encode(ss_masked_lm *f, const char *text, size_t len, ss_ids *ids, int32_t **pos, int *n,
                        ss_error *err) {
    int maxT = ss_model_config_of(f->mlm)->max_seq;
    ss_status st = ss_ids_push(ids, f->cls, err);
    if (!st) st = ss_tokenizer_encode(f->tok, text, len, 1, ids, err);
    if (!st) st = ss_ids_push(ids, f->sep, err);
    if (!st && ids->n > (size_t)maxT)
        st = ss_fail(err, SS_ERR_ARG, "the text is %d tokens with [CLS]/[SEP]; the model takes at most %d",
                     (int)ids->n, maxT);
    if (!st && !(*pos = malloc(ids->n * sizeof(int32_t)))) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    *n = 0;
    for (size_t i = 0; !st && i < ids->n; i++)
        if (ids->ids[i] == f->mask) (*pos)[(*n)++] = (int32_t)i;
    if (!st && *n == 0) st = ss_fail(err, SS_ERR_ARG, "the text has no [MASK] token");
    return st;
}

ss_status ss_fill_mask(ss_masked_lm *f, const char *text, size_t len, int k, ss_fill_result *r, ss_error *err) {
    memset(r, 0, sizeof *r);
    if (k < 1) return ss_fail(err, SS_ERR_ARG, "top-k must be at least 1 (got %d)", k);
    int V = ss_model_config_of(f->mlm)->vocab_size, n = 0;
    ss_ids ids = {0};
    int32_t *pos = NULL;
    float *logits = NULL;
    char *taken = NULL;
    ss_status st = encode(f, text, len, &ids, &pos, &n, err);
    r->n_masks = n;
    r->k = k < V ? k : V;
    if (!st && (!(logits = malloc((size_t)n * V * sizeof(float))) || !(taken = malloc((size_t)V)) ||
                !(r->top = malloc((size_t)n * r->k * sizeof *r->top))))
        st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_model_body_forward(f->mlm, ids.ids, NULL, 1, (int)ids.n, 0, 0, NULL, err);
    if (!st) st = ss_lm_head_logits(f->mlm, pos, n, logits, err);
    for (int j = 0; !st && j < n; j++) {
        top_k(logits + (size_t)j * V, V, r->k, taken, r->top + (size_t)j * r->k);
        ids.ids[pos[j]] = r->top[(size_t)j * r->k].id;
    }
    if (!st) st = ss_tokenizer_decode(f->tok, ids.ids + 1, ids.n - 2, &r->filled, err);
    if (st) ss_fill_result_free(r);
    ss_ids_free(&ids);
    free(pos);
    free(logits);
    free(taken);
    return st;
}
