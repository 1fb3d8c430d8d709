/* The transformer: one set of pre-LayerNorm blocks for two kinds of model,
 * a decoder (causal attention, next-token prediction) and an encoder
 * (bidirectional attention with a key padding mask). Token + learned
 * position embeddings, final LayerNorm, LM head tied to the token embeddings.
 *
 * Memory: parameters, gradients and activations each live in one allocation
 * with named views (ss_params / ss_acts), sized from one table. */
#ifndef SELFSUP_MODEL_H
#define SELFSUP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"
#include "selfsup/rng.h"
#include "selfsup/textnorm.h"

typedef enum { SS_DECODER = 0, SS_ENCODER = 1 } ss_model_kind;

/* The output head a model carries in its own parameters:
 *   LM   tied projection onto the token embeddings (no extra parameters)
 *   MLM  BERT's transform (dense C->E, GELU, LayerNorm) + tied projection + output bias
 *   DISC ELECTRA's discriminator: dense C->C, GELU, dense C->1 (replaced or not)
 *   CLS  sequence classification: pool one vector per sequence, optional
 *        pooler (dense C->C + tanh), dropout, dense C->n_classes */
typedef enum { SS_HEAD_LM = 0, SS_HEAD_MLM, SS_HEAD_DISC, SS_HEAD_CLS } ss_head_kind;

/* Which vector of a sequence a CLS head (and embed) reads: position 0 (an
 * encoder's [CLS]), the last non-padding position (a decoder's summary of
 * the whole text), the mean over non-padding positions, or their
 * position-weighted mean (the k-th of n with weight k / (n(n+1)/2), SGPT's
 * pooling for decoders: later positions have seen more of the text). */
typedef enum { SS_POOL_CLS = 0, SS_POOL_LAST, SS_POOL_MEAN, SS_POOL_WMEAN } ss_pooling;
const char *ss_pooling_name(ss_pooling p);
ss_status ss_pooling_parse(const char *s, ss_pooling *p, ss_error *err);
/* out[C] = the pooled vector of one sequence's hidden states h[T, C]
 * (valid: T flags of non-padding positions, NULL: all), summed in double
 * (src/model/pool.c); cls reads the first valid position (an encoder's
 * [CLS] at 0). Returns the number of valid positions; 0: none, out
 * untouched. */
int ss_pool_forward(ss_pooling how, const float *h, const uint8_t *valid, int T, int C, float *out);
/* dh[t] += (the weight of position t) * dout: the gradient of ss_pool_forward. */
void ss_pool_backward(ss_pooling how, const float *dout, const uint8_t *valid, int T, int C, float *dh);

typedef struct {
    ss_model_kind kind;
    int vocab_size, n_layer, d_model, n_head, d_ff, max_seq;
    float dropout;
    int d_embed;       /* embedding width E; 0 or d_model = no projection. An
                          ELECTRA generator is narrower than the embeddings it
                          shares, so it projects E -> d_model. */
    ss_head_kind head;
    /* CLS head only (config.json "n_classes", "pooling", "pooler"): */
    int n_classes;     /* >= 2 */
    ss_pooling pooling;
    int pooler;        /* 1: dense + tanh between pooling and the classifier */
    /* How a classifier reads text (config.json "text_normalization", written
     * when not none): applied to every text before tokenizing. */
    ss_text_norm text_norm;
    int no_bias;       /* 1: the body's linear layers and LayerNorms have no
                          bias (config.json "bias": false; Cramming's lever);
                          the heads keep theirs. Last, so that positional
                          initializers of the fields above keep meaning. */
    int bidirectional; /* 1: a decoder classifier (CLS head) whose attention
                          sees the whole text, as an encoder's does
                          (config.json "attention": "bidirectional";
                          finetune --attention). A decoder is otherwise
                          causal; an encoder always bidirectional. */
} ss_model_config;

/* Presets "tiny", "small", "base" (architecture only: vocab_size is left as
 * given, kind too). Unknown name: SS_ERR_ARG listing the presets. */
ss_status ss_config_preset(ss_model_config *c, const char *name, ss_error *err);
ss_status ss_config_validate(const ss_model_config *c, ss_error *err);
/* config.json text (malloc'd) and back; parse errors name `source`. */
char *ss_config_to_json(const ss_model_config *c);
ss_status ss_config_from_json(ss_model_config *c, const char *json,
                              const char *source, ss_error *err);
