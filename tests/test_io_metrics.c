/* metrics.jsonl: lines parsed back with cJSON (numbers exact, non-finite as
 * null, strings escaped and invalid UTF-8 replaced), flushing per line,
 * append vs fresh start, and truncation for a resumed run. */
#include <cjson/cJSON.h>
#include <math.h>

#include "testutil.h"

#include "selfsup/io.h"
#include "selfsup/metrics.h"

static char *slurp(const char *path) {
    ss_buf b = {0};
    ss_error err = {0};
    CHECK_OK(ss_read_file(path, &b, &err), &err);
    return b.data;
}

/* Split into lines (each must end with '\n'); returns the count. */
static int lines_of(char *text, char **lines, int max) {
    int n = 0;
    for (char *s = text; *s;) {
        char *nl = strchr(s, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(n < max);
        lines[n++] = s;
        s = nl + 1;
    }
    return n;
}

static void write_line(ss_metrics *m, const ss_metric_field *f, size_t n) {
    ss_error err = {0};
    CHECK_OK(ss_metrics_write(m, f, n, &err), &err);
}

static void test_values_round_trip(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", test_tmpdir());
    ss_metrics *m;
    ss_error err = {0};
    CHECK_OK(ss_metrics_open(&m, path, 0, &err), &err);
    const double nums[] = {0.1, 1.0 / 3, 3.0, -0.0, 1e-300, 6.02214076e23, 2.5e-8, -1234.5};
    const char *strs[] = {"plain", "quote\" back\\slash", "nl\n tab\t cr\r ctl\x01\x1f",
                          "\xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80", "", "a/b"};
    ss_metric_field f[5];
    for (int i = 0; i < 8; i++) {
        f[0] = SS_MF_I("step", i * 100);
        f[1] = SS_MF_D("loss", nums[i]);
        f[2] = SS_MF_S("note", strs[i % 6]);
        write_line(m, f, 3);
    }
    const ss_metric_field special[] = {
        SS_MF_I("step", INT64_MAX), SS_MF_I("min", INT64_MIN), SS_MF_D("nan", NAN),
        SS_MF_D("inf", INFINITY), SS_MF_D("ninf", -INFINITY), SS_MF_S("bad", "x\xff\xc3(y\xed\xa0\x80z"),
        SS_MF_S("null", NULL), SS_MF_S("ke\"y", "v"),
    };
    write_line(m, special, sizeof special / sizeof *special);
    const ss_metric_field empty[1] = {SS_MF_I("x", 0)};
    write_line(m, empty, 0);
    CHECK_OK(ss_metrics_close(m, &err), &err);

    char *text = slurp(path), *lines[16];
    assert_int_equal(lines_of(text, lines, 16), 10);
    for (int i = 0; i < 8; i++) {
        cJSON *o = cJSON_Parse(lines[i]);
        if (!o) fail_msg("line %d is not JSON: %s", i + 1, lines[i]);
        assert_int_equal(cJSON_GetArraySize(o), 3);
        assert_string_equal(o->child->string, "step");
        assert_true(cJSON_GetObjectItem(o, "step")->valuedouble == i * 100);
        double d = cJSON_GetObjectItem(o, "loss")->valuedouble;
        if (d != nums[i]) fail_msg("line %d: %.17g read back as %.17g (%s)", i + 1, nums[i], d, lines[i]);
        assert_string_equal(cJSON_GetObjectItem(o, "note")->valuestring, strs[i % 6]);
        cJSON_Delete(o);
    }
    assert_non_null(strstr(lines[0], "\"loss\":0.1,")); /* shortest form, not 0.10000000000000001 */
    assert_non_null(strstr(lines[2], "\"loss\":3,"));
    /* 64-bit integers are written exactly (cJSON itself reads doubles). */
    assert_non_null(strstr(lines[8], "\"step\":9223372036854775807,\"min\":-9223372036854775808,"));
    cJSON *o = cJSON_Parse(lines[8]);
    assert_non_null(o);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "nan")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "inf")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "ninf")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "null")));
    /* Each invalid byte becomes U+FFFD (EF BF BD), valid text is kept. */
    assert_string_equal(cJSON_GetObjectItem(o, "bad")->valuestring,
                        "x\xef\xbf\xbd\xef\xbf\xbd(y\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
    assert_string_equal(cJSON_GetObjectItem(o, "ke\"y")->valuestring, "v");
    cJSON_Delete(o);
    assert_string_equal(lines[9], "{}");
    free(text);
}

static void test_flush_and_append(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", test_tmpdir());
    ss_metrics *m;
    ss_error err = {0};
    CHECK_OK(ss_metrics_open(&m, path, 1, &err), &err); /* append creates a missing file */
    write_line(m, (ss_metric_field[]){SS_MF_I("step", 1)}, 1);
    char *text = slurp(path); /* visible before close: flushed per line */
    assert_string_equal(text, "{\"step\":1}\n");
    free(text);
    CHECK_OK(ss_metrics_close(m, &err), &err);

    CHECK_OK(ss_metrics_open(&m, path, 1, &err), &err);
    write_line(m, (ss_metric_field[]){SS_MF_I("step", 2)}, 1);
    CHECK_OK(ss_metrics_close(m, &err), &err);
    text = slurp(path);
    assert_string_equal(text, "{\"step\":1}\n{\"step\":2}\n");
    free(text);

    CHECK_OK(ss_metrics_open(&m, path, 0, &err), &err); /* fresh start */
    write_line(m, (ss_metric_field[]){SS_MF_I("step", 3)}, 1);
    CHECK_OK(ss_metrics_close(m, &err), &err);
    text = slurp(path);
    assert_string_equal(text, "{\"step\":3}\n");
    free(text);

    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/metrics.jsonl", test_tmpdir());
    assert_int_equal(ss_metrics_open(&m, bad, 1, &err), SS_ERR_IO);
    assert_non_null(strstr(err.msg, bad));
    assert_int_equal(ss_metrics_close(NULL, &err), SS_OK);
}

