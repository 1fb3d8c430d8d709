/* safetensors: round trips of every common dtype, the on-disk layout checked
 * by an independent parse (cJSON), every class of corrupt file rejected with
 * a message naming the file and the tensor/field, truncation at every length,
 * the data checksum (a flipped byte detected), and atomic replacement. With SS_ST_OUT=DIR / SS_ST_IN=FILE set it instead
 * writes / reads the interop file that tests/st_check.py checks / writes
 * (driven by tests/cli_safetensors.sh). */
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>

#include "testutil.h"

#include "selfsup/io.h"
#include "selfsup/safetensors.h"

static char *path_in(const char *dir, const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, *len, f), *len);
    fclose(f);
    return p;
}

/* ---- the interop tensor set (tests/st_check.py defines the same) ---------------- */

static float emb[15], bias[3];
static int64_t step_val = 123456789012;
static int32_t tokens[8];
static uint8_t mask[3] = {0, 1, 255};
static double dbl[2] = {3.141592653589793, -2.718281828459045};
static const char *meta_cfg = "{\"d_model\": 3, \"name\": \"\xc3\xbc\\n\"}";

static void fill_interop(void) {
    for (int i = 0; i < 15; i++) emb[i] = (float)(i - 7) * 0.25f;
    for (int i = 0; i < 3; i++) bias[i] = 1.0f / (float)(i + 1);
    for (int i = 0; i < 8; i++) tokens[i] = i * i - 10;
}

/* Mixed dtypes in an order that leaves "double" misaligned after "mask". */
static size_t interop_tensors(ss_st_tensor *t) {
    fill_interop();
    size_t n = 0;
    t[n++] = (ss_st_tensor){"emb.weight", SS_F32, 2, {5, 3}, emb};
    t[n++] = (ss_st_tensor){"ln.bias", SS_F32, 1, {3}, bias};
    t[n++] = (ss_st_tensor){"step", SS_I64, 0, {0}, &step_val};
    t[n++] = (ss_st_tensor){"tokens", SS_I32, 2, {2, 4}, tokens};
    t[n++] = (ss_st_tensor){"mask", SS_U8, 1, {3}, mask};
    t[n++] = (ss_st_tensor){"double", SS_F64, 1, {2}, dbl};
    t[n++] = (ss_st_tensor){"empty", SS_F32, 2, {0, 4}, NULL};
    return n;
}


static void write_interop(const char *path) {
    ss_st_tensor t[8];
    size_t n = interop_tensors(t);
    ss_st_meta meta[2] = {{"format", "pt"}, {"selfsup.config", meta_cfg}};
    ss_error err = {0};
    CHECK_OK(ss_safetensors_write(path, t, n, meta, 2, &err), &err);
}

/* Every tensor of the interop set, whatever order the file has them in. */
static void check_interop(const char *path) {
    ss_st_tensor t[8];
    size_t n = interop_tensors(t);
    ss_error err = {0};
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, path, &err), &err);
    assert_int_equal(ss_safetensors_count(f), n);
    for (size_t k = 0; k < n; k++) {
        const ss_st_info *info = ss_safetensors_find(f, t[k].name);
        if (!info) fail_msg("%s: tensor '%s' missing", path, t[k].name);
        assert_int_equal(info->dtype, t[k].dtype);
        assert_int_equal(info->ndim, t[k].ndim);
        int64_t numel = 1;
        for (int d = 0; d < t[k].ndim; d++) {
            assert_int_equal(info->shape[d], t[k].shape[d]);
            numel *= t[k].shape[d];
        }
        assert_int_equal(info->numel, numel);
        assert_int_equal(info->nbytes, (size_t)numel * ss_dtype_size(t[k].dtype));
        assert_int_equal((uintptr_t)info->data % ss_dtype_size(t[k].dtype), 0);
        if (numel) assert_memory_equal(info->data, t[k].data, info->nbytes);
    }
    assert_string_equal(ss_safetensors_meta(f, "format"), "pt");
    assert_string_equal(ss_safetensors_meta(f, "selfsup.config"), meta_cfg);
    assert_null(ss_safetensors_meta(f, "missing"));
    ss_safetensors_close(f);
}

