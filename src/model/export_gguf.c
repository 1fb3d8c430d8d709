/* A decoder run directory as a GGUF file for llama.cpp (architecture gpt2);
 * see include/selfsup/export.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/export.h"
#include "selfsup/path.h"
#include "selfsup/model.h"
#include "selfsup/tokenizer.h"

/* llama.cpp's token types (llama_token_type) and file types (llama_ftype). */
enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4 };

static uint32_t file_type(ss_ggml_type t) {
    switch (t) {
    case SS_GGML_F16: return 1;
    case SS_GGML_Q8_0: return 7;
    case SS_GGML_BF16: return 32;
    default: return 0;
    }
}

/* selfsup's checkpoint names -> llama.cpp's gpt2 names. Per block:
 * "blocks.L.<part>.<weight|bias>" -> "blk.L.<gguf part>.<weight|bias>". */
static const struct { const char *selfsup, *gguf; } GLOBAL_NAMES[] = {
    {"embeddings.token.weight", "token_embd.weight"},
    {"embeddings.position.weight", "position_embd.weight"},
    {"ln_f.weight", "output_norm.weight"},
    {"ln_f.bias", "output_norm.bias"},
};
static const struct { const char *selfsup, *gguf; } BLOCK_PARTS[] = {
    {"ln1", "attn_norm"}, {"attn.qkv", "attn_qkv"}, {"attn.proj", "attn_output"},
    {"ln2", "ffn_norm"},  {"mlp.fc", "ffn_up"},     {"mlp.proj", "ffn_down"},
};

static ss_status gguf_name(const char *name, char *out, size_t cap, ss_error *err) {
    for (size_t i = 0; i < sizeof GLOBAL_NAMES / sizeof GLOBAL_NAMES[0]; i++)
        if (!strcmp(name, GLOBAL_NAMES[i].selfsup)) {
            snprintf(out, cap, "%s", GLOBAL_NAMES[i].gguf);
            return SS_OK;
        }
    int layer, n = 0;
    if (sscanf(name, "blocks.%d.%n", &layer, &n) == 1 && n > 0) {
        const char *part = name + n, *dot = strrchr(part, '.');
        for (size_t i = 0; dot && i < sizeof BLOCK_PARTS / sizeof BLOCK_PARTS[0]; i++)
            if (strlen(BLOCK_PARTS[i].selfsup) == (size_t)(dot - part) &&
                !strncmp(part, BLOCK_PARTS[i].selfsup, (size_t)(dot - part))) {
                snprintf(out, cap, "blk.%d.%s%s", layer, BLOCK_PARTS[i].gguf, dot);
                return SS_OK;
            }
    }
    return ss_fail(err, SS_ERR_ARG, "tensor '%s' has no counterpart in llama.cpp's gpt2 architecture", name);
}

/* Only a plain decoder (LM head, no embedding projection) is GPT-2. */
static ss_status check_model(const ss_model_config *c, const char *dir, ss_error *err) {
    if (c->kind != SS_DECODER)
        return ss_fail(err, SS_ERR_ARG, "%s is an encoder (masked-LM or ELECTRA run): llama.cpp's gpt2 "
                       "architecture runs decoders (clm runs) only", dir);
    if (c->head != SS_HEAD_LM)
        return ss_fail(err, SS_ERR_ARG, "%s has a '%s' head: GGUF export covers pretrained decoders (clm runs) "
                       "with their tied LM head", dir, ss_head_kind_name(c->head));
    if (c->d_embed && c->d_embed != c->d_model)
        return ss_fail(err, SS_ERR_ARG, "%s projects its embeddings (d_embed %d != d_model %d), which GPT-2 "
                       "does not", dir, c->d_embed, c->d_model);
    return SS_OK;
}

static ss_status add_hparams(ss_gguf_writer *w, const ss_model_config *c, const char *name, ss_ggml_type type,
                             ss_error *err) {
    ss_status st = ss_gguf_add_str(w, "general.architecture", "gpt2", err);
    if (!st) st = ss_gguf_add_str(w, "general.name", name, err);
    if (!st) st = ss_gguf_add_u32(w, "general.file_type", file_type(type), err);
    if (!st) st = ss_gguf_add_u32(w, "general.quantization_version", 2, err);
    if (!st) st = ss_gguf_add_u32(w, "gpt2.context_length", (uint32_t)c->max_seq, err);
    if (!st) st = ss_gguf_add_u32(w, "gpt2.embedding_length", (uint32_t)c->d_model, err);
    if (!st) st = ss_gguf_add_u32(w, "gpt2.feed_forward_length", (uint32_t)c->d_ff, err);
    if (!st) st = ss_gguf_add_u32(w, "gpt2.block_count", (uint32_t)c->n_layer, err);
    if (!st) st = ss_gguf_add_u32(w, "gpt2.attention.head_count", (uint32_t)c->n_head, err);
    if (!st) st = ss_gguf_add_f32(w, "gpt2.attention.layer_norm_epsilon", 1e-5f, err);
    if (!st) st = ss_gguf_add_u32(w, "gpt2.vocab_size", (uint32_t)c->vocab_size, err);
    return st;
}

