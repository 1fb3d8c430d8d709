/* Fine-tuning building blocks, tested directly (tests/cli_finetune.sh runs
 * the CLI on SST-2): texts as token sequences for an encoder and a decoder
 * (specials, truncation, the error for a missing special), padded batches,
 * batched classification that does not depend on batching or order (and
 * refuses input that would overflow it), the linear learning-rate schedule,
 * AdamW over a suffix of the parameters, and ss_finetune end to end on a
 * synthetic keyword task written here ("good" / "bad" among filler words):
 * an encoder and a decoder learn it from scratch, the output directory
 * reloads into a classifier that reproduces eval.json (also when --max-seq
 * cuts the texts), the best evaluation's weights are what is kept, patience
 * stops a run that does not improve, a frozen body stays bit-identical to
 * the pretrained one, a training subset keeps every class, and malformed
 * options are refused before anything is written; ss_selftrain frees the
 * texts it read when the unlabelled file fails. Runs in about a second. */
#include <malloc.h>
#include <math.h>
#include <omp.h>

#include <cJSON.h>

#include "fill_params.h"
#include "testutil.h"
#include "keyword_data.h"

#include "selfsup/finetune.h"
#include "selfsup/infer.h"
#include "selfsup/train.h"
#include "selfsup/io.h"
#include "selfsup/labeled.h"
#include "selfsup/model.h"
#include "selfsup/optim.h"
#include "selfsup/selftrain.h"
#include "selfsup/tokenizer.h"

/* ---- data and tokenizers shared by every test ---------------------------------------- */

enum { N_TRAIN = 320, N_DEV = 100, BATCH = 16, SEQ = 32 };

static char g_dir[256], g_tok_path[512], g_train[512], g_dev[512];
static ss_tokenizer *g_tok; /* <|endoftext|> [PAD] [CLS] [SEP] [MASK] */

/* |a - b| <= tol in double (cmocka's assert_float_equal compares floats). */
#define NEAR(a, b, tol)                                                                 \
    do {                                                                                \
        double a_ = (a), b_ = (b);                                                      \
        if (!(fabs(a_ - b_) <= (tol)))                                                  \
            fail_msg("%s = %.17g, expected %.17g (+- %g)", #a, a_, b_, (double)(tol));  \
    } while (0)

static void write_file(const char *path, const char *text) {
    ss_error err = {0};
    CHECK_OK(ss_write_file_atomic(path, text, strlen(text), &err), &err);
}

static char g_corpus[512];

static int setup(void **state) {
    (void)state;
    ss_error err = {0};
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir());
    snprintf(g_tok_path, sizeof g_tok_path, "%s/tok.json", g_dir);
    g_tok = kw_make_task(g_dir, N_TRAIN, N_DEV, g_train, g_dev, g_corpus, sizeof g_corpus);
    CHECK_OK(ss_tokenizer_save(g_tok, g_tok_path, &err), &err);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ss_tokenizer_free(g_tok);
    return 0;
}

static void tok_ids(ss_tokenizer *tok, const char *text, ss_ids *out) {
    ss_error err = {0};
    out->n = 0;
    CHECK_OK(ss_tokenizer_encode(tok, text, strlen(text), 0, out, &err), &err);
}

/* ---- 1. texts as sequences ------------------------------------------------------------ */

/* Sequence i of s is the format's reading of text: [CLS] ids [SEP] or ids
 * <|endoftext|>, ids the tokenizer's own encoding cut to fit. Returns 1 when
 * it had to be cut. */
static int check_seq(const ss_seqs *s, size_t i, const ss_text_format *f, const char *text) {
    ss_ids ref = {0};
    tok_ids(g_tok, text, &ref);
    int enc = f->kind == SS_ENCODER;
    size_t room = (size_t)f->max_seq - (enc ? 2 : 1), n = ref.n < room ? ref.n : room;
    const int32_t *ids = s->ids + s->off[i];
    assert_int_equal(ss_seqs_len(s, i), n + (enc ? 2 : 1));
    if (enc) {
        assert_int_equal(ids[0], f->cls_id);
        assert_int_equal(ids[n + 1], f->sep_id);
        assert_memory_equal(ids + 1, ref.ids, n * sizeof(int32_t));
    } else {
        assert_int_equal(ids[n], f->end_id);
        assert_memory_equal(ids, ref.ids, n * sizeof(int32_t));
    }
    /* the text's own tokens never include a special id, even when it spells one */
    for (size_t k = enc; k < n + enc; k++)
        assert_true(ids[k] != f->cls_id && ids[k] != f->sep_id && ids[k] != f->pad_id && ids[k] != f->end_id);
    int cut = ref.n > room;
    ss_ids_free(&ref);
    return cut;
}

static const char *const TEXTS[] = {
    "good",
    "the movie was really quite good and the music very bad",
    "x",
    "this film [SEP] spells [CLS] and <|endoftext|> and [PAD] as text",
    "the plot was somewhat very quite really overall bad though the cast and the scenes and the ending and "
    "the music felt good, the story was the film and this movie was the actors",
    "  leading spaces, tabs\tand punctuation!!",
};
enum { N_TEXTS = sizeof TEXTS / sizeof TEXTS[0] };

static void test_encode_formats(void **state) {
    (void)state;
    ss_error err = {0};
    for (int kind = 0; kind < 2; kind++) {
        ss_text_format f;
        CHECK_OK(ss_text_format_init(&f, g_tok, (ss_model_kind)kind, 12, &err), &err);
        assert_int_equal(f.kind, kind);
        assert_int_equal(f.max_seq, 12);
        if (kind == SS_ENCODER) {
            assert_int_equal(f.cls_id, ss_tokenizer_token_id(g_tok, "[CLS]"));
            assert_int_equal(f.sep_id, ss_tokenizer_token_id(g_tok, "[SEP]"));
            assert_int_equal(f.pad_id, ss_tokenizer_token_id(g_tok, "[PAD]"));
            assert_true(f.cls_id >= 0 && f.sep_id >= 0 && f.pad_id >= 0);
        } else {
            assert_int_equal(f.end_id, ss_tokenizer_token_id(g_tok, "<|endoftext|>"));
            assert_true(f.end_id >= 0);
            assert_int_equal(f.pad_id, f.end_id);
        }
        ss_seqs s;
        CHECK_OK(ss_seqs_encode(&s, g_tok, &f, (char *const *)TEXTS, N_TEXTS, &err), &err);
        assert_int_equal(s.n, N_TEXTS);
        assert_int_equal(s.off[0], 0);
        size_t cut = 0;
        for (size_t i = 0; i < N_TEXTS; i++) cut += (size_t)check_seq(&s, i, &f, TEXTS[i]);
        assert_true(cut >= 2); /* the long texts */
        assert_int_equal(s.n_truncated, cut);
        ss_seqs_free(&s);
    }
}

/* A text that fills max_seq exactly is kept whole; one token less room cuts it. */
static void test_encode_truncation_boundary(void **state) {
    (void)state;
    ss_error err = {0};
    const char *text = TEXTS[1];
    ss_ids ref = {0};
    tok_ids(g_tok, text, &ref);
    assert_true(ref.n > 4);
    for (int kind = 0; kind < 2; kind++) {
        int extra = kind == SS_ENCODER ? 2 : 1;
        for (int less = 0; less <= 1; less++) {
            ss_text_format f;
            CHECK_OK(ss_text_format_init(&f, g_tok, (ss_model_kind)kind, (int)ref.n + extra - less, &err), &err);
            ss_seqs s;
            CHECK_OK(ss_seqs_encode(&s, g_tok, &f, (char *const *)&text, 1, &err), &err);
            assert_int_equal(s.n_truncated, (size_t)less);
            assert_int_equal(ss_seqs_len(&s, 0), (size_t)f.max_seq);
            assert_int_equal(check_seq(&s, 0, &f, text), less);
            ss_seqs_free(&s);
        }
    }
    ss_ids_free(&ref);
    ss_seqs s;
    CHECK_OK(ss_seqs_encode(&s, g_tok, &(ss_text_format){0}, NULL, 0, &err), &err); /* no texts */
    assert_int_equal(s.n, 0);
    assert_int_equal(s.off[0], 0);
    ss_seqs_free(&s);
}

