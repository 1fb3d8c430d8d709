/* Text generation: a prompt through the KV cache, then sample, emit, step.
 * Emitted text is held back while it may still change meaning: an
 * incomplete UTF-8 character (a token may end inside one) and a suffix that
 * may grow into the stop string. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/generate.h"
#include "selfsup/io.h"
#include "selfsup/path.h"

struct ss_generator {
    ss_model *m;
    ss_tokenizer *tok;
    int owns; /* m and tok were loaded here */
    ss_decoder_state *st;
    int32_t eot;
    float *logits, *scratch;
    ss_ids seq;     /* prompt + generated ids */
    ss_buf pending; /* decoded bytes not emitted yet */
};

void ss_generate_opts_defaults(ss_generate_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_new_tokens = 128;
    o->sampler = (ss_sampler_config){.temperature = 0.8f, .top_k = 40, .top_p = 1.0f, .repetition_penalty = 1.0f};
}

ss_status ss_generator_create(ss_generator **out, ss_model *m, ss_tokenizer *tok, ss_error *err) {
    ss_generator *g = calloc(1, sizeof *g);
    if (!g) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    size_t V = (size_t)ss_model_config_of(m)->vocab_size;
    g->m = m;
    g->tok = tok;
    g->eot = ss_tokenizer_token_id(tok, "<|endoftext|>");
    g->logits = malloc(V * sizeof(float));
    g->scratch = malloc(V * sizeof(float));
    ss_status st = g->logits && g->scratch ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_decoder_state_create(&g->st, m, err);
    if (st) ss_generator_free(g);
    else *out = g;
    return st;
}

