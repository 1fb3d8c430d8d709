/* The tokenizer object: construction from a spec (validated), token tables,
 * the merge-rank hash table and the simple queries. */
#include <stdlib.h>
#include <string.h>

#include "selfsup/tokenizer.h"
#include "tok_internal.h"

/* ---- ss_ids ------------------------------------------------------------------ */
ss_status ss_ids_push(ss_ids *v, int32_t id, ss_error *err) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory growing an id list to %zu ids", cap);
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return SS_OK;
}

void ss_ids_free(ss_ids *v) {
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

/* ---- string -> id table ------------------------------------------------------ */
uint64_t ss_tok_hash_bytes(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    }
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int32_t ss_tok_strtab_find(const ss_tok_strtab *tab, const char *s, size_t len) {
    size_t i = (size_t)ss_tok_hash_bytes(s, len) & tab->mask;
    for (;; i = (i + 1) & tab->mask) {
        int32_t k = tab->slot[i];
        if (k < 0) return -1;
        const char *key = tab->keys[k];
        /* strnlen first: s may hold a NUL (a merge line of vocab.bpe), where
         * strncmp would stop and key[len] lie past a shorter key's end */
        if (strnlen(key, len + 1) == len && memcmp(key, s, len) == 0) return k;
    }
}

ss_status ss_tok_strtab_init(ss_tok_strtab *tab, const char *const *keys, size_t n,
                             ss_error *err) {
    size_t cap = pow2_at_least(2 * n + 1);
    tab->slot = malloc(cap * sizeof *tab->slot);
    if (!tab->slot) return ss_fail(err, SS_ERR_NOMEM, "out of memory for a token table");
    memset(tab->slot, 0xFF, cap * sizeof *tab->slot);
    tab->mask = cap - 1;
    tab->keys = keys;
    for (size_t k = 0; k < n; k++) {
        size_t len = strlen(keys[k]);
        size_t i = (size_t)ss_tok_hash_bytes(keys[k], len) & tab->mask;
        for (; tab->slot[i] >= 0; i = (i + 1) & tab->mask) {
            if (strcmp(keys[tab->slot[i]], keys[k]) == 0) {
                ss_status st = ss_fail(err, SS_ERR_FORMAT, "token '%s' appears twice (ids %d and %zu)",
                                       keys[k], tab->slot[i], k);
                ss_tok_strtab_free(tab);
                return st;
            }
        }
        tab->slot[i] = (int32_t)k;
    }
    return SS_OK;
}

void ss_tok_strtab_free(ss_tok_strtab *tab) {
    free(tab->slot);
    tab->slot = NULL;
}

/* ---- construction ------------------------------------------------------------- */

/* Raw bytes of a byte-level token string into out; returns the count or -1
 * when some character is not one of the 256 stand-ins. */
static long byte_level_decode(const char *s, uint8_t *out) {
    const uint8_t *u = (const uint8_t *)s;
    size_t len = strlen(s), i = 0;
    long n = 0;
    while (i < len) {
        int m;
        int32_t cp = ss_tok_utf8_decode(u, len, i, &m);
        int b = cp < 0 ? -1 : ss_unicode_to_byte((uint32_t)cp);
        if (b < 0) return -1;
        out[n++] = (uint8_t)b;
        i += (size_t)m;
    }
    return n;
}

static ss_status check_added(const ss_tokenizer_spec *spec, ss_error *err) {
    for (size_t i = 0; i < spec->n_added; i++) {
        const ss_added_token *a = &spec->added[i];
        if (a->id < 0 || (size_t)a->id >= spec->vocab_size)
            return ss_fail(err, SS_ERR_FORMAT, "added token '%s': id %d is outside the vocab (size %zu)",
                           a->content ? a->content : "", a->id, spec->vocab_size);
        if (!a->content || !a->content[0])
            return ss_fail(err, SS_ERR_FORMAT, "added token %d has empty content", a->id);
        const char *v = spec->vocab[a->id];
        if (v && strcmp(v, a->content) != 0)
            return ss_fail(err, SS_ERR_FORMAT, "added token '%s' has id %d, but vocab[%d] is '%s'",
                           a->content, a->id, a->id, v);
        for (size_t j = 0; j < i; j++)
            if (spec->added[j].id == a->id)
                return ss_fail(err, SS_ERR_FORMAT, "two added tokens have id %d", a->id);
    }
    return SS_OK;
}

/* Token strings and their raw bytes into arenas; flags; the string table. */
static ss_status build_tokens(ss_tokenizer *t, const ss_tokenizer_spec *spec, ss_error *err) {
    size_t n = spec->vocab_size, total = 0;
    t->vocab_size = n;
    t->str = calloc(n, sizeof *t->str);
    t->flags = calloc(n, 1);
    t->byte_off = malloc((n + 1) * sizeof *t->byte_off);
    if (!t->str || !t->flags || !t->byte_off) return ss_fail(err, SS_ERR_NOMEM, "out of memory for the vocab");
    for (size_t i = 0; i < spec->n_added; i++) {
        t->flags[spec->added[i].id] |= SS_TOK_ADDED;
        if (spec->added[i].special) t->flags[spec->added[i].id] |= SS_TOK_SPECIAL;
    }
    const char **src = malloc(n * sizeof *src);
    if (!src) return ss_fail(err, SS_ERR_NOMEM, "out of memory for the vocab");
    for (size_t i = 0; i < spec->n_added; i++) src[spec->added[i].id] = spec->added[i].content;
    for (size_t id = 0; id < n; id++) {
        if (!(t->flags[id] & SS_TOK_ADDED)) src[id] = spec->vocab[id];
        if (!src[id] || !src[id][0]) {
            free(src);
            return ss_fail(err, SS_ERR_FORMAT, "vocab[%zu] is empty", id);
        }
        total += strlen(src[id]) + 1;
    }
    t->str_arena = malloc(total);
    t->byte_arena = malloc(total);
    if (!t->str_arena || !t->byte_arena) {
        free(src);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for the vocab");
    }
    size_t so = 0, bo = 0;
    for (size_t id = 0; id < n; id++) {
        size_t len = strlen(src[id]);
        memcpy(t->str_arena + so, src[id], len + 1);
        t->str[id] = t->str_arena + so;
        so += len + 1;
        t->byte_off[id] = bo;
        if (t->flags[id] & SS_TOK_ADDED) {
            memcpy(t->byte_arena + bo, src[id], len);
            bo += len;
        } else {
            long m = byte_level_decode(src[id], (uint8_t *)t->byte_arena + bo);
            if (m < 0) {
                free(src);
                return ss_fail(err, SS_ERR_FORMAT, "vocab[%zu] '%s' is not a byte-level token "
                               "(a character is not one of GPT-2's 256 byte stand-ins)", id, t->str[id]);
            }
            bo += (size_t)m;
        }
        if (t->byte_arena[t->byte_off[id]] == ' ') t->flags[id] |= SS_TOK_WORD;
    }
    t->byte_off[n] = bo;
    free(src);
    return ss_tok_strtab_init(&t->strtab, (const char *const *)t->str, n, err);
}

static ss_status build_bytes(ss_tokenizer *t, ss_error *err) {
    for (int b = 0; b < 256; b++) {
        char s[4];
        uint32_t cp = ss_byte_to_unicode((uint8_t)b);
        size_t len = cp < 0x80 ? 1 : 2;
        if (len == 1) s[0] = (char)cp;
        else { s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); }
        s[len] = '\0';
        int32_t id = ss_tok_strtab_find(&t->strtab, s, len);
        if (id < 0 || (t->flags[id] & SS_TOK_ADDED))
            return ss_fail(err, SS_ERR_FORMAT, "the vocab has no token for byte 0x%02X ('%s'); a "
                           "byte-level BPE vocab needs all 256", b, s);
        t->byte_id[b] = id;
    }
    return SS_OK;
}