static void expect_missing(ss_tokenizer *t, ss_model_kind kind, const char *name) {
    ss_error err = {0};
    ss_text_format f;
    assert_int_equal(ss_text_format_init(&f, t, kind, 16, &err), SS_ERR_NOT_FOUND);
    if (!strstr(err.msg, name)) fail_msg("expected '%s' in: %s", name, err.msg);
}

static void test_format_missing_specials(void **state) {
    (void)state;
    ss_error err = {0};
    static const char *const eot_only[] = {"<|endoftext|>"};
    static const char *const cls_sep[] = {"[CLS]", "[SEP]"};
    ss_tokenizer *a = kw_train_tok(g_corpus, eot_only, 1), *b = kw_train_tok(g_corpus, cls_sep, 2);
    expect_missing(a, SS_ENCODER, "[CLS]");
    ss_text_format f;
    CHECK_OK(ss_text_format_init(&f, a, SS_DECODER, 16, &err), &err); /* a decoder needs only <|endoftext|> */
    assert_int_equal(f.end_id, 0);
    assert_int_equal(f.pad_id, 0);
    expect_missing(b, SS_ENCODER, "[PAD]");
    expect_missing(b, SS_DECODER, "<|endoftext|>");
    assert_int_equal(ss_text_format_init(&f, g_tok, SS_ENCODER, 2, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "max_seq"));
    ss_tokenizer_free(a);
    ss_tokenizer_free(b);
}

/* ---- 2. padded batches ---------------------------------------------------------------- */

static void test_seqs_batch(void **state) {
    (void)state;
    ss_error err = {0};
    ss_text_format f;
    CHECK_OK(ss_text_format_init(&f, g_tok, SS_ENCODER, 64, &err), &err);
    ss_seqs s;
    CHECK_OK(ss_seqs_encode(&s, g_tok, &f, (char *const *)TEXTS, N_TEXTS, &err), &err);
    const int32_t PADV = 9999; /* any id: the batch must use the one it is given */
    const size_t sets[][3] = {{3, 0, 2}, {1, 4, 5}, {2, 2, 0}};
    for (size_t q = 0; q < 3; q++) {
        const size_t *idx = sets[q];
        int B = 3, want_T = 0;
        for (int b = 0; b < B; b++)
            if ((int)ss_seqs_len(&s, idx[b]) > want_T) want_T = (int)ss_seqs_len(&s, idx[b]);
        int32_t tokens[3 * 64 + 1];
        uint8_t valid[3 * 64 + 1];
        memset(tokens, 0x5A, sizeof tokens);
        memset(valid, 0x5A, sizeof valid);
        int T = ss_seqs_batch(&s, idx, B, PADV, tokens, valid);
        assert_int_equal(T, want_T);
        for (int b = 0; b < B; b++) {
            size_t len = ss_seqs_len(&s, idx[b]);
            for (int t = 0; t < T; t++) {
                int real = (size_t)t < len;
                assert_int_equal(valid[b * T + t], real);
                assert_int_equal(tokens[b * T + t], real ? s.ids[s.off[idx[b]] + t] : PADV);
            }
        }
        assert_int_equal(tokens[B * T], 0x5A5A5A5A); /* nothing written past [B, T] */
        assert_int_equal(valid[B * T], 0x5A);
    }
    size_t one = 2; /* a single sequence: no padding at all */
    int32_t tokens[64];
    uint8_t valid[64];
    int T = ss_seqs_batch(&s, &one, 1, PADV, tokens, valid);
    assert_int_equal(T, (int)ss_seqs_len(&s, 2));
    for (int t = 0; t < T; t++) assert_true(valid[t] == 1 && tokens[t] != PADV);
    ss_seqs_free(&s);
}

/* ---- 3. batched classification ---------------------------------------------------------- */

static const char *const CLS_TEXTS[] = {
    "good", "bad film", "the movie was really quite good", "x", "the plot was bad though the cast was good",
    "music and scenes", "overall the ending felt somewhat very bad and the story was quite good",
    "cast", "this film was good",
};
enum { N_CLS = sizeof CLS_TEXTS / sizeof CLS_TEXTS[0], NK = 3 };