/* ---- unit tests ------------------------------------------------------------------- */

static void test_roundtrip(void **state) {
    (void)state;
    const char *path = path_in(test_tmpdir(), "model.safetensors");
    write_interop(path);
    check_interop(path);

    /* Accessors: file order is the written order; typed getters. */
    ss_error err = {0};
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, path, &err), &err);
    assert_string_equal(ss_safetensors_path(f), path);
    assert_string_equal(ss_safetensors_name(f, 0), "emb.weight");
    assert_string_equal(ss_safetensors_name(f, 6), "empty");
    assert_null(ss_safetensors_name(f, 7));
    assert_int_equal(ss_safetensors_meta_count(f), 3); /* the caller's two, then the writer's data_xxh64 */
    assert_string_equal(ss_safetensors_meta_key(f, 1), "selfsup.config");
    assert_string_equal(ss_safetensors_meta_key(f, 2), "data_xxh64");
    const float *w;
    CHECK_OK(ss_safetensors_get_f32(f, "emb.weight", 2, (int64_t[]){5, 3}, &w, &err), &err);
    assert_true(w[14] == 1.75f);
    CHECK_OK(ss_safetensors_get_f32(f, "emb.weight", 2, NULL, &w, &err), &err);
    CHECK_OK(ss_safetensors_get_f32(f, "emb.weight", -1, NULL, &w, &err), &err);

    assert_int_equal(ss_safetensors_get_f32(f, "emb.weight", 2, (int64_t[]){3, 5}, &w, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "'emb.weight': shape [5, 3], expected [3, 5]"));
    assert_int_equal(ss_safetensors_get_f32(f, "emb.weight", 1, NULL, &w, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "expected 1 dimensions"));
    assert_int_equal(ss_safetensors_get_f32(f, "tokens", 2, NULL, &w, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "'tokens': dtype I32, expected F32"));
    assert_int_equal(ss_safetensors_get_f32(f, "nope", 1, NULL, &w, &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no tensor 'nope'"));
    const void *p;
    CHECK_OK(ss_safetensors_get(f, "step", SS_I64, 0, NULL, &p, &err), &err);
    assert_true(*(const int64_t *)p == step_val);
    ss_safetensors_close(f);
}

/* The bytes on disk, parsed independently: u64 size multiple of 8, header
 * JSON padded with spaces, offsets contiguous in the given order. */
static void test_layout(void **state) {
    (void)state;
    const char *path = path_in(test_tmpdir(), "m.safetensors");
    write_interop(path);
    size_t len;
    unsigned char *b = read_bytes(path, &len);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | b[i];
    assert_int_equal(hn % 8, 0);
    assert_true(8 + hn <= len);
    char *h = strndup((const char *)b + 8, hn);
    cJSON *root = cJSON_Parse(h);
    assert_non_null(root);
    const char *order[] = {"__metadata__", "emb.weight", "ln.bias", "step", "tokens", "mask", "double", "empty"};
    const int64_t sizes[] = {0, 60, 12, 8, 32, 3, 16, 0};
    int k = 0;
    int64_t off = 0;
    for (cJSON *c = root->child; c; c = c->next, k++) {
        assert_true(k < 8);
        assert_string_equal(c->string, order[k]);
        if (k == 0) continue;
        cJSON *o = cJSON_GetObjectItem(c, "data_offsets");
        assert_int_equal((int64_t)cJSON_GetArrayItem(o, 0)->valuedouble, off);
        off += sizes[k];
        assert_int_equal((int64_t)cJSON_GetArrayItem(o, 1)->valuedouble, off);
    }
    assert_int_equal(k, 8);
    assert_int_equal(8 + hn + (uint64_t)off, len);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "step"), "dtype")->valuestring, "I64");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "step"), "shape")), 0);
    /* The JSON ends with '}' followed only by padding spaces. */
    size_t end = strlen(h);
    while (end && h[end - 1] == ' ') end--;
    assert_int_equal(h[end - 1], '}');
    assert_true(hn - end < 8);
    cJSON_Delete(root);
    free(h);
    free(b);
}

