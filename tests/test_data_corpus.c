/* Corpus manifests and fetching, against the real data mirror: every manifest
 * describes exactly the mirror's files (size and sha256 recomputed here),
 * every corpus fetches from the mirror, kjv regenerates bit-exactly from the
 * Debian bible program, the converted files are made bit-exactly from their
 * published originals (SST's served from the mirror's sst2/original/, the
 * others rebuilt by inverting the conversion and checked against their git
 * blob ids), the conversions work on small hand-checked inputs, and corrupt /
 * missing / malformed inputs fail with clear errors and leave nothing behind.
 * No network when SELFSUP_DATA_MIRROR is set: downloads use file:// URLs.
 * Without a mirror, data comes from corpora/cache, fetched from its origin. */
#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>

#include <zstd.h>

#include "../corpora/convert.h"
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

/* $SELFSUP_DATA_MIRROR, or NULL when unset. */
static const char *mirror_dir(void) {
    const char *m = getenv("SELFSUP_DATA_MIRROR");
    return m && *m ? m : NULL;
}

/* A directory laid out as NAME/FILE holding CORPUS/FILE: the mirror, or
 * without one corpora/cache (the file fetched from its origin). */
static const char *data_root(const char *corpus, const char *file) {
    test_data_path(corpus, file);
    return mirror_dir() ? mirror_dir() : "corpora/cache";
}

/* Entries of dir (hidden ones too: temp files), or only its regular files. */
static size_t count_in(const char *dir, int files_only) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[4096];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        n += !files_only || (stat(p, &sb) == 0 && S_ISREG(sb.st_mode));
    }
    closedir(d);
    return n;
}
static size_t count_entries(const char *dir) { return count_in(dir, 0); }

static void sha_of(const char *path, char hex[65]) {
    ss_error err = {0};
    CHECK_OK(ss_sha256_file(path, hex, &err), &err);
}

static void write_text(const char *path, const char *text) {
    ss_error err = {0};
    CHECK_OK(ss_write_file_atomic(path, text, strlen(text), &err), &err);
}

/* Write n bytes to path, creating its directory. */
static void write_bytes(const char *path, const void *data, size_t n) {
    ss_error err = {0};
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    CHECK_OK(ss_mkdir_p(dir, &err), &err);
    CHECK_OK(ss_write_file_atomic(path, data, n, &err), &err);
}

static void sha_of_bytes(const void *data, size_t n, char hex[65]) {
    ss_sha256 s;
    uint8_t d[32];
    ss_sha256_init(&s);
    ss_sha256_update(&s, data, n);
    ss_sha256_final(&s, d);
    ss_sha256_hex(d, hex);
}

/* sha256 and size of the decompressed bytes of a .zst file. */
static void zstd_content_sha(const char *path, char hex[65], uint64_t *n) {
    ss_buf in = {0};
    ss_error err = {0};
    CHECK_OK(ss_read_file(path, &in, &err), &err);
    ZSTD_DStream *ds = ZSTD_createDStream();
    static char out[1 << 17];
    ss_sha256 s;
    uint8_t d[32];
    ss_sha256_init(&s);
    *n = 0;
    ZSTD_inBuffer ib = {in.data, in.len, 0};
    size_t left = 1;
    while (ib.pos < ib.size || left) {
        ZSTD_outBuffer ob = {out, sizeof out, 0};
        left = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(left)) fail_msg("%s: %s", path, ZSTD_getErrorName(left));
        if (!ob.pos && ib.pos == ib.size) break;
        ss_sha256_update(&s, out, ob.pos);
        *n += ob.pos;
    }
    assert_int_equal(left, 0);
    ss_sha256_final(&s, d);
    ss_sha256_hex(d, hex);
    ZSTD_freeDStream(ds);
    ss_buf_free(&in);
}

/* Where a fake origin server directory holds an original's url:
 * srv/HOST/PATH (the layout SELFSUP_DATA_SOURCE_BASE_URL expects). */