static void classify_invariance(ss_model_kind kind, ss_pooling pool, int pooler) {
    ss_error err = {0};
    ss_model_config c = {kind, (int)ss_tokenizer_vocab_size(g_tok), 2, 16, 2, 32, 24, 0.1f, 0, SS_HEAD_CLS, NK,
                         pool, pooler, SS_TEXT_NORM_NONE, 0, 0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    fill_params(m, 11 + (uint64_t)kind);
    ss_text_format f;
    CHECK_OK(ss_text_format_init(&f, g_tok, kind, c.max_seq, &err), &err);
    ss_seqs s, sp;
    CHECK_OK(ss_seqs_encode(&s, g_tok, &f, (char *const *)CLS_TEXTS, N_CLS, &err), &err);
    /* the same texts in another order */
    const size_t perm[N_CLS] = {4, 8, 0, 6, 2, 7, 1, 5, 3};
    const char *ptexts[N_CLS];
    for (int i = 0; i < N_CLS; i++) ptexts[i] = CLS_TEXTS[perm[i]];
    CHECK_OK(ss_seqs_encode(&sp, g_tok, &f, (char *const *)ptexts, N_CLS, &err), &err);

    float all[N_CLS * NK], ones[N_CLS * NK], threes[N_CLS * NK], permuted[N_CLS * NK];
    CHECK_OK(ss_classify_seqs(m, &s, N_CLS, f.pad_id, all, &err), &err);
    CHECK_OK(ss_classify_seqs(m, &s, 1, f.pad_id, ones, &err), &err);
    CHECK_OK(ss_classify_seqs(m, &s, 3, f.pad_id, threes, &err), &err);
    CHECK_OK(ss_classify_seqs(m, &sp, 4, f.pad_id, permuted, &err), &err);
    float spread = 0;
    for (int i = 0; i < N_CLS; i++) {
        double sum = 0;
        for (int k = 0; k < NK; k++) {
            float p = all[i * NK + k];
            assert_true(p >= 0.0f && p <= 1.0f);
            sum += p;
            NEAR(ones[i * NK + k], p, 1e-5);
            NEAR(threes[i * NK + k], p, 1e-5);
            NEAR(permuted[i * NK + k], all[perm[i] * NK + k], 1e-5);
            spread = fmaxf(spread, fabsf(p - all[k])); /* against sequence 0 */
        }
        NEAR(sum, 1.0, 1e-5);
    }
    assert_true(spread > 0.05f); /* the outputs depend on the text */

    /* The comparisons above can fail: read the padding as if it were text and
     * the padded sequences' probabilities move well beyond 1e-5. */
    size_t idx[N_CLS];
    for (int i = 0; i < N_CLS; i++) idx[i] = (size_t)i;
    int32_t tokens[N_CLS * 24];
    uint8_t valid[N_CLS * 24];
    int T = ss_seqs_batch(&s, idx, N_CLS, f.pad_id, tokens, valid);
    memset(valid, 1, sizeof valid);
    float leak[N_CLS * NK];
    ss_cls_stats cs;
    CHECK_OK(ss_model_body_forward(m, tokens, valid, N_CLS, T, 0, 0, NULL, &err), &err);
    CHECK_OK(ss_cls_head(m, valid, NULL, NULL, 0.0f, 0, leak, &cs, &err), &err);
    float moved = 0;
    for (int i = 0; i < N_CLS; i++)
        for (int k = 0; k < NK; k++) moved = fmaxf(moved, fabsf(leak[i * NK + k] - all[i * NK + k]));
    assert_true(moved > 1e-3f);

    ss_seqs_free(&s);
    ss_seqs_free(&sp);
    ss_model_free(m);
}

static void test_classify_encoder(void **state) {
    (void)state;
    classify_invariance(SS_ENCODER, SS_POOL_CLS, 1);
    classify_invariance(SS_ENCODER, SS_POOL_MEAN, 0);
}

/* Sequences longer than the model reads, or an empty batch size, are refused
 * (they would overflow the batch buffers or never finish). */
static void test_classify_bad_input(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model_config c = {SS_ENCODER, (int)ss_tokenizer_vocab_size(g_tok), 1, 16, 2, 32, 8, 0.0f, 0, SS_HEAD_CLS, 2,
                         SS_POOL_CLS, 0, SS_TEXT_NORM_NONE, 0, 0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_text_format f;
    CHECK_OK(ss_text_format_init(&f, g_tok, SS_ENCODER, 64, &err), &err);
    ss_seqs s;
    CHECK_OK(ss_seqs_encode(&s, g_tok, &f, (char *const *)CLS_TEXTS, N_CLS, &err), &err);
    float probs[N_CLS * 2];
    assert_int_equal(ss_classify_seqs(m, &s, 4, f.pad_id, probs, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "max_seq 8"));
    assert_int_equal(ss_classify_seqs(m, &s, 0, f.pad_id, probs, &err), SS_ERR_ARG);
    ss_seqs_free(&s);
    ss_model_free(m);
}

static void test_classify_decoder(void **state) {
    (void)state;
    classify_invariance(SS_DECODER, SS_POOL_LAST, 0);
}

/* ---- 4. the linear schedule ----------------------------------------------------------- */

static void test_lr_linear(void **state) {
    (void)state;
    const double lr = 3e-4;
    const int64_t total = 100, warmup = 10;
    for (int64_t s = 0; s < warmup; s++) NEAR(ss_lr_linear(s, total, warmup, lr, 0), lr * (s + 1) / 10.0, 1e-15);
    NEAR(ss_lr_linear(9, total, warmup, lr, 0), lr, 1e-15);   /* peak at the end of warmup */
    NEAR(ss_lr_linear(10, total, warmup, lr, 0), lr, 1e-15);  /* decay starts from the peak */
    NEAR(ss_lr_linear(55, total, warmup, lr, 0), lr * 0.5, 1e-15);
    NEAR(ss_lr_linear(99, total, warmup, lr, 0), lr / 90.0, 1e-15);
    NEAR(ss_lr_linear(100, total, warmup, lr, 0), 0.0, 0.0);
    NEAR(ss_lr_linear(101, total, warmup, lr, 0), 0.0, 0.0);
    NEAR(ss_lr_linear(1000, total, warmup, lr, 0), 0.0, 0.0);
    for (int64_t s = 10; s < total; s++) {
        double a = ss_lr_linear(s, total, warmup, lr, 0), b = ss_lr_linear(s + 1, total, warmup, lr, 0);
        assert_true(b < a && b >= 0);
        NEAR(a - b, lr / 90.0, 1e-15); /* a straight line */
    }
    /* no warmup: the peak at step 0 */
    NEAR(ss_lr_linear(0, 50, 0, lr, 0), lr, 1e-15);
    NEAR(ss_lr_linear(25, 50, 0, lr, 0), lr * 0.5, 1e-15);
    NEAR(ss_lr_linear(50, 50, 0, lr, 0), 0.0, 0.0);
    /* a floor (pretrain --schedule one-cycle): the same line from lr down to lr_min */
    const double lo = 3e-5;
    NEAR(ss_lr_linear(10, total, warmup, lr, lo), lr, 1e-15);
    NEAR(ss_lr_linear(55, total, warmup, lr, lo), lo + (lr - lo) * 0.5, 1e-15);
    NEAR(ss_lr_linear(100, total, warmup, lr, lo), lo, 1e-15);
    NEAR(ss_lr_linear(1000, total, warmup, lr, lo), lo, 1e-15);
    for (int64_t s = 0; s < warmup; s++) NEAR(ss_lr_linear(s, total, warmup, lr, lo), lr * (s + 1) / 10.0, 1e-15);
}

/* ---- 5. AdamW over a suffix of the parameters ------------------------------------------ */

static void test_adamw_step_from(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model_config c = {SS_ENCODER, 40, 1, 8, 2, 16, 8, 0.0f, 0, SS_HEAD_CLS, 2, SS_POOL_CLS, 1, SS_TEXT_NORM_NONE, 0, 0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    size_t n = ss_model_num_params(m), nt = ss_model_num_tensors(m);
    assert_true(nt > 4);
    float *p0 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    float *pa = malloc(n * sizeof(float)), *pb = malloc(n * sizeof(float));
    assert_true(p0 && g && pa && pb);
    uint64_t fill_state = 5;
    for (size_t i = 0; i < n; i++) p0[i] = fill_urand(&fill_state), g[i] = 0.1f * fill_urand(&fill_state);
    const size_t firsts[] = {ss_model_head_offset(m), ss_model_tensor(m, 3)->offset, 0, n};
    ss_adamw_hparams h = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 1.0f, 0};
    for (size_t q = 0; q < sizeof firsts / sizeof firsts[0]; q++) {
        size_t first = firsts[q];
        ss_adamw a, b;
        CHECK_OK(ss_adamw_init(&a, n, &err), &err);
        CHECK_OK(ss_adamw_init(&b, n, &err), &err);
        /* moments from earlier steps, the same in both */
        fill_state = 77;
        for (size_t i = 0; i < n; i++) {
            a.m[i] = b.m[i] = 0.01f * fill_urand(&fill_state);
            a.v[i] = b.v[i] = 1e-4f * (1.0f + fill_urand(&fill_state));
        }
        a.t = b.t = 3;
        float *m0 = malloc(2 * n * sizeof(float));
        memcpy(m0, a.m, 2 * n * sizeof(float));
        memcpy(pa, p0, n * sizeof(float));
        memcpy(pb, p0, n * sizeof(float));
        ss_adamw_step(&a, m, pa, g, &h);
        ss_adamw_step_from(&b, m, pb, g, &h, first);
        assert_int_equal(a.t, 4);
        assert_int_equal(b.t, 4);
        /* before first: untouched, bit for bit */
        assert_memory_equal(pb, p0, first * sizeof(float));
        assert_memory_equal(b.m, m0, first * sizeof(float));
        assert_memory_equal(b.v, m0 + n, first * sizeof(float));
        /* from first on: exactly what a full step does */
        assert_memory_equal(pb + first, pa + first, (n - first) * sizeof(float));
        assert_memory_equal(b.m + first, a.m + first, (n - first) * sizeof(float));
        assert_memory_equal(b.v + first, a.v + first, (n - first) * sizeof(float));
        size_t changed = 0;
        for (size_t i = first; i < n; i++) changed += pb[i] != p0[i];
        assert_true(first == n || changed > (n - first) / 2); /* the step did something */
        free(m0);
        ss_adamw_free(&a);
        ss_adamw_free(&b);
    }
    free(p0);
    free(g);
    free(pa);
    free(pb);
    ss_model_free(m);
}

/* ---- 6. ss_finetune end to end ---------------------------------------------------------- */

static void ft_opts(ss_finetune_opts *o, const char *out) {
    ss_finetune_opts_defaults(o);
    o->init = NULL;
    o->tokenizer = g_tok_path;
    o->scratch.kind = SS_ENCODER;
    o->scratch.n_layer = 1;
    o->scratch.d_model = 32;
    o->scratch.n_head = 2;
    o->scratch.d_ff = 64;
    o->scratch.max_seq = SEQ;
    o->train_path = g_train;
    o->dev_path = g_dev;
    o->out_dir = out;
    o->epochs = 4;
    o->batch = BATCH;
    o->max_seq = SEQ;
    o->lr = 2e-3;
    o->dropout = 0.0;
    o->seed = 3;
}

typedef struct {
    int evals, early_note, improved_at_best;
    double first_dev_acc, best_acc, last_acc;
    int64_t last_eval_step, best_step;
} watch;

/* Counts the evaluations, remembers the first, the last and the best (the
 * first one of the highest accuracy) and the early-stopping note. */
static void watch_cb(void *ctx, const ss_finetune_progress *p) {
    watch *w = ctx;
    if (p->message && strstr(p->message, "early stop")) w->early_note = 1;
    if (!p->is_eval) return;
    if (w->evals++ == 0) w->first_dev_acc = p->dev->accuracy;
    if (w->evals == 1 || p->dev->accuracy > w->best_acc) {
        w->best_acc = p->dev->accuracy;
        w->best_step = p->step;
        w->improved_at_best = p->improved;
    }
    w->last_eval_step = p->step;
    w->last_acc = p->dev->accuracy;
}

static char *path_in(const char *dir, const char *name) {
    static char p[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static cJSON *read_json(const char *path) {
    ss_error err = {0};
    ss_buf b = {0};
    CHECK_OK(ss_read_file(path, &b, &err), &err);
    CHECK_OK(ss_buf_append(&b, "", 1, &err), &err);
    cJSON *j = cJSON_Parse(b.data);
    ss_buf_free(&b);
    if (!j) fail_msg("%s is not JSON", path);
    return j;
}

static double json_num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("no number '%s'", key);
    return v->valuedouble;
}

/* Dev accuracy of the classifier saved in dir, computed here from its files. */
static double reload_accuracy(const char *dir, int batch) {
    ss_error err = {0};
    ss_classifier c;
    CHECK_OK(ss_classifier_load(&c, dir, &err), &err);
    ss_labeled_set dev;
    CHECK_OK(ss_labeled_read(&dev, g_dev, NULL, &err), &err);
    ss_seqs s;
    CHECK_OK(ss_seqs_encode(&s, c.tok, &c.fmt, dev.texts, dev.n, &err), &err);
    int K = c.labels.n;
    float *probs = malloc(dev.n * (size_t)K * sizeof(float));
    CHECK_OK(ss_classify_seqs(c.model, &s, batch, c.fmt.pad_id, probs, &err), &err);
    size_t right = 0;
    for (size_t i = 0; i < dev.n; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (probs[i * K + k] > probs[i * K + best]) best = k;
        int truth = ss_label_map_find(&c.labels, dev.labels[i]);
        assert_true(truth >= 0);
        right += best == truth;
    }
    free(probs);
    ss_seqs_free(&s);
    ss_labeled_free(&dev);
    ss_classifier_free(&c);
    return (double)right / (double)N_DEV;
}

static void finetune_learns(ss_model_kind kind) {
    ss_error err = {0};
    char out[512];
    snprintf(out, sizeof out, "%s/learn-%s", g_dir, ss_model_kind_name(kind));
    ss_finetune_opts o;
    ft_opts(&o, out);
    o.scratch.kind = kind;
    ss_finetune_result r;
    watch w = {0};
    CHECK_OK(ss_finetune(&o, &r, watch_cb, &w, &err), &err);
    print_message("%s from scratch: dev accuracy %.3f (best epoch %d)\n", ss_model_kind_name(kind), r.dev.accuracy,
                  r.best_epoch);
    assert_true(r.dev.accuracy > 0.9);
    assert_int_equal(r.dev.n, N_DEV);
    assert_int_equal(r.dev.k, 2);
    assert_int_equal(r.test.n, 0);
    assert_int_equal(r.train_rows, N_TRAIN);
    assert_int_equal(r.steps, 4 * (N_TRAIN / BATCH)); /* no patience: every epoch runs */
    assert_int_equal(w.evals, 4);
    assert_true(r.best_epoch >= 1 && r.best_epoch <= 4);
    assert_int_equal(r.best_step, r.best_epoch * (N_TRAIN / BATCH));
    const char *files[] = {"eval.json", "labels.json", "config.json", "model.safetensors", "tokenizer.json",
                           "metrics.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (!ss_file_exists(path_in(out, files[i]))) fail_msg("%s missing", path_in(out, files[i]));

    cJSON *ev = read_json(path_in(out, "eval.json"));
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(ev, "dev");
    double acc = json_num(dev, "accuracy");
    assert_true(acc == r.dev.accuracy);
    assert_int_equal((int)json_num(ev, "best_epoch"), r.best_epoch);
    assert_int_equal((int64_t)json_num(ev, "steps"), r.steps);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "init")->valuestring, "none");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "kind")->valuestring, ss_model_kind_name(kind));
    cJSON_Delete(ev);

    /* the directory alone reproduces the dev accuracy, in any batch size */
    ss_classifier c;
    CHECK_OK(ss_classifier_load(&c, out, &err), &err);
    assert_int_equal(c.labels.n, 2);
    assert_string_equal(c.labels.names[0], "neg");
    assert_string_equal(c.labels.names[1], "pos");
    assert_int_equal(c.fmt.kind, kind);
    assert_int_equal(c.fmt.max_seq, SEQ);
    assert_int_equal(ss_model_config_of(c.model)->pooling, kind == SS_ENCODER ? SS_POOL_CLS : SS_POOL_WMEAN);
    ss_classifier_free(&c);
    assert_true(reload_accuracy(out, 7) == acc);
    assert_true(reload_accuracy(out, 1) == acc);
    ss_finetune_result_free(&r);
}