static ss_status build_merges(ss_tokenizer *t, const ss_tokenizer_spec *spec, ss_error *err) {
    size_t n = spec->n_merges, cap = pow2_at_least(2 * n + 1);
    t->n_merges = n;
    t->merges = malloc((n ? n : 1) * sizeof *t->merges);
    t->pairs = malloc(cap * sizeof *t->pairs);
    if (!t->merges || !t->pairs) return ss_fail(err, SS_ERR_NOMEM, "out of memory for the merges");
    memset(t->pairs, 0xFF, cap * sizeof *t->pairs);
    t->pair_mask = cap - 1;
    char buf[2048];
    for (size_t r = 0; r < n; r++) {
        int32_t l = spec->merges[r][0], rt = spec->merges[r][1];
        if (l < 0 || rt < 0 || (size_t)l >= t->vocab_size || (size_t)rt >= t->vocab_size)
            return ss_fail(err, SS_ERR_FORMAT, "merge %zu: ids (%d, %d) outside the vocab (size %zu)",
                           r, l, rt, t->vocab_size);
        size_t ll = strlen(t->str[l]), rl = strlen(t->str[rt]);
        if (ll + rl >= sizeof buf)
            return ss_fail(err, SS_ERR_FORMAT, "merge %zu: token too long", r);
        memcpy(buf, t->str[l], ll);
        memcpy(buf + ll, t->str[rt], rl + 1);
        int32_t res = ss_tok_strtab_find(&t->strtab, buf, ll + rl);
        if (res < 0)
            return ss_fail(err, SS_ERR_FORMAT, "merge %zu: '%s' + '%s': result '%s' is not in the vocab",
                           r, t->str[l], t->str[rt], buf);
        t->merges[r][0] = l;
        t->merges[r][1] = rt;
        uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)rt;
        size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 29) & t->pair_mask;
        while (t->pairs[i].key != UINT64_MAX && t->pairs[i].key != key) i = (i + 1) & t->pair_mask;
        if (t->pairs[i].key == key) continue; /* a repeated merge keeps its first rank */
        t->pairs[i] = (ss_tok_pair){key, (uint32_t)r, res};
    }
    return SS_OK;
}