static void origin_path(const char *srv, const char *url, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", srv, strstr(url, "://") + 3);
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
    if (!mirror)
        printf("# SELFSUP_DATA_MIRROR is unset: the manifests are checked, but not compared "
               "with a mirror\n");
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
        /* The manifest lists exactly the mirror's files (sst2/original/ holds
         * SST's originals for the tests), with their real size and hash. */
        if (mirror) assert_int_equal(count_in(dir, 1), m.n_files);
        for (size_t j = 0; j < m.n_files; j++) {
            const ss_corpus_file *f = &m.files[j];
            assert_int_equal(strlen(f->sha256), 64);
            assert_true(f->size > 0);
            int mirror_only = !f->url && !f->generate && !f->source;
            if (mirror_only && !(strcmp(m.name, "gpt2-tokenizer") == 0 &&
                                 strcmp(f->name, "vectors.tsv") == 0))
                fail_msg("%s/%s: no url, generate or source: only a mirror would have it",
                         m.name, f->name);
            assert_true(!mirror_only || f->origin);
            if (!mirror) continue;
            const char *p = test_data_path(m.name, f->name);
            struct stat sb;
            assert_int_equal(stat(p, &sb), 0);
            assert_int_equal((uint64_t)sb.st_size, f->size);
            char hex[65];
            sha_of(p, hex);
            if (strcmp(hex, f->sha256) != 0)
                fail_msg("%s/%s: manifest sha256 %s but the mirror file has %s", m.name, f->name,
                         f->sha256, hex);
            /* A .zst file's content hash describes the mirror's copy too. */
            if (f->content_sha256) {
                uint64_t n;
                zstd_content_sha(p, hex, &n);
                assert_string_equal(hex, f->content_sha256);
                assert_int_equal(n, f->content_size);
            }
        }
        ss_corpus_free(&m);
    }
    ss_corpus_list_free(names, n);
}

/* Without a mirror, corpora/cache stands in for one, for the corpora it holds. */
static int corpus_in(const char *root, const ss_corpus_manifest *m) {
    for (size_t j = 0; j < m->n_files; j++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/%s", root, m->name, m->files[j].name);
        if (!ss_file_exists(p)) return 0;
    }
    return 1;
}

static void test_fetch_every_corpus_from_mirror(void **state) {
    (void)state;
    const char *mirror = data_root("tinyshakespeare", "input.txt");
    char dest[256];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_fetch_opts o = {.dest_dir = dest, .mirror_dir = mirror};
    ss_error err = {0};
    for (size_t i = 0; i < N_CORPORA; i++) {
        ss_corpus_manifest m;
        CHECK_OK(ss_corpus_load(&m, corpora_dir(), expected_corpora[i], &err), &err);
        if (!mirror_dir() && !corpus_in(mirror, &m)) {
            printf("# no mirror: %s is not complete in corpora/cache, not fetched from it\n", m.name);
            ss_corpus_free(&m);
            continue;
        }
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
    data_root("gpt2-tokenizer", "vocab.bpe");
    char *real = realpath(data_root("gpt2-tokenizer", "encoder.json"), NULL);
    assert_non_null(real);
    snprintf(base, sizeof base, "file://%s/", real);
    free(real);
    const char *only[] = {"encoder.json", "vocab.bpe", NULL};
    ss_fetch_opts o = {.dest_dir = dest, .base_url = base, .only = only};
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "gpt2-tokenizer", &err), &err);
    logbuf log = {""};
    CHECK_OK(ss_corpus_fetch(&m, &o, collect, &log, &err), &err);
    for (size_t j = 0; j < 2; j++) {
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
    ss_fetch_opts o = {.dest_dir = dest, .mirror_dir = data_root("tinyshakespeare", "input.txt")};
    ss_corpus_manifest m;
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "tinyshakespeare", &err), &err);
    CHECK_OK(ss_corpus_fetch(&m, &o, NULL, NULL, &err), &err);
    char hex[65];
    sha_of(path, hex);
    assert_string_equal(hex, m.files[0].sha256);
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
    /* source and content hashes */