/* "left right" in the byte-level alphabet (which has no space: byte 0x20 is
 * U+0120), as llama.cpp splits them. */
static char *merge_string(const ss_tokenizer *t, size_t rank) {
    int32_t p[2];
    ss_tokenizer_merge(t, rank, p);
    const char *a = ss_tokenizer_token(t, p[0]), *b = ss_tokenizer_token(t, p[1]);
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (s) snprintf(s, la + lb + 2, "%s %s", a, b);
    return s;
}

/* Special-token ids by their selfsup names (absent ones are not written).
 * The end of text: <|endoftext|>, else the first special token (llama.cpp
 * would otherwise stop at its gpt2 default, token 11). */
static ss_status add_special_ids(ss_gguf_writer *w, const ss_tokenizer *t, ss_error *err) {
    static const struct { const char *key, *token; } IDS[] = {
        {"tokenizer.ggml.unknown_token_id", "[UNK]"}, {"tokenizer.ggml.seperator_token_id", "[SEP]"},
        {"tokenizer.ggml.padding_token_id", "[PAD]"}, {"tokenizer.ggml.cls_token_id", "[CLS]"},
        {"tokenizer.ggml.mask_token_id", "[MASK]"},
    };
    int32_t eos = ss_tokenizer_token_id(t, "<|endoftext|>");
    for (size_t i = 0; eos < 0 && i < ss_tokenizer_num_added(t); i++)
        if (ss_tokenizer_added(t, i)->special) eos = ss_tokenizer_added(t, i)->id;
    if (eos < 0)
        return ss_fail(err, SS_ERR_ARG, "the tokenizer has no special token to end the text (<|endoftext|>)");
    ss_status st = ss_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eos, err);
    if (!st) st = ss_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos, err);
    for (size_t i = 0; i < sizeof IDS / sizeof IDS[0] && !st; i++) {
        int32_t id = ss_tokenizer_token_id(t, IDS[i].token);
        if (id >= 0 && ss_tokenizer_is_special(t, id)) st = ss_gguf_add_u32(w, IDS[i].key, (uint32_t)id, err);
    }
    if (!st) st = ss_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 0, err);
    if (!st) st = ss_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", 0, err);
    return st;
}

/* Tokens (byte-level strings; added tokens by their text), their types
 * (special added tokens are control tokens, matched only when asked, as in
 * selfsup), the merges in rank order, special ids. */
static ss_status add_tokenizer(ss_gguf_writer *w, const ss_tokenizer *t, ss_error *err) {
    size_t V = ss_tokenizer_vocab_size(t), M = ss_tokenizer_num_merges(t);
    const char **tokens = malloc(V * sizeof *tokens);
    int32_t *types = malloc(V * sizeof *types);
    char **merges = calloc(M ? M : 1, sizeof *merges);
    ss_status st = tokens && types && merges ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < V && !st; i++) {
        tokens[i] = ss_tokenizer_token(t, (int32_t)i);
        types[i] = TOKEN_NORMAL;
    }
    for (size_t i = 0; i < ss_tokenizer_num_added(t) && !st; i++) {
        const ss_added_token *a = ss_tokenizer_added(t, i);
        types[a->id] = a->special ? TOKEN_CONTROL : TOKEN_USER_DEFINED;
    }
    for (size_t r = 0; r < M && !st; r++)
        if (!(merges[r] = merge_string(t, r))) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_gguf_add_str(w, "tokenizer.ggml.model", "gpt2", err);
    if (!st) st = ss_gguf_add_str(w, "tokenizer.ggml.pre", "gpt-2", err);
    if (!st) st = ss_gguf_add_str_array(w, "tokenizer.ggml.tokens", tokens, V, err);
    if (!st) st = ss_gguf_add_i32_array(w, "tokenizer.ggml.token_type", types, V, err);
    if (!st) st = ss_gguf_add_str_array(w, "tokenizer.ggml.merges", (const char *const *)merges, M, err);
    if (!st) st = add_special_ids(w, t, err);
    for (size_t r = 0; merges && r < M; r++) free(merges[r]);
    free(merges);
    free(tokens);
    free(types);
    return st;
}

