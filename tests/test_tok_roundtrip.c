/* decode(encode(x)) == x on seeded random byte strings (a small tokenizer
 * built here and GPT-2's); special tokens; NFC/NFKC; and the O(n log n) BPE
 * path against a straightforward GPT-2 bpe() written here. */
#include <time.h>

#include "testutil.h"

#include "selfsup/tokenizer.h"

/* ---- a small tokenizer: 256 bytes, some merges, two added tokens ---------------- */
static const char *merge_strs[][2] = {
    {"a", "a"}, {"aa", "aa"}, {"aa", "a"}, {"a", "b"}, {"b", "a"}, {"ab", "a"}, {"ba", "b"},
    {"ab", "ab"}, {"abab", "ab"}, {"aaaa", "aaaa"}, {"\xc4\xa0", "t"}, {"h", "e"},
    {"\xc4\xa0t", "he"}, {"i", "n"}, {"\xc4\xa0", "a"}, {"\xc4\xa0", "\xc4\xa0"},
    {"\xc4\xa0\xc4\xa0", "\xc4\xa0\xc4\xa0"}, {"'", "s"}, {"\xc4\x8a", "\xc4\x8a"}, {"in", "g"}, {"b", "b"},
    {"bb", "a"}, {"aaaaaaaa", "aa"}, {"\xc3\x83", "\xc2\xa9"}, /* bytes c3 a9: U+00E9 */
};
enum { N_MERGES = sizeof merge_strs / sizeof *merge_strs };

typedef struct {
    char *vocab[512];
    size_t n;
    int32_t merges[N_MERGES][2];
} small_vocab;

static int32_t find_tok(const small_vocab *v, const char *s) {
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->vocab[i], s) == 0) return (int32_t)i;
    return -1;
}

static void make_small(small_vocab *v) {
    v->n = 0;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = ss_byte_to_unicode((uint8_t)b);
        char *s = calloc(4, 1);
        if (cp < 0x80) s[0] = (char)cp;
        else { s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); }
        v->vocab[v->n++] = s;
    }
    for (size_t r = 0; r < N_MERGES; r++) {
        int32_t l = find_tok(v, merge_strs[r][0]), rt = find_tok(v, merge_strs[r][1]);
        assert_true(l >= 0 && rt >= 0);
        char *cat = malloc(strlen(merge_strs[r][0]) + strlen(merge_strs[r][1]) + 1);
        strcpy(cat, merge_strs[r][0]);
        strcat(cat, merge_strs[r][1]);
        assert_int_equal(find_tok(v, cat), -1);
        v->vocab[v->n++] = cat;
        v->merges[r][0] = l;
        v->merges[r][1] = rt;
    }
    v->vocab[v->n++] = strdup("[MASK]");
    v->vocab[v->n++] = strdup("<|endoftext|>");
}

static ss_tokenizer *build_small(small_vocab *v, ss_normalization norm) {
    make_small(v);
    ss_added_token added[2] = {{"[MASK]", (int32_t)v->n - 2, 1}, {"<|endoftext|>", (int32_t)v->n - 1, 1}};
    ss_tokenizer_spec spec = {v->n, (const char *const *)v->vocab, N_MERGES,
                              (const int32_t(*)[2])v->merges, 2, added, norm, 0};
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_build(&t, &spec, &err), &err);
    return t;
}

static void free_small(small_vocab *v) {
    for (size_t i = 0; i < v->n; i++) free(v->vocab[i]);
}

static ss_tokenizer *load_gpt2(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", test_data_path("gpt2-tokenizer", "vocab.bpe"));
    *strrchr(dir, '/') = '\0';
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_load(&t, dir, &err), &err);
    return t;
}

/* ---- random text ------------------------------------------------------------------- */
static uint64_t rng = 88172645463325252ull;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* kind 0: random bytes; 1: random valid UTF-8; 2: words, spaces, newlines,
 * apostrophes, digits, marks, odd spaces and invalid bytes mixed */
static size_t random_text(char *o, size_t max, int kind) {
    size_t n = 0, want = next_rand() % max;
    static const char *bits[] = {" ", "  ", "\n", "\n\n", "'s", "'", "'ll", "the", " the", "ing",
                                 "aa", "ab", "123", "\t", "\r\n", "\xc2\xa0", "\xe3\x80\x80", "\xcc\x81",
                                 "\xff", "\xc3", "\xe2\x82", "!?", "caf\xc3\xa9", "[MASK]", "<|end", "\xf0\x9f\x98\x80"};
    while (n + 8 < want) {
        if (kind == 0) {
            o[n++] = (char)next_rand();
        } else if (kind == 1) {
            uint32_t r = next_rand() % 6, cp;
            if (r < 2) cp = next_rand() % 0x80;
            else if (r == 2) cp = 0x80 + next_rand() % 0x780;
            else if (r == 3) cp = 0x800 + next_rand() % 0xF800;
            else if (r == 4) cp = 0x10000 + next_rand() % 0x100000;
            else cp = 0x300 + next_rand() % 0x70; /* combining marks */
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
            n += put_utf8(o + n, cp);
        } else {
            const char *b = bits[next_rand() % (sizeof bits / sizeof *bits)];
            size_t l = strlen(b);
            if (n + l > want) break;
            memcpy(o + n, b, l);
            n += l;
        }
    }
    return n;
}

