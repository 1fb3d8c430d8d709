/* XXH64 against the reference library: the expected values were computed with
 * Debian's libxxhash 0.8.1 (XXH64(buf, n, seed) through Python's ctypes) on
 * the byte pattern below, at lengths that cover every tail path (no stripe,
 * 1-3 bytes, a 4-byte word, 8-byte words, whole 32-byte stripes and mixes);
 * the streaming interface gives the same value for every way of cutting the
 * input; and the speed against SHA-256 is printed (it is why safetensors
 * checksums use XXH64). */
#include <time.h>

#include "testutil.h"

#include "selfsup/io.h"

#define BIG (1u << 20)
static unsigned char *pattern(void) {
    static unsigned char *buf;
    if (!buf) {
        buf = malloc(BIG);
        assert_non_null(buf);
        for (size_t i = 0; i < BIG; i++) buf[i] = (unsigned char)((i * 131 + 7) & 255);
    }
    return buf;
}

static const struct { size_t n; uint64_t seed0, seed1; } VEC[] = {
    {0, 0xef46db3751d8e999ull, 0xc4349fc93c010000ull},     {1, 0xa96c7f0ce858bbb7ull, 0x585882422a6165e7ull},
    {3, 0xbed43740ee6332bbull, 0x45fa1406538fa168ull},     {4, 0xfa212ae44b3bb23dull, 0xa65107f22943365aull},
    {5, 0xd339dcc9ac8e6776ull, 0xf51eda3a20de9b88ull},     {7, 0x2744460dd675d2c0ull, 0xc9b637e2c4599de2ull},
    {8, 0x994b676b71ce94ddull, 0xce592d5f53e192ecull},     {9, 0x572b84c18b983af8ull, 0x5495aa796de8ab73ull},
    {15, 0x09e6451ed2ff8b1dull, 0x47a857d1f90c35e1ull},    {16, 0x94ad0095e72b24d5ull, 0x3f8fea7c86a04013ull},
    {31, 0x6711d55e306b5d8full, 0x24c4e99ab0404b5eull},    {32, 0x07f7b8e3bc5d6e25ull, 0x046e99bbda1a814bull},
    {33, 0x09f85eeb4e1cbe9full, 0xd7fe2bfee6e4cdedull},    {35, 0x25cc31e4544bc8c9ull, 0x4d30dc49ec675e3dull},
    {63, 0xb7c9968c066cb6a5ull, 0xbd457f9ea47180c8ull},    {64, 0x50d4159a0411632eull, 0xa768f350a8e4fcf6ull},
    {100, 0x9ddada11d3dc2d8full, 0x35546bd9a4779ae4ull},   {1000, 0x0bf0bdbcc82eb373ull, 0x3ecb5d7b5e7c64cfull},
    {4099, 0xc2c15a86d6a1985bull, 0x5510e3b748c0963aull},  {BIG, 0x1b13a8085220794bull, 0xb40e95e7b2714b13ull},
};
#define SEED1 0x9E3779B97F4A7C15ull

static void test_reference_values(void **state) {
    (void)state;
    const unsigned char *p = pattern();
    for (size_t i = 0; i < sizeof VEC / sizeof VEC[0]; i++) {
        uint64_t a = ss_xxh64(p, VEC[i].n, 0), b = ss_xxh64(p, VEC[i].n, SEED1);
        if (a != VEC[i].seed0 || b != VEC[i].seed1)
            fail_msg("length %zu: %016llx/%016llx, reference %016llx/%016llx", VEC[i].n, (unsigned long long)a,
                     (unsigned long long)b, (unsigned long long)VEC[i].seed0, (unsigned long long)VEC[i].seed1);
    }
    /* one flipped bit anywhere changes the value */
    unsigned char *q = malloc(4099);
    memcpy(q, p, 4099);
    q[2000] ^= 0x10;
    assert_true(ss_xxh64(q, 4099, 0) != VEC[18].seed0);
    free(q);
}

/* Streaming: pieces of 1, 3, 31, 32, 33, 1000 bytes (and mixed) give the one-call value. */
static void test_streaming(void **state) {
    (void)state;
    const unsigned char *p = pattern();
    static const size_t piece[] = {1, 3, 31, 32, 33, 1000, 0};
    for (size_t k = 0; k < sizeof piece / sizeof piece[0]; k++) {
        for (size_t t = 0; t < 3; t++) {
            size_t n = t == 0 ? 100 : t == 1 ? 4099 : BIG;
            ss_xxh64_state s;
            ss_xxh64_init(&s, SEED1);
            size_t at = 0, j = 0;
            while (at < n) {
                size_t take = piece[k] ? piece[k] : 1 + (j++ * 7919) % 97; /* 0: varying pieces */
                if (take > n - at) take = n - at;
                ss_xxh64_update(&s, p + at, take);
                at += take;
            }
            assert_true(ss_xxh64_digest(&s) == ss_xxh64(p, n, SEED1));
        }
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_speed_against_sha256(void **state) {
    (void)state;
    const unsigned char *p = pattern();
    volatile uint64_t sink = 0;
    double t0 = now();
    for (int r = 0; r < 64; r++) sink ^= ss_xxh64(p, BIG, (uint64_t)r);
    double tx = now() - t0;
    ss_sha256 s;
    uint8_t d[32];
    t0 = now();
    for (int r = 0; r < 8; r++) {
        ss_sha256_init(&s);
        ss_sha256_update(&s, p, BIG);
        ss_sha256_final(&s, d);
    }
    double ts = now() - t0;
    double mx = 64.0 / tx, ms = 8.0 / ts; /* MiB/s */
    printf("# XXH64 %.0f MiB/s, SHA-256 %.0f MiB/s (%.0fx)\n", mx, ms, mx / ms);
    assert_true(mx > ms); /* the reason for XXH64; loose: the machine may be busy */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_values),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_speed_against_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
