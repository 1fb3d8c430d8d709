/* Corpus manifests and fetching, against the real data mirror: every manifest
 * describes exactly the mirror's files (size and sha256 recomputed here),
 * every corpus fetches from the mirror, kjv regenerates bit-exactly from the
 * Debian bible program, and corrupt / missing / malformed inputs fail with
 * clear errors and leave nothing behind. No network: downloads use file://. */
#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>

#include "selfsup/corpus.h"
#include "selfsup/io.h"

static const char *const expected_corpora[] = {"gpt2-tokenizer", "imdb", "kjv", "sst2",
                                               "tinyshakespeare", "wikitext-2"};
enum { N_CORPORA = sizeof expected_corpora / sizeof *expected_corpora };

static const char *corpora_dir(void) {
    struct stat sb;
    if (stat("corpora", &sb) != 0 || !S_ISDIR(sb.st_mode))
        fail_msg("corpora/ not found: run this test from the repository root (make check does)");
    return "corpora";
}

/* The mirror directory, failing with instructions when it is not set up. */
static const char *mirror_dir(void) {
    test_data_path("tinyshakespeare", "input.txt");
    return getenv("SELFSUP_DATA_MIRROR");
}

static size_t count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void sha_of(const char *path, char hex[65]) {
    ss_error err = {0};
    CHECK_OK(ss_sha256_file(path, hex, &err), &err);
}

static void write_text(const char *path, const char *text) {
    ss_error err = {0};
    CHECK_OK(ss_write_file_atomic(path, text, strlen(text), &err), &err);
}

/* Log callback collecting the lines, to check what fetch says it did. */
typedef struct {
    char text[4096];
} logbuf;
static void collect(void *ctx, const char *line) {
    logbuf *l = ctx;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s\n", line);
}

static void test_manifests_describe_the_mirror(void **state) {
    (void)state;
    const char *mirror = mirror_dir();
    char **names;
    size_t n;
    ss_error err = {0};
    CHECK_OK(ss_corpus_list(corpora_dir(), &names, &n, &err), &err);
    assert_int_equal(n, N_CORPORA);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(names[i], expected_corpora[i]);
        ss_corpus_manifest m;
        CHECK_OK(ss_corpus_load(&m, corpora_dir(), names[i], &err), &err);
        assert_true(*m.description && *m.license && *m.homepage);
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", mirror, m.name);
        /* The manifest lists exactly the mirror's files, with their real size and hash. */
        assert_int_equal(count_entries(dir), m.n_files);
        for (size_t j = 0; j < m.n_files; j++) {
            const ss_corpus_file *f = &m.files[j];
            assert_int_equal(strlen(f->sha256), 64);
            assert_true(f->size > 0);
            const char *p = test_data_path(m.name, f->name);
            struct stat sb;
            assert_int_equal(stat(p, &sb), 0);
            assert_int_equal((uint64_t)sb.st_size, f->size);
            char hex[65];
            sha_of(p, hex);
            if (strcmp(hex, f->sha256) != 0)
                fail_msg("%s/%s: manifest sha256 %s but the mirror file has %s", m.name, f->name,
                         f->sha256, hex);
            /* Every file has some way to be obtained besides the mirror, or says where it came from. */
            assert_true(f->url || f->generate || f->origin);
        }
        ss_corpus_free(&m);
    }
    ss_corpus_list_free(names, n);
}

