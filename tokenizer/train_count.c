/* BPE training, phase 1: count the distinct GPT-2 pre-tokens of text files.
 *
 * Files are streamed (plain or zstd, via ss_textstream) into a buffer of a
 * few MB; memory grows only with the number of distinct pre-tokens, which
 * live in a per-thread open-addressing table whose keys are stored in an
 * arena.
 *
 * Exactness across buffer boundaries. The pre-tokenizer decides each piece
 * from the text at and just after it (a run stops at the first character of
 * another class; white space looks one character past its run; contractions
 * look two characters ahead). A '\n' followed by a character X that is not
 * white space always ends a piece (only white-space pieces hold '\n', and X
 * stops them), so the text splits exactly at X provided the part before it
 * is pre-tokenized with X still visible as lookahead. Each round therefore
 * counts the buffer up to its last such boundary, cut into one range per
 * thread at boundaries, and carries the rest over to the next round. A
 * buffer without any boundary is pre-tokenized serially and only pieces
 * ending at least LOOKAHEAD bytes before its end are counted (a piece never
 * depends on more than 7 bytes past its end); when even that makes no
 * progress the buffer grows, up to MAX_BUFFER, after which the text is cut
 * there (the only inexact case: a single piece of more than 64 MB).
 *
 * Normalization (NFC/NFKC via utf8proc_map) is applied per range; ranges
 * end after '\n' where no composition can cross. A range that is not valid
 * UTF-8 is normalized line by line, and lines that are not valid UTF-8 are
 * counted unnormalized, byte for byte (nothing is dropped). Lowercasing
 * (ss_tok_lowercase, after NFC/NFKC) is applied as the normalized text is
 * copied into the scratch buffer; it works per code point and leaves invalid
 * bytes alone, so per-range lowercasing equals lowercasing the whole text,
 * and it keeps the boundary characters (ASCII, not white space) what they
 * are. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "selfsup/textstream.h"
#include "tok_internal.h"
#include "train_internal.h"

enum {
    LOOKAHEAD = 16,            /* bytes a finished piece may depend on */
    PAD = 8,                   /* slack after text so hashing may read 8 bytes */
};
#define DEFAULT_BATCH_PER_THREAD ((size_t)4 << 20)
#define MAX_BUFFER ((size_t)64 << 20)

/* ---- the count table ----------------------------------------------------------- */

/* Keys of up to INLINE bytes (nearly every pre-token) live in the slot
 * itself, zero-padded, so a lookup touches one cache line; longer keys live
 * in the arena. */
enum { INLINE = 16 };

typedef struct {
    uint64_t count;            /* 0: empty slot */
    uint32_t hash, len;
    union {
        char key[INLINE];
        uint64_t off;          /* into the arena when len > INLINE */
    } u;
} cnt_ent;

typedef struct {
    cnt_ent *ent;
    size_t mask, n;
    char *arena;
    size_t alen, acap;
    uint64_t n_pretokens, n_bytes;
    char *norm;                /* normalization scratch (padded) */
    size_t norm_cap;
} cnt_table;

static inline uint64_t load_masked(const char *p, size_t n) {
    uint64_t v;
    memcpy(&v, p, 8);
    return n >= 8 ? v : v & (~0ull >> (64 - 8 * n));
}

/* Multiply-xorshift hash over 8-byte words; the caller guarantees 8 readable
 * bytes past the end (PAD), the excess is masked off. */
static inline uint32_t hash_bytes(const char *p, size_t n) {
    const uint64_t K = 0x9E3779B97F4A7C15ull;
    uint64_t h = 0x243F6A8885A308D3ull ^ (n * K);
    for (; n >= 8; p += 8, n -= 8) {
        h = (h ^ load_masked(p, 8)) * K;
        h ^= h >> 31;
    }
    if (n) h = (h ^ load_masked(p, n)) * K;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h ^ (h >> 32));
}