const char *ss_model_kind_name(ss_model_kind k);

/* Parameter views into one flat array. Per-layer tensors are stacked
 * [L, ...] so layer l's ln1w is ln1w + l*C, etc. */
typedef struct {
    float *wte;      /* [V, C] token embeddings, also the LM head */
    float *wpe;      /* [maxT, C] */
    float *ln1w, *ln1b;           /* [L, C] */
    float *qkvw, *qkvb;           /* [L, 3C, C], [L, 3C] */
    float *attprojw, *attprojb;   /* [L, C, C], [L, C] */
    float *ln2w, *ln2b;           /* [L, C] */
    float *fcw, *fcb;             /* [L, F, C], [L, F] */
    float *fcprojw, *fcprojb;     /* [L, C, F], [L, C] */
    float *lnfw, *lnfb;           /* [C] */
    float *projw, *projb;         /* [C, E], [C] embedding projection (E != C) */
    float *mlm_dw, *mlm_db;       /* [E, C], [E] MLM head transform */
    float *mlm_lnw, *mlm_lnb;     /* [E] */
    float *mlm_bias;              /* [V] MLM output bias */
    float *disc_dw, *disc_db;     /* [C, C], [C] discriminator head */
    float *disc_ow, *disc_ob;     /* [1, C], [1] */
    float *cls_pw, *cls_pb;       /* [C, C], [C] classification pooler */
    float *cls_ow, *cls_ob;       /* [K, C], [K] classifier */
} ss_params;

/* One named tensor of the checkpoint: a slice of the flat parameter array. */
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[2];
    size_t offset, numel; /* in floats, into the flat array */
    int decay;            /* AdamW weight decay applies (2-D Linear weights) */
    int init;             /* initialisation rule (src/model/params.c) */
    int depth;            /* 0: embeddings; l + 1: block l; n_layer + 1: final LayerNorm and head
                             (layer-wise learning-rate decay scales by depth) */
} ss_param_info;

typedef struct ss_model ss_model;

ss_status ss_model_create(ss_model **out, const ss_model_config *c, ss_error *err);
/* A model whose token and position embeddings are those of `owner` (views
 * into owner's parameters and gradients; not in this model's own arena or
 * tensor table). Requires c->d_embed == owner's embedding width. */
ss_status ss_model_create_shared(ss_model **out, const ss_model_config *c, ss_model *owner,
                                 ss_error *err);
/* 1 when m reads another model's embeddings (made by ss_model_create_shared). */
int ss_model_shares_embeddings(const ss_model *m);
int ss_model_embed_width(const ss_model_config *c);
const char *ss_head_kind_name(ss_head_kind h);
void ss_model_free(ss_model *m);
const ss_model_config *ss_model_config_of(const ss_model *m);

/* GPT-2 initialisation: N(0, 0.02) weights and embeddings, residual
 * projections N(0, 0.02/sqrt(2L)), zero biases, LayerNorm 1/0. */
void ss_model_init_weights(ss_model *m, uint64_t seed);

/* Flat arrays and their views. */
size_t ss_model_num_params(const ss_model *m);
float *ss_model_params(ss_model *m);
float *ss_model_grads(ss_model *m);
const ss_params *ss_model_param_views(const ss_model *m);
const ss_params *ss_model_grad_views(const ss_model *m);
size_t ss_model_num_tensors(const ss_model *m);
const ss_param_info *ss_model_tensor(const ss_model *m, size_t i);
/* The tensor named `name` ("blocks.0.attn.qkv.weight"; NULL: none). */
const ss_param_info *ss_model_find_tensor(const ss_model *m, const char *name);
/* ---- Running the model ------------------------------------------------------
 * A batch: tokens[B,T]; targets[B,T] (-1 = no loss at that position);
 * key_valid[B,T] (encoder padding: 0 = padding key; NULL = all valid). */
typedef struct {
    const int32_t *tokens, *targets;
    const uint8_t *key_valid;
    int B, T;
} ss_batch;

