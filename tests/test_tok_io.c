/* tokenizer.json save -> load round trips, and every kind of bad file gives
 * SS_ERR_FORMAT (or SS_ERR_IO when missing) with the file named; an id near
 * 2^31 is rejected without a table of that size (issue 18, item 9). */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "testutil.h"

#include "selfsup/tokenizer.h"

/* A small tokenizer: 256 byte tokens, merges for "th", "the", " the",
 * added tokens "[MASK]" (special) and "<x y>" (not special). */
static ss_tokenizer *build_small(ss_normalization norm) {
    static char bytes[256][4];
    const char *vocab[256 + 5];
    for (int b = 0; b < 256; b++) {
        uint32_t cp = ss_byte_to_unicode((uint8_t)b);
        memset(bytes[b], 0, 4);
        if (cp < 0x80) bytes[b][0] = (char)cp;
        else { bytes[b][0] = (char)(0xC0 | (cp >> 6)); bytes[b][1] = (char)(0x80 | (cp & 0x3F)); }
        vocab[b] = bytes[b];
    }
    vocab[256] = "th";
    vocab[257] = "the";
    vocab[258] = "\xc4\xa0the";
    vocab[259] = "[MASK]";
    vocab[260] = "<x y>";
    /* ids 0..255 are the bytes in order, so a byte's id is its value */
    const int32_t merges[3][2] = {{'t', 'h'}, {256, 'e'}, {' ', 257}};
    ss_added_token added[2] = {{"[MASK]", 259, 1}, {"<x y>", 260, 0}};
    ss_tokenizer_spec spec = {261, vocab, 3, merges, 2, added, norm, 0};
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_build(&t, &spec, &err), &err);
    return t;
}

static void encode_ids(ss_tokenizer *t, const char *s, int allow, ss_ids *ids) {
    ss_error err = {0};
    ids->n = 0;
    CHECK_OK(ss_tokenizer_encode(t, s, strlen(s), allow, ids, &err), &err);
}

static void assert_same_tokenizer(ss_tokenizer *a, ss_tokenizer *b) {
    assert_int_equal(ss_tokenizer_vocab_size(a), ss_tokenizer_vocab_size(b));
    assert_int_equal(ss_tokenizer_num_merges(a), ss_tokenizer_num_merges(b));
    assert_int_equal(ss_tokenizer_normalization(a), ss_tokenizer_normalization(b));
    for (int32_t id = 0; id < (int32_t)ss_tokenizer_vocab_size(a); id++)
        assert_string_equal(ss_tokenizer_token(a, id), ss_tokenizer_token(b, id));
    assert_int_equal(ss_tokenizer_num_added(a), ss_tokenizer_num_added(b));
    for (size_t i = 0; i < ss_tokenizer_num_added(a); i++) {
        const ss_added_token *x = ss_tokenizer_added(a, i), *y = ss_tokenizer_added(b, i);
        assert_string_equal(x->content, y->content);
        assert_int_equal(x->id, y->id);
        assert_int_equal(x->special, y->special);
    }
    const char *texts[] = {"the theme of the day", "[MASK] <x y> the", "e\xcc\x81 caf\xc3\xa9\n\n  x",
                           "Hello world, it's 2024!"};
    ss_ids ia = {0}, ib = {0};
    for (size_t k = 0; k < 4; k++)
        for (int allow = 0; allow < 2; allow++) {
            encode_ids(a, texts[k], allow, &ia);
            encode_ids(b, texts[k], allow, &ib);
            assert_int_equal(ia.n, ib.n);
            assert_memory_equal(ia.ids, ib.ids, ia.n * sizeof(int32_t));
        }
    ss_ids_free(&ia);
    ss_ids_free(&ib);
}