static int table_init(cnt_table *t) {
    memset(t, 0, sizeof *t);
    t->mask = (1u << 16) - 1;
    t->ent = calloc(t->mask + 1, sizeof *t->ent);
    t->acap = 1 << 20;
    t->arena = malloc(t->acap);
    return t->ent && t->arena ? 0 : -1;
}

static void table_free(cnt_table *t) {
    free(t->ent);
    free(t->arena);
    free(t->norm);
    memset(t, 0, sizeof *t);
}

static int table_grow(cnt_table *t) {
    size_t nm = t->mask * 2 + 1;
    if (nm > UINT32_MAX) return -1;
    cnt_ent *ne = calloc(nm + 1, sizeof *ne);
    if (!ne) return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        if (!t->ent[i].count) continue;
        size_t j = t->ent[i].hash & nm;
        while (ne[j].count) j = (j + 1) & nm;
        ne[j] = t->ent[i];
    }
    free(t->ent);
    t->ent = ne;
    t->mask = nm;
    return 0;
}

static inline const char *ent_key(const cnt_table *t, const cnt_ent *e) {
    return e->len <= INLINE ? e->u.key : t->arena + e->u.off;
}

/* Add count to the key p[0..n) whose hash is h. When n <= INLINE, 16 bytes
 * from p must be readable (PAD or an inline key). */
static int table_add(cnt_table *t, const char *p, size_t n, uint32_t h, uint64_t count) {
    size_t i = h & t->mask;
    if (n <= INLINE) {
        uint64_t k0 = load_masked(p, n), k1 = n > 8 ? load_masked(p + 8, n - 8) : 0;
        for (; t->ent[i].count; i = (i + 1) & t->mask) {
            cnt_ent *e = &t->ent[i];
            uint64_t e0, e1;
            memcpy(&e0, e->u.key, 8);
            memcpy(&e1, e->u.key + 8, 8);
            if (e->hash == h && e->len == n && e0 == k0 && e1 == k1) {
                e->count += count;
                return 0;
            }
        }
        cnt_ent *e = &t->ent[i];
        *e = (cnt_ent){.count = count, .hash = h, .len = (uint32_t)n};
        memcpy(e->u.key, &k0, 8);
        memcpy(e->u.key + 8, &k1, 8);
    } else {
        for (; t->ent[i].count; i = (i + 1) & t->mask) {
            cnt_ent *e = &t->ent[i];
            if (e->hash == h && e->len == n && memcmp(t->arena + e->u.off, p, n) == 0) {
                e->count += count;
                return 0;
            }
        }
        if (n > UINT32_MAX) return -1;
        if (t->alen + n + PAD > t->acap) {
            size_t nc = t->acap * 2;
            while (t->alen + n + PAD > nc) nc *= 2;
            char *na = realloc(t->arena, nc);
            if (!na) return -1;
            t->arena = na;
            t->acap = nc;
        }
        memcpy(t->arena + t->alen, p, n);
        t->ent[i] = (cnt_ent){.count = count, .hash = h, .len = (uint32_t)n};
        t->ent[i].u.off = t->alen;
        t->alen += n;
    }
    if (++t->n * 2 > t->mask + 1 && table_grow(t)) return -1; /* load <= 1/2 */
    return 0;
}

/* ---- counting text ------------------------------------------------------------- */

/* Pre-tokenize text[0..len) and count the pieces that start before end
 * (len may exceed end by lookahead bytes that belong to the next range).
 * Pipelined by one piece: the slot of the next piece is prefetched while the
 * current one is added, hiding the cache miss of a large table. */
static int count_pieces(cnt_table *t, const char *text, size_t end, size_t len) {
    if (end == 0) return 0;
    size_t pos = 0, e = ss_pretoken_next(text, len, 0);
    uint32_t h = hash_bytes(text, e);
    while (pos < end) {
        size_t ne = e < end ? ss_pretoken_next(text, len, e) : e;
        uint32_t nh = hash_bytes(text + e, ne - e);
        __builtin_prefetch(&t->ent[nh & t->mask]);
        if (table_add(t, text + pos, e - pos, h, 1)) return -1;
        t->n_pretokens++;
        pos = e;
        e = ne;
        h = nh;
    }
    t->n_bytes += end;
    return 0;
}

