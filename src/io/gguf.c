/* GGUF v3 writer (see include/selfsup/gguf.h for the layout) and the number
 * formats it stores: IEEE half, bfloat16 and ggml's Q8_0 blocks. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/gguf.h"
#include "selfsup/io.h"

enum {
    GGUF_VERSION = 3,
    GGUF_ALIGN = 32,     /* general.alignment's default */
    GGUF_MAX_NAME = 63,  /* ggml tensor names hold 64 bytes with the NUL */
    /* metadata value types */
    GGUF_T_UINT32 = 4, GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8, GGUF_T_ARRAY = 9
};

/* ---- number formats ------------------------------------------------------------ */

static uint32_t f32_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static float bits_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* half: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Normal range: drop
 * 13 mantissa bits rounding to nearest even (a carry moves into the
 * exponent, which is what rounding up to the next binade needs); below
 * 2^-14 the half is subnormal, an integer count of 2^-24. */
uint16_t ss_f32_to_f16(float f) {
    uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000, a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00);  /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520: rounds to infinity */
    if (a < 0x38800000u)                                    /* < 2^-14: subnormal (exact scaling, rint = even) */
        return (uint16_t)(sign | (uint32_t)lrintf(bits_f32(a) * 0x1p24f));
    a += 0x0fffu + ((a >> 13) & 1);
    return (uint16_t)(sign | ((a - (112u << 23)) >> 13));
}

float ss_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) { /* zero or subnormal: m * 2^-24 */
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

/* bfloat16: the upper 16 bits of the float, rounded to nearest even. */
uint16_t ss_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

float ss_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* Per block of 32: d = max|x| / 127 (stored as half), q = round(x / d),
 * computed with the float d as ggml's reference quantizer does. */
void ss_quantize_q8_0(const float *x, size_t n, uint8_t *out) {
    for (size_t b = 0; b < n / SS_Q8_0_BLOCK; b++, x += SS_Q8_0_BLOCK, out += SS_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int i = 0; i < SS_Q8_0_BLOCK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = ss_f32_to_f16(d);
        out[0] = (uint8_t)h;
        out[1] = (uint8_t)(h >> 8);
        for (int i = 0; i < SS_Q8_0_BLOCK; i++) out[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
}

static const struct { ss_ggml_type t; const char *name; } TYPES[] = {
    {SS_GGML_F32, "f32"}, {SS_GGML_F16, "f16"}, {SS_GGML_BF16, "bf16"}, {SS_GGML_Q8_0, "q8_0"},
};

const char *ss_ggml_type_name(ss_ggml_type t) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].t == t) return TYPES[i].name;
    return "?";
}

int ss_ggml_type_parse(const char *name, ss_ggml_type *out) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (name && !strcmp(TYPES[i].name, name)) {
            *out = TYPES[i].t;
            return 0;
        }
    return -1;
}

size_t ss_ggml_type_bytes(ss_ggml_type t, size_t n) {
    switch (t) {
    case SS_GGML_F32: return 4 * n;
    case SS_GGML_Q8_0: return n / SS_Q8_0_BLOCK * SS_Q8_0_BYTES;
    default: return 2 * n;
    }
}

/* ---- writer ------------------------------------------------------------------------ */

typedef struct {
    char *name;
    ss_ggml_type type;
    int ndim;
    uint64_t ne[2]; /* ggml order: ne[0] innermost */
    size_t numel;
    const float *data;
} gguf_tensor;

struct ss_gguf_writer {
    ss_buf kv;          /* serialized key-value pairs */
    uint64_t n_kv;
    char **keys;
    gguf_tensor *t;
    size_t n_t, cap_t;
};

ss_status ss_gguf_writer_new(ss_gguf_writer **out, ss_error *err) {
    *out = calloc(1, sizeof **out);
    return *out ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
}

void ss_gguf_writer_free(ss_gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->keys);
    free(w->t);
    ss_buf_free(&w->kv);
    free(w);
}

static ss_status put(ss_buf *b, const void *p, size_t n, ss_error *err) { return ss_buf_append(b, p, n, err); }