static void test_write_rejects_bad_input(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    const char *path = path_in(dir, "bad.safetensors");
    float x[2] = {1, 2};
    ss_error err = {0};
    ss_st_tensor dup[2] = {{"a", SS_F32, 1, {1}, x}, {"a", SS_F32, 1, {1}, x + 1}};
    assert_int_equal(ss_safetensors_write(path, dup, 2, NULL, 0, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "duplicate tensor name 'a'"));
    assert_non_null(strstr(err.msg, path));
    assert_false(ss_file_exists(path));

    ss_st_tensor reserved = {"__metadata__", SS_F32, 1, {1}, x};
    assert_int_equal(ss_safetensors_write(path, &reserved, 1, NULL, 0, &err), SS_ERR_ARG);
    ss_st_tensor nodata = {"w", SS_F32, 1, {2}, NULL};
    assert_int_equal(ss_safetensors_write(path, &nodata, 1, NULL, 0, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "'w': data is NULL"));
    ss_st_tensor neg = {"w", SS_F32, 2, {2, -1}, x};
    assert_int_equal(ss_safetensors_write(path, &neg, 1, NULL, 0, &err), SS_ERR_ARG);
    ss_st_tensor badutf = {"w\xff", SS_F32, 1, {2}, x};
    assert_int_equal(ss_safetensors_write(path, &badutf, 1, NULL, 0, &err), SS_ERR_ARG);
    ss_st_meta dmeta[2] = {{"k", "1"}, {"k", "2"}};
    ss_st_tensor ok = {"w", SS_F32, 1, {2}, x};
    assert_int_equal(ss_safetensors_write(path, &ok, 1, dmeta, 2, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "duplicate metadata key 'k'"));
    assert_false(ss_file_exists(path));

    /* Zero tensors is a valid (empty) file. */
    CHECK_OK(ss_safetensors_write(path, NULL, 0, NULL, 0, &err), &err);
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, path, &err), &err);
    assert_int_equal(ss_safetensors_count(f), 0);
    assert_null(ss_safetensors_find(f, "w"));
    ss_safetensors_close(f);
}

/* Write an arbitrary header (padded to 8) followed by DATA_LEN bytes. */
static void write_raw(const char *path, const char *header, size_t data_len) {
    size_t hn = strlen(header), padded = (hn + 7) / 8 * 8;
    size_t total = 8 + padded + data_len;
    unsigned char *b = calloc(1, total);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(b + 8, header, hn);
    memset(b + 8 + hn, ' ', padded - hn);
    write_bytes(path, b, total);
    free(b);
}

static void expect_format_error(const char *path, const char *needle) {
    ss_error err = {0};
    ss_safetensors *f = (ss_safetensors *)1;
    ss_status st = ss_safetensors_open(&f, path, &err);
    if (st != SS_ERR_FORMAT) fail_msg("%s: expected a format error containing \"%s\", got %s: %s", path,
                                      needle, ss_status_name(st), err.msg);
    assert_null(f);
    if (!strstr(err.msg, path)) fail_msg("message does not name the file: %s", err.msg);
    if (!strstr(err.msg, needle)) fail_msg("message lacks \"%s\": %s", needle, err.msg);
}

