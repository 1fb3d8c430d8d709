/* AdamW (Loshchilov & Hutter), matching torch.optim.AdamW(foreach=False). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/optim.h"

ss_status ss_adamw_init(ss_adamw *o, size_t n, ss_error *err) {
    o->n = n;
    o->t = 0;
    o->m = calloc(2 * n, sizeof(float));
    o->v = o->m ? o->m + n : NULL;
    if (!o->m) return ss_fail(err, SS_ERR_NOMEM, "out of memory for AdamW moments (%zu params)", n);
    return SS_OK;
}

void ss_adamw_free(ss_adamw *o) {
    free(o->m);
    o->m = o->v = NULL;
}

/* The update of one tensor slice [lo, hi). Bias corrections are computed in
 * float exactly as torch does (step_size = lr / bc1, denom = sqrt(v)/sqrt(bc2) + eps). */
static void update(float *p, const float *g, float *m, float *v, size_t n, const ss_adamw_hparams *h,
                   float decay, double bc1, double bc2_sqrt_d) {
    float b1 = h->beta1, b2 = h->beta2, step_size = (float)(h->lr / bc1);
    float bc2_sqrt = (float)bc2_sqrt_d, keep = (float)(1.0 - (double)h->lr * decay);
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * keep;
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + h->eps;
        p[i] = pi - step_size * (m[i] / denom);
    }
}

void ss_adamw_step(ss_adamw *o, const ss_model *model, float *params, const float *grads,
                   const ss_adamw_hparams *h) {
    ss_adamw_step_from(o, model, params, grads, h, 0);
}

void ss_adamw_step_from(ss_adamw *o, const ss_model *model, float *params, const float *grads,
                        const ss_adamw_hparams *h, size_t first) {
    o->t++;
    double bc1 = 1.0 - pow(h->beta1, (double)o->t);
    double bc2_sqrt = sqrt(1.0 - pow(h->beta2, (double)o->t));
    size_t nt = ss_model_num_tensors(model);
    for (size_t i = 0; i < nt; i++) {
        const ss_param_info *t = ss_model_tensor(model, i);
        size_t off = t->offset;
        if (off < first) continue;
        update(params + off, grads + off, o->m + off, o->v + off, t->numel, h,
               t->decay ? h->weight_decay : 0.0f, bc1, bc2_sqrt);
    }
}

/* Fixed-size blocks summed in order, so the result does not depend on the
 * thread count. */
double ss_grad_norm(const float *g, size_t n) {
    enum { BLK = 1 << 14 };
    size_t nb = (n + BLK - 1) / BLK;
    double *part = calloc(nb ? nb : 1, sizeof(double)), total = 0;
    if (!part) {
        for (size_t i = 0; i < n; i++) total += (double)g[i] * g[i];
        return sqrt(total);
    }
    #pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        double s = 0;
        size_t hi = (b + 1) * BLK < n ? (b + 1) * BLK : n;
        for (size_t i = b * BLK; i < hi; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    for (size_t b = 0; b < nb; b++) total += part[b];
    free(part);
    return sqrt(total);
}

void ss_scale_grads(float *g, size_t n, float s) {
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) g[i] *= s;
}

double ss_clip_grad_norm(float *g, size_t n, double clip) {
    double norm = ss_grad_norm(g, n);
    if (clip > 0 && norm > clip) ss_scale_grads(g, n, (float)(clip / (norm + 1e-6)));
    return norm;
}

double ss_lr_schedule(int64_t step, int64_t total, int64_t warmup, double lr, double lr_min) {
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    if (total <= warmup) return lr;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    if (progress > 1) progress = 1;
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + cos(M_PI * progress));
}

double ss_lr_linear(int64_t step, int64_t total, int64_t warmup, double lr) {
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    if (total <= warmup) return lr;
    double left = (double)(total - step) / (double)(total - warmup);
    return lr * (left > 0 ? left : 0);
}
