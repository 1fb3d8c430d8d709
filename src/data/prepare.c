/* ss_prepare_corpus: raw text files -> documents -> token ids -> shards.
 *
 * Input is streamed line by line into a batch of document pieces (about
 * BATCH_BYTES of text). A full batch is cut into chunks (contiguous runs of
 * pieces) encoded by OpenMP tasks, each thread with its own tokenizer
 * (encoding is not thread-safe per tokenizer). Two batches alternate: while
 * the tasks encode one, the reading thread writes the previous one's ids in
 * document order to the train/val shard writers and reads the next, so
 * reading, decompression and shard compression overlap with tokenization.
 * Memory is bounded by the batch size, except for a single line/block
 * document, which is held whole. */
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/shard.h"
#include "selfsup/textstream.h"
#include "selfsup/tokenizer.h"

#define BATCH_BYTES (8u << 20) /* text encoded per parallel batch */
#define PIECE_BYTES (1u << 18) /* SS_DOC_FILE: cut documents near this size */

typedef struct {
    size_t off, len;     /* text in the batch buffer */
    size_t id_off, id_n; /* ids in its chunk's vector */
    uint32_t chunk;
    uint8_t split, ends_doc;
} piece;

typedef struct {
    char *path;
    uint64_t bytes, text_bytes;
} input_info;

/* A batch: pieces[i] is text.data[off..off+len); chunk c is pieces
 * [chunk_first[c], chunk_first[c+1]) and its ids are chunk_ids[c]. */
typedef struct {
    ss_buf text;
    piece *pieces;
    size_t n_pieces, cap_pieces;
    ss_ids *chunk_ids;  /* max_chunks vectors, reused from batch to batch */
    ss_error *chunk_err;
    size_t *chunk_first;
    int n_chunks;       /* chunks handed to encoding tasks, not yet written */
} batch;

typedef struct {
    const ss_prepare_opts *o;
    const char *sep_name;
    int nthreads;
    ss_tokenizer **toks;
    uint32_t vocab, sep_id;
    batch b[2];
    int cur;             /* b[cur] is being filled by the reader */
    size_t cur_off;      /* start of the piece being built in b[cur] */
    int in_doc, cur_split, doc0_split;
    uint64_t n_docs;     /* documents started, over all inputs */
    size_t max_chunks;
    /* output, per split */
    ss_shard_writer *w[2];
    char **names[2];
    size_t n_names[2];
    input_info *inputs;
    size_t n_inputs;
    ss_prepare_stats *stats;
} prep;

static const char *const split_name[2] = {"train", "val"};

/* splitmix64 finalizer: a well-mixed 64-bit hash of x. */
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* Split of document i: val when hash(seed, i) / 2^64 < val_fraction, and
 * document 1 is val when documents 0 and 1 both drew train (so a corpus of
 * two or more documents always has a val document). */
static int assign_split(prep *p, uint64_t i) {
    double f = p->o->val_fraction;
    if (f <= 0) return 0;
    double u = (double)(mix64(p->o->seed ^ mix64(i)) >> 11) * 0x1.0p-53;
    int val = u < f;
    if (i == 0) p->doc0_split = val;
    if (i == 1 && !val && p->doc0_split == 0) val = 1;
    return val;
}

/* ---- output ------------------------------------------------------------------ */

/* The file name of shard idx of split s (name[64]), and its path. */
static ss_status shard_path(prep *p, int s, size_t idx, char *name, char *buf, size_t cap, ss_error *err) {
    snprintf(name, 64, "%s-%05zu.shard", split_name[s], idx);
    return ss_path_join(buf, cap, p->o->out_dir, name, err);
}

static ss_status close_shard(prep *p, int s, ss_error *err) {
    ss_status st = ss_shard_writer_close(p->w[s], err);
    p->w[s] = NULL;
    return st;
}