static void test_fetch_every_corpus_from_mirror(void **state) {
    (void)state;
    const char *mirror = mirror_dir();
    char dest[256];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_fetch_opts o = {.dest_dir = dest, .mirror_dir = mirror};
    ss_error err = {0};
    for (size_t i = 0; i < N_CORPORA; i++) {
        ss_corpus_manifest m;
        CHECK_OK(ss_corpus_load(&m, corpora_dir(), expected_corpora[i], &err), &err);
        logbuf log = {""};
        CHECK_OK(ss_corpus_fetch(&m, &o, collect, &log, &err), &err);
        for (size_t j = 0; j < m.n_files; j++) {
            char got[4096], hex[65], want[65];
            snprintf(got, sizeof got, "%s/%s/%s", dest, m.name, m.files[j].name);
            sha_of(got, hex);
            sha_of(test_data_path(m.name, m.files[j].name), want);
            assert_string_equal(hex, want);
            char expect_line[256];
            snprintf(expect_line, sizeof expect_line, "%s: copied from mirror, sha256 ok\n",
                     m.files[j].name);
            assert_non_null(strstr(log.text, expect_line));
        }
        /* Only the files: no temp files left over. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", dest, m.name);
        assert_int_equal(count_entries(dir), m.n_files);
        /* A second fetch keeps the verified files. */
        logbuf again = {""};
        CHECK_OK(ss_corpus_fetch(&m, &o, collect, &again, &err), &err);
        char expect_line[256];
        snprintf(expect_line, sizeof expect_line, "%s: verified (cached)\n", m.files[0].name);
        assert_non_null(strstr(again.text, expect_line));
        ss_corpus_free(&m);
    }
}

/* A fake mirror in tmp holding tinyshakespeare/input.txt with one byte changed
 * (or no file at all when corrupt_at < 0). */
static const char *fake_mirror(long corrupt_at) {
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char sub[512], path[600];
    snprintf(sub, sizeof sub, "%s/tinyshakespeare", dir);
    ss_error err = {0};
    CHECK_OK(ss_mkdir_p(sub, &err), &err);
    if (corrupt_at < 0) return dir;
    ss_buf b = {0};
    CHECK_OK(ss_read_file(test_data_path("tinyshakespeare", "input.txt"), &b, &err), &err);
    b.data[corrupt_at] ^= 0x20; /* same size, different bytes */
    snprintf(path, sizeof path, "%s/input.txt", sub);
    CHECK_OK(ss_write_file_atomic(path, b.data, b.len, &err), &err);
    ss_buf_free(&b);
    return dir;
}

static void expect_checksum_error_and_no_file(const ss_fetch_opts *o) {
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "tinyshakespeare", &err), &err);
    assert_int_equal(ss_corpus_fetch(&m, o, NULL, NULL, &err), SS_ERR_CHECKSUM);
    assert_non_null(strstr(err.msg, "input.txt"));
    assert_non_null(strstr(err.msg, "sha256"));
    assert_non_null(strstr(err.msg, m.files[0].sha256)); /* the expected hash is named */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tinyshakespeare", o->dest_dir);
    assert_int_equal(count_entries(dir), 0);
    ss_corpus_free(&m);
}

static void test_corrupt_mirror_file_is_rejected(void **state) {
    (void)state;
    char dest[256];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_fetch_opts o = {.dest_dir = dest, .mirror_dir = fake_mirror(1000)};
    expect_checksum_error_and_no_file(&o);
}

static void test_missing_mirror_file_is_explained(void **state) {
    (void)state;
    char dest[256];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_fetch_opts o = {.dest_dir = dest, .mirror_dir = fake_mirror(-1)};
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "tinyshakespeare", &err), &err);
    assert_int_equal(ss_corpus_fetch(&m, &o, NULL, NULL, &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "tinyshakespeare/input.txt"));
    assert_non_null(strstr(err.msg, "SELFSUP_DATA_MIRROR"));
    ss_corpus_free(&m);
}