static ss_status put_u32(ss_buf *b, uint32_t v, ss_error *err) {
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return put(b, le, 4, err);
}

static ss_status put_u64(ss_buf *b, uint64_t v, ss_error *err) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
    return put(b, le, 8, err);
}

static ss_status put_str(ss_buf *b, const char *s, ss_error *err) {
    size_t n = strlen(s);
    ss_status st = put_u64(b, n, err);
    return st ? st : put(b, s, n, err);
}

/* Start a key-value pair: the key (checked unique) and the value type. */
static ss_status begin_kv(ss_gguf_writer *w, const char *key, uint32_t type, ss_error *err) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key)) return ss_fail(err, SS_ERR_ARG, "GGUF key '%s' added twice", key);
    char **k = realloc(w->keys, (w->n_kv + 1) * sizeof *k);
    if (!k) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    w->keys = k;
    if (!(k[w->n_kv] = strdup(key))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    w->n_kv++;
    ss_status st = put_str(&w->kv, key, err);
    return st ? st : put_u32(&w->kv, type, err);
}

ss_status ss_gguf_add_u32(ss_gguf_writer *w, const char *key, uint32_t v, ss_error *err) {
    ss_status st = begin_kv(w, key, GGUF_T_UINT32, err);
    return st ? st : put_u32(&w->kv, v, err);
}

ss_status ss_gguf_add_f32(ss_gguf_writer *w, const char *key, float v, ss_error *err) {
    ss_status st = begin_kv(w, key, GGUF_T_FLOAT32, err);
    return st ? st : put_u32(&w->kv, f32_bits(v), err);
}

ss_status ss_gguf_add_bool(ss_gguf_writer *w, const char *key, int v, ss_error *err) {
    uint8_t b = v != 0;
    ss_status st = begin_kv(w, key, GGUF_T_BOOL, err);
    return st ? st : put(&w->kv, &b, 1, err);
}

ss_status ss_gguf_add_str(ss_gguf_writer *w, const char *key, const char *v, ss_error *err) {
    ss_status st = begin_kv(w, key, GGUF_T_STRING, err);
    return st ? st : put_str(&w->kv, v, err);
}

static ss_status begin_array(ss_gguf_writer *w, const char *key, uint32_t type, size_t n, ss_error *err) {
    ss_status st = begin_kv(w, key, GGUF_T_ARRAY, err);
    if (!st) st = put_u32(&w->kv, type, err);
    return st ? st : put_u64(&w->kv, n, err);
}

ss_status ss_gguf_add_str_array(ss_gguf_writer *w, const char *key, const char *const *v, size_t n,
                                ss_error *err) {
    ss_status st = begin_array(w, key, GGUF_T_STRING, n, err);
    for (size_t i = 0; i < n && !st; i++) st = put_str(&w->kv, v[i], err);
    return st;
}

ss_status ss_gguf_add_i32_array(ss_gguf_writer *w, const char *key, const int32_t *v, size_t n,
                                ss_error *err) {
    ss_status st = begin_array(w, key, GGUF_T_INT32, n, err);
    for (size_t i = 0; i < n && !st; i++) st = put_u32(&w->kv, (uint32_t)v[i], err);
    return st;
}

ss_status ss_gguf_add_tensor(ss_gguf_writer *w, const char *name, ss_ggml_type type, int ndim,
                             const int64_t *shape, const float *data, ss_error *err) {
    if (strlen(name) > GGUF_MAX_NAME)
        return ss_fail(err, SS_ERR_ARG, "GGUF tensor name '%s' is longer than %d bytes", name, GGUF_MAX_NAME);
    if (ndim < 1 || ndim > 2 || shape[0] < 1 || shape[ndim - 1] < 1)
        return ss_fail(err, SS_ERR_ARG, "GGUF tensor '%s': only 1-D and 2-D tensors are written", name);
    if (!strcmp(ss_ggml_type_name(type), "?"))
        return ss_fail(err, SS_ERR_ARG, "GGUF tensor '%s': unsupported type %d", name, (int)type);
    gguf_tensor t = {.type = type, .ndim = ndim, .data = data, .numel = 1};
    for (int d = 0; d < ndim; d++) {
        t.ne[d] = (uint64_t)shape[ndim - 1 - d];
        t.numel *= (size_t)shape[d];
    }
    if (type == SS_GGML_Q8_0 && t.ne[0] % SS_Q8_0_BLOCK)
        return ss_fail(err, SS_ERR_ARG, "GGUF tensor '%s': q8_0 needs rows of a multiple of %d values, not %llu",
                       name, SS_Q8_0_BLOCK, (unsigned long long)t.ne[0]);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        gguf_tensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        w->t = p;
        w->cap_t = cap;
    }
    if (!(t.name = strdup(name))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    w->t[w->n_t++] = t;
    return SS_OK;
}