static void put(const char *path, const char *text) {
    ss_error err = {0};
    CHECK_OK(ss_write_file_atomic(path, text, strlen(text), &err), &err);
}

static void expect_file(const char *path, const char *want) {
    char *got = slurp(path);
    assert_string_equal(got, want);
    free(got);
}

static void test_truncate_after_step(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", test_tmpdir());
    ss_error err = {0};
    const char *log = "{\"event\":\"start\",\"seed\":1}\n"
                      "{\"step\":0,\"loss\":9.1}\n"
                      "{\"step\":10,\"loss\":5.5}\n"
                      "\n"
                      "{\"step\":20,\"loss\":4.25,\"eval\":true}\n"
                      "{\"step\":30,\"loss\":3.5}\n"
                      "{\"event\":\"stop\"}\n"
                      "{\"step\":40,\"lo";
    put(path, log);
    CHECK_OK(ss_metrics_truncate_after_step(path, 20, &err), &err);
    expect_file(path, "{\"event\":\"start\",\"seed\":1}\n{\"step\":0,\"loss\":9.1}\n{\"step\":10,\"loss\":5.5}\n"
                      "\n{\"step\":20,\"loss\":4.25,\"eval\":true}\n");
    CHECK_OK(ss_metrics_truncate_after_step(path, 20, &err), &err); /* idempotent */
    CHECK_OK(ss_metrics_truncate_after_step(path, 1000, &err), &err);
    expect_file(path, "{\"event\":\"start\",\"seed\":1}\n{\"step\":0,\"loss\":9.1}\n{\"step\":10,\"loss\":5.5}\n"
                      "\n{\"step\":20,\"loss\":4.25,\"eval\":true}\n");
    CHECK_OK(ss_metrics_truncate_after_step(path, 5, &err), &err);
    expect_file(path, "{\"event\":\"start\",\"seed\":1}\n{\"step\":0,\"loss\":9.1}\n");
    CHECK_OK(ss_metrics_truncate_after_step(path, -1, &err), &err);
    expect_file(path, "{\"event\":\"start\",\"seed\":1}\n");

    /* A complete last line without its newline is kept and terminated, so the
     * next appended line starts on a line of its own. */
    put(path, "{\"step\":1}\n{\"step\":2}");
    CHECK_OK(ss_metrics_truncate_after_step(path, 5, &err), &err);
    expect_file(path, "{\"step\":1}\n{\"step\":2}\n");
    put(path, "{\"step\":1}\n{\"step\":2} x");
    CHECK_OK(ss_metrics_truncate_after_step(path, 5, &err), &err);
    expect_file(path, "{\"step\":1}\n");

    /* Damage before the end is an error and leaves the file untouched. */
    const char *broken = "{\"step\":1}\n{\"step\":2,,}\n{\"step\":3}\n";
    put(path, broken);
    assert_int_equal(ss_metrics_truncate_after_step(path, 1, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "line 2: not a JSON object"));
    expect_file(path, broken);
    put(path, "{\"step\":1}\n{\"step\":\"2\"}\n");
    assert_int_equal(ss_metrics_truncate_after_step(path, 1, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "line 2: \"step\" is not an integer"));
    put(path, "{\"step\":1.5}\n");
    assert_int_equal(ss_metrics_truncate_after_step(path, 1, &err), SS_ERR_FORMAT);

    char missing[600];
    snprintf(missing, sizeof missing, "%s.none", path);
    CHECK_OK(ss_metrics_truncate_after_step(missing, 3, &err), &err);
    assert_false(ss_file_exists(missing));
}

/* The resume cycle end to end: write, truncate, append through the API. */
static void test_resume_cycle(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", test_tmpdir());
    ss_error err = {0};
    ss_metrics *m;
    CHECK_OK(ss_metrics_open(&m, path, 0, &err), &err);
    for (int s = 1; s <= 50; s++)
        write_line(m, (ss_metric_field[]){SS_MF_I("step", s), SS_MF_D("loss", 10.0 / s)}, 2);
    CHECK_OK(ss_metrics_close(m, &err), &err);
    CHECK_OK(ss_metrics_truncate_after_step(path, 30, &err), &err);
    CHECK_OK(ss_metrics_open(&m, path, 1, &err), &err);
    for (int s = 31; s <= 40; s++)
        write_line(m, (ss_metric_field[]){SS_MF_I("step", s), SS_MF_D("loss", 10.0 / s)}, 2);
    CHECK_OK(ss_metrics_close(m, &err), &err);
    char *text = slurp(path), *lines[64];
    int n = lines_of(text, lines, 64);
    assert_int_equal(n, 40);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_Parse(lines[i]);
        assert_non_null(o);
        assert_true(cJSON_GetObjectItem(o, "step")->valuedouble == i + 1);
        assert_true(cJSON_GetObjectItem(o, "loss")->valuedouble == 10.0 / (i + 1));
        cJSON_Delete(o);
    }
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_round_trip),
        cmocka_unit_test(test_flush_and_append),
        cmocka_unit_test(test_truncate_after_step),
        cmocka_unit_test(test_resume_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