static int by_id(const void *a, const void *b) {
    return ((const ss_added_token *)a)->id - ((const ss_added_token *)b)->id;
}

static ss_status build_added(ss_tokenizer *t, const ss_tokenizer_spec *spec, ss_error *err) {
    size_t n = spec->n_added;
    t->n_added = n;
    t->added = malloc((n ? n : 1) * sizeof *t->added);
    t->added_by_len = malloc((n ? n : 1) * sizeof *t->added_by_len);
    if (!t->added || !t->added_by_len) return ss_fail(err, SS_ERR_NOMEM, "out of memory for added tokens");
    for (size_t i = 0; i < n; i++) {
        t->added[i] = spec->added[i];
        t->added[i].special = spec->added[i].special ? 1 : 0;
        t->added[i].content = t->str[spec->added[i].id];
    }
    qsort(t->added, n, sizeof *t->added, by_id);
    for (size_t i = 0; i < n; i++) {
        const ss_added_token *a = &t->added[i];
        uint8_t first = (uint8_t)a->content[0];
        t->first_any[first] = 1;
        if (!a->special) { t->first_plain[first] = 1; t->n_plain_added++; }
        if (strchr(a->content, '\n')) t->added_newline = 1;
        /* insertion sort, longest content first: the first match is the longest */
        size_t j = i, len = strlen(a->content);
        for (; j > 0 && strlen(t->added[t->added_by_len[j - 1]].content) < len; j--)
            t->added_by_len[j] = t->added_by_len[j - 1];
        t->added_by_len[j] = i;
    }
    return SS_OK;
}

