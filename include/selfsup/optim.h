/* AdamW with decoupled weight decay, global-norm gradient clipping, and the
 * learning-rate schedule (linear warmup, cosine decay to a floor). */
#ifndef SELFSUP_OPTIM_H
#define SELFSUP_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/model.h"

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    /* Layer-wise learning-rate decay (ELECTRA, Clark et al. 2020; ULMFiT's
     * discriminative rates): a tensor at depth d (ss_param_info.depth) of a
     * model of L layers steps with lr * layer_decay^(L + 1 - d), so the head
     * takes the full rate and the embeddings the smallest. 0 or 1: off. */
    float layer_decay;
    /* Gradual unfreezing (ULMFiT): tensors of depth below min_depth are
     * frozen at this step: neither they nor their moments change (no weight
     * decay either). 0: every tensor steps. */
    int min_depth;
} ss_adamw_hparams;

/* Moments m and v, one float each per parameter, in one allocation. */
typedef struct {
    size_t n;
    float *m, *v;
    int64_t t; /* steps taken */
} ss_adamw;

ss_status ss_adamw_init(ss_adamw *o, size_t n_params, ss_error *err);
void ss_adamw_free(ss_adamw *o);

/* One step over every tensor of the model (decay per ss_param_info.decay;
 * lr scaled per tensor by layer_decay, see above):
 *   p -= lr*wd*p (decay tensors only);  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)                          */
void ss_adamw_step(ss_adamw *o, const ss_model *model, float *params, const float *grads,
                   const ss_adamw_hparams *h);

/* The same over the tensors at or after float offset `first` only (a frozen
 * body trains its head alone: first = ss_model_head_offset). */
void ss_adamw_step_from(ss_adamw *o, const ss_model *model, float *params, const float *grads,
                        const ss_adamw_hparams *h, size_t first);

/* The same with the gradients read as grads * grad_scale, the factor that
 * clipping would have multiplied them by (ss_clip_factor): clipping folded
 * into the update, same bits as ss_scale_grads then ss_adamw_step_from,
 * without the pass over the gradients (grads themselves are not changed). */
void ss_adamw_step_scaled(ss_adamw *o, const ss_model *model, float *params, const float *grads,
                          const ss_adamw_hparams *h, size_t first, float grad_scale);

/* torch's clip_grad_norm_ factor: clip / (norm + 1e-6) as a float if
 * norm > clip > 0, else 1. */
float ss_clip_factor(double norm, double clip);

/* Global L2 norm of the gradients (double accumulation, deterministic). */
double ss_grad_norm(const float *grads, size_t n);
/* If norm > clip > 0, scale grads by clip / (norm + 1e-6) (torch semantics).
 * Returns the norm before clipping. */
double ss_clip_grad_norm(float *grads, size_t n, double clip);

/* grads *= s (OpenMP). */
void ss_scale_grads(float *grads, size_t n, float s);

/* lr at `step` (0-based) of `total`: linear warmup from lr/warmup to lr over
 * `warmup` steps, then cosine decay to lr_min at `total`. */
double ss_lr_schedule(int64_t step, int64_t total, int64_t warmup, double lr, double lr_min);
/* Linear warmup as above, then linear decay to lr_min at `total` (BERT's
 * fine-tuning schedule with lr_min 0; with the warmup half the run,
 * Cramming's one-cycle "triangle"). */
double ss_lr_linear(int64_t step, int64_t total, int64_t warmup, double lr, double lr_min);

#endif
