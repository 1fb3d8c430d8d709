/* SHA-256 against FIPS 180-4 example vectors and a multi-block stream. */
#include "testutil.h"

#include "selfsup/io.h"

static void hex_of(const char *msg, size_t len, char hex[65]) {
    ss_sha256 s;
    uint8_t d[32];
    ss_sha256_init(&s);
    ss_sha256_update(&s, msg, len);
    ss_sha256_final(&s, d);
    ss_sha256_hex(d, hex);
}

static void test_fips_vectors(void **state) {
    (void)state;
    char hex[65];
    hex_of("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a_in_pieces(void **state) {
    (void)state;
    ss_sha256 s;
    uint8_t d[32];
    char hex[65], chunk[997];
    memset(chunk, 'a', sizeof chunk);
    ss_sha256_init(&s);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        ss_sha256_update(&s, chunk, n);
        left -= n;
    }
    ss_sha256_final(&s, d);
    ss_sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_file_missing_is_error(void **state) {
    (void)state;
    char hex[65];
    ss_error err = {0};
    assert_int_equal(ss_sha256_file("/nonexistent/file", hex, &err), SS_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_million_a_in_pieces),
        cmocka_unit_test(test_file_missing_is_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
