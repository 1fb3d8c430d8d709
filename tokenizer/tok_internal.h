/* Internal pieces shared by the tokenizer's files (tokenizer.c, encode.c,
 * decode.c, tokenizer_json.c, pretokenize.c). Not part of the public API. */
#ifndef SELFSUP_TOK_INTERNAL_H
#define SELFSUP_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/tokenizer.h"

/* Strict UTF-8 decoding of the character at s[i] (i < len): returns the code
 * point and sets *n to its length, or returns -1 with *n = 1 for a byte that
 * does not start a valid sequence (overlong, surrogate, > U+10FFFF, truncated). */
static inline int32_t ss_tok_utf8_decode(const uint8_t *s, size_t len, size_t i, int *n) {
    uint8_t b = s[i];
    *n = 1;
    if (b < 0x80) return b;
    size_t left = len - i;
#define CONT(k) (left > (k) && (s[i + (k)] & 0xC0) == 0x80)
    if (b >= 0xC2 && b <= 0xDF) {
        if (!CONT(1)) return -1;
        *n = 2;
        return ((b & 0x1F) << 6) | (s[i + 1] & 0x3F);
    }
    if (b >= 0xE0 && b <= 0xEF) {
        if (!CONT(1) || !CONT(2)) return -1;
        uint8_t c = s[i + 1];
        if ((b == 0xE0 && c < 0xA0) || (b == 0xED && c > 0x9F)) return -1;
        *n = 3;
        return ((b & 0x0F) << 12) | ((c & 0x3F) << 6) | (s[i + 2] & 0x3F);
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (!CONT(1) || !CONT(2) || !CONT(3)) return -1;
        uint8_t c = s[i + 1];
        if ((b == 0xF0 && c < 0x90) || (b == 0xF4 && c > 0x8F)) return -1;
        *n = 4;
        return ((b & 0x07) << 18) | ((c & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
    }
#undef CONT
    return -1;
}

/* Simple lowercase (utf8proc_tolower per code point) of s[0..n) into
 * d[0..cap): bytes that are not valid UTF-8 are copied unchanged, ASCII takes
 * an 8-bytes-at-a-time path. Stops early, at a character boundary, when the
 * next character might not fit (a code point needs up to 4 bytes of room);
 * returns the bytes written and sets *used to the input consumed. Output of
 * ASCII is as long as its input; other characters may grow (at most 2x). */
size_t ss_tok_lowercase(const uint8_t *s, size_t n, uint8_t *d, size_t cap, size_t *used);

/* Open-addressing map from token string to id over a fixed array of keys. */
typedef struct {
    int32_t *slot; /* -1 = empty, else index into keys */
    size_t mask;
    const char *const *keys;
} ss_tok_strtab;

uint64_t ss_tok_hash_bytes(const void *p, size_t n);
/* Fails (SS_ERR_FORMAT) on a duplicate key, naming it and both indexes. */
ss_status ss_tok_strtab_init(ss_tok_strtab *tab, const char *const *keys, size_t n,
                             ss_error *err);
int32_t ss_tok_strtab_find(const ss_tok_strtab *tab, const char *s, size_t len);
void ss_tok_strtab_free(ss_tok_strtab *tab);

/* Merge table entry: the pair (left, right) packed as left << 32 | right. */
typedef struct {
    uint64_t key;   /* UINT64_MAX = empty */
    uint32_t rank;
    int32_t result;
} ss_tok_pair;

/* Per-thread encoding state: the pre-token cache and scratch arrays. */
typedef struct ss_tok_ctx ss_tok_ctx;
ss_tok_ctx *ss_tok_ctx_new(void);
void ss_tok_ctx_free(ss_tok_ctx *c);

enum { SS_TOK_ADDED = 1, SS_TOK_SPECIAL = 2, SS_TOK_WORD = 4 };

struct ss_tokenizer {
    size_t vocab_size;
    char *str_arena;        /* every token string, NUL-terminated */
    char **str;             /* str[id] */
    char *byte_arena;       /* raw bytes of every token */
    size_t *byte_off;       /* bytes of id: byte_arena[byte_off[id] .. byte_off[id+1]) */
    uint8_t *flags;         /* SS_TOK_* per id */
    ss_tok_strtab strtab;
    int32_t byte_id[256];   /* id of each single-byte token */

    size_t n_merges;
    int32_t (*merges)[2];
    ss_tok_pair *pairs;     /* open addressing, size pair_mask + 1 */
    size_t pair_mask;

    size_t n_added;
    ss_added_token *added;  /* sorted by id; content points into str_arena */
    size_t *added_by_len;   /* indexes into added, longest content first */
    uint8_t first_any[256]; /* first bytes of any added token */
    uint8_t first_plain[256]; /* first bytes of non-special added tokens */
    int n_plain_added;      /* added tokens that are always matched */
    int added_newline;      /* some added token contains '\n' */

    ss_normalization norm;
    int lower;              /* lowercase after norm */
    ss_tok_ctx **ctx;       /* ctx[0] serves ss_tokenizer_encode */
    int n_ctx;
};

/* Look up the merge of (l, r): returns its rank and sets *result, or
 * UINT32_MAX when the pair never merges. */
static inline uint32_t ss_tok_pair_rank(const struct ss_tokenizer *t, int32_t l, int32_t r,
                                        int32_t *result) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 29) & t->pair_mask;
    for (;;) {
        const ss_tok_pair *p = &t->pairs[i];
        if (p->key == key) { *result = p->result; return p->rank; }
        if (p->key == UINT64_MAX) return UINT32_MAX;
        i = (i + 1) & t->pair_mask;
    }
}

/* Make sure t->ctx has at least n contexts (not thread-safe). */
ss_status ss_tok_ensure_ctx(struct ss_tokenizer *t, int n, ss_error *err);

#endif