#define FILE_A "\"files\":[{\"name\":\"a\",\"size\":1,\"sha256\":\"" SHA_A "\","
#define SRC "\"source\":{\"url\":\"https://h/o.txt\",\"size\":1,\"sha256\":\"" SHA_A "\","
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"copy\",\"sha265\":\"x\"}}]}",
                        "files[0].source.sha265");
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"rot13\"}}]}", "files[0].source.convert");
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"copy\",\"git_blob\":\"abc\"}}]}",
                        "files[0].source.git_blob");
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"copy\",\"archive\":\"tar.gz\"}}]}",
                        "files[0].source.member");
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"copy\",\"archive\":\"zip\","
                        "\"member\":\"m\"}}]}", "files[0].source.archive");
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"copy\",\"archive\":\"tar.gz\","
                        "\"member\":\"../etc\"}}]}", "files[0].source.member");
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"aclimdb-unsup\"}}]}",
                        "files[0].source.convert");
    expect_format_error(HEAD FILE_A "\"source\":{\"url\":\"ftp://h/o\",\"size\":1,\"sha256\":\""
                        SHA_A "\",\"convert\":\"copy\"}}]}", "files[0].source.url");
    expect_format_error(HEAD FILE_A "\"source\":{\"url\":\"https://h/o\",\"sha256\":\"" SHA_A
                        "\",\"convert\":\"copy\"}}]}", "files[0].source.size");
    expect_format_error(HEAD FILE_A "\"url\":\"https://h/a\"," SRC "\"convert\":\"copy\"}}]}",
                        "files[0].source");
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"copy\",\"patches\":[{\"line\":2,"
                        "\"from\":\"a\",\"to\":\"b\"},{\"line\":2,\"from\":\"a\",\"to\":\"b\"}]}}]}",
                        "files[0].source.patches[1].line");
    expect_format_error(HEAD FILE_A SRC "\"convert\":\"copy\",\"patches\":[{\"line\":1,"
                        "\"from\":\"a\"}]}}]}", "files[0].source.patches[0].to");
    expect_format_error(HEAD FILE_A "\"content_sha256\":\"" SHA_A "\",\"content_size\":3}]}",
                        "files[0].content_sha256");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a.zst\",\"size\":1,\"sha256\":\"" SHA_A "\","
                        "\"content_size\":3}]}", "files[0].content_sha256");
    expect_format_error(HEAD "\"files\":[{\"name\":\"a.zst\",\"size\":1,\"sha256\":\"" SHA_A "\","
                        SRC "\"convert\":\"copy\"}}]}", "files[0].source");
#undef FILE_A
#undef SRC
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


/* A file only a mirror has: the error comes before anything is downloaded,
 * says what the mirror is, and the other files can still be fetched alone. */
