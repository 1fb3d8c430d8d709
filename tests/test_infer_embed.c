/* Embeddings: each text's vector equals a pooling by hand (in double) of the
 * hidden states the library's forward gives for that text alone, encoded by
 * hand ([CLS] ids [SEP] or ids <|endoftext|>, cut to max_seq); batching does
 * not change it (batch 1 against batch 7, to 1e-5); --normalize gives unit
 * norms; defaults and errors; the .npy writer's bytes against the NPY 1.0
 * format, and an aborted write leaves the file as it was. */
#include <math.h>

#include "testutil.h"

#include "selfsup/embed.h"
#include "selfsup/gemm.h"
#include "selfsup/io.h"
#include "selfsup/model.h"
#include "selfsup/tokenizer.h"

#define MAXT 16
static char tmp[512], enc_dir[600], dec_dir[600], cls_dir[600];
static ss_tokenizer *tok;

static const char *texts[] = {
    "the cat sat on the mat",
    "",
    "a dog",
    "the quick brown fox jumps over the lazy dog again and again and again until the end of the line",
    "naïve café, ok",
    "x",
    "the mat sat on the cat .",
    "  spaces  around  ",
    "dog dog dog",
    "on the other hand",
    "end",
};
#define NT (sizeof texts / sizeof texts[0])

static void save_model(const ss_model_config *c, uint64_t seed, const char *dir) {
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, c, &err), &err);
    ss_model_init_weights(m, seed);
    /* LayerNorm gains and biases away from 1 and 0, so every parameter matters */
    const ss_params *p = ss_model_param_views(m);
    for (int j = 0; j < c->d_model; j++) {
        p->lnfw[j] = 1.0f + 0.3f * sinf((float)j);
        p->lnfb[j] = 0.1f * cosf((float)j * 0.7f);
    }
    ss_gemm_weights_changed();
    CHECK_OK(ss_model_save(m, dir, NULL, 0, &err), &err);
    ss_model_free(m);
    char path[700];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(ss_tokenizer_save(tok, path, &err), &err);
}

static int setup(void **state) {
    (void)state;
    ss_error err = {0};
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir());
    char text[600];
    snprintf(text, sizeof text, "%s/text.txt", tmp);
    ss_buf b = {0};
    for (int r = 0; r < 20; r++)
        for (size_t i = 0; i < NT; i++) {
            CHECK_OK(ss_buf_append(&b, texts[i], strlen(texts[i]), &err), &err);
            CHECK_OK(ss_buf_append(&b, "\n", 1, &err), &err);
        }
    CHECK_OK(ss_write_file_atomic(text, b.data, b.len, &err), &err);
    ss_buf_free(&b);
    const char *specials[] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"};
    ss_bpe_train_opts to = {.vocab_size = 300, .min_frequency = 2, .special_tokens = specials, .n_special = 6};
    const char *paths[] = {text};
    CHECK_OK(ss_bpe_train_files(&to, paths, 1, &tok, &err), &err);
    int V = (int)ss_tokenizer_vocab_size(tok);
    snprintf(enc_dir, sizeof enc_dir, "%s/enc", tmp);
    snprintf(dec_dir, sizeof dec_dir, "%s/dec", tmp);
    snprintf(cls_dir, sizeof cls_dir, "%s/cls", tmp);
    ss_model_config c = {.kind = SS_ENCODER, .vocab_size = V, .n_layer = 2, .d_model = 24, .n_head = 2, .d_ff = 40,
                         .max_seq = MAXT, .head = SS_HEAD_MLM};
    save_model(&c, 3, enc_dir);
    c.kind = SS_DECODER;
    c.head = SS_HEAD_LM;
    save_model(&c, 4, dec_dir);
    c.kind = SS_ENCODER;
    c.head = SS_HEAD_CLS;
    c.n_classes = 2;
    c.pooling = SS_POOL_CLS;
    c.pooler = 1;
    save_model(&c, 5, cls_dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ss_tokenizer_free(tok);
    return 0;
}

