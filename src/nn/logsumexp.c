/* Log-sum-exp over groups of values (a verbalizer's words grouped by label). */
#include <math.h>

#include "selfsup/nn.h"

/* lse[k] = mx_k + log(sum_{j in k} exp(x_j - mx_k)), mx_k the group's maximum,
 * the sum in double; then share[j] = exp(x_j - lse[group_j]). share is written
 * after every lse is known, so it may be x itself. */
void ss_logsumexp_groups(const float *x, const int32_t *group, int W, int K, float *lse, float *share) {
    for (int k = 0; k < K; k++) {
        float mx = -INFINITY;
        for (int j = 0; j < W; j++)
            if (group[j] == k) mx = fmaxf(mx, x[j]);
        if (mx == -INFINITY) {  /* empty, or every value -inf: nothing to normalize */
            lse[k] = -INFINITY;
            continue;
        }
        double sum = 0;
        for (int j = 0; j < W; j++)
            if (group[j] == k) sum += exp((double)(x[j] - mx));
        lse[k] = mx + (float)log(sum);
    }
    if (share)
        for (int j = 0; j < W; j++) share[j] = lse[group[j]] == -INFINITY ? 0.0f : expf(x[j] - lse[group[j]]);
}
