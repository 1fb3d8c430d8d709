/* UTF-8 helpers (src/io/utf8.c): strict validation, the length of the
 * character at a position, U+FFFD replacement of invalid bytes (classify
 * --json), and the printable excerpts of untrusted bytes in messages. */
#include "testutil.h"

#include "selfsup/io.h"

static void test_valid_and_seq_len(void **state) {
    (void)state;
    static const struct { const char *s; size_t n, first; int valid; } cases[] = {
        {"a", 1, 1, 1},
        {"\xc3\xa9", 2, 2, 1},             /* é */
        {"\xe2\x82\xac", 3, 3, 1},         /* € */
        {"\xf0\x9f\x98\x80", 4, 4, 1},     /* U+1F600 */
        {"\xc0\x80", 2, 0, 0},             /* overlong NUL */
        {"\xe0\x80\xaf", 3, 0, 0},         /* overlong '/' */
        {"\xed\xa0\x80", 3, 0, 0},         /* a surrogate */
        {"\xf4\x90\x80\x80", 4, 0, 0},     /* above U+10FFFF */
        {"\xe2\x82", 2, 0, 0},             /* cut short */
        {"\x80", 1, 0, 0},                 /* a lone continuation byte */
        {"\xff", 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(ss_utf8_seq_len(cases[i].s, cases[i].n), cases[i].first);
        assert_int_equal(ss_utf8_valid(cases[i].s, cases[i].n), cases[i].valid);
    }
    assert_int_equal(ss_utf8_seq_len("", 0), 0);
}

static void test_sanitize(void **state) {
    (void)state;
    /* one U+FFFD per invalid byte; valid characters and controls unchanged */
    const char in[] = "ok \xc3\xa9 \xff\xe2\x82 \x01\xed\xa0\x80 end";
    char *out = ss_utf8_sanitize(in, sizeof in - 1);
    assert_string_equal(out, "ok \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \x01"
                             "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
    assert_true(ss_utf8_valid(out, strlen(out)));
    free(out);
    out = ss_utf8_sanitize("", 0);
    assert_string_equal(out, "");
    free(out);
}

static void test_quote_bytes(void **state) {
    (void)state;
    char b[256];
    assert_string_equal(ss_quote_bytes(b, sizeof b, "plain", 5, 60), "plain");
    assert_string_equal(ss_quote_bytes(b, sizeof b, "a\tb\n\x1b[0m\x7f\\", 10, 60), "a\\x09b\\x0A\\x1B[0m\\x7F\\\\");
    assert_string_equal(ss_quote_bytes(b, sizeof b, "\x00\xff\xc3\xa9\xc2\x85", 6, 60), "\\x00\\xFF\xc3\xa9\\xC2\\x85");
    /* cut after MAX input bytes, never inside a character */
    assert_string_equal(ss_quote_bytes(b, sizeof b, "abcdef", 6, 4), "abcd...");
    assert_string_equal(ss_quote_bytes(b, sizeof b, "ab\xe2\x82\xac", 5, 4), "ab...");
    assert_string_equal(ss_quote_bytes(b, sizeof b, "\x01\x02\x03", 3, 2), "\\x01\\x02...");
    /* a small buffer: cut short, still terminated */
    assert_string_equal(ss_quote_bytes(b, 12, "\x01\x02\x03\x04", 4, 60), "\\x01\\x02...");
    assert_string_equal(ss_quote_bytes(b, 4, "abc", 3, 60), "");
    /* 1000 random bytes: never a raw control byte, never long */
    unsigned char r[1000];
    for (int i = 0; i < 1000; i++) r[i] = (unsigned char)(i * 131 + 17);
    ss_quote_bytes(b, sizeof b, r, sizeof r, 60);
    assert_true(strlen(b) <= 4 * 60 + 3);
    for (const char *c = b; *c; c++) assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_seq_len),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_quote_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