/* The curl path, without network: file:// URLs. */
static void test_download_via_base_url(void **state) {
    (void)state;
    char dest[256], base[600];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    char *real = realpath(mirror_dir(), NULL);
    assert_non_null(real);
    snprintf(base, sizeof base, "file://%s/", real);
    free(real);
    ss_fetch_opts o = {.dest_dir = dest, .base_url = base};
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "gpt2-tokenizer", &err), &err);
    logbuf log = {""};
    CHECK_OK(ss_corpus_fetch(&m, &o, collect, &log, &err), &err);
    for (size_t j = 0; j < m.n_files; j++) {
        char got[600], hex[65];
        snprintf(got, sizeof got, "%s/gpt2-tokenizer/%s", dest, m.files[j].name);
        sha_of(got, hex);
        assert_string_equal(hex, m.files[j].sha256);
    }
    assert_non_null(strstr(log.text, "vocab.bpe: downloaded from file://"));
    ss_corpus_free(&m);
    /* A corrupt download is rejected too. */
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    snprintf(base, sizeof base, "file://%s", fake_mirror(5));
    ss_fetch_opts bad = {.dest_dir = dest, .base_url = base};
    expect_checksum_error_and_no_file(&bad);
    /* And a missing one is curl's error, named. */
    snprintf(base, sizeof base, "file://%s", fake_mirror(-1));
    ss_fetch_opts missing = {.dest_dir = dest, .base_url = base};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "tinyshakespeare", &err), &err);
    assert_int_equal(ss_corpus_fetch(&m, &missing, NULL, NULL, &err), SS_ERR_EXTERNAL);
    assert_non_null(strstr(err.msg, "curl"));
    assert_non_null(strstr(err.msg, "input.txt"));
    ss_corpus_free(&m);
}

static void test_stale_cached_file_is_replaced(void **state) {
    (void)state;
    char dest[256], path[512];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    snprintf(path, sizeof path, "%s/tinyshakespeare", dest);
    ss_error err = {0};
    CHECK_OK(ss_mkdir_p(path, &err), &err);
    snprintf(path, sizeof path, "%s/tinyshakespeare/input.txt", dest);
    write_text(path, "not shakespeare\n");
    ss_fetch_opts o = {.dest_dir = dest, .mirror_dir = mirror_dir()};
    ss_corpus_manifest m;
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "tinyshakespeare", &err), &err);
    CHECK_OK(ss_corpus_fetch(&m, &o, NULL, NULL, &err), &err);
    char hex[65];
    sha_of(path, hex);
    assert_string_equal(hex, m.files[0].sha256);
    ss_corpus_free(&m);
}

static void test_converted_file_without_mirror_needs_one(void **state) {
    (void)state;
    char dest[256];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_fetch_opts o = {.dest_dir = dest};
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "wikitext-2", &err), &err);
    assert_int_equal(ss_corpus_fetch(&m, &o, NULL, NULL, &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "wiki.test.raw"));
    assert_non_null(strstr(err.msg, "converted"));
    assert_non_null(strstr(err.msg, "SELFSUP_DATA_MIRROR"));
    ss_corpus_free(&m);
}