static void test_finetune_encoder_learns(void **state) {
    (void)state;
    finetune_learns(SS_ENCODER);
}

static void test_finetune_decoder_learns(void **state) {
    (void)state;
    finetune_learns(SS_DECODER);
}

/* From scratch with --max-seq shorter than the architecture's: the model has
 * only the positions fine-tuning trains, so the reloaded classifier reads
 * texts exactly as they were read on dev (cut to the same length), and
 * reproduces eval.json. Dev texts here are cut (6 tokens: 4 of text). */
static void test_finetune_scratch_max_seq(void **state) {
    (void)state;
    ss_error err = {0};
    char out[512];
    snprintf(out, sizeof out, "%s/short", g_dir);
    ss_finetune_opts o;
    ft_opts(&o, out);
    o.max_seq = 6;
    o.epochs = 2;
    ss_finetune_result r;
    CHECK_OK(ss_finetune(&o, &r, NULL, NULL, &err), &err);
    ss_classifier c;
    CHECK_OK(ss_classifier_load(&c, out, &err), &err);
    assert_int_equal(c.fmt.max_seq, 6);
    assert_int_equal(ss_model_config_of(c.model)->max_seq, 6);
    ss_classifier_free(&c);
    cJSON *ev = read_json(path_in(out, "eval.json"));
    assert_true(json_num(ev, "train_truncated") > N_TRAIN / 4);
    cJSON_Delete(ev);
    assert_true(reload_accuracy(out, 16) == r.dev.accuracy);
    ss_finetune_result_free(&r);
}