typedef struct {
    double loss_sum;   /* summed cross-entropy over target positions, nats */
    int64_t n_targets; /* positions with target >= 0 */
    int64_t n_correct; /* of those, argmax == target */
} ss_loss_stats;

/* Body: embeddings -> blocks -> final LayerNorm. Returns the hidden states
 * [B,T,C] (valid until the next forward). train != 0 enables dropout with
 * masks derived from dropout_seed. */
ss_status ss_model_body_forward(ss_model *m, const int32_t *tokens,
                                const uint8_t *key_valid, int B, int T,
                                int train, uint64_t dropout_seed,
                                const float **hidden, ss_error *err);
/* The same body on T new positions t0..t0+T-1 of one sequence of a decoder,
 * the earlier ones cached: kv [L, max_seq, 3C] holds every layer's q|k|v
 * rows by position (rows < t0 are read, rows t0..t0+T-1 written), the
 * attention of the new rows reads rows 0..t0+T-1. No dropout, and no
 * backward afterwards (the activations lack q|k|v). With t0 = 0 the hidden
 * states are bit-identical to ss_model_body_forward's for B = 1. SS_ERR_ARG
 * for an encoder, SS_ERR_RANGE past max_seq. */
size_t ss_model_kv_floats(const ss_model_config *c);
ss_status ss_model_body_forward_kv(ss_model *m, float *kv, int t0, const int32_t *tokens, int T,
                                   const float **hidden, ss_error *err);

/* Gradient buffer for the hidden states of the last forward [B,T,C]: heads
 * accumulate into it (it is zeroed by body_forward when train != 0). */
float *ss_model_dhidden(ss_model *m);
/* Backpropagate dhidden through the body into the parameter gradients. */
void ss_model_body_backward(ss_model *m);
/* The same down to the tensors of depth min_depth (ss_param_info.depth: the
 * final LayerNorm at n_layer + 1, block l at l + 1, the embeddings at 0)
 * and no further: the gradients of those below are left as they are (a
 * frozen part of the body: gradual unfreezing). 0: the whole body. */
void ss_model_body_backward_to(ss_model *m, int min_depth);
/* Called by ss_model_body_backward right after block l's parameter
 * gradients are complete (l = n_layer - 1 down to 0): the step engine
 * starts their reduction across ranks there, while the blocks below
 * compute. fn NULL: none (the default). */
typedef void (*ss_block_grads_fn)(void *ctx, int layer);
void ss_model_set_block_hook(ss_model *m, ss_block_grads_fn fn, void *ctx);

/* Tied LM head + softmax cross-entropy over the target positions only (rows
 * are gathered first, so no logits exist for positions without a target).
 * With want_grad, accumulates d(loss_sum * grad_scale) into dhidden and the
 * token-embedding gradient. */
ss_status ss_lm_head(ss_model *m, const int32_t *targets, float grad_scale,
                     int want_grad, ss_loss_stats *stats, ss_error *err);
/* The same, also drawing samples[i] ~ softmax(logits / temperature) at
 * every target position i (seeded by rng, one draw each; other entries
 * untouched): an ELECTRA generator proposing replacements. The loss is the
 * model's (temperature 1); no gradient flows through the sampling. */
ss_status ss_lm_head_sample(ss_model *m, const int32_t *targets, float grad_scale, int want_grad,
                            ss_rng *rng, float temperature, int32_t *samples, ss_loss_stats *stats,
                            ss_error *err);

/* Logits [n, V] of the LM/MLM head at the given positions (b*T + t) of the
 * last forward. */
ss_status ss_lm_head_logits(ss_model *m, const int32_t *positions, int n, float *logits, ss_error *err);

/* ELECTRA discriminator head on every non-padding position (key_valid NULL:
 * all): BCE of "replaced" (replaced[i] != 0). probs (optional, [B*T])
 * receives sigmoid(z) at those positions. */
typedef struct {
    double loss_sum;
    int64_t n, correct, tp, fp, fn, positives;
} ss_disc_stats;
ss_status ss_disc_head(ss_model *m, const uint8_t *key_valid, const uint8_t *replaced, float grad_scale,
                       int want_grad, float *probs, ss_disc_stats *stats, ss_error *err);

