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
/* Remove the temp files (PATH.tmp.XXXXXX) that atomic writes of PATH left
 * behind when their process was killed; *removed (may be NULL) counts them.
 * Only for a PATH no other process is writing. */
ss_status ss_atomic_remove_stale(const char *path, int *removed, ss_error *err);

/* One writer per run directory (pretrain, finetune): an exclusive advisory
 * lock on DIR/.lock (flock; the file holds the owner's pid), in *fd until
 * ss_run_unlock, released by the kernel when the process ends however it
 * ends. DIR must exist. Another process holding it: SS_ERR_ARG naming DIR
 * and that process's pid; never waits. */
ss_status ss_run_lock(const char *dir, int *fd, ss_error *err);
void ss_run_unlock(int fd);

/* mkdir -p */
ss_status ss_mkdir_p(const char *path, ss_error *err);
/* 1 when data[0..n) is strict UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int ss_utf8_valid(const void *data, size_t n);
/* Length of the valid UTF-8 character at data[0..n), 0 when the byte there
 * starts none (invalid, or cut short by n). */
size_t ss_utf8_seq_len(const void *data, size_t n);
/* A NUL-terminated copy of data[0..n) in which every byte that is not part
 * of a valid UTF-8 character is replaced by U+FFFD (one per byte, as
 * metrics.jsonl does): text that any JSON writer can carry. malloc'd; NULL
 * when out of memory. */
char *ss_utf8_sanitize(const void *data, size_t n);
/* A printable excerpt of untrusted bytes for an error message, into buf
 * (cap >= 8 bytes): valid UTF-8 characters as they are, a backslash as
 * "\\", control characters (C0, DEL, C1) and bytes of invalid UTF-8 as
 * "\xNN"; at most MAX input bytes (never splitting a character), then
 * "..." when data was cut. Returns buf. */
const char *ss_quote_bytes(char *buf, size_t cap, const void *data, size_t n, size_t max);
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
