/* Text embeddings: the model body's hidden states h[b, t, :] (after the final
 * LayerNorm) pooled into one vector per text,
 *   mean: e_b = sum over non-padding t of h[b, t] / n_b
 *   cls:  e_b = h[b, 0]            last: e_b = h[b, t_b] (t_b the last non-padding t)
 *   normalized: e_b / ||e_b||_2
 * batched by length through the same forward as training and classify; and
 * a writer of NumPy .npy files (format 1.0) for them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/embed.h"
#include "selfsup/io.h"
#include "selfsup/path.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the .npy writer stores '<f4' as the host's floats");

void ss_embedder_free(ss_embedder *e) {
    ss_model_free(e->model);
    ss_tokenizer_free(e->tok);
    memset(e, 0, sizeof *e);
}

ss_status ss_embedder_load(ss_embedder *e, const char *dir, int max_seq, ss_error *err) {
    memset(e, 0, sizeof *e);
    char path[SS_PATH_MAX];
    ss_status st = ss_model_load(&e->model, dir, err);
    if (st) return st;
    const ss_model_config *c = ss_model_config_of(e->model);
    if (max_seq == 0) max_seq = c->max_seq;
    if (max_seq < 3 || max_seq > c->max_seq)
        st = ss_fail(err, SS_ERR_ARG, "max-seq %d: must be in [3, %d] (the model's max_seq)", max_seq, c->max_seq);
    if (!st) st = ss_path_join(path, sizeof path, dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_tokenizer_load(&e->tok, path, err);
    if (!st) st = ss_text_format_init(&e->fmt, e->tok, c->kind, max_seq, err);
    if (st) {
        ss_embedder_free(e);
        return st;
    }
    e->default_pooling = c->head == SS_HEAD_CLS ? c->pooling : c->kind == SS_ENCODER ? SS_POOL_MEAN : SS_POOL_LAST;
    e->default_text_norm = c->text_norm;
    return st;
}

int ss_embedder_dim(const ss_embedder *e) { return ss_model_config_of(e->model)->d_model; }

/* Row b's vector from the hidden states h [B, T, C] of the last forward. */
static void pool_row(const float *h, const uint8_t *valid, int T, int C, ss_pooling how, int normalize,
                     float *out) {
    ss_pool_forward(how, h, valid, T, C, out); /* every sequence has a valid position (checked) */
    if (!normalize) return;
    double ss = 0;
    for (int j = 0; j < C; j++) ss += (double)out[j] * out[j];
    if (ss > 0)
        for (int j = 0; j < C; j++) out[j] = (float)(out[j] / sqrt(ss));
}

static int by_length(const void *a, const void *b, void *seqs) {
    size_t la = ss_seqs_len(seqs, *(const size_t *)a), lb = ss_seqs_len(seqs, *(const size_t *)b);
    if (la != lb) return la < lb ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : *(const size_t *)a > *(const size_t *)b;
}

ss_status ss_embed_seqs(ss_model *m, const ss_seqs *s, int32_t pad_id, const ss_embed_opts *o, float *out,
                        ss_error *err) {
    const ss_model_config *c = ss_model_config_of(m);
    int C = c->d_model, maxT = c->max_seq, batch = o->batch;
    if (batch < 1) return ss_fail(err, SS_ERR_ARG, "embedding batch %d must be >= 1", batch);
    if (o->pooling == SS_POOL_CLS && c->kind == SS_DECODER)
        return ss_fail(err, SS_ERR_ARG, "pooling 'cls' reads position 0, which in a decoder has seen only the first "
                       "token: use 'last' or 'mean'");
    for (size_t i = 0; i < s->n; i++) {
        if (ss_seqs_len(s, i) > (size_t)maxT)
            return ss_fail(err, SS_ERR_ARG, "sequence %zu has %zu tokens, more than the model's max_seq %d", i,
                           ss_seqs_len(s, i), maxT);
        if (ss_seqs_len(s, i) == 0) return ss_fail(err, SS_ERR_ARG, "sequence %zu is empty", i);
    }
    size_t *order = malloc((s->n ? s->n : 1) * sizeof(size_t));
    int32_t *tokens = malloc((size_t)batch * maxT * sizeof(int32_t));
    uint8_t *valid = malloc((size_t)batch * maxT);
    ss_status st = order && tokens && valid ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < s->n; i++) order[i] = i;
    if (!st) qsort_r(order, s->n, sizeof(size_t), by_length, (void *)s);
    for (size_t i = 0; i < s->n && !st; i += (size_t)batch) {
        int B = s->n - i < (size_t)batch ? (int)(s->n - i) : batch;
        int T = ss_seqs_batch(s, order + i, B, pad_id, tokens, valid);
        const float *h;
        st = ss_model_body_forward(m, tokens, valid, B, T, 0, 0, &h, err);
        for (int b = 0; b < B && !st; b++)
            pool_row(h + (size_t)b * T * C, valid + (size_t)b * T, T, C, o->pooling, o->normalize,
                     out + order[i + b] * (size_t)C);
    }
    free(order);
    free(tokens);
    free(valid);
    return st;
}

