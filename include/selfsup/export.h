/* Exporting a model directory to other tools' formats.
 *
 * GGUF for llama.cpp: a selfsup decoder is GPT-2's architecture (pre-
 * LayerNorm blocks, learned positions, tanh-approximated GELU, biases, LM
 * head tied to the token embeddings), so it is written as llama.cpp's `gpt2`
 * architecture: hyperparameters under the gpt2.* keys, tensors under
 * llama.cpp's names in the same [out, in] layout (no transposes: GGUF lists
 * dimensions innermost first), no output.weight (llama.cpp ties it to
 * token_embd), and the byte-level BPE tokenizer (tokenizer.ggml.model
 * "gpt2", pre-tokenizer "gpt-2", tokens, token types, merges, special ids). */
#ifndef SELFSUP_EXPORT_H
#define SELFSUP_EXPORT_H

#include "selfsup/error.h"
#include "selfsup/gguf.h"

typedef struct {
    int n_tensors;       /* tensors written */
    int n_fallback_f16;  /* q8_0 only: matrices whose rows are not a multiple
                            of 32 values, written as f16 instead */
    int lowercase, normalization; /* the tokenizer lowercases / normalizes
                                     (NFC/NFKC), which llama.cpp will not do */
} ss_gguf_export_info;

/* RUN (config.json, model.safetensors, tokenizer.json) -> OUT (GGUF v3,
 * written atomically). Matrices (embeddings and Linear weights) are stored
 * as `type` (f32, f16, bf16 or q8_0), 1-D tensors (LayerNorm, biases) as
 * f32. SS_ERR_ARG for a model llama.cpp's gpt2 architecture cannot run:
 * an encoder (mlm, rtd), a classifier, an ELECTRA generator. info may be
 * NULL. */
ss_status ss_export_gguf(const char *run_dir, const char *out_path, ss_ggml_type type,
                         ss_gguf_export_info *info, ss_error *err);

#endif