/* lr 1e-7 changes nothing that shows on dev: epoch 1 is the best, epoch 2
 * does not beat it, patience 1 stops there. */
static void test_finetune_early_stop(void **state) {
    (void)state;
    ss_error err = {0};
    char out[512];
    snprintf(out, sizeof out, "%s/early", g_dir);
    ss_finetune_opts o;
    ft_opts(&o, out);
    o.lr = 1e-7;
    o.patience = 1;
    ss_finetune_result r;
    watch w = {0};
    CHECK_OK(ss_finetune(&o, &r, watch_cb, &w, &err), &err);
    const int64_t per_epoch = N_TRAIN / BATCH;
    assert_int_equal(r.best_epoch, 1);
    assert_int_equal(r.best_step, per_epoch);
    assert_int_equal(r.steps, 2 * per_epoch);
    assert_true(r.steps < (int64_t)o.epochs * per_epoch);
    assert_int_equal(w.evals, 2);
    assert_int_equal(w.last_eval_step, 2 * per_epoch);
    assert_true(w.early_note);
    assert_true(r.dev.accuracy == w.first_dev_acc); /* the best (epoch 1) weights are what is measured */
    cJSON *ev = read_json(path_in(out, "eval.json"));
    assert_int_equal((int)json_num(ev, "best_epoch"), 1);
    assert_int_equal((int64_t)json_num(ev, "steps"), 2 * per_epoch);
    assert_int_equal((int64_t)json_num(ev, "best_step"), per_epoch);
    cJSON_Delete(ev);
    ss_finetune_result_free(&r);
}

/* Training labels the reverse of dev's: dev accuracy is best early and then
 * falls, so the result (and the saved model) must be the best evaluation's
 * weights, not the last ones. Evaluates every 4 steps. */
static void keeps_best(ss_precision precision, const char *name) {
    ss_error err = {0};
    char tr[512], out[512];
    snprintf(tr, sizeof tr, "%s/flipped.tsv", g_dir);
    snprintf(out, sizeof out, "%s/%s", g_dir, name);
    kw_seed(1234);
    kw_write_tsv(tr, N_TRAIN, NULL, 1);
    ss_finetune_opts o;
    ft_opts(&o, out);
    o.train_path = tr;
    o.epochs = 2;
    o.eval_every = 4;
    o.precision = precision;
    ss_finetune_result r;
    watch w = {0};
    CHECK_OK(ss_finetune(&o, &r, watch_cb, &w, &err), &err);
    print_message("flipped training labels: best dev accuracy %.3f at step %lld, last %.3f\n", w.best_acc,
                  (long long)w.best_step, w.last_acc);
    assert_int_equal(w.evals, 2 * N_TRAIN / BATCH / 4);
    assert_int_equal(w.last_eval_step, 2 * N_TRAIN / BATCH);
    assert_true(w.best_acc - w.last_acc > 0.2); /* the last weights are clearly worse */
    assert_true(w.improved_at_best);
    assert_int_equal(r.best_step, w.best_step);
    assert_int_equal(r.best_epoch, w.best_step <= N_TRAIN / BATCH ? 1 : 2);
    assert_true(r.dev.accuracy == w.best_acc);
    assert_true(reload_accuracy(out, 16) == w.best_acc);
    ss_finetune_result_free(&r);
}

static void test_finetune_keeps_best(void **state) {
    (void)state;
    keeps_best(SS_PRECISION_FP32, "best");
}

/* The same in bf16: the products read bf16 copies of the weights, which
 * must follow the best weights when they are put back (they once stayed the
 * last step's, so the final dev figure was the last weights'). */
static void test_finetune_keeps_best_bf16(void **state) {
    (void)state;
    keeps_best(SS_PRECISION_BF16, "best_bf16");
}

/* A pretrained-like directory: an encoder with an MLM head and a tokenizer. */
static void save_pretrained_layers(const char *dir, int n_layer) {
    ss_error err = {0};
    ss_model_config c = {SS_ENCODER, (int)ss_tokenizer_vocab_size(g_tok), n_layer, 32, 2, 64, SEQ, 0.0f, 0, SS_HEAD_MLM,
                         0, SS_POOL_CLS, 0, SS_TEXT_NORM_NONE, 0, 0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, 99);
    CHECK_OK(ss_mkdir_p(dir, &err), &err);
    CHECK_OK(ss_model_save(m, dir, NULL, 0, &err), &err);
    CHECK_OK(ss_tokenizer_save(g_tok, path_in(dir, "tokenizer.json"), &err), &err);
    ss_model_free(m);
}

static void save_pretrained(const char *dir) { save_pretrained_layers(dir, 1); }

/* Tensors of the fine-tuned body equal (bit for bit) to the pretrained ones,
 * out of how many body tensors; *head_moved: a head tensor is not at its init. */
static size_t body_unchanged(const char *pre_dir, const char *ft_dir, size_t *n_body, int *head_trained) {
    ss_error err = {0};
    ss_model *pre, *ft;
    CHECK_OK(ss_model_load(&pre, pre_dir, &err), &err);
    CHECK_OK(ss_model_load(&ft, ft_dir, &err), &err);
    assert_int_equal(ss_model_config_of(ft)->head, SS_HEAD_CLS);
    size_t head = ss_model_head_offset(ft), same = 0;
    *n_body = 0;
    *head_trained = 0;
    for (size_t i = 0; i < ss_model_num_tensors(ft); i++) {
        const ss_param_info *t = ss_model_tensor(ft, i);
        const float *w = ss_model_params(ft) + t->offset;
        if (t->offset >= head) {
            if (strstr(t->name, "bias")) /* biases start at zero */
                for (size_t k = 0; k < t->numel; k++) *head_trained |= w[k] != 0.0f;
            continue;
        }
        (*n_body)++;
        const ss_param_info *u = NULL;
        for (size_t j = 0; j < ss_model_num_tensors(pre) && !u; j++)
            if (strcmp(ss_model_tensor(pre, j)->name, t->name) == 0) u = ss_model_tensor(pre, j);
        if (!u) fail_msg("pretrained model has no tensor %s", t->name);
        assert_int_equal(u->numel, t->numel);
        same += memcmp(ss_model_params(pre) + u->offset, w, t->numel * sizeof(float)) == 0;
    }
    ss_model_free(pre);
    ss_model_free(ft);
    return same;
}

static void test_finetune_freeze_encoder(void **state) {
    (void)state;
    ss_error err = {0};
    char pre[512], frozen[512], free_[512];
    snprintf(pre, sizeof pre, "%s/pretrained", g_dir);
    snprintf(frozen, sizeof frozen, "%s/frozen", g_dir);
    snprintf(free_, sizeof free_, "%s/unfrozen", g_dir);
    save_pretrained(pre);
    for (int freeze = 1; freeze >= 0; freeze--) {
        ss_finetune_opts o;
        ft_opts(&o, freeze ? frozen : free_);
        o.init = pre;
        o.tokenizer = NULL;
        o.freeze_encoder = freeze;
        o.epochs = 1;
        o.lr = 1e-2;
        o.dropout = 0.1;
        ss_finetune_result r;
        CHECK_OK(ss_finetune(&o, &r, NULL, NULL, &err), &err);
        ss_finetune_result_free(&r);
        size_t n_body;
        int head_trained;
        size_t same = body_unchanged(pre, freeze ? frozen : free_, &n_body, &head_trained);
        assert_true(n_body >= 10); /* embeddings, the block's tensors, final LayerNorm */
        assert_true(head_trained);
        if (freeze) assert_int_equal(same, n_body);
        else assert_true(same < n_body); /* the same run unfrozen does move the body */
    }
    cJSON *ev = read_json(path_in(frozen, "eval.json"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "init")->valuestring, pre);
    cJSON_Delete(ev);
}

