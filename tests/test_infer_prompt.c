/* Prompt-based classification (selfsup/prompt.h) on hand-made tiny models
 * (fixed pseudo-random weights, a tokenizer trained here):
 *   - a decoder's class probabilities equal a hand computation: each word's
 *     log-probability summed token by token from the reference forward pass
 *     (ss_decoder_full_logits, no cache), a label's words combined by
 *     log-sum-exp, softmax; with calibration, divided by the mean label
 *     probabilities of "N/A" and "" (Zhao et al. 2021); a multi-token word
 *     among them; the template's spaces (a trailing space, a final [MASK], a
 *     line break before the word);
 *   - an encoder's (mlm run, and an rtd run's generator) equal the product
 *     of fill-mask's probabilities of the word's tokens at as many [MASK]s;
 *   - the sequences: where the text, the template and the [MASK] go, the
 *     spaces moved onto {text} and the word, truncation keeping the template;
 *   - every template and verbalizer error, the fine-tuning checks (one word
 *     of one token per label, the labels of a training file), a directory
 *     with prompt.json classifying with its own prompt in labels.json's order,
 *     and the models that have no language model head. */
#include "fill_params.h"
#include "testutil.h"

#include <math.h>

#include "selfsup/generate.h"
#include "selfsup/infer.h"
#include "selfsup/io.h"
#include "selfsup/model.h"
#include "selfsup/prompt.h"
#include "selfsup/tokenizer.h"
#include "selfsup/train.h"

enum { MAXSEQ = 40 };

static char g_dir[256], g_dec[512], g_enc[512], g_rtd[512], g_cls[512], g_disc[512];
static ss_tokenizer *g_tok;

static const char *const TEXTS[] = {"the movie was good", "a bad film , the plot was bad", "It was great",
                                    "the story", ""};
enum { N_TEXTS = sizeof TEXTS / sizeof TEXTS[0] };

static void save_run(ss_model *m, ss_model *gen, const char *dir) {
    ss_error err = {0};
    char path[600];
    CHECK_OK(ss_model_save_with(m, gen, dir, NULL, 0, &err), &err);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(ss_tokenizer_save(g_tok, path, &err), &err);
}

static ss_model *make_model(ss_model_kind kind, ss_head_kind head, uint64_t seed) {
    ss_model_config c = {.kind = kind, .vocab_size = (int)ss_tokenizer_vocab_size(g_tok), .n_layer = 2,
                         .d_model = 16, .n_head = 2, .d_ff = 32, .max_seq = MAXSEQ, .head = head,
                         .n_classes = 2, .pooling = SS_POOL_CLS};
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    fill_params(m, seed);
    return m;
}

static int setup(void **state) {
    (void)state;
    ss_error err = {0};
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir());
    char corpus[600];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", g_dir);
    ss_buf b = {0};
    static const char *const lines[] = {"the movie was good", "the film was bad", "It was great", "It was terrible",
                                        "the plot was good and the story was bad", "a great film", "N/A"};
    for (int r = 0; r < 40; r++)
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
            CHECK_OK(ss_buf_append(&b, lines[i], strlen(lines[i]), &err), &err);
            CHECK_OK(ss_buf_append(&b, "\n", 1, &err), &err);
        }
    CHECK_OK(ss_write_file_atomic(corpus, b.data, b.len, &err), &err);
    ss_buf_free(&b);
    static const char *const specials[] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]"};
    const char *paths[] = {corpus};
    ss_bpe_train_opts o = {.vocab_size = 5 + 256 + 60, .special_tokens = specials, .n_special = 5, .nthreads = 1};
    CHECK_OK(ss_bpe_train_files(&o, paths, 1, &g_tok, &err), &err);

    snprintf(g_dec, sizeof g_dec, "%s/clm", g_dir);
    snprintf(g_enc, sizeof g_enc, "%s/mlm", g_dir);
    snprintf(g_rtd, sizeof g_rtd, "%s/rtd", g_dir);
    snprintf(g_cls, sizeof g_cls, "%s/cls", g_dir);
    snprintf(g_disc, sizeof g_disc, "%s/disc", g_dir);
    ss_model *m = make_model(SS_DECODER, SS_HEAD_LM, 11);
    save_run(m, NULL, g_dec);
    ss_model_free(m);
    m = make_model(SS_ENCODER, SS_HEAD_MLM, 12);
    save_run(m, NULL, g_enc);
    ss_model_free(m);
    m = make_model(SS_ENCODER, SS_HEAD_CLS, 14);
    save_run(m, NULL, g_cls);
    ss_model_free(m);
    /* an rtd run: a discriminator and its generator (half as wide, sharing the embeddings) */
    m = make_model(SS_ENCODER, SS_HEAD_DISC, 13);
    ss_model_config gc = ss_electra_generator_config(ss_model_config_of(m), 0.5);
    ss_model *gen;
    CHECK_OK(ss_model_create_shared(&gen, &gc, m, &err), &err);
    fill_params(gen, 15);
    save_run(m, gen, g_rtd);
    save_run(m, NULL, g_disc); /* the discriminator alone */
    ss_model_free(gen);
    ss_model_free(m);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ss_tokenizer_free(g_tok);
    return 0;
}