/* The vector of one text by hand: encode, one forward of it alone, pool in double. */
static void by_hand(ss_model *m, const char *text, int max_seq, ss_pooling how, int normalize, double *out,
                    int *truncated) {
    ss_error err = {0};
    const ss_model_config *c = ss_model_config_of(m);
    int enc = c->kind == SS_ENCODER, C = c->d_model;
    ss_ids ids = {0};
    CHECK_OK(ss_tokenizer_encode(tok, text, strlen(text), 0, &ids, &err), &err);
    int room = max_seq - (enc ? 2 : 1), n = (int)ids.n < room ? (int)ids.n : room, T = 0;
    *truncated = (int)ids.n > room;
    int32_t seq[MAXT];
    if (enc) seq[T++] = ss_tokenizer_token_id(tok, "[CLS]");
    for (int i = 0; i < n; i++) seq[T++] = ids.ids[i];
    seq[T++] = ss_tokenizer_token_id(tok, enc ? "[SEP]" : "<|endoftext|>");
    ss_ids_free(&ids);
    const float *h;
    CHECK_OK(ss_model_body_forward(m, seq, NULL, 1, T, 0, 0, &h, &err), &err);
    double norm = 0;
    for (int j = 0; j < C; j++) {
        double v = 0;
        if (how == SS_POOL_MEAN) {
            for (int t = 0; t < T; t++) v += h[(size_t)t * C + j];
            v /= T;
        } else if (how == SS_POOL_WMEAN) { /* weights 1..T over the T tokens, summing to 1 */
            for (int t = 0; t < T; t++) v += (t + 1) * (double)h[(size_t)t * C + j];
            v /= T * (T + 1) / 2.0;
        } else {
            v = h[(size_t)(how == SS_POOL_CLS ? 0 : T - 1) * C + j];
        }
        out[j] = v;
        norm += v * v;
    }
    if (normalize)
        for (int j = 0; j < C; j++) out[j] /= sqrt(norm);
}

/* Every text, every pooling the model takes, raw and normalized: ss_embed
 * (batch 1 and 7) against the hand pooling. */
static void check_dir(const char *dir, ss_pooling want_default, int max_seq) {
    ss_error err = {0};
    ss_embedder e;
    ss_model *m;
    CHECK_OK(ss_embedder_load(&e, dir, max_seq, &err), &err);
    CHECK_OK(ss_model_load(&m, dir, &err), &err);
    assert_int_equal(e.default_pooling, want_default);
    int C = ss_embedder_dim(&e), T = max_seq ? max_seq : MAXT, dec = ss_model_config_of(m)->kind == SS_DECODER;
    assert_int_equal(C, 24);
    float *v1 = malloc(NT * C * sizeof(float)), *v7 = malloc(NT * C * sizeof(float));
    double want[64];
    for (int how = SS_POOL_CLS; how <= SS_POOL_WMEAN; how++) {
        for (int normalize = 0; normalize <= 1; normalize++) {
            ss_embed_opts o = {.pooling = (ss_pooling)how, .normalize = normalize, .batch = 1};
            size_t cut1 = 99, cut7 = 99;
            if (dec && how == SS_POOL_CLS) {
                assert_int_equal(ss_embed(&e, (char *const *)texts, NT, &o, v1, &cut1, &err), SS_ERR_ARG);
                assert_non_null(strstr(err.msg, "'cls'"));
                continue;
            }
            CHECK_OK(ss_embed(&e, (char *const *)texts, NT, &o, v1, &cut1, &err), &err);
            o.batch = 7;
            CHECK_OK(ss_embed(&e, (char *const *)texts, NT, &o, v7, &cut7, &err), &err);
            double d_hand = 0, d_batch = 0;
            size_t cut = 0;
            for (size_t i = 0; i < NT; i++) {
                int tr;
                by_hand(m, texts[i], T, (ss_pooling)how, normalize, want, &tr);
                cut += (size_t)tr;
                double norm = 0;
                for (int j = 0; j < C; j++) {
                    d_hand = fmax(d_hand, fabs(v1[i * C + j] - want[j]) / fmax(1, fabs(want[j])));
                    d_batch = fmax(d_batch, fabs(v1[i * C + j] - v7[i * C + j]));
                    norm += (double)v1[i * C + j] * v1[i * C + j];
                }
                if (normalize && fabs(sqrt(norm) - 1) > 1e-5) fail_msg("text %zu: norm %.8f", i, sqrt(norm));
            }
            printf("# %s, %s%s: max difference from the hand pooling %.2g, batch 1 vs 7 %.2g; %zu cut\n",
                   strrchr(dir, '/') + 1, ss_pooling_name((ss_pooling)how), normalize ? ", normalized" : "",
                   d_hand, d_batch, cut1);
            assert_true(d_hand <= 1e-5);
            assert_true(d_batch <= 1e-5);
            assert_int_equal(cut1, cut);
            assert_int_equal(cut7, cut);
            assert_true(cut >= 1);
        }
    }
    free(v1);
    free(v7);
    ss_model_free(m);
    ss_embedder_free(&e);
}

static void test_encoder(void **state) {
    (void)state;
    check_dir(enc_dir, SS_POOL_MEAN, 0);
    check_dir(enc_dir, SS_POOL_MEAN, 6); /* --max-seq below the model's: more texts cut */
}

static void test_decoder(void **state) {
    (void)state;
    check_dir(dec_dir, SS_POOL_LAST, 0);
}