static void test_save_load_small(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/tok.json", test_tmpdir());
    for (int norm = SS_NORM_NONE; norm <= SS_NORM_NFKC; norm++) {
        ss_tokenizer *t = build_small((ss_normalization)norm), *u = NULL;
        ss_error err = {0};
        CHECK_OK(ss_tokenizer_save(t, path, &err), &err);
        CHECK_OK(ss_tokenizer_load(&u, path, &err), &err);
        assert_same_tokenizer(t, u);
        /* the merges themselves: " the" must come out as one token */
        ss_ids ids = {0};
        encode_ids(u, " the", 0, &ids);
        assert_int_equal(ids.n, 1);
        assert_int_equal(ids.ids[0], 258);
        /* the non-special added token is matched even without allow_special */
        encode_ids(u, "a<x y>", 0, &ids);
        assert_int_equal(ids.n, 2);
        assert_int_equal(ids.ids[1], 260);
        ss_ids_free(&ids);
        ss_tokenizer_free(t);
        ss_tokenizer_free(u);
    }
}

static void test_save_load_gpt2(void **state) {
    (void)state;
    char dir[4096], path[512];
    snprintf(dir, sizeof dir, "%s", test_data_path("gpt2-tokenizer", "encoder.json"));
    *strrchr(dir, '/') = '\0';
    const char *tmp = test_tmpdir();
    snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
    ss_tokenizer *t = NULL, *u = NULL, *w = NULL;
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_load(&t, dir, &err), &err);
    CHECK_OK(ss_tokenizer_save(t, path, &err), &err);
    CHECK_OK(ss_tokenizer_load(&u, path, &err), &err);
    assert_same_tokenizer(t, u);
    CHECK_OK(ss_tokenizer_load(&w, tmp, &err), &err); /* a directory with tokenizer.json */
    assert_same_tokenizer(t, w);
    ss_tokenizer_free(t);
    ss_tokenizer_free(u);
    ss_tokenizer_free(w);
}

/* ---- bad files ----------------------------------------------------------------------- */

/* Save the small tokenizer, let mutate() edit its JSON, write it back. */
static const char *variant(void (*mutate)(cJSON *root)) {
    static char path[512];
    snprintf(path, sizeof path, "%s/bad.json", test_tmpdir());
    ss_tokenizer *t = build_small(SS_NORM_NONE);
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_save(t, path, &err), &err);
    ss_tokenizer_free(t);
    ss_buf buf = {0};
    CHECK_OK(ss_read_file(path, &buf, &err), &err);
    cJSON *root = cJSON_Parse(buf.data);
    assert_non_null(root);
    mutate(root);
    char *s = cJSON_Print(root);
    CHECK_OK(ss_write_file_atomic(path, s, strlen(s), &err), &err);
    cJSON_free(s);
    cJSON_Delete(root);
    ss_buf_free(&buf);
    return path;
}

static void expect_error(const char *path, ss_status code, const char *needle) {
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    ss_status st = ss_tokenizer_load(&t, path, &err);
    if (st != code) fail_msg("loading %s: got %s (%s), expected %s", path, ss_status_name(st), err.msg,
                             ss_status_name(code));
    assert_null(t);
    if (!strstr(err.msg, path)) fail_msg("message does not name the file: %s", err.msg);
    if (needle && !strstr(err.msg, needle)) fail_msg("message lacks '%s': %s", needle, err.msg);
}

