/* Byte-level BPE tokenizer, exactly as GPT-2 defines it.
 *
 * Text -> added-token split (special ones only when allowed; matched on the
 * raw text, as Hugging Face does for "normalized": false) -> per remaining
 * segment: optional NFC/NFKC, then optional lowercasing -> GPT-2
 * pre-tokenization -> bytes of each pre-token -> BPE merges by rank.
 * Token strings in the vocab use GPT-2's byte-to-printable-character map, so
 * files are interchangeable with Hugging Face `tokenizers` and GPT-2's own
 * encoder.json + vocab.bpe. decode(encode(x)) == x for every byte string when
 * normalization and lowercasing are off (the default).
 *
 * Lowercasing maps each code point of valid UTF-8 to its simple lowercase
 * (utf8proc_tolower, one code point to one code point): special mappings to
 * several code points are not expanded (U+0130 becomes plain "i", not
 * "i" + U+0307), and capital sigma always becomes U+03C3 (no final-sigma
 * rule); Hugging Face's Lowercase (Rust's full to_lowercase) differs on
 * exactly those characters. Bytes that are not valid UTF-8 pass through
 * unchanged. It is not reversible: decode returns
 * the lowercased text. */
#ifndef SELFSUP_TOKENIZER_H
#define SELFSUP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"
#include "selfsup/io.h"

typedef struct ss_tokenizer ss_tokenizer;

/* A growable vector of token ids. Zero-initialise before first use. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} ss_ids;
ss_status ss_ids_push(ss_ids *v, int32_t id, ss_error *err);
void ss_ids_free(ss_ids *v);

typedef enum {
    SS_NORM_NONE = 0, /* default: text round-trips byte for byte */
    SS_NORM_NFC,
    SS_NORM_NFKC
} ss_normalization;

/* ---- GPT-2 pre-tokenization (tokenizer/pretokenize.c) -------------------
 * Pattern: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * implemented with utf8proc categories (\s = Unicode White_Space). Invalid
 * UTF-8 bytes count as one "other" character each.
 * Returns the end offset (> pos) of the piece starting at pos, pos < len. */
size_t ss_pretoken_next(const char *text, size_t len, size_t pos);

/* ---- Construction --------------------------------------------------------- */
typedef struct {
    const char *content; /* literal text, e.g. "[MASK]" */
    int32_t id;
    int special;         /* 1: a special token (matched only when allowed) */
} ss_added_token;

typedef struct {
    size_t vocab_size;          /* ids are dense: 0 .. vocab_size-1 */
    const char *const *vocab;   /* vocab[id]: byte-level token string (UTF-8
                                   of stand-in chars), or an added token's
                                   literal content */
    size_t n_merges;
    const int32_t (*merges)[2]; /* merges[rank] = {left id, right id}; the
                                   result is the id of their concatenation */
    size_t n_added;
    const ss_added_token *added;
    ss_normalization normalization;
    int lowercase;              /* 1: lowercase after normalization (0 = off) */
} ss_tokenizer_spec;

ss_status ss_tokenizer_build(ss_tokenizer **out, const ss_tokenizer_spec *spec,
                             ss_error *err);
void ss_tokenizer_free(ss_tokenizer *t);

/* ---- Files ------------------------------------------------------------------
 * load: PATH is a Hugging Face tokenizer.json, or a directory holding either
 * tokenizer.json or GPT-2's encoder.json + vocab.bpe.
 * save: writes tokenizer.json atomically. */
ss_status ss_tokenizer_load(ss_tokenizer **out, const char *path, ss_error *err);
ss_status ss_tokenizer_save(const ss_tokenizer *t, const char *path, ss_error *err);
/* Hugging Face's tokenizer_config.json for t (malloc'd text; free with
 * free()): tokenizer_class GPT2Tokenizer, the special tokens by role,
 * clean_up_tokenization_spaces false (decoding round-trips), the added
 * tokens, and model_max_length when > 0. save_config writes it to
 * DIR/tokenizer_config.json atomically; ss_tokenizer_save calls it (without
 * a maximum length) whenever it writes a file named tokenizer.json, and run
 * directories write it again with their model's max_seq. */
char *ss_tokenizer_config_json(const ss_tokenizer *t, int model_max_length);
ss_status ss_tokenizer_save_config(const ss_tokenizer *t, const char *dir, int model_max_length, ss_error *err);

/* ---- Queries ----------------------------------------------------------------- */
size_t ss_tokenizer_vocab_size(const ss_tokenizer *t);
size_t ss_tokenizer_num_merges(const ss_tokenizer *t);
ss_normalization ss_tokenizer_normalization(const ss_tokenizer *t);
int ss_tokenizer_lowercase(const ss_tokenizer *t); /* 1 when it lowercases */
/* Merge of the given rank (0 = applied first): pair = {left id, right id};
 * -1 when rank >= ss_tokenizer_num_merges. */