static ss_status open_shard(prep *p, int s, ss_error *err) {
    char path[SS_PATH_MAX], name[64];
    size_t idx = p->n_names[s];
    ss_status st = shard_path(p, s, idx, name, path, sizeof path, err);
    if (st) return st;
    char **names = realloc(p->names[s], (idx + 1) * sizeof *names);
    if (!names) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    p->names[s] = names;
    if (!(names[idx] = strdup(name))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    p->n_names[s]++;
    p->stats->shards[s] = p->n_names[s];
    return ss_shard_writer_open(&p->w[s], path, p->vocab, p->sep_id, err);
}

/* Append a piece's ids to its split, rolling over to a new shard first when
 * the piece would take the current one past shard_tokens. */
static ss_status write_piece(prep *p, const batch *b, const piece *pc, ss_error *err) {
    int s = pc->split;
    uint64_t need = pc->id_n + pc->ends_doc;
    ss_status st;
    if (p->w[s]) {
        uint64_t have = ss_shard_writer_tokens(p->w[s]);
        if (have > 0 && have + need > p->o->shard_tokens && (st = close_shard(p, s, err)))
            return st;
    }
    if (!p->w[s] && (st = open_shard(p, s, err))) return st;
    const int32_t *ids = b->chunk_ids[pc->chunk].ids + pc->id_off;
    if ((st = ss_shard_writer_append(p->w[s], ids, pc->id_n, pc->len, pc->ends_doc, err)))
        return st;
    p->stats->tokens[s] += need;
    p->stats->text_bytes[s] += pc->len;
    p->stats->docs[s] += pc->ends_doc;
    return SS_OK;
}

/* ---- encoding a batch ---------------------------------------------------------- */

/* Encode one chunk (an OpenMP task, on whichever thread runs it). */
static void encode_chunk(prep *p, batch *b, int ch) {
    ss_tokenizer *tok = p->toks[omp_get_thread_num()];
    ss_ids *out = &b->chunk_ids[ch];
    out->n = 0;
    b->chunk_err[ch].code = SS_OK;
    for (size_t i = b->chunk_first[ch]; i < b->chunk_first[ch + 1]; i++) {
        piece *pc = &b->pieces[i];
        pc->id_off = out->n;
        if (ss_tokenizer_encode(tok, b->text.data + pc->off, pc->len, 0, out,
                                &b->chunk_err[ch]) != SS_OK)
            return; /* ss_fail set chunk_err[ch].code */
        pc->id_n = out->n - pc->id_off;
    }
}

/* Cut the pieces into at most max_chunks contiguous runs of about equal text
 * and start one task per run. */
static void start_encoding(prep *p, batch *b) {
    if (b->n_pieces == 0) return;
    size_t k = b->n_pieces < p->max_chunks ? b->n_pieces : p->max_chunks;
    size_t per = b->text.len / k + 1, acc = 0;
    int c = 0;
    b->chunk_first[0] = 0;
    for (size_t i = 0; i < b->n_pieces; i++) {
        b->pieces[i].chunk = (uint32_t)c;
        acc += b->pieces[i].len;
        if (acc >= per * (size_t)(c + 1) && (size_t)c + 1 < k && i + 1 < b->n_pieces)
            b->chunk_first[++c] = i + 1;
    }
    b->n_chunks = c + 1;
    b->chunk_first[b->n_chunks] = b->n_pieces;
    for (int ch = 0; ch < b->n_chunks; ch++) {
#pragma omp task firstprivate(ch) default(shared)
        encode_chunk(p, b, ch);
    }
}

/* Write an encoded batch's pieces in order (its tasks must be done), then
 * empty it for reading. */
static ss_status write_batch(prep *p, batch *b, ss_error *err) {
    ss_status st = SS_OK;
    for (int ch = 0; ch < b->n_chunks && !st; ch++)
        if (b->chunk_err[ch].code) {
            if (err) *err = b->chunk_err[ch];
            st = b->chunk_err[ch].code;
        }
    for (size_t i = 0; i < b->n_pieces && !st && b->n_chunks; i++)
        st = write_piece(p, b, &b->pieces[i], err);
    b->n_chunks = 0;
    b->n_pieces = 0;
    b->text.len = 0;
    return st;
}

/* The reading batch is full (or the input ended): wait for the other batch's
 * tasks, start encoding this one, write the other one while this one
 * encodes, and read on into the other. Called twice at the end to drain. */
static ss_status flush_batch(prep *p, ss_error *err) {
    batch *now = &p->b[p->cur], *prev = &p->b[!p->cur];
#pragma omp taskwait
    start_encoding(p, now);
    ss_status st = write_batch(p, prev, err);
    p->cur = !p->cur;
    p->cur_off = 0;
    return st;
}

/* ---- cutting documents ------------------------------------------------------ */

static void doc_begin(prep *p) {
    p->in_doc = 1;
    p->cur_split = assign_split(p, p->n_docs++);
}

/* Close the piece text[cur_off..len); flush the batch when it is full (no
 * partial piece exists at that moment, so the buffer can be reused). */
static ss_status piece_end(prep *p, int ends_doc, ss_error *err) {
    batch *b = &p->b[p->cur];
    if (b->n_pieces == b->cap_pieces) {
        size_t cap = b->cap_pieces ? 2 * b->cap_pieces : 1024;
        piece *np = realloc(b->pieces, cap * sizeof *np);
        if (!np) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        b->pieces = np;
        b->cap_pieces = cap;
    }
    b->pieces[b->n_pieces++] = (piece){.off = p->cur_off, .len = b->text.len - p->cur_off,
                                       .split = (uint8_t)p->cur_split,
                                       .ends_doc = (uint8_t)ends_doc};
    p->cur_off = b->text.len;
    if (ends_doc) p->in_doc = 0;
    return b->text.len >= BATCH_BYTES ? flush_batch(p, err) : SS_OK;
}

/* Length of line without its "\n" or "\r\n". */
static size_t strip_eol(const char *line, size_t len) {
    if (len && line[len - 1] == '\n') {
        len--;
        if (len && line[len - 1] == '\r') len--;
    }
    return len;
}

static int is_blank(const char *line, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char c = line[i];
        if (c != ' ' && (c < 9 || c > 13)) return 0;
    }
    return 1;
}