static void check_roundtrip(ss_tokenizer *t, const char *s, size_t len, int allow) {
    ss_error err = {0};
    ss_ids ids = {0};
    ss_buf back = {0};
    CHECK_OK(ss_tokenizer_encode(t, s, len, allow, &ids, &err), &err);
    CHECK_OK(ss_tokenizer_decode(t, ids.ids, ids.n, &back, &err), &err);
    if (back.len != len || (len && memcmp(back.data, s, len) != 0))
        fail_msg("round trip changed a %zu-byte text (got %zu bytes)", len, back.len);
    ss_buf_free(&back);
    ss_ids_free(&ids);
}

static void roundtrip_many(ss_tokenizer *t) {
    char buf[600];
    for (int i = 0; i < 3000; i++) {
        size_t n = random_text(buf, sizeof buf - 8, i % 3);
        check_roundtrip(t, buf, n, i & 1);
    }
}

static void test_roundtrip_small(void **state) {
    (void)state;
    small_vocab v;
    ss_tokenizer *t = build_small(&v, SS_NORM_NONE);
    roundtrip_many(t);
    ss_tokenizer_free(t);
    free_small(&v);
}

static void test_roundtrip_gpt2(void **state) {
    (void)state;
    ss_tokenizer *t = load_gpt2();
    roundtrip_many(t);
    ss_tokenizer_free(t);
}

/* ---- special tokens ----------------------------------------------------------------- */
static void test_special_tokens(void **state) {
    (void)state;
    small_vocab v;
    ss_tokenizer *t = build_small(&v, SS_NORM_NONE);
    int32_t mask = ss_tokenizer_token_id(t, "[MASK]");
    assert_int_equal(mask, (int32_t)v.n - 2);
    assert_true(ss_tokenizer_is_special(t, mask));
    ss_error err = {0};
    ss_ids ids = {0};
    CHECK_OK(ss_tokenizer_encode(t, "[MASK]", 6, 1, &ids, &err), &err);
    assert_int_equal(ids.n, 1);
    assert_int_equal(ids.ids[0], mask);
    ids.n = 0;
    CHECK_OK(ss_tokenizer_encode(t, "[MASK]", 6, 0, &ids, &err), &err);
    assert_true(ids.n > 1);
    for (size_t i = 0; i < ids.n; i++) assert_int_not_equal(ids.ids[i], mask);
    /* "aa[MASK]ab": text around the special token is encoded on its own */
    ids.n = 0;
    CHECK_OK(ss_tokenizer_encode(t, "aa[MASK]ab", 10, 1, &ids, &err), &err);
    assert_int_equal(ids.n, 3);
    assert_int_equal(ids.ids[0], find_tok(&v, "aa"));
    assert_int_equal(ids.ids[1], mask);
    assert_int_equal(ids.ids[2], find_tok(&v, "ab"));
    ss_ids_free(&ids);
    check_roundtrip(t, "x[MASK]<|endoftext|>[MASK", 25, 1);
    ss_tokenizer_free(t);
    free_small(&v);
}

/* ---- normalization ------------------------------------------------------------------ */
static void decode_of_encode(ss_tokenizer *t, const char *s, ss_buf *out) {
    ss_error err = {0};
    ss_ids ids = {0};
    CHECK_OK(ss_tokenizer_encode(t, s, strlen(s), 0, &ids, &err), &err);
    out->len = 0;
    CHECK_OK(ss_tokenizer_decode(t, ids.ids, ids.n, out, &err), &err);
    ss_ids_free(&ids);
}

static void test_normalization(void **state) {
    (void)state;
    small_vocab v1, v2, v3;
    ss_tokenizer *none = build_small(&v1, SS_NORM_NONE), *nfc = build_small(&v2, SS_NORM_NFC),
                 *nfkc = build_small(&v3, SS_NORM_NFKC);
    ss_buf out = {0};
    decode_of_encode(nfc, "caf" "e\xcc\x81 x\xff", &out); /* e + COMBINING ACUTE, an invalid byte */
    assert_int_equal(out.len, 8);
    assert_memory_equal(out.data, "caf\xc3\xa9 x\xff", 8);
    ss_error err = {0};
    ss_ids ids = {0};
    CHECK_OK(ss_tokenizer_encode(nfc, "e\xcc\x81", 3, 0, &ids, &err), &err);
    assert_int_equal(ids.n, 1); /* the composed bytes c3 a9 merge into one token */
    assert_int_equal(ids.ids[0], find_tok(&v2, "\xc3\x83\xc2\xa9"));
    ss_ids_free(&ids);
    decode_of_encode(none, "e\xcc\x81", &out);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "e\xcc\x81", 3);
    decode_of_encode(nfc, "\xef\xac\x81", &out); /* U+FB01 LATIN SMALL LIGATURE FI: NFC keeps it */
    assert_int_equal(out.len, 3);
    decode_of_encode(nfkc, "\xef\xac\x81", &out); /* NFKC makes it "fi" */
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "fi", 2);
    assert_int_equal(ss_tokenizer_normalization(nfkc), SS_NORM_NFKC);
    ss_buf_free(&out);
    ss_tokenizer_free(none); ss_tokenizer_free(nfc); ss_tokenizer_free(nfkc);
    free_small(&v1); free_small(&v2); free_small(&v3);
}

