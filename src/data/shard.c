/* Token shard files: a 64-byte header and one zstd frame of little-endian
 * ids (format in include/selfsup/shard.h). Writing streams the ids through a
 * staging buffer into ZSTD_compressStream2, so memory is constant; reading
 * streams back the same way and verifies the count, the FNV-1a checksum and
 * the exact file size at the end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "selfsup/io.h"
#include "selfsup/shard.h"

#define STAGE_BYTES (1u << 18) /* raw id bytes compressed per call */
#define ZSTD_LEVEL 3

/* FNV-1a 64: h = (h ^ byte) * 0x100000001b3, from the offset basis. */
#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint32_t id_width(uint32_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

static void header_pack(const ss_shard_header *h, unsigned char raw[SS_SHARD_HEADER_SIZE]) {
    memcpy(raw, SS_SHARD_MAGIC, 8);
    put32(raw + 8, h->version);
    put32(raw + 12, h->id_bytes);
    put32(raw + 16, h->vocab_size);
    put32(raw + 20, h->separator_id);
    put64(raw + 24, h->n_tokens);
    put64(raw + 32, h->n_docs);
    put64(raw + 40, h->n_text_bytes);
    put64(raw + 48, h->checksum);
    put64(raw + 56, h->payload_bytes);
}

ss_status ss_shard_header_parse(const unsigned char raw[SS_SHARD_HEADER_SIZE],
                                const char *name, ss_shard_header *h, ss_error *err) {
    if (memcmp(raw, SS_SHARD_MAGIC, 8) != 0)
        return ss_fail(err, SS_ERR_FORMAT, "%s: not a selfsup shard (bad magic)", name);
    h->version = get32(raw + 8);
    h->id_bytes = get32(raw + 12);
    h->vocab_size = get32(raw + 16);
    h->separator_id = get32(raw + 20);
    h->n_tokens = get64(raw + 24);
    h->n_docs = get64(raw + 32);
    h->n_text_bytes = get64(raw + 40);
    h->checksum = get64(raw + 48);
    h->payload_bytes = get64(raw + 56);
    if (h->version != SS_SHARD_VERSION)
        return ss_fail(err, SS_ERR_FORMAT, "%s: unknown shard format version %u (expected %u)",
                       name, h->version, SS_SHARD_VERSION);
    if (h->vocab_size == 0)
        return ss_fail(err, SS_ERR_FORMAT, "%s: header: vocab size is 0", name);
    if (h->vocab_size > (uint32_t)INT32_MAX + 1) /* ids are int32: an id >= 2^31 would turn negative */
        return ss_fail(err, SS_ERR_FORMAT, "%s: header: vocab size %u exceeds 2^31 (token ids are 31-bit)",
                       name, h->vocab_size);
    if (h->id_bytes != id_width(h->vocab_size))
        return ss_fail(err, SS_ERR_FORMAT, "%s: header: bad id width %u for vocab size %u "
                       "(expected %u)", name, h->id_bytes, h->vocab_size, id_width(h->vocab_size));
    if (h->separator_id >= h->vocab_size)
        return ss_fail(err, SS_ERR_FORMAT, "%s: header: separator id %u >= vocab size %u",
                       name, h->separator_id, h->vocab_size);
    if (h->n_docs > h->n_tokens)
        return ss_fail(err, SS_ERR_FORMAT, "%s: header: %llu documents but only %llu tokens",
                       name, (unsigned long long)h->n_docs, (unsigned long long)h->n_tokens);
    return SS_OK;
}

/* ========================= writer ========================= */

struct ss_shard_writer {
    ss_atomic_file *af;
    FILE *f;
    char *path;
    ZSTD_CCtx *cctx;
    ss_shard_header h;
    unsigned char *stage, *zout;
    size_t stage_len, zout_cap;
};