/* Classification head (SS_HEAD_CLS) on the last body forward: per sequence b
 *   p_b = pool(hidden[b]) (cls | last | mean over key_valid, NULL = all valid)
 *   u_b = pooler ? tanh(Wp p_b + bp) : p_b;  u_b = dropout(u_b) when training
 *   z_b = Wo u_b + bo  [K logits];  loss_b = w[y_b] * CE(softmax(z_b), y_b)
 * labels [B] (NULL: no loss; a label < 0 skips that row), class_weights [K]
 * (NULL: all 1; PyTorch's CrossEntropyLoss(weight=) convention: the caller
 * divides by the sum of the weights). probs [B, K] (optional) receives the
 * softmax. With want_grad (needs a training body forward), accumulates
 * d(loss_sum * grad_scale) into dhidden and the head's gradients. Dropout
 * uses the model's dropout rate and the seed given to the body forward (its
 * own site). SS_ERR_ARG: a sequence with no valid position (cls pooling:
 * position 0 is padding), a negative class weight; SS_ERR_RANGE: a label
 * >= n_classes. */
typedef struct {
    double loss_sum;   /* sum over labelled rows of w[y] * CE */
    double weight_sum; /* sum over labelled rows of w[y] */
    int64_t n, correct;
} ss_cls_stats;
ss_status ss_cls_head(ss_model *m, const uint8_t *key_valid, const int32_t *labels, const float *class_weights,
                      float grad_scale, int want_grad, float *probs, ss_cls_stats *stats, ss_error *err);
/* The verbalizer's tokens for ss_verbalizer_head: n_words distinct tokens,
 * word j standing for class label[j] (NULL: word j is class j, n_words ==
 * n_classes); every class has at least one word. */
typedef struct {
    const int32_t *ids;   /* [n_words] */
    const int32_t *label; /* [n_words] or NULL */
    int n_words, n_classes;
} ss_verbalizer_tokens;

/* Verbalizer head (prompt-based fine-tuning: LM-BFF, PET): class logits come
 * from the LM/MLM head's logits of the verbalizer's tokens at one position
 * per row, positions[i] = b*T + t of the last body forward:
 *   z_ij = x_i . wte[ids[j]] (+ mlm_bias[ids[j]]),  x_i = h[positions[i]] (LM)
 *          or the MLM head's transform of it;
 *   s_ik = log sum_{j: label[j] = k} exp(z_ij)   (one word per class: z_ik)
 *   loss_i = w[y_i] * CE(softmax(s_i), y_i)
 * so a class's probability is the LM's probability of any of its words,
 * renormalised over the verbalizer (as zero-shot scoring, selfsup/prompt.h).
 * Only the n_words rows of the tied embedding are multiplied. labels [n]
 * (NULL: no loss; < 0 skips a row), class_weights, grad_scale, want_grad,
 * probs [n, n_classes] and stats as ss_cls_head. With want_grad, accumulates
 * d(loss_sum * grad_scale) into dhidden, the token embeddings' gradient (the
 * words' rows) and the MLM head's. SS_ERR_ARG: no LM/MLM head, a repeated
 * token, fewer than 2 classes, a class without a word; SS_ERR_RANGE: a
 * position, token, word's class or label out of range. */
ss_status ss_verbalizer_head(ss_model *m, const int32_t *positions, int n, const ss_verbalizer_tokens *v,
                             const int32_t *labels, const float *class_weights, float grad_scale, int want_grad,
                             float *probs, ss_cls_stats *stats, ss_error *err);
/* First float of the head's own parameters in the flat arrays (head tensors
 * come last): a frozen body trains [offset, num_params) only. num_params
 * when the head has no parameters of its own. */
size_t ss_model_head_offset(const ss_model *m);

/* Convenience: body forward + LM head (+ backward when grad_scale != 0).
 * LM and MLM heads only: a DISC or CLS model is refused (SS_ERR_ARG). */
ss_status ss_model_forward_backward(ss_model *m, const ss_batch *b,
                                    float grad_scale, uint64_t dropout_seed,
                                    ss_loss_stats *stats, ss_error *err);
ss_status ss_model_eval_loss(ss_model *m, const ss_batch *b,
                             ss_loss_stats *stats, ss_error *err);
