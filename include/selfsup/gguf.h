/* GGUF files (version 3), the model format of llama.cpp and the tools built
 * on it (Ollama, LM Studio, llama-server).
 *
 * Layout, all little-endian (ggml's docs/gguf.md):
 *   "GGUF", u32 version 3, u64 tensor count, u64 key-value count,
 *   key-value pairs: string key, u32 value type, value
 *     (a string is u64 length + bytes; an array is u32 element type,
 *      u64 count, elements),
 *   tensor infos: string name, u32 n_dims, u64 ne[n_dims] (ne[0] is the
 *     fastest-varying dimension: a torch [out, in] matrix has ne = {in, out}),
 *     u32 ggml type, u64 offset into the data section,
 *   padding to general.alignment (32), then the tensor data, each tensor
 *   starting at a multiple of the alignment.
 *
 * The writer collects metadata and tensors (float32 in memory, converted to
 * the file's type as they are written) and writes the file atomically. */
#ifndef SELFSUP_GGUF_H
#define SELFSUP_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

/* Tensor element types: ggml's type numbers. */
typedef enum {
    SS_GGML_F32 = 0,
    SS_GGML_F16 = 1,
    SS_GGML_Q8_0 = 8,
    SS_GGML_BF16 = 30
} ss_ggml_type;

/* Q8_0: blocks of 32 values, each an fp16 scale d = max|x| / 127 and 32
 * int8 q = round(x / d) (ties away from zero); x ~ d * q. */
#define SS_Q8_0_BLOCK 32
#define SS_Q8_0_BYTES 34

/* "f32", "f16", "bf16", "q8_0" <-> type; parse returns -1 if unknown. */
const char *ss_ggml_type_name(ss_ggml_type t);
int ss_ggml_type_parse(const char *name, ss_ggml_type *out);
/* Bytes of n values of type t (n a multiple of 32 for Q8_0). */
size_t ss_ggml_type_bytes(ss_ggml_type t, size_t n);

/* IEEE half and bfloat16, round to nearest even; NaN stays NaN, overflow
 * gives infinity. */
uint16_t ss_f32_to_f16(float f);
float ss_f16_to_f32(uint16_t h);
uint16_t ss_f32_to_bf16(float f);
float ss_bf16_to_f32(uint16_t h);
/* n (a multiple of 32) floats to n/32 Q8_0 blocks at out. */
void ss_quantize_q8_0(const float *x, size_t n, uint8_t *out);

typedef struct ss_gguf_writer ss_gguf_writer;

ss_status ss_gguf_writer_new(ss_gguf_writer **out, ss_error *err);
void ss_gguf_writer_free(ss_gguf_writer *w); /* NULL is fine */

/* Metadata, written in the order added. Keys must be unique. */
ss_status ss_gguf_add_u32(ss_gguf_writer *w, const char *key, uint32_t v, ss_error *err);
ss_status ss_gguf_add_f32(ss_gguf_writer *w, const char *key, float v, ss_error *err);
ss_status ss_gguf_add_bool(ss_gguf_writer *w, const char *key, int v, ss_error *err);
ss_status ss_gguf_add_str(ss_gguf_writer *w, const char *key, const char *v, ss_error *err);
ss_status ss_gguf_add_str_array(ss_gguf_writer *w, const char *key, const char *const *v, size_t n,
                                ss_error *err);
ss_status ss_gguf_add_i32_array(ss_gguf_writer *w, const char *key, const int32_t *v, size_t n,
                                ss_error *err);

/* A tensor of float32 data (row-major, shape outermost first as in torch,
 * 1 or 2 dimensions), stored as `type`. data must stay valid until
 * ss_gguf_write. Q8_0 needs the innermost dimension to be a multiple of 32
 * (SS_ERR_ARG otherwise). */
ss_status ss_gguf_add_tensor(ss_gguf_writer *w, const char *name, ss_ggml_type type, int ndim,
                             const int64_t *shape, const float *data, ss_error *err);

/* Write everything to PATH (atomically). */
ss_status ss_gguf_write(ss_gguf_writer *w, const char *path, ss_error *err);

#endif
