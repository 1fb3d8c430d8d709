/* ss_generate (src/infer/generate.c) without the CLI, on a model built to
 * write a known text: byte-level tokens (id 1 + b for byte b, 0 =
 * <|endoftext|>), blocks that add nothing (zero output projections), token
 * embeddings one-hot and position embedding t pointing at the token of
 * position t + 1, so greedy decoding spells the target out one byte per
 * token, multi-byte characters split across tokens. Checked: the pieces
 * handed to the callback are whole UTF-8 characters, each as soon as it is
 * complete; the stop string ends the text (a partial match is held back,
 * then released); every way to end (end of text, stop string, max new
 * tokens, max_seq) and --sliding past max_seq; echo; the no-cache
 * reference gives the same text; bad prompts are errors. */
#include "testutil.h"

#include "selfsup/generate.h"
#include "selfsup/io.h"

#define C_MODEL 264 /* >= V: one channel per token */
#define V_SIZE 257
#define MAX_SEQ 48

/* 14 characters in 20 bytes: 1-, 2-, 3- and 4-byte UTF-8. */
static const char CONT[] = "a\xc3\xb1" "b\xe2\x82\xac" "c\xf0\x9d\x84\x9e" " STOP ok";

static ss_tokenizer *g_tok;

static int32_t byte_id(char b) { return 1 + (unsigned char)b; }

/* A decoder that continues prompt byte p0 with text[0..n) (then
 * <|endoftext|> when eot; without it, the last token repeats). */
static ss_model *make_model(const char *text, size_t n, int eot) {
    ss_error err = {0};
    ss_model_config c = {.kind = SS_DECODER, .vocab_size = V_SIZE, .n_layer = 1, .d_model = C_MODEL,
                         .n_head = 2, .d_ff = 4, .max_seq = MAX_SEQ, .head = SS_HEAD_LM};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    memset(ss_model_params(m), 0, ss_model_num_params(m) * sizeof(float));
    const ss_params *p = ss_model_param_views(m);
    for (int i = 0; i < C_MODEL; i++) p->ln1w[i] = p->ln2w[i] = p->lnfw[i] = 1.0f;
    for (int v = 0; v < V_SIZE; v++) p->wte[(size_t)v * C_MODEL + v] = 1.0f;
    /* position t predicts the token of position t + 1 = text[t] (the prompt is position 0) */
    for (size_t t = 0; t < n + (eot ? 1 : 0) && t < MAX_SEQ; t++)
        p->wpe[t * C_MODEL + (t < n ? byte_id(text[t]) : 0)] = 8.0f;
    return m;
}

typedef struct {
    ss_buf text;
    int pieces, all_valid;
} sink;

static void collect(void *ctx, const char *text, size_t len) {
    sink *s = ctx;
    ss_error err = {0};
    assert_true(len > 0);
    CHECK_OK(ss_buf_append(&s->text, text, len, &err), &err);
    s->pieces++;
    if (!ss_utf8_valid(text, len)) s->all_valid = 0;
}

/* Greedy generation from the prompt "A" (or prompt) into s. */
static ss_status run(ss_model *m, const char *prompt, const ss_generate_opts *o, sink *s, ss_generate_result *r,
                     ss_error *err) {
    ss_generator *g;
    ss_status st = ss_generator_create(&g, m, g_tok, err);
    if (st) return st;
    ss_rng rng;
    ss_rng_seed(&rng, 1);
    memset(s, 0, sizeof *s);
    s->all_valid = 1;
    st = ss_generate(g, prompt, strlen(prompt), o, &rng, collect, s, r, err);
    ss_generator_free(g);
    return st;
}

static ss_generate_opts greedy(void) {
    ss_generate_opts o;
    ss_generate_opts_defaults(&o);
    o.sampler.temperature = 0;
    return o;
}

/* Generate; the text must be want[0..n) (want NULL: any n bytes) and the
 * end `end`. s keeps the count and validity of the pieces. */
static ss_generate_result expect_gen(ss_model *m, const char *prompt, const ss_generate_opts *o, const char *want,
                                     size_t n, ss_gen_end end, sink *s) {
    ss_error err = {0};
    ss_generate_result r;
    CHECK_OK(run(m, prompt, o, s, &r, &err), &err);
    if (s->text.len != n || (want && memcmp(s->text.data, want, n) != 0))
        fail_msg("got '%.*s' (%zu bytes), want %zu bytes", (int)s->text.len, s->text.data, s->text.len, n);
    assert_int_equal(r.end, end);
    ss_buf_free(&s->text);
    return r;
}

/* One piece per character, each a whole character, as soon as complete. */
static void test_utf8_held_back_until_complete(void **state) {
    (void)state;
    ss_model *m = make_model(CONT, sizeof CONT - 1, 1);
    ss_generate_opts o = greedy();
    sink s;
    ss_generate_result r = expect_gen(m, "A", &o, CONT, sizeof CONT - 1, SS_GEN_END_OF_TEXT, &s);
    assert_int_equal(r.new_tokens, (int)sizeof CONT - 1);
    assert_int_equal(r.prompt_tokens, 1);
    assert_true(s.all_valid);
    assert_int_equal(s.pieces, 14); /* 14 characters */
    o.no_cache = 1; /* the reference without a cache writes the same */
    expect_gen(m, "A", &o, CONT, sizeof CONT - 1, SS_GEN_END_OF_TEXT, &s);
    ss_model_free(m);
}

