/* Text streams: the lines of plain, zstd, multi-frame zstd and stdin input
 * are compared with a naive split of the original bytes; bad input gives
 * errors naming the file. */
#include "testutil.h"

#include <zstd.h>

#include "selfsup/io.h"
#include "selfsup/textstream.h"

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* zstd frames of text[0..cut) and text[cut..len) written back to back. */
static void write_zstd(const char *path, const char *text, size_t len, size_t cut) {
    size_t cap = ZSTD_compressBound(len) * 2 + 64, n = 0;
    char *z = malloc(cap);
    size_t parts[2][2] = {{0, cut}, {cut, len - cut}};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && cut == len) break;
        /* with the content checksum, as the zstd tool writes by default */
        ZSTD_CCtx *c = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        size_t r = ZSTD_compress2(c, z + n, cap - n, text + parts[i][0], parts[i][1]);
        ZSTD_freeCCtx(c);
        assert_false(ZSTD_isError(r));
        n += r;
    }
    write_bytes(path, z, n);
    free(z);
}

/* Every line of path must equal the naive split of text (lines keep '\n'). */
static void expect_lines(const char *path, const char *text, size_t len) {
    ss_error err = {0};
    ss_textstream *s;
    CHECK_OK(ss_textstream_open(&s, path, &err), &err);
    size_t pos = 0, no = 0;
    for (;;) {
        const char *line;
        size_t n;
        CHECK_OK(ss_textstream_next_line(s, &line, &n, &err), &err);
        if (n == 0) { assert_null(line); break; }
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t want = nl ? (size_t)(nl - (text + pos)) + 1 : len - pos;
        if (n != want || memcmp(line, text + pos, n) != 0)
            fail_msg("%s: line %zu differs (got %zu bytes, want %zu)", path, no + 1, n, want);
        pos += n;
        assert_int_equal(ss_textstream_line_no(s), ++no);
    }
    assert_int_equal(pos, len);
    assert_int_equal(ss_textstream_bytes_out(s), len);
    ss_textstream_close(s);
}

/* A text with short, empty, CRLF, NUL-containing and very long lines, and a
 * last line without '\n'. */
static char *sample_text(size_t *len) {
    ss_buf b = {0};
    ss_error err = {0};
    for (int i = 0; i < 20000; i++) {
        char line[128];
        int n = snprintf(line, sizeof line, "line %d: %s", i,
                         i % 5 == 0 ? "\n" : i % 5 == 1 ? "crlf\r\n" : i % 5 == 2 ? "a\0b\n" : "x y z\n");
        if (i % 5 == 2) n = (int)strlen(line) + 3; /* keep the NUL and "b\n" */
        CHECK_OK(ss_buf_append(&b, line, (size_t)n, &err), &err);
        if (i % 997 == 0) CHECK_OK(ss_buf_append(&b, "\n\n", 2, &err), &err);
        if (i == 7000) { /* a 700 KB line, longer than any read window */
            for (int k = 0; k < 100000; k++) CHECK_OK(ss_buf_append(&b, "abcdefg", 7, &err), &err);
            CHECK_OK(ss_buf_append(&b, "\n", 1, &err), &err);
        }
    }
    CHECK_OK(ss_buf_append(&b, "no newline at the end", 21, &err), &err);
    *len = b.len;
    return b.data;
}

static void test_plain_and_zstd_agree(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char plain[512], zst[512], multi[512];
    snprintf(plain, sizeof plain, "%s/t.txt", dir);
    snprintf(zst, sizeof zst, "%s/t.txt.zst", dir);
    snprintf(multi, sizeof multi, "%s/multi", dir); /* no extension: detected by magic */
    size_t len;
    char *text = sample_text(&len);
    write_bytes(plain, text, len);
    write_zstd(zst, text, len, len);
    /* the frame boundary falls in the middle of a line */
    const char *mid = memchr(text + len / 3, '\n', len - len / 3);
    write_zstd(multi, text, len, (size_t)(mid - text) - 2);
    expect_lines(plain, text, len);
    expect_lines(zst, text, len);
    expect_lines(multi, text, len);

    ss_error err = {0};
    ss_textstream *s;
    CHECK_OK(ss_textstream_open(&s, multi, &err), &err);
    assert_true(ss_textstream_is_zstd(s));
    ss_buf raw = {0};
    char chunk[4099];
    size_t got;
    do {
        CHECK_OK(ss_textstream_read(s, chunk, sizeof chunk, &got, &err), &err);
        CHECK_OK(ss_buf_append(&raw, chunk, got, &err), &err);
    } while (got);
    assert_int_equal(raw.len, len);
    assert_memory_equal(raw.data, text, len);
    ss_textstream_close(s);
    ss_buf_free(&raw);
    free(text);
}

