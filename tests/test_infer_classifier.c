/* Loading a classifier from a directory that holds a pretrained model (no
 * classification head) is an error naming the head, read before the model
 * is freed (issue 18, item 1: the message read cfg->head from the freed
 * model; the ASan build of this test caught it). */
#include "testutil.h"

#include "selfsup/infer.h"
#include "selfsup/model.h"

static void test_pretrained_model_is_not_a_classifier(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model_config c = {.kind = SS_DECODER, .vocab_size = 300, .n_layer = 1, .d_model = 16, .n_head = 2,
                         .d_ff = 32, .max_seq = 16, .head = SS_HEAD_LM};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, 1);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/run", test_tmpdir());
    CHECK_OK(ss_model_save(m, dir, NULL, 0, &err), &err);
    ss_model_free(m);
    ss_classifier cl;
    assert_int_equal(ss_classifier_load(&cl, dir, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "not a classifier"));
    assert_non_null(strstr(err.msg, "head 'lm'"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretrained_model_is_not_a_classifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
