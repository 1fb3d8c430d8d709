/* Token shards: round trips at both id widths against the ids written,
 * header fields and the FNV-1a checksum recomputed here independently,
 * constant-memory streaming, and every kind of corruption. */
#include "testutil.h"

#include <dirent.h>
#include <malloc.h>
#include <sys/stat.h>

#include "selfsup/io.h"
#include "selfsup/shard.h"

/* A reference document set: docs[d] = ids, all < vocab. */
typedef struct {
    size_t n_docs;
    size_t *len;
    int32_t **ids;
    uint64_t total; /* ids + one separator per doc */
} docset;

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static docset make_docs(size_t n_docs, size_t max_len, uint32_t vocab) {
    docset d = {n_docs, calloc(n_docs, sizeof(size_t)), calloc(n_docs, sizeof(int32_t *)), 0};
    for (size_t i = 0; i < n_docs; i++) {
        d.len[i] = (i % 7 == 3) ? 0 : rnd() % (max_len + 1); /* some empty docs */
        d.ids[i] = malloc((d.len[i] + 1) * sizeof(int32_t));
        for (size_t j = 0; j < d.len[i]; j++) {
            /* mostly small ids (compressible), sometimes the top of the range */
            uint64_t r = rnd();
            d.ids[i][j] = (int32_t)((r & 15) == 0 ? vocab - 1 - (r >> 32) % 8 : (r >> 32) % vocab);
        }
        d.total += d.len[i] + 1;
    }
    return d;
}

static void free_docs(docset *d) {
    for (size_t i = 0; i < d->n_docs; i++) free(d->ids[i]);
    free(d->ids);
    free(d->len);
}

static char *path_in(const char *dir, const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void write_docs(const char *path, const docset *d, uint32_t vocab, uint32_t sep) {
    ss_error err = {0};
    ss_shard_writer *w;
    CHECK_OK(ss_shard_writer_open(&w, path, vocab, sep, &err), &err);
    for (size_t i = 0; i < d->n_docs; i++)
        CHECK_OK(ss_shard_writer_add_doc(w, d->ids[i], d->len[i], 3 * d->len[i] + i, &err), &err);
    CHECK_OK(ss_shard_writer_close(w, &err), &err);
}

/* Read back in chunks of `cap` ids and compare with doc, sep, doc, sep... */
static void check_read(const char *path, const docset *d, uint32_t vocab, uint32_t sep,
                       size_t cap) {
    ss_error err = {0};
    ss_shard_reader *r;
    CHECK_OK(ss_shard_reader_open(&r, path, &err), &err);
    const ss_shard_header *h = ss_shard_reader_header(r);
    assert_int_equal(h->vocab_size, vocab);
    assert_int_equal(h->separator_id, sep);
    assert_int_equal(h->id_bytes, vocab <= 65536 ? 2 : 4);
    assert_int_equal(h->n_tokens, d->total);
    assert_int_equal(h->n_docs, d->n_docs);
    uint64_t text = 0, fnv = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < d->n_docs; i++) text += 3 * d->len[i] + i;
    assert_int_equal(h->n_text_bytes, text);
    size_t doc = 0, pos = 0;
    int32_t *buf = malloc(cap * sizeof *buf);
    size_t got;
    uint64_t seen = 0;
    for (;;) {
        CHECK_OK(ss_shard_reader_next(r, buf, cap, &got, &err), &err);
        if (!got) break;
        assert_true(got <= cap);
        for (size_t k = 0; k < got; k++) {
            assert_true(doc < d->n_docs);
            int32_t want = pos < d->len[doc] ? d->ids[doc][pos] : (int32_t)sep;
            if (buf[k] != want) fail_msg("token %llu: got %d want %d", (unsigned long long)seen, buf[k], want);
            uint32_t v = (uint32_t)buf[k];
            for (uint32_t b = 0; b < h->id_bytes; b++) fnv = (fnv ^ ((v >> (8 * b)) & 255)) * 0x100000001b3ULL;
            seen++;
            if (pos++ == d->len[doc]) { doc++; pos = 0; }
        }
    }
    assert_int_equal(seen, d->total);
    assert_int_equal(h->checksum, fnv);
    free(buf);
    ss_shard_reader_close(r);
    CHECK_OK(ss_shard_verify(path, &err), &err);
}

