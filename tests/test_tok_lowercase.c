/* The Lowercase normalizer: encoding with it equals encoding the lowercased
 * text without it (ASCII, non-ASCII, growing and shrinking mappings), invalid
 * UTF-8 bytes pass through, added tokens still match, parallel = serial, and
 * tokenizer.json round trips of every normalizer form including Hugging
 * Face's Sequence. The reference lowercasing here is written independently
 * (utf8proc_iterate + utf8proc_tolower, one character at a time). */
#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "ref_lower.h"
#include "testutil.h"

#include "selfsup/tokenizer.h"

/* ---- reference ------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- a tokenizer trained on lowercase words, with and without Lowercase -------- */

static const char *const specials[] = {"[MASK]", "<|endoftext|>"};

static ss_bpe_train_opts opts_for(ss_normalization norm, int lower) {
    return (ss_bpe_train_opts){.vocab_size = 2 + 256 + 120, .min_frequency = 1,
                               .special_tokens = specials, .n_special = 2,
                               .normalization = norm, .lowercase = lower};
}

/* Merges learned from a few lowercase words (so non-ASCII merges exist). */
static int32_t (*small_merges(size_t *n))[2] {
    static const char *const words[] = {
        "\xc3\xa9" "cole", " \xc3\xa9" "cole", " \xc3\xbcn\xc3\xaf" "code", " \xce\xb1\xce\xb2\xce\xb3",
        " hello", "hello", " world", " the", " i", " k", " \xe2\xb1\xa5", " \xcf\x83\xce\xb1\xcf\x83",
        " xyz", "ing"};
    enum { NW = sizeof words / sizeof *words };
    ss_word_count w[NW];
    for (size_t i = 0; i < NW; i++) w[i] = (ss_word_count){words[i], strlen(words[i]), 3 + i % 4};
    ss_bpe_train_opts o = opts_for(SS_NORM_NONE, 0);
    int32_t (*m)[2] = NULL;
    ss_error err = {0};
    CHECK_OK(ss_bpe_train_counts(&o, w, NW, &m, n, &err), &err);
    assert_true(*n > 30);
    return m;
}

static ss_tokenizer *build(ss_normalization norm, int lower) {
    size_t n;
    int32_t (*m)[2] = small_merges(&n);
    ss_bpe_train_opts o = opts_for(norm, lower);
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_from_merges(&o, (const int32_t(*)[2])m, n, &t, &err), &err);
    free(m);
    assert_int_equal(ss_tokenizer_normalization(t), norm);
    assert_int_equal(ss_tokenizer_lowercase(t), lower);
    return t;
}

static void encode(ss_tokenizer *t, const char *s, size_t n, int allow, ss_ids *ids) {
    ss_error err = {0};
    ids->n = 0;
    CHECK_OK(ss_tokenizer_encode(t, s, n, allow, ids, &err), &err);
}

