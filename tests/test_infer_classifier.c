/* Loading a classifier from a directory that holds a pretrained model (no
 * classification head) is an error naming the head, read before the model
 * is freed (issue 18, item 1: the message read cfg->head from the freed
 * model; the ASan build of this test caught it). A flipped byte in the
 * tensor data of a classifier or of an ELECTRA generator is an error naming
 * the file (issue 18, item 3: it loaded silently). */
#include <stdio.h>

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

/* Flip one bit of the byte at offset OFF (negative: from the end) of PATH. */
static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, off < 0 ? SEEK_END : SEEK_SET), 0);
    int c = fgetc(f);
    assert_true(c != EOF);
    assert_int_equal(fseek(f, -1, SEEK_CUR), 0);
    fputc(c ^ 0x04, f);
    assert_int_equal(fclose(f), 0);
}

static void expect_corrupt(ss_status st, const ss_error *err, const char *path) {
    if (st != SS_ERR_FORMAT || !strstr(err->msg, path) || !strstr(err->msg, "does not match its checksum"))
        fail_msg("expected a checksum error naming %s, got %s: %s", path, ss_status_name(st), err->msg);
}

static void test_corrupted_tensor_bytes_are_detected(void **state) {
    (void)state;
    ss_error err = {0};
    char dir[600], path[700];
    /* a classifier: its last tensor is the head's output bias */
    ss_model_config c = {.kind = SS_ENCODER, .vocab_size = 300, .n_layer = 1, .d_model = 16, .n_head = 2,
                         .d_ff = 32, .max_seq = 16, .head = SS_HEAD_CLS, .n_classes = 3, .pooler = 1};
    ss_model *m, *back;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, 1);
    snprintf(dir, sizeof dir, "%s/cls", test_tmpdir());
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(ss_model_save(m, dir, NULL, 0, &err), &err);
    CHECK_OK(ss_model_load(&back, dir, &err), &err); /* loads before the damage */
    ss_model_free(back);
    flip_byte(path, -1);
    ss_classifier cl;
    expect_corrupt(ss_classifier_load(&cl, dir, &err), &err, path);
    ss_model_free(m);

    /* an ELECTRA discriminator with its generator: the generator's tensors
     * come last in the file, so the last byte is a generator value */
    ss_model_config d = {.kind = SS_ENCODER, .vocab_size = 300, .n_layer = 1, .d_model = 16, .n_head = 2,
                         .d_ff = 32, .max_seq = 16, .head = SS_HEAD_DISC};
    ss_model_config g = {.kind = SS_ENCODER, .vocab_size = 300, .n_layer = 1, .d_model = 8, .n_head = 2,
                         .d_ff = 16, .max_seq = 16, .head = SS_HEAD_MLM, .d_embed = 16};
    ss_model *gen, *gen2;
    CHECK_OK(ss_model_create(&m, &d, &err), &err);
    CHECK_OK(ss_model_create_shared(&gen, &g, m, &err), &err);
    ss_model_init_weights(m, 2);
    ss_model_init_weights(gen, 3);
    snprintf(dir, sizeof dir, "%s/rtd", test_tmpdir());
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(ss_model_save_with(m, gen, dir, NULL, 0, &err), &err);
    CHECK_OK(ss_model_load_generator(m, dir, &gen2, &err), &err);
    ss_model_free(gen2);
    flip_byte(path, -1);
    expect_corrupt(ss_model_load_generator(m, dir, &gen2, &err), &err, path);
    ss_model_free(gen);
    ss_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretrained_model_is_not_a_classifier),
        cmocka_unit_test(test_corrupted_tensor_bytes_are_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
