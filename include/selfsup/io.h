/* Small I/O helpers shared by every module: growable buffers, whole-file
 * reads for small files, atomic writes (temp file + fsync + rename), mkdir -p,
 * SHA-256 and XXH64. */
#ifndef SELFSUP_IO_H
#define SELFSUP_IO_H

#include <stdint.h>
#include <stdio.h>

#include "selfsup/error.h"

/* A growable byte buffer. Zero-initialise ({0}) before first use. */
typedef struct {
    char *data;
    size_t len, cap;
} ss_buf;

ss_status ss_buf_reserve(ss_buf *b, size_t extra, ss_error *err);
ss_status ss_buf_append(ss_buf *b, const void *data, size_t len, ss_error *err);
void ss_buf_free(ss_buf *b);

/* Read a whole file (meant for small files such as JSON) into out, adding a
 * terminating NUL that is not counted in out->len. */
ss_status ss_read_file(const char *path, ss_buf *out, ss_error *err);

/* Atomic file replacement: write to a temp file beside PATH, then commit
 * (fflush + fsync + rename + fsync of the directory). Until commit, an
 * existing PATH is untouched; abort removes the temp file. */
typedef struct ss_atomic_file ss_atomic_file;
ss_status ss_atomic_open(ss_atomic_file **out, const char *path, ss_error *err);
FILE *ss_atomic_stream(ss_atomic_file *f);
ss_status ss_atomic_commit(ss_atomic_file *f, ss_error *err); /* frees f */
void ss_atomic_abort(ss_atomic_file *f);                      /* frees f */
ss_status ss_write_file_atomic(const char *path, const void *data, size_t len,
                               ss_error *err);

/* mkdir -p */
ss_status ss_mkdir_p(const char *path, ss_error *err);
/* 1 when data[0..n) is strict UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int ss_utf8_valid(const void *data, size_t n);
int ss_file_exists(const char *path);

/* SHA-256 (FIPS 180-4). */
typedef struct {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t block[64];
    size_t blen;
} ss_sha256;
void ss_sha256_init(ss_sha256 *s);
void ss_sha256_update(ss_sha256 *s, const void *data, size_t len);
void ss_sha256_final(ss_sha256 *s, uint8_t digest[32]);
void ss_sha256_hex(const uint8_t digest[32], char hex[65]);
ss_status ss_sha256_file(const char *path, char hex[65], ss_error *err);

/* XXH64 (xxHash's 64-bit hash, the reference library's XXH64(data, len,
 * seed)): a fast non-cryptographic checksum, for detecting corrupted data.
 * Streaming (init, update any number of times, digest) or in one call. */
typedef struct {
    uint64_t v[4], seed, total;
    uint8_t block[32];
    size_t blen;
} ss_xxh64_state;
void ss_xxh64_init(ss_xxh64_state *s, uint64_t seed);
void ss_xxh64_update(ss_xxh64_state *s, const void *data, size_t len);
uint64_t ss_xxh64_digest(const ss_xxh64_state *s);
uint64_t ss_xxh64(const void *data, size_t len, uint64_t seed);

#endif