/* A model without biases ("bias": false) has none of GPT-2's block and
 * final-norm biases, which llama.cpp's gpt2 architecture requires: each is
 * written as zeros (the same function), beside its weight. `zeros` holds at
 * least the longest bias (3 d_model or d_ff) and outlives the writer. */
static ss_status add_zero_bias(ss_gguf_writer *w, const char *weight_name, const ss_param_info *p,
                               const float *zeros, ss_gguf_export_info *info, ss_error *err) {
    size_t n = strlen(weight_name);
    if (strcmp(p->name, "embeddings.token.weight") == 0 || strcmp(p->name, "embeddings.position.weight") == 0 ||
        n < 7 || strcmp(weight_name + n - 7, ".weight") != 0)
        return SS_OK;
    char name[96];
    snprintf(name, sizeof name, "%.*s.bias", (int)(n - 7), weight_name);
    int64_t shape[1] = {p->shape[0]};
    info->n_tensors++;
    return ss_gguf_add_tensor(w, name, SS_GGML_F32, 1, shape, zeros, err);
}

/* Every tensor of the model's table under its llama.cpp name: matrices as
 * `type` (q8_0 needs rows of a multiple of 32: others fall back to f16),
 * vectors as f32. */
static ss_status add_tensors(ss_gguf_writer *w, ss_model *m, ss_ggml_type type, const float *zeros,
                             ss_gguf_export_info *info, ss_error *err) {
    const float *params = ss_model_params(m);
    int no_bias = ss_model_config_of(m)->no_bias;
    ss_status st = SS_OK;
    for (size_t i = 0; i < ss_model_num_tensors(m) && !st; i++) {
        const ss_param_info *p = ss_model_tensor(m, i);
        char name[96];
        if ((st = gguf_name(p->name, name, sizeof name, err))) break;
        ss_ggml_type tt = p->ndim == 2 ? type : SS_GGML_F32;
        if (tt == SS_GGML_Q8_0 && p->shape[p->ndim - 1] % SS_Q8_0_BLOCK) {
            tt = SS_GGML_F16;
            info->n_fallback_f16++;
        }
        st = ss_gguf_add_tensor(w, name, tt, p->ndim, p->shape, params + p->offset, err);
        info->n_tensors++;
        if (!st && no_bias) st = add_zero_bias(w, name, p, zeros, info, err);
    }
    return st;
}

/* The run's name: the last component of its path. */
static void run_name(const char *dir, char *out, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(out, cap, "%.*s", (int)(n - b), dir + b);
}

ss_status ss_export_gguf(const char *run_dir, const char *out_path, ss_ggml_type type,
                         ss_gguf_export_info *info, ss_error *err) {
    ss_gguf_export_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    ss_model_config c;
    ss_status st = ss_model_load_config(&c, run_dir, err);
    if (!st) st = check_model(&c, run_dir, err);
    if (st) return st;
    char path[SS_PATH_MAX], name[256];
    if ((st = ss_path_join(path, sizeof path, run_dir, SS_RUN_TOKENIZER, err))) return st;
    run_name(run_dir, name, sizeof name);
    ss_model *m = NULL;
    ss_tokenizer *t = NULL;
    ss_gguf_writer *w = NULL;
    size_t longest = (size_t)(3 * c.d_model > c.d_ff ? 3 * c.d_model : c.d_ff);
    float *zeros = c.no_bias ? calloc(longest, sizeof *zeros) : NULL;
    if (c.no_bias && !zeros) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!(st = ss_model_load(&m, run_dir, err)) && !(st = ss_tokenizer_load(&t, path, err))) {
        info->lowercase = ss_tokenizer_lowercase(t);
        info->normalization = ss_tokenizer_normalization(t) != SS_NORM_NONE;
        st = ss_gguf_writer_new(&w, err);
    }
    if (!st) st = add_hparams(w, &c, name, type, err);
    if (!st) st = add_tokenizer(w, t, err);
    if (!st) st = add_tensors(w, m, type, zeros, info, err);
    if (!st) st = ss_gguf_write(w, out_path, err);
    ss_gguf_writer_free(w);
    free(zeros);
    ss_tokenizer_free(t);
    ss_model_free(m);
    return st;
}