static void enc(const char *text, ss_ids *out) {
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_encode(g_tok, text, strlen(text), 0, out, &err), &err);
}

static int n_tokens(const char *text) {
    ss_ids ids = {0};
    enc(text, &ids);
    int n = (int)ids.n;
    ss_ids_free(&ids);
    return n;
}

/* The verbalizer of the tests: "awful" never occurs in the corpus (several
 * tokens), the other words are single tokens. */
static const char *const NEG[] = {"bad", "awful"}, *const POS[] = {"good", "great"};
static const char *const VERB = "neg=bad, awful;pos = good,great;";

static void test_tokenizer_as_expected(void **state) {
    (void)state;
    assert_int_equal(n_tokens(" good"), 1);
    assert_int_equal(n_tokens(" bad"), 1);
    assert_int_equal(n_tokens(" great"), 1);
    assert_true(n_tokens(" awful") >= 3);
    /* without the space, other tokens (the line-break case reads them) */
    ss_ids a = {0}, b = {0};
    enc("good", &a);
    enc(" good", &b);
    assert_true(a.n != b.n || a.ids[0] != b.ids[0]);
    ss_ids_free(&a);
    ss_ids_free(&b);
}

/* ---- the decoder by hand ------------------------------------------------------------- */

/* log P(space? + word | prefix), token by token with the reference forward. */
static double dec_word_logp(ss_model *m, const ss_ids *prefix, const char *word, int space) {
    ss_error err = {0};
    char w[64];
    snprintf(w, sizeof w, "%s%s", space ? " " : "", word);
    ss_ids ids = {0}, wt = {0};
    enc(w, &wt);
    for (size_t i = 0; i < prefix->n; i++) CHECK_OK(ss_ids_push(&ids, prefix->ids[i], &err), &err);
    int V = ss_model_config_of(m)->vocab_size;
    float *logits = malloc((size_t)V * sizeof(float));
    double lp = 0;
    for (size_t q = 0; q < wt.n; q++) {
        CHECK_OK(ss_decoder_full_logits(m, ids.ids, (int)ids.n, logits, &err), &err);
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, logits[v]);
        for (int v = 0; v < V; v++) sum += exp((double)logits[v] - mx);
        lp += (double)logits[wt.ids[q]] - mx - log(sum);
        CHECK_OK(ss_ids_push(&ids, wt.ids[q], &err), &err);
    }
    free(logits);
    ss_ids_free(&ids);
    ss_ids_free(&wt);
    return lp;
}

static double lse2(double a, double b) {
    double m = fmax(a, b);
    return m + log(exp(a - m) + exp(b - m));
}

/* Label scores [2] of a text under "{text}<tail>" (the word after tail). */
static void dec_scores(ss_model *m, const char *text, const char *tail, int space, double *s) {
    ss_error err = {0};
    ss_ids prefix = {0};
    CHECK_OK(ss_ids_push(&prefix, ss_tokenizer_token_id(g_tok, "<|endoftext|>"), &err), &err);
    enc(text, &prefix);
    enc(tail, &prefix);
    s[0] = lse2(dec_word_logp(m, &prefix, NEG[0], space), dec_word_logp(m, &prefix, NEG[1], space));
    s[1] = lse2(dec_word_logp(m, &prefix, POS[0], space), dec_word_logp(m, &prefix, POS[1], space));
    ss_ids_free(&prefix);
}

static void softmax2(const double *s, double *p) {
    double m = fmax(s[0], s[1]);
    double a = exp(s[0] - m), b = exp(s[1] - m);
    p[0] = a / (a + b);
    p[1] = b / (a + b);
}

static void classify_with(const char *dir, const char *tpl, const char *verb, int calibrate, int batch, float *probs) {
    ss_error err = {0};
    ss_classifier c;
    ss_prompt_spec spec = {tpl, verb, calibrate};
    CHECK_OK(ss_classifier_load_prompt(&c, dir, &spec, 1, &err), &err);
    assert_int_equal(c.labels.n, 2);
    assert_string_equal(c.labels.names[0], "neg");
    assert_string_equal(c.labels.names[1], "pos");
    CHECK_OK(ss_classify(&c, (char *const *)TEXTS, N_TEXTS, batch, probs, &err), &err);
    ss_classifier_free(&c);
}

static void expect_probs(const float *got, const double *want, const char *what) {
    for (int i = 0; i < N_TEXTS; i++)
        for (int k = 0; k < 2; k++)
            if (!(fabs(got[i * 2 + k] - want[i * 2 + k]) <= 2e-6))
                fail_msg("%s: text %d class %d: %.7f, by hand %.7f", what, i, k, got[i * 2 + k], want[i * 2 + k]);
}

/* Not flat: the test would prove little if every text gave 50/50. */
static void expect_informative(const double *want) {
    double lo = 1, hi = 0;
    for (int i = 0; i < N_TEXTS; i++) lo = fmin(lo, want[i * 2]), hi = fmax(hi, want[i * 2]);
    assert_true(hi - lo > 0.02);
}

