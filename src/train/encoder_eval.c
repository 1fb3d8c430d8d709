/* Encoder evaluation: masked-LM loss/accuracy and ELECTRA's discriminator
 * accuracy and AUC, on the split's documents in order with fixed masks. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "selfsup/dist.h"
#include "selfsup/encoder_eval.h"
#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/spread.h"

typedef struct {
    float score;
    uint8_t label;
} scored;

static int by_score(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return x < y ? -1 : x > y;
}

/* Mann-Whitney: AUC = (sum of positive ranks - P(P+1)/2) / (P N), ranks
 * averaged over ties. */
double ss_auc(float *scores, uint8_t *labels, size_t n) {
    scored *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NAN;
    for (size_t i = 0; i < n; i++) v[i] = (scored){scores[i], labels[i]};
    qsort(v, n, sizeof *v, by_score);
    double rank_sum = 0, pos = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].score == v[i].score) j++;
        double avg_rank = (double)(i + j + 1) / 2.0; /* ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            if (v[k].label) { rank_sum += avg_rank; pos++; }
        i = j;
    }
    free(v);
    double neg = (double)n - pos;
    if (pos == 0 || neg == 0) return NAN;
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

typedef struct {
    int32_t *tokens, *targets, *samples, *dtokens;
    uint8_t *key_valid, *replaced;
    float *probs, *all_scores;
    float *pooled, *gram; /* the rows' mean vectors [B, C] and the spread's scratch [C, C] */
    uint8_t *all_labels;
    size_t n_all, cap_all;
} eval_bufs;

static void free_bufs(eval_bufs *b) {
    free(b->tokens); free(b->targets); free(b->samples); free(b->dtokens);
    free(b->key_valid); free(b->replaced); free(b->probs); free(b->all_scores); free(b->all_labels);
    free(b->pooled); free(b->gram);
}

static ss_status alloc_bufs(eval_bufs *b, size_t n, int B, int C, ss_error *err) {
    memset(b, 0, sizeof *b);
    b->tokens = malloc(n * 4); b->targets = malloc(n * 4); b->samples = malloc(n * 4);
    b->dtokens = malloc(n * 4); b->key_valid = malloc(n); b->replaced = malloc(n); b->probs = malloc(n * 4);
    b->pooled = malloc((size_t)B * C * sizeof(float)); b->gram = malloc((size_t)C * C * sizeof(float));
    if (!b->tokens || !b->targets || !b->samples || !b->dtokens || !b->key_valid || !b->replaced || !b->probs ||
        !b->pooled || !b->gram)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for evaluation");
    return SS_OK;
}

/* The spread of the body's vectors (selfsup/spread.h): each row's mean
 * hidden state over its real tokens (a packed row: its documents together),
 * added to the part's accumulator. */
static void add_spread(eval_bufs *b, double *acc, const float *hidden, const uint8_t *valid, int rows, int T, int C) {
    int m = 0;
    for (int r = 0; r < rows; r++)
        if (ss_pool_forward(SS_POOL_MEAN, hidden + (size_t)r * T * C, valid + (size_t)r * T, T, C,
                            b->pooled + (size_t)m * C) > 0)
            m++;
    ss_spread_add(acc, b->pooled, m, C, b->gram);
}

/* Keep the discriminator's score and label of every real token, for the AUC. */
static ss_status keep_scores(eval_bufs *b, size_t n, ss_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (!b->key_valid[i]) continue;
        if (b->n_all == b->cap_all) {
            size_t cap = b->cap_all ? 2 * b->cap_all : 65536;
            float *s = realloc(b->all_scores, cap * sizeof *s);
            if (s) b->all_scores = s;
            uint8_t *l = realloc(b->all_labels, cap);
            if (l) b->all_labels = l;
            if (!s || !l) return ss_fail(err, SS_ERR_NOMEM, "out of memory for evaluation");
            b->cap_all = cap;
        }
        b->all_scores[b->n_all] = b->probs[i];
        b->all_labels[b->n_all++] = b->replaced[i];
    }
    return SS_OK;
}

/* The discriminator's input: generator samples in place of the masked tokens. */
static void substitute(eval_bufs *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        b->dtokens[i] = b->targets[i] >= 0 ? b->samples[i] : b->tokens[i];
        b->replaced[i] = b->targets[i] >= 0 && b->samples[i] != b->targets[i];
    }
}

/* Progress after a batch: the share of the split's document tokens passed
 * (the cursor's document), or of max_tokens when that comes first. */