static int norm_reserve(cnt_table *t, size_t n) {
    if (n + PAD <= t->norm_cap) return 0;
    size_t nc = (n + PAD) * 2;
    char *nn = realloc(t->norm, nc);
    if (!nn) return -1;
    t->norm = nn;
    t->norm_cap = nc;
    return 0;
}

/* Copy src[0..len) to t->norm at *at, lowercased when asked. */
static int norm_copy(cnt_table *t, const char *src, size_t len, int lower, size_t *at) {
    if (!lower) {
        if (norm_reserve(t, *at + len + 1)) return -1;
        memcpy(t->norm + *at, src, len);
        *at += len;
        return 0;
    }
    for (size_t i = 0; i < len;) { /* grows only when a lowercase is longer */
        if (norm_reserve(t, *at + (len - i) + 8)) return -1;
        size_t used;
        *at += ss_tok_lowercase((const uint8_t *)src + i, len - i, (uint8_t *)t->norm + *at,
                                t->norm_cap - PAD - *at, &used);
        i += used;
    }
    return 0;
}

/* Append the normalization of s[0..n) to t->norm at *at (lowercased when
 * asked); text that is not valid UTF-8 is normalized line by line, invalid
 * lines copied as they are. */
static int normalize_append(cnt_table *t, const char *s, size_t n, int flags, int lower,
                            size_t *at, int by_line) {
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t m = n ? utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                          &out, (utf8proc_option_t)flags) : 0;
    if (m == UTF8PROC_ERROR_NOMEM) return -1;
    if (m < 0 && !by_line) {
        for (size_t a = 0; a < n;) {
            const char *nl = memchr(s + a, '\n', n - a);
            size_t b = nl ? (size_t)(nl - s) + 1 : n;
            if (normalize_append(t, s + a, b - a, flags, lower, at, 1)) return -1;
            a = b;
        }
        return 0;
    }
    const char *src = m < 0 ? s : (const char *)out;
    size_t len = m < 0 ? n : (size_t)m;
    int fail = norm_copy(t, src, len, lower, at);
    free(out);
    return fail;
}

/* Count a range text[0..end) followed by look bytes of lookahead (0 or the
 * one ASCII byte that starts the next range), normalizing and lowercasing
 * when asked. */
static int count_range(cnt_table *t, const char *text, size_t end, size_t look, int norm_flags,
                       int lower) {
    if (!norm_flags && !lower) return count_pieces(t, text, end, end + look);
    size_t at = 0;
    if (norm_flags ? normalize_append(t, text, end, norm_flags, lower, &at, 0)
                   : norm_copy(t, text, end, lower, &at))
        return -1;
    size_t stop = at; /* ASCII: normalization leaves it alone, lowercase keeps its length */
    if (norm_copy(t, text + end, look, lower, &stop)) return -1;
    return count_pieces(t, t->norm, at, stop);
}

/* ---- splitting the buffer ------------------------------------------------------ */

static inline int is_boundary_char(unsigned char c) {
    return c < 0x80 && c != ' ' && !(c >= 9 && c <= 13);
}

/* First boundary (index of X in "\nX") in [from, to), or to. */
static size_t boundary_after(const char *b, size_t from, size_t to) {
    for (size_t i = from; i < to;) {
        const char *nl = memchr(b + i, '\n', to - i);
        if (!nl) return to;
        size_t x = (size_t)(nl - b) + 1;
        if (x >= to) return to;
        if (is_boundary_char((unsigned char)b[x])) return x;
        i = x;
    }
    return to;
}

