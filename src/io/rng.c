/* xoshiro256** seeding, bounded integers, normals and jumps; the per-draw
 * generator itself is inline in include/selfsup/rng.h. */
#include <math.h>

#include "selfsup/rng.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ss_rng_seed(ss_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

/* Lemire (2019): the high word of x * n is uniform on [0, n) once draws whose
 * low word falls below 2^64 mod n are rejected; the modulo is only computed
 * when the low word is small, which is rare for small n. */
uint64_t ss_rng_below(ss_rng *r, uint64_t n) {
    if (n == 0) return 0;
    __uint128_t m = (__uint128_t)ss_rng_u64(r) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = -n % n; /* 2^64 mod n */
        while (low < threshold) {
            m = (__uint128_t)ss_rng_u64(r) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* z = sqrt(-2 ln u1) cos(2 pi u2) with u1 in (0, 1] so the log is finite. */
double ss_rng_normal(ss_rng *r) {
    double u1 = (double)((ss_rng_u64(r) >> 11) + 1) * 0x1.0p-53;
    double u2 = ss_rng_uniform_double(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

void ss_rng_state_get(const ss_rng *r, uint64_t out[4]) {
    for (int i = 0; i < 4; i++) out[i] = r->s[i];
}

ss_status ss_rng_state_set(ss_rng *r, const uint64_t in[4], ss_error *err) {
    if (!(in[0] | in[1] | in[2] | in[3]))
        return ss_fail(err, SS_ERR_FORMAT, "rng state is all zero (corrupt checkpoint?)");
    for (int i = 0; i < 4; i++) r->s[i] = in[i];
    return SS_OK;
}

/* The jump polynomial from the xoshiro256 reference: state := J(state) where
 * J is the 2^128-th power of the transition, applied as a sum of states. */
void ss_rng_jump(ss_rng *r) {
    static const uint64_t jump[4] = {0x180ec6d33cfd0abaull, 0xd5a61266f0c9392cull,
                                     0xa9582618e03fc9aaull, 0x39abdc4529b1661cull};
    uint64_t t[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 64; b++) {
            if (jump[i] & (1ull << b))
                for (int k = 0; k < 4; k++) t[k] ^= r->s[k];
            ss_rng_u64(r);
        }
    for (int k = 0; k < 4; k++) r->s[k] = t[k];
}