static void report(ss_eval_progress_fn fn, void *ctx, const ss_doc_index *docs, uint64_t cursor, int64_t batches,
                   int64_t seen, int64_t max_tokens, double t0) {
    if (!fn) return;
    size_t doc = (size_t)(cursor >> 32);
    double f = docs->cum[docs->n_docs] ? (double)docs->cum[doc < docs->n_docs ? doc : docs->n_docs] /
                                             (double)docs->cum[docs->n_docs] : 1.0;
    if (max_tokens > 0 && (double)seen / (double)max_tokens > f) f = (double)seen / (double)max_tokens;
    if (f > 1) f = 1;
    ss_eval_progress p = {batches, f > 0 ? (int64_t)ceil((double)batches / f) : 0, seen, f, omp_get_wtime() - t0};
    fn(ctx, &p);
}

/* Per-part sums (slots, selfsup/dist.h). */
enum { E_LOSS, E_MASKED, E_CORRECT, E_DLOSS, E_DN, E_DCORRECT, E_DPOS, E_N };

/* Every rank's scores and labels, for the AUC (its value depends only on
 * the pairs, not on their order). */
static ss_status gather_scores(eval_bufs *b, ss_error *err) {
    if (ss_dist_size() == 1) return SS_OK;
    void *s, *l;
    size_t sb, lb;
    ss_status st = ss_dist_gather(b->all_scores, b->n_all * sizeof(float), &s, &sb, err);
    if (st) return st;
    if ((st = ss_dist_gather(b->all_labels, b->n_all, &l, &lb, err))) {
        free(s);
        return st;
    }
    free(b->all_scores);
    free(b->all_labels);
    b->all_scores = s;
    b->all_labels = l;
    b->n_all = b->cap_all = lb;
    return SS_OK;
}

ss_status ss_evaluate_encoder_parts(ss_model *mlm, ss_model *disc, int uniform, const ss_doc_index *docs,
                                    const ss_mlm_config *cfg, int B, int T, int64_t max_tokens, int parts,
                                    ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err) {
    if (parts < 1 || parts % ss_dist_size())
        return ss_fail(err, SS_ERR_ARG, "evaluation in %d parts: not a multiple of the %d ranks", parts, ss_dist_size());
    size_t n = (size_t)B * T;
    ss_model *body = disc ? disc : mlm; /* the encoder a user fine-tunes: its vectors' spread */
    int C = ss_model_config_of(body)->d_model;
    int width = E_N + (int)ss_spread_width(C); /* per part: the sums, then the spread's accumulator */
    eval_bufs b;
    ss_status st = alloc_bufs(&b, n, B, C, err);
    double *slots = calloc((size_t)parts * width, sizeof(double)), *sum = malloc((size_t)width * sizeof(double));
    if (!st && (!slots || !sum)) st = ss_fail(err, SS_ERR_NOMEM, "out of memory for evaluation");
    ss_rng rng;
    ss_rng_seed(&rng, SS_EVAL_MASK_SEED);
    uint64_t cursor = 0;
    int64_t seen = 0, batches = 0;
    double t0 = omp_get_wtime();
    memset(r, 0, sizeof *r);
    int rows, lo, hi;
    ss_dist_my_parts(parts, &lo, &hi);
    /* Every rank packs and masks every batch (the masks and samples are one
     * stream); batch i is computed by part i mod parts. */
    for (int64_t i = 0; !st && (max_tokens <= 0 || seen < max_tokens) &&
                        (rows = ss_mlm_pack_sequential(docs, cfg, &cursor, B, T, b.tokens, b.key_valid)) > 0;
         i++) {
        for (size_t k = 0; k < n; k++) seen += b.key_valid[k];
        size_t nm = ss_mlm_mask(cfg, &rng, rows, T, b.tokens, b.key_valid, b.targets);
        for (size_t k = (size_t)rows * T; k < n; k++) b.targets[k] = -1;
        int part = (int)(i % parts);
        if (part < lo || part >= hi) { /* another rank's: pass its generator samples in the stream */
            if (disc)
                for (size_t k = 0; k < nm; k++) (void)ss_rng_u64(&rng);
            continue;
        }
        double *sl = slots + (size_t)part * width;
        ss_loss_stats ls = {0}; /* read below even when the forward pass failed */
        const float *hidden = NULL;
        st = ss_model_body_forward(mlm, b.tokens, b.key_valid, rows, T, 0, 0, &hidden, err);
        if (!st && !disc) add_spread(&b, sl + E_N, hidden, b.key_valid, rows, T, C);
        int sample = disc && !uniform;
        if (!st) st = ss_lm_head_sample(mlm, b.targets, 0.0f, 0, sample ? &rng : NULL, cfg->gen_temperature,
                                         sample ? b.samples : NULL, &ls, err);
        if (!st && disc && uniform) /* one draw per masked position, as the generator's sampling takes */
            for (size_t k = 0; k < (size_t)rows * T; k++)
                if (b.targets[k] >= 0) b.samples[k] = cfg->ordinary[ss_rng_u64(&rng) % cfg->n_ordinary];
        sl[E_LOSS] += ls.loss_sum;
        sl[E_MASKED] += (double)ls.n_targets;
        sl[E_CORRECT] += (double)ls.n_correct;
        if (!st && !disc) report(fn, ctx, docs, cursor, ++batches, seen, max_tokens, t0);
        if (st || !disc) continue;
        if (uniform)
            for (size_t i = 0; i < (size_t)rows * T; i++)
                if (b.targets[i] >= 0) b.samples[i] = cfg->ordinary[ss_rng_below(&rng, cfg->n_ordinary)];
        substitute(&b, (size_t)rows * T);
        ss_disc_stats ds = {0};
        st = ss_model_body_forward(disc, b.dtokens, b.key_valid, rows, T, 0, 0, &hidden, err);
        if (!st) add_spread(&b, sl + E_N, hidden, b.key_valid, rows, T, C);
        if (!st) st = ss_disc_head(disc, b.key_valid, b.replaced, 0.0f, 0, b.probs, &ds, err);
        if (!st) st = keep_scores(&b, (size_t)rows * T, err);
        sl[E_DLOSS] += ds.loss_sum;
        sl[E_DN] += (double)ds.n;
        sl[E_DCORRECT] += (double)ds.correct;
        sl[E_DPOS] += (double)ds.positives;
        if (!st) report(fn, ctx, docs, cursor, ++batches, seen, max_tokens, t0);
    }
    if (!st) st = ss_dist_sum_parts(slots, parts, width, sum, err);
    if (!st && disc) st = gather_scores(&b, err);
    int64_t masked = st ? 0 : (int64_t)sum[E_MASKED], dn = st ? 0 : (int64_t)sum[E_DN];
    if (!st && masked == 0) st = ss_fail(err, SS_ERR_ARG, "the split has no tokens to evaluate");
    if (!st) {
        r->tokens = masked;
        r->loss = sum[E_LOSS] / (double)masked;
        r->perplexity = exp(r->loss);
        r->bits_per_byte = NAN;
        r->mlm_acc = sum[E_CORRECT] / (double)masked;
        ss_spread_stats sp = ss_spread_get(sum + E_N, C);
        r->spread_cos = sp.mean_cos;
        r->spread_participation = sp.participation;
        if (disc && dn > 0) {
            r->disc_loss = sum[E_DLOSS] / (double)dn;
            r->disc_acc = sum[E_DCORRECT] / (double)dn;
            r->disc_base = 1.0 - sum[E_DPOS] / (double)dn;
            r->auc = ss_auc(b.all_scores, b.all_labels, b.n_all);
        }
    }
    free(slots);
    free(sum);
    free_bufs(&b);
    return st;
}