/* DIR's eval.json records this lr and layer_decay. */
static void expect_hparams(const char *dir, double lr, double decay) {
    cJSON *ev = read_json(path_in(dir, "eval.json"));
    assert_float_equal(cJSON_GetObjectItemCaseSensitive(ev, "lr")->valuedouble, lr, 1e-12);
    assert_float_equal(cJSON_GetObjectItemCaseSensitive(ev, "layer_decay")->valuedouble, decay, 1e-12);
    cJSON_Delete(ev);
}

static void note_cb(void *ctx, const ss_finetune_progress *p) {
    if (p->message && strstr(p->message, "learning rate")) snprintf(ctx, 256, "%s", p->message);
}

/* --lr 0 and --layer-decay 0 (the defaults) choose by the model: a
 * pretrained encoder 5e-4 and decay 0.8, a model from random weights 2e-4
 * and no decay; a value given stays. The defaults train exactly as the same
 * values given explicitly (they reach the optimizer). */
static void test_finetune_auto_hparams(void **state) {
    (void)state;
    ss_error err = {0};
    char pre[512], dirs[4][512];
    snprintf(pre, sizeof pre, "%s/pretrained_auto", g_dir);
    save_pretrained(pre);
    const char *names[4] = {"auto_pre", "explicit_pre", "auto_scratch", "given_lr"};
    char notes[4][256];
    for (int i = 0; i < 4; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/%s", g_dir, names[i]);
        ss_finetune_opts o;
        ft_opts(&o, dirs[i]);
        if (i != 2) {
            o.init = pre;
            o.tokenizer = NULL;
        }
        o.epochs = 1;
        o.lr = i == 1 ? 5e-4 : i == 3 ? 1e-3 : 0;
        o.layer_decay = i == 1 ? 0.8 : 0;
        notes[i][0] = 0;
        ss_finetune_result r;
        CHECK_OK(ss_finetune(&o, &r, note_cb, notes[i], &err), &err);
        ss_finetune_result_free(&r);
    }
    expect_hparams(dirs[0], 5e-4, 0.8);
    assert_non_null(strstr(notes[0], "a pretrained encoder"));
    expect_hparams(dirs[1], 5e-4, 0.8);
    assert_int_equal(notes[1][0], 0); /* nothing chosen: no note */
    expect_hparams(dirs[2], 2e-4, 1.0);
    assert_non_null(strstr(notes[2], "random weights"));
    expect_hparams(dirs[3], 1e-3, 0.8);

    ss_model *a, *b;
    CHECK_OK(ss_model_load(&a, dirs[0], &err), &err);
    CHECK_OK(ss_model_load(&b, dirs[1], &err), &err);
    size_t n = ss_model_num_params(a);
    assert_int_equal(n, ss_model_num_params(b));
    assert_memory_equal(ss_model_params(a), ss_model_params(b), n * sizeof(float));
    ss_model_free(b);
    CHECK_OK(ss_model_load(&b, dirs[3], &err), &err); /* another lr: other weights */
    assert_memory_not_equal(ss_model_params(a), ss_model_params(b), n * sizeof(float));
    ss_model_free(a);
    ss_model_free(b);
}

/* Class "c" appears once in training; the subset drawn lacks it, yet the
 * label map (and so the head) still has all three classes. */
static void test_finetune_train_size_keeps_classes(void **state) {
    (void)state;
    ss_error err = {0};
    char tr[512], dv[512], out[512];
    snprintf(tr, sizeof tr, "%s/abc_train.tsv", g_dir);
    snprintf(dv, sizeof dv, "%s/abc_dev.tsv", g_dir);
    snprintf(out, sizeof out, "%s/abc", g_dir);
    ss_buf b = {0};
    char text[256], row[300];
    kw_seed(7);
    CHECK_OK(ss_buf_append(&b, "sentence\tlabel\n", 15, &err), &err);
    for (int i = 0; i < 40; i++) {
        const char *label = i == 17 ? "c" : i % 2 ? "a" : "b";
        kw_make_text(text, sizeof text, label[0] == 'a' ? "good" : "bad");
        int m = snprintf(row, sizeof row, "%s\t%s\n", text, label);
        CHECK_OK(ss_buf_append(&b, row, (size_t)m, &err), &err);
    }
    CHECK_OK(ss_buf_append(&b, "", 1, &err), &err);
    write_file(tr, b.data);
    ss_buf_free(&b);
    write_file(dv, "sentence\tlabel\nthe film was good\ta\nthe film was bad\tb\nthe film\tc\n");

    enum { SUB = 6 };
    uint64_t seed = 1; /* the first seed whose subset lacks "c" */
    for (;; seed++) {
        ss_labeled_set s;
        CHECK_OK(ss_labeled_read(&s, tr, NULL, &err), &err);
        ss_labeled_subsample(&s, SUB, seed);
        int has_c = 0;
        for (size_t i = 0; i < s.n; i++) has_c |= strcmp(s.labels[i], "c") == 0;
        ss_labeled_free(&s);
        if (!has_c) break;
    }
    ss_finetune_opts o;
    ft_opts(&o, out);
    o.train_path = tr;
    o.dev_path = dv;
    o.train_size = SUB;
    o.seed = seed;
    o.epochs = 1;
    o.batch = 4;
    ss_finetune_result r;
    CHECK_OK(ss_finetune(&o, &r, NULL, NULL, &err), &err);
    assert_int_equal(r.train_rows, SUB);
    assert_int_equal(r.steps, (SUB + 3) / 4);
    assert_int_equal(r.dev.k, 3);
    assert_int_equal(r.dev.n, 3);
    ss_finetune_result_free(&r);
    ss_classifier c;
    CHECK_OK(ss_classifier_load(&c, out, &err), &err);
    assert_int_equal(c.labels.n, 3);
    assert_string_equal(c.labels.names[0], "a");
    assert_string_equal(c.labels.names[1], "b");
    assert_string_equal(c.labels.names[2], "c");
    assert_int_equal(ss_model_config_of(c.model)->n_classes, 3);
    ss_classifier_free(&c);
    cJSON *ev = read_json(path_in(out, "eval.json"));
    assert_int_equal((int)json_num(ev, "train_rows"), SUB);
    cJSON_Delete(ev);
}

/* ---- 7. option errors, before anything is written ------------------------------------- */

static void expect_arg_error(ss_finetune_opts *o, const char *needle) {
    ss_error err = {0};
    ss_finetune_result r;
    assert_int_equal(ss_finetune(o, &r, NULL, NULL, &err), SS_ERR_ARG);
    if (!strstr(err.msg, needle)) fail_msg("expected '%s' in: %s", needle, err.msg);
    assert_false(ss_file_exists(o->out_dir));
}

