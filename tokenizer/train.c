/* Byte-level BPE training: incremental merges over distinct pre-tokens.
 *
 * Every distinct word is a doubly linked list of symbols laid out in one
 * global position array (bpe_node), each position knowing its word and so
 * its count. A pair (a, b) carries its total count (sum over occurrences of
 * the word counts) and the list of positions where it was created. Merging
 * (a, b) -> c walks only that list: a stale entry (the position no longer
 * holds a followed by b) is skipped, and each live occurrence changes four
 * neighbour pair counts by +/- the word count. A word is rewritten left to
 * right and non-overlapping ("a a a" -> "aa a"), exactly as encoding does,
 * because each pair's positions within one word are appended in increasing
 * order (initially, and during the one step that creates the newer symbol:
 * a pair only gains occurrences when one of its symbols is created).
 *
 * The max-heap holds (count, a, b) entries with lazy invalidation: counts of
 * existing pairs only ever fall, so an entry's count is an upper bound; a
 * popped entry whose count is stale is pushed back with the current count.
 * The first up-to-date entry is the true maximum under the documented order
 * (count desc, left id asc, right id asc). Pairs below min_frequency can never
 * rise again and are never pushed. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* ---- option checks ---------------------------------------------------------- */

static int cmp_str_ptr(const void *x, const void *y) {
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

ss_status ss_bpe_check_opts(const ss_bpe_train_opts *o, ss_error *err) {
    if (!o) return ss_fail(err, SS_ERR_ARG, "training options are missing");
    size_t min = o->n_special + 256;
    if (o->vocab_size < min)
        return ss_fail(err, SS_ERR_ARG,
                       "vocab size %zu is too small: the minimum is %zu "
                       "(%zu special tokens + 256 bytes)",
                       o->vocab_size, min, o->n_special);
    if (o->vocab_size > (size_t)INT32_MAX)
        return ss_fail(err, SS_ERR_ARG, "vocab size %zu is too large", o->vocab_size);
    if (o->normalization != SS_NORM_NONE && o->normalization != SS_NORM_NFC &&
        o->normalization != SS_NORM_NFKC)
        return ss_fail(err, SS_ERR_ARG, "unknown normalization %d", (int)o->normalization);
    if (o->nthreads < 0)
        return ss_fail(err, SS_ERR_ARG, "thread count %d is negative", o->nthreads);
    if (o->n_special == 0) return SS_OK;
    if (!o->special_tokens)
        return ss_fail(err, SS_ERR_ARG, "%zu special tokens announced but none given",
                       o->n_special);
    for (size_t i = 0; i < o->n_special; i++)
        if (!o->special_tokens[i] || !o->special_tokens[i][0])
            return ss_fail(err, SS_ERR_ARG, "special token %zu is empty", i);
    /* Duplicates: sort a copy, compare neighbours (O(n log n)). */
    const char **s = malloc(o->n_special * sizeof *s);
    if (!s) return ss_fail(err, SS_ERR_NOMEM, "out of memory checking special tokens");
    memcpy(s, o->special_tokens, o->n_special * sizeof *s);
    qsort(s, o->n_special, sizeof *s, cmp_str_ptr);
    ss_status st = SS_OK;
    for (size_t i = 1; i < o->n_special && st == SS_OK; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            st = ss_fail(err, SS_ERR_ARG, "special token '%s' is given more than once", s[i]);
    free(s);
    return st;
}

/* ---- pair table ----------------------------------------------------------------- */

typedef struct {
    int32_t a, b;
    int64_t count;
    int32_t *pos;        /* positions of the left symbol, see header comment */
    uint32_t npos, cap;
    int32_t step;        /* merge step that created the pair (-1 initially) */
    int merged;
} bpe_pair;

typedef struct {
    bpe_pair *pairs;
    size_t n, cap;
    int32_t *slot;       /* open addressing: pair index + 1, 0 = empty */
    size_t nslot;        /* power of two */
} pair_table;

typedef struct {
    int64_t count;
    int32_t a, b, idx;
} heap_ent;

/* One symbol of a word: its id (-1 once merged away), its neighbours'
 * positions (-1 at the word's ends) and its word. Packed so that visiting an
 * occurrence touches one cache line. */
typedef struct {
    int32_t sym, prv, nxt, wid;
} bpe_node;

typedef struct {
    const ss_bpe_train_opts *opts;
    bpe_node *nd;
    const uint64_t *wcount;   /* indexed by wid */
    pair_table pt;
    heap_ent *heap;
    size_t nheap, heapcap;
    int32_t *touched;         /* pairs created in the current step */
    size_t ntouched, touchedcap;
    int64_t min_freq;
} bpe_state;

static inline uint64_t pair_hash(int32_t a, int32_t b) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    k *= 0x9E3779B97F4A7C15ull;
    return k ^ (k >> 29);
}

static int pt_grow(pair_table *t) {
    size_t ns = t->nslot ? t->nslot * 2 : 1024;
    int32_t *s = calloc(ns, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t h = pair_hash(t->pairs[i].a, t->pairs[i].b) & (ns - 1);
        while (s[h]) h = (h + 1) & (ns - 1);
        s[h] = (int32_t)i + 1;
    }
    free(t->slot);
    t->slot = s;
    t->nslot = ns;
    return 0;
}

/* Index of pair (a, b), creating it (count 0) when create is set; -1 when
 * absent (or out of memory, reported by *oom). */
static int32_t pt_find(pair_table *t, int32_t a, int32_t b, int create, int *oom) {
    if (create && (t->n + 1) * 2 > t->nslot && pt_grow(t)) { *oom = 1; return -1; }
    if (!t->nslot) return -1;
    size_t h = pair_hash(a, b) & (t->nslot - 1);
    for (; t->slot[h]; h = (h + 1) & (t->nslot - 1)) {
        bpe_pair *p = &t->pairs[t->slot[h] - 1];
        if (p->a == a && p->b == b) return t->slot[h] - 1;
    }
    if (!create) return -1;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 4096;
        if (nc > (size_t)INT32_MAX - 1) { *oom = 1; return -1; }
        bpe_pair *np = realloc(t->pairs, nc * sizeof *np);
        if (!np) { *oom = 1; return -1; }
        t->pairs = np;
        t->cap = nc;
    }
    bpe_pair *p = &t->pairs[t->n];
    memset(p, 0, sizeof *p);
    p->a = a;
    p->b = b;
    p->step = -2;
    t->slot[h] = (int32_t)t->n + 1;
    return (int32_t)t->n++;
}