ss_status ss_embed(ss_embedder *e, char *const *texts, size_t n, const ss_embed_opts *o, float *out,
                   size_t *n_truncated, ss_error *err) {
    ss_seqs s;
    char **copy = NULL;
    ss_status st = o->text_norm == SS_TEXT_NORM_NONE ? SS_OK : ss_texts_normalized(texts, n, o->text_norm, &copy, err);
    if (!st) st = ss_seqs_encode(&s, e->tok, &e->fmt, copy ? copy : texts, n, err);
    ss_texts_free(copy, copy ? n : 0);
    if (st) return st;
    if (n_truncated) *n_truncated = s.n_truncated;
    st = ss_embed_seqs(e->model, &s, e->fmt.pad_id, o, out, err);
    ss_seqs_free(&s);
    return st;
}

/* ---- .npy ----------------------------------------------------------------- */
struct ss_npy_writer {
    ss_atomic_file *f;
    char path[SS_PATH_MAX];
    int d;
    size_t n;
};

/* The 128-byte preamble: magic, version 1.0, header length, the header dict
 * padded with spaces and ended by a newline (10 + 118 = 128, a multiple of 64
 * as NumPy writes them). */
static void npy_header(char out[SS_NPY_HEADER_BYTES], size_t n, int d) {
    char dict[SS_NPY_HEADER_BYTES];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %d), }", n, d);
    size_t hl = SS_NPY_HEADER_BYTES - 10;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (char)(hl & 0xff);
    out[9] = (char)(hl >> 8);
    memset(out + 10, ' ', hl);
    memcpy(out + 10, dict, (size_t)len); /* at most ~80 bytes: n < 2^64, d < 2^31 */
    out[SS_NPY_HEADER_BYTES - 1] = '\n';
}

ss_status ss_npy_open(ss_npy_writer **out, const char *path, int d, ss_error *err) {
    if (d < 1) return ss_fail(err, SS_ERR_ARG, "%s: rows of %d values", path, d);
    ss_npy_writer *w = calloc(1, sizeof *w);
    if (!w) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    snprintf(w->path, sizeof w->path, "%s", path);
    w->d = d;
    ss_status st = ss_atomic_open(&w->f, path, err);
    char h[SS_NPY_HEADER_BYTES];
    npy_header(h, 0, d);
    if (!st && fwrite(h, 1, sizeof h, ss_atomic_stream(w->f)) != sizeof h)
        st = ss_fail(err, SS_ERR_IO, "%s: write failed", path);
    if (st) {
        ss_npy_abort(w);
        return st;
    }
    *out = w;
    return SS_OK;
}

ss_status ss_npy_append(ss_npy_writer *w, const float *rows, size_t n, ss_error *err) {
    if (n && fwrite(rows, sizeof(float) * (size_t)w->d, n, ss_atomic_stream(w->f)) != n)
        return ss_fail(err, SS_ERR_IO, "%s: write failed", w->path);
    w->n += n;
    return SS_OK;
}

ss_status ss_npy_commit(ss_npy_writer *w, ss_error *err) {
    FILE *fp = ss_atomic_stream(w->f);
    char h[SS_NPY_HEADER_BYTES];
    npy_header(h, w->n, w->d);
    ss_status st = SS_OK;
    if (fseek(fp, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, fp) != sizeof h)
        st = ss_fail(err, SS_ERR_IO, "%s: cannot write the header", w->path);
    if (st) {
        ss_npy_abort(w);
        return st;
    }
    st = ss_atomic_commit(w->f, err);
    free(w);
    return st;
}

void ss_npy_abort(ss_npy_writer *w) {
    if (!w) return;
    if (w->f) ss_atomic_abort(w->f);
    free(w);
}