static void test_finetune_errors(void **state) {
    (void)state;
    char out[512];
    snprintf(out, sizeof out, "%s/never", g_dir);
    ss_finetune_opts o;
    const char *bad_weights[] = {"1,x", "1", "1,2,3", "1,-2", "x", "1,2,", ",1", "1,,2", "1,nan", "Balanced"};
    for (size_t i = 0; i < sizeof bad_weights / sizeof bad_weights[0]; i++) {
        ft_opts(&o, out);
        o.class_weights = bad_weights[i];
        expect_arg_error(&o, "--class-weights");
    }
    /* well-formed ones are accepted (one short epoch each) */
    const char *good_weights[] = {"0.5,2", "balanced"};
    for (size_t i = 0; i < 2; i++) {
        ss_error err = {0};
        char ok_out[512];
        snprintf(ok_out, sizeof ok_out, "%s/weights%zu", g_dir, i);
        ft_opts(&o, ok_out);
        o.class_weights = good_weights[i];
        o.train_size = 32;
        o.epochs = 1;
        ss_finetune_result r;
        CHECK_OK(ss_finetune(&o, &r, NULL, NULL, &err), &err);
        assert_int_equal(r.steps, 2);
        ss_finetune_result_free(&r);
    }
    ft_opts(&o, out);
    o.train_size = N_TRAIN + 1;
    expect_arg_error(&o, "--train-size");
    ft_opts(&o, out);
    o.tokenizer = NULL;
    expect_arg_error(&o, "tokenizer");
}


/* ---- 8. exact resume ------------------------------------------------------------------- */

typedef struct {
    int64_t stop_at;
    volatile int *stop;
} ft_stopper;

/* Raise the stop flag at the first evaluation at or after stop_at. */
static void ft_stop_cb(void *ctx, const ss_finetune_progress *p) {
    ft_stopper *s = ctx;
    if (p->is_eval && p->step >= s->stop_at) *s->stop = 1;
}

static void ft_run_until(ss_finetune_opts *o, int64_t stop_at) {
    ss_error err = {0};
    volatile int stop = 0;
    ft_stopper s = {stop_at, &stop};
    o->stop = &stop;
    ss_finetune_result r;
    CHECK_OK(ss_finetune(o, &r, ft_stop_cb, &s, &err), &err);
    ss_finetune_result_free(&r);
    o->stop = NULL;
    assert_true(stop);
}

/* A resumed run: only its directory and --resume, the rest from the checkpoint. */
static ss_finetune_opts resume_opts(const char *out) {
    ss_finetune_opts o;
    ss_finetune_opts_defaults(&o);
    o.out_dir = out;
    o.resume = 1;
    return o;
}

static void same_checkpoints(const char *a, const char *b) {
    ss_error err = {0};
    ss_train_models ta, tb;
    ss_train_state sa, sb;
    char *ja, *jb;
    int prev;
    CHECK_OK(ss_checkpoint_load(path_in(a, "checkpoint"), &ta, &sa, &ja, &prev, &err), &err);
    CHECK_OK(ss_checkpoint_load(path_in(b, "checkpoint"), &tb, &sb, &jb, &prev, &err), &err);
    size_t n = ss_model_num_params(ta.model);
    assert_int_equal(n, ss_model_num_params(tb.model));
    assert_int_equal(sa.step, sb.step);
    assert_int_equal(sa.epoch_batch, sb.epoch_batch);
    assert_memory_equal(ss_model_params(ta.model), ss_model_params(tb.model), n * sizeof(float));
    assert_memory_equal(ta.opt.m, tb.opt.m, n * sizeof(float));
    assert_memory_equal(ta.opt.v, tb.opt.v, n * sizeof(float));
    print_message("checkpoints at step %lld (epoch %lld, batch %lld): %zu weights and moments identical\n",
                  (long long)sa.step, (long long)sa.epoch, (long long)sa.epoch_batch, n);
    ss_model_free(ta.model);
    ss_model_free(tb.model);
    ss_adamw_free(&ta.opt);
    ss_adamw_free(&tb.opt);
    free(ja);
    free(jb);
}

/* With gradient accumulation and dropout: run A stopped at step 28; run B
 * stopped at step 12 (mid-epoch), resumed and stopped at 28: the same
 * weights and AdamW moments, bit for bit; both resumed to the end: the same
 * best model and metrics. Then the checkpoint is gone, and resuming again,
 * or with another --lr, is an error. */
static void test_finetune_resume_is_bit_identical(void **state) {
    (void)state;
    ss_error err = {0};
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/resume-a", g_dir);
    snprintf(b, sizeof b, "%s/resume-b", g_dir);
    ss_finetune_opts o;
    ft_opts(&o, a);
    o.grad_accum = 2;
    o.dropout = 0.1;
    o.eval_every = 4;
    o.lr = 5e-4;
    ft_run_until(&o, 28);
    o.out_dir = b;
    ft_run_until(&o, 12);
    ss_finetune_opts r = resume_opts(b);
    ft_run_until(&r, 28);
    same_checkpoints(a, b);
    /* another lr: an error naming it */
    r = resume_opts(b);
    r.lr = 1e-3;
    ss_finetune_result res;
    assert_int_equal(ss_finetune(&r, &res, NULL, NULL, &err), SS_ERR_ARG);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "--lr"));
    ss_finetune_result ra, rb;
    r = resume_opts(a);
    CHECK_OK(ss_finetune(&r, &ra, NULL, NULL, &err), &err);
    r = resume_opts(b);
    CHECK_OK(ss_finetune(&r, &rb, NULL, NULL, &err), &err);
    assert_int_equal(ra.steps, 4 * (N_TRAIN / BATCH / 2));
    assert_int_equal(ra.steps, rb.steps);
    assert_int_equal(ra.best_step, rb.best_step);
    assert_true(ra.dev.accuracy == rb.dev.accuracy);
    ss_finetune_result_free(&ra);
    ss_finetune_result_free(&rb);
    float *pa, *pb;
    ss_model *ma, *mb;
    CHECK_OK(ss_model_load(&ma, a, &err), &err);
    CHECK_OK(ss_model_load(&mb, b, &err), &err);
    pa = ss_model_params(ma);
    pb = ss_model_params(mb);
    assert_memory_equal(pa, pb, ss_model_num_params(ma) * sizeof(float));
    ss_model_free(ma);
    ss_model_free(mb);
    assert_false(ss_file_exists(path_in(b, "checkpoint")));
    r = resume_opts(b);
    assert_int_equal(ss_finetune(&r, &res, NULL, NULL, &err), SS_ERR_NOT_FOUND);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "no checkpoint"));
}

/* Gradual unfreezing: in the model at ckpt, the tensors of depth below
 * min_depth equal the pretrained ones bit for bit, and at every depth from
 * min_depth up most of them have moved (the head's, new, are at the top). */
static void expect_unfrozen_from(const char *pre_dir, const char *ckpt, int min_depth) {
    ss_error err = {0};
    ss_model *pre, *ft;
    CHECK_OK(ss_model_load(&pre, pre_dir, &err), &err);
    CHECK_OK(ss_model_load(&ft, ckpt, &err), &err);
    int top = ss_model_config_of(ft)->n_layer + 1, n[8] = {0}, moved[8] = {0};
    assert_true(top < 8);
    for (size_t i = 0; i < ss_model_num_tensors(ft); i++) {
        const ss_param_info *t = ss_model_tensor(ft, i);
        const ss_param_info *u = NULL;
        for (size_t j = 0; j < ss_model_num_tensors(pre) && !u; j++)
            if (strcmp(ss_model_tensor(pre, j)->name, t->name) == 0) u = ss_model_tensor(pre, j);
        if (!u) continue; /* the new head */
        int same = memcmp(ss_model_params(pre) + u->offset, ss_model_params(ft) + t->offset,
                          t->numel * sizeof(float)) == 0;
        if (t->depth < min_depth && !same) fail_msg("%s (depth %d) moved while frozen (from depth %d)", t->name,
                                                     t->depth, min_depth);
        n[t->depth]++;
        moved[t->depth] += !same;
    }
    for (int d = min_depth; d <= top; d++) {
        assert_true(n[d] > 0);
        if (2 * moved[d] <= n[d]) fail_msg("depth %d: %d of %d tensors moved, unfrozen from depth %d", d, moved[d],
                                           n[d], min_depth);
    }
    ss_model_free(pre);
    ss_model_free(ft);
}

