/* XXH64 (Yann Collet's xxHash, 64-bit variant, as specified in
 * https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md): a
 * non-cryptographic hash reading 32-byte stripes with four independent
 * accumulators, so it runs near memory speed (several GB/s per core, against
 * some hundreds of MB/s for SHA-256). It checks safetensors data for
 * corruption (accidental damage, not tampering). Values equal the reference
 * library's XXH64(data, len, seed) (tests/test_io_xxh64.c). */
#include <string.h>

#include "selfsup/io.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "XXH64 reads little-endian words");

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* acc = rotl(acc + lane * P2, 31) * P1 */
static inline uint64_t round64(uint64_t acc, uint64_t lane) { return rotl(acc + lane * P2, 31) * P1; }

static inline uint64_t merge(uint64_t h, uint64_t acc) { return (h ^ round64(0, acc)) * P1 + P4; }

/* Consume whole 32-byte stripes of p[0..n); returns the bytes consumed. */
static size_t stripes(uint64_t v[4], const uint8_t *p, size_t n) {
    uint64_t a = v[0], b = v[1], c = v[2], d = v[3];
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = round64(a, rd64(p + i));
        b = round64(b, rd64(p + i + 8));
        c = round64(c, rd64(p + i + 16));
        d = round64(d, rd64(p + i + 24));
    }
    v[0] = a; v[1] = b; v[2] = c; v[3] = d;
    return i;
}

void ss_xxh64_init(ss_xxh64_state *s, uint64_t seed) {
    s->v[0] = seed + P1 + P2;
    s->v[1] = seed + P2;
    s->v[2] = seed;
    s->v[3] = seed - P1;
    s->seed = seed;
    s->total = 0;
    s->blen = 0;
}

void ss_xxh64_update(ss_xxh64_state *s, const void *data, size_t len) {
    const uint8_t *p = data;
    if (!len) return;
    s->total += len;
    if (s->blen) { /* complete the buffered stripe first */
        size_t take = 32 - s->blen < len ? 32 - s->blen : len;
        memcpy(s->block + s->blen, p, take);
        s->blen += take; p += take; len -= take;
        if (s->blen < 32) return;
        stripes(s->v, s->block, 32);
        s->blen = 0;
    }
    size_t done = stripes(s->v, p, len);
    memcpy(s->block, p + done, len - done);
    s->blen = len - done;
}

uint64_t ss_xxh64_digest(const ss_xxh64_state *s) {
    uint64_t h;
    if (s->total >= 32) {
        const uint64_t *v = s->v;
        h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
        for (int i = 0; i < 4; i++) h = merge(h, v[i]);
    } else {
        h = s->seed + P5;
    }
    h += s->total;
    const uint8_t *p = s->block;
    size_t n = s->blen;
    for (; n >= 8; p += 8, n -= 8) h = rotl(h ^ round64(0, rd64(p)), 27) * P1 + P4;
    if (n >= 4) { h = rotl(h ^ (uint64_t)rd32(p) * P1, 23) * P2 + P3; p += 4; n -= 4; }
    for (; n; p++, n--) h = rotl(h ^ *p * P5, 11) * P1;
    h ^= h >> 33; h *= P2;
    h ^= h >> 29; h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t ss_xxh64(const void *data, size_t len, uint64_t seed) {
    ss_xxh64_state s;
    ss_xxh64_init(&s, seed);
    ss_xxh64_update(&s, data, len);
    return ss_xxh64_digest(&s);
}