void ss_model_zero_grads(ss_model *m);
/* The coming training batches are sequences row0.. of a larger batch (a
 * data-parallel shard): dropout draws the masks those rows have in it, so
 * the shards of a batch together get the whole batch's masks. 0 (the
 * default): the batch stands alone. */
void ss_model_set_row_offset(ss_model *m, size_t row0);
/* An encoder's attention for the coming passes: causal (each position sees
 * itself and the positions before it, as a decoder's) or, the default,
 * bidirectional. The hybrid objective trains some steps causally. A
 * decoder's attention is always causal, unless its config is bidirectional
 * (a classifier fine-tuned with --attention bidirectional). */
void ss_model_set_causal(ss_model *m, int causal);

/* Bytes of activation memory (forward + backward buffers) for a batch. */
size_t ss_model_activation_bytes(const ss_model_config *c, int B, int T);
/* Training FLOPs per token (forward + backward), the PaLM convention:
 * 6 * N + 12 * L * T * C, where N counts every weight used in a matmul
 * (biases, LayerNorm and the position embeddings do not count; the token
 * embeddings count once, as the tied output projection); 12 L T C is
 * attention's QK^T and PV (forward 4 L T C, backward twice that). */
double ss_model_flops_per_token(const ss_model_config *c, int T);
/* Its two parts: the body (blocks, attention, embedding projection) per
 * token, and the head per position that has a target (CLS: per classified
 * sequence). */
double ss_model_body_flops(const ss_model_config *c, int T);
double ss_model_head_flops(const ss_model_config *c);

/* ---- Model directories (src/model/model_io.c) ---------------------------------
 * DIR/config.json + DIR/model.safetensors (every tensor by its checkpoint
 * name, the config JSON in the metadata under "config", plus extra metadata).
 * Writes are atomic per file. load checks that config.json and the
 * safetensors metadata agree, that every tensor is present with the shape
 * the config implies and is finite, and that DIR/tokenizer.json (when
 * present) has the model's vocabulary size. Extra tensors (task heads) are
 * left for their owners to read. */
typedef struct {
    const char *key, *value;
} ss_meta_kv;
ss_status ss_model_save(const ss_model *m, const char *dir, const ss_meta_kv *meta,
                        size_t n_meta, ss_error *err);
ss_status ss_model_load(ss_model **out, const char *dir, ss_error *err);
/* The same file with an ELECTRA generator stored beside the model: its
 * tensors are "generator.<name>", its config the metadata "generator_config". */
ss_status ss_model_save_with(const ss_model *m, const ss_model *gen, const char *dir, const ss_meta_kv *meta,
                             size_t n_meta, ss_error *err);
/* Load that generator, sharing owner's embeddings, or with its own where
 * the file holds them ("generator.embeddings.token.weight": pretrain
 * --gen-embeddings own). SS_ERR_NOT_FOUND: none. */
ss_status ss_model_load_generator(ss_model *owner, const char *dir, ss_model **gen, ss_error *err);
/* Copy the body (embeddings, blocks, final LayerNorm) of the model saved in
 * DIR into m: DIR's kind, vocabulary, depth, widths and heads must equal m's
 * (the error names the first field that differs) and m's max_seq may not
 * exceed DIR's (m takes the first rows of the position table); DIR's head
 * (and an RTD run's generator) is ignored. Fine-tuning starts from this. */
ss_status ss_model_load_body(ss_model *m, const char *dir, ss_error *err);
/* The same, DIR's model of either kind: a decoder's and an encoder's bodies
 * are the same tensors, only the attention mask differs (m's kind decides
 * it). Continued pretraining under the other kind's objective starts from
 * this. */
ss_status ss_model_load_body_any_kind(ss_model *m, const char *dir, ss_error *err);
/* The same for every tensor, the head's included: DIR's head must be m's
 * (a CLS head also its number of classes). Prompt-based fine-tuning starts
 * from this: the pretrained LM/MLM head is trained, not replaced. */
ss_status ss_model_load_weights(ss_model *m, const char *dir, ss_error *err);
/* Read DIR/config.json only. */
ss_status ss_model_load_config(ss_model_config *c, const char *dir, ss_error *err);
/* 1 when every parameter is finite. */
int ss_model_params_finite(const ss_model *m);

#endif