static void assert_same_ids(const ss_ids *a, const ss_ids *b, const char *what) {
    if (a->n != b->n) fail_msg("%s: %zu ids vs %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        if (a->ids[i] != b->ids[i]) fail_msg("%s: id %zu is %d vs %d", what, i, a->ids[i], b->ids[i]);
}

/* encode(lower, x) == encode(plain, want), and decode gives want exactly. */
static void check_lowered(ss_tokenizer *lower, ss_tokenizer *plain, const char *x, size_t xn,
                          const char *want, size_t wn, int allow) {
    ss_ids a = {0}, b = {0};
    ss_buf out = {0};
    ss_error err = {0};
    encode(lower, x, xn, allow, &a);
    encode(plain, want, wn, allow, &b);
    assert_same_ids(&a, &b, x);
    CHECK_OK(ss_tokenizer_decode(lower, a.ids, a.n, &out, &err), &err);
    if (out.len != wn || (wn && memcmp(out.data, want, wn) != 0))
        fail_msg("decode(encode('%.*s')) = '%.*s', want '%.*s'", (int)xn, x, (int)out.len, out.data,
                 (int)wn, want);
    ss_ids_free(&a);
    ss_ids_free(&b);
    ss_buf_free(&out);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_encode_equals_lowercased_text(void **state) {
    (void)state;
    ss_tokenizer *lower = build(SS_NORM_NONE, 1), *plain = build(SS_NORM_NONE, 0);
    static const char *const cases[][2] = {
        {"HELLO World THE xyz, Hello! hello", "hello world the xyz, hello! hello"},
        {"\xc3\x89" "COLE \xc3\x9cn\xc3\xaf" "code \xce\x91\xce\x92\xce\x93", /* ÉCOLE Ünïcode ΑΒΓ */
         "\xc3\xa9" "cole \xc3\xbcn\xc3\xaf" "code \xce\xb1\xce\xb2\xce\xb3"},
        /* U+0130 -> "i" (simple mapping, no U+0307), KELVIN SIGN -> "k" (3 bytes -> 1),
         * U+023A -> U+2C65 (2 bytes -> 3) */
        {"\xc4\xb0 \xe2\x84\xaa \xc8\xba", "i k \xe2\xb1\xa5"},
        /* no final-sigma rule: every capital sigma becomes U+03C3 */
        {"\xce\xa3\xce\x91\xce\xa3", "\xcf\x83\xce\xb1\xcf\x83"},
        {"ALL CAPS ABCDEFGHIJKLMNOPQRSTUVWXYZ @[`{", "all caps abcdefghijklmnopqrstuvwxyz @[`{"},
    };
    char ref[256];
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const char *x = cases[k][0], *want = cases[k][1];
        size_t rn = ref_lower(x, strlen(x), ref); /* the reference agrees */
        assert_int_equal(rn, strlen(want));
        assert_memory_equal(ref, want, rn);
        check_lowered(lower, plain, x, strlen(x), want, strlen(want), 0);
        check_lowered(lower, plain, want, strlen(want), want, strlen(want), 0); /* idempotent */
    }
    /* the merges matter: " école" is a single token in both */
    ss_ids ids = {0};
    encode(lower, " \xc3\x89" "COLE", 7, 0, &ids);
    assert_int_equal(ids.n, 1);
    assert_string_equal(ss_tokenizer_token(lower, ids.ids[0]), "\xc4\xa0\xc3\x83\xc2\xa9" "cole");
    /* added tokens are matched on the raw text, before lowercasing */
    const char *x = "[MASK] HELLO<|endoftext|>";
    encode(lower, x, strlen(x), 1, &ids);
    assert_true(ids.n >= 3);
    assert_int_equal(ids.ids[0], 0);
    assert_int_equal(ids.ids[ids.n - 1], 1);
    check_lowered(lower, plain, x, strlen(x), "[MASK] hello<|endoftext|>", 25, 1);
    check_lowered(lower, plain, x, strlen(x), "[mask] hello<|endoftext|>", 25, 0);
    ss_ids_free(&ids);
    ss_tokenizer_free(lower);
    ss_tokenizer_free(plain);
}

static void test_nfc_then_lowercase(void **state) {
    (void)state;
    ss_tokenizer *nfcl = build(SS_NORM_NFC, 1), *plain = build(SS_NORM_NONE, 0),
                 *nfkcl = build(SS_NORM_NFKC, 1);
    /* E + COMBINING ACUTE composes to É, then lowercases to é */
    check_lowered(nfcl, plain, "E\xcc\x81" "COLE", 7, "\xc3\xa9" "cole", 6, 0);
    /* NFKC maps U+FB01 (fi ligature) to "fi"; FULLWIDTH A to "A", then "a" */
    check_lowered(nfkcl, plain, "\xef\xac\x81 \xef\xbc\xa1Z", 8, "fi az", 5, 0);
    check_lowered(nfcl, plain, "\xef\xac\x81", 3, "\xef\xac\x81", 3, 0); /* NFC keeps it */
    ss_tokenizer_free(nfcl);
    ss_tokenizer_free(nfkcl);
    ss_tokenizer_free(plain);
}

static void test_invalid_bytes_unchanged(void **state) {
    (void)state;
    ss_tokenizer *lower = build(SS_NORM_NONE, 1), *plain = build(SS_NORM_NONE, 0),
                 *nfc = build(SS_NORM_NFC, 0), *nfcl = build(SS_NORM_NFC, 1);
    static const struct { const char *x, *want; size_t n; } cases[] = {
        {"A\xff" "B", "a\xff" "b", 3},
        {"\xc3" "X", "\xc3" "x", 2},                        /* truncated sequence */
        {"\xed\xa0\x80Z", "\xed\xa0\x80z", 4},              /* a surrogate */
        {"\xc0\xaf" "Q", "\xc0\xaf" "q", 3},                /* overlong '/' */
        {"\xf4\x90\x80\x80W", "\xf4\x90\x80\x80w", 5},      /* above U+10FFFF */
        {"\xc3\x89\0\xc3\x96", "\xc3\xa9\0\xc3\xb6", 5},    /* NUL between É and Ö */
        {"\x80\xc3\x89\xc3", "\x80\xc3\xa9\xc3", 4},        /* stray continuation, lead at end */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        check_lowered(lower, plain, cases[k].x, cases[k].n, cases[k].want, cases[k].n, 0);
        check_lowered(nfcl, plain, cases[k].x, cases[k].n, cases[k].want, cases[k].n, 0);
    }
    /* Random byte strings: arbitrary bytes mixed with upper-case characters.
     * Lowercase: encode == plain encode of ref_lower(x). NFC+Lowercase:
     * decode gives ref_lower of what the NFC tokenizer decodes to. */
    static const char *const parts[] = {"A", "Z", "Hello", "WORLD", "\xc3\x89", "E\xcc\x81",
                                        "\xce\xa3", "\xc8\xba", "\xc4\xb0", "\xe2\x84\xaa", " ", "\n",
                                        "\xf0\x9d\x90\x80" /* MATHEMATICAL BOLD CAPITAL A */};
    uint64_t seed = 99;
    char x[2048], want[4096];
    for (int round = 0; round < 300; round++) {
        size_t n = 0, len = rng_next(&seed) % 200;
        while (n < len) {
            uint64_t r = rng_next(&seed);
            if (r % 3 == 0) {
                x[n++] = (char)(r >> 8);
            } else {
                const char *p = parts[(r >> 8) % (sizeof parts / sizeof *parts)];
                memcpy(x + n, p, strlen(p));
                n += strlen(p);
            }
        }
        size_t wn = ref_lower(x, n, want);
        check_lowered(lower, plain, x, n, want, wn, 0);
        ss_ids ids = {0};
        ss_buf a = {0}, b = {0};
        ss_error err = {0};
        encode(nfc, x, n, 0, &ids);
        CHECK_OK(ss_tokenizer_decode(nfc, ids.ids, ids.n, &a, &err), &err);
        encode(nfcl, x, n, 0, &ids);
        CHECK_OK(ss_tokenizer_decode(nfcl, ids.ids, ids.n, &b, &err), &err);
        wn = ref_lower(a.data ? a.data : "", a.len, want);
        assert_int_equal(b.len, wn);
        if (wn) assert_memory_equal(b.data, want, wn);
        ss_ids_free(&ids);
        ss_buf_free(&a);
        ss_buf_free(&b);
    }
    ss_tokenizer_free(lower); ss_tokenizer_free(plain);
    ss_tokenizer_free(nfc); ss_tokenizer_free(nfcl);
}

/* Long inputs: a mapping that grows (U+023A: 2 -> 3 bytes) forces the
 * output buffer to grow mid-text; parallel encoding equals serial. */
static void test_long_text_and_parallel(void **state) {
    (void)state;
    ss_tokenizer *lower = build(SS_NORM_NONE, 1), *plain = build(SS_NORM_NONE, 0);
    size_t n = 0, cap = 300000;
    char *x = malloc(cap), *want = malloc(2 * cap);
    for (int i = 0; i < 5000; i++) { memcpy(x + n, "\xc8\xba", 2); n += 2; }
    size_t wn = ref_lower(x, n, want);
    assert_int_equal(wn, 15000);
    check_lowered(lower, plain, x, n, want, wn, 0);
    static const char line[] = "The QUICK Brown \xc3\x89" "COLE jumps OVER \xce\x91\xce\x92\xce\x93 \xc8\xba\n";
    for (n = 0; n + sizeof line < cap; n += sizeof line - 1) memcpy(x + n, line, sizeof line - 1);
    wn = ref_lower(x, n, want);
    check_lowered(lower, plain, x, n, want, wn, 0);
    ss_ids serial = {0}, par = {0};
    ss_error err = {0};
    encode(lower, x, n, 0, &serial);
    CHECK_OK(ss_tokenizer_encode_parallel(lower, x, n, 0, 2, &par, &err), &err);
    assert_same_ids(&serial, &par, "parallel");
    ss_ids_free(&serial);
    ss_ids_free(&par);
    free(x);
    free(want);
    ss_tokenizer_free(lower);
    ss_tokenizer_free(plain);
}

/* ---- tokenizer.json -------------------------------------------------------------------- */

static cJSON *read_json(const char *path) {
    ss_buf buf = {0};
    ss_error err = {0};
    CHECK_OK(ss_read_file(path, &buf, &err), &err);
    cJSON *root = cJSON_Parse(buf.data);
    assert_non_null(root);
    ss_buf_free(&buf);
    return root;
}

static void write_json(const char *path, cJSON *root) {
    char *s = cJSON_Print(root);
    ss_error err = {0};
    CHECK_OK(ss_write_file_atomic(path, s, strlen(s), &err), &err);
    cJSON_free(s);
}

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItem(o, "type");
    assert_true(cJSON_IsString(t));
    return t->valuestring;
}