static cJSON *model_of(cJSON *root) { return cJSON_GetObjectItem(root, "model"); }
static void drop_model(cJSON *r) { cJSON_DeleteItemFromObject(r, "model"); }
static void drop_merges(cJSON *r) { cJSON_DeleteItemFromObject(model_of(r), "merges"); }
static void drop_vocab(cJSON *r) { cJSON_DeleteItemFromObject(model_of(r), "vocab"); }
static void bad_merge_part(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(model_of(r), "merges"), 1, cJSON_CreateString("th zz"));
}
static void bad_merge_result(cJSON *r) { /* "h t" -> "ht" is not a token */
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(model_of(r), "merges"), 0, cJSON_CreateString("h t"));
}
static void bad_merge_shape(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(model_of(r), "merges"), 2, cJSON_CreateNumber(7));
}
static void whitespace_pretok(cJSON *r) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "Whitespace");
    cJSON_ReplaceItemInObject(r, "pre_tokenizer", p);
}
static void prefix_space(cJSON *r) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "pre_tokenizer"), "add_prefix_space", cJSON_CreateTrue());
}
static void wordpiece(cJSON *r) {
    cJSON_ReplaceItemInObject(model_of(r), "type", cJSON_CreateString("WordPiece"));
}
static void sparse_ids(cJSON *r) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(model_of(r), "vocab"), "th", cJSON_CreateNumber(9999));
}
static void strip_normalizer(cJSON *r) { /* HF's Strip: not supported */
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "Strip");
    cJSON_ReplaceItemInObject(r, "normalizer", p);
}
static void merges_as_pairs(cJSON *r) {
    cJSON *m = cJSON_GetObjectItem(model_of(r), "merges"), *pairs = cJSON_CreateArray();
    for (cJSON *s = m->child; s; s = s->next) {
        char *sp = strchr(s->valuestring, ' ');
        *sp = '\0';
        const char *ab[2] = {s->valuestring, sp + 1};
        cJSON_AddItemToArray(pairs, cJSON_CreateStringArray(ab, 2));
    }
    cJSON_ReplaceItemInObject(model_of(r), "merges", pairs);
}

static void test_bad_files(void **state) {
    (void)state;
    expect_error(variant(drop_model), SS_ERR_FORMAT, "model");
    expect_error(variant(drop_merges), SS_ERR_FORMAT, "model.merges");
    expect_error(variant(drop_vocab), SS_ERR_FORMAT, "model.vocab");
    expect_error(variant(bad_merge_part), SS_ERR_FORMAT, "model.merges[1]: 'th zz' has part 'zz' not in vocab");
    expect_error(variant(bad_merge_result), SS_ERR_FORMAT, "model.merges[0]");
    expect_error(variant(bad_merge_shape), SS_ERR_FORMAT, "model.merges[2]");
    expect_error(variant(whitespace_pretok), SS_ERR_FORMAT, "pre_tokenizer");
    expect_error(variant(prefix_space), SS_ERR_FORMAT, "add_prefix_space");
    expect_error(variant(wordpiece), SS_ERR_FORMAT, "WordPiece");
    expect_error(variant(sparse_ids), SS_ERR_FORMAT, "dense");
    expect_error(variant(strip_normalizer), SS_ERR_FORMAT, "normalizer: type 'Strip' is not supported");

    const char *dir = test_tmpdir();
    char path[512];
    ss_error err = {0};
    snprintf(path, sizeof path, "%s/broken.json", dir);
    CHECK_OK(ss_write_file_atomic(path, "{\"version\": \"1.0\", \"model\": {", 30, &err), &err);
    expect_error(path, SS_ERR_FORMAT, "malformed JSON");
    snprintf(path, sizeof path, "%s/missing.json", dir);
    expect_error(path, SS_ERR_IO, NULL);
    expect_error(dir, SS_ERR_IO, NULL); /* a directory with neither format */
}

static void test_merges_as_pairs(void **state) {
    (void)state;
    ss_tokenizer *t = NULL, *ref = build_small(SS_NORM_NONE);
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_load(&t, variant(merges_as_pairs), &err), &err);
    assert_same_tokenizer(t, ref);
    ss_tokenizer_free(t);
    ss_tokenizer_free(ref);
}

