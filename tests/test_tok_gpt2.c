/* GPT-2's own files against reference ids from tiktoken (vectors.tsv), the
 * parallel encoder against the serial one, and decode(encode(x)) == x. */
#include "testutil.h"

#include "selfsup/tokenizer.h"

static ss_tokenizer *load_gpt2(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", test_data_path("gpt2-tokenizer", "encoder.json"));
    *strrchr(dir, '/') = '\0';
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_load(&t, dir, &err), &err);
    return t;
}

/* Undo vectors.tsv's escapes (\\ \t \n \r) in place; returns the length. */
static size_t unescape(char *s, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len) {
            char c = s[++i];
            s[o++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

static void test_reference_vectors(void **state) {
    (void)state;
    ss_tokenizer *t = load_gpt2();
    assert_int_equal(ss_tokenizer_vocab_size(t), 50257);
    assert_int_equal(ss_tokenizer_num_merges(t), 50000);
    assert_true(ss_tokenizer_is_special(t, 50256));
    FILE *f = fopen(test_data_path("gpt2-tokenizer", "vectors.tsv"), "rb");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0, nvec = 0;
    ssize_t got;
    ss_error err = {0};
    while ((got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] == '\n') line[--got] = '\0';
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        size_t len = unescape(line, (size_t)(tab - line));
        ss_ids ids = {0};
        CHECK_OK(ss_tokenizer_encode(t, line, len, 0, &ids, &err), &err);
        /* compare with the expected ids */
        char *p = tab + 1, *end;
        size_t k = 0;
        for (;; k++) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            if (k >= ids.n || ids.ids[k] != v)
                fail_msg("vector %zu ('%.*s'): id %zu is %d, expected %ld", nvec + 1, (int)len, line, k,
                         k < ids.n ? ids.ids[k] : -1, v);
            p = end;
        }
        if (k != ids.n) fail_msg("vector %zu: %zu ids, expected %zu", nvec + 1, ids.n, k);
        ss_buf back = {0};
        CHECK_OK(ss_tokenizer_decode(t, ids.ids, ids.n, &back, &err), &err);
        assert_int_equal(back.len, len);
        assert_memory_equal(back.data ? back.data : "", line, len);
        ss_buf_free(&back);
        ss_ids_free(&ids);
        nvec++;
    }
    assert_int_equal(nvec, 307);
    free(line);
    fclose(f);
    ss_tokenizer_free(t);
}

static void test_hello_world_and_special(void **state) {
    (void)state;
    ss_tokenizer *t = load_gpt2();
    ss_error err = {0};
    ss_ids ids = {0};
    const char *s = "Hello world<|endoftext|>";
    CHECK_OK(ss_tokenizer_encode(t, s, strlen(s), 1, &ids, &err), &err);
    assert_int_equal(ids.n, 3);
    assert_int_equal(ids.ids[0], 15496);
    assert_int_equal(ids.ids[1], 995);
    assert_int_equal(ids.ids[2], 50256);
    ids.n = 0;
    CHECK_OK(ss_tokenizer_encode(t, s, strlen(s), 0, &ids, &err), &err);
    int32_t plain[] = {15496, 995, 27, 91, 437, 1659, 5239, 91, 29};
    assert_int_equal(ids.n, 9);
    assert_memory_equal(ids.ids, plain, sizeof plain);
    ss_ids_free(&ids);
    ss_tokenizer_free(t);
}

/* Encode a text serially and with 1, 2, 3 threads; all must agree. */
static void check_parallel(ss_tokenizer *t, const char *text, size_t len) {
    ss_error err = {0};
    ss_ids serial = {0};
    CHECK_OK(ss_tokenizer_encode(t, text, len, 0, &serial, &err), &err);
    for (int th = 1; th <= 3; th++) {
        ss_ids par = {0};
        CHECK_OK(ss_tokenizer_encode_parallel(t, text, len, 0, th, &par, &err), &err);
        assert_int_equal(par.n, serial.n);
        assert_memory_equal(par.ids, serial.ids, serial.n * sizeof(int32_t));
        ss_ids_free(&par);
    }
    ss_buf back = {0};
    CHECK_OK(ss_tokenizer_decode(t, serial.ids, serial.n, &back, &err), &err);
    assert_int_equal(back.len, len);
    assert_memory_equal(back.data, text, len);
    ss_buf_free(&back);
    ss_ids_free(&serial);
}

static void test_parallel_equals_serial(void **state) {
    (void)state;
    ss_tokenizer *t = load_gpt2();
    ss_buf text = {0};
    ss_error err = {0};
    CHECK_OK(ss_read_file(test_data_path("tinyshakespeare", "input.txt"), &text, &err), &err);
    assert_true(text.len > 1000000);
    check_parallel(t, text.data, text.len);
    /* Paragraph breaks, indented lines and trailing spaces stress the cut
     * rule: only cuts that leave the serial pre-tokens unchanged are allowed. */
    ss_buf mixed = {0};
    const char *bits[] = {"\n\n", "\n  indented", "trailing  \n", "\r\n", "\u00a0\n", "\n\u3000x",
                          "word\nword", "\n\n\n  ", "x\n y", "caf\xc3\xa9\n\xc3\xa9t\xc3\xa9"};
    uint64_t x = 12345;
    for (size_t i = 0; i < 200000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const char *b = bits[(x >> 33) % 10];
        CHECK_OK(ss_buf_append(&mixed, b, strlen(b), &err), &err);
    }
    check_parallel(t, mixed.data, mixed.len);
    ss_buf_free(&mixed);
    ss_buf_free(&text);
    ss_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_hello_world_and_special),
        cmocka_unit_test(test_parallel_equals_serial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
