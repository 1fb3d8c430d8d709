/* GPT-2 pre-tokenization against hand-checked splits of the pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * and the byte <-> stand-in map against GPT-2's bytes_to_unicode. */
#include "testutil.h"

#include "selfsup/tokenizer.h"

/* The pieces of text joined by '|' (no test text contains '|'). */
static void expect_split(const char *text, const char *want) {
    char got[1024];
    size_t len = strlen(text), pos = 0, o = 0;
    while (pos < len) {
        size_t end = ss_pretoken_next(text, len, pos);
        assert_true(end > pos && end <= len);
        if (pos) got[o++] = '|';
        memcpy(got + o, text + pos, end - pos);
        o += end - pos;
        pos = end;
    }
    got[o] = '\0';
    if (strcmp(got, want) != 0) fail_msg("split of \"%s\":\n  got  \"%s\"\n  want \"%s\"", text, got, want);
}

static void test_contractions(void **state) {
    (void)state;
    expect_split("It's a dog's life", "It|'s| a| dog|'s| life");
    expect_split("they'll we've I'd you're I'm don't", "they|'ll| we|'ve| I|'d| you|'re| I|'m| don|'t");
    expect_split("DON'T", "DON|'|T");          /* case-sensitive */
    expect_split("'sup", "'s|up");              /* contraction wins over the letter run */
    expect_split(" 's", " '|s");                /* after a space it is punctuation */
    expect_split("abc'", "abc|'");
    expect_split("'l'll", "'|l|'ll");
    expect_split("!'s", "!'|s");                /* inside a punctuation run */
    expect_split("can\xe2\x80\x99t", "can|\xe2\x80\x99|t"); /* curly apostrophe: no contraction */
}

static void test_spaces(void **state) {
    (void)state;
    expect_split("hello   world", "hello|  | world");
    expect_split("a  ", "a|  ");                 /* trailing run stays whole */
    expect_split("   ", "   ");
    expect_split(" a", " a");
    expect_split("\t\tx", "\t|\t|x");
    expect_split("a \t b", "a| \t| b");
    expect_split(" !!", " !!");
    expect_split("  !!", " | !!");
    expect_split("x 123", "x| 123");
}

static void test_newlines(void **state) {
    (void)state;
    expect_split("a\nb", "a|\n|b");
    expect_split("a\n\nb", "a|\n|\n|b");
    expect_split("a \n b", "a| \n| b");
    expect_split("a\n", "a|\n");
    expect_split("a\n\n", "a|\n\n");
    expect_split("a\r\nb", "a|\r|\n|b");
    expect_split("line\n  indented", "line|\n | indented");
}

static void test_digits_and_punctuation(void **state) {
    (void)state;
    expect_split("abc123 4567", "abc|123| 4567");
    expect_split("Hello, world!!! ...", "Hello|,| world|!!!| ...");
    expect_split("3.14", "3|.|14");
    expect_split("x=(a+b)*2;", "x|=(|a|+|b|)*|2|;");
    expect_split("\xc2\xbd \xc2\xb2 \xe2\x85\xab", "\xc2\xbd| \xc2\xb2| \xe2\x85\xab"); /* No, No, Nl */
}

static void test_unicode(void **state) {
    (void)state;
    expect_split("caf\xc3\xa9 na\xc3\xafve", "caf\xc3\xa9| na\xc3\xafve");
    expect_split("cafe\xcc\x81", "cafe|\xcc\x81");                 /* a mark (Mn) is "other" */
    expect_split("\xe6\x97\xa5\xe6\x9c\xac \xe3\x83\x86", "\xe6\x97\xa5\xe6\x9c\xac| \xe3\x83\x86");
    expect_split("a\xc2\xa0" "b", "a|\xc2\xa0|b");                 /* NBSP is white space */
    expect_split("a\xc2\xa0\xc2\xa0" "b", "a|\xc2\xa0|\xc2\xa0|b");
    expect_split("a \xe3\x80\x80" "b", "a| |\xe3\x80\x80|b");      /* ideographic space */
    expect_split("a\xc2\x85" "b", "a|\xc2\x85|b");                 /* NEL is White_Space */
    expect_split("a\x1c" "b", "a|\x1c|b");                         /* U+001C is not */
    expect_split("a\xe2\x80\x8b" "b", "a|\xe2\x80\x8b|b");         /* ZWSP (Cf) is other */
    expect_split("\xf0\x9f\x98\x80\xf0\x9f\x98\x80 x", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80| x");
}

static void test_invalid_utf8(void **state) {
    (void)state;
    expect_split("a\xff\xfe" "b", "a|\xff\xfe|b");
    expect_split(" \xff", " \xff");
    expect_split("\xc3(", "\xc3(");
    expect_split("\xe2\x82x", "\xe2\x82|x");       /* truncated sequence */
    expect_split("\xed\xa0\x80z", "\xed\xa0\x80|z"); /* surrogate */
    expect_split("\xc0\xafq", "\xc0\xaf|q");       /* overlong '/' */
    expect_split("x\xc3", "x|\xc3");               /* truncated at the end */
}

static void test_byte_map(void **state) {
    (void)state;
    /* spot values of GPT-2's bytes_to_unicode */
    assert_int_equal(ss_byte_to_unicode(0), 256);
    assert_int_equal(ss_byte_to_unicode(' '), 288);
    assert_int_equal(ss_byte_to_unicode('\n'), 266);
    assert_int_equal(ss_byte_to_unicode(0x7F), 289);
    assert_int_equal(ss_byte_to_unicode(0xA0), 322);
    assert_int_equal(ss_byte_to_unicode(0xAD), 323);
    assert_int_equal(ss_byte_to_unicode('A'), 'A');
    assert_int_equal(ss_byte_to_unicode(0xA1), 0xA1);
    assert_int_equal(ss_byte_to_unicode(0xFF), 0xFF);
    /* a bijection onto 256 code points, inverted by ss_unicode_to_byte */
    int seen[324] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = ss_byte_to_unicode((uint8_t)b);
        assert_true(cp < 324);
        assert_int_equal(seen[cp]++, 0);
        assert_int_equal(ss_unicode_to_byte(cp), b);
    }
    int n = 0;
    for (uint32_t cp = 0; cp < 400; cp++) n += ss_unicode_to_byte(cp) >= 0;
    assert_int_equal(n, 256);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contractions),
        cmocka_unit_test(test_spaces),
        cmocka_unit_test(test_newlines),
        cmocka_unit_test(test_digits_and_punctuation),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_byte_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