int ss_tokenizer_merge(const ss_tokenizer *t, size_t rank, int32_t pair[2]);
/* Stored token string for id (byte-level form), NULL when out of range. */
const char *ss_tokenizer_token(const ss_tokenizer *t, int32_t id);
/* Id of a stored token string (byte-level form or added token), -1 if none. */
int32_t ss_tokenizer_token_id(const ss_tokenizer *t, const char *token);
/* Added tokens, in id order. */
size_t ss_tokenizer_num_added(const ss_tokenizer *t);
const ss_added_token *ss_tokenizer_added(const ss_tokenizer *t, size_t i);
int ss_tokenizer_is_special(const ss_tokenizer *t, int32_t id);
/* 1 when the token's bytes begin with a space (a word start). */
int ss_tokenizer_starts_word(const ss_tokenizer *t, int32_t id);
/* Raw bytes the token stands for; *len set. NULL when out of range. */
const char *ss_tokenizer_token_bytes(const ss_tokenizer *t, int32_t id, size_t *len);

/* ---- Encode / decode ---------------------------------------------------------
 * encode appends ids for text[0..len) to out. allow_special: 1 = match every
 * special token atomically, 0 = special-token text is ordinary text.
 * ss_tokenizer_encode uses the tokenizer's own pre-token cache, so one
 * tokenizer must not encode from two threads at once; encode_parallel splits
 * large inputs at line boundaries and encodes the parts on nthreads OpenMP
 * threads (each with its own cache), preserving order. Results are identical
 * to ss_tokenizer_encode. */
ss_status ss_tokenizer_encode(ss_tokenizer *t, const char *text, size_t len,
                              int allow_special, ss_ids *out, ss_error *err);
ss_status ss_tokenizer_encode_parallel(ss_tokenizer *t, const char *text,
                                       size_t len, int allow_special,
                                       int nthreads, ss_ids *out, ss_error *err);
/* decode appends the bytes of ids to out; an unknown id is SS_ERR_RANGE naming
 * the id and its position. */
ss_status ss_tokenizer_decode(const ss_tokenizer *t, const int32_t *ids, size_t n,
                              ss_buf *out, ss_error *err);

/* ---- Training (tokenizer/train.c) -------------------------------------------
 * Streams the files (plain or .zst), counts pre-tokens (memory grows with the
 * number of distinct pre-tokens, not corpus size), then runs incremental BPE
 * merges. Ids: special tokens first (in the given order), then the 256 bytes
 * in byte order, then one id per merge. Deterministic: at each step the pair
 * with the highest count wins; ties go to the pair whose (left id, right id)
 * is smallest, comparing left first. Pairs with count < min_frequency are
 * never merged; training stops early when none is left. */
typedef struct {
    size_t vocab_size;          /* total, including special tokens and bytes */
    uint64_t min_frequency;     /* default 2 */
    const char *const *special_tokens;
    size_t n_special;
    ss_normalization normalization;
    int nthreads;               /* for counting; 0 = default */
    int lowercase;              /* 1: lowercase the text (after normalization)
                                   before counting, and in the tokenizer */
} ss_bpe_train_opts;

ss_status ss_bpe_train_files(const ss_bpe_train_opts *opts,
                             const char *const *paths, size_t n_paths,
                             ss_tokenizer **out, ss_error *err);

/* Lower level, used by the above and by tests: train from a table of
 * distinct pre-tokens (raw bytes) and their counts. Writes the merge list as
 * id pairs (ids as described above) into *merges (malloc'd, *n_merges). */
typedef struct {
    const char *bytes;
    size_t len;
    uint64_t count;
} ss_word_count;
ss_status ss_bpe_train_counts(const ss_bpe_train_opts *opts,
                              const ss_word_count *words, size_t n_words,
                              int32_t (**merges)[2], size_t *n_merges,
                              ss_error *err);
/* Build a tokenizer from a merge list produced by ss_bpe_train_counts. */
ss_status ss_tokenizer_from_merges(const ss_bpe_train_opts *opts,
                                   const int32_t (*merges)[2], size_t n_merges,
                                   ss_tokenizer **out, ss_error *err);

/* GPT-2's byte <-> stand-in code point map (bytes_to_unicode). */
uint32_t ss_byte_to_unicode(uint8_t b);
int ss_unicode_to_byte(uint32_t cp); /* -1 when cp is not a stand-in */

#endif