/* 1 when the last character of s[0..n) (n > 0) is not Unicode White_Space
 * (the set the pre-tokenizer uses). Invalid UTF-8 counts as non-space. */
static int ends_non_space(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[n - 1];
    if (c < 0x80) return !(c == ' ' || (c >= 9 && c <= 13));
    size_t i = n - 1; /* back to the lead byte of the last character */
    while (i > 0 && n - i < 4 && (u[i] & 0xC0) == 0x80) i--;
    int32_t cp = -1;
    if (n - i == 2 && u[i] >= 0xC2 && u[i] < 0xE0) cp = (u[i] & 0x1F) << 6 | (u[i + 1] & 0x3F);
    else if (n - i == 3 && u[i] >= 0xE0 && u[i] < 0xF0)
        cp = (u[i] & 0x0F) << 12 | (u[i + 1] & 0x3F) << 6 | (u[i + 2] & 0x3F);
    return !(cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
             cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000);
}

static ss_status add_text(prep *p, const char *s, size_t n, ss_error *err) {
    return ss_buf_append(&p->b[p->cur].text, s, n, err);
}

/* End a block or file document: BLANK drops the final line end. */
static ss_status doc_end(prep *p, ss_error *err) {
    if (!p->in_doc) return SS_OK;
    ss_buf *t = &p->b[p->cur].text;
    if (p->o->boundary == SS_DOC_BLANK)
        t->len = p->cur_off + strip_eol(t->data + p->cur_off, t->len - p->cur_off);
    return piece_end(p, 1, err);
}

