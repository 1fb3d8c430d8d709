/* AdamW (Loshchilov & Hutter), matching torch.optim.AdamW(foreach=False). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/gemm.h"
#include "selfsup/optim.h"

/* The update loop is written with x86 vector types: gcc will not vectorize
 * sqrtf in the plain loop (its errno check for negative input is a call),
 * and a scalar sqrt plus two divisions per parameter make AdamW compute-bound.
 * Vector sqrt, division, add and multiply are correctly rounded like the
 * scalar ones, and the operations are the same in the same order, so every
 * lane gives the bits the scalar tail would. */
#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 vf;
#define VW 16
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VSQRT _mm512_sqrt_ps
#define VSET1 _mm512_set1_ps
#elif defined(__AVX__)
#include <immintrin.h>
typedef __m256 vf;
#define VW 8
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VSQRT _mm256_sqrt_ps
#define VSET1 _mm256_set1_ps
#endif

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
 * float exactly as torch does (step_size = lr / bc1, denom = sqrt(v)/sqrt(bc2) + eps).
 * gs is the gradient-clipping factor: g * gs is the float torch's clip_grad_norm_
 * would have stored in the gradient, so folding it here gives the same bits
 * without a pass over the gradients (gs = 1 multiplies exactly). The hyper-
 * parameters are read into locals and the arrays are restrict so the loop
 * vectorizes (sqrt and division are correctly rounded in SIMD too). */
typedef struct {
    float b1, b2, c1, c2, eps, step_size, bc2_sqrt, keep, gs;
} update_coef;

/* One AdamW step on n parameters (torch's order of operations):
 *   g' = g gs;  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2
 *   p = p keep - step_size (m / (sqrt(v)/sqrt(bc2) + eps)) */
static void update_range(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                         size_t n, update_coef k) {
    size_t i = 0;
#ifdef VW
    const vf gs = VSET1(k.gs), keep = VSET1(k.keep), b1 = VSET1(k.b1), b2 = VSET1(k.b2), c1 = VSET1(k.c1),
             c2 = VSET1(k.c2), bc2 = VSET1(k.bc2_sqrt), eps = VSET1(k.eps), step = VSET1(k.step_size);
    for (; i + VW <= n; i += VW) {
        vf gi = VLOAD(g + i) * gs;
        vf pi = VLOAD(p + i) * keep;
        vf mi = b1 * VLOAD(m + i) + c1 * gi;
        vf vi = b2 * VLOAD(v + i) + c2 * gi * gi;
        VSTORE(m + i, mi);
        VSTORE(v + i, vi);
        VSTORE(p + i, pi - step * (mi / (VSQRT(vi) / bc2 + eps)));
    }
#endif
    for (; i < n; i++) {
        float gi = g[i] * k.gs;
        float pi = p[i] * k.keep;
        float mi = k.b1 * m[i] + k.c1 * gi;
        float vi = k.b2 * v[i] + k.c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
        p[i] = pi - k.step_size * (mi / denom);
    }
}

static void update(float *p, const float *g, float *m, float *v, size_t n, const ss_adamw_hparams *h,
                   float decay, double bc1, double bc2_sqrt, float gs) {
    update_coef k = {h->beta1, h->beta2, 1.0f - h->beta1, 1.0f - h->beta2, h->eps, (float)(h->lr / bc1),
                     (float)bc2_sqrt, (float)(1.0 - (double)h->lr * decay), gs};
    enum { CHUNK = 1 << 14 };
    size_t nc = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (size_t c = 0; c < nc; c++) {
        size_t lo = c * CHUNK, len = n - lo < CHUNK ? n - lo : CHUNK;
        update_range(p + lo, g + lo, m + lo, v + lo, len, k);
    }
}

void ss_adamw_step(ss_adamw *o, const ss_model *model, float *params, const float *grads,
                   const ss_adamw_hparams *h) {
    ss_adamw_step_scaled(o, model, params, grads, h, 0, 1.0f);
}

void ss_adamw_step_from(ss_adamw *o, const ss_model *model, float *params, const float *grads,
                        const ss_adamw_hparams *h, size_t first) {
    ss_adamw_step_scaled(o, model, params, grads, h, first, 1.0f);
}

void ss_adamw_step_scaled(ss_adamw *o, const ss_model *model, float *params, const float *grads,
                          const ss_adamw_hparams *h, size_t first, float grad_scale) {
    o->t++;
    double bc1 = 1.0 - pow(h->beta1, (double)o->t);
    double bc2_sqrt = sqrt(1.0 - pow(h->beta2, (double)o->t));
    size_t nt = ss_model_num_tensors(model);
    int top = ss_model_config_of(model)->n_layer + 1;
    int llrd = h->layer_decay > 0 && h->layer_decay != 1.0f;
    for (size_t i = 0; i < nt; i++) {
        const ss_param_info *t = ss_model_tensor(model, i);
        size_t off = t->offset;
        if (off < first || t->depth < h->min_depth) continue;
        ss_adamw_hparams ht = *h;
        if (llrd) ht.lr = (float)((double)h->lr * pow((double)h->layer_decay, (double)(top - t->depth)));
        update(params + off, grads + off, o->m + off, o->v + off, t->numel, &ht,
               t->decay ? h->weight_decay : 0.0f, bc1, bc2_sqrt, grad_scale);
    }
    ss_gemm_weights_changed(); /* bf16 weight copies follow the fp32 masters */
}

float ss_clip_factor(double norm, double clip) {
    return clip > 0 && norm > clip ? (float)(clip / (norm + 1e-6)) : 1.0f;
}

/* Fixed-size blocks summed in order, so the result does not depend on the
 * thread count; within a block the compiler's SIMD lanes keep partial sums
 * (a fixed order for a given build, so still deterministic). */
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
        #pragma omp simd reduction(+ : s)
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
    if (clip > 0 && norm > clip) ss_scale_grads(g, n, ss_clip_factor(norm, clip));
    return norm;
}

double ss_lr_schedule(int64_t step, int64_t total, int64_t warmup, double lr, double lr_min) {
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    if (total <= warmup) return lr;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    if (progress > 1) progress = 1;
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + cos(M_PI * progress));
}

double ss_lr_linear(int64_t step, int64_t total, int64_t warmup, double lr, double lr_min) {
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    if (total <= warmup) return lr;
    double left = (double)(total - step) / (double)(total - warmup);
    return lr_min + (lr - lr_min) * (left > 0 ? left : 0);
}