/* Last boundary in (0, len), or 0. */
static size_t last_boundary(const char *b, size_t len) {
    for (size_t n = len - 1; n > 0;) { /* the '\n' lies in b[0..n) */
        const char *nl = memrchr(b, '\n', n);
        if (!nl) return 0;
        size_t x = (size_t)(nl - b) + 1;
        if (is_boundary_char((unsigned char)b[x])) return x;
        n = (size_t)(nl - b);
    }
    return 0;
}

/* ---- the driver ---------------------------------------------------------------- */

typedef struct {
    cnt_table *tab;
    int nt, norm_flags, lower;
    char *buf;
    size_t cap;
} counter;

/* Count buf[0..end) in nt ranges split at boundaries; more says whether a
 * boundary byte follows end (lookahead). */
static int count_parallel(counter *c, size_t end, int more) {
    size_t cut[65];
    int nt = c->nt;
    if ((size_t)nt > end / 4096 + 1) nt = (int)(end / 4096 + 1); /* tiny buffers: fewer ranges */
    cut[0] = 0;
    for (int i = 1; i < nt; i++) {
        size_t target = end / (size_t)nt * (size_t)i;
        if (target < cut[i - 1]) target = cut[i - 1];
        cut[i] = boundary_after(c->buf, target, end);
    }
    cut[nt] = end;
    int fail = 0;
#pragma omp parallel for num_threads(nt) schedule(static, 1) reduction(| : fail)
    for (int i = 0; i < nt; i++) {
        size_t a = cut[i], b = cut[i + 1];
        if (b > a)
            fail |= count_range(&c->tab[omp_get_thread_num()], c->buf + a, b - a,
                                (b < end || more) ? 1 : 0, c->norm_flags, c->lower);
    }
    return fail ? -1 : 0;
}

/* No boundary in a full buffer: count serially the pieces that are final
 * (end + LOOKAHEAD <= len); returns the bytes consumed. */
static size_t count_margin(counter *c, size_t len, int *fail) {
    size_t pos = 0;
    cnt_table *t = &c->tab[0];
    for (;;) {
        size_t e = ss_pretoken_next(c->buf, len, pos);
        if (e + LOOKAHEAD > len) break;
        if (table_add(t, c->buf + pos, e - pos, hash_bytes(c->buf + pos, e - pos), 1)) {
            *fail = 1;
            break;
        }
        t->n_pretokens++;
        pos = e;
    }
    t->n_bytes += pos;
    return pos;
}

static ss_status count_stream(counter *c, ss_textstream *s, ss_error *err) {
    size_t len = 0;
    int eof = 0;
    for (;;) {
        while (len < c->cap && !eof) {
            size_t got = 0;
            ss_status st = ss_textstream_read(s, c->buf + len, c->cap - len, &got, err);
            if (st) return st;
            if (got == 0) eof = 1;
            len += got;
        }
        if (len == 0) return SS_OK;
        size_t done = 0;
        int fail = 0;
        if (eof) {
            fail = count_parallel(c, len, 0);
            done = len;
        } else if ((done = last_boundary(c->buf, len)) > 0) {
            fail = count_parallel(c, done, 1);
        } else if (!c->norm_flags && !c->lower && (done = count_margin(c, len, &fail)) > 0) {
        } else if (c->cap < MAX_BUFFER) {
            char *nb = realloc(c->buf, c->cap * 2 + PAD);
            if (!nb) return ss_fail(err, SS_ERR_NOMEM, "out of memory growing the text buffer");
            c->buf = nb;
            c->cap *= 2;
            continue;
        } else {
            /* Pathological: no usable split in MAX_BUFFER bytes. Cut after
             * the last '\n' when there is one, else at the end. */
            const char *nl = memrchr(c->buf, '\n', len);
            done = nl ? (size_t)(nl - c->buf) + 1 : len;
            fail = count_parallel(c, done, 0);
        }
        if (fail) return ss_fail(err, SS_ERR_NOMEM, "out of memory counting pre-tokens");
        memmove(c->buf, c->buf + done, len - done);
        len -= done;
    }
}