static void test_small_cases(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char p[512], z[512];
    snprintf(p, sizeof p, "%s/s.txt", dir);
    snprintf(z, sizeof z, "%s/s.zst", dir);
    const char *cases[] = {"", "x", "\n", "one\ntwo", "crlf\r\nkept\r\n", "\n\n\n"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = strlen(cases[i]);
        write_bytes(p, cases[i], n);
        write_zstd(z, cases[i], n, n);
        expect_lines(p, cases[i], n);
        expect_lines(z, cases[i], n);
    }
    /* the CRLF line comes back with its '\r' */
    write_bytes(p, "a\r\nb", 4);
    ss_error err = {0};
    ss_textstream *s;
    const char *line;
    size_t n;
    CHECK_OK(ss_textstream_open(&s, p, &err), &err);
    CHECK_OK(ss_textstream_next_line(s, &line, &n, &err), &err);
    assert_int_equal(n, 3);
    assert_memory_equal(line, "a\r\n", 3);
    CHECK_OK(ss_textstream_next_line(s, &line, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_memory_equal(line, "b", 1);
    CHECK_OK(ss_textstream_next_line(s, &line, &n, &err), &err);
    assert_int_equal(n, 0);
    CHECK_OK(ss_textstream_next_line(s, &line, &n, &err), &err); /* stays at the end */
    assert_int_equal(n, 0);
    ss_textstream_close(s);
}

static void test_stdin(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char z[512];
    snprintf(z, sizeof z, "%s/in.zst", dir);
    const char *text = "from\nstdin\n";
    write_zstd(z, text, strlen(text), 5);
    assert_non_null(freopen(z, "rb", stdin));
    expect_lines("-", text, strlen(text));
    ss_error err = {0};
    ss_textstream *s;
    CHECK_OK(ss_textstream_open(&s, "-", &err), &err);
    assert_string_equal(ss_textstream_path(s), "<stdin>");
    ss_textstream_close(s);
}

/* Read everything; return the first error. */
static ss_status drain(const char *path, ss_error *err) {
    ss_textstream *s;
    ss_status st = ss_textstream_open(&s, path, err);
    if (st) return st;
    const char *line;
    size_t n;
    do st = ss_textstream_next_line(s, &line, &n, err);
    while (!st && n);
    ss_textstream_close(s);
    return st;
}

static void test_errors_name_the_file(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char z[512], t[512], g[512];
    snprintf(z, sizeof z, "%s/full.zst", dir);
    snprintf(t, sizeof t, "%s/cut.zst", dir);
    snprintf(g, sizeof g, "%s/garbage.zst", dir);
    size_t len;
    char *text = sample_text(&len);
    write_zstd(z, text, len, len / 2);
    ss_buf b = {0};
    ss_error err = {0};
    CHECK_OK(ss_read_file(z, &b, &err), &err);
    size_t cuts[] = {b.len - 1, b.len / 2, b.len / 4, 6};
    for (size_t i = 0; i < 4; i++) {
        write_bytes(t, b.data, cuts[i]);
        err = (ss_error){0};
        assert_int_equal(drain(t, &err), SS_ERR_FORMAT);
        assert_non_null(strstr(err.msg, t));
    }
    /* a whole first frame followed by bytes that are not a frame */
    size_t first = ZSTD_findFrameCompressedSize(b.data, b.len);
    assert_false(ZSTD_isError(first));
    CHECK_OK(ss_buf_reserve(&b, 64, &err), &err);
    memcpy(b.data + first, "this is not zstd data", 21);
    write_bytes(g, b.data, first + 21);
    assert_int_equal(drain(g, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, g));
    CHECK_OK(ss_read_file(z, &b, &err), &err); /* corrupt middle of a frame */
    memcpy(b.data + first / 2, "this is not zstd data", 21);
    write_bytes(g, b.data, b.len);
    assert_int_equal(drain(g, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, g));
    ss_buf_free(&b);
    free(text);

    char missing[512];
    snprintf(missing, sizeof missing, "%s/does-not-exist.txt", dir);
    assert_int_equal(drain(missing, &err), SS_ERR_IO);
    assert_non_null(strstr(err.msg, missing));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_zstd_agree),
        cmocka_unit_test(test_small_cases),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_errors_name_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