/* A temp corpora dir with one manifest NAME.json holding text. */
static const char *manifest_dir_with(const char *name, const char *text) {
    static char dir[256];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    write_text(path, text);
    return dir;
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEAD "{\"name\":\"x\",\"description\":\"d\",\"license\":\"l\",\"homepage\":\"h\","

static void expect_format_error(const char *json, const char *field) {
    const char *dir = manifest_dir_with("x", json);
    ss_corpus_manifest m;
    ss_error err = {0};
    assert_int_equal(ss_corpus_load(&m, dir, "x", &err), SS_ERR_FORMAT);
    if (!strstr(err.msg, "x.json") || !strstr(err.msg, field))
        fail_msg("error for %s should name x.json and '%s', got: %s", json, field, err.msg);
    assert_null(m.files);
}

static void test_malformed_manifests(void **state) {
    (void)state;
    expect_format_error("{\"name\": \"x\",", "line 1");
    expect_format_error("{\"name\": \"x\"\n\n  \"files\": []}", "line 3");
    expect_format_error("[1, 2]", "top level");
    expect_format_error("{\"name\":\"y\",\"description\":\"d\",\"license\":\"l\",\"homepage\":\"h\","
                        "\"files\":[{\"name\":\"a\",\"size\":1,\"sha256\":\"" SHA_A "\"}]}", "name");
    expect_format_error("{\"name\":\"x\",\"license\":\"l\",\"homepage\":\"h\",\"files\":[]}",
                        "description");
    expect_format_error(HEAD "\"files\":[]}", "files");
    expect_format_error(HEAD "\"files\":{}}", "files");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1}]}", "files[0].sha256");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1,\"sha256\":\"abc\"}]}",
                        "files[0].sha256");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1,\"sha256\":\"" SHA_A "\"},"
                        "{\"name\":\"b\",\"size\":\"12\",\"sha256\":\"" SHA_A "\"}]}",
                        "files[1].size");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":-1,\"sha256\":\"" SHA_A "\"}]}",
                        "files[0].size");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1.5,\"sha256\":\"" SHA_A "\"}]}",
                        "files[0].size");
    expect_format_error(HEAD "\"files\":[{\"name\":\"../a\",\"size\":1,\"sha256\":\"" SHA_A "\"}]}",
                        "files[0].name");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1,\"sha265\":\"" SHA_A "\"}]}",
                        "files[0].sha265");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1,\"sha256\":\"" SHA_A "\","
                        "\"url\":7}]}", "files[0].url");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1,\"sha256\":\"" SHA_A "\","
                        "\"generate\":[\"bible\", 3]}]}", "files[0].generate");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1,\"sha256\":\"" SHA_A "\","
                        "\"generate\":[\"bible\"],\"transform\":\"rot13\"}]}", "files[0].transform");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a\",\"size\":1,\"sha256\":\"" SHA_A "\"},"
                        "{\"name\":\"a\",\"size\":1,\"sha256\":\"" SHA_A "\"}]}", "files[1].name");
}

static void test_unknown_corpus(void **state) {
    (void)state;
    ss_corpus_manifest m;
    ss_error err = {0};
    assert_int_equal(ss_corpus_load(&m, corpora_dir(), "no-such-corpus", &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no-such-corpus"));
    for (size_t i = 0; i < N_CORPORA; i++) assert_non_null(strstr(err.msg, expected_corpora[i]));
    assert_int_equal(ss_corpus_load(&m, corpora_dir(), "../corpora/kjv", &err), SS_ERR_NOT_FOUND);
    assert_int_equal(ss_corpus_load(&m, "/nonexistent-dir", "kjv", &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "/nonexistent-dir"));
}

static void test_kjv_generated_by_bible(void **state) {
    (void)state;
    if (system("command -v bible >/dev/null 2>&1") != 0)
        fail_msg("the 'bible' program is missing: install the Debian package bible-kjv "
                 "(sudo apt-get install bible-kjv; make check installs it when run as root)");
    char dest[256];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_fetch_opts o = {.dest_dir = dest};
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "kjv", &err), &err);
    logbuf log = {""};
    CHECK_OK(ss_corpus_fetch(&m, &o, collect, &log, &err), &err);
    assert_string_equal(log.text, "kjv.txt: generated by bible, sha256 ok\n"
                                  "kjv_refs.txt: generated by bible, sha256 ok\n");
    /* Independently re-hashed, against the mirror's copy when one is set. */
    const char *mirror = getenv("SELFSUP_DATA_MIRROR");
    for (size_t j = 0; j < m.n_files; j++) {
        char got[512], hex[65];
        snprintf(got, sizeof got, "%s/kjv/%s", dest, m.files[j].name);
        sha_of(got, hex);
        assert_string_equal(hex, m.files[j].sha256);
        if (mirror && *mirror) {
            char want[65];
            sha_of(test_data_path("kjv", m.files[j].name), want);
            assert_string_equal(hex, want);
        }
    }
    ss_corpus_free(&m);
}