static void test_corrupt_headers(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    const char *p = path_in(dir, "bad.safetensors");
    static const struct { const char *header; size_t data; const char *needle; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "not valid JSON"},
        {"[1,2]", 0, "does not start with '{'"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': missing field 'dtype'"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "tensor 'a': missing field 'shape'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'a': missing field 'data_offsets'"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': unknown dtype 'F33'"},
        {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'dtype' is not a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0] is not a non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "shape[0] is not a non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "'shape' is not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'data_offsets' is not an array of two"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "end before begin"},
        {"{\"blocks.0.ln1.weight\":{\"dtype\":\"F32\",\"shape\":[1000],\"data_offsets\":[0,4000]}}", 3000,
         "tensor 'blocks.0.ln1.weight': data_offsets end 4000 beyond data size 3000 (file truncated?)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor 'a': shape [3] of F32 needs 12 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, "tensor 'b': data_offsets begin 12 leaves a gap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a': data_offsets begin 4 leaves a gap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "cover 8 bytes but the data section has 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "tensor 'a': duplicate tensor name"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "duplicate field 'dtype'"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "'__metadata__' value for 'k' is not a string"},
        {"{\"__metadata__\":[]}", 0, "'__metadata__' is not a JSON object"},
        {"{\"a\":[1]}", 0, "tensor 'a': entry is not a JSON object"},
        {"{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "not valid UTF-8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
         8, "tensor 'a': shape [4294967296, 4294967296, 4294967296] overflows"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_raw(p, cases[i].header, cases[i].data);
        expect_format_error(p, cases[i].needle);
    }
    /* Valid variants the reference accepts: no padding, extra entry fields,
     * zero-size tensors sharing an offset, tensors listed out of order. */
    write_raw(p, "{\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8],\"extra\":1},"
                 "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                 "\"a\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}", 8);
    ss_error err = {0};
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, p, &err), &err);
    assert_string_equal(ss_safetensors_name(f, 0), "a");
    assert_string_equal(ss_safetensors_name(f, 1), "e");
    assert_string_equal(ss_safetensors_name(f, 2), "b");
    assert_int_equal(ss_safetensors_find(f, "a")->numel, 1);
    ss_safetensors_close(f);
}