static void test_decoder_by_hand(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_load(&m, g_dec, &err), &err);
    double want[N_TEXTS * 2], wcal[N_TEXTS * 2], s[2], cf[2][2], p[2];
    for (int i = 0; i < N_TEXTS; i++) {
        dec_scores(m, TEXTS[i], " It was", 1, s);
        softmax2(s, want + i * 2);
    }
    expect_informative(want);
    /* calibration: the mean label probabilities of "N/A" and "" divided out */
    dec_scores(m, "N/A", " It was", 1, s);
    softmax2(s, cf[0]);
    dec_scores(m, "", " It was", 1, s);
    softmax2(s, cf[1]);
    double prior[2] = {log((cf[0][0] + cf[1][0]) / 2), log((cf[0][1] + cf[1][1]) / 2)};
    for (int i = 0; i < N_TEXTS; i++) {
        dec_scores(m, TEXTS[i], " It was", 1, s);
        s[0] -= prior[0];
        s[1] -= prior[1];
        softmax2(s, wcal + i * 2);
    }
    float got[N_TEXTS * 2];
    classify_with(g_dec, "{text} It was", VERB, 0, 64, got);
    expect_probs(got, want, "decoder '{text} It was'");
    classify_with(g_dec, "{text} It was", VERB, 0, 1, got);
    expect_probs(got, want, "decoder, batch 1");
    classify_with(g_dec, "{text} It was ", VERB, 0, 3, got);
    expect_probs(got, want, "decoder '{text} It was ' (the space moves onto the word)");
    classify_with(g_dec, "{text} It was [MASK]", VERB, 0, 64, got);
    expect_probs(got, want, "decoder '{text} It was [MASK]'");
    classify_with(g_dec, "{text} It was", VERB, 1, 64, got);
    expect_probs(got, wcal, "decoder calibrated");
    /* calibration changes the answer here (else it would not be tested) */
    assert_true(fabs(wcal[0] - want[0]) > 1e-3);
    /* a line break before the word: no space */
    for (int i = 0; i < N_TEXTS; i++) {
        dec_scores(m, TEXTS[i], " It was\n", 0, s);
        softmax2(s, want + i * 2);
    }
    classify_with(g_dec, "{text} It was\n", VERB, 0, 64, got);
    expect_probs(got, want, "decoder '{text} It was\\n' (no space before the word)");
    /* one word per label: the softmax of the words' log-probabilities */
    ss_ids prefix = {0};
    CHECK_OK(ss_ids_push(&prefix, ss_tokenizer_token_id(g_tok, "<|endoftext|>"), &err), &err);
    enc(TEXTS[0], &prefix);
    enc(" It was", &prefix);
    s[0] = dec_word_logp(m, &prefix, "awful", 1);
    s[1] = dec_word_logp(m, &prefix, "great", 1);
    softmax2(s, p);
    ss_ids_free(&prefix);
    classify_with(g_dec, "{text} It was", "neg=awful;pos=great", 0, 64, got);
    assert_true(fabs(got[0] - p[0]) <= 2e-6 && fabs(got[1] - p[1]) <= 2e-6);
    ss_model_free(m);
}

/* One template's calibrated (or not) class probabilities by hand. */
static void dec_probs_by_hand(ss_model *m, const char *tail, int calibrate, double *want) {
    double s[2], cf[2][2], prior[2] = {0, 0};
    if (calibrate) {
        dec_scores(m, "N/A", tail, 1, s);
        softmax2(s, cf[0]);
        dec_scores(m, "", tail, 1, s);
        softmax2(s, cf[1]);
        prior[0] = log((cf[0][0] + cf[1][0]) / 2);
        prior[1] = log((cf[0][1] + cf[1][1]) / 2);
    }
    for (int i = 0; i < N_TEXTS; i++) {
        dec_scores(m, TEXTS[i], tail, 1, s);
        s[0] -= prior[0];
        s[1] -= prior[1];
        softmax2(s, want + i * 2);
    }
}

/* Several templates: the softmax of the mean of each template's class
 * log-probabilities, each calibrated against its own content-free prior. */
