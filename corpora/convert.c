/* Deterministic conversions of a published original into the form a corpus
 * stores (named by "convert" in a manifest's source; see corpora/README.md),
 * and git blob ids for verifying GitHub originals. Every conversion writes
 * whole lines through an emitter, which applies the manifest's patches (a
 * line that must read exactly X becomes Y) and checks that each applied. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "selfsup/io.h"
#include "selfsup/path.h"

/* ---- output lines, with patches ---------------------------------------------------- */

typedef struct {
    const ss_corpus_source *src;
    corpus_write_fn write;
    void *ctx;
    uint64_t line;     /* lines emitted so far */
    size_t next_patch; /* src->patches[next_patch] is the next one to apply */
    ss_buf cur;        /* the line being assembled */
} emitter;

static ss_status add(emitter *e, const void *p, size_t n, ss_error *err) {
    return ss_buf_append(&e->cur, p, n, err);
}

/* Emit the assembled line (with '\n' unless newline is 0: a last line that
 * had none in the original, for the byte-preserving conversions). */
static ss_status end_line(emitter *e, int newline, ss_error *err) {
    const char *p = e->cur.len ? e->cur.data : "";
    size_t n = e->cur.len;
    e->line++;
    const ss_corpus_patch *pt =
        e->next_patch < e->src->n_patches ? &e->src->patches[e->next_patch] : NULL;
    if (pt && pt->line == e->line) {
        if (strlen(pt->from) != n || memcmp(pt->from, p, n) != 0)
            return ss_fail(err, SS_ERR_FORMAT,
                           "patch for line %llu does not apply: the converted line is '%.*s', "
                           "the manifest expects '%.200s'", (unsigned long long)e->line,
                           (int)(n < 200 ? n : 200), p, pt->from);
        p = pt->to;
        n = strlen(pt->to);
        e->next_patch++;
    }
    ss_status st = e->write(e->ctx, p, n, err);
    if (!st && newline) st = e->write(e->ctx, "\n", 1, err);
    e->cur.len = 0;
    return st;
}

static ss_status emit_done(emitter *e, ss_error *err) {
    if (e->next_patch < e->src->n_patches)
        return ss_fail(err, SS_ERR_FORMAT, "patch for line %llu does not apply: the output has "
                       "only %llu lines",
                       (unsigned long long)e->src->patches[e->next_patch].line,
                       (unsigned long long)e->line);
    return SS_OK;
}

/* ---- line conversions of one file ---------------------------------------------------- */

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Strip ASCII whitespace from both ends of [*p, *p + *n). */
static void strip(const char **p, size_t *n) {
    while (*n && is_space(**p)) (*p)++, (*n)--;
    while (*n && is_space((*p)[*n - 1])) (*n)--;
}

typedef enum { C_COPY, C_CRLF, C_SST, C_TSV, C_TSV_SWAP } line_kind;

