/* Validation loss, perplexity and bits per byte of a decoder (CLM). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "selfsup/dist.h"
#include "selfsup/train.h"

/* Part `part` of the evaluated windows [w_lo, w_hi) in batches of B: the
 * loss summed and the targets counted into slot[0], slot[1]. */
static ss_status eval_windows(ss_model *m, const ss_token_split *s, int B, int T, size_t w_lo, size_t w_hi,
                              int32_t *tok, int32_t *tgt, ss_eval_progress_fn fn, void *ctx, int64_t *done,
                              int64_t total, double t0, double *slot, ss_error *err) {
    ss_status st = SS_OK;
    for (size_t w0 = w_lo; !st && w0 < w_hi; w0 += (size_t)B) {
        int nb = (int)(w_hi - w0 < (size_t)B ? w_hi - w0 : (size_t)B);
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < T; t++) {
                size_t i = (w0 + (size_t)b) * (size_t)T + (size_t)t;
                tok[(size_t)b * T + t] = s->ids[i];
                tgt[(size_t)b * T + t] = s->ids[i + 1];
            }
        ss_batch batch = {tok, tgt, NULL, nb, T};
        ss_loss_stats ls;
        st = ss_model_eval_loss(m, &batch, &ls, err);
        slot[0] += ls.loss_sum;
        slot[1] += (double)ls.n_targets;
        ++*done; /* not in the initializer: its expressions are indeterminately sequenced */
        ss_eval_progress p = {*done, total, (int64_t)slot[1], (double)*done / (double)total, omp_get_wtime() - t0};
        if (!st && fn) fn(ctx, &p);
    }
    return st;
}

ss_status ss_evaluate_clm_parts(ss_model *m, const ss_token_split *s, int B, int T, int64_t max_tokens, int parts,
                                ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err) {
    if (s->n < (size_t)T + 1)
        return ss_fail(err, SS_ERR_ARG, "the val split has %zu tokens, fewer than one window of %d + 1; "
                       "use a smaller --seq or a larger --val-fraction when preparing", s->n, T);
    if (parts < 1 || parts % ss_dist_size())
        return ss_fail(err, SS_ERR_ARG, "evaluation in %d parts: not a multiple of the %d ranks", parts, ss_dist_size());
    /* Non-overlapping windows: window k predicts ids[kT+1 .. kT+T]. */
    size_t n_windows = (s->n - 1) / (size_t)T;
    if (max_tokens > 0 && n_windows > (size_t)max_tokens / (size_t)T)
        n_windows = (size_t)max_tokens / (size_t)T > 0 ? (size_t)max_tokens / (size_t)T : 1;
    int32_t *tok = malloc((size_t)B * T * sizeof(int32_t)), *tgt = malloc((size_t)B * T * sizeof(int32_t));
    double *slots = calloc((size_t)parts * 2, sizeof(double)), sum[2];
    if (!tok || !tgt || !slots) {
        free(tok); free(tgt); free(slots);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    /* This rank's parts, each its share of the windows in batches of B. */
    int lo, hi;
    ss_dist_my_parts(parts, &lo, &hi);
    int64_t done = 0, total = 0;
    for (int j = lo; j < hi; j++) {
        size_t n = ss_part_lo(n_windows, j + 1, parts) - ss_part_lo(n_windows, j, parts);
        total += (int64_t)((n + (size_t)B - 1) / (size_t)B);
    }
    double t0 = omp_get_wtime();
    ss_status st = SS_OK;
    for (int j = lo; !st && j < hi; j++)
        st = eval_windows(m, s, B, T, ss_part_lo(n_windows, j, parts), ss_part_lo(n_windows, j + 1, parts), tok, tgt,
                          fn, ctx, &done, total > 0 ? total : 1, t0, slots + 2 * (size_t)j, err);
    if (!st) st = ss_dist_sum_parts(slots, parts, 2, sum, err);
    free(tok); free(tgt); free(slots);
    if (st) return st;
    double loss = sum[0];
    int64_t count = (int64_t)sum[1];
    r->tokens = count;
    r->loss = loss / (double)count;
    r->perplexity = exp(r->loss);
    /* The evaluated tokens stand for their share of the split's text bytes. */
    double bytes = (double)s->text_bytes * (double)count / (double)(s->n > 1 ? s->n - 1 : 1);
    r->bits_per_byte = bytes > 0 ? loss / log(2.0) / bytes : NAN;
    r->spread_cos = r->spread_participation = NAN; /* measured for encoders only */
    return SS_OK;
}

ss_status ss_evaluate_clm(ss_model *m, const ss_token_split *s, int B, int T, int64_t max_tokens,
                          ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err) {
    return ss_evaluate_clm_parts(m, s, B, T, max_tokens, ss_dist_size(), fn, ctx, r, err);
}
