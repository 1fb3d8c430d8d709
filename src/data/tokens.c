/* A split of prepared shards held in memory as int32 ids, and the CLM
 * window sampler. Holding the split keeps random windows O(1) and makes the
 * data position a pure function of the RNG state, which is what exact
 * resume needs; memory is 4 bytes per token (reported by the trainer). */
#include <stdlib.h>
#include <string.h>

#include "selfsup/shard.h"
#include "selfsup/tokens.h"

ss_status ss_token_split_load(ss_token_split *s, const char *dir, const char *split, ss_error *err) {
    memset(s, 0, sizeof *s);
    ss_shardset *set;
    ss_status st = ss_shardset_open(&set, dir, split, err);
    if (st) return st;
    uint64_t n = ss_shardset_tokens(set);
    s->ids = malloc((n ? n : 1) * sizeof(int32_t));
    if (!s->ids) {
        ss_shardset_close(set);
        return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory loading %llu %s tokens", dir,
                       (unsigned long long)n, split);
    }
    size_t got;
    while (!st && s->n < n) {
        st = ss_shardset_next(set, s->ids + s->n, (size_t)(n - s->n), &got, err);
        if (!st && got == 0) break;
        s->n += got;
    }
    if (!st) { /* drain: verifies the last shard's checksum */
        int32_t extra;
        st = ss_shardset_next(set, &extra, 1, &got, err);
        if (!st && (got || s->n != n))
            st = ss_fail(err, SS_ERR_FORMAT, "%s: %s split holds a different token count than meta.json says (%llu)",
                         dir, split, (unsigned long long)n);
    }
    s->text_bytes = ss_shardset_text_bytes(set);
    s->vocab_size = ss_shardset_vocab_size(set);
    s->separator_id = ss_shardset_separator_id(set);
    ss_shardset_close(set);
    if (st) ss_token_split_free(s);
    return st;
}

void ss_token_split_free(ss_token_split *s) {
    free(s->ids);
    memset(s, 0, sizeof *s);
}

void ss_clm_sample(const ss_token_split *s, ss_rng *rng, int B, int T, int32_t *tokens, int32_t *targets) {
    for (int b = 0; b < B; b++) {
        size_t start = (size_t)ss_rng_below(rng, s->n - (size_t)T);
        memcpy(tokens + (size_t)b * T, s->ids + start, (size_t)T * sizeof(int32_t));
        memcpy(targets + (size_t)b * T, s->ids + start + 1, (size_t)T * sizeof(int32_t));
    }
}
