/* Token shards: a corpus encoded once into zstd-compressed files of token ids.
 *
 * A shard file is a fixed 64-byte little-endian header followed by one zstd
 * frame holding the ids (uint16 when vocab_size <= 65536, else uint32):
 *   0  magic "SSSHARD1" (8 bytes)
 *   8  u32 format version (1)
 *  12  u32 id width in bytes (2 or 4)
 *  16  u32 vocab size
 *  20  u32 separator token id (between documents)
 *  24  u64 token count
 *  32  u64 document count
 *  40  u64 UTF-8 bytes of text the tokens stand for (for bits per byte)
 *  48  u64 checksum: FNV-1a 64 over the little-endian id bytes
 *  56  u64 compressed payload size in bytes
 * A prepared directory holds train-NNNNN.shard and val-NNNNN.shard files,
 * the tokenizer.json used, and meta.json describing both splits. */
#ifndef SELFSUP_SHARD_H
#define SELFSUP_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"
#include "selfsup/tokenizer.h"

#define SS_SHARD_MAGIC "SSSHARD1"
#define SS_SHARD_VERSION 1u
#define SS_SHARD_HEADER_SIZE 64

typedef struct {
    uint32_t version, id_bytes, vocab_size, separator_id;
    uint64_t n_tokens, n_docs, n_text_bytes, checksum, payload_bytes;
} ss_shard_header;

/* ---- Writing (atomic: the file appears only when closed successfully) ---- */
typedef struct ss_shard_writer ss_shard_writer;
ss_status ss_shard_writer_open(ss_shard_writer **out, const char *path,
                               uint32_t vocab_size, uint32_t separator_id,
                               ss_error *err);
/* Append one document's ids (the separator is appended after it). */
ss_status ss_shard_writer_add_doc(ss_shard_writer *w, const int32_t *ids,
                                  size_t n, uint64_t text_bytes, ss_error *err);
ss_status ss_shard_writer_close(ss_shard_writer *w, ss_error *err); /* frees */
void ss_shard_writer_abort(ss_shard_writer *w);                    /* frees */

/* ---- Reading (streaming, constant memory) --------------------------------
 * next fills up to cap ids; *got == 0 at the end, where the token count and
 * checksum are verified: truncation or corruption is SS_ERR_CHECKSUM or
 * SS_ERR_FORMAT naming the file. */
typedef struct ss_shard_reader ss_shard_reader;
ss_status ss_shard_reader_open(ss_shard_reader **out, const char *path,
                               ss_error *err);
const ss_shard_header *ss_shard_reader_header(const ss_shard_reader *r);
ss_status ss_shard_reader_next(ss_shard_reader *r, int32_t *ids, size_t cap,
                               size_t *got, ss_error *err);
void ss_shard_reader_close(ss_shard_reader *r);

/* Read and validate only the header. */
ss_status ss_shard_read_header(const char *path, ss_shard_header *h, ss_error *err);
/* Stream a whole shard to verify count and checksum. */
ss_status ss_shard_verify(const char *path, ss_error *err);

/* ---- Preparing a corpus ----------------------------------------------------- */
typedef enum { SS_DOC_LINE, SS_DOC_BLANK, SS_DOC_FILE } ss_doc_boundary;

typedef struct {
    const char *tokenizer_path;
    const char *out_dir;
    double val_fraction;        /* default 0.05; by document, seeded hash */
    uint64_t seed;              /* for the train/val assignment */
    ss_doc_boundary boundary;   /* default SS_DOC_LINE */
    const char *separator;      /* default "<|endoftext|>" */
    uint64_t shard_tokens;      /* max tokens per shard, default 1<<26 */
    int nthreads;
} ss_prepare_opts;

typedef struct {
    uint64_t docs[2], tokens[2], text_bytes[2]; /* [0] train, [1] val */
    size_t shards[2];
} ss_prepare_stats;

ss_status ss_prepare_corpus(const ss_prepare_opts *opts,
                            const char *const *paths, size_t n_paths,
                            ss_prepare_stats *stats, ss_error *err);

#endif
