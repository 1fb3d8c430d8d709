/* Encoding: split out added tokens -> (normalize, lowercase) -> GPT-2 pre-tokens ->
 * byte-level BPE per pre-token, with a per-thread cache of pre-token ids.
 *
 * BPE: start from one symbol per byte and repeatedly merge the adjacent pair
 * of lowest merge rank, the leftmost on ties, until no pair has a rank. For
 * merge lists where a token is only merged after it was created (every
 * trained list), this equals GPT-2's bpe(), which merges all occurrences of
 * the best pair per pass. Short pre-tokens use arrays (O(n^2), tiny n); long
 * ones a binary heap over a linked list (O(n log n)), so a megabyte run of one
 * character stays fast. */
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <utf8proc.h>

#include "selfsup/tokenizer.h"
#include "tok_internal.h"

enum {
    SHORT_MAX = 64,      /* longer pre-tokens take the heap path */
    CACHE_KEY = 32,      /* longest pre-token kept in the cache */
    CACHE_IDS = 6,       /* most ids a cached pre-token may have */
    CACHE_BITS = 16      /* 65536 entries of 64 bytes (4 MB) per thread */
};

typedef struct {
    uint32_t tag;        /* high hash bits; 0 with klen 0 = empty */
    uint8_t klen, nids;
    uint16_t pad;
    int32_t ids[CACHE_IDS];
    char key[CACHE_KEY];
} cache_entry;

typedef struct {
    uint64_t key;        /* rank << 32 | left position: heap order */
    int32_t right, lid, rid, result;
} heap_entry;

struct ss_tok_ctx {
    cache_entry *cache;
    uint32_t rank[SHORT_MAX];
    int32_t result[SHORT_MAX];
    /* heap path scratch, grown on demand */
    int32_t *id, *prev, *next;
    heap_entry *heap;
    size_t cap;
    ss_buf norm;         /* normalized text */
};

ss_tok_ctx *ss_tok_ctx_new(void) {
    ss_tok_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cache = calloc((size_t)1 << CACHE_BITS, sizeof *c->cache);
    if (!c->cache) { free(c); return NULL; }
    return c;
}

void ss_tok_ctx_free(ss_tok_ctx *c) {
    if (!c) return;
    free(c->cache);
    free(c->id); free(c->prev); free(c->next); free(c->heap);
    ss_buf_free(&c->norm);
    free(c);
}

static ss_status reserve_ids(ss_ids *out, size_t extra, ss_error *err) {
    if (out->n + extra <= out->cap) return SS_OK;
    size_t cap = out->cap ? out->cap * 2 : 256;
    while (cap < out->n + extra) cap *= 2;
    int32_t *p = realloc(out->ids, cap * sizeof *p);
    if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory growing an id list to %zu ids", cap);
    out->ids = p;
    out->cap = cap;
    return SS_OK;
}

/* ---- BPE ------------------------------------------------------------------------- */

/* Array BPE of p[0..n) into sym (room for n); returns the symbol count. */
static size_t bpe_short(const ss_tokenizer *t, ss_tok_ctx *c, const uint8_t *p, size_t n,
                        int32_t *sym) {
    uint32_t *rk = c->rank;
    int32_t *res = c->result;
    for (size_t i = 0; i < n; i++) sym[i] = t->byte_id[p[i]];
    for (size_t i = 0; i + 1 < n; i++) rk[i] = ss_tok_pair_rank(t, sym[i], sym[i + 1], &res[i]);
    size_t m = n;
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rk[i] < rk[best]) best = i;
        if (rk[best] == UINT32_MAX) break;
        sym[best] = res[best];
        /* drop symbol best+1 and pair best+1; pairs best-1 and best change */
        memmove(sym + best + 1, sym + best + 2, (m - best - 2) * sizeof *sym);
        if (m >= best + 3) {
            memmove(rk + best + 1, rk + best + 2, (m - best - 3) * sizeof *rk);
            memmove(res + best + 1, res + best + 2, (m - best - 3) * sizeof *res);
        }
        m--;
        if (best > 0) rk[best - 1] = ss_tok_pair_rank(t, sym[best - 1], sym[best], &res[best - 1]);
        if (best + 1 < m) rk[best] = ss_tok_pair_rank(t, sym[best], sym[best + 1], &res[best]);
    }
    return m;
}