ss_status ss_evaluate_encoder(ss_model *mlm, ss_model *disc, int uniform, const ss_doc_index *docs,
                              const ss_mlm_config *cfg, int B, int T, int64_t max_tokens,
                              ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err) {
    return ss_evaluate_encoder_parts(mlm, disc, uniform, docs, cfg, B, T, max_tokens, ss_dist_size(), fn, ctx, r, err);
}

ss_status ss_mlm_config_from_run(ss_mlm_config *cfg, const char *run, int *found, ss_error *err) {
    char path[SS_PATH_MAX];
    *found = 0;
    ss_status st = ss_path_join(path, sizeof path, run, SS_RUN_STATE, err);
    if (st || !ss_file_exists(path)) return st;
    ss_buf b = {0};
    if ((st = ss_read_file(path, &b, err))) return st;
    cJSON *j = cJSON_ParseWithLength((const char *)b.data, b.len);
    ss_buf_free(&b);
    char *opts = j ? cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "options")) : NULL;
    cJSON_Delete(j);
    if (!opts) return ss_fail(err, SS_ERR_FORMAT, "%s: not JSON with the run's 'options'", path);
    ss_train_opts o;
    int64_t total;
    char *keep = NULL;
    st = ss_train_opts_from_json(&o, &total, opts, path, &keep, err);
    free(opts);
    free(keep);
    if (st) return st;
    cfg->mask_prob = o.mask_prob;
    cfg->mask_replace = o.mask_replace;
    cfg->mask_random = o.mask_random;
    cfg->whole_word = o.whole_word;
    cfg->gen_temperature = o.gen_temperature;
    *found = 1;
    return ss_mlm_config_check(cfg, err);
}