static void test_mirror_only_file_fails_before_download(void **state) {
    (void)state;
    char dest[256], base[600];
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_fetch_opts o = {.dest_dir = dest};
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "gpt2-tokenizer", &err), &err);
    logbuf log = {""};
    assert_int_equal(ss_corpus_fetch(&m, &o, collect, &log, &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "vectors.tsv"));
    assert_non_null(strstr(err.msg, "nothing was downloaded"));
    assert_non_null(strstr(err.msg, "SELFSUP_DATA_MIRROR names a directory laid out as NAME/FILE"));
    assert_non_null(strstr(err.msg, "tiktoken")); /* where it came from */
    assert_string_equal(log.text, "");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/gpt2-tokenizer", dest);
    assert_int_equal(count_entries(dir), 0);
    /* The downloadable files alone (file:// stands in for their URLs). */
    data_root("gpt2-tokenizer", "vocab.bpe");
    char *real = realpath(data_root("gpt2-tokenizer", "encoder.json"), NULL);
    assert_non_null(real);
    snprintf(base, sizeof base, "file://%s", real);
    free(real);
    const char *only[] = {"encoder.json", "vocab.bpe", NULL};
    ss_fetch_opts some = {.dest_dir = dest, .base_url = base, .only = only};
    CHECK_OK(ss_corpus_fetch(&m, &some, NULL, NULL, &err), &err);
    assert_int_equal(count_entries(dir), 2);
    const char *bad[] = {"encoder.json", "no-such-file", NULL};
    some.only = bad;
    assert_int_equal(ss_corpus_fetch(&m, &some, NULL, NULL, &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no-such-file"));
    assert_non_null(strstr(err.msg, "vocab.bpe")); /* lists the files */
    ss_corpus_free(&m);
}

/* SST's train.tsv and dev.tsv from the originals as published (the mirror's
 * sst2/original/, laid out as their URLs' paths). */
static void test_sst_made_from_published_originals(void **state) {
    (void)state;
    char srv[256], dest[256], base[600], path[4096];
    snprintf(srv, sizeof srv, "%s", test_tmpdir());
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), "sst2", &err), &err);
    if (!mirror_dir()) { /* no copy of the originals: the real download */
        printf("# SELFSUP_DATA_MIRROR is unset: converting SST from its public originals\n");
        const char *only[] = {"train.tsv", "dev.tsv", NULL};
        ss_fetch_opts o = {.dest_dir = dest, .only = only,
                           .source_base_url = getenv("SELFSUP_DATA_SOURCE_BASE_URL")};
        CHECK_OK(ss_corpus_fetch(&m, &o, NULL, NULL, &err), &err);
        ss_corpus_free(&m);
        return;
    }
    for (size_t j = 0; j < 2; j++) {
        const ss_corpus_file *f = &m.files[j];
        assert_non_null(f->source);
        ss_buf b = {0};
        CHECK_OK(ss_read_file(test_data_path("sst2", j ? "original/stsa.binary.dev"
                                                       : "original/stsa.binary.train"), &b, &err),
                 &err);
        origin_path(srv, f->source->url, path, sizeof path);
        write_bytes(path, b.data, b.len);
        ss_buf_free(&b);
    }
    snprintf(base, sizeof base, "file://%s/", srv);
    const char *only[] = {"train.tsv", "dev.tsv", NULL};
    ss_fetch_opts o = {.dest_dir = dest, .source_base_url = base, .only = only};
    logbuf log = {""};
    CHECK_OK(ss_corpus_fetch(&m, &o, collect, &log, &err), &err);
    assert_non_null(strstr(log.text, "train.tsv: converted from stsa.binary.train "
                                     "(sst-label-sentence), sha256 ok\n"));
    assert_non_null(strstr(log.text, "stsa.binary.dev (original of dev.tsv): sha256 ok, "
                                     "git blob id ok\n"));
    assert_non_null(strstr(log.text, "downloading stsa.binary.train (738.8 kB), the original "
                                     "of train.tsv, from file://"));
    for (size_t j = 0; j < 2; j++) {
        char got[600], hex[65], want[65];
        snprintf(got, sizeof got, "%s/sst2/%s", dest, m.files[j].name);
        sha_of(got, hex);
        sha_of(test_data_path("sst2", m.files[j].name), want);
        assert_string_equal(hex, want);
    }
    /* A corrupt original is rejected by its hash; nothing is left. */
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    origin_path(srv, m.files[1].source->url, path, sizeof path);
    write_text(path, "1 not the original\n");
    const char *dev[] = {"dev.tsv", NULL};
    ss_fetch_opts bad = {.dest_dir = dest, .source_base_url = base, .only = dev};
    assert_int_equal(ss_corpus_fetch(&m, &bad, NULL, NULL, &err), SS_ERR_CHECKSUM);
    assert_non_null(strstr(err.msg, "stsa.binary.dev (the original of dev.tsv"));
    assert_non_null(strstr(err.msg, m.files[1].source->sha256));
    snprintf(path, sizeof path, "%s/sst2/dev.tsv", dest);
    assert_false(ss_file_exists(path));
    ss_corpus_free(&m);
}

