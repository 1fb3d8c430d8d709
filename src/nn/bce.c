/* Binary cross-entropy on logits (ELECTRA's replaced-token detection). */
#include <math.h>

#include "selfsup/nn.h"

/* loss_n = max(z,0) - z y + log(1 + exp(-|z|))   (= -y log s(z) - (1-y) log(1-s(z)), stable)
 * dz_n   = (sigmoid(z) - y) * scale, written over z. Returns the summed loss. */
double ss_bce_logits_fused(float *z, const uint8_t *labels, int N, float scale) {
    double total = 0;
    for (int n = 0; n < N; n++) {
        float x = z[n], y = labels[n] ? 1.0f : 0.0f;
        total += (double)fmaxf(x, 0.0f) - (double)x * y + log1p(exp(-fabs((double)x)));
        float s = x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
        z[n] = (s - y) * scale;
    }
    return total;
}
