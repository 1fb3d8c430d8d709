/* One split of a prepared directory (meta.json + shards) read as a single
 * stream of ids. Opening checks every shard header against the meta, so a
 * missing or mismatched shard fails before training starts, not hours in. */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/shard.h"

struct ss_shardset {
    char **paths;
    size_t n, cur;
    ss_shard_reader *r;
    uint32_t vocab_size, separator_id;
    uint64_t tokens, docs, text_bytes;
};

void ss_shardset_close(ss_shardset *s) {
    if (!s) return;
    ss_shard_reader_close(s->r);
    for (size_t i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
    free(s);
}

/* A non-negative integer field of obj (JSON numbers are doubles: exact to 2^53). */
static ss_status get_u64(const cJSON *obj, const char *key, const char *where,
                         uint64_t *v, ss_error *err) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 9007199254740992.0 ||
        x->valuedouble != (double)(uint64_t)x->valuedouble)
        return ss_fail(err, SS_ERR_FORMAT, "%s: field \"%s\" is missing or not a "
                       "non-negative integer", where, key);
    *v = (uint64_t)x->valuedouble;
    return SS_OK;
}

/* Check one shard's header against the meta and add it to the sums. */
static ss_status check_shard(ss_shardset *s, const char *path, uint64_t sums[3], ss_error *err) {
    ss_shard_header h;
    ss_status st = ss_shard_read_header(path, &h, err);
    if (st) return st;
    if (h.vocab_size != s->vocab_size || h.separator_id != s->separator_id)
        return ss_fail(err, SS_ERR_FORMAT, "%s: header has vocab size %u and separator %u but "
                       "meta.json says %u and %u", path, h.vocab_size, h.separator_id,
                       s->vocab_size, s->separator_id);
    sums[0] += h.n_tokens;
    sums[1] += h.n_docs;
    sums[2] += h.n_text_bytes;
    return SS_OK;
}

static ss_status load_split(ss_shardset *s, const cJSON *meta, const char *dir,
                            const char *split, const char *where, ss_error *err) {
    uint64_t v;
    ss_status st;
    if ((st = get_u64(meta, "vocab_size", where, &v, err))) return st;
    s->vocab_size = (uint32_t)v;
    if ((st = get_u64(meta, "separator_id", where, &v, err))) return st;
    s->separator_id = (uint32_t)v;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(meta, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "selfsup-shards") != 0)
        return ss_fail(err, SS_ERR_FORMAT, "%s: \"format\" is not \"selfsup-shards\"", where);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(meta, "splits"), split);
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(sp, "shards");
    if (!cJSON_IsArray(shards))
        return ss_fail(err, SS_ERR_NOT_FOUND, "%s: no split \"%s\" with a \"shards\" list",
                       where, split);
    if ((st = get_u64(sp, "tokens", where, &s->tokens, err)) ||
        (st = get_u64(sp, "docs", where, &s->docs, err)) ||
        (st = get_u64(sp, "text_bytes", where, &s->text_bytes, err)))
        return st;
    size_t n = (size_t)cJSON_GetArraySize(shards);
    s->paths = calloc(n ? n : 1, sizeof *s->paths);
    if (!s->paths) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    uint64_t sums[3] = {0, 0, 0};
    const cJSON *it;
    cJSON_ArrayForEach(it, shards) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/'))
            return ss_fail(err, SS_ERR_FORMAT, "%s: split \"%s\": shard names must be plain "
                           "file names", where, split);
        size_t len = strlen(dir) + strlen(it->valuestring) + 2;
        if (!(s->paths[s->n] = malloc(len))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        if ((st = ss_path_join(s->paths[s->n], len, dir, it->valuestring, err))) return st;
        if ((st = check_shard(s, s->paths[s->n++], sums, err))) return st;
    }
    if (sums[0] != s->tokens || sums[1] != s->docs || sums[2] != s->text_bytes)
        return ss_fail(err, SS_ERR_FORMAT, "%s: split \"%s\": shard headers add up to %llu "
                       "tokens, %llu docs, %llu text bytes; meta.json says %llu, %llu, %llu",
                       where, split, (unsigned long long)sums[0], (unsigned long long)sums[1],
                       (unsigned long long)sums[2], (unsigned long long)s->tokens,
                       (unsigned long long)s->docs, (unsigned long long)s->text_bytes);
    return SS_OK;
}

ss_status ss_shardset_open(ss_shardset **out, const char *dir, const char *split,
                           ss_error *err) {
    *out = NULL;
    char where[SS_PATH_MAX];
    ss_buf text = {0};
    ss_status st = ss_path_join(where, sizeof where, dir, SS_DATA_META, err);
    if (!st) st = ss_read_file(where, &text, err);
    if (st) return st;
    cJSON *meta = cJSON_ParseWithLength(text.data, text.len);
    ss_buf_free(&text);
    if (!meta) return ss_fail(err, SS_ERR_FORMAT, "%s: malformed JSON", where);
    ss_shardset *s = calloc(1, sizeof *s);
    st = s ? load_split(s, meta, dir, split, where, err)
           : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    cJSON_Delete(meta);
    if (st) { ss_shardset_close(s); return st; }
    *out = s;
    return SS_OK;
}

ss_status ss_shardset_next(ss_shardset *s, int32_t *ids, size_t cap, size_t *got,
                           ss_error *err) {
    *got = 0;
    while (s->cur < s->n) {
        ss_status st;
        if (!s->r && (st = ss_shard_reader_open(&s->r, s->paths[s->cur], err))) return st;
        if ((st = ss_shard_reader_next(s->r, ids, cap, got, err))) return st;
        if (*got) return SS_OK;
        ss_shard_reader_close(s->r); /* shard finished and verified */
        s->r = NULL;
        s->cur++;
    }
    return SS_OK;
}

ss_status ss_shardset_rewind(ss_shardset *s, ss_error *err) {
    (void)err;
    ss_shard_reader_close(s->r);
    s->r = NULL;
    s->cur = 0;
    return SS_OK;
}

uint32_t ss_shardset_vocab_size(const ss_shardset *s) { return s->vocab_size; }
uint32_t ss_shardset_separator_id(const ss_shardset *s) { return s->separator_id; }
uint64_t ss_shardset_tokens(const ss_shardset *s) { return s->tokens; }
uint64_t ss_shardset_docs(const ss_shardset *s) { return s->docs; }
uint64_t ss_shardset_text_bytes(const ss_shardset *s) { return s->text_bytes; }
size_t ss_shardset_num_shards(const ss_shardset *s) { return s->n; }
const char *ss_shardset_shard_path(const ss_shardset *s, size_t i) {
    return i < s->n ? s->paths[i] : NULL;
}
