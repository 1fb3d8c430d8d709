/* Validation loss, perplexity and bits per byte of a decoder (CLM). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "selfsup/train.h"

ss_status ss_evaluate_clm(ss_model *m, const ss_token_split *s, int B, int T, int64_t max_tokens,
                          ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err) {
    if (s->n < (size_t)T + 1)
        return ss_fail(err, SS_ERR_ARG, "the val split has %zu tokens, fewer than one window of %d + 1; "
                       "use a smaller --seq or a larger --val-fraction when preparing", s->n, T);
    /* Non-overlapping windows: window k predicts ids[kT+1 .. kT+T]. */
    size_t n_windows = (s->n - 1) / (size_t)T;
    if (max_tokens > 0 && n_windows > (size_t)max_tokens / (size_t)T)
        n_windows = (size_t)max_tokens / (size_t)T > 0 ? (size_t)max_tokens / (size_t)T : 1;
    int32_t *tok = malloc((size_t)B * T * sizeof(int32_t)), *tgt = malloc((size_t)B * T * sizeof(int32_t));
    if (!tok || !tgt) {
        free(tok); free(tgt);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    double loss = 0, t0 = omp_get_wtime();
    int64_t count = 0, done = 0, total = (int64_t)((n_windows + (size_t)B - 1) / (size_t)B);
    ss_status st = SS_OK;
    for (size_t w0 = 0; !st && w0 < n_windows; w0 += (size_t)B) {
        int nb = (int)(n_windows - w0 < (size_t)B ? n_windows - w0 : (size_t)B);
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < T; t++) {
                size_t i = (w0 + (size_t)b) * (size_t)T + (size_t)t;
                tok[(size_t)b * T + t] = s->ids[i];
                tgt[(size_t)b * T + t] = s->ids[i + 1];
            }
        ss_batch batch = {tok, tgt, NULL, nb, T};
        ss_loss_stats ls;
        st = ss_model_eval_loss(m, &batch, &ls, err);
        loss += ls.loss_sum;
        count += ls.n_targets;
        done++; /* not in the initializer: its expressions are indeterminately sequenced */
        ss_eval_progress p = {done, total, count, (double)done / (double)total, omp_get_wtime() - t0};
        if (!st && fn) fn(ctx, &p);
    }
    free(tok); free(tgt);
    if (st) return st;
    r->tokens = count;
    r->loss = loss / (double)count;
    r->perplexity = exp(r->loss);
    /* The evaluated tokens stand for their share of the split's text bytes. */
    double bytes = (double)s->text_bytes * (double)count / (double)(s->n > 1 ? s->n - 1 : 1);
    r->bits_per_byte = bytes > 0 ? loss / log(2.0) / bytes : NAN;
    return SS_OK;
}