static int grow_scratch(ss_tok_ctx *c, size_t n) {
    if (n <= c->cap) return 1;
    size_t cap = c->cap ? c->cap : 1024;
    while (cap < n) cap *= 2;
    int32_t *a = realloc(c->id, cap * sizeof *a);
    if (a) c->id = a;
    int32_t *b = realloc(c->prev, cap * sizeof *b);
    if (b) c->prev = b;
    int32_t *d = realloc(c->next, cap * sizeof *d);
    if (d) c->next = d;
    heap_entry *h = realloc(c->heap, 3 * cap * sizeof *h); /* n-1 initial + 2 per merge */
    if (h) c->heap = h;
    if (!a || !b || !d || !h) return 0;
    c->cap = cap;
    return 1;
}

static void heap_push(heap_entry *h, size_t *n, heap_entry e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h[up].key <= e.key) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = e;
}

static heap_entry heap_pop(heap_entry *h, size_t *n) {
    heap_entry top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= m) break;
        if (k + 1 < m && h[k + 1].key < h[k].key) k++;
        if (last.key <= h[k].key) break;
        h[i] = h[k];
        i = k;
    }
    if (m) h[i] = last;
    return top;
}

static void push_pair(const ss_tokenizer *t, ss_tok_ctx *c, size_t *hn, int32_t l, int32_t r) {
    int32_t res;
    uint32_t rank = ss_tok_pair_rank(t, c->id[l], c->id[r], &res);
    if (rank == UINT32_MAX) return;
    heap_push(c->heap, hn, (heap_entry){(uint64_t)rank << 32 | (uint32_t)l, r, c->id[l], c->id[r], res});
}

/* Heap BPE: entries are (rank, left position); an entry is stale when its
 * left or right symbol changed or was merged away since it was pushed. */
static ss_status bpe_long(const ss_tokenizer *t, ss_tok_ctx *c, const uint8_t *p, size_t n,
                          ss_ids *out, ss_error *err) {
    if (n > INT32_MAX || !grow_scratch(c, n))
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for a %zu-byte pre-token", n);
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        c->id[i] = t->byte_id[p[i]];
        c->prev[i] = (int32_t)i - 1;
        c->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, c, &hn, (int32_t)i, (int32_t)i + 1);
    while (hn) {
        heap_entry e = heap_pop(c->heap, &hn);
        int32_t l = (int32_t)(uint32_t)e.key, r = e.right;
        if (c->next[l] != r || c->id[l] != e.lid || c->id[r] != e.rid) continue;
        c->id[l] = e.result;
        c->id[r] = -1;
        c->next[l] = c->next[r];
        if (c->next[r] >= 0) c->prev[c->next[r]] = l;
        if (c->prev[l] >= 0) push_pair(t, c, &hn, c->prev[l], l);
        if (c->next[l] >= 0) push_pair(t, c, &hn, l, c->next[l]);
    }
    size_t m = 0;
    for (int32_t i = 0; i >= 0; i = c->next[i]) m++;
    ss_status st = reserve_ids(out, m, err);
    if (st) return st;
    for (int32_t i = 0; i >= 0; i = c->next[i]) out->ids[out->n++] = c->id[i];
    return SS_OK;
}

