/* Hugging Face safetensors files: the checkpoint and model format.
 *
 * Layout: u64 little-endian header size N, N bytes of UTF-8 JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "NAME": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
 * (padded with spaces; selfsup pads to a multiple of 8 so the data starts
 * 8-aligned), then the raw little-endian, row-major tensor data. Offsets are
 * relative to the start of the data; the tensors must tile the data exactly.
 * Files written here load with the reference Python/Rust implementation, and
 * the reader applies the same validation as that implementation.
 *
 * Checksum: the writer adds the metadata entry SS_ST_CHECKSUM_KEY, the XXH64
 * (seed 0) of the whole data section as 16 lowercase hex digits; the reader
 * verifies it when present (a file without it, from another writer or from
 * selfsup before the key existed, loads unchecked). XXH64, not SHA-256: it
 * detects damage, not tampering, at memory speed (tests/test_io_xxh64.c). */
#ifndef SELFSUP_SAFETENSORS_H
#define SELFSUP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

/* Element types (the safetensors dtype strings). */
typedef enum {
    SS_F64, SS_F32, SS_F16, SS_BF16,
    SS_I64, SS_I32, SS_I16, SS_I8,
    SS_U64, SS_U32, SS_U16, SS_U8,
    SS_BOOL, SS_F8_E5M2, SS_F8_E4M3,
    SS_DTYPE_COUNT
} ss_dtype;

/* Bytes per element, and the dtype's name in the header ("F32", ...). */
size_t ss_dtype_size(ss_dtype dt);
const char *ss_dtype_name(ss_dtype dt);
/* Parse a header dtype name; returns 0 and sets *out, or -1 if unknown. */
int ss_dtype_parse(const char *name, ss_dtype *out);

#define SS_ST_MAX_DIM 8

/* One tensor to write. shape[0..ndim) with ndim 0 meaning a scalar. */
typedef struct {
    const char *name;
    ss_dtype dtype;
    int ndim;
    int64_t shape[SS_ST_MAX_DIM];
    const void *data; /* may be NULL only if the tensor has no elements */
} ss_st_tensor;

#define SS_ST_CHECKSUM_KEY "data_xxh64"

/* One "__metadata__" entry (string to string). */
typedef struct {
    const char *key, *value;
} ss_st_meta;

/* Write tensors (in the given order, contiguous, data start 8-aligned) and
 * metadata to PATH atomically: until the new file is complete and synced, an
 * existing PATH is untouched. Names must be unique, non-empty and not
 * "__metadata__"; metadata keys must be unique and not SS_ST_CHECKSUM_KEY
 * (the writer adds it after the caller's entries). A tensor whose offset is not
 * a multiple of its element size (e.g. an F64 after a U8 of odd length) is
 * still valid; order larger element types first to keep every tensor
 * naturally aligned in a mapped file. */
ss_status ss_safetensors_write(const char *path, const ss_st_tensor *tensors, size_t n,
                               const ss_st_meta *meta, size_t n_meta, ss_error *err);

/* A tensor in an opened file. data points into the mapped file (or, if the
 * file's layout leaves it misaligned for its dtype, into an aligned copy);
 * valid until ss_safetensors_close. */
typedef struct {
    const char *name;
    ss_dtype dtype;
    int ndim;
    int64_t shape[SS_ST_MAX_DIM];
    int64_t numel;
    const void *data;
    size_t nbytes;
} ss_st_info;

typedef struct ss_safetensors ss_safetensors;

/* Open and fully validate PATH (header size, JSON, every tensor entry, the
 * offsets tiling the data exactly, the data checksum when present). Errors
 * are SS_ERR_IO (cannot open/map) or SS_ERR_FORMAT naming the file and the
 * tensor or field at fault. */
ss_status ss_safetensors_open(ss_safetensors **out, const char *path, ss_error *err);
/* The same without reading the tensor data for its checksum, for a caller
 * that reads only the metadata (a step, a config) of a file that is also
 * opened fully; before using its tensors, call ss_safetensors_verify. */
ss_status ss_safetensors_open_header(ss_safetensors **out, const char *path, ss_error *err);
/* Check the data against SS_ST_CHECKSUM_KEY (once; SS_OK without the key):
 * SS_ERR_FORMAT naming the file on a mismatch. */
ss_status ss_safetensors_verify(ss_safetensors *f, ss_error *err);
void ss_safetensors_close(ss_safetensors *f); /* NULL is fine */

const char *ss_safetensors_path(const ss_safetensors *f);
/* Tensors, ordered by their position in the file. */
size_t ss_safetensors_count(const ss_safetensors *f);
const char *ss_safetensors_name(const ss_safetensors *f, size_t i);
const ss_st_info *ss_safetensors_info(const ss_safetensors *f, size_t i);
/* Lookup by name (hash table); NULL if absent. */
const ss_st_info *ss_safetensors_find(const ss_safetensors *f, const char *name);

/* Look up NAME and check its dtype and shape: expected_shape NULL accepts any
 * shape of expected_ndim dims (expected_ndim < 0 accepts any rank).
 * SS_ERR_NOT_FOUND if absent, SS_ERR_FORMAT naming both the found and the
 * expected dtype/shape on mismatch. */
ss_status ss_safetensors_get(const ss_safetensors *f, const char *name, ss_dtype dtype,
                             int expected_ndim, const int64_t *expected_shape,
                             const void **data, ss_error *err);
ss_status ss_safetensors_get_f32(const ss_safetensors *f, const char *name,
                                 int expected_ndim, const int64_t *expected_shape,
                                 const float **data, ss_error *err);

/* "__metadata__" entries: value for KEY or NULL; and iteration in file order. */
const char *ss_safetensors_meta(const ss_safetensors *f, const char *key);
size_t ss_safetensors_meta_count(const ss_safetensors *f);
const char *ss_safetensors_meta_key(const ss_safetensors *f, size_t i);

#endif