ss_status ss_tokenizer_build(ss_tokenizer **out, const ss_tokenizer_spec *spec, ss_error *err) {
    *out = NULL;
    if (spec->vocab_size == 0 || spec->vocab_size > INT32_MAX)
        return ss_fail(err, SS_ERR_FORMAT, "vocab size %zu is out of range", spec->vocab_size);
    if (spec->normalization != SS_NORM_NONE && spec->normalization != SS_NORM_NFC &&
        spec->normalization != SS_NORM_NFKC)
        return ss_fail(err, SS_ERR_ARG, "unknown normalization %d", (int)spec->normalization);
    ss_status st = check_added(spec, err);
    if (st) return st;
    ss_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ss_fail(err, SS_ERR_NOMEM, "out of memory for a tokenizer");
    t->norm = spec->normalization;
    t->lower = spec->lowercase ? 1 : 0;
    if (!(st = build_tokens(t, spec, err)) && !(st = build_bytes(t, err)) &&
        !(st = build_merges(t, spec, err)) && !(st = build_added(t, spec, err)))
        st = ss_tok_ensure_ctx(t, 1, err);
    if (st) {
        ss_tokenizer_free(t);
        return st;
    }
    *out = t;
    return SS_OK;
}

ss_status ss_tok_ensure_ctx(ss_tokenizer *t, int n, ss_error *err) {
    if (n <= t->n_ctx) return SS_OK;
    ss_tok_ctx **c = realloc(t->ctx, (size_t)n * sizeof *c);
    if (!c) return ss_fail(err, SS_ERR_NOMEM, "out of memory for encoder state");
    t->ctx = c;
    for (; t->n_ctx < n; t->n_ctx++)
        if (!(t->ctx[t->n_ctx] = ss_tok_ctx_new()))
            return ss_fail(err, SS_ERR_NOMEM, "out of memory for an encoder cache");
    return SS_OK;
}

void ss_tokenizer_free(ss_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_ctx; i++) ss_tok_ctx_free(t->ctx[i]);
    free(t->ctx);
    free(t->str_arena);
    free(t->str);
    free(t->byte_arena);
    free(t->byte_off);
    free(t->flags);
    ss_tok_strtab_free(&t->strtab);
    free(t->merges);
    free(t->pairs);
    free(t->added);
    free(t->added_by_len);
    free(t);
}

/* ---- queries ------------------------------------------------------------------- */
size_t ss_tokenizer_vocab_size(const ss_tokenizer *t) { return t->vocab_size; }
size_t ss_tokenizer_num_merges(const ss_tokenizer *t) { return t->n_merges; }
ss_normalization ss_tokenizer_normalization(const ss_tokenizer *t) { return t->norm; }
int ss_tokenizer_lowercase(const ss_tokenizer *t) { return t->lower; }
size_t ss_tokenizer_num_added(const ss_tokenizer *t) { return t->n_added; }

int ss_tokenizer_merge(const ss_tokenizer *t, size_t rank, int32_t pair[2]) {
    if (rank >= t->n_merges) return -1;
    pair[0] = t->merges[rank][0];
    pair[1] = t->merges[rank][1];
    return 0;
}

const char *ss_tokenizer_token(const ss_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->vocab_size ? t->str[id] : NULL;
}

int32_t ss_tokenizer_token_id(const ss_tokenizer *t, const char *token) {
    return ss_tok_strtab_find(&t->strtab, token, strlen(token));
}

const ss_added_token *ss_tokenizer_added(const ss_tokenizer *t, size_t i) {
    return i < t->n_added ? &t->added[i] : NULL;
}

int ss_tokenizer_is_special(const ss_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->vocab_size && (t->flags[id] & SS_TOK_SPECIAL);
}

int ss_tokenizer_starts_word(const ss_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->vocab_size && (t->flags[id] & SS_TOK_WORD);
}

const char *ss_tokenizer_token_bytes(const ss_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= t->vocab_size) return NULL;
    *len = t->byte_off[id + 1] - t->byte_off[id];
    return t->byte_arena + t->byte_off[id];
}