static int pos_push(bpe_pair *p, int32_t pos) {
    if (p->npos == p->cap) {
        uint32_t nc = p->cap ? p->cap * 2 : 4;
        int32_t *np = realloc(p->pos, (size_t)nc * sizeof *np);
        if (!np) return -1;
        p->pos = np;
        p->cap = nc;
    }
    p->pos[p->npos++] = pos;
    return 0;
}

/* ---- heap ordered by (count desc, a asc, b asc) ------------------------------- */

static inline int heap_before(const heap_ent *x, const heap_ent *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static void heap_down(heap_ent *h, size_t n, size_t i) {
    heap_ent e = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(&h[c + 1], &h[c])) c++;
        if (!heap_before(&h[c], &e)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

static int heap_push(bpe_state *s, int32_t idx) {
    if (s->nheap == s->heapcap) {
        size_t nc = s->heapcap ? s->heapcap * 2 : 4096;
        heap_ent *nh = realloc(s->heap, nc * sizeof *nh);
        if (!nh) return -1;
        s->heap = nh;
        s->heapcap = nc;
    }
    const bpe_pair *p = &s->pt.pairs[idx];
    heap_ent e = {p->count, p->a, p->b, idx};
    size_t i = s->nheap++;
    while (i > 0 && heap_before(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
    return 0;
}

static heap_ent heap_pop(bpe_state *s) {
    heap_ent top = s->heap[0];
    s->heap[0] = s->heap[--s->nheap];
    if (s->nheap) heap_down(s->heap, s->nheap, 0);
    return top;
}

/* ---- count updates ------------------------------------------------------------- */

static inline void pair_dec(bpe_state *s, int32_t a, int32_t b, int64_t w) {
    int oom = 0;
    int32_t i = pt_find(&s->pt, a, b, 0, &oom);
    if (i >= 0) s->pt.pairs[i].count -= w;
}

/* New occurrence at position pos of (a, c) or (c, b), c the new symbol. */
static int pair_inc_new(bpe_state *s, int32_t a, int32_t b, int64_t w, int32_t pos,
                        int32_t step) {
    int oom = 0;
    int32_t i = pt_find(&s->pt, a, b, 1, &oom);
    if (i < 0) return -1;
    bpe_pair *p = &s->pt.pairs[i];
    p->count += w;
    if (pos_push(p, pos)) return -1;
    if (p->step != step) {
        p->step = step;
        if (s->ntouched == s->touchedcap) {
            size_t nc = s->touchedcap ? s->touchedcap * 2 : 1024;
            int32_t *nt = realloc(s->touched, nc * sizeof *nt);
            if (!nt) return -1;
            s->touched = nt;
            s->touchedcap = nc;
        }
        s->touched[s->ntouched++] = i;
    }
    return 0;
}

/* Apply merge (a, b) -> c at every live occurrence, left to right per word. */
static int apply_merge(bpe_state *s, int32_t pidx, int32_t c, int32_t step) {
    bpe_pair *p = &s->pt.pairs[pidx];
    int32_t a = p->a, b = p->b;
    int32_t *pos = p->pos;
    uint32_t npos = p->npos;
    p->pos = NULL;
    p->npos = p->cap = 0;
    p->merged = 1;
    s->ntouched = 0;
    int rc = 0;
    for (uint32_t k = 0; k < npos && !rc; k++) {
        int32_t i = pos[k];
        if (k + 8 < npos) __builtin_prefetch(&s->nd[pos[k + 8]]); /* hide the miss */
        if (s->nd[i].sym != a) continue;
        int32_t j = s->nd[i].nxt;
        if (j < 0 || s->nd[j].sym != b) continue;
        int64_t w = (int64_t)s->wcount[s->nd[i].wid];
        int32_t l = s->nd[i].prv, r = s->nd[j].nxt;
        if (l >= 0) {
            pair_dec(s, s->nd[l].sym, a, w);
            rc |= pair_inc_new(s, s->nd[l].sym, c, w, l, step);
        }
        if (r >= 0) {
            pair_dec(s, b, s->nd[r].sym, w);
            rc |= pair_inc_new(s, c, s->nd[r].sym, w, i, step);
        }
        s->nd[i].sym = c;
        s->nd[j].sym = -1;
        s->nd[i].nxt = r;
        if (r >= 0) s->nd[r].prv = i;
    }
    free(pos);
    /* pairs realloc'd above: re-fetch before touching */
    s->pt.pairs[pidx].count = 0;
    for (size_t k = 0; k < s->ntouched && !rc; k++) {
        bpe_pair *q = &s->pt.pairs[s->touched[k]];
        if (q->count >= s->min_freq) rc = heap_push(s, s->touched[k]);
        else if (q->count <= 0) { free(q->pos); q->pos = NULL; q->npos = q->cap = 0; }
    }
    return rc;
}

/* ---- setup ------------------------------------------------------------------------- */

static ss_status state_init(bpe_state *s, const ss_word_count *words, size_t n_words,
                            uint64_t **wcount_out, ss_error *err) {
    size_t total = 0;
    for (size_t w = 0; w < n_words; w++)
        if (words[w].count) total += words[w].len;
    if (total >= (size_t)INT32_MAX || n_words >= (size_t)INT32_MAX)
        return ss_fail(err, SS_ERR_RANGE,
                       "too much distinct text to train on (%zu bytes in %zu words; "
                       "the limit is 2^31)", total, n_words);
    size_t nt = total ? total : 1;
    s->nd = malloc(nt * sizeof *s->nd);
    uint64_t *wc = malloc((n_words ? n_words : 1) * sizeof *wc);
    *wcount_out = wc;
    s->wcount = wc;
    if (!s->nd || !wc)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for %zu symbols", total);
    int32_t n_special = (int32_t)s->opts->n_special;
    size_t at = 0;
    int oom = 0;
    for (size_t w = 0; w < n_words && !oom; w++) {
        wc[w] = words[w].count;
        if (!words[w].count || !words[w].len) continue;
        const uint8_t *by = (const uint8_t *)words[w].bytes;
        for (size_t k = 0; k < words[w].len; k++) {
            size_t i = at + k;
            s->nd[i].sym = n_special + by[k];
            s->nd[i].wid = (int32_t)w;
            s->nd[i].prv = k ? (int32_t)i - 1 : -1;
            s->nd[i].nxt = k + 1 < words[w].len ? (int32_t)i + 1 : -1;
            if (k) {
                int32_t p = pt_find(&s->pt, s->nd[i - 1].sym, s->nd[i].sym, 1, &oom);
                if (p < 0) break;
                s->pt.pairs[p].count += (int64_t)words[w].count;
                if (pos_push(&s->pt.pairs[p], (int32_t)i - 1)) { oom = 1; break; }
            }
        }
        at += words[w].len;
    }
    if (oom) return ss_fail(err, SS_ERR_NOMEM, "out of memory counting initial pairs");
    for (size_t p = 0; p < s->pt.n; p++)
        if (s->pt.pairs[p].count >= s->min_freq && heap_push(s, (int32_t)p))
            return ss_fail(err, SS_ERR_NOMEM, "out of memory building the pair heap");
    return SS_OK;
}

static void state_free(bpe_state *s) {
    for (size_t p = 0; p < s->pt.n; p++) free(s->pt.pairs[p].pos);
    free(s->pt.pairs);
    free(s->pt.slot);
    free(s->nd);
    free(s->heap);
    free(s->touched);
}

/* Pop until an up-to-date entry; returns its pair index or -1 when no pair
 * with count >= min_frequency is left. */
static int32_t next_best(bpe_state *s, int *oom) {
    while (s->nheap) {
        heap_ent e = heap_pop(s);
        bpe_pair *p = &s->pt.pairs[e.idx];
        if (p->merged) continue;
        if (p->count == e.count) return e.idx;
        if (p->count >= s->min_freq && heap_push(s, e.idx)) { *oom = 1; return -1; }
    }
    return -1;
}

ss_status ss_bpe_train_counts(const ss_bpe_train_opts *opts, const ss_word_count *words,
                              size_t n_words, int32_t (**merges)[2], size_t *n_merges,
                              ss_error *err) {
    *merges = NULL;
    *n_merges = 0;
    ss_status st = ss_bpe_check_opts(opts, err);
    if (st) return st;
    if (n_words && !words) return ss_fail(err, SS_ERR_ARG, "word table is missing");
    size_t max_merges = opts->vocab_size - opts->n_special - 256;
    bpe_state s;
    memset(&s, 0, sizeof s);
    s.opts = opts;
    s.min_freq = opts->min_frequency ? (int64_t)opts->min_frequency : 2;
    if (opts->min_frequency > (uint64_t)INT64_MAX) s.min_freq = INT64_MAX;
    uint64_t *wc = NULL;
    int32_t (*out)[2] = malloc((max_merges ? max_merges : 1) * sizeof *out);
    if (!out) return ss_fail(err, SS_ERR_NOMEM, "out of memory for %zu merges", max_merges);
    st = state_init(&s, words, n_words, &wc, err);
    size_t n = 0;
    int32_t next_id = (int32_t)(opts->n_special + 256);
    while (!st && n < max_merges) {
        int oom = 0;
        int32_t best = next_best(&s, &oom);
        if (oom) st = ss_fail(err, SS_ERR_NOMEM, "out of memory in the pair heap");
        if (best < 0) break;
        out[n][0] = s.pt.pairs[best].a;
        out[n][1] = s.pt.pairs[best].b;
        if (apply_merge(&s, best, next_id, (int32_t)n))
            st = ss_fail(err, SS_ERR_NOMEM, "out of memory applying merge %zu", n);
        n++;
        next_id++;
    }
    state_free(&s);
    free(wc);
    if (st) { free(out); return st; }
    *merges = out;
    *n_merges = n;
    return SS_OK;
}

/* ---- tokenizer from merges --------------------------------------------------- */

/* UTF-8 of a GPT-2 stand-in code point (all below U+0800: 1 or 2 bytes). */
static size_t stand_in_utf8(uint8_t byte, char *o) {
    uint32_t cp = ss_byte_to_unicode(byte);
    if (cp < 0x80) {
        if (o) o[0] = (char)cp;
        return 1;
    }
    if (o) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
    }
    return 2;
}

ss_status ss_tokenizer_from_merges(const ss_bpe_train_opts *opts, const int32_t (*merges)[2],
                                   size_t n_merges, ss_tokenizer **out, ss_error *err) {
    *out = NULL;
    ss_status st = ss_bpe_check_opts(opts, err);
    if (st) return st;
    size_t ns = opts->n_special, nv = ns + 256 + n_merges;
    if (n_merges && !merges) return ss_fail(err, SS_ERR_ARG, "merge list is missing");
    if (nv > opts->vocab_size)
        return ss_fail(err, SS_ERR_ARG, "%zu merges do not fit in vocab size %zu",
                       n_merges, opts->vocab_size);
    for (size_t m = 0; m < n_merges; m++)
        for (int k = 0; k < 2; k++)
            if (merges[m][k] < (int32_t)ns || (size_t)merges[m][k] >= ns + 256 + m)
                return ss_fail(err, SS_ERR_RANGE,
                               "merge %zu: id %d is not a byte or an earlier merge "
                               "(valid ids: %zu..%zu)", m, (int)merges[m][k], ns,
                               ns + 256 + m - 1);
    /* String lengths first, then one arena holding every token string. */
    size_t *off = malloc((nv + 1) * sizeof *off);
    size_t *len = malloc(nv * sizeof *len);
    const char **vocab = malloc(nv * sizeof *vocab);
    ss_added_token *added = malloc((ns ? ns : 1) * sizeof *added);
    char *arena = NULL;
    if (!off || !len || !vocab || !added) { st = ss_fail(err, SS_ERR_NOMEM, "out of memory"); goto done; }
    size_t total = 0;
    for (size_t i = 0; i < nv; i++) {
        if (i < ns) len[i] = strlen(opts->special_tokens[i]);
        else if (i < ns + 256) len[i] = stand_in_utf8((uint8_t)(i - ns), NULL);
        else len[i] = len[merges[i - ns - 256][0]] + len[merges[i - ns - 256][1]];
        off[i] = total;
        total += len[i] + 1;
    }
    arena = malloc(total);
    if (!arena) { st = ss_fail(err, SS_ERR_NOMEM, "out of memory for %zu bytes of vocab", total); goto done; }
    for (size_t i = 0; i < nv; i++) {
        char *d = arena + off[i];
        if (i < ns) {
            memcpy(d, opts->special_tokens[i], len[i]);
            added[i] = (ss_added_token){opts->special_tokens[i], (int32_t)i, 1};
        } else if (i < ns + 256) {
            stand_in_utf8((uint8_t)(i - ns), d);
        } else {
            const int32_t *m = merges[i - ns - 256];
            memcpy(d, arena + off[m[0]], len[m[0]]);
            memcpy(d + len[m[0]], arena + off[m[1]], len[m[1]]);
        }
        d[len[i]] = '\0';
        vocab[i] = d;
    }
    ss_tokenizer_spec spec = {
        .vocab_size = nv, .vocab = vocab, .n_merges = n_merges, .merges = merges,
        .n_added = ns, .added = added, .normalization = opts->normalization,
        .lowercase = opts->lowercase};
    st = ss_tokenizer_build(out, &spec, err);
done:
    free(off);
    free(len);
    free(vocab);
    free(added);
    free(arena);
    return st;
}

/* ---- files -> tokenizer ------------------------------------------------------- */

ss_status ss_bpe_train_files(const ss_bpe_train_opts *opts, const char *const *paths,
                             size_t n_paths, ss_tokenizer **out, ss_error *err) {
    *out = NULL;
    ss_status st = ss_bpe_check_opts(opts, err);
    if (st) return st;
    if (n_paths == 0) return ss_fail(err, SS_ERR_ARG, "no input files to train on");
    ss_bpe_counts c;
    st = ss_bpe_count_files(opts, paths, n_paths, 0, &c, err);
    if (st) return st;
    int32_t (*merges)[2] = NULL;
    size_t n_merges = 0;
    st = ss_bpe_train_counts(opts, c.words, c.n_words, &merges, &n_merges, err);
    ss_bpe_counts_free(&c);
    if (!st) st = ss_tokenizer_from_merges(opts, (const int32_t(*)[2])merges, n_merges, out, err);
    free(merges);
    return st;
}