/* Fold table src into dst. */
static int table_merge(cnt_table *dst, const cnt_table *src) {
    for (size_t i = 0; i <= src->mask; i++) {
        const cnt_ent *e = &src->ent[i];
        if (e->count && table_add(dst, ent_key(src, e), e->len, e->hash, e->count)) return -1;
    }
    dst->n_pretokens += src->n_pretokens;
    dst->n_bytes += src->n_bytes;
    return 0;
}

/* Hand the table over as an ss_word_count array; inline keys are copied to
 * the arena (sized once up front, so pointers stay valid). */
static ss_status export_counts(cnt_table *t, ss_bpe_counts *out, ss_error *err) {
    size_t need = t->alen;
    for (size_t i = 0; i <= t->mask; i++)
        if (t->ent[i].count && t->ent[i].len <= INLINE) need += t->ent[i].len;
    char *na = realloc(t->arena, need + PAD);
    out->words = malloc((t->n ? t->n : 1) * sizeof *out->words);
    if (na) t->arena = na;
    if (!na || !out->words)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for %zu pre-tokens", t->n);
    size_t k = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        cnt_ent *e = &t->ent[i];
        if (!e->count) continue;
        size_t off = e->u.off;
        if (e->len <= INLINE) {
            off = t->alen;
            memcpy(t->arena + off, e->u.key, e->len);
            t->alen += e->len;
        }
        out->words[k++] = (ss_word_count){t->arena + off, e->len, e->count};
    }
    out->n_words = k;
    out->arena = t->arena; /* ownership moves to out */
    t->arena = NULL;
    out->n_pretokens = t->n_pretokens;
    out->n_bytes = t->n_bytes;
    return SS_OK;
}

ss_status ss_bpe_count_files(const ss_bpe_train_opts *opts, const char *const *paths,
                             size_t n_paths, size_t batch_bytes, ss_bpe_counts *out,
                             ss_error *err) {
    memset(out, 0, sizeof *out);
    int nt = opts->nthreads > 0 ? opts->nthreads : omp_get_max_threads();
    if (nt > 64) nt = 64;
    if (nt < 1) nt = 1;
    size_t batch = batch_bytes ? batch_bytes : DEFAULT_BATCH_PER_THREAD * (size_t)nt;
    counter c = {0};
    c.nt = nt;
    c.norm_flags = opts->normalization == SS_NORM_NFC ? UTF8PROC_STABLE | UTF8PROC_COMPOSE
                 : opts->normalization == SS_NORM_NFKC
                     ? UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT : 0;
    c.lower = opts->lowercase ? 1 : 0;
    c.cap = batch;
    c.buf = malloc(c.cap + PAD);
    c.tab = calloc((size_t)nt, sizeof *c.tab);
    ss_status st = SS_OK;
    if (!c.buf || !c.tab) st = ss_fail(err, SS_ERR_NOMEM, "out of memory for the text buffer");
    for (int i = 0; i < nt && !st; i++)
        if (table_init(&c.tab[i])) st = ss_fail(err, SS_ERR_NOMEM, "out of memory for count tables");
    for (size_t f = 0; f < n_paths && !st; f++) {
        ss_textstream *s = NULL;
        st = ss_textstream_open(&s, paths[f], err);
        if (!st) st = count_stream(&c, s, err);
        if (s) ss_textstream_close(s);
    }
    for (int i = 1; i < nt && !st; i++)
        if (table_merge(&c.tab[0], &c.tab[i]))
            st = ss_fail(err, SS_ERR_NOMEM, "out of memory merging count tables");
    if (!st) st = export_counts(&c.tab[0], out, err);
    for (int i = 0; c.tab && i < nt; i++) table_free(&c.tab[i]);
    free(c.tab);
    free(c.buf);
    return st;
}

void ss_bpe_counts_free(ss_bpe_counts *c) {
    free(c->words);
    free(c->arena);
    memset(c, 0, sizeof *c);
}