static void test_finetune_gradual_unfreeze(void **state) {
    (void)state;
    char pre[512], out[512];
    snprintf(pre, sizeof pre, "%s/pretrained2", g_dir);
    snprintf(out, sizeof out, "%s/unfreeze", g_dir);
    save_pretrained_layers(pre, 2);
    ss_finetune_opts o;
    ft_opts(&o, out);
    o.init = pre;
    o.tokenizer = NULL;
    o.unfreeze_every = 2;
    o.eval_every = 1;
    o.lr = 1e-2;
    o.dropout = 0.1;
    /* 2 layers: the head (depth 3) alone for steps 0-1, block 1 (depth 2)
     * joins at step 2, block 0 at 4, the embeddings at 6; each stop is
     * checked, and the run resumed (the stages follow the step) */
    ft_run_until(&o, 2);
    char *ckpt = path_in(out, "checkpoint");
    for (int stop = 4, depth = 2; depth >= 0; stop += 2, depth--) {
        expect_unfrozen_from(pre, ckpt, depth + 1);
        ss_finetune_opts r = resume_opts(out);
        ft_run_until(&r, stop);
    }
    expect_unfrozen_from(pre, ckpt, 0);
    cJSON *ev;
    ss_finetune_opts r = resume_opts(out);
    ss_finetune_result res;
    ss_error err = {0};
    CHECK_OK(ss_finetune(&r, &res, NULL, NULL, &err), &err);
    ss_finetune_result_free(&res);
    ev = read_json(path_in(out, "eval.json"));
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(ev, "unfreeze_every")->valuedouble, 2);
    cJSON_Delete(ev);
    /* a stage longer than any run (the note's step count saturates, no
     * overflow): the body stays as it was, the head alone trains */
    snprintf(out, sizeof out, "%s/unfreeze-never", g_dir);
    ft_opts(&o, out);
    o.init = pre;
    o.tokenizer = NULL;
    o.unfreeze_every = INT64_MAX;
    o.epochs = 1;
    o.lr = 1e-2;
    CHECK_OK(ss_finetune(&o, &res, NULL, NULL, &err), &err);
    ss_finetune_result_free(&res);
    expect_unfrozen_from(pre, out, 3);
    /* with --freeze-encoder the body never trains: refused */
    ft_opts(&o, out);
    snprintf(pre, sizeof pre, "%s/never-unfrozen", g_dir);
    o.out_dir = pre;
    o.freeze_encoder = 1;
    o.unfreeze_every = 3;
    expect_arg_error(&o, "--unfreeze-every");
}

/* Options are checked by the library as by the CLI. */
static void test_finetune_opts_checked(void **state) {
    (void)state;
    char out[512];
    snprintf(out, sizeof out, "%s/never2", g_dir);
    ss_finetune_opts o;
    ft_opts(&o, out);
    o.log_every = 0;
    expect_arg_error(&o, "--log-every 0: must be >= 1");
    ft_opts(&o, out);
    o.grad_accum = 0;
    expect_arg_error(&o, "--grad-accum 0: must be >= 1");
    ft_opts(&o, out);
    o.warmup_ratio = 1;
    expect_arg_error(&o, "--warmup-ratio 1: must be in [0, 1)");
    /* a self-training option given without --unlabeled would be ignored: an error naming it */
    ft_opts(&o, out);
    o.teachers = 3;
    o.given |= SS_OPT_BIT(SS_FINETUNE_OPT_teachers);
    expect_arg_error(&o, "--teachers is a self-training option: it needs --unlabeled FILE");
    ft_opts(&o, out);
    o.given |= SS_OPT_BIT(SS_FINETUNE_OPT_rounds);
    expect_arg_error(&o, "--rounds is a self-training option");
}

/* An --unlabeled text file that turns out to be unreadable (invalid UTF-8
 * after many good lines): ss_selftrain says which line, and frees the texts
 * it had read (they leaked: a library caller lost them on every attempt). */
static void test_selftrain_bad_unlabeled_frees(void **state) {
    (void)state;
    char out[512], pool[512];
    snprintf(out, sizeof out, "%s/never3", g_dir);
    snprintf(pool, sizeof pool, "%s/pool_bad.txt", g_dir);
    FILE *f = fopen(pool, "w");
    assert_non_null(f);
    for (int i = 0; i < 4000; i++) fprintf(f, "the movie was quite good and the plot felt fine %d\n", i);
    fprintf(f, "bad \xff byte\n");
    fclose(f);
    ss_finetune_opts o;
    ft_opts(&o, out);
    o.unlabeled = pool;
    ss_selftrain_result r;
    ss_error err = {0};
    assert_int_equal(ss_selftrain(&o, &r, NULL, NULL, &err), SS_ERR_FORMAT); /* warm-up: stdio, first allocations */
    assert_non_null(strstr(err.msg, "pool_bad.txt:4001: the line is not valid UTF-8"));
    ss_selftrain_result_free(&r);
    struct mallinfo2 before = mallinfo2();
    for (int k = 0; k < 4; k++) {
        assert_int_equal(ss_selftrain(&o, &r, NULL, NULL, &err), SS_ERR_FORMAT);
        ss_selftrain_result_free(&r);
    }
    struct mallinfo2 after = mallinfo2();
    size_t b = before.uordblks + before.hblkhd, a = after.uordblks + after.hblkhd;
    print_message("heap before %zu, after 4 failed runs %zu bytes\n", b, a);
    assert_true(a <= b + 16384); /* the texts are about 200 KB a run */
}

int main(void) {
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_formats),
        cmocka_unit_test(test_encode_truncation_boundary),
        cmocka_unit_test(test_format_missing_specials),
        cmocka_unit_test(test_seqs_batch),
        cmocka_unit_test(test_classify_encoder),
        cmocka_unit_test(test_classify_decoder),
        cmocka_unit_test(test_classify_bad_input),
        cmocka_unit_test(test_lr_linear),
        cmocka_unit_test(test_adamw_step_from),
        cmocka_unit_test(test_finetune_encoder_learns),
        cmocka_unit_test(test_finetune_decoder_learns),
        cmocka_unit_test(test_finetune_scratch_max_seq),
        cmocka_unit_test(test_finetune_early_stop),
        cmocka_unit_test(test_finetune_keeps_best),
        cmocka_unit_test(test_finetune_keeps_best_bf16),
        cmocka_unit_test(test_finetune_freeze_encoder),
        cmocka_unit_test(test_finetune_auto_hparams),
        cmocka_unit_test(test_finetune_gradual_unfreeze),
        cmocka_unit_test(test_finetune_train_size_keeps_classes),
        cmocka_unit_test(test_finetune_errors),
        cmocka_unit_test(test_finetune_resume_is_bit_identical),
        cmocka_unit_test(test_finetune_opts_checked),
        cmocka_unit_test(test_selftrain_bad_unlabeled_frees),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