/* Rebuild an original from the stored file by inverting its conversion; its
 * git blob id and sha256 must be the published ones (which proves the
 * forward conversion exact), and converting it must give the stored file. */
static void check_by_inverse(const char *corpus, const char *file, char *(*inverse)(const char *, size_t, const ss_corpus_source *, size_t *)) {
    char srv[256], dest[256], base[600], path[4096], hex[65], blob[41];
    snprintf(srv, sizeof srv, "%s", test_tmpdir());
    snprintf(dest, sizeof dest, "%s", test_tmpdir());
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, corpora_dir(), corpus, &err), &err);
    const ss_corpus_file *f = NULL;
    for (size_t j = 0; j < m.n_files; j++)
        if (strcmp(m.files[j].name, file) == 0) f = &m.files[j];
    assert_non_null(f);
    assert_non_null(f->source);
    assert_non_null(f->source->git_blob);
    ss_buf b = {0};
    CHECK_OK(ss_read_file(test_data_path(corpus, file), &b, &err), &err);
    size_t n;
    char *orig = inverse(b.data, b.len, f->source, &n);
    ss_buf_free(&b);
    origin_path(srv, f->source->url, path, sizeof path);
    write_bytes(path, orig, n);
    free(orig);
    CHECK_OK(corpus_git_blob_file(path, blob, &err), &err);
    assert_string_equal(blob, f->source->git_blob);
    sha_of(path, hex);
    assert_string_equal(hex, f->source->sha256);
    assert_int_equal(n, f->source->size);
    snprintf(base, sizeof base, "file://%s", srv);
    const char *only[] = {file, NULL};
    ss_fetch_opts o = {.dest_dir = dest, .source_base_url = base, .only = m.n_files > 1 ? only : NULL};
    CHECK_OK(ss_corpus_fetch(&m, &o, NULL, NULL, &err), &err);
    snprintf(path, sizeof path, "%s/%s/%s", dest, corpus, file);
    sha_of(path, hex);
    assert_string_equal(hex, f->sha256);
    if (m.n_files == 1) { /* the whole corpus is there: the download is gone */
        snprintf(path, sizeof path, "%s/%s", dest, corpus);
        assert_int_equal(count_entries(path), 1);
    }
    ss_corpus_free(&m);
}

/* sentence\tlabel LF -> label\tsentence CRLF, the patched line unpatched. */
static char *unglue(const char *p, size_t n, const ss_corpus_source *src, size_t *out_n) {
    char *out = malloc(n + n / 8 + 64), *o = out;
    assert_non_null(out);
    size_t next = 0;
    const char *end = p + n;
    for (uint64_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        const char *l = p;
        size_t ln = (size_t)(nl - p);
        if (next < src->n_patches && src->patches[next].line == line) {
            assert_true(strlen(src->patches[next].to) == ln && memcmp(l, src->patches[next].to, ln) == 0);
            l = src->patches[next].from;
            ln = strlen(l);
            next++;
        }
        const char *tab = memchr(l, '\t', ln);
        assert_non_null(tab);
        size_t a = (size_t)(tab - l);
        memcpy(o, tab + 1, ln - a - 1), o += ln - a - 1;
        *o++ = '\t';
        memcpy(o, l, a), o += a;
        *o++ = '\r', *o++ = '\n';
        p = nl + 1;
    }
    assert_int_equal(next, src->n_patches);
    *out_n = (size_t)(o - out);
    return out;
}