/* Generators and transforms on small inputs with hand-checked outputs. */
static ss_status run_generator(const char *gen_json, const char *transform, const char *expect,
                               ss_error *err, char *got_path) {
    char hex[65], json[1024];
    ss_sha256 s;
    uint8_t d[32];
    ss_sha256_init(&s);
    ss_sha256_update(&s, expect, strlen(expect));
    ss_sha256_final(&s, d);
    ss_sha256_hex(d, hex);
    snprintf(json, sizeof json, HEAD "\"files\":[{\"name\":\"out.txt\",\"size\":%zu,"
             "\"sha256\":\"%s\",\"generate\":%s%s%s%s}]}", strlen(expect), hex, gen_json,
             transform ? ",\"transform\":\"" : "", transform ? transform : "", transform ? "\"" : "");
    const char *dir = manifest_dir_with("x", json);
    ss_corpus_manifest m;
    CHECK_OK(ss_corpus_load(&m, dir, "x", err), err);
    ss_fetch_opts o = {.dest_dir = dir};
    ss_status st = ss_corpus_fetch(&m, &o, NULL, NULL, err);
    snprintf(got_path, 512, "%s/x/out.txt", dir);
    ss_corpus_free(&m);
    return st;
}

static void test_generator_transforms(void **state) {
    (void)state;
    ss_error err = {0};
    char path[512];
    CHECK_OK(run_generator("[\"printf\", \"Ge1:1 In the beginning\\nGe1:2 And  the earth\\n\"]",
                           "kjv-text", "In the beginning\nAnd  the earth\n", &err, path), &err);
    CHECK_OK(run_generator("[\"printf\", \"Ge1:1 In the beginning\\nGe1:2 And  the earth\\n\"]",
                           "kjv-refs", "Ge1:1\nGe1:2\n", &err, path), &err);
    /* No final newline: the text still ends with one, as cut(1) does. */
    CHECK_OK(run_generator("[\"printf\", \"a b\\nc d\"]", "kjv-text", "b\nd\n", &err, path), &err);
    CHECK_OK(run_generator("[\"printf\", \"raw\\tbytes\"]", NULL, "raw\tbytes", &err, path), &err);
    /* A line without a reference field is an error, and nothing is left. */
    assert_int_equal(run_generator("[\"printf\", \"a b\\nnospace\\nc d\\n\"]", "kjv-text",
                                   "b\nd\n", &err, path), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_false(ss_file_exists(path));
    /* Output that differs from the manifest: checksum error, nothing left. */
    assert_int_equal(run_generator("[\"printf\", \"a b\\n\"]", "kjv-text", "c\n", &err, path),
                     SS_ERR_CHECKSUM);
    assert_false(ss_file_exists(path));
    /* A failing program and a missing one. */
    assert_int_equal(run_generator("[\"false\"]", NULL, "", &err, path), SS_ERR_EXTERNAL);
    assert_non_null(strstr(err.msg, "false exited with status 1"));
    assert_int_equal(run_generator("[\"selfsup-no-such-program\"]", NULL, "", &err, path),
                     SS_ERR_EXTERNAL);
    assert_non_null(strstr(err.msg, "selfsup-no-such-program"));
    assert_false(ss_file_exists(path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifests_describe_the_mirror),
        cmocka_unit_test(test_fetch_every_corpus_from_mirror),
        cmocka_unit_test(test_corrupt_mirror_file_is_rejected),
        cmocka_unit_test(test_missing_mirror_file_is_explained),
        cmocka_unit_test(test_download_via_base_url),
        cmocka_unit_test(test_stale_cached_file_is_replaced),
        cmocka_unit_test(test_converted_file_without_mirror_needs_one),
        cmocka_unit_test(test_malformed_manifests),
        cmocka_unit_test(test_unknown_corpus),
        cmocka_unit_test(test_kjv_generated_by_bible),
        cmocka_unit_test(test_generator_transforms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
