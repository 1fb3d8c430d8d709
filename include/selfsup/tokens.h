/* Token splits held in memory (src/data/tokens.c): the int32 ids of one
 * split of prepared shards, and the CLM window sampler. */
#ifndef SELFSUP_TOKENS_H
#define SELFSUP_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"
#include "selfsup/rng.h"

typedef struct {
    int32_t *ids;
    size_t n;
    uint64_t text_bytes;   /* UTF-8 bytes the split's tokens stand for */
    uint32_t vocab_size, separator_id;
} ss_token_split;
ss_status ss_token_split_load(ss_token_split *s, const char *dir, const char *split, ss_error *err);
void ss_token_split_free(ss_token_split *s);

/* CLM batch from random windows: tokens = ids[s..s+T), targets = ids[s+1..s+T]. */
void ss_clm_sample(const ss_token_split *s, ss_rng *rng, int B, int T, int32_t *tokens, int32_t *targets);

#endif