static void test_several_templates_by_hand(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_load(&m, g_dec, &err), &err);
    for (int calibrate = 0; calibrate <= 1; calibrate++) {
        double a[N_TEXTS * 2], b[N_TEXTS * 2], want[N_TEXTS * 2], s[2];
        dec_probs_by_hand(m, " It was", calibrate, a);
        dec_probs_by_hand(m, " The film was", calibrate, b);
        for (int i = 0; i < N_TEXTS; i++) {
            s[0] = (log(a[i * 2]) + log(b[i * 2])) / 2;
            s[1] = (log(a[i * 2 + 1]) + log(b[i * 2 + 1])) / 2;
            softmax2(s, want + i * 2);
        }
        expect_informative(want);
        /* the average is neither template alone (else the test would prove little) */
        assert_true(fabs(want[0] - a[0]) > 1e-4 && fabs(want[0] - b[0]) > 1e-4);
        ss_prompt_spec specs[2] = {{"{text} It was", VERB, calibrate}, {"{text} The film was", VERB, calibrate}};
        ss_classifier c;
        float got[N_TEXTS * 2];
        CHECK_OK(ss_classifier_load_prompt(&c, g_dec, specs, 2, &err), &err);
        assert_int_equal(c.n_prompts, 2);
        CHECK_OK(ss_classify(&c, (char *const *)TEXTS, N_TEXTS, 3, got, &err), &err);
        ss_classifier_free(&c);
        expect_probs(got, want, calibrate ? "two templates, calibrated" : "two templates");
    }
    /* the labels in the first verbalizer's order, the second's renumbered to them */
    ss_prompt_spec swapped[2] = {{"{text} It was", VERB, 0}, {"{text} The film was", "pos=good,great;neg=bad,awful", 0}};
    ss_classifier c;
    float got[N_TEXTS * 2], ref[N_TEXTS * 2];
    ss_prompt_spec same[2] = {{"{text} It was", VERB, 0}, {"{text} The film was", VERB, 0}};
    CHECK_OK(ss_classifier_load_prompt(&c, g_dec, same, 2, &err), &err);
    CHECK_OK(ss_classify(&c, (char *const *)TEXTS, N_TEXTS, 64, ref, &err), &err);
    ss_classifier_free(&c);
    CHECK_OK(ss_classifier_load_prompt(&c, g_dec, swapped, 2, &err), &err);
    CHECK_OK(ss_classify(&c, (char *const *)TEXTS, N_TEXTS, 64, got, &err), &err);
    ss_classifier_free(&c);
    for (int j = 0; j < N_TEXTS * 2; j++) assert_float_equal(got[j], ref[j], 1e-7);
    /* a verbalizer naming other labels is an error naming the prompt */
    ss_prompt_spec other[2] = {{"{text} It was", VERB, 0}, {"{text} The film was", "neg=bad;good=good", 0}};
    assert_int_equal(ss_classifier_load_prompt(&c, g_dec, other, 2, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "prompt 2: "));
    assert_int_equal(ss_classifier_load_prompt(&c, g_dec, other, 0, &err), SS_ERR_ARG);
    ss_model_free(m);
}

/* ---- the encoder by fill-mask -------------------------------------------------------- */

/* P(word) at as many [MASK]s as its tokens, from fill-mask's full distribution. */
static double fill_word_p(ss_masked_lm *f, const char *text, const char *before, const char *after, const char *word) {
    ss_error err = {0};
    char w[64], t[512];
    snprintf(w, sizeof w, " %s", word);
    ss_ids wt = {0};
    enc(w, &wt);
    int n = snprintf(t, sizeof t, "%s%s", text, before);
    for (size_t q = 0; q < wt.n; q++) n += snprintf(t + n, sizeof t - (size_t)n, "[MASK]");
    snprintf(t + n, sizeof t - (size_t)n, "%s", after);
    ss_fill_result r;
    int V = (int)ss_tokenizer_vocab_size(g_tok);
    CHECK_OK(ss_fill_mask(f, t, strlen(t), V, &r, &err), &err);
    assert_int_equal(r.n_masks, (int)wt.n);
    double p = 1;
    for (size_t q = 0; q < wt.n; q++) {
        double pq = -1;
        for (int k = 0; k < r.k; k++)
            if (r.top[q * r.k + k].id == wt.ids[q]) pq = r.top[q * r.k + k].prob;
        assert_true(pq > 0);
        p *= pq;
    }
    ss_fill_result_free(&r);
    ss_ids_free(&wt);
    return p;
}

static void check_encoder(const char *dir) {
    ss_error err = {0};
    ss_masked_lm *f;
    CHECK_OK(ss_masked_lm_load(&f, dir, &err), &err);
    double want[N_TEXTS * 2], want2[N_TEXTS * 2];
    for (int i = 0; i < N_TEXTS; i++) {
        double s[2];
        s[0] = log(fill_word_p(f, TEXTS[i], " It was", ".", NEG[0]) + fill_word_p(f, TEXTS[i], " It was", ".", NEG[1]));
        s[1] = log(fill_word_p(f, TEXTS[i], " It was", ".", POS[0]) + fill_word_p(f, TEXTS[i], " It was", ".", POS[1]));
        softmax2(s, want + i * 2);
        /* "Review: {text}": the space goes with the text (the empty text has none) */
        char t[300];
        snprintf(t, sizeof t, "Review:%s%s", *TEXTS[i] ? " " : "", TEXTS[i]);
        s[0] = log(fill_word_p(f, t, " It was", "", NEG[0]) + fill_word_p(f, t, " It was", "", NEG[1]));
        s[1] = log(fill_word_p(f, t, " It was", "", POS[0]) + fill_word_p(f, t, " It was", "", POS[1]));
        softmax2(s, want2 + i * 2);
    }
    expect_informative(want);
    float got[N_TEXTS * 2];
    classify_with(dir, "{text} It was [MASK].", VERB, 0, 64, got);
    expect_probs(got, want, dir);
    classify_with(dir, "{text} It was [MASK].", VERB, 0, 2, got);
    expect_probs(got, want, dir);
    classify_with(dir, "Review: {text} It was [MASK]", VERB, 0, 64, got);
    expect_probs(got, want2, dir);
    ss_masked_lm_free(f);
}