/* Compress stage (or finish the frame when mode == ZSTD_e_end). */
static ss_status writer_flush(ss_shard_writer *w, ZSTD_EndDirective mode, ss_error *err) {
    w->h.checksum = fnv1a(w->h.checksum, w->stage, w->stage_len);
    ZSTD_inBuffer in = {w->stage, w->stage_len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->zout, w->zout_cap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        if (ZSTD_isError(left))
            return ss_fail(err, SS_ERR_EXTERNAL, "%s: zstd compression failed: %s", w->path,
                           ZSTD_getErrorName(left));
        if (out.pos && fwrite(w->zout, 1, out.pos, w->f) != out.pos)
            return ss_fail(err, SS_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
        w->h.payload_bytes += out.pos;
        int done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
        if (done) break;
    }
    w->stage_len = 0;
    return SS_OK;
}

void ss_shard_writer_abort(ss_shard_writer *w) {
    if (!w) return;
    if (w->af) ss_atomic_abort(w->af);
    ZSTD_freeCCtx(w->cctx);
    free(w->stage);
    free(w->zout);
    free(w->path);
    free(w);
}

ss_status ss_shard_writer_open(ss_shard_writer **out, const char *path, uint32_t vocab_size,
                               uint32_t separator_id, ss_error *err) {
    *out = NULL;
    if (vocab_size == 0 || separator_id >= vocab_size)
        return ss_fail(err, SS_ERR_ARG, "%s: separator id %u is not below vocab size %u",
                       path, separator_id, vocab_size);
    if (vocab_size > (uint32_t)INT32_MAX + 1) /* what the reader accepts */
        return ss_fail(err, SS_ERR_ARG, "%s: vocab size %u exceeds 2^31", path, vocab_size);
    ss_shard_writer *w = calloc(1, sizeof *w);
    if (!w) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    w->zout_cap = ZSTD_CStreamOutSize();
    w->path = strdup(path);
    w->stage = malloc(STAGE_BYTES);
    w->zout = malloc(w->zout_cap);
    w->cctx = ZSTD_createCCtx();
    if (!w->path || !w->stage || !w->zout || !w->cctx) {
        ss_shard_writer_abort(w);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    w->h = (ss_shard_header){.version = SS_SHARD_VERSION, .id_bytes = id_width(vocab_size),
                             .vocab_size = vocab_size, .separator_id = separator_id,
                             .checksum = FNV_BASIS};
    ss_status st = ss_atomic_open(&w->af, path, err);
    if (st) { ss_shard_writer_abort(w); return st; }
    w->f = ss_atomic_stream(w->af);
    unsigned char raw[SS_SHARD_HEADER_SIZE] = {0}; /* placeholder until close */
    if (fwrite(raw, 1, sizeof raw, w->f) != sizeof raw) {
        ss_fail(err, SS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        ss_shard_writer_abort(w);
        return SS_ERR_IO;
    }
    *out = w;
    return SS_OK;
}

static ss_status stage_ids(ss_shard_writer *w, const int32_t *ids, size_t n, ss_error *err) {
    const size_t wd = w->h.id_bytes;
    for (size_t i = 0; i < n; i++) {
        if (w->stage_len + wd > STAGE_BYTES) {
            ss_status st = writer_flush(w, ZSTD_e_continue, err);
            if (st) return st;
        }
        uint32_t v = (uint32_t)ids[i];
        unsigned char *p = w->stage + w->stage_len;
        p[0] = (unsigned char)v;
        p[1] = (unsigned char)(v >> 8);
        if (wd == 4) { p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }
        w->stage_len += wd;
    }
    w->h.n_tokens += n;
    return SS_OK;
}

ss_status ss_shard_writer_append(ss_shard_writer *w, const int32_t *ids, size_t n,
                                 uint64_t text_bytes, int end_doc, ss_error *err) {
    for (size_t i = 0; i < n; i++) /* validate first: nothing appended on error */
        if (ids[i] < 0 || (uint32_t)ids[i] >= w->h.vocab_size)
            return ss_fail(err, SS_ERR_RANGE, "%s: token id %d (position %zu of document %llu) "
                           "is outside the vocabulary of %u", w->path, ids[i], i,
                           (unsigned long long)w->h.n_docs, w->h.vocab_size);
    ss_status st = stage_ids(w, ids, n, err);
    if (!st && end_doc) {
        int32_t sep = (int32_t)w->h.separator_id;
        st = stage_ids(w, &sep, 1, err);
        w->h.n_docs++;
    }
    w->h.n_text_bytes += text_bytes;
    return st;
}

ss_status ss_shard_writer_add_doc(ss_shard_writer *w, const int32_t *ids, size_t n,
                                  uint64_t text_bytes, ss_error *err) {
    return ss_shard_writer_append(w, ids, n, text_bytes, 1, err);
}

uint64_t ss_shard_writer_tokens(const ss_shard_writer *w) { return w->h.n_tokens; }

ss_status ss_shard_writer_close(ss_shard_writer *w, ss_error *err) {
    ss_status st = writer_flush(w, ZSTD_e_end, err);
    unsigned char raw[SS_SHARD_HEADER_SIZE];
    header_pack(&w->h, raw);
    if (!st && (fseeko(w->f, 0, SEEK_SET) != 0 || fwrite(raw, 1, sizeof raw, w->f) != sizeof raw))
        st = ss_fail(err, SS_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    if (!st) {
        st = ss_atomic_commit(w->af, err);
        w->af = NULL; /* commit freed it, even on failure */
    }
    ss_shard_writer_abort(w);
    return st;
}

/* ========================= reader ========================= */

struct ss_shard_reader {
    FILE *f;
    char *path;
    ss_shard_header h;
    ZSTD_DCtx *dctx;
    unsigned char *zin, *obuf;
    size_t zin_cap, ocap;
    ZSTD_inBuffer in;
    size_t opos, olen;      /* decoded bytes not yet returned */
    uint64_t payload_left;  /* compressed bytes not yet read from the file */
    uint64_t tokens, hash;
    size_t zret;            /* 0 once the frame is complete */
    int out_full, done;
};

/* Read the header and check the file is exactly header + payload long. */
static ss_status open_header(FILE *f, const char *path, ss_shard_header *h, ss_error *err) {
    unsigned char raw[SS_SHARD_HEADER_SIZE];
    size_t got = fread(raw, 1, sizeof raw, f);
    if (got != sizeof raw) {
        if (ferror(f)) return ss_fail(err, SS_ERR_IO, "%s: read error: %s", path, strerror(errno));
        return ss_fail(err, SS_ERR_FORMAT, "%s: truncated shard: %zu-byte file is shorter than "
                       "the %d-byte header", path, got, SS_SHARD_HEADER_SIZE);
    }
    ss_status st = ss_shard_header_parse(raw, path, h, err);
    if (st) return st;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return ss_fail(err, SS_ERR_IO, "%s: stat failed: %s", path, strerror(errno));
    uint64_t want = SS_SHARD_HEADER_SIZE + h->payload_bytes, have = (uint64_t)sb.st_size;
    if (have < want)
        return ss_fail(err, SS_ERR_FORMAT, "%s: truncated shard: %llu bytes, header says %llu",
                       path, (unsigned long long)have, (unsigned long long)want);
    if (have > want)
        return ss_fail(err, SS_ERR_FORMAT, "%s: %llu trailing bytes after the payload",
                       path, (unsigned long long)(have - want));
    return SS_OK;
}

ss_status ss_shard_read_header(const char *path, ss_shard_header *h, ss_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ss_fail(err, SS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    ss_status st = open_header(f, path, h, err);
    fclose(f);
    return st;
}

void ss_shard_reader_close(ss_shard_reader *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    ZSTD_freeDCtx(r->dctx);
    free(r->zin);
    free(r->obuf);
    free(r->path);
    free(r);
}

ss_status ss_shard_reader_open(ss_shard_reader **out, const char *path, ss_error *err) {
    *out = NULL;
    ss_shard_reader *r = calloc(1, sizeof *r);
    if (!r) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    r->zin_cap = ZSTD_DStreamInSize();
    r->ocap = ZSTD_DStreamOutSize();
    r->path = strdup(path);
    r->zin = malloc(r->zin_cap);
    r->obuf = malloc(r->ocap + 4);
    r->dctx = ZSTD_createDCtx();
    if (!r->path || !r->zin || !r->obuf || !r->dctx) {
        ss_shard_reader_close(r);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    r->f = fopen(path, "rb");
    ss_status st = r->f ? open_header(r->f, path, &r->h, err)
                        : ss_fail(err, SS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (st) { ss_shard_reader_close(r); return st; }
    r->payload_left = r->h.payload_bytes;
    r->hash = FNV_BASIS;
    r->zret = 1;
    *out = r;
    return SS_OK;
}

const ss_shard_header *ss_shard_reader_header(const ss_shard_reader *r) { return &r->h; }

/* End of payload: the frame must be complete and the totals must match. */
static ss_status reader_finish(ss_shard_reader *r, ss_error *err) {
    r->done = 1;
    if (r->zret != 0)
        return ss_fail(err, SS_ERR_FORMAT, "%s: truncated payload (zstd frame incomplete)", r->path);
    if (r->olen != r->opos)
        return ss_fail(err, SS_ERR_FORMAT, "%s: payload is not a whole number of %u-byte ids",
                       r->path, r->h.id_bytes);
    if (r->tokens != r->h.n_tokens)
        return ss_fail(err, SS_ERR_FORMAT, "%s: payload holds %llu tokens, header says %llu",
                       r->path, (unsigned long long)r->tokens, (unsigned long long)r->h.n_tokens);
    if (r->hash != r->h.checksum)
        return ss_fail(err, SS_ERR_CHECKSUM, "%s: checksum mismatch (ids %016llx, header %016llx)",
                       r->path, (unsigned long long)r->hash, (unsigned long long)r->h.checksum);
    return SS_OK;
}

/* Decode more bytes after the leftover partial id (at most id_bytes-1).
 * zstd may still hold output when its last output buffer came back full, so
 * the payload only ends once the input is used up and that is not the case. */
static ss_status reader_fill(ss_shard_reader *r, ss_error *err) {
    size_t keep = r->olen - r->opos;
    memmove(r->obuf, r->obuf + r->opos, keep);
    r->opos = 0;
    r->olen = keep;
    while (r->olen == keep) {
        if (r->in.pos == r->in.size && r->payload_left > 0) {
            size_t want = r->payload_left < r->zin_cap ? (size_t)r->payload_left : r->zin_cap;
            size_t got = fread(r->zin, 1, want, r->f);
            if (got != want)
                return ss_fail(err, ferror(r->f) ? SS_ERR_IO : SS_ERR_FORMAT,
                               "%s: truncated shard (payload ends early)", r->path);
            r->payload_left -= got;
            r->in = (ZSTD_inBuffer){r->zin, got, 0};
        }
        int input_done = r->in.pos == r->in.size && r->payload_left == 0;
        if (input_done && (r->zret == 0 || !r->out_full)) return reader_finish(r, err);
        if (r->zret == 0)
            return ss_fail(err, SS_ERR_FORMAT, "%s: data after the end of the zstd frame", r->path);
        ZSTD_outBuffer out = {r->obuf + keep, r->ocap, 0};
        size_t z = ZSTD_decompressStream(r->dctx, &out, &r->in);
        if (ZSTD_isError(z))
            return ss_fail(err, ZSTD_getErrorCode(z) == ZSTD_error_checksum_wrong
                                    ? SS_ERR_CHECKSUM : SS_ERR_FORMAT,
                           "%s: corrupt payload: %s", r->path, ZSTD_getErrorName(z));
        r->zret = z;
        r->out_full = out.pos == out.size;
        r->olen = keep + out.pos;
    }
    return SS_OK;
}

ss_status ss_shard_reader_next(ss_shard_reader *r, int32_t *ids, size_t cap, size_t *got,
                               ss_error *err) {
    *got = 0;
    const size_t wd = r->h.id_bytes;
    while (*got < cap && !r->done) {
        if (r->olen - r->opos < wd) {
            ss_status st = reader_fill(r, err);
            if (st) return st;
            continue;
        }
        size_t n = (r->olen - r->opos) / wd;
        if (n > cap - *got) n = cap - *got;
        if (r->tokens + n > r->h.n_tokens)
            return ss_fail(err, SS_ERR_FORMAT, "%s: payload holds more than the %llu tokens "
                           "the header says", r->path, (unsigned long long)r->h.n_tokens);
        const unsigned char *p = r->obuf + r->opos;
        r->hash = fnv1a(r->hash, p, n * wd);
        for (size_t i = 0; i < n; i++, p += wd) {
            uint32_t v = wd == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : get32(p);
            if (v >= r->h.vocab_size)
                return ss_fail(err, SS_ERR_RANGE, "%s: token %llu has id %u >= vocab size %u",
                               r->path, (unsigned long long)(r->tokens + i), v, r->h.vocab_size);
            ids[*got + i] = (int32_t)v;
        }
        r->opos += n * wd;
        r->tokens += n;
        *got += n;
    }
    return SS_OK;
}

ss_status ss_shard_verify(const char *path, ss_error *err) {
    ss_shard_reader *r;
    ss_status st = ss_shard_reader_open(&r, path, err);
    if (st) return st;
    int32_t buf[16384];
    size_t got;
    do st = ss_shard_reader_next(r, buf, sizeof buf / sizeof *buf, &got, err);
    while (!st && got);
    ss_shard_reader_close(r);
    return st;
}
