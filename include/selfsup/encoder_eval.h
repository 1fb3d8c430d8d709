/* Evaluation of encoders on a split of prepared shards: masked-LM loss and
 * masked-token accuracy, and for ELECTRA the discriminator's accuracy and
 * AUC. Masks come from a fixed seed, so numbers compare across runs. */
#ifndef SELFSUP_ENCODER_EVAL_H
#define SELFSUP_ENCODER_EVAL_H

#include "selfsup/mlm.h"
#include "selfsup/train.h"

#define SS_EVAL_MASK_SEED 0x5E1F5005ull

/* mlm: the masked LM (head "mlm"); for RTD pass the generator as mlm and the
 * discriminator as disc (else NULL); uniform 1: the discriminator sees
 * uniformly random ordinary tokens at the masked positions instead of the
 * generator's samples (pretrain --rtd-generator uniform). Walks the split's documents in order
 * (packed as in training) until max_tokens input tokens (0 = all),
 * reporting each batch to fn (may be NULL). */
ss_status ss_evaluate_encoder(ss_model *mlm, ss_model *disc, int uniform, const ss_doc_index *docs,
                              const ss_mlm_config *cfg, int B, int T, int64_t max_tokens,
                              ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err);
/* The same with batch i computed by part i mod `parts` (a multiple of the
 * ranks, selfsup/dist.h: each rank computes its parts' batches, every rank
 * draws every batch's masks) and the sums reduced in a fixed order: the same
 * bits on any rank count dividing parts. ss_evaluate_encoder: one part per
 * rank. */
ss_status ss_evaluate_encoder_parts(ss_model *mlm, ss_model *disc, int uniform, const ss_doc_index *docs,
                                    const ss_mlm_config *cfg, int B, int T, int64_t max_tokens, int parts,
                                    ss_eval_progress_fn fn, void *ctx, ss_eval_result *r, ss_error *err);

/* The masking a run was pretrained with, from RUN/trainer_state.json's
 * options: cfg's mask_prob, mask_replace, mask_random and whole_word (an
 * encoder evaluated with other masking scores otherwise: an rtd generator
 * trained without random replacements copies them). *found 0 when RUN has
 * no trainer_state.json (cfg untouched). */
ss_status ss_mlm_config_from_run(ss_mlm_config *cfg, const char *run, int *found, ss_error *err);

/* Area under the ROC curve of scores for binary labels (ties count half);
 * NaN when one class is absent. The inputs are not modified. */
double ss_auc(float *scores, uint8_t *labels, size_t n);

#endif