static void test_encoder_by_fill_mask(void **state) {
    (void)state;
    check_encoder(g_enc);
}

static void test_rtd_generator_by_fill_mask(void **state) {
    (void)state;
    check_encoder(g_rtd);
}

/* ---- sequences ----------------------------------------------------------------------- */

static ss_prompt *new_prompt(const char *tpl, const char *verb, ss_model_kind kind, int max_seq) {
    ss_error err = {0};
    ss_prompt *p;
    ss_prompt_spec spec = {tpl, verb, 0};
    CHECK_OK(ss_prompt_create(&p, &spec, g_tok, kind, max_seq, &err), &err);
    return p;
}

/* ids == the concatenation of the given pieces (strings encoded; NULL ends). */
static void expect_seq(const int32_t *ids, size_t n, const char *what, ...) {
    ss_error err = {0};
    ss_ids want = {0};
    va_list ap;
    va_start(ap, what);
    for (const char *s; (s = va_arg(ap, const char *));) {
        int32_t special = ss_tokenizer_token_id(g_tok, s);
        if (s[0] == '[' || s[0] == '<') CHECK_OK(ss_ids_push(&want, special, &err), &err);
        else enc(s, &want);
    }
    va_end(ap);
    if (want.n != n || memcmp(want.ids, ids, n * sizeof(int32_t)))
        fail_msg("%s: %zu tokens, expected %zu (or other ids)", what, n, want.n);
    ss_ids_free(&want);
}

static void test_sequences(void **state) {
    (void)state;
    ss_error err = {0};
    char *texts[] = {"the movie", ""};
    ss_seqs s;
    int32_t *pos;
    ss_prompt *p = new_prompt("Review: {text} It was [MASK].", "n=bad;p=good", SS_ENCODER, MAXSEQ);
    CHECK_OK(ss_prompt_encode(p, texts, 2, &s, &pos, &err), &err);
    expect_seq(s.ids, ss_seqs_len(&s, 0), "encoder", "[CLS]", "Review:", " the movie", " It was", "[MASK]", ".",
               "[SEP]", NULL);
    assert_int_equal(s.ids[pos[0]], ss_tokenizer_token_id(g_tok, "[MASK]"));
    expect_seq(s.ids + s.off[1], ss_seqs_len(&s, 1), "encoder, empty text", "[CLS]", "Review:", " It was", "[MASK]",
               ".", "[SEP]", NULL);
    assert_int_equal(s.ids[s.off[1] + pos[1]], ss_tokenizer_token_id(g_tok, "[MASK]"));
    ss_seqs_free(&s);
    free(pos);
    ss_prompt_free(p);

    p = new_prompt("[MASK] movie: {text}", "n=bad;p=good", SS_ENCODER, MAXSEQ);
    CHECK_OK(ss_prompt_encode(p, texts, 1, &s, &pos, &err), &err);
    expect_seq(s.ids, ss_seqs_len(&s, 0), "encoder, word first", "[CLS]", "[MASK]", " movie:", " the movie", "[SEP]",
               NULL);
    assert_int_equal(pos[0], 1);
    ss_seqs_free(&s);
    free(pos);
    ss_prompt_free(p);

    p = new_prompt("{text} It was", "n=bad;p=good", SS_DECODER, MAXSEQ);
    CHECK_OK(ss_prompt_encode(p, texts, 1, &s, &pos, &err), &err);
    expect_seq(s.ids, ss_seqs_len(&s, 0), "decoder", "<|endoftext|>", "the movie", " It was", NULL);
    assert_int_equal(pos[0], (int)ss_seqs_len(&s, 0) - 1);
    ss_seqs_free(&s);
    free(pos);
    ss_prompt_free(p);
}

/* A long text is cut (its start kept) so that the template and the longest
 * word (as many [MASK]s, or appended tokens) fit the model. */