static void assert_same_encoding(ss_tokenizer *a, ss_tokenizer *b) {
    static const char *const texts[] = {"\xc3\x89" "COLE Ünïcode ΑΒΓ", "E\xcc\x81 \xef\xac\x81 HeLLo\xff",
                                        "[MASK] THE <|endoftext|>"};
    ss_ids x = {0}, y = {0};
    for (size_t k = 0; k < 3; k++)
        for (int allow = 0; allow < 2; allow++) {
            encode(a, texts[k], strlen(texts[k]), allow, &x);
            encode(b, texts[k], strlen(texts[k]), allow, &y);
            assert_same_ids(&x, &y, texts[k]);
        }
    ss_ids_free(&x);
    ss_ids_free(&y);
}

static void test_json_round_trip(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/tok.json", test_tmpdir());
    static const char *const names[] = {NULL, "NFC", "NFKC"};
    for (int norm = SS_NORM_NONE; norm <= SS_NORM_NFKC; norm++)
        for (int lower = 0; lower < 2; lower++) {
            ss_tokenizer *t = build((ss_normalization)norm, lower), *u = NULL;
            ss_error err = {0};
            CHECK_OK(ss_tokenizer_save(t, path, &err), &err);
            cJSON *root = read_json(path);
            const cJSON *nz = cJSON_GetObjectItem(root, "normalizer");
            assert_non_null(nz);
            if (!norm && !lower) {
                assert_true(cJSON_IsNull(nz));
            } else if (!lower) {
                assert_string_equal(type_of(nz), names[norm]);
            } else if (!norm) {
                assert_string_equal(type_of(nz), "Lowercase");
            } else { /* HF's form: {"type":"Sequence","normalizers":[NFC|NFKC, Lowercase]} */
                assert_string_equal(type_of(nz), "Sequence");
                const cJSON *list = cJSON_GetObjectItem(nz, "normalizers");
                assert_int_equal(cJSON_GetArraySize(list), 2);
                assert_string_equal(type_of(cJSON_GetArrayItem(list, 0)), names[norm]);
                assert_string_equal(type_of(cJSON_GetArrayItem(list, 1)), "Lowercase");
            }
            cJSON_Delete(root);
            CHECK_OK(ss_tokenizer_load(&u, path, &err), &err);
            assert_int_equal(ss_tokenizer_normalization(u), norm);
            assert_int_equal(ss_tokenizer_lowercase(u), lower);
            assert_same_encoding(t, u);
            ss_tokenizer_free(t);
            ss_tokenizer_free(u);
        }
}