ss_status ss_generator_load(ss_generator **out, const char *dir, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_model *m = NULL;
    ss_tokenizer *tok = NULL;
    ss_status st = ss_model_load(&m, dir, err);
    if (!st && ss_model_config_of(m)->kind != SS_DECODER)
        st = ss_fail(err, SS_ERR_ARG, "%s is an encoder (masked LM): it cannot generate text left to right; "
                     "try 'selfsup fill-mask --model %s \"... [MASK] ...\"'", dir, dir);
    if (!st) st = ss_path_join(path, sizeof path, dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_tokenizer_load(&tok, path, err);
    if (!st) st = ss_generator_create(out, m, tok, err);
    if (!st) (*out)->owns = 1;
    else {
        ss_model_free(m);
        ss_tokenizer_free(tok);
    }
    return st;
}

void ss_generator_free(ss_generator *g) {
    if (!g) return;
    ss_decoder_state_free(g->st);
    if (g->owns) {
        ss_model_free(g->m);
        ss_tokenizer_free(g->tok);
    }
    free(g->logits);
    free(g->scratch);
    ss_ids_free(&g->seq);
    ss_buf_free(&g->pending);
    free(g);
}

const ss_model *ss_generator_model(const ss_generator *g) { return g->m; }

/* Bytes at the end of b that may still be completed into a UTF-8 character. */
static size_t incomplete_utf8_tail(const char *b, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)b[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Longest suffix of b that is a proper prefix of stop (it may become the stop string). */
static size_t stop_prefix_tail(const char *b, size_t n, const char *stop) {
    size_t ls = stop ? strlen(stop) : 0;
    for (size_t k = ls > 1 ? ls - 1 : 0; k > 0; k--)
        if (k <= n && memcmp(b + n - k, stop, k) == 0) return k;
    return 0;
}

/* Emit what is safe to emit (final: everything before a stop string);
 * returns 1 when the stop string was reached. */
static int flush_text(ss_generator *g, const char *stop, int final, ss_text_fn emit, void *ctx) {
    ss_buf *p = &g->pending;
    size_t n = p->len;
    int stopped = 0;
    if (stop && *stop) {
        char *hit = p->len ? memmem(p->data, p->len, stop, strlen(stop)) : NULL;
        if (hit) {
            n = (size_t)(hit - p->data);
            stopped = 1;
        } else if (!final) {
            n -= stop_prefix_tail(p->data, p->len, stop);
        }
    }
    if (!final && !stopped) n -= incomplete_utf8_tail(p->data, n);
    if (n) {
        emit(ctx, p->data, n);
        memmove(p->data, p->data + n, p->len - n);
        p->len -= n;
    }
    return stopped;
}

/* Logits of the next position after the sequence's last token. */
static ss_status next_logits(ss_generator *g, const ss_generate_opts *o, int32_t token, ss_error *err) {
    if (o->no_cache) return ss_decoder_full_logits(g->m, g->seq.ids, (int)g->seq.n, g->logits, err);
    return ss_decoder_step(g->st, token, g->logits, err);
}

/* Keep the last half of the window (max_seq / 2 tokens). */
static void keep_last_half(ss_generator *g) {
    size_t keep = (size_t)ss_model_config_of(g->m)->max_seq / 2;
    memmove(g->seq.ids, g->seq.ids + g->seq.n - keep, keep * sizeof(int32_t));
    g->seq.n = keep;
}

/* The sequence from scratch: the whole of it through the cache (or the
 * full forward), the logits of its last position. */
static ss_status restart(ss_generator *g, const ss_generate_opts *o, ss_error *err) {
    ss_decoder_state_reset(g->st);
    if (o->no_cache) return ss_decoder_full_logits(g->m, g->seq.ids, (int)g->seq.n, g->logits, err);
    return ss_decoder_prefill(g->st, g->seq.ids, (int)g->seq.n, g->logits, err);
}

static ss_status prompt_ids(ss_generator *g, const ss_generate_opts *o, const char *text, size_t len,
                            ss_error *err) {
    int maxT = ss_model_config_of(g->m)->max_seq;
    g->seq.n = 0;
    ss_status st = ss_tokenizer_encode(g->tok, text, len, o->allow_special, &g->seq, err);
    if (!st && g->seq.n == 0 && g->eot >= 0) st = ss_ids_push(&g->seq, g->eot, err);
    if (!st && g->seq.n == 0) st = ss_fail(err, SS_ERR_ARG, "empty prompt and no <|endoftext|> token to start from");
    if (!st && g->seq.n >= (size_t)maxT) {
        if (!o->sliding)
            return ss_fail(err, SS_ERR_ARG, "the prompt is %zu tokens; the model takes at most %d (use --sliding to "
                           "keep its last part)", g->seq.n, maxT - 1);
        keep_last_half(g);
    }
    return st;
}

/* Sample, emit, step until an end; r->end says which. */
static ss_status generate_loop(ss_generator *g, const ss_generate_opts *o, ss_rng *rng, ss_text_fn emit, void *ctx,
                               ss_generate_result *r, ss_error *err) {
    int V = ss_model_config_of(g->m)->vocab_size, maxT = ss_model_config_of(g->m)->max_seq;
    ss_status st = SS_OK;
    r->end = SS_GEN_MAX_NEW_TOKENS;
    while (!st && r->new_tokens < o->max_new_tokens) {
        int32_t next = ss_sample_next(g->logits, V, &o->sampler, g->seq.ids, g->seq.n, rng, g->scratch);
        if (next == g->eot) {
            r->end = SS_GEN_END_OF_TEXT;
            break;
        }
        if ((st = ss_ids_push(&g->seq, next, err))) break;
        r->new_tokens++;
        size_t blen;
        const char *bytes = ss_tokenizer_token_bytes(g->tok, next, &blen);
        if ((st = ss_buf_append(&g->pending, bytes, blen, err))) break;
        if (flush_text(g, o->stop, 0, emit, ctx)) {
            r->end = SS_GEN_STOP_STRING;
            break;
        }
        if (r->new_tokens == o->max_new_tokens) break;
        if (g->seq.n >= (size_t)maxT) {
            if (!o->sliding) {
                r->end = SS_GEN_MAX_SEQ;
                break;
            }
            keep_last_half(g);
            st = restart(g, o, err);
        } else {
            st = next_logits(g, o, next, err);
        }
    }
    return st;
}

ss_status ss_generate(ss_generator *g, const char *prompt, size_t len, const ss_generate_opts *o, ss_rng *rng,
                      ss_text_fn emit, void *ctx, ss_generate_result *r, ss_error *err) {
    memset(r, 0, sizeof *r);
    ss_status st = prompt_ids(g, o, prompt, len, err);
    if (st) return st;
    r->prompt_tokens = g->seq.n;
    if (o->echo && len) emit(ctx, prompt, len);
    double t0 = omp_get_wtime();
    st = restart(g, o, err);
    double t1 = omp_get_wtime();
    g->pending.len = 0;
    if (!st) st = generate_loop(g, o, rng, emit, ctx, r, err);
    if (!st) flush_text(g, o->stop, 1, emit, ctx);
    r->prompt_seconds = t1 - t0;
    r->gen_seconds = omp_get_wtime() - t1;
    return st;
}