static void test_truncation(void **state) {
    (void)state;
    ss_error err = {0};
    char long_text[2000] = "";
    for (int i = 0; i < 60; i++) strcat(long_text, i ? " the movie was good" : "the movie was good");
    char *texts[] = {long_text, "the film"};
    int awful = n_tokens(" awful");
    for (int kind = 0; kind < 2; kind++) {
        int T = 16;
        ss_prompt *p = new_prompt(kind ? "{text} It was [MASK]." : "{text} It was", "n=awful;p=good", kind, T);
        ss_seqs s;
        int32_t *pos;
        CHECK_OK(ss_prompt_encode(p, texts, 2, &s, &pos, &err), &err);
        assert_int_equal(s.n_truncated, 1);
        assert_int_equal(ss_seqs_len(&s, 0) + (size_t)awful - 1, (size_t)T);
        ss_ids head = {0};
        enc(long_text, &head);
        const int32_t *ids = s.ids;
        size_t tail = (size_t)n_tokens(" It was") + (kind ? 2 + (size_t)n_tokens(".") : 0); /* [MASK] . [SEP] */
        assert_memory_equal(ids + 1, head.ids, (ss_seqs_len(&s, 0) - 1 - tail) * sizeof(int32_t));
        if (kind) assert_int_equal(ids[pos[0]], ss_tokenizer_token_id(g_tok, "[MASK]"));
        else assert_int_equal(pos[0], (int)ss_seqs_len(&s, 0) - 1);
        ss_ids_free(&head);
        /* and it classifies: the model reads the longest variant whole */
        ss_model *m;
        CHECK_OK(ss_model_load(&m, kind ? g_enc : g_dec, &err), &err);
        float probs[4];
        CHECK_OK(ss_prompt_classify_seqs(p, m, &s, pos, 4, probs, &err), &err);
        assert_true(fabs(probs[0] + probs[1] - 1) < 1e-5);
        ss_model_free(m);
        ss_seqs_free(&s);
        free(pos);
        ss_prompt_free(p);
    }
}

/* ---- errors -------------------------------------------------------------------------- */

static void expect_error(const char *tpl, const char *verb, ss_model_kind kind, int max_seq, const char *msg) {
    ss_error err = {0};
    ss_prompt *p = NULL;
    ss_prompt_spec spec = {tpl, verb, 0};
    ss_status st = ss_prompt_create(&p, &spec, g_tok, kind, max_seq, &err);
    if (st != SS_ERR_ARG || !strstr(err.msg, msg))
        fail_msg("template '%s', verbalizer '%s' (%s): got %s '%s', expected an error with '%s'", tpl, verb,
                 ss_model_kind_name(kind), ss_status_name(st), err.msg, msg);
    assert_null(p);
}

static void test_template_and_verbalizer_errors(void **state) {
    (void)state;
    const char *ok = "n=bad;p=good";
    expect_error("It was [MASK].", ok, SS_ENCODER, MAXSEQ, "has no {text}");
    expect_error("{text} {text} [MASK]", ok, SS_ENCODER, MAXSEQ, "{text} 2 times");
    expect_error("{text} It was", ok, SS_ENCODER, MAXSEQ, "has 0 [MASK]s: an encoder's template needs exactly one");
    expect_error("{text} [MASK] [MASK]", ok, SS_ENCODER, MAXSEQ, "has 2 [MASK]s");
    expect_error("{sentence} It was [MASK].", ok, SS_ENCODER, MAXSEQ, "'{sentence}' at byte 0 is not a placeholder");
    expect_error("{text} It was {", ok, SS_DECODER, MAXSEQ, "is not a placeholder");
    expect_error("{text} It was [MASK].", ok, SS_DECODER, MAXSEQ, "nothing may follow [MASK] (here '.')");
    expect_error("[MASK] {text}", ok, SS_DECODER, MAXSEQ, "nothing may follow [MASK]");
    expect_error("{text} [MASK] [MASK]", ok, SS_DECODER, MAXSEQ, "at most one [MASK]");
    expect_error("{text} It was", "n=bad", SS_DECODER, MAXSEQ, "at least 2 are needed");
    expect_error("{text} It was", "n=bad;p", SS_DECODER, MAXSEQ, "entry 2 'p' has no '='");
    expect_error("{text} It was", "n=bad;=good", SS_DECODER, MAXSEQ, "has an empty label");
    expect_error("{text} It was", "n=bad,;p=good", SS_DECODER, MAXSEQ, "label 'n' has an empty word (word 2");
    expect_error("{text} It was", "n= ;p=good", SS_DECODER, MAXSEQ, "label 'n' has an empty word");
    expect_error("{text} It was", "n=bad;n=good", SS_DECODER, MAXSEQ, "names label 'n' twice");
    expect_error("{text} It was", "n=bad;p=bad", SS_DECODER, MAXSEQ, "'bad' is under two labels, 'n' and 'p'");
    expect_error("{text} It was", "n=bad,bad;p=good", SS_DECODER, MAXSEQ, "lists the word 'bad' twice");
    expect_error("{text} It was", "n=bad;;p=good", SS_DECODER, MAXSEQ, "entry 2 is empty");
    expect_error("{text} It was", "n=a=b;p=good", SS_DECODER, MAXSEQ, "more than one '='");
    expect_error("{text} It was", "", SS_DECODER, MAXSEQ, "entry 1 is empty");
    int fixed = 1 + n_tokens(" It was"), awful = n_tokens(" awful");
    expect_error("{text} It was", "n=awful;p=good", SS_DECODER, fixed + awful - 1, "no room is left for the text");
    ss_prompt *p = new_prompt("{text} It was", "n=awful;p=good", SS_DECODER, fixed + awful);
    ss_prompt_free(p);
    /* a trailing ';' and spaces around names are fine */
    p = new_prompt("{text} It was", " n = bad , awful ; p=good ;", SS_DECODER, MAXSEQ);
    assert_int_equal(ss_prompt_num_labels(p), 2);
    assert_string_equal(ss_prompt_label(p, 0), "n");
    assert_string_equal(ss_prompt_label(p, 1), "p");
    ss_prompt_free(p);
}