static void test_roundtrip_u16(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    docset d = make_docs(2000, 300, 50257);
    write_docs(path_in(dir, "a.shard"), &d, 50257, 50256);
    check_read(path_in(dir, "a.shard"), &d, 50257, 50256, 1);
    check_read(path_in(dir, "a.shard"), &d, 50257, 50256, 777);
    check_read(path_in(dir, "a.shard"), &d, 50257, 50256, 1 << 20);
    free_docs(&d);
    /* 65536 is the largest vocab stored in 2 bytes */
    d = make_docs(50, 100, 65536);
    write_docs(path_in(dir, "b.shard"), &d, 65536, 65535);
    check_read(path_in(dir, "b.shard"), &d, 65536, 65535, 64);
    free_docs(&d);
}

static void test_roundtrip_u32(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    docset d = make_docs(1500, 400, 100000);
    write_docs(path_in(dir, "a.shard"), &d, 100000, 7);
    check_read(path_in(dir, "a.shard"), &d, 100000, 7, 3);
    check_read(path_in(dir, "a.shard"), &d, 100000, 7, 4096);
    free_docs(&d);
}

static void test_empty_shard_and_empty_docs(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    docset none = {0, NULL, NULL, 0};
    write_docs(path_in(dir, "e.shard"), &none, 300, 0);
    check_read(path_in(dir, "e.shard"), &none, 300, 0, 16);
    docset d = make_docs(30, 0, 300); /* every document empty */
    write_docs(path_in(dir, "f.shard"), &d, 300, 299);
    check_read(path_in(dir, "f.shard"), &d, 300, 299, 5);
    free_docs(&d);
}

/* A multi-MB shard read 13 ids at a time: the heap must not grow with it. */
static void test_constant_memory_read(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    const char *path = path_in(dir, "big.shard");
    docset d = make_docs(6000, 1000, 200000); /* ~3M ids, ~12 MB decoded */
    write_docs(path, &d, 200000, 5);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 4 * 1000 * 1000);
    ss_error err = {0};
    ss_shard_reader *r;
    size_t before = mallinfo2().uordblks;
    CHECK_OK(ss_shard_reader_open(&r, path, &err), &err);
    int32_t buf[13];
    size_t got, peak = 0;
    uint64_t n = 0;
    do {
        CHECK_OK(ss_shard_reader_next(r, buf, 13, &got, &err), &err);
        n += got;
        if (n % 100000 < 13) {
            size_t now = mallinfo2().uordblks;
            if (now > peak) peak = now;
        }
    } while (got);
    assert_int_equal(n, d.total);
    ss_shard_reader_close(r);
    /* zstd's window for this frame is at most 8 MB (level 3); decoding must
     * not hold the 12 MB of ids, let alone the file */
    if (peak > before) assert_true(peak - before < 10u * 1000 * 1000);
    free_docs(&d);
}

static void corrupt_at(const char *path, long off, unsigned char xor_mask) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    if (off < 0) { fseek(f, 0, SEEK_END); off += ftell(f); }
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ xor_mask, f);
    fclose(f);
}

static void set_u64(const char *path, long off, uint64_t v) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    fseek(f, off, SEEK_SET);
    fwrite(b, 1, 8, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    ss_buf b = {0};
    ss_error err = {0};
    CHECK_OK(ss_read_file(from, &b, &err), &err);
    CHECK_OK(ss_write_file_atomic(to, b.data, b.len, &err), &err);
    ss_buf_free(&b);
}

/* Expect verification of path to fail with one of two codes, naming the file
 * and containing `what`. */