static void test_classifier(void **state) {
    (void)state;
    check_dir(cls_dir, SS_POOL_CLS, 0); /* its body, and the pooling its head reads */
}

/* The vectors differ between texts (a constant output would pass the rest). */
static void test_texts_differ(void **state) {
    (void)state;
    ss_error err = {0};
    ss_embedder e;
    CHECK_OK(ss_embedder_load(&e, enc_dir, 0, &err), &err);
    int C = ss_embedder_dim(&e);
    float *v = malloc(NT * C * sizeof(float));
    ss_embed_opts o = {.pooling = SS_POOL_MEAN, .batch = 4};
    CHECK_OK(ss_embed(&e, (char *const *)texts, NT, &o, v, NULL, &err), &err);
    for (size_t a = 0; a < NT; a++)
        for (size_t b = a + 1; b < NT; b++) {
            double d = 0;
            for (int j = 0; j < C; j++) d = fmax(d, fabs(v[a * C + j] - v[b * C + j]));
            if (d < 1e-3) fail_msg("texts %zu and %zu have the same vector", a, b);
        }
    free(v);
    ss_embedder_free(&e);
}

static void test_errors(void **state) {
    (void)state;
    ss_error err = {0};
    ss_embedder e;
    char nope[700];
    snprintf(nope, sizeof nope, "%s/no-such-run", tmp);
    assert_int_not_equal(ss_embedder_load(&e, nope, 0, &err), SS_OK);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, nope));
    assert_int_equal(ss_embedder_load(&e, enc_dir, MAXT + 1, &err), SS_ERR_ARG);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "max-seq 17"));
    assert_int_equal(ss_embedder_load(&e, enc_dir, 2, &err), SS_ERR_ARG);
    CHECK_OK(ss_embedder_load(&e, enc_dir, 0, &err), &err);
    float v[24];
    ss_embed_opts o = {.pooling = SS_POOL_MEAN, .batch = 0};
    assert_int_equal(ss_embed(&e, (char *const *)texts, 1, &o, v, NULL, &err), SS_ERR_ARG);
    ss_embedder_free(&e);
}

static void read_all(const char *path, ss_buf *b) {
    ss_error err = {0};
    CHECK_OK(ss_read_file(path, b, &err), &err);
}

static void test_npy(void **state) {
    (void)state;
    ss_error err = {0};
    char path[700];
    snprintf(path, sizeof path, "%s/x.npy", tmp);
    float rows[15];
    for (int i = 0; i < 15; i++) rows[i] = (float)i * 0.5f - 3.25f;
    ss_npy_writer *w;
    CHECK_OK(ss_npy_open(&w, path, 5, &err), &err);
    CHECK_OK(ss_npy_append(w, rows, 2, &err), &err);
    CHECK_OK(ss_npy_append(w, rows + 10, 1, &err), &err);
    CHECK_OK(ss_npy_commit(w, &err), &err);
    ss_buf b = {0};
    read_all(path, &b);
    assert_int_equal(b.len, 128 + 15 * 4);
    assert_memory_equal(b.data, "\x93NUMPY\x01\x00", 8);
    size_t hl = (unsigned char)b.data[8] | (size_t)(unsigned char)b.data[9] << 8;
    assert_int_equal(hl, 118);
    assert_int_equal((10 + hl) % 64, 0);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }";
    assert_memory_equal(b.data + 10, dict, strlen(dict));
    for (size_t i = 10 + strlen(dict); i < 127; i++) assert_int_equal(b.data[i], ' ');
    assert_int_equal(b.data[127], '\n');
    assert_memory_equal(b.data + 128, rows, 10 * sizeof(float));
    assert_memory_equal(b.data + 128 + 40, rows + 10, 5 * sizeof(float));
    ss_buf_free(&b);
    /* an aborted write leaves the file as it was */
    CHECK_OK(ss_npy_open(&w, path, 5, &err), &err);
    CHECK_OK(ss_npy_append(w, rows, 1, &err), &err);
    ss_npy_abort(w);
    read_all(path, &b);
    assert_int_equal(b.len, 128 + 15 * 4);
    ss_buf_free(&b);
    /* no rows: shape (0, 5) */
    CHECK_OK(ss_npy_open(&w, path, 5, &err), &err);
    CHECK_OK(ss_npy_commit(w, &err), &err);
    read_all(path, &b);
    assert_int_equal(b.len, 128);
    assert_non_null(strstr(b.data + 10, "'shape': (0, 5), }"));
    ss_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoder),   cmocka_unit_test(test_decoder), cmocka_unit_test(test_classifier),
        cmocka_unit_test(test_texts_differ), cmocka_unit_test(test_errors), cmocka_unit_test(test_npy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