/* Replace the normalizer of a saved plain tokenizer with JSON text. */
static const char *with_normalizer(const char *json) {
    static char path[512];
    snprintf(path, sizeof path, "%s/tok.json", test_tmpdir());
    ss_tokenizer *t = build(SS_NORM_NONE, 0);
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_save(t, path, &err), &err);
    ss_tokenizer_free(t);
    cJSON *root = read_json(path), *nz = cJSON_Parse(json);
    assert_non_null(nz);
    cJSON_ReplaceItemInObject(root, "normalizer", nz);
    write_json(path, root);
    cJSON_Delete(root);
    return path;
}

static void test_json_hf_sequences(void **state) {
    (void)state;
    static const struct { const char *json; ss_normalization norm; int lower; } ok[] = {
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"},{\"type\":\"Lowercase\"}]}", SS_NORM_NFKC, 1},
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Lowercase\"}]}", SS_NORM_NFC, 1},
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Lowercase\"}]}", SS_NORM_NONE, 1},
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"}]}", SS_NORM_NFC, 0},
        {"{\"type\":\"Sequence\",\"normalizers\":[]}", SS_NORM_NONE, 0},
        {"{\"type\":\"Lowercase\"}", SS_NORM_NONE, 1},
        {"null", SS_NORM_NONE, 0},
    };
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        ss_tokenizer *t = NULL;
        ss_error err = {0};
        CHECK_OK(ss_tokenizer_load(&t, with_normalizer(ok[k].json), &err), &err);
        assert_int_equal(ss_tokenizer_normalization(t), ok[k].norm);
        assert_int_equal(ss_tokenizer_lowercase(t), ok[k].lower);
        ss_tokenizer *ref = build(ok[k].norm, ok[k].lower);
        assert_same_encoding(t, ref);
        ss_tokenizer_free(ref);
        ss_tokenizer_free(t);
    }
    static const struct { const char *json, *needle; } bad[] = {
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Lowercase\"},{\"type\":\"NFC\"}]}",
         "normalizer.normalizers[1]: NFC is only supported once, before Lowercase"},
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"NFKC\"}]}",
         "normalizer.normalizers[1]: NFKC is only supported once"},
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Lowercase\"},{\"type\":\"Lowercase\"}]}",
         "normalizer.normalizers[1]: Lowercase appears twice"},
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Strip\"}]}",
         "normalizer.normalizers[0]: type 'Strip' is not supported"},
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Sequence\",\"normalizers\":[]}]}",
         "normalizer.normalizers[0]: type 'Sequence' is not supported"},
        {"{\"type\":\"Sequence\"}", "normalizer.normalizers: missing or not an array"},
        {"{\"type\":\"BertNormalizer\",\"lowercase\":true}", "normalizer: type 'BertNormalizer' is not supported"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        const char *path = with_normalizer(bad[k].json);
        ss_tokenizer *t = NULL;
        ss_error err = {0};
        assert_int_equal(ss_tokenizer_load(&t, path, &err), SS_ERR_FORMAT);
        assert_null(t);
        if (!strstr(err.msg, path)) fail_msg("message does not name the file: %s", err.msg);
        if (!strstr(err.msg, bad[k].needle)) fail_msg("message lacks '%s': %s", bad[k].needle, err.msg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_equals_lowercased_text),
        cmocka_unit_test(test_nfc_then_lowercase),
        cmocka_unit_test(test_invalid_bytes_unchanged),
        cmocka_unit_test(test_long_text_and_parallel),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_hf_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