static char *lf_to_crlf(const char *p, size_t n, const ss_corpus_source *src, size_t *out_n) {
    (void)src;
    char *out = malloc(2 * n + 1), *o = out;
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') *o++ = '\r';
        *o++ = p[i];
    }
    *out_n = (size_t)(o - out);
    return out;
}

static void test_glue_train_and_wikitext_by_inverse(void **state) {
    (void)state;
    check_by_inverse("sst2", "train_glue_phrases.tsv", unglue);
    check_by_inverse("wikitext-2", "wiki.test.raw", lf_to_crlf);
}

static void test_git_blob_ids(void **state) {
    (void)state;
    char dir[256], path[512], blob[41];
    ss_error err = {0};
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(path, sizeof path, "%s/f", dir);
    write_text(path, ""); /* git hash-object /dev/null */
    CHECK_OK(corpus_git_blob_file(path, blob, &err), &err);
    assert_string_equal(blob, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    write_text(path, "hello\n");
    CHECK_OK(corpus_git_blob_file(path, blob, &err), &err);
    assert_string_equal(blob, "ce013625030ba8dba906f756967f9e9ca394464a");
}

/* One converted file "out" (out.zst when zst) from an original served at
 * srv/example.org/d/ORIG (or an archive of dir_for_tar); returns the fetch
 * status, *out gets the converted bytes (decompressed). */
static ss_status convert_case(const char *convert, const char *extra, const char *original,
                              const char *expect, ss_error *err, char **got) {
    char srv[256], path[4096], json[4096], osha[65], esha[65];
    snprintf(srv, sizeof srv, "%s", test_tmpdir());
    snprintf(path, sizeof path, "%s/example.org/d/orig.txt", srv);
    write_bytes(path, original, strlen(original));
    sha_of_bytes(original, strlen(original), osha);
    sha_of_bytes(expect, strlen(expect), esha);
    snprintf(json, sizeof json, HEAD "\"files\":[{\"name\":\"out\",\"size\":%zu,\"sha256\":\"%s\","
             "\"source\":{\"url\":\"https://example.org/d/orig.txt\",\"size\":%zu,\"sha256\":\"%s\","
             "\"convert\":\"%s\"%s}}]}", strlen(expect), esha, strlen(original), osha, convert,
             extra);
    const char *dir = manifest_dir_with("x", json);
    ss_corpus_manifest m;
    CHECK_OK(ss_corpus_load(&m, dir, "x", err), err);
    char base[600];
    snprintf(base, sizeof base, "file://%s", srv);
    ss_fetch_opts o = {.dest_dir = dir, .source_base_url = base};
    ss_status st = ss_corpus_fetch(&m, &o, NULL, NULL, err);
    ss_corpus_free(&m);
    snprintf(path, sizeof path, "%s/x/out", dir);
    *got = NULL;
    if (!st) {
        ss_buf b = {0};
        CHECK_OK(ss_read_file(path, &b, err), err);
        *got = b.data;
    } else {
        assert_false(ss_file_exists(path));
    }
    return st;
}

static void expect_conversion(const char *convert, const char *extra, const char *original,
                              const char *expect) {
    ss_error err = {0};
    char *got;
    CHECK_OK(convert_case(convert, extra, original, expect, &err, &got), &err);
    assert_string_equal(got, expect);
    free(got);
}

static void test_line_conversions(void **state) {
    (void)state;
    expect_conversion("sst-label-sentence", "", "1 a good film \n0  bad one\r\n",
                      "sentence\tlabel\na good film\t1\nbad one\t0\n");
    expect_conversion("tsv-swap-strip", "", "label\tsentence\r\n1\t 10000 \r\n0\tx\r\n",
                      "sentence\tlabel\n10000\t1\nx\t0\n");
    expect_conversion("tsv-swap-strip",
                      ",\"patches\":[{\"line\":2,\"from\":\"10000\\t1\",\"to\":\"10,000\\t1\"}]",
                      "label\tsentence\r\n1\t 10000 \r\n0\tx\r\n", "sentence\tlabel\n10,000\t1\nx\t0\n");
    expect_conversion("tsv-strip", "", "sentence \tlabel\r\n a b \t1\n", "sentence\tlabel\na b\t1\n");
    expect_conversion("crlf-to-lf", "", "x\r\ny\rz\r\nlast", "x\ny\rz\nlast");
    expect_conversion("copy", "", "as\r\nis", "as\r\nis");
    /* Malformed originals and patches that do not apply: format errors. */
    ss_error err = {0};
    char *got;
    assert_int_equal(convert_case("sst-label-sentence", "", "1 ok\nnospace\n", "x", &err, &got),
                     SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "orig.txt: line 2: expected '<label> <sentence>'"));
    assert_int_equal(convert_case("tsv-swap-strip", "", "a\tb\nc\n", "x", &err, &got),
                     SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "line 2: expected two tab-separated fields"));
    assert_int_equal(convert_case("tsv-strip",
                                  ",\"patches\":[{\"line\":1,\"from\":\"b\",\"to\":\"c\"}]",
                                  "a\n", "c\n", &err, &got), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "patch for line 1 does not apply"));
    assert_int_equal(convert_case("tsv-strip",
                                  ",\"patches\":[{\"line\":5,\"from\":\"b\",\"to\":\"c\"}]",
                                  "a\n", "a\n", &err, &got), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "only 1 lines"));
    /* A conversion that differs from the manifest: checksum error. */
    assert_int_equal(convert_case("copy", "", "abc", "abd", &err, &got), SS_ERR_CHECKSUM);
    assert_non_null(strstr(err.msg, "out: sha256 mismatch (converted from orig.txt (copy))"));
}