static void test_corrupt_sizes(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    const char *p = path_in(dir, "s.safetensors");
    write_bytes(p, "", 0);
    expect_format_error(p, "shorter than the 8-byte header size");
    write_bytes(p, "\x10\0\0\0\0", 5);
    expect_format_error(p, "file is 5 bytes");
    unsigned char big[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    write_bytes(p, big, sizeof big);
    expect_format_error(p, "header size 65535 larger than the rest of the file");
    unsigned char huge[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_bytes(p, huge, sizeof huge);
    expect_format_error(p, "larger than the rest of the file");
    unsigned char zero[8] = {0};
    write_bytes(p, zero, sizeof zero);
    expect_format_error(p, "does not start with '{'");
    unsigned char nul[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, ' ', ' ', ' ', ' ', ' '};
    write_bytes(p, nul, sizeof nul);
    expect_format_error(p, "not valid UTF-8 text");

    ss_error err = {0};
    ss_safetensors *f;
    assert_int_equal(ss_safetensors_open(&f, path_in(dir, "missing.safetensors"), &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "missing.safetensors: cannot open"));
    assert_int_equal(ss_safetensors_open(&f, dir, &err), SS_ERR_IO);
}

/* Cutting a valid file at any length is an error (never a crash), and the
 * one-byte cut names the last tensor and suggests truncation. */
static void test_truncation(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    const char *good = path_in(dir, "good.safetensors"), *cut = path_in(dir, "cut.safetensors");
    write_interop(good);
    size_t len;
    unsigned char *b = read_bytes(good, &len);
    write_bytes(cut, b, len - 1);
    expect_format_error(cut, "tensor 'double': data_offsets end 131 beyond data size 130 (file truncated?)");
    for (size_t n = 0; n < len; n++) {
        ss_error err = {0};
        ss_safetensors *f;
        write_bytes(cut, b, n);
        ss_status st = ss_safetensors_open(&f, cut, &err);
        if (st != SS_ERR_FORMAT) fail_msg("cut at %zu of %zu: %s (%s)", n, len, ss_status_name(st), err.msg);
    }
    /* A flipped byte in the header's size field is caught too. */
    b[0] ^= 0x08;
    write_bytes(cut, b, len);
    ss_error err = {0};
    ss_safetensors *f;
    assert_int_equal(ss_safetensors_open(&f, cut, &err), SS_ERR_FORMAT);
    free(b);
}

/* The header's data section start and size (for the checksum tests). */
static size_t data_start(const unsigned char *b) {
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | b[i];
    return 8 + (size_t)hn;
}

/* Every file written carries "data_xxh64", the XXH64 of its data section
 * (16 hex digits); a flipped byte anywhere in the data, or in the stored
 * value, is a format error naming the file; a file without the key (written
 * before it existed, or by another writer) loads unchecked. */
static void test_checksum(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    const char *good = path_in(dir, "ck.safetensors"), *bad = path_in(dir, "ck-bad.safetensors");
    write_interop(good);
    size_t len;
    unsigned char *b = read_bytes(good, &len);
    size_t d0 = data_start(b);
    char *h = strndup((const char *)b + 8, d0 - 8);
    cJSON *root = cJSON_Parse(h);
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(root, "__metadata__"), "data_xxh64");
    assert_true(cJSON_IsString(ck));
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)ss_xxh64(b + d0, len - d0, 0));
    assert_string_equal(ck->valuestring, want);
    cJSON_Delete(root);

    ss_error err = {0};
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, good, &err), &err);
    assert_string_equal(ss_safetensors_meta(f, "data_xxh64"), want);
    ss_safetensors_close(f);

    /* one flipped bit at the first, a middle and the last data byte */
    size_t at[3] = {d0, d0 + (len - d0) / 2, len - 1};
    for (int k = 0; k < 3; k++) {
        b[at[k]] ^= 0x01;
        write_bytes(bad, b, len);
        expect_format_error(bad, "tensor data does not match its checksum");
        b[at[k]] ^= 0x01;
    }
    /* opened for its header only, the metadata reads; the data is checked on demand */
    b[at[1]] ^= 0x01;
    write_bytes(bad, b, len);
    b[at[1]] ^= 0x01;
    CHECK_OK(ss_safetensors_open_header(&f, bad, &err), &err);
    assert_string_equal(ss_safetensors_meta(f, "format"), "pt");
    assert_int_equal(ss_safetensors_verify(f, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "tensor data does not match its checksum"));
    ss_safetensors_close(f);
    CHECK_OK(ss_safetensors_open_header(&f, good, &err), &err);
    CHECK_OK(ss_safetensors_verify(f, &err), &err);
    ss_safetensors_close(f);
    /* a damaged stored value: another digit, or not 16 hex digits */
    char *v = strstr(h, want);
    assert_non_null(v);
    size_t vo = 8 + (size_t)(v - h);
    b[vo] = b[vo] == '0' ? '1' : '0';
    write_bytes(bad, b, len);
    expect_format_error(bad, "tensor data does not match its checksum");
    b[vo] = 'g';
    write_bytes(bad, b, len);
    expect_format_error(bad, "'data_xxh64' is not 16 hexadecimal digits");
    free(h);
    free(b);

    /* no checksum: still loads (files written before it existed) */
    write_raw(bad, "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    CHECK_OK(ss_safetensors_open(&f, bad, &err), &err);
    assert_null(ss_safetensors_meta(f, "data_xxh64"));
    ss_safetensors_close(f);

    /* the key is the writer's: a caller may not set it */
    ss_st_meta mine = {"data_xxh64", "0000000000000000"};
    float x[1] = {1};
    ss_st_tensor one = {"a", SS_F32, 1, {1}, x};
    assert_int_equal(ss_safetensors_write(bad, &one, 1, &mine, 1, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "'data_xxh64' is reserved"));

    /* an empty file (no tensors) gets the checksum of no bytes */
    CHECK_OK(ss_safetensors_write(bad, NULL, 0, NULL, 0, &err), &err);
    CHECK_OK(ss_safetensors_open(&f, bad, &err), &err);
    assert_string_equal(ss_safetensors_meta(f, "data_xxh64"), "ef46db3751d8e999");
    ss_safetensors_close(f);
}