/* ---- one pre-token, through the cache ------------------------------------------ */
static ss_status encode_piece(const ss_tokenizer *t, ss_tok_ctx *c, const uint8_t *p, size_t n,
                              ss_ids *out, ss_error *err) {
    ss_status st = reserve_ids(out, n, err);
    if (st) return st;
    if (n == 1) {
        out->ids[out->n++] = t->byte_id[p[0]];
        return SS_OK;
    }
    if (n > CACHE_KEY) {
        if (n > SHORT_MAX) return bpe_long(t, c, p, n, out, err);
        out->n += bpe_short(t, c, p, n, out->ids + out->n);
        return SS_OK;
    }
    /* 2-way set: way 0 holds the most recent entry; a way-1 hit is swapped
     * forward, and a miss pushes way 0 down to way 1 */
    uint64_t h = ss_tok_hash_bytes(p, n);
    cache_entry *e = &c->cache[2 * (h & (((size_t)1 << (CACHE_BITS - 1)) - 1))];
    uint32_t tag = (uint32_t)(h >> 32);
    for (int w = 0; w < 2; w++) {
        if (e[w].tag == tag && e[w].klen == n && memcmp(e[w].key, p, n) == 0) {
            memcpy(out->ids + out->n, e[w].ids, e[w].nids * sizeof(int32_t));
            out->n += e[w].nids;
            if (w) {
                cache_entry tmp = e[0];
                e[0] = e[1];
                e[1] = tmp;
            }
            return SS_OK;
        }
    }
    size_t m = bpe_short(t, c, p, n, out->ids + out->n);
    if (m <= CACHE_IDS) {
        e[1] = e[0];
        e[0].tag = tag;
        e[0].klen = (uint8_t)n;
        e[0].nids = (uint8_t)m;
        memcpy(e[0].key, p, n);
        memcpy(e[0].ids, out->ids + out->n, m * sizeof(int32_t));
    }
    out->n += m;
    return SS_OK;
}

static ss_status encode_plain(const ss_tokenizer *t, ss_tok_ctx *c, const char *text, size_t len,
                              ss_ids *out, ss_error *err) {
    size_t pos = 0;
    while (pos < len) {
        size_t end = ss_pretoken_next(text, len, pos);
        ss_status st = encode_piece(t, c, (const uint8_t *)text + pos, end - pos, out, err);
        if (st) return st;
        pos = end;
    }
    return SS_OK;
}

/* ---- added tokens ------------------------------------------------------------------ */

/* Id of the longest matchable added token at text[pos], or -1. */
static int32_t match_added(const ss_tokenizer *t, const char *text, size_t len, size_t pos,
                           int allow_special, size_t *mlen) {
    for (size_t k = 0; k < t->n_added; k++) {
        const ss_added_token *a = &t->added[t->added_by_len[k]];
        if (a->special && !allow_special) continue;
        size_t n = t->byte_off[a->id + 1] - t->byte_off[a->id];
        if (n <= len - pos && memcmp(text + pos, a->content, n) == 0) {
            *mlen = n;
            return a->id;
        }
    }
    return -1;
}

/* ---- normalization ------------------------------------------------------------------ */

/* Append the lowercase of s[0..n) to out, growing it when a character's
 * lowercase is longer than the character (ASCII never is). */
static ss_status append_lower(ss_buf *out, const char *s, size_t n, ss_error *err) {
    size_t i = 0;
    while (i < n) {
        ss_status st = ss_buf_reserve(out, n - i + 8, err);
        if (st) return st;
        size_t used;
        out->len += ss_tok_lowercase((const uint8_t *)s + i, n - i, (uint8_t *)out->data + out->len,
                                     out->cap - out->len, &used);
        i += used;
    }
    return SS_OK;
}

static ss_status append_text(ss_buf *out, const void *s, size_t n, int lower, ss_error *err) {
    return lower ? append_lower(out, s, n, err) : ss_buf_append(out, s, n, err);
}

/* NFC/NFKC of each maximal valid UTF-8 run (without NUL); other bytes are
 * copied as they are, so invalid input still round-trips. With lower, each
 * run is lowercased as it is copied to out (still one pass over the text). */
