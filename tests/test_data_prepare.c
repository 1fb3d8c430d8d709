/* ss_prepare_corpus with GPT-2's tokenizer: the documents read back from the
 * shards (split at the separator, decoded) must equal the documents cut from
 * the input by a naive reference here; pieces of big files must encode to
 * exactly the ids of the whole file; the val split is a deterministic,
 * seed-dependent choice; meta.json agrees with the stats. */
#include "testutil.h"

#include <cJSON.h>
#include <libgen.h>

#include "selfsup/io.h"
#include "selfsup/shard.h"
#include "selfsup/tokenizer.h"

static char gpt2_dir[4096];
static ss_tokenizer *gpt2;

static int setup(void **state) {
    (void)state;
    const char *enc = test_data_path("gpt2-tokenizer", "encoder.json");
    snprintf(gpt2_dir, sizeof gpt2_dir, "%s", enc);
    dirname(gpt2_dir);
    ss_error err = {0};
    if (ss_tokenizer_load(&gpt2, gpt2_dir, &err)) fail_msg("%s", err.msg);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ss_tokenizer_free(gpt2);
    return 0;
}

/* A list of byte strings. */
typedef struct {
    char **s;
    size_t *len, n;
} strlist;

static void sl_push(strlist *l, const char *s, size_t n) {
    l->s = realloc(l->s, (l->n + 1) * sizeof *l->s);
    l->len = realloc(l->len, (l->n + 1) * sizeof *l->len);
    l->s[l->n] = malloc(n + 1);
    memcpy(l->s[l->n], s, n);
    l->s[l->n][n] = '\0';
    l->len[l->n++] = n;
}

static void sl_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    free(l->len);
    memset(l, 0, sizeof *l);
}

static void write_text(const char *path, const char *s, size_t n) {
    ss_error err = {0};
    CHECK_OK(ss_write_file_atomic(path, s, n, &err), &err);
}

/* ---- naive reference document cutting ---- */

static size_t strip_eol(const char *s, size_t n) {
    if (n && s[n - 1] == '\n') {
        n--;
        if (n && s[n - 1] == '\r') n--;
    }
    return n;
}

static int blank_line(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n\v\f", s[i])) return 0;
    return 1;
}

/* Documents of text under "line" (blank = 0) or "blank" (blank = 1) rules. */
static void ref_docs(const char *text, size_t len, int blank, strlist *out) {
    size_t pos = 0, start = 0, end = 0;
    int in_block = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - text - pos) + 1 : len - pos;
        const char *line = text + pos;
        if (!blank) {
            if (strip_eol(line, n)) sl_push(out, line, strip_eol(line, n));
        } else if (blank_line(line, n)) {
            if (in_block) sl_push(out, text + start, strip_eol(text + start, end - start));
            in_block = 0;
        } else {
            if (!in_block) start = pos;
            in_block = 1;
            end = pos + n;
        }
        pos += n;
    }
    if (in_block) sl_push(out, text + start, strip_eol(text + start, end - start));
}

/* ---- reading a prepared split back ---- */

/* All ids of a split, through ss_shardset. */
static ss_ids read_split(const char *dir, const char *split) {
    ss_error err = {0};
    ss_shardset *s;
    CHECK_OK(ss_shardset_open(&s, dir, split, &err), &err);
    ss_ids ids = {0};
    int32_t buf[1000];
    size_t got;
    do {
        CHECK_OK(ss_shardset_next(s, buf, 1000, &got, &err), &err);
        for (size_t i = 0; i < got; i++) CHECK_OK(ss_ids_push(&ids, buf[i], &err), &err);
    } while (got);
    assert_int_equal(ids.n, ss_shardset_tokens(s));
    ss_shardset_close(s);
    return ids;
}

/* Decoded documents of a split: the id stream cut after each separator. */
static void split_docs(const char *dir, const char *split, strlist *out) {
    ss_ids ids = read_split(dir, split);
    ss_error err = {0};
    size_t start = 0;
    for (size_t i = 0; i < ids.n; i++) {
        if (ids.ids[i] != 50256) continue;
        ss_buf b = {0};
        CHECK_OK(ss_tokenizer_decode(gpt2, ids.ids + start, i - start, &b, &err), &err);
        sl_push(out, b.data ? b.data : "", b.len);
        ss_buf_free(&b);
        start = i + 1;
    }
    assert_int_equal(start, ids.n); /* the stream ends with a separator */
    ss_ids_free(&ids);
}

