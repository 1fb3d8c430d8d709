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
 * The payload is one zstd frame with its content checksum on; the FNV-1a
 * checksum covers the ids themselves, so a reader verifies both. The file
 * size is exactly 64 + payload size (no trailing bytes). Ids are < vocab
 * size. Every document is followed by the separator id, so a shard is the
 * stream "doc sep doc sep ..." and n_tokens counts the separators too.
 *
 * A prepared directory holds train-NNNNN.shard and val-NNNNN.shard files,
 * the tokenizer.json used, and meta.json describing both splits:
 *   {"format": "selfsup-shards", "version": 1, "tokenizer": "tokenizer.json",
 *    "vocab_size": V, "separator": "<|endoftext|>", "separator_id": S,
 *    "doc_boundary": "line"|"blank"|"file", "val_fraction": F, "seed": N,
 *    "shard_tokens": N, "inputs": [{"path": P, "bytes": N, "text_bytes": N}],
 *    "splits": {"train": {"shards": ["train-00000.shard", ...], "docs": N,
 *                         "tokens": N, "text_bytes": N},
 *               "val": {...}}}
 * A split without documents has "shards": []. */
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
/* Append one document's ids (the separator is appended after it). An id
 * outside [0, vocab_size) is SS_ERR_RANGE naming it; nothing is appended
 * then. */
ss_status ss_shard_writer_add_doc(ss_shard_writer *w, const int32_t *ids,
                                  size_t n, uint64_t text_bytes, ss_error *err);
/* Append part of a document (documents too big to encode at once); when
 * end_doc is 1 the separator follows and the document is counted. */
ss_status ss_shard_writer_append(ss_shard_writer *w, const int32_t *ids, size_t n,
                                 uint64_t text_bytes, int end_doc, ss_error *err);
/* Tokens written so far (separators included). */
uint64_t ss_shard_writer_tokens(const ss_shard_writer *w);
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

/* Parse and validate a 64-byte header image (name used in messages). */
ss_status ss_shard_header_parse(const unsigned char raw[SS_SHARD_HEADER_SIZE],
                                const char *name, ss_shard_header *h, ss_error *err);

/* ---- A split of a prepared directory, as one id stream --------------------
 * open reads DIR/meta.json, checks that every listed shard exists and that
 * its header agrees with the meta (vocab size, separator, id width) and that
 * the headers add up to the split's docs/tokens/text_bytes. next streams the
 * ids of all shards in order (each shard verified at its end); *got == 0 at
 * the end of the split. Memory is constant. */
typedef struct ss_shardset ss_shardset;
ss_status ss_shardset_open(ss_shardset **out, const char *dir, const char *split,
                           ss_error *err);
ss_status ss_shardset_next(ss_shardset *s, int32_t *ids, size_t cap, size_t *got,
                           ss_error *err);
ss_status ss_shardset_rewind(ss_shardset *s, ss_error *err);
void ss_shardset_close(ss_shardset *s);
uint32_t ss_shardset_vocab_size(const ss_shardset *s);
uint32_t ss_shardset_separator_id(const ss_shardset *s);
uint64_t ss_shardset_tokens(const ss_shardset *s);     /* whole split */
uint64_t ss_shardset_docs(const ss_shardset *s);
uint64_t ss_shardset_text_bytes(const ss_shardset *s);
size_t ss_shardset_num_shards(const ss_shardset *s);
const char *ss_shardset_shard_path(const ss_shardset *s, size_t i);

/* ---- Preparing a corpus -----------------------------------------------------
 * Documents (per boundary):
 *   SS_DOC_LINE   each line without its "\n" (or "\r\n") is a document;
 *                 empty lines are skipped.
 *   SS_DOC_BLANK  blocks of lines separated by one or more blank lines
 *                 (empty or whitespace-only); inner newlines are kept, the
 *                 block's final "\n" (or "\r\n") is not.
 *   SS_DOC_FILE   each whole file, byte for byte, is one document (empty
 *                 files give none). Encoded in pieces of about 256 KB, cut
 *                 just before a line end ("\n" or "\r\n") that follows a
 *                 non-whitespace character, so memory stays bounded and the
 *                 ids equal those of encoding the whole file at once.
 * Document i (counted over all inputs) goes to val when
 * hash(seed, i) / 2^64 < val_fraction; when val_fraction > 0 and neither
 * document 0 nor 1 was drawn, document 1 goes to val, so any corpus of >= 2
 * documents has a val document. Text is encoded with special tokens as
 * plain text; the separator is added between documents by the writer.
 * A shard is closed before a document piece would take it past
 * shard_tokens (a single bigger piece gets a shard of its own). Stats count
 * tokens including separators. */
typedef enum { SS_DOC_LINE, SS_DOC_BLANK, SS_DOC_FILE } ss_doc_boundary;

typedef struct {
    const char *tokenizer_path;
    const char *out_dir;
    double val_fraction;        /* default 0.05; by document, seeded hash */
    uint64_t seed;              /* for the train/val assignment */
    ss_doc_boundary boundary;   /* default SS_DOC_LINE */
    const char *separator;      /* default "<|endoftext|>" */
    uint64_t shard_tokens;      /* max tokens per shard; 0 = 1<<26 */
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