/* ---- BPE against a straightforward GPT-2 bpe() ---------------------------------------- */

/* GPT-2's bpe(): find the lowest-rank adjacent pair, merge all its
 * occurrences left to right, repeat. Ranks by linear search. */
static size_t naive_bpe(const small_vocab *v, const uint8_t *p, size_t n, int32_t *sym) {
    int32_t byte_id[256];
    for (int b = 0; b < 256; b++) byte_id[b] = b; /* make_small puts bytes first, in order */
    for (size_t i = 0; i < n; i++) sym[i] = byte_id[p[i]];
    for (;;) {
        size_t best = N_MERGES;
        for (size_t i = 0; i + 1 < n; i++)
            for (size_t r = 0; r < best; r++)
                if (v->merges[r][0] == sym[i] && v->merges[r][1] == sym[i + 1]) { best = r; break; }
        if (best == N_MERGES) return n;
        int32_t res = 256 + (int32_t)best;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            if (i + 1 < n && sym[i] == v->merges[best][0] && sym[i + 1] == v->merges[best][1]) {
                sym[o++] = res;
                i++;
            } else {
                sym[o++] = sym[i];
            }
        }
        n = o;
    }
}

static void compare_with_naive(ss_tokenizer *t, const small_vocab *v, const char *s, size_t n) {
    int32_t *want = malloc(n * sizeof *want);
    size_t m = naive_bpe(v, (const uint8_t *)s, n, want);
    ss_ids ids = {0};
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_encode(t, s, n, 0, &ids, &err), &err);
    if (ids.n != m) fail_msg("%zu-byte run '%.20s...': %zu ids, naive bpe gives %zu", n, s, ids.n, m);
    assert_memory_equal(ids.ids, want, m * sizeof *want);
    ss_ids_free(&ids);
    free(want);
}

static void test_bpe_matches_naive(void **state) {
    (void)state;
    small_vocab v;
    ss_tokenizer *t = build_small(&v, SS_NORM_NONE);
    char *s = malloc(4000);
    /* runs of one letter and random letter strings: one pre-token each, so
     * both the array path (<= 64 bytes) and the heap path are exercised */
    for (size_t n = 1; n < 3000; n += 1 + n / 8) {
        memset(s, 'a', n);
        compare_with_naive(t, &v, s, n);
    }
    const char letters[] = "aabbaab";
    for (int k = 0; k < 300; k++) {
        size_t n = 1 + next_rand() % 2000;
        for (size_t i = 0; i < n; i++) s[i] = letters[next_rand() % 7];
        compare_with_naive(t, &v, s, n);
    }
    free(s);
    ss_tokenizer_free(t);
    free_small(&v);
}

static void test_long_run_is_fast(void **state) {
    (void)state;
    small_vocab v;
    ss_tokenizer *t = build_small(&v, SS_NORM_NONE);
    ss_tokenizer *g = load_gpt2();
    size_t n = 200000;
    char *s = malloc(n);
    memset(s, 'a', n);
    /* CPU time, not wall time: a guard against quadratic work that a loaded
     * machine (a starved `make check` beside other jobs) cannot trip */
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    ss_ids ids = {0};
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_encode(t, s, n, 0, &ids, &err), &err);
    /* pairs double a's up to "aaaaaaaa"; "aaaaaaaa"+"aa" never forms, since
     * no "aa" is left over: 200000 = 25000 * 8 */
    assert_int_equal(ids.n, 25000);
    assert_int_equal(ids.ids[0], find_tok(&v, "aaaaaaaa"));
    assert_int_equal(ids.ids[24999], find_tok(&v, "aaaaaaaa"));
    ids.n = 0;
    CHECK_OK(ss_tokenizer_encode(g, s, n, 0, &ids, &err), &err);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    /* quadratic BPE would need ~10^10 steps here; n log n takes milliseconds */
    if (sec > 2.0) fail_msg("encoding 2 x 200k 'a' took %.2f s of CPU", sec);
    check_roundtrip(g, s, n, 0);
    ss_ids_free(&ids);
    free(s);
    ss_tokenizer_free(g);
    ss_tokenizer_free(t);
    free_small(&v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_small),
        cmocka_unit_test(test_roundtrip_gpt2),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_normalization),
        cmocka_unit_test(test_bpe_matches_naive),
        cmocka_unit_test(test_long_run_is_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
