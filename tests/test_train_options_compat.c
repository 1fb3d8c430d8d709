/* Runs saved by earlier versions of selfsup resume: the options object of a
 * trainer_state.json, as two earlier versions wrote it (tests/golden/options/,
 * taken from a pretraining run and an interrupted fine-tuning run of those
 * versions: 517f985, the first release of --precision, and 7422e41), loads
 * with today's tables. An option row added since must be listed in
 * added_later (src/train/optable.c) with the value the old runs had; one
 * that is not makes --resume of every older run fail with "the saved options
 * lack ..." (as --unfreeze-every did before its line there), and fails this
 * test. */
#include <cJSON.h>

#include "testutil.h"

#include "selfsup/finetune.h"
#include "selfsup/io.h"
#include "selfsup/train.h"

static char *golden(const char *name) {
    char path[512];
    const char *dir = getenv("SS_GOLDEN_DIR");
    snprintf(path, sizeof path, "%s/options/%s.json", dir && *dir ? dir : "tests/golden", name);
    ss_buf b = {0};
    ss_error err = {0};
    if (ss_read_file(path, &b, &err)) fail_msg("%s (run the tests from the source tree)", err.msg);
    char *s = malloc(b.len + 1);
    assert_non_null(s);
    memcpy(s, b.data, b.len);
    s[b.len] = 0;
    ss_buf_free(&b);
    return s;
}

/* The JSON text without member `key` (a row an old version did save). */
static char *without(const char *json, const char *key) {
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(j, key));
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void pretrain_version(const char *name) {
    char *json = golden(name), *keep = NULL;
    ss_train_opts o;
    ss_train_opts_defaults(&o);
    o.causal_share = 0.5; /* the rows below must come from the file or from added_later, not stay as set */
    int64_t total = 0;
    ss_error err = {0};
    CHECK_OK(ss_train_opts_from_json(&o, &total, json, name, &keep, &err), &err);
    assert_int_equal(o.objective, SS_OBJ_MLM);
    assert_int_equal(o.seq, 64);
    assert_string_equal(o.data_dir, "shards");
    assert_float_equal(o.lr, 1e-3, 1e-12);
    assert_int_equal(total, 20);
    assert_float_equal(o.causal_share, 0.0625, 1e-12); /* before the hybrid objective: its default */
    free(keep);
    keep = NULL;
    /* a row the old version saved is still required: the test can fail */
    char *cut = without(json, "lr");
    ss_train_opts_defaults(&o);
    assert_int_equal(ss_train_opts_from_json(&o, &total, cut, name, &keep, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "'lr'"));
    free(keep);
    free(cut);
    free(json);
}

static void finetune_version(const char *name, double lr, double layer_decay) {
    char *json = golden(name), *keep = NULL;
    ss_finetune_opts o;
    ss_finetune_opts_defaults(&o);
    o.unfreeze_every = 7;
    o.student_epochs = 9;
    ss_error err = {0};
    CHECK_OK(ss_finetune_opts_from_json(&o, json, name, &keep, &err), &err);
    assert_string_equal(o.train_path, "sst2/train.tsv");
    assert_int_equal(o.epochs, 5);
    assert_int_equal(o.max_seq, 64);
    assert_float_equal(o.lr, lr, 1e-12);
    assert_float_equal(o.layer_decay, layer_decay, 1e-12);
    assert_int_equal(o.unfreeze_every, 0); /* before gradual unfreezing: every tensor trained from step 0 */
    assert_int_equal(o.student_epochs, 0);
    free(keep);
    keep = NULL;
    char *cut = without(json, "max_seq");
    ss_finetune_opts_defaults(&o);
    assert_int_equal(ss_finetune_opts_from_json(&o, cut, name, &keep, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "'max_seq'"));
    free(keep);
    free(cut);
    free(json);
}

static void test_pretrain_517f985(void **s) { (void)s, pretrain_version("pretrain-517f985"); }
static void test_pretrain_7422e41(void **s) { (void)s, pretrain_version("pretrain-7422e41"); }
/* 517f985's defaults: lr 1e-4, no layer decay (saved before --layer-decay existed: 1) */
static void test_finetune_517f985(void **s) { (void)s, finetune_version("finetune-517f985", 1e-4, 1); }
static void test_finetune_7422e41(void **s) { (void)s, finetune_version("finetune-7422e41", 5e-4, 0.8); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretrain_517f985),
        cmocka_unit_test(test_pretrain_7422e41),
        cmocka_unit_test(test_finetune_517f985),
        cmocka_unit_test(test_finetune_7422e41),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