/* Prompt-based fine-tuning needs words of one token (one or more per
 * label), and the labels of its training file (renumbered in their order,
 * the words' labels with them). */
static void test_fine_tuning_checks(void **state) {
    (void)state;
    ss_error err = {0};
    int32_t ids[3], wl[3];
    ss_prompt *p = new_prompt("{text} It was", "neg=bad,awful;pos=good", SS_DECODER, MAXSEQ);
    assert_int_equal(ss_prompt_num_words(p), 3);
    assert_int_equal(ss_prompt_word_tokens(p, ids, wl, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "the verbalizer word 'awful' (label 'neg') is"));
    assert_non_null(strstr(err.msg, "' + '")); /* its tokens, shown */
    ss_prompt_free(p);

    p = new_prompt("{text} It was [MASK].", "pos=good;neg=bad", SS_ENCODER, MAXSEQ);
    char *names2[] = {"neg", "pos"}, *names3[] = {"neg", "pos", "zzz"}, *other[] = {"neg", "other"};
    ss_label_map m2 = {2, names2}, m3 = {3, names3}, mo = {2, other};
    assert_int_equal(ss_prompt_order_labels(p, &m3, "train.tsv", &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "label 'zzz' of train.tsv has no verbalizer word"));
    assert_int_equal(ss_prompt_order_labels(p, &mo, "train.tsv", &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "the verbalizer's label 'pos' is not a label of train.tsv"));
    CHECK_OK(ss_prompt_order_labels(p, &m2, "train.tsv", &err), &err);
    assert_string_equal(ss_prompt_label(p, 0), "neg");
    CHECK_OK(ss_prompt_word_tokens(p, ids, wl, &err), &err);
    ss_ids t = {0};
    enc(" bad", &t);
    enc(" good", &t);
    /* the words in the verbalizer's order (good, bad), their labels renumbered */
    assert_int_equal(ids[0], t.ids[1]);
    assert_int_equal(wl[0], 1);
    assert_int_equal(ids[1], t.ids[0]);
    assert_int_equal(wl[1], 0);
    ss_prompt_free(p);
    /* several words of one token for a label */
    p = new_prompt("{text} It was [MASK].", "pos=good;neg=bad,the", SS_ENCODER, MAXSEQ);
    CHECK_OK(ss_prompt_order_labels(p, &m2, "train.tsv", &err), &err);
    assert_int_equal(ss_prompt_num_words(p), 3);
    CHECK_OK(ss_prompt_word_tokens(p, ids, wl, &err), &err);
    enc(" the", &t);
    assert_int_equal(t.n, 3);
    const int32_t want_ids[3] = {t.ids[1], t.ids[0], t.ids[2]}, want_wl[3] = {1, 0, 0};
    for (int j = 0; j < 3; j++) {
        assert_int_equal(ids[j], want_ids[j]);
        assert_int_equal(wl[j], want_wl[j]);
    }
    ss_ids_free(&t);
    ss_prompt_free(p);
    /* two spellings a lower-casing tokenizer makes the same tokens: refused
     * when the prompt is made (the head needs distinct tokens) */
    static const char *const specials[] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]"};
    char corpus[600];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", g_dir);
    const char *paths[] = {corpus};
    ss_bpe_train_opts lo = {.vocab_size = 5 + 256 + 60, .special_tokens = specials, .n_special = 5, .nthreads = 1,
                            .lowercase = 1};
    ss_tokenizer *lower;
    CHECK_OK(ss_bpe_train_files(&lo, paths, 1, &lower, &err), &err);
    ss_prompt_spec spec = {"{text} It was", "neg=bad,BAD;pos=good", 0};
    assert_int_equal(ss_prompt_create(&p, &spec, lower, SS_DECODER, MAXSEQ, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "the verbalizer words 'bad' and 'BAD' are the same tokens"));
    ss_tokenizer_free(lower);
}

/* A prompt-fine-tuned directory (prompt.json, labels.json) classifies with
 * its own prompt, classes in labels.json's order; the JSON round-trips. */