static ss_status take_line(prep *p, const char *line, size_t len, ss_error *err) {
    ss_status st;
    switch (p->o->boundary) {
    case SS_DOC_LINE:
        len = strip_eol(line, len);
        if (len == 0) return SS_OK;
        doc_begin(p);
        if ((st = add_text(p, line, len, err))) return st;
        return piece_end(p, 1, err);
    case SS_DOC_BLANK:
        if (is_blank(line, len)) return doc_end(p, err);
        if (!p->in_doc) doc_begin(p);
        return add_text(p, line, len, err);
    case SS_DOC_FILE: {
        /* Cut a big piece between the line's last character and its line
         * end when that character is not white space: no pre-token spans a
         * non-space followed by white space, and a piece ending in a
         * non-space pre-tokenizes as it would inside the whole text. (After
         * the '\n' is not safe: a white-space run at the end of a piece is
         * not split the way "\s+(?!\S)" splits it before a non-space.) */
        if (!p->in_doc) doc_begin(p);
        size_t body = strip_eol(line, len);
        if (body > 0 && body < len && ends_non_space(line, body) &&
            p->b[p->cur].text.len - p->cur_off + body >= PIECE_BYTES) {
            if ((st = add_text(p, line, body, err)) || (st = piece_end(p, 0, err))) return st;
            return add_text(p, line + body, len - body, err);
        }
        return add_text(p, line, len, err);
    }
    }
    return ss_fail(err, SS_ERR_ARG, "unknown document boundary %d", (int)p->o->boundary);
}