static void expect_bad(const char *path, ss_status c1, ss_status c2, const char *what) {
    ss_error err = {0};
    ss_status st = ss_shard_verify(path, &err);
    if (st != c1 && st != c2) fail_msg("%s: got %s (%s)", what, ss_status_name(st), err.msg);
    assert_non_null(strstr(err.msg, path));
    if (!strstr(err.msg, what)) fail_msg("message '%s' lacks '%s'", err.msg, what);
}

static void test_corruption(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/good.shard", dir);
    snprintf(bad, sizeof bad, "%s/bad.shard", dir);
    docset d = make_docs(500, 200, 50257);
    write_docs(good, &d, 50257, 50256);
    struct stat sb;
    stat(good, &sb);

    copy_file(good, bad); /* one payload byte flipped */
    corrupt_at(bad, SS_SHARD_HEADER_SIZE + (long)(sb.st_size - SS_SHARD_HEADER_SIZE) / 2, 0x10);
    expect_bad(bad, SS_ERR_CHECKSUM, SS_ERR_FORMAT, "");

    copy_file(good, bad); /* truncated */
    assert_int_equal(truncate(bad, sb.st_size - 5), 0);
    expect_bad(bad, SS_ERR_FORMAT, SS_ERR_FORMAT, "truncated");
    assert_int_equal(truncate(bad, 20), 0);
    expect_bad(bad, SS_ERR_FORMAT, SS_ERR_FORMAT, "truncated");

    copy_file(good, bad); /* trailing bytes */
    FILE *f = fopen(bad, "ab");
    fputs("xx", f);
    fclose(f);
    expect_bad(bad, SS_ERR_FORMAT, SS_ERR_FORMAT, "trailing");

    copy_file(good, bad); /* header token count off by one */
    set_u64(bad, 24, d.total - 1);
    expect_bad(bad, SS_ERR_FORMAT, SS_ERR_FORMAT, "tokens");
    set_u64(bad, 24, d.total + 1);
    expect_bad(bad, SS_ERR_FORMAT, SS_ERR_FORMAT, "tokens");

    copy_file(good, bad); /* FNV checksum field wrong, payload intact */
    corrupt_at(bad, 48, 1);
    expect_bad(bad, SS_ERR_CHECKSUM, SS_ERR_CHECKSUM, "checksum");

    copy_file(good, bad);
    corrupt_at(bad, 0, 0x20);
    expect_bad(bad, SS_ERR_FORMAT, SS_ERR_FORMAT, "magic");
    copy_file(good, bad);
    corrupt_at(bad, 8, 2); /* version 3 */
    expect_bad(bad, SS_ERR_FORMAT, SS_ERR_FORMAT, "version 3");
    copy_file(good, bad);
    corrupt_at(bad, 12, 6); /* id width 4 with a 50257 vocab */
    expect_bad(bad, SS_ERR_FORMAT, SS_ERR_FORMAT, "id width 4");
    free_docs(&d);
}

/* An id the header's vocab does not cover is caught while reading. */
static void test_reader_rejects_out_of_vocab_id(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    const char *path = path_in(dir, "v.shard");
    ss_error err = {0};
    ss_shard_writer *w;
    int32_t ids[] = {1, 2, 999, 3};
    CHECK_OK(ss_shard_writer_open(&w, path, 1000, 0, &err), &err);
    CHECK_OK(ss_shard_writer_add_doc(w, ids, 4, 4, &err), &err);
    CHECK_OK(ss_shard_writer_close(w, &err), &err);
    FILE *f = fopen(path, "r+b"); /* vocab 1000 -> 500 */
    fseek(f, 16, SEEK_SET);
    unsigned char v[4] = {0xF4, 0x01, 0, 0};
    fwrite(v, 1, 4, f);
    fclose(f);
    assert_int_equal(ss_shard_verify(path, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "999"));
}

