/* GGUF writer and its number formats: half and bfloat16 rounding (against
 * the compiler's _Float16 and a reference written with doubles), Q8_0 blocks,
 * and a written file read back field by field with a reader written here
 * from the specification. */
#include <math.h>

#include "testutil.h"

#include "selfsup/gguf.h"
#include "selfsup/io.h"
#include "selfsup/rng.h"

static float bits_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* A float from any bit pattern but NaN: the whole range, subnormals and
 * infinities included. */
static float random_float(ss_rng *r) {
    for (;;) {
        float f = bits_f32((uint32_t)ss_rng_u64(r));
        if (!isnan(f)) return f;
    }
}

static void test_f16_round_trips_every_half(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = ss_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true(((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff));
            assert_true(isnan(ss_f16_to_f32(ss_f32_to_f16(f))));
            continue;
        }
        assert_int_equal(ss_f32_to_f16(f), h);
    }
}

static void test_f16_rounds_to_nearest_even(void **state) {
    (void)state;
    assert_int_equal(ss_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);        /* tie: to even (1.0) */
    assert_int_equal(ss_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);    /* tie: to even (mantissa 2) */
    assert_int_equal(ss_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    assert_int_equal(ss_f32_to_f16(65504.0f), 0x7bff);                /* the largest half */
    assert_int_equal(ss_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(ss_f32_to_f16(65520.0f), 0x7c00);                /* tie past the largest: infinity */
    assert_int_equal(ss_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(ss_f32_to_f16(0x1p-24f), 0x0001);                /* the smallest subnormal */
    assert_int_equal(ss_f32_to_f16(0x1p-25f), 0x0000);                /* tie: to even (zero) */
    assert_int_equal(ss_f32_to_f16(3 * 0x1p-25f), 0x0002);            /* tie: to even */
    assert_int_equal(ss_f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400);     /* rounds up into the normals */
    assert_int_equal(ss_f32_to_f16(-0.0f), 0x8000);
#ifdef __FLT16_MAX__
    /* the compiler's conversion (IEEE, round to nearest even) on random floats */
    ss_rng r;
    ss_rng_seed(&r, 7);
    for (int i = 0; i < 2000000; i++) {
        float f = i & 1 ? random_float(&r) : (float)(ss_rng_uniform(&r) * 2 - 1) * ldexpf(1, i % 40 - 28);
        _Float16 h = (_Float16)f;
        uint16_t want;
        memcpy(&want, &h, 2);
        if (ss_f32_to_f16(f) != want) fail_msg("f16 of %a: got %04x, want %04x", f, ss_f32_to_f16(f), want);
    }
#endif
}

/* bfloat16 by definition: the nearer of the two bfloat16 values around f
 * (compared in double, exactly), ties to the even one. */
static uint16_t ref_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t lo = x & 0xffff0000u, hi = lo + 0x10000u;
    double dl = fabs((double)f - (double)bits_f32(lo));
    double dh = isinf(bits_f32(hi)) ? fabs((double)f - ldexp(1, 128) * (hi >> 31 ? -1 : 1))
                                    : fabs((double)f - (double)bits_f32(hi));
    if (dl < dh || (dl == dh && !((lo >> 16) & 1))) return (uint16_t)(lo >> 16);
    return (uint16_t)(hi >> 16);
}

static void test_bf16_rounds_to_nearest_even(void **state) {
    (void)state;
    assert_int_equal(ss_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(ss_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);          /* tie: to even */
    assert_int_equal(ss_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);      /* tie: to even */
    assert_true(isnan(ss_bf16_to_f32(ss_f32_to_bf16(NAN))));
    assert_int_equal(ss_f32_to_bf16(INFINITY), 0x7f80);
    ss_rng r;
    ss_rng_seed(&r, 11);
    for (int i = 0; i < 2000000; i++) {
        float f = random_float(&r);
        if (isinf(f)) continue;
        if (ss_f32_to_bf16(f) != ref_bf16(f)) fail_msg("bf16 of %a: got %04x, want %04x", f, ss_f32_to_bf16(f), ref_bf16(f));
    }
    for (uint32_t h = 0; h < 0x10000; h++)
        if (!isnan(ss_bf16_to_f32((uint16_t)h))) assert_int_equal(ss_f32_to_bf16(ss_bf16_to_f32((uint16_t)h)), h);
}

static void test_q8_0_blocks(void **state) {
    (void)state;
    float x[64];
    uint8_t q[2 * SS_Q8_0_BYTES];
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) * 0.25f;       /* max |x| = 4 */
    for (int i = 32; i < 64; i++) x[i] = 0.0f;                          /* an all-zero block */
    ss_quantize_q8_0(x, 64, q);
    float d = ss_f16_to_f32((uint16_t)(q[0] | q[1] << 8));
    assert_int_equal(q[0] | q[1] << 8, ss_f32_to_f16(4.0f / 127.0f));
    assert_int_equal((int8_t)q[2 + 0], -127);                           /* x = -4: the extreme */
    assert_int_equal((int8_t)q[2 + 16], 0);
    assert_int_equal((int8_t)q[2 + 17], 8);                             /* 0.25 * 127 / 4 = 7.94 */
    for (int i = 0; i < 32; i++) assert_true(fabsf(d * (int8_t)q[2 + i] - x[i]) <= d * 0.51f);
    for (int i = 0; i < SS_Q8_0_BYTES; i++) assert_int_equal(q[SS_Q8_0_BYTES + i], 0);
    assert_int_equal(ss_ggml_type_bytes(SS_GGML_Q8_0, 64), 68);
}

/* ---- a reader, from the specification ---------------------------------------------------- */
typedef struct {
    const uint8_t *p, *end;
} rd;

static uint64_t rd_u(rd *r, int n) {
    if (r->p + n > r->end) fail_msg("GGUF file truncated");
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static void rd_str(rd *r, char *out, size_t cap) {
    uint64_t n = rd_u(r, 8);
    if (n >= cap || r->p + n > r->end) fail_msg("bad string length %llu", (unsigned long long)n);
    memcpy(out, r->p, n);
    out[n] = '\0';
    r->p += n;
}

static void test_file_read_back(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/t.gguf", test_tmpdir());
    float vec[5] = {1, -2, 3.5f, 0, 7}, mat[2 * 32], half[3 * 2] = {1, 2, 3, 4, 5, 65504};
    for (int i = 0; i < 64; i++) mat[i] = (float)i / 8 - 4;
    const char *strs[] = {"a b", "Ġx"};
    int32_t ints[] = {1, -3};
    ss_gguf_writer *w;
    ss_error err = {0};
    assert_int_equal(ss_gguf_writer_new(&w, &err), SS_OK);
    assert_int_equal(ss_gguf_add_str(w, "general.architecture", "gpt2", &err), SS_OK);
    assert_int_equal(ss_gguf_add_u32(w, "gpt2.block_count", 3, &err), SS_OK);
    assert_int_equal(ss_gguf_add_f32(w, "eps", 1e-5f, &err), SS_OK);
    assert_int_equal(ss_gguf_add_bool(w, "flag", 1, &err), SS_OK);
    assert_int_equal(ss_gguf_add_str_array(w, "strs", strs, 2, &err), SS_OK);
    assert_int_equal(ss_gguf_add_i32_array(w, "ints", ints, 2, &err), SS_OK);
    assert_int_equal(ss_gguf_add_u32(w, "flag", 0, &err), SS_ERR_ARG);   /* duplicate key */
    int64_t s1[1] = {5}, s2[2] = {2, 32}, s3[2] = {3, 2}, bad[2] = {2, 48};
    assert_int_equal(ss_gguf_add_tensor(w, "vec", SS_GGML_F32, 1, s1, vec, &err), SS_OK);
    assert_int_equal(ss_gguf_add_tensor(w, "mat", SS_GGML_Q8_0, 2, s2, mat, &err), SS_OK);
    assert_int_equal(ss_gguf_add_tensor(w, "half", SS_GGML_F16, 2, s3, half, &err), SS_OK);
    assert_int_equal(ss_gguf_add_tensor(w, "bad", SS_GGML_Q8_0, 2, bad, mat, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "multiple of 32"));
    assert_int_equal(ss_gguf_write(w, path, &err), SS_OK);
    ss_gguf_writer_free(w);

    ss_buf b = {0};
    assert_int_equal(ss_read_file(path, &b, &err), SS_OK);
    rd r = {(const uint8_t *)b.data, (const uint8_t *)b.data + b.len};
    char s[64];
    assert_memory_equal(r.p, "GGUF", 4);
    r.p += 4;
    assert_int_equal(rd_u(&r, 4), 3);
    assert_int_equal(rd_u(&r, 8), 3); /* tensors */
    assert_int_equal(rd_u(&r, 8), 6); /* key-value pairs */
    rd_str(&r, s, sizeof s), assert_string_equal(s, "general.architecture");
    assert_int_equal(rd_u(&r, 4), 8), rd_str(&r, s, sizeof s), assert_string_equal(s, "gpt2");
    rd_str(&r, s, sizeof s), assert_string_equal(s, "gpt2.block_count");
    assert_int_equal(rd_u(&r, 4), 4), assert_int_equal(rd_u(&r, 4), 3);
    rd_str(&r, s, sizeof s), assert_string_equal(s, "eps");
    assert_int_equal(rd_u(&r, 4), 6), assert_true(bits_f32((uint32_t)rd_u(&r, 4)) == 1e-5f);
    rd_str(&r, s, sizeof s), assert_string_equal(s, "flag");
    assert_int_equal(rd_u(&r, 4), 7), assert_int_equal(rd_u(&r, 1), 1);
    rd_str(&r, s, sizeof s), assert_string_equal(s, "strs");
    assert_int_equal(rd_u(&r, 4), 9), assert_int_equal(rd_u(&r, 4), 8), assert_int_equal(rd_u(&r, 8), 2);
    rd_str(&r, s, sizeof s), assert_string_equal(s, "a b");
    rd_str(&r, s, sizeof s), assert_string_equal(s, "Ġx");
    rd_str(&r, s, sizeof s), assert_string_equal(s, "ints");
    assert_int_equal(rd_u(&r, 4), 9), assert_int_equal(rd_u(&r, 4), 5), assert_int_equal(rd_u(&r, 8), 2);
    assert_int_equal((int32_t)rd_u(&r, 4), 1), assert_int_equal((int32_t)rd_u(&r, 4), -3);
    /* tensor infos: dimensions innermost first, offsets aligned to 32 */
    const char *names[] = {"vec", "mat", "half"};
    uint64_t ne[3][2] = {{5, 0}, {32, 2}, {2, 3}}, types[] = {0, 8, 1}, off[3];
    for (int t = 0; t < 3; t++) {
        rd_str(&r, s, sizeof s), assert_string_equal(s, names[t]);
        uint64_t nd = rd_u(&r, 4);
        assert_int_equal(nd, t ? 2 : 1);
        for (uint64_t d = 0; d < nd; d++) assert_int_equal(rd_u(&r, 8), ne[t][d]);
        assert_int_equal(rd_u(&r, 4), types[t]);
        off[t] = rd_u(&r, 8);
        assert_int_equal(off[t] % 32, 0);
    }
    assert_int_equal(off[0], 0), assert_int_equal(off[1], 32), assert_int_equal(off[2], 32 + 96);
    size_t data = ((size_t)(r.p - (const uint8_t *)b.data) + 31) / 32 * 32;
    assert_int_equal(b.len, data + off[2] + 32); /* the last tensor padded too */
    const uint8_t *base = (const uint8_t *)b.data + data;
    assert_memory_equal(base, vec, sizeof vec);
    uint8_t q[2 * SS_Q8_0_BYTES];
    ss_quantize_q8_0(mat, 64, q);
    assert_memory_equal(base + off[1], q, sizeof q);
    for (int i = 0; i < 6; i++) assert_int_equal(base[off[2] + 2 * i] | base[off[2] + 2 * i + 1] << 8, ss_f32_to_f16(half[i]));
    ss_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_round_trips_every_half),
        cmocka_unit_test(test_f16_rounds_to_nearest_even),
        cmocka_unit_test(test_bf16_rounds_to_nearest_even),
        cmocka_unit_test(test_q8_0_blocks),
        cmocka_unit_test(test_file_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