static void test_bad_gpt2_files(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char enc[512], bpe[512];
    ss_buf buf = {0};
    ss_error err = {0};
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", dir);
    CHECK_OK(ss_read_file(test_data_path("gpt2-tokenizer", "encoder.json"), &buf, &err), &err);
    CHECK_OK(ss_write_file_atomic(enc, buf.data, buf.len, &err), &err);
    const char *merges = "#version: 0.2\n\xc4\xa0 t\nnot_a_token x\n";
    CHECK_OK(ss_write_file_atomic(bpe, merges, strlen(merges), &err), &err);
    expect_error(dir, SS_ERR_FORMAT, "line 3: 'not_a_token x' has part 'not_a_token' not in vocab");
    ss_buf_free(&buf);
    /* a NUL inside a merge's part: no read past a shorter token's end (issue 18, item 2: ASan saw a heap
       over-read in the token table's lookup) */
    const char *tiny = "{\"a\":0,\"b\":1,\"ab\":2}";
    CHECK_OK(ss_write_file_atomic(enc, tiny, strlen(tiny), &err), &err);
    char nul_merge[64] = "#version: 0.2\na";
    size_t n = strlen(nul_merge) + 1; /* the NUL after "a" */
    memset(nul_merge + n, 'z', 23);
    n += 23;
    memcpy(nul_merge + n, " b\n", 3);
    n += 3;
    CHECK_OK(ss_write_file_atomic(bpe, nul_merge, n, &err), &err);
    ss_tokenizer *t = NULL;
    assert_int_not_equal(ss_tokenizer_load(&t, dir, &err), SS_OK);
    assert_null(t);
}

/* Peak virtual memory of this process in kB (/proc/self/status VmPeak). */
static long vm_peak_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmPeak: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static void huge_added_id(cJSON *r) { /* tokenizer.json: an added token's id near 2^31 */
    cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "added_tokens"), 0);
    cJSON_ReplaceItemInObject(a, "id", cJSON_CreateNumber(2147483000));
}

/* An id near 2^31 in encoder.json (a token's, or <|endoftext|>'s) or in
 * tokenizer.json's added tokens: a clear error at once, without the 16 GB
 * table that id would size (the loader used to calloc it: virtual memory
 * jumped by 16 GB, and under a memory limit the error was "out of memory"). */
static void test_huge_id_is_bounded(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    char enc[512], bpe[512];
    ss_error err = {0};
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", dir);
    const char *merges = "#version: 0.2\na b\n";
    CHECK_OK(ss_write_file_atomic(bpe, merges, strlen(merges), &err), &err);
    static const char *const encs[] = {"{\"a\":0,\"b\":1,\"ab\":2147483000}",
                                       "{\"a\":0,\"b\":1,\"ab\":2,\"<|endoftext|>\":2147483000}"};
    static const char *const who[] = {"'ab' has id 2147483000, but there are only 3 tokens (ids must be dense 0..2)",
                                      "'<|endoftext|>' has id 2147483000, but there are only 5 tokens"};
    long before = vm_peak_kb();
    assert_true(before > 0);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(ss_write_file_atomic(enc, encs[k], strlen(encs[k]), &err), &err);
        expect_error(dir, SS_ERR_FORMAT, who[k]);
    }
    expect_error(variant(huge_added_id), SS_ERR_FORMAT, "'[MASK]' has id 2147483000");
    long after = vm_peak_kb();
    printf("# VmPeak %ld kB before, %ld kB after\n", before, after);
    assert_true(after - before < 256 * 1024);
}

static void test_build_rejects_bad_specs(void **state) {
    (void)state;
    const char *vocab[2] = {"a", "b"};
    ss_tokenizer_spec spec = {2, vocab, 0, NULL, 0, NULL, SS_NORM_NONE, 0};
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    /* a byte-level vocab must hold all 256 bytes */
    assert_int_equal(ss_tokenizer_build(&t, &spec, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "byte"));
    assert_null(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_small),
        cmocka_unit_test(test_save_load_gpt2),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_merges_as_pairs),
        cmocka_unit_test(test_bad_gpt2_files),
        cmocka_unit_test(test_huge_id_is_bounded),
        cmocka_unit_test(test_build_rejects_bad_specs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