static ss_prepare_opts opts_for(const char *out, ss_doc_boundary b, double val) {
    return (ss_prepare_opts){.tokenizer_path = gpt2_dir, .out_dir = out, .val_fraction = val,
                             .seed = 1234, .boundary = b, .nthreads = 2};
}

static void prepare(const ss_prepare_opts *o, const char **paths, size_t n,
                    ss_prepare_stats *st) {
    ss_error err = {0};
    CHECK_OK(ss_prepare_corpus(o, paths, n, st, &err), &err);
}

static void expect_same(const strlist *got, const strlist *want) {
    assert_int_equal(got->n, want->n);
    for (size_t i = 0; i < got->n; i++)
        if (got->len[i] != want->len[i] || memcmp(got->s[i], want->s[i], got->len[i]))
            fail_msg("document %zu: got '%s' want '%s'", i, got->s[i], want->s[i]);
}

static const char small[] =
    "Alpha beta.\n\nGamma delta\nepsilon.\n   \n\n\nZeta eta theta\r\n\n"
    "  indented start\n\tcaf\xc3\xa9 \xe2\x82\xac 42\n\nlast line, no newline";

static void test_boundaries_small_text(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char in[512], in2[512], out[512];
    snprintf(in, sizeof in, "%s/small.txt", dir);
    snprintf(in2, sizeof in2, "%s/two.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    write_text(in, small, strlen(small));
    write_text(in2, "second file\n", 12);
    const char *paths[] = {in, in2};
    size_t want_counts[3] = {9, 6, 2};
    for (int b = 0; b < 3; b++) {
        strlist want = {0}, got = {0};
        if (b < 2) {
            ref_docs(small, strlen(small), b, &want);
            ref_docs("second file\n", 12, b, &want);
        } else {
            sl_push(&want, small, strlen(small));
            sl_push(&want, "second file\n", 12);
        }
        assert_int_equal(want.n, want_counts[b]);
        ss_prepare_opts o = opts_for(out, (ss_doc_boundary)b, 0.0);
        ss_prepare_stats st;
        prepare(&o, paths, 2, &st);
        assert_int_equal(st.docs[0], want.n);
        assert_int_equal(st.docs[1], 0);
        assert_int_equal(st.shards[1], 0);
        split_docs(out, "train", &got);
        expect_same(&got, &want);
        /* the decoded stream is the documents joined by the separator */
        ss_ids ids = read_split(out, "train");
        ss_buf dec = {0}, joined = {0};
        ss_error err = {0};
        CHECK_OK(ss_tokenizer_decode(gpt2, ids.ids, ids.n, &dec, &err), &err);
        uint64_t text_bytes = 0;
        for (size_t i = 0; i < want.n; i++) {
            CHECK_OK(ss_buf_append(&joined, want.s[i], want.len[i], &err), &err);
            CHECK_OK(ss_buf_append(&joined, "<|endoftext|>", 13, &err), &err);
            text_bytes += want.len[i];
        }
        assert_int_equal(dec.len, joined.len);
        assert_memory_equal(dec.data, joined.data, dec.len);
        assert_int_equal(st.text_bytes[0], text_bytes);
        assert_int_equal(st.tokens[0], ids.n);
        ss_buf_free(&dec);
        ss_buf_free(&joined);
        ss_ids_free(&ids);
        sl_free(&want);
        sl_free(&got);
    }
}

/* A big file as one document is encoded in pieces; the pieces' ids must be
 * exactly the ids of the whole text, whatever the lines around a cut start
 * or end with (spaces, NBSP, CRLF, newline runs, contractions, CJK, invalid
 * bytes). */
static void check_file_doc(const char *const *kinds, size_t n_kinds, size_t n_risky,
                           size_t min_bytes) {
    const char *dir = test_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/big.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    ss_buf text = {0};
    ss_error err = {0};
    uint64_t r = 42;
    while (text.len < min_bytes) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        /* kinds[0..n_risky) are 50 times likelier than the rest */
        size_t pick = (r >> 33) % (50 * n_risky + n_kinds - n_risky);
        const char *k = kinds[pick < 50 * n_risky ? pick / 50 : pick - 49 * n_risky];
        CHECK_OK(ss_buf_append(&text, k, strlen(k), &err), &err);
    }
    write_text(in, text.data, text.len);
    const char *paths[] = {in};
    ss_prepare_opts o = opts_for(out, SS_DOC_FILE, 0.0);
    ss_prepare_stats st;
    prepare(&o, paths, 1, &st);
    ss_ids whole = {0};
    CHECK_OK(ss_tokenizer_encode(gpt2, text.data, text.len, 0, &whole, &err), &err);
    ss_ids got = read_split(out, "train");
    assert_int_equal(got.n, whole.n + 1);
    assert_memory_equal(got.ids, whole.ids, whole.n * sizeof *whole.ids);
    assert_int_equal(got.ids[whole.n], 50256);
    assert_int_equal(st.docs[0], 1);
    assert_int_equal(st.text_bytes[0], text.len);
    ss_ids_free(&whole);
    ss_ids_free(&got);
    ss_buf_free(&text);
}