static ss_status normalize(ss_normalization norm, int lower, const char *text, size_t len,
                           ss_buf *out, ss_error *err) {
    const uint8_t *s = (const uint8_t *)text;
    utf8proc_option_t opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                             (norm == SS_NORM_NFKC ? UTF8PROC_COMPAT : 0);
    out->len = 0;
    ss_status st = ss_buf_reserve(out, len, err);
    if (!st && norm == SS_NORM_NONE) return append_lower(out, text, len, err);
    size_t i = 0;
    while (!st && i < len) {
        size_t j = i;
        int ascii = 1, n;
        while (j < len && s[j] != 0 && ss_tok_utf8_decode(s, len, j, &n) >= 0) {
            ascii &= s[j] < 0x80;
            j += (size_t)n;
        }
        if (j == i) { /* an invalid byte or NUL: lowercasing leaves it too */
            st = ss_buf_append(out, text + i, 1, err);
            i++;
            continue;
        }
        if (ascii) { /* ASCII is already NFC and NFKC */
            st = append_text(out, text + i, j - i, lower, err);
        } else {
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t m = utf8proc_map(s + i, (utf8proc_ssize_t)(j - i), &dst, opts);
            if (m < 0)
                return ss_fail(err, SS_ERR_FORMAT, "normalizing text at byte %zu: %s", i,
                               utf8proc_errmsg(m));
            st = append_text(out, dst, (size_t)m, lower, err);
            free(dst);
        }
        i = j;
    }
    return st;
}

/* A segment between added tokens: normalized (when the tokenizer asks) then
 * pre-tokenized and encoded. */
static inline ss_status encode_segment(const ss_tokenizer *t, ss_tok_ctx *c, const char *text,
                                       size_t len, ss_ids *out, ss_error *err) {
    if (t->norm == SS_NORM_NONE && !t->lower) return encode_plain(t, c, text, len, out, err);
    ss_status st = normalize(t->norm, t->lower, text, len, &c->norm, err);
    if (st) return st;
    return encode_plain(t, c, c->norm.data, c->norm.len, out, err);
}

/* Added tokens are matched on the raw text (Hugging Face's "normalized":
 * false, which is what ss_tokenizer_save writes), so "[MASK]" still matches
 * under lowercasing; the text between them is normalized segment by segment. */
static ss_status encode_ctx(const ss_tokenizer *t, ss_tok_ctx *c, const char *text, size_t len,
                            int allow_special, ss_ids *out, ss_error *err) {
    const uint8_t *first = allow_special ? t->first_any : t->first_plain;
    if (!(allow_special ? t->n_added : (size_t)t->n_plain_added))
        return encode_segment(t, c, text, len, out, err);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (!first[(uint8_t)text[i]]) continue;
        size_t mlen;
        int32_t id = match_added(t, text, len, i, allow_special, &mlen);
        if (id < 0) continue;
        ss_status st = encode_segment(t, c, text + start, i - start, out, err);
        if (!st) st = ss_ids_push(out, id, err);
        if (st) return st;
        i += mlen - 1;
        start = i + 1;
    }
    return encode_segment(t, c, text + start, len - start, out, err);
}

ss_status ss_tokenizer_encode(ss_tokenizer *t, const char *text, size_t len, int allow_special,
                              ss_ids *out, ss_error *err) {
    return encode_ctx(t, t->ctx[0], text, len, allow_special, out, err);
}

/* ---- parallel encoding ---------------------------------------------------------------- */

/* A cut at p (text[p-1] == '\n') leaves every pre-token unchanged when the
 * characters on both sides of that '\n' are not white space: the newline is
 * then a lone \s+ piece in the serial result, and nothing matched before it
 * looks past it. Conservative for non-ASCII bytes (may refuse some cuts). */
static int ascii_space(uint8_t b) { return b == ' ' || (b >= '\t' && b <= '\r'); }

