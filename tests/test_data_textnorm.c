/* Text normalization (src/data/textnorm.c): Penn Treebank detokenization on
 * the forms of SST-2's sentences, idempotence, in-place safety (the result is
 * never longer), none leaves the text alone, and the names parse. */
#include "testutil.h"

#include "selfsup/textnorm.h"

static void expect(const char *in, const char *want) {
    char *s = strdup(in);
    assert_non_null(s);
    ss_text_normalize(s, SS_TEXT_NORM_PTB);
    if (strcmp(s, want) != 0) fail_msg("ptb(\"%s\") = \"%s\", want \"%s\"", in, s, want);
    ss_text_normalize(s, SS_TEXT_NORM_PTB); /* normalized text stays as it is */
    if (strcmp(s, want) != 0) fail_msg("ptb twice on \"%s\" = \"%s\", want \"%s\"", in, s, want);
    free(s);
}

static void test_ptb_sst2_forms(void **state) {
    (void)state;
    /* SST-2 train/dev sentences as published */
    expect("a stirring , funny and finally transporting re-imagining of beauty and the beast and 1930s horror films",
           "a stirring, funny and finally transporting re-imagining of beauty and the beast and 1930s horror films");
    expect("apparently reassembled from the cutting-room floor of any given daytime soap .",
           "apparently reassembled from the cutting-room floor of any given daytime soap.");
    expect("it 's a charming and often affecting journey . ", "it's a charming and often affecting journey.");
    expect("it does n't work , and ca n't , and wo n't .", "it doesn't work, and can't, and won't.");
    expect("you 're , we 've , they 'll , i 'd , i 'm", "you're, we've, they'll, i'd, i'm");
    expect("-lrb- the film -rrb- is -lsb- not -rsb- -lcb- bad -rcb-", "(the film) is [not] {bad}");
    expect("-LRB- upper case -RRB-", "(upper case)");
    expect("the `` good '' parts , the ` bad ' ones", "the \"good\" parts, the 'bad' ones");
    expect("the actors ' work", "the actors' work");
    expect("a writer\\/director 's \\*great\\* film", "a writer/director's *great* film");
    expect("it costs $ 5 , or 10 % more ... maybe", "it costs $5, or 10% more... maybe");
    expect("what ? no ! yes ; so : fine", "what? no! yes; so: fine");
    expect("a -- b - c", "a -- b - c");
    expect("'70s music and 's alone", "'70s music and's alone");
    expect("  leading   and trailing  ", "leading and trailing");
    expect("tab\tseparated", "tab separated");
    expect("", "");
    expect("   ", "");
    expect(".", ".");
    expect("-lrb-", "(");
}

static void test_none_and_names(void **state) {
    (void)state;
    char s[] = "it 's , -lrb- x -rrb-";
    ss_text_normalize(s, SS_TEXT_NORM_NONE);
    assert_string_equal(s, "it 's , -lrb- x -rrb-");
    ss_text_norm n = SS_TEXT_NORM_NONE;
    ss_error err = {0};
    assert_int_equal(ss_text_norm_parse("ptb", &n, &err), SS_OK);
    assert_int_equal(n, SS_TEXT_NORM_PTB);
    assert_int_equal(ss_text_norm_parse("none", &n, &err), SS_OK);
    assert_int_equal(n, SS_TEXT_NORM_NONE);
    assert_int_equal(ss_text_norm_parse("PTB", &n, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "choices: none, ptb"));
    assert_int_equal(ss_text_norm_parse(NULL, &n, &err), SS_ERR_ARG);
}

/* Random token soups of the special forms and words: the result is never
 * longer (so in place is safe) and has no double or edge spaces. (A second
 * pass may change such soups: "' '" becomes "''", which reads as a double
 * quote; on sentences as published it changes nothing, see above.) */
static void test_random_soups(void **state) {
    (void)state;
    static const char *const toks[] = {"a", "film", ",", ".", "'s", "n't", "ca", "-lrb-", "-rrb-", "``", "''", "`",
                                       "'", "$", "%", "...", "\\/", "x\\/y", "--", "-", "(", ")", "#"};
    uint64_t seed = 7;
    for (int it = 0; it < 2000; it++) {
        char in[512] = "", *p = in;
        int n = (int)(seed % 12);
        for (int i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            const char *t = toks[(seed >> 33) % (sizeof toks / sizeof *toks)];
            p += sprintf(p, "%s%s", (seed >> 20) % 5 == 0 ? "  " : " ", t);
        }
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        char *s = strdup(in);
        ss_text_normalize(s, SS_TEXT_NORM_PTB);
        assert_true(strlen(s) <= strlen(in));
        assert_null(strstr(s, "  "));
        assert_true(s[0] != ' ' && (!*s || s[strlen(s) - 1] != ' '));
        free(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ptb_sst2_forms),
        cmocka_unit_test(test_none_and_names),
        cmocka_unit_test(test_random_soups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