/* Ids are int32: a header whose vocabulary passes 2^31 is refused, or an id
 * >= 2^31 inside it would be read as a negative id (found by
 * tests/fuzz/fuzz_shard.c: a reader handed -594939904 for vocab 4261512864). */
static void test_vocab_beyond_int32(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512], other[512];
    snprintf(path, sizeof path, "%s", path_in(dir, "wide.shard"));
    snprintf(other, sizeof other, "%s", path_in(dir, "x.shard"));
    ss_error err = {0};
    ss_shard_writer *w;
    int32_t ids[] = {1, INT32_MAX, 3};
    CHECK_OK(ss_shard_writer_open(&w, path, (uint32_t)INT32_MAX + 1, 0, &err), &err); /* the largest */
    CHECK_OK(ss_shard_writer_add_doc(w, ids, 3, 3, &err), &err);
    CHECK_OK(ss_shard_writer_close(w, &err), &err);
    CHECK_OK(ss_shard_verify(path, &err), &err);
    assert_int_equal(ss_shard_writer_open(&w, other, (uint32_t)INT32_MAX + 2, 0, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "2147483649"));
    /* the header's vocabulary raised to 2^31 + 1, where a payload could hold the id 2^31 */
    FILE *f = fopen(path, "r+b");
    fseek(f, 16, SEEK_SET);
    unsigned char v[4] = {0x01, 0, 0, 0x80};
    fwrite(v, 1, 4, f);
    fclose(f);
    ss_shard_header h;
    assert_int_equal(ss_shard_read_header(path, &h, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "2147483649"));
    assert_non_null(strstr(err.msg, path));
    ss_shard_reader *r;
    assert_int_equal(ss_shard_reader_open(&r, path, &err), SS_ERR_FORMAT);
    assert_int_equal(ss_shard_verify(path, &err), SS_ERR_FORMAT);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_writer_rejects_bad_ids_and_aborts_cleanly(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/x.shard", dir);
    ss_error err = {0};
    ss_shard_writer *w;
    int32_t ok[] = {0, 1, 99}, too_big[] = {5, 100, 6}, negative[] = {-3};
    CHECK_OK(ss_shard_writer_open(&w, path, 100, 99, &err), &err);
    CHECK_OK(ss_shard_writer_add_doc(w, ok, 3, 3, &err), &err);
    assert_int_equal(ss_shard_writer_add_doc(w, too_big, 3, 3, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "100"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(ss_shard_writer_add_doc(w, negative, 1, 1, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "-3"));
    assert_int_equal(ss_shard_writer_tokens(w), 4); /* failed docs added nothing */
    ss_shard_writer_abort(w);
    assert_false(ss_file_exists(path));
    assert_int_equal(count_entries(dir), 0); /* no temp file left behind */

    /* separator outside the vocab */
    assert_int_equal(ss_shard_writer_open(&w, path, 100, 100, &err), SS_ERR_ARG);

    /* an existing file survives an aborted rewrite byte for byte */
    CHECK_OK(ss_write_file_atomic(path, "precious", 8, &err), &err);
    CHECK_OK(ss_shard_writer_open(&w, path, 100, 99, &err), &err);
    for (int i = 0; i < 100000; i++) CHECK_OK(ss_shard_writer_add_doc(w, ok, 3, 3, &err), &err);
    ss_shard_writer_abort(w);
    ss_buf b = {0};
    CHECK_OK(ss_read_file(path, &b, &err), &err);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "precious", 8);
    ss_buf_free(&b);
    assert_int_equal(count_entries(dir), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_u16),
        cmocka_unit_test(test_roundtrip_u32),
        cmocka_unit_test(test_empty_shard_and_empty_docs),
        cmocka_unit_test(test_constant_memory_read),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_reader_rejects_out_of_vocab_id),
        cmocka_unit_test(test_vocab_beyond_int32),
        cmocka_unit_test(test_writer_rejects_bad_ids_and_aborts_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