static void test_file_pieces_match_whole_encoding(void **state) {
    (void)state;
    /* all kinds of line starts and ends, over more than one 8 MB batch */
    static const char *const mixed[] = {
        "Plain words on a line.\n", "   three spaces first\n", "\tTab first\n",
        "\xc2\xa0nbsp first\n", "'s contraction first\n", "123 digits\n", "\n", "\n\n\n",
        "\xe3\x80\x80ideographic space\n", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e text\n",
        "  \n", "!!! punctuation\n", "\xff invalid byte\n", "trailing spaces   \n",
        "crlf line\r\n", "\r\n", "ends in nbsp\xc2\xa0\n", "ends in U+3000\xe3\x80\x80\n",
        "ends in CJK \xe8\xaa\x9e\n", "ends in an invalid byte \xff\n", "ends in 7\n",
        "ends in tab\t\n", "'ll\n"};
    check_file_doc(mixed, sizeof mixed / sizeof *mixed, 0, 9u << 20);
    /* mostly lines where a cut would be wrong (white space on both sides of
     * the line end, newline runs), so every cut must wait for a safe line */
    static const char *const risky[] = {
        " ends in a space \n", " ends in nbsp\xc2\xa0\n", "\n\n", "  \n", " crlf \r\n",
        "\xe3\x80\x80wide\xe3\x80\x80\n", "safe line\n", "safe\xe8\xaa\x9e\r\n", "x\n"};
    check_file_doc(risky, sizeof risky / sizeof *risky, 6, 3u << 20);
}

/* Names of the val documents of a line-per-document corpus. */
static void val_docs(const char *in, const char *out, uint64_t seed, double f, strlist *v,
                     ss_prepare_stats *st) {
    ss_prepare_opts o = opts_for(out, SS_DOC_LINE, f);
    o.seed = seed;
    const char *paths[] = {in};
    prepare(&o, paths, 1, st);
    split_docs(out, "val", v);
}

static int same_list(const strlist *a, const strlist *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->s[i], b->s[i])) return 0;
    return 1;
}

static void test_val_split_deterministic_per_seed(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/docs.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    ss_buf text = {0};
    ss_error err = {0};
    for (int i = 0; i < 400; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "document number %d\n", i);
        CHECK_OK(ss_buf_append(&text, line, (size_t)n, &err), &err);
    }
    write_text(in, text.data, text.len);
    strlist a = {0}, b = {0}, c = {0}, t = {0};
    ss_prepare_stats sa, sb, sc;
    val_docs(in, out, 7, 0.2, &a, &sa);
    val_docs(in, out, 7, 0.2, &b, &sb);
    val_docs(in, out, 8, 0.2, &c, &sc);
    assert_true(same_list(&a, &b));
    assert_false(same_list(&a, &c));
    assert_int_equal(sa.docs[0] + sa.docs[1], 400);
    assert_true(sa.docs[1] >= 50 && sa.docs[1] <= 110); /* Binomial(400, 0.2): 80 +- 8 */
    /* train and val partition the documents, in input order within each */
    split_docs(out, "train", &t);
    assert_int_equal(t.n + c.n, 400);
    sl_free(&a); sl_free(&b); sl_free(&c); sl_free(&t);
    /* a tiny fraction still yields one val document */
    val_docs(in, out, 7, 1e-9, &a, &sa);
    assert_int_equal(sa.docs[1], 1);
    assert_int_equal(a.n, 1);
    sl_free(&a);
    ss_buf_free(&text);
}

static uint64_t json_u64(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(x));
    return (uint64_t)x->valuedouble;
}