static ss_status read_input(prep *p, const char *path, ss_error *err) {
    ss_textstream *ts;
    ss_status st = ss_textstream_open(&ts, path, err);
    if (st) return st;
    const char *line;
    size_t len;
    for (;;) {
        if ((st = ss_textstream_next_line(ts, &line, &len, err)) || len == 0) break;
        if ((st = take_line(p, line, len, err))) break;
    }
    if (!st) st = doc_end(p, err); /* documents never span files */
    input_info *in = &p->inputs[p->n_inputs];
    if (!st && (in->path = strdup(path))) {
        in->bytes = ss_textstream_bytes_in(ts);
        in->text_bytes = ss_textstream_bytes_out(ts);
        p->n_inputs++;
    } else if (!st) {
        st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    ss_textstream_close(ts);
    return st;
}

/* Every input, then the last two batches through the pipeline. */
static ss_status read_all(prep *p, const char *const *paths, size_t n_paths, ss_error *err) {
    ss_status st = SS_OK;
    for (size_t i = 0; i < n_paths && !st; i++) st = read_input(p, paths[i], err);
    if (!st) st = flush_batch(p, err);
    if (!st) st = flush_batch(p, err);
    return st;
}

/* ---- setup, meta.json, teardown ---------------------------------------------- */

/* One tokenizer per thread, loaded from the same file; the first one is
 * loaded alone so a bad path or missing separator fails fast. */
static ss_status load_tokenizers(prep *p, ss_error *err) {
    p->toks = calloc((size_t)p->nthreads, sizeof *p->toks);
    if (!p->toks) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = ss_tokenizer_load(&p->toks[0], p->o->tokenizer_path, err);
    if (st) return st;
    int32_t sep = ss_tokenizer_token_id(p->toks[0], p->sep_name);
    if (sep < 0)
        return ss_fail(err, SS_ERR_NOT_FOUND, "%s: the tokenizer has no separator token '%s' "
                       "(choose one with --separator)", p->o->tokenizer_path, p->sep_name);
    size_t vocab = ss_tokenizer_vocab_size(p->toks[0]);
    if (vocab > UINT32_MAX) return ss_fail(err, SS_ERR_RANGE, "vocab size %zu too large", vocab);
    p->vocab = (uint32_t)vocab;
    p->sep_id = (uint32_t)sep;
    ss_status *sts = calloc((size_t)p->nthreads, sizeof *sts);
    ss_error *errs = calloc((size_t)p->nthreads, sizeof *errs);
    if (!sts || !errs) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    /* (an OpenMP if clause only makes the loop serial: it would still run) */
    if (!st) {
#pragma omp parallel for num_threads(p->nthreads)
        for (int i = 1; i < p->nthreads; i++)
            sts[i] = ss_tokenizer_load(&p->toks[i], p->o->tokenizer_path, &errs[i]);
    }
    for (int i = 1; i < p->nthreads && !st; i++)
        if (sts[i]) { if (err) *err = errs[i]; st = sts[i]; }
    free(sts);
    free(errs);
    return st;
}

static cJSON *split_json(prep *p, int s) {
    cJSON *o = cJSON_CreateObject(), *names = cJSON_AddArrayToObject(o, "shards");
    for (size_t i = 0; i < p->n_names[s]; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(p->names[s][i]));
    cJSON_AddNumberToObject(o, "docs", (double)p->stats->docs[s]);
    cJSON_AddNumberToObject(o, "tokens", (double)p->stats->tokens[s]);
    cJSON_AddNumberToObject(o, "text_bytes", (double)p->stats->text_bytes[s]);
    return o;
}

static ss_status write_meta(prep *p, ss_error *err) {
    static const char *const bnames[] = {"line", "blank", "file"};
    const ss_prepare_opts *o = p->o;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", "selfsup-shards");
    cJSON_AddNumberToObject(m, "version", SS_SHARD_VERSION);
    cJSON_AddStringToObject(m, "tokenizer", SS_RUN_TOKENIZER);
    cJSON_AddNumberToObject(m, "vocab_size", p->vocab);
    cJSON_AddStringToObject(m, "separator", p->sep_name);
    cJSON_AddNumberToObject(m, "separator_id", p->sep_id);
    cJSON_AddStringToObject(m, "doc_boundary", bnames[o->boundary]);
    cJSON_AddNumberToObject(m, "val_fraction", o->val_fraction);
    cJSON_AddNumberToObject(m, "seed", (double)o->seed);
    cJSON_AddNumberToObject(m, "shard_tokens", (double)o->shard_tokens);
    cJSON *inputs = cJSON_AddArrayToObject(m, "inputs");
    for (size_t i = 0; i < p->n_inputs; i++) {
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "path", p->inputs[i].path);
        cJSON_AddNumberToObject(in, "bytes", (double)p->inputs[i].bytes);
        cJSON_AddNumberToObject(in, "text_bytes", (double)p->inputs[i].text_bytes);
        cJSON_AddItemToArray(inputs, in);
    }
    cJSON *splits = cJSON_AddObjectToObject(m, "splits");
    cJSON_AddItemToObject(splits, "train", split_json(p, 0));
    cJSON_AddItemToObject(splits, "val", split_json(p, 1));
    char *text = cJSON_Print(m);
    cJSON_Delete(m);
    if (!text) return ss_fail(err, SS_ERR_NOMEM, "out of memory writing meta.json");
    char path[SS_PATH_MAX];
    size_t n = strlen(text);
    text[n] = '\n'; /* cJSON_Print's buffer has room: overwrite the NUL */
    ss_status st = ss_path_join(path, sizeof path, o->out_dir, SS_DATA_META, err);
    if (!st) st = ss_write_file_atomic(path, text, n + 1, err);
    free(text);
    return st;
}

/* Remove shards a previous, larger preparation left in the directory. */
static void remove_stale_shards(prep *p) {
    char path[SS_PATH_MAX], name[64];
    for (int s = 0; s < 2; s++)
        for (size_t i = p->n_names[s];; i++) {
            if (shard_path(p, s, i, name, path, sizeof path, NULL) || unlink(path) != 0) break;
        }
}

static void prep_free(prep *p) {
    for (int s = 0; s < 2; s++) {
        ss_shard_writer_abort(p->w[s]);
        for (size_t i = 0; i < p->n_names[s]; i++) free(p->names[s][i]);
        free(p->names[s]);
    }
    for (int i = 0; p->toks && i < p->nthreads; i++) ss_tokenizer_free(p->toks[i]);
    free(p->toks);
    for (int k = 0; k < 2; k++) {
        batch *b = &p->b[k];
        for (size_t i = 0; b->chunk_ids && i < p->max_chunks; i++) ss_ids_free(&b->chunk_ids[i]);
        free(b->chunk_ids);
        free(b->chunk_err);
        free(b->chunk_first);
        free(b->pieces);
        ss_buf_free(&b->text);
    }
    for (size_t i = 0; i < p->n_inputs; i++) free(p->inputs[i].path);
    free(p->inputs);
}