/* A small aclImdb_v1.tar.gz: reviews with line break tags, tabs, CR,
 * non-ASCII spaces and ids out of order, converted to zstd files whose
 * content is checked against outputs written by hand. */
static void test_aclimdb_conversion(void **state) {
    (void)state;
    char top[256], p[4096], json[8192], arch_sha[65], tsha[65], usha[65], rsha[65];
    snprintf(top, sizeof top, "%s", test_tmpdir());
    static const struct { const char *path, *text; } files[] = {
        {"aclImdb/README", "the readme\n"},
        {"aclImdb/train/pos/10_8.txt", "Great<br /><br />film.\tReally."},
        {"aclImdb/train/pos/2_9.txt", "  Loved it <br/> <BR>  a lot\r\n"},
        {"aclImdb/train/neg/7_1.txt", "Bad\xc2\xa0<br />\xc2\x85movie"},
        {"aclImdb/train/neg/0_2.txt", "Awful.<bt> no<br />"},
        {"aclImdb/train/unsup/1_0.txt", "second\ttab\xe3\x80\x80"},
        {"aclImdb/train/unsup/0_0.txt", "first<br />line"},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/tree/%s", top, files[i].path);
        write_bytes(p, files[i].text, strlen(files[i].text));
    }
    const char *train = "sentence\tlabel\nLoved it a lot\t1\nAwful.<bt> no\t0\n"
                        "Great film. Really.\t1\nBad movie\t0\n";
    const char *unsup = "first line\nsecond tab\n";
    char cmd[9000];
    snprintf(p, sizeof p, "%s/srv/example.org/a/aclImdb_v1.tar.gz", top);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/srv/example.org/a && tar -czf %s -C %s/tree aclImdb",
             top, p, top);
    assert_int_equal(system(cmd), 0);
    sha_of(p, arch_sha);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    sha_of_bytes(train, strlen(train), tsha);
    sha_of_bytes(unsup, strlen(unsup), usha);
    sha_of_bytes("the readme\n", 11, rsha);
    char src[512];
    snprintf(src, sizeof src, "\"url\":\"https://example.org/a/aclImdb_v1.tar.gz\",\"size\":%lld,"
             "\"sha256\":\"%s\",\"archive\":\"tar.gz\"", (long long)sb.st_size, arch_sha);
    snprintf(json, sizeof json, HEAD "\"files\":["
             "{\"name\":\"train.tsv.zst\",\"size\":1,\"sha256\":\"" SHA_A "\",\"content_sha256\":\"%s\","
             "\"content_size\":%zu,\"source\":{%s,\"member\":\"aclImdb/train\",\"convert\":\"aclimdb-labelled\"}},"
             "{\"name\":\"unsup.txt.zst\",\"size\":1,\"sha256\":\"" SHA_A "\",\"content_sha256\":\"%s\","
             "\"content_size\":%zu,\"source\":{%s,\"member\":\"aclImdb/train/unsup\",\"convert\":\"aclimdb-unsup\"}},"
             "{\"name\":\"README.txt\",\"size\":11,\"sha256\":\"%s\","
             "\"source\":{%s,\"member\":\"aclImdb/README\",\"convert\":\"copy\"}}]}",
             tsha, strlen(train), src, usha, strlen(unsup), src, rsha, src);
    const char *dir = manifest_dir_with("x", json);
    ss_corpus_manifest m;
    ss_error err = {0};
    CHECK_OK(ss_corpus_load(&m, dir, "x", &err), &err);
    char base[600];
    snprintf(base, sizeof base, "file://%s/srv", top);
    ss_fetch_opts o = {.dest_dir = dir, .source_base_url = base};
    logbuf log = {""};
    CHECK_OK(ss_corpus_fetch(&m, &o, collect, &log, &err), &err);
    assert_non_null(strstr(log.text, "x: 3 files to make from 1 published original"));
    assert_non_null(strstr(log.text, "aclImdb_v1.tar.gz (original of unsup.txt.zst): verified "
                                     "(downloaded before)"));
    assert_non_null(strstr(log.text, "train.tsv.zst: converted from aclImdb_v1.tar.gz:aclImdb/train "
                                     "(aclimdb-labelled), content sha256 ok"));
    const char *want[][2] = {{"train.tsv.zst", tsha}, {"unsup.txt.zst", usha}};
    for (size_t i = 0; i < 2; i++) {
        char hex[65];
        uint64_t n;
        snprintf(p, sizeof p, "%s/x/%s", dir, want[i][0]);
        zstd_content_sha(p, hex, &n);
        assert_string_equal(hex, want[i][1]);
    }
    snprintf(p, sizeof p, "%s/x", dir);
    assert_int_equal(count_entries(p), 3); /* .download/ removed */
    /* Cached files are accepted by their content hash. */
    logbuf again = {""};
    CHECK_OK(ss_corpus_fetch(&m, &o, collect, &again, &err), &err);
    assert_non_null(strstr(again.text, "train.tsv.zst: verified (cached)"));
    ss_corpus_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifests_describe_the_mirror),
        cmocka_unit_test(test_fetch_every_corpus_from_mirror),
        cmocka_unit_test(test_corrupt_mirror_file_is_rejected),
        cmocka_unit_test(test_missing_mirror_file_is_explained),
        cmocka_unit_test(test_download_via_base_url),
        cmocka_unit_test(test_stale_cached_file_is_replaced),
        cmocka_unit_test(test_mirror_only_file_fails_before_download),
        cmocka_unit_test(test_sst_made_from_published_originals),
        cmocka_unit_test(test_glue_train_and_wikitext_by_inverse),
        cmocka_unit_test(test_git_blob_ids),
        cmocka_unit_test(test_line_conversions),
        cmocka_unit_test(test_aclimdb_conversion),
        cmocka_unit_test(test_malformed_manifests),
        cmocka_unit_test(test_unknown_corpus),
        cmocka_unit_test(test_kjv_generated_by_bible),
        cmocka_unit_test(test_generator_transforms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