static int safe_cut(const uint8_t *s, size_t len, size_t p) {
    if (p < 2 || p >= len || s[p - 1] != '\n') return 0;
    uint8_t a = s[p - 2], b = s[p];
    /* last bytes of U+0085, U+00A0, U+1680, U+2000..200A, U+2028/9, U+202F,
     * U+205F, U+3000; lead bytes of all of them */
    int a_ok = a < 0x80 ? !ascii_space(a)
                        : !(a <= 0x8A || a == 0x9F || a == 0xA0 || a == 0xA8 || a == 0xA9 || a == 0xAF);
    int b_ok = b < 0x80 ? !ascii_space(b) : !(b == 0xC2 || b == 0xE1 || b == 0xE2 || b == 0xE3);
    return a_ok && b_ok;
}

static size_t next_cut(const char *text, size_t len, size_t p) {
    const uint8_t *s = (const uint8_t *)text;
    while (p < len) {
        const char *nl = memchr(text + p, '\n', len - p);
        if (!nl) return len;
        p = (size_t)(nl - text) + 1;
        if (safe_cut(s, len, p)) return p;
    }
    return len;
}

ss_status ss_tokenizer_encode_parallel(ss_tokenizer *t, const char *text, size_t len,
                                       int allow_special, int nthreads, ss_ids *out,
                                       ss_error *err) {
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    int matches_added = allow_special ? t->n_added > 0 : t->n_plain_added > 0;
    if (nthreads == 1 || len < ((size_t)1 << 16) || (matches_added && t->added_newline))
        return ss_tokenizer_encode(t, text, len, allow_special, out, err);
    ss_status st = ss_tok_ensure_ctx(t, nthreads, err);
    if (st) return st;
    /* A few chunks per thread, taken dynamically: per-chunk speed varies
     * with the text. (More, smaller chunks measured slower: each costs a
     * fresh id list and pre-token cache misses.) */
    size_t nchunks = (size_t)nthreads * 4, target = len / nchunks, *cut;
    cut = malloc((nchunks + 1) * sizeof *cut);
    ss_ids *part = calloc(nchunks, sizeof *part);
    ss_error *perr = calloc(nchunks, sizeof *perr);
    if (!cut || !part || !perr) {
        free(cut); free(part); free(perr);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for parallel encoding");
    }
    cut[0] = 0;
    for (size_t k = 1; k < nchunks; k++) {
        size_t want = k * target;
        cut[k] = want <= cut[k - 1] ? cut[k - 1] : next_cut(text, len, want - 1);
    }
    cut[nchunks] = len;
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (size_t k = 0; k < nchunks; k++) {
        /* a local id list: part[] entries share cache lines, and the
         * length is updated per pre-token */
        ss_tok_ctx *c = t->ctx[omp_get_thread_num()];
        ss_ids local = {0};
        ss_error e = {0};
        /* English averages over 4 bytes per token: usually no regrowth */
        if (!reserve_ids(&local, (cut[k + 1] - cut[k]) / 4 + 64, &e))
            encode_ctx(t, c, text + cut[k], cut[k + 1] - cut[k], allow_special, &local, &e);
        part[k] = local;
        if (e.code) perr[k] = e;
    }
    /* Concatenate in parallel: each part is copied to its own offset, so the
     * copy (and the first touch of the output's pages) is not serial. */
    size_t total = 0, *offset = cut; /* cut[] is no longer needed */
    for (size_t k = 0; k < nchunks && !st; k++) {
        if (perr[k].code) {
            if (err) *err = perr[k];
            st = perr[k].code;
        }
        offset[k] = out->n + total;
        total += part[k].n;
    }
    if (!st) st = reserve_ids(out, total, err);
    #pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (size_t k = 0; k < nchunks; k++) {
        if (!st && part[k].n) memcpy(out->ids + offset[k], part[k].ids, part[k].n * sizeof(int32_t));
        ss_ids_free(&part[k]);
    }
    if (!st) out->n += total;
    free(cut); free(part); free(perr);
    return st;
}