static uint64_t align_up(uint64_t x) { return (x + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN; }

/* Header, metadata and tensor infos (offsets aligned), padded so the data
 * section starts aligned. */
static ss_status build_header(const ss_gguf_writer *w, ss_buf *h, ss_error *err) {
    ss_status st = put(h, "GGUF", 4, err);
    if (!st) st = put_u32(h, GGUF_VERSION, err);
    if (!st) st = put_u64(h, w->n_t, err);
    if (!st) st = put_u64(h, w->n_kv, err);
    if (!st) st = put(h, w->kv.data, w->kv.len, err);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t && !st; i++) {
        const gguf_tensor *t = &w->t[i];
        st = put_str(h, t->name, err);
        if (!st) st = put_u32(h, (uint32_t)t->ndim, err);
        for (int d = 0; d < t->ndim && !st; d++) st = put_u64(h, t->ne[d], err);
        if (!st) st = put_u32(h, (uint32_t)t->type, err);
        if (!st) st = put_u64(h, off, err);
        off = align_up(off + ss_ggml_type_bytes(t->type, t->numel));
    }
    static const char zeros[GGUF_ALIGN];
    if (!st) st = put(h, zeros, align_up(h->len) - h->len, err);
    return st;
}

/* One tensor's bytes, converted row by row, then zero padding to the
 * alignment. */
static int write_tensor(FILE *fp, const gguf_tensor *t, uint8_t *row) {
    size_t n = t->ne[0], rows = t->numel / n, bytes = ss_ggml_type_bytes(t->type, n);
    for (size_t r = 0; r < rows; r++) {
        const float *x = t->data + r * n;
        if (t->type == SS_GGML_F32) {
            memcpy(row, x, bytes);
        } else if (t->type == SS_GGML_Q8_0) {
            ss_quantize_q8_0(x, n, row);
        } else {
            for (size_t i = 0; i < n; i++) {
                uint16_t h = t->type == SS_GGML_F16 ? ss_f32_to_f16(x[i]) : ss_f32_to_bf16(x[i]);
                row[2 * i] = (uint8_t)h;
                row[2 * i + 1] = (uint8_t)(h >> 8);
            }
        }
        if (fwrite(row, 1, bytes, fp) != bytes) return 0;
    }
    static const char zeros[GGUF_ALIGN];
    size_t total = bytes * rows, pad = align_up(total) - total;
    return fwrite(zeros, 1, pad, fp) == pad;
}

ss_status ss_gguf_write(ss_gguf_writer *w, const char *path, ss_error *err) {
    ss_buf h = {0};
    size_t max_row = 0;
    for (size_t i = 0; i < w->n_t; i++)
        if (w->t[i].ne[0] * 4 > max_row) max_row = w->t[i].ne[0] * 4;
    uint8_t *row = malloc(max_row ? max_row : 1);
    ss_status st = row ? build_header(w, &h, err) : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_atomic_file *a = NULL;
    if (!st) st = ss_atomic_open(&a, path, err);
    if (!st) {
        FILE *fp = ss_atomic_stream(a);
        int ok = fwrite(h.data, 1, h.len, fp) == h.len;
        for (size_t i = 0; ok && i < w->n_t; i++) ok = write_tensor(fp, &w->t[i], row);
        if (ok) {
            st = ss_atomic_commit(a, err);
        } else {
            st = ss_fail(err, SS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            ss_atomic_abort(a);
        }
    }
    free(row);
    ss_buf_free(&h);
    return st;
}