static void test_prompt_directory(void **state) {
    (void)state;
    ss_error err = {0};
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/ft", g_dir);
    ss_model *m;
    CHECK_OK(ss_model_load(&m, g_dec, &err), &err);
    save_run(m, NULL, dir);
    ss_model_free(m);
    ss_prompt_spec spec = {"{text} It was", "pos=good,great;neg=bad,awful", 0}, *back;
    int n_back;
    char *json = ss_prompt_specs_to_json(&spec, 1), *keep;
    assert_non_null(strstr(json, "\"template\":\t\"{text} It was\"")); /* one template: a string, as before */
    CHECK_OK(ss_prompt_specs_from_json(&back, &n_back, json, "x", &keep, &err), &err);
    assert_int_equal(n_back, 1);
    assert_string_equal(back[0].template_text, spec.template_text);
    assert_string_equal(back[0].verbalizer, spec.verbalizer);
    assert_int_equal(back[0].calibrate, 0);
    free(keep);
    snprintf(path, sizeof path, "%s/prompt.json", dir);
    CHECK_OK(ss_write_file_atomic(path, json, strlen(json), &err), &err);
    free(json);
    snprintf(path, sizeof path, "%s/labels.json", dir);
    CHECK_OK(ss_write_file_atomic(path, "[\"neg\", \"pos\"]", 14, &err), &err);
    ss_classifier c;
    CHECK_OK(ss_classifier_load(&c, dir, &err), &err);
    assert_int_equal(c.n_prompts, 1);
    float got[N_TEXTS * 2], want[N_TEXTS * 2];
    CHECK_OK(ss_classify(&c, (char *const *)TEXTS, N_TEXTS, 64, got, &err), &err);
    ss_classifier_free(&c);
    classify_with(g_dec, "{text} It was", VERB, 0, 64, want);
    for (int i = 0; i < N_TEXTS * 2; i++) assert_true(got[i] == want[i]);
    /* a directory fine-tuned through several templates: prompt.json lists
     * them, and it classifies as classify does with them all given */
    ss_prompt_spec two[2] = {{"{text} It was", VERB, 0}, {"Review: {text} Overall it was", VERB, 0}};
    char *json2 = ss_prompt_specs_to_json(two, 2);
    CHECK_OK(ss_prompt_specs_from_json(&back, &n_back, json2, "x", &keep, &err), &err);
    assert_int_equal(n_back, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(back[i].template_text, two[i].template_text);
        assert_string_equal(back[i].verbalizer, VERB);
    }
    free(keep);
    snprintf(path, sizeof path, "%s/prompt.json", dir);
    CHECK_OK(ss_write_file_atomic(path, json2, strlen(json2), &err), &err);
    free(json2);
    CHECK_OK(ss_classifier_load(&c, dir, &err), &err);
    assert_int_equal(c.n_prompts, 2);
    CHECK_OK(ss_classify(&c, (char *const *)TEXTS, N_TEXTS, 64, got, &err), &err);
    ss_classifier_free(&c);
    CHECK_OK(ss_classifier_load_prompt(&c, g_dec, two, 2, &err), &err);
    CHECK_OK(ss_classify(&c, (char *const *)TEXTS, N_TEXTS, 64, want, &err), &err);
    ss_classifier_free(&c);
    for (int i = 0; i < N_TEXTS * 2; i++) assert_true(got[i] == want[i]);
    const char *bad_json[] = {"{\"template\": 3, \"verbalizer\": \"a=b;c=d\"}",
                              "{\"template\": [], \"verbalizer\": \"a=b;c=d\"}",
                              "{\"template\": [\"{text}\", 1], \"verbalizer\": \"a=b;c=d\"}",
                              "{\"template\": \"{text}\"}", "[1]"};
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        assert_int_equal(ss_prompt_specs_from_json(&back, &n_back, bad_json[i], "p.json", &keep, &err), SS_ERR_FORMAT);
        assert_non_null(strstr(err.msg, "p.json: expected {\"template\": string or [strings]"));
        assert_null(keep);
    }
    /* a bad prompt.json names the file */
    snprintf(path, sizeof path, "%s/prompt.json", dir);
    const char *bad = "{\"template\": \"{text} It was\", \"verbalizer\": \"neg=bad\"}";
    CHECK_OK(ss_write_file_atomic(path, bad, strlen(bad), &err), &err);
    assert_int_equal(ss_classifier_load(&c, dir, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "prompt.json: verbalizer 'neg=bad'"));
}

/* Models without a language model head. */
static void test_models_without_lm_head(void **state) {
    (void)state;
    ss_error err = {0};
    ss_classifier c;
    ss_prompt_spec spec = {"{text} It was [MASK].", "n=bad;p=good", 0};
    assert_int_equal(ss_classifier_load_prompt(&c, g_cls, &spec, 1, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "classification head"));
    assert_int_equal(ss_classifier_load_prompt(&c, g_disc, &spec, 1, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "no language model head"));
    /* a pretrained run without --template: the message says how */
    assert_int_equal(ss_classifier_load(&c, g_dec, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "not a classifier"));
    assert_non_null(strstr(err.msg, "--template and --verbalizer"));
    /* the template is checked for the model's kind */
    spec.template_text = "{text} It was";
    assert_int_equal(ss_classifier_load_prompt(&c, g_enc, &spec, 1, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "an encoder's template needs exactly one"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_as_expected),
        cmocka_unit_test(test_decoder_by_hand),
        cmocka_unit_test(test_several_templates_by_hand),
        cmocka_unit_test(test_encoder_by_fill_mask),
        cmocka_unit_test(test_rtd_generator_by_fill_mask),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_template_and_verbalizer_errors),
        cmocka_unit_test(test_fine_tuning_checks),
        cmocka_unit_test(test_prompt_directory),
        cmocka_unit_test(test_models_without_lm_head),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