static void test_stop_string(void **state) {
    (void)state;
    ss_model *m = make_model(CONT, sizeof CONT - 1, 1);
    ss_generate_opts o = greedy();
    sink s;
    size_t at = (size_t)(strstr(CONT, " STOP") - CONT);
    o.stop = " STOP";
    ss_generate_result r = expect_gen(m, "A", &o, CONT, at, SS_GEN_STOP_STRING, &s);
    assert_int_equal(r.new_tokens, (int)at + 5);
    o.stop = "\xe2\x82"; /* inside a character (the first two bytes of the euro sign) */
    expect_gen(m, "A", &o, CONT, 4, SS_GEN_STOP_STRING, &s);
    /* a partial match ("b" then "\xe2\x82\xac", never "x") is held, then released whole */
    o.stop = "b\xe2\x82\xac" "x";
    expect_gen(m, "A", &o, CONT, sizeof CONT - 1, SS_GEN_END_OF_TEXT, &s);
    assert_true(s.all_valid);
    assert_int_equal(s.pieces, 12); /* "b€c" came out as one piece */
    ss_model_free(m);
}

static void test_max_new_tokens_and_echo(void **state) {
    (void)state;
    ss_model *m = make_model(CONT, sizeof CONT - 1, 1);
    ss_generate_opts o = greedy();
    sink s;
    o.max_new_tokens = 2; /* ends inside "ñ": the final flush lets the byte out */
    o.echo = 1;
    assert_int_equal(expect_gen(m, "A", &o, "Aa\xc3", 3, SS_GEN_MAX_NEW_TOKENS, &s).new_tokens, 2);
    o.max_new_tokens = 0;
    assert_int_equal(expect_gen(m, "A", &o, "A", 1, SS_GEN_MAX_NEW_TOKENS, &s).new_tokens, 0);
    ss_model_free(m);
}

/* 60 bytes of text and no end: max_seq ends it, unless sliding. */
static void test_max_seq_and_sliding(void **state) {
    (void)state;
    char text[60];
    for (int i = 0; i < 60; i++) text[i] = (char)('a' + i % 26);
    ss_model *m = make_model(text, sizeof text, 0);
    ss_generate_opts o = greedy();
    sink s;
    assert_int_equal(expect_gen(m, "A", &o, text, MAX_SEQ - 1, SS_GEN_MAX_SEQ, &s).new_tokens, MAX_SEQ - 1);
    o.sliding = 1;
    o.max_new_tokens = 100;
    for (o.no_cache = 0; o.no_cache < 2; o.no_cache++)
        assert_int_equal(expect_gen(m, "A", &o, NULL, 100, SS_GEN_MAX_NEW_TOKENS, &s).new_tokens, 100);
    ss_model_free(m);
}

static void test_prompts(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m = make_model(CONT, sizeof CONT - 1, 1);
    ss_generate_opts o = greedy();
    sink s;
    ss_generate_result r;
    /* an empty prompt starts from <|endoftext|> at position 0 */
    r = expect_gen(m, "", &o, CONT, sizeof CONT - 1, SS_GEN_END_OF_TEXT, &s);
    assert_int_equal(r.prompt_tokens, 1);
    char long_prompt[MAX_SEQ + 1];
    memset(long_prompt, 'z', MAX_SEQ);
    long_prompt[MAX_SEQ] = '\0';
    assert_int_equal(run(m, long_prompt, &o, &s, &r, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "at most 47"));
    assert_int_equal(s.text.len, 0);
    o.sliding = 1; /* keeps the last half */
    o.max_new_tokens = 1;
    assert_int_equal(expect_gen(m, long_prompt, &o, NULL, 1, SS_GEN_MAX_NEW_TOKENS, &s).prompt_tokens, MAX_SEQ / 2);
    /* a special token written in the prompt is text (13 byte tokens) unless allowed (issue 18, item 7) */
    o = greedy();
    o.max_new_tokens = 1;
    assert_int_equal(expect_gen(m, "<|endoftext|>", &o, NULL, 1, SS_GEN_MAX_NEW_TOKENS, &s).prompt_tokens, 13);
    o.allow_special = 1;
    assert_int_equal(expect_gen(m, "<|endoftext|>", &o, NULL, 1, SS_GEN_MAX_NEW_TOKENS, &s).prompt_tokens, 1);
    ss_model_free(m);
}

static int setup(void **state) {
    (void)state;
    ss_error err = {0};
    const char *special[] = {"<|endoftext|>"};
    ss_bpe_train_opts o = {.vocab_size = V_SIZE, .special_tokens = special, .n_special = 1};
    ss_status st = ss_tokenizer_from_merges(&o, NULL, 0, &g_tok, &err);
    if (st) fprintf(stderr, "tokenizer: %s\n", err.msg);
    return st ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    ss_tokenizer_free(g_tok);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_held_back_until_complete),
        cmocka_unit_test(test_stop_string),
        cmocka_unit_test(test_max_new_tokens_and_echo),
        cmocka_unit_test(test_max_seq_and_sliding),
        cmocka_unit_test(test_prompts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