/* One line of the original (without its '\n'), converted. */
static ss_status convert_line(line_kind k, const char *p, size_t n, int had_newline,
                              emitter *e, ss_error *err) {
    ss_status st = SS_OK;
    switch (k) {
    case C_COPY:
    case C_CRLF:
        if (k == C_CRLF && had_newline && n && p[n - 1] == '\r') n--;
        if ((st = add(e, p, n, err))) return st;
        return end_line(e, had_newline, err);
    case C_SST: { /* "<label> <sentence>" -> "sentence\tlabel" */
        const char *sp = memchr(p, ' ', n);
        if (!sp || sp == p)
            return ss_fail(err, SS_ERR_FORMAT, "expected '<label> <sentence>'");
        const char *s = sp + 1;
        size_t sn = n - (size_t)(s - p);
        strip(&s, &sn);
        if (!sn) return ss_fail(err, SS_ERR_FORMAT, "the sentence is empty");
        if ((st = add(e, s, sn, err)) || (st = add(e, "\t", 1, err)) ||
            (st = add(e, p, (size_t)(sp - p), err)))
            return st;
        return end_line(e, 1, err);
    }
    case C_TSV:
    case C_TSV_SWAP: { /* fields stripped (so CRLF becomes LF); swap: "a\tb" -> "b\ta" */
        if (!n) return ss_fail(err, SS_ERR_FORMAT, "empty line");
        const char *tab = memchr(p, '\t', n);
        if (k == C_TSV_SWAP) {
            if (!tab || memchr(tab + 1, '\t', n - (size_t)(tab + 1 - p)))
                return ss_fail(err, SS_ERR_FORMAT, "expected two tab-separated fields");
            const char *a = p, *b = tab + 1;
            size_t an = (size_t)(tab - p), bn = n - an - 1;
            strip(&a, &an);
            strip(&b, &bn);
            if ((st = add(e, b, bn, err)) || (st = add(e, "\t", 1, err)) ||
                (st = add(e, a, an, err)))
                return st;
            return end_line(e, 1, err);
        }
        for (const char *f = p, *end = p + n; !st;) {
            const char *t = memchr(f, '\t', (size_t)(end - f));
            const char *s = f;
            size_t sn = (size_t)((t ? t : end) - f);
            strip(&s, &sn);
            st = add(e, s, sn, err);
            if (!st && t) st = add(e, "\t", 1, err);
            if (!t) break;
            f = t + 1;
        }
        return st ? st : end_line(e, 1, err);
    }
    }
    return ss_fail(err, SS_ERR_ARG, "internal: unknown line conversion");
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static ss_status convert_lines(line_kind k, const char *path, emitter *e, ss_error *err) {
    ss_buf in = {0};
    ss_status st = ss_read_file(path, &in, err);
    if (st) return st;
    if (k == C_SST) {
        st = add(e, "sentence\tlabel", 14, err);
        if (!st) st = end_line(e, 1, err);
    }
    const char *p = in.data, *end = in.data + in.len;
    for (size_t lineno = 1; !st && p < end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if ((st = convert_line(k, p, n, nl != NULL, e, err)))
            ss_error_prefix(err, "%s: line %zu: ", base_name(path), lineno);
        p += n + (nl != NULL);
    }
    ss_buf_free(&in);
    return st;
}

/* ---- aclImdb: directories of reviews ------------------------------------------------ */

/* Bytes of the Unicode whitespace character at p (Python's str.isspace,
 * which is what the stored files were cleaned with), or 0. p is valid UTF-8. */
static size_t ws_len(const unsigned char *p, const unsigned char *end) {
    size_t n = (size_t)(end - p);
    if (!n) return 0;
    unsigned c = p[0];
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
    if (c == 0xc2 && n >= 2 && (p[1] == 0x85 || p[1] == 0xa0)) return 2; /* U+0085 U+00A0 */
    if (n < 3) return 0;
    if (c == 0xe1 && p[1] == 0x9a && p[2] == 0x80) return 3; /* U+1680 */
    if (c == 0xe2 && p[1] == 0x80 && (p[2] <= 0x8a || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
        return 3; /* U+2000..U+200A, U+2028, U+2029, U+202F */
    if (c == 0xe2 && p[1] == 0x81 && p[2] == 0x9f) return 3; /* U+205F */
    if (c == 0xe3 && p[1] == 0x80 && p[2] == 0x80) return 3; /* U+3000 */
    return 0;
}

static size_t char_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; }

/* Bytes of a line break tag at p: <br>, <br/>, <BR />, ... (case-insensitive,
 * whitespace before the optional '/'), or 0. */
static size_t br_len(const unsigned char *p, const unsigned char *end) {
    const unsigned char *q = p;
    if (end - q < 4 || q[0] != '<' || (q[1] | 0x20) != 'b' || (q[2] | 0x20) != 'r') return 0;
    q += 3;
    for (size_t k; (k = ws_len(q, end));) q += k;
    if (q < end && *q == '/') q++;
    return q < end && *q == '>' ? (size_t)(q + 1 - p) : 0;
}

/* A review as one line: every run of line break tags with the whitespace
 * around it becomes one space, tab/CR/LF become spaces, and the ends are
 * stripped of (Unicode) whitespace. Appends to out. */
static ss_status clean_review(const unsigned char *p, size_t n, ss_buf *out, ss_error *err) {
    const unsigned char *end = p + n;
    size_t start = out->len, keep = out->len; /* keep: end of the last non-space */
    int leading = 1;
    ss_status st = SS_OK;
    while (p < end && !st) {
        const unsigned char *q = p;
        for (size_t k; (k = ws_len(q, end));) q += k;
        if (br_len(q, end)) {
            for (size_t k; (k = br_len(q, end));) {
                q += k;
                while ((k = ws_len(q, end))) q += k;
            }
            if (!leading) st = ss_buf_append(out, " ", 1, err);
            p = q;
            continue;
        }
        for (; p < q && !st; p++) /* a whitespace run without a tag: kept, tab/CR/LF -> ' ' */
            if (!leading)
                st = ss_buf_append(out, (*p == '\t' || *p == '\r' || *p == '\n') ? " " : (const char *)p,
                                   1, err);
        if (p < end && !st) {
            size_t k = char_len(*p);
            st = ss_buf_append(out, p, k, err);
            p += k;
            keep = out->len;
            leading = 0;
        }
    }
    if (!st) out->len = keep > start ? keep : start;
    return st;
}

typedef struct {
    uint64_t id;
    char *name;
} review;

static int cmp_review(const void *a, const void *b) {
    uint64_t x = ((const review *)a)->id, y = ((const review *)b)->id;
    return x < y ? -1 : x > y;
}

static void free_reviews(review *r, size_t n) {
    for (size_t i = 0; i < n; i++) free(r[i].name);
    free(r);
}

/* The reviews <id>_<rating>.txt of dir, sorted by id (hidden files skipped). */
static ss_status list_reviews(const char *dir, review **out, size_t *n_out, ss_error *err) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return ss_fail(err, SS_ERR_FORMAT, "%s: %s (not in the archive?)", dir, strerror(errno));
    review *r = NULL;
    size_t n = 0, cap = 0;
    ss_status st = SS_OK;
    struct dirent *ent;
    while (!st && (ent = readdir(d))) {
        const char *s = ent->d_name;
        if (s[0] == '.') continue;
        char *after;
        errno = 0;
        unsigned long long id = strtoull(s, &after, 10);
        size_t alen = strlen(after);
        if (after == s || errno || *after != '_' || alen < 6 || strcmp(after + alen - 4, ".txt") != 0) {
            st = ss_fail(err, SS_ERR_FORMAT, "%s/%s: expected review files named <id>_<rating>.txt",
                         dir, s);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            review *g = realloc(r, cap * sizeof *g);
            if (!g) { st = ss_fail(err, SS_ERR_NOMEM, "out of memory"); break; }
            r = g;
        }
        if (!(r[n].name = strdup(s))) { st = ss_fail(err, SS_ERR_NOMEM, "out of memory"); break; }
        r[n++].id = id;
    }
    closedir(d);
    if (!st && n) qsort(r, n, sizeof *r, cmp_review);
    for (size_t i = 1; !st && i < n; i++)
        if (r[i].id == r[i - 1].id)
            st = ss_fail(err, SS_ERR_FORMAT, "%s: two reviews with id %llu (%s, %s)", dir,
                         (unsigned long long)r[i].id, r[i - 1].name, r[i].name);
    if (st) { free_reviews(r, n); return st; }
    *out = r;
    *n_out = n;
    return SS_OK;
}

/* Append the cleaned review dir/name to the emitter's line. */
static ss_status add_review(emitter *e, const char *dir, const char *name, ss_buf *raw,
                            ss_error *err) {
    char path[SS_PATH_MAX];
    ss_buf_free(raw);
    ss_status st = ss_path_join(path, sizeof path, dir, name, err);
    if (!st) st = ss_read_file(path, raw, err);
    if (st) return st;
    if (!ss_utf8_valid(raw->data, raw->len))
        return ss_fail(err, SS_ERR_FORMAT, "%s: not valid UTF-8", path);
    return clean_review((const unsigned char *)raw->data, raw->len, &e->cur, err);
}

/* "sentence\tlabel", then rows alternating pos (1) and neg (0) by ascending id. */
static ss_status aclimdb_labelled(const char *dir, emitter *e, ss_error *err) {
    char pdir[SS_PATH_MAX], ndir[SS_PATH_MAX];
    if (ss_path_join(pdir, sizeof pdir, dir, "pos", err) || ss_path_join(ndir, sizeof ndir, dir, "neg", err))
        return err->code;
    review *pos = NULL, *neg = NULL;
    size_t np = 0, nn = 0;
    ss_buf raw = {0};
    ss_status st = list_reviews(pdir, &pos, &np, err);
    if (!st) st = list_reviews(ndir, &neg, &nn, err);
    if (!st && np != nn)
        st = ss_fail(err, SS_ERR_FORMAT, "%s: %zu pos and %zu neg reviews; rows alternate pos/neg, "
                     "so the counts must be equal", dir, np, nn);
    if (!st && !(st = add(e, "sentence\tlabel", 14, err))) st = end_line(e, 1, err);
    for (size_t i = 0; i < np && !st; i++) {
        if (!(st = add_review(e, pdir, pos[i].name, &raw, err)) && !(st = add(e, "\t1", 2, err)))
            st = end_line(e, 1, err);
        if (!st && !(st = add_review(e, ndir, neg[i].name, &raw, err)) &&
            !(st = add(e, "\t0", 2, err)))
            st = end_line(e, 1, err);
    }
    free_reviews(pos, np);
    free_reviews(neg, nn);
    ss_buf_free(&raw);
    return st;
}

/* Line i is the review with id i (ids 0..N-1). */
static ss_status aclimdb_unsup(const char *dir, emitter *e, ss_error *err) {
    review *r;
    size_t n;
    ss_buf raw = {0};
    ss_status st = list_reviews(dir, &r, &n, err);
    for (size_t i = 0; i < n && !st; i++) {
        if (r[i].id != i)
            st = ss_fail(err, SS_ERR_FORMAT, "%s: no review with id %zu (ids must be 0..%zu)", dir,
                         i, n - 1);
        if (!st) st = add_review(e, dir, r[i].name, &raw, err);
        if (!st) st = end_line(e, 1, err);
    }
    free_reviews(r, n);
    ss_buf_free(&raw);
    return st;
}

ss_status corpus_convert(const ss_corpus_source *src, const char *input, corpus_write_fn write,
                         void *ctx, ss_error *err) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s%s%s", input, src->member ? "/" : "",
                         src->member ? src->member : "") >= sizeof path)
        return ss_fail(err, SS_ERR_ARG, "path too long: %s", input);
    emitter e = {.src = src, .write = write, .ctx = ctx};
    const char *c = src->convert;
    ss_status st;
    if (strcmp(c, "aclimdb-labelled") == 0) st = aclimdb_labelled(path, &e, err);
    else if (strcmp(c, "aclimdb-unsup") == 0) st = aclimdb_unsup(path, &e, err);
    else {
        line_kind k = strcmp(c, "copy") == 0 ? C_COPY
                      : strcmp(c, "crlf-to-lf") == 0 ? C_CRLF
                      : strcmp(c, "sst-label-sentence") == 0 ? C_SST
                      : strcmp(c, "tsv-strip") == 0 ? C_TSV : C_TSV_SWAP;
        st = convert_lines(k, path, &e, err);
    }
    if (!st) st = emit_done(&e, err);
    ss_buf_free(&e.cur);
    return st;
}