/* tinyshakespeare by blank-line blocks, in small shards: the decoded
 * documents of train + val, as multisets, are the input's blocks; meta.json
 * matches the stats; every shard respects the size limit. */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_tinyshakespeare_blocks(void **state) {
    (void)state;
    const char *path = test_data_path("tinyshakespeare", "input.txt");
    ss_buf text = {0};
    ss_error err = {0};
    CHECK_OK(ss_read_file(path, &text, &err), &err);
    strlist want = {0}, got = {0};
    ref_docs(text.data, text.len, 1, &want);
    assert_true(want.n > 5000);
    const char *dir = test_tmpdir();
    char out[512];
    snprintf(out, sizeof out, "%s/out", dir);
    ss_prepare_opts o = opts_for(out, SS_DOC_BLANK, 0.1);
    o.shard_tokens = 50000;
    ss_prepare_stats st;
    const char *paths[] = {path};
    prepare(&o, paths, 1, &st);
    assert_true(st.shards[0] >= 5);
    split_docs(out, "train", &got);
    split_docs(out, "val", &got);
    assert_int_equal(got.n, want.n);
    assert_int_equal(st.docs[0] + st.docs[1], want.n);
    qsort(got.s, got.n, sizeof *got.s, cmp_str);
    qsort(want.s, want.n, sizeof *want.s, cmp_str);
    for (size_t i = 0; i < got.n; i++) assert_string_equal(got.s[i], want.s[i]);

    char meta_path[600];
    snprintf(meta_path, sizeof meta_path, "%s/meta.json", out);
    ss_buf mt = {0};
    CHECK_OK(ss_read_file(meta_path, &mt, &err), &err);
    cJSON *meta = cJSON_Parse(mt.data);
    assert_non_null(meta);
    assert_string_equal(cJSON_GetObjectItem(meta, "doc_boundary")->valuestring, "blank");
    assert_int_equal(json_u64(meta, "vocab_size"), 50257);
    assert_int_equal(json_u64(meta, "separator_id"), 50256);
    const char *names[2] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        const cJSON *sp = cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "splits"), names[s]);
        assert_int_equal(json_u64(sp, "docs"), st.docs[s]);
        assert_int_equal(json_u64(sp, "tokens"), st.tokens[s]);
        assert_int_equal(json_u64(sp, "text_bytes"), st.text_bytes[s]);
        const cJSON *shards = cJSON_GetObjectItem(sp, "shards");
        assert_int_equal(cJSON_GetArraySize(shards), st.shards[s]);
        const cJSON *it;
        cJSON_ArrayForEach(it, shards) {
            char sp_path[1024];
            snprintf(sp_path, sizeof sp_path, "%s/%s", out, it->valuestring);
            ss_shard_header h;
            CHECK_OK(ss_shard_read_header(sp_path, &h, &err), &err);
            assert_true(h.n_tokens <= 50000);
        }
    }
    const cJSON *in0 = cJSON_GetArrayItem(cJSON_GetObjectItem(meta, "inputs"), 0);
    assert_int_equal(json_u64(in0, "bytes"), text.len);
    cJSON_Delete(meta);
    ss_buf_free(&mt);
    uint64_t text_bytes = 0;
    for (size_t i = 0; i < want.n; i++) text_bytes += want.len[i];
    assert_int_equal(st.text_bytes[0] + st.text_bytes[1], text_bytes);

    /* preparing again with bigger shards leaves no stale small shards */
    size_t old_shards = st.shards[0];
    o.shard_tokens = 0; /* default */
    prepare(&o, paths, 1, &st);
    assert_int_equal(st.shards[0], 1);
    char stale[600];
    snprintf(stale, sizeof stale, "%s/train-%05zu.shard", out, old_shards - 1);
    assert_false(ss_file_exists(stale));
    sl_free(&want);
    sl_free(&got);
    ss_buf_free(&text);
}

static void test_errors(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/a.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    write_text(in, "some text\n", 10);
    const char *paths[] = {in};
    ss_prepare_opts o = opts_for(out, SS_DOC_LINE, 0.1);
    o.separator = "<|no such token|>";
    ss_prepare_stats st;
    ss_error err = {0};
    assert_int_equal(ss_prepare_corpus(&o, paths, 1, &st, &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "<|no such token|>"));
    o.separator = NULL;
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.txt", dir);
    const char *bad[] = {in, missing};
    assert_int_equal(ss_prepare_corpus(&o, bad, 2, &st, &err), SS_ERR_IO);
    assert_non_null(strstr(err.msg, missing));
    char meta[600];
    snprintf(meta, sizeof meta, "%s/meta.json", out);
    assert_false(ss_file_exists(meta)); /* a failed run leaves no meta.json */
    o.val_fraction = 1.5;
    assert_int_equal(ss_prepare_corpus(&o, paths, 1, &st, &err), SS_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundaries_small_text),
        cmocka_unit_test(test_file_pieces_match_whole_encoding),
        cmocka_unit_test(test_val_split_deterministic_per_seed),
        cmocka_unit_test(test_tinyshakespeare_blocks),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