static ss_status check_opts(const ss_prepare_opts *o, ss_error *err) {
    if (!o->tokenizer_path || !o->out_dir)
        return ss_fail(err, SS_ERR_ARG, "prepare needs a tokenizer and an output directory");
    if (!(o->val_fraction >= 0 && o->val_fraction <= 1))
        return ss_fail(err, SS_ERR_ARG, "val fraction %g is not in [0, 1]", o->val_fraction);
    if ((unsigned)o->boundary > SS_DOC_FILE)
        return ss_fail(err, SS_ERR_ARG, "unknown document boundary %d", (int)o->boundary);
    if (strlen(o->out_dir) > 3000) return ss_fail(err, SS_ERR_ARG, "output directory name too long");
    return SS_OK;
}

static ss_status run(prep *p, const char *const *paths, size_t n_paths, ss_error *err) {
    ss_status st;
    char meta[SS_PATH_MAX];
    if ((st = ss_mkdir_p(p->o->out_dir, err))) return st;
    /* a failed run must not leave an old meta.json describing new shards */
    if ((st = ss_path_join(meta, sizeof meta, p->o->out_dir, SS_DATA_META, err))) return st;
    if (unlink(meta) != 0 && errno != ENOENT)
        return ss_fail(err, SS_ERR_IO, "%s: cannot remove: %s", meta, strerror(errno));
    if ((st = load_tokenizers(p, err))) return st;
    p->max_chunks = 4 * (size_t)p->nthreads;
    for (int k = 0; k < 2; k++) {
        batch *b = &p->b[k];
        b->chunk_ids = calloc(p->max_chunks, sizeof *b->chunk_ids);
        b->chunk_err = calloc(p->max_chunks, sizeof *b->chunk_err);
        b->chunk_first = calloc(p->max_chunks + 1, sizeof *b->chunk_first);
        if (!b->chunk_ids || !b->chunk_err || !b->chunk_first)
            return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    if (!(p->inputs = calloc(n_paths ? n_paths : 1, sizeof *p->inputs)))
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    /* one thread reads and writes, all threads encode (tasks); the end of
     * the single region waits for any task still running after an error */
#pragma omp parallel num_threads(p->nthreads)
#pragma omp single
    st = read_all(p, paths, n_paths, err);
    if (st) return st;
    for (int s = 0; s < 2; s++)
        if (p->w[s] && (st = close_shard(p, s, err))) return st;
    remove_stale_shards(p);
    char tok[SS_PATH_MAX];
    if ((st = ss_path_join(tok, sizeof tok, p->o->out_dir, SS_RUN_TOKENIZER, err))) return st;
    if ((st = ss_tokenizer_save(p->toks[0], tok, err))) return st;
    return write_meta(p, err);
}

ss_status ss_prepare_corpus(const ss_prepare_opts *opts, const char *const *paths,
                            size_t n_paths, ss_prepare_stats *stats, ss_error *err) {
    ss_status st = check_opts(opts, err);
    if (st) return st;
    if (n_paths == 0) return ss_fail(err, SS_ERR_ARG, "no input files");
    memset(stats, 0, sizeof *stats);
    ss_prepare_opts o = *opts;
    if (o.shard_tokens == 0) o.shard_tokens = 1ull << 26;
    prep p = {.o = &o, .stats = stats};
    p.sep_name = opts->separator ? opts->separator : "<|endoftext|>";
    p.nthreads = opts->nthreads > 0 ? opts->nthreads : omp_get_max_threads();
    st = run(&p, paths, n_paths, err);
    prep_free(&p);
    return st;
}