static int count_entries(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* A failed write leaves the previous file intact and no temp file behind. */
static void test_atomic_write(void **state) {
    (void)state;
    const char *dir = test_tmpdir();
    const char *path = path_in(dir, "model.safetensors");
    write_interop(path);
    ss_error err = {0};
    float x[1] = {1};
    ss_st_tensor dup[2] = {{"a", SS_F32, 1, {1}, x}, {"a", SS_F32, 1, {1}, x}};
    assert_int_equal(ss_safetensors_write(path, dup, 2, NULL, 0, &err), SS_ERR_ARG);
    check_interop(path);
    assert_int_equal(count_entries(dir), 1);

    /* A directory that does not exist: clean SS_ERR_IO naming the path. */
    const char *nodir = path_in(dir, "no/such/dir/m.safetensors");
    ss_st_tensor one = {"a", SS_F32, 1, {1}, x};
    assert_int_equal(ss_safetensors_write(nodir, &one, 1, NULL, 0, &err), SS_ERR_IO);
    assert_non_null(strstr(err.msg, nodir));

    /* The target is a directory: the temp file is written but the final
     * rename fails; the directory survives and the temp file is removed. */
    const char *sub = path_in(dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(ss_safetensors_write(sub, &one, 1, NULL, 0, &err), SS_ERR_IO);
    assert_non_null(strstr(err.msg, sub));
    assert_int_equal(count_entries(dir), 2);
    check_interop(path);

    /* Temp files a killed writer left beside PATH are removed; nothing else is. */
    static const char *const junk[] = {"model.safetensors.tmp.AbC123", "model.safetensors.tmp.AbC1234",
                                       "other.safetensors.tmp.AbC123", "model.safetensors.tmp."};
    char target[512]; /* path_in's buffers rotate */
    snprintf(target, sizeof target, "%s", path);
    for (int i = 0; i < 4; i++) write_bytes(path_in(dir, junk[i]), "x", 1);
    int removed = -1;
    CHECK_OK(ss_atomic_remove_stale(target, &removed, &err), &err);
    assert_int_equal(removed, 1);
    assert_false(ss_file_exists(path_in(dir, junk[0])));
    for (int i = 1; i < 4; i++) {
        assert_true(ss_file_exists(path_in(dir, junk[i])));
        remove(path_in(dir, junk[i]));
    }
    check_interop(target);
    CHECK_OK(ss_atomic_remove_stale(path_in(dir, "no/such/dir/x"), &removed, &err), &err);
    assert_int_equal(removed, 0);

    /* A successful overwrite replaces the content. */
    path = path_in(dir, "model.safetensors");
    CHECK_OK(ss_safetensors_write(path, &one, 1, NULL, 0, &err), &err);
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, path, &err), &err);
    assert_int_equal(ss_safetensors_count(f), 1);
    ss_safetensors_close(f);
    assert_int_equal(count_entries(dir), 2);
}

static void test_dtype_names(void **state) {
    (void)state;
    for (int i = 0; i < SS_DTYPE_COUNT; i++) {
        ss_dtype d;
        assert_int_equal(ss_dtype_parse(ss_dtype_name((ss_dtype)i), &d), 0);
        assert_int_equal(d, i);
        assert_true(ss_dtype_size((ss_dtype)i) >= 1);
    }
    assert_int_equal(ss_dtype_size(SS_F32), 4);
    assert_int_equal(ss_dtype_size(SS_I64), 8);
    assert_int_equal(ss_dtype_size(SS_BF16), 2);
    ss_dtype d;
    assert_int_equal(ss_dtype_parse("f32", &d), -1);
}

/* ---- interop with tests/st_check.py ----------------------------------------------- */

static void test_interop_write(void **state) {
    (void)state;
    write_interop(path_in(getenv("SS_ST_OUT"), "from_c.safetensors"));
}

static void test_interop_read(void **state) {
    (void)state;
    check_interop(getenv("SS_ST_IN"));
}

int main(void) {
    const char *out = getenv("SS_ST_OUT"), *in = getenv("SS_ST_IN");
    if ((out && *out) || (in && *in)) {
        struct CMUnitTest interop[2];
        size_t n = 0;
        if (out && *out) interop[n++] = (struct CMUnitTest)cmocka_unit_test(test_interop_write);
        if (in && *in) interop[n++] = (struct CMUnitTest)cmocka_unit_test(test_interop_read);
        return _cmocka_run_group_tests("interop", interop, n, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_write_rejects_bad_input),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_corrupt_sizes),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_checksum),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_dtype_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
