/* The checked path join: a path that does not fit is an error naming it,
 * never a silently truncated file name; and the loaders built on it. */
#include "testutil.h"

#include "selfsup/generate.h"
#include "selfsup/model.h"
#include "selfsup/path.h"

static void test_join(void **state) {
    (void)state;
    char out[16];
    ss_error err = {0};
    assert_int_equal(ss_path_join(out, sizeof out, "run", SS_RUN_CONFIG, &err), SS_OK);
    assert_string_equal(out, "run/config.json");
    /* exactly full: 15 bytes + NUL */
    assert_int_equal(ss_path_join(out, sizeof out, "abcd", "0123456789", &err), SS_OK);
    assert_string_equal(out, "abcd/0123456789");
}

static void test_too_long_is_error(void **state) {
    (void)state;
    char out[16];
    ss_error err = {0};
    assert_int_equal(ss_path_join(out, sizeof out, "abcde", "0123456789", &err), SS_ERR_ARG);
    assert_string_equal(out, ""); /* never a truncated name */
    assert_non_null(strstr(err.msg, "path too long"));
    assert_non_null(strstr(err.msg, "abcde/0123456789"));
    assert_int_equal(ss_path_join(out, sizeof out, "abcde", "0123456789", NULL), SS_ERR_ARG);
}

/* A directory name that fits SS_PATH_MAX but not with a file name after it:
 * the model loaders say so instead of opening a truncated name. */
static void test_long_run_dir(void **state) {
    (void)state;
    char dir[SS_PATH_MAX];
    memset(dir, 'd', sizeof dir - 6);
    dir[sizeof dir - 6] = '\0';
    ss_error err = {0};
    ss_model_config c;
    assert_int_equal(ss_model_load_config(&c, dir, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "path too long"));
    assert_non_null(strstr(err.msg, "/" SS_RUN_CONFIG));
    ss_generator *g = NULL;
    err = (ss_error){0};
    assert_int_equal(ss_generator_load(&g, dir, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "path too long"));
    assert_null(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_too_long_is_error),
        cmocka_unit_test(test_long_run_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