/* ---- git blob ids (SHA-1, FIPS 180-4) --------------------------------------------------- */

typedef struct {
    uint32_t h[5];
    uint64_t nbytes;
    uint8_t block[64];
    size_t blen;
} sha1;

static uint32_t rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static void sha1_block(sha1 *s, const uint8_t *b) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], bb = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) f = (bb & c) | (~bb & d), k = 0x5a827999;
        else if (i < 40) f = bb ^ c ^ d, k = 0x6ed9eba1;
        else if (i < 60) f = (bb & c) | (bb & d) | (c & d), k = 0x8f1bbcdc;
        else f = bb ^ c ^ d, k = 0xca62c1d6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(bb, 30), bb = a, a = t;
    }
    s->h[0] += a, s->h[1] += bb, s->h[2] += c, s->h[3] += d, s->h[4] += e;
}

static void sha1_update(sha1 *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->nbytes += n;
    while (n) {
        size_t k = 64 - s->blen < n ? 64 - s->blen : n;
        memcpy(s->block + s->blen, p, k);
        s->blen += k, p += k, n -= k;
        if (s->blen == 64) sha1_block(s, s->block), s->blen = 0;
    }
}

static void sha1_hex(sha1 *s, char hex[41]) {
    uint64_t bits = s->nbytes * 8;
    uint8_t pad = 0x80, zero = 0, len[8];
    sha1_update(s, &pad, 1);
    while (s->blen != 56) sha1_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, len, 8);
    for (int i = 0; i < 5; i++) snprintf(hex + 8 * i, 9, "%08x", s->h[i]);
}

ss_status corpus_git_blob_file(const char *path, char hex[41], ss_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ss_fail(err, SS_ERR_IO, "%s: %s", path, strerror(errno));
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return ss_fail(err, SS_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    }
    sha1 s = {.h = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0}};
    char head[32];
    int hn = snprintf(head, sizeof head, "blob %lld", (long long)size);
    sha1_update(&s, head, (size_t)hn + 1); /* with its NUL */
    static __thread char buf[1 << 16];
    ss_status st = SS_OK;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = ss_fail(err, SS_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (r <= 0) break;
        sha1_update(&s, buf, (size_t)r);
    }
    close(fd);
    if (!st) sha1_hex(&s, hex);
    return st;
}
