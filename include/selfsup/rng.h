/* The one random number generator: xoshiro256** (Blackman & Vigna), seeded
 * through splitmix64. It is an explicit value passed to whoever needs
 * randomness (no globals), and its whole state is four u64 that checkpoints
 * save and restore, so runs are reproducible and resumable bit for bit. */
#ifndef SELFSUP_RNG_H
#define SELFSUP_RNG_H

#include <stdint.h>

#include "selfsup/error.h"

typedef struct {
    uint64_t s[4];
} ss_rng;

/* Fill the state with four successive splitmix64 outputs from SEED. */
void ss_rng_seed(ss_rng *r, uint64_t seed);

/* Next 64 random bits. */
static inline uint64_t ss_rng_u64(ss_rng *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, result = (x << 7 | x >> 57) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3] << 45 | s[3] >> 19;
    return result;
}

/* Uniform float in [0, 1): the top 24 bits times 2^-24 (every value exact). */
static inline float ss_rng_uniform(ss_rng *r) {
    return (float)(ss_rng_u64(r) >> 40) * 0x1.0p-24f;
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double ss_rng_uniform_double(ss_rng *r) {
    return (double)(ss_rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n) without modulo bias (Lemire's multiply-shift
 * with rejection). n == 0 returns 0. */
uint64_t ss_rng_below(ss_rng *r, uint64_t n);

/* Standard normal sample (Box-Muller, using the cosine branch only so no
 * second value is cached and the state stays the four words). */
double ss_rng_normal(ss_rng *r);

/* Copy the state out / in (for checkpoints). An all-zero state is the one
 * xoshiro cannot leave, so set rejects it with SS_ERR_FORMAT. */
void ss_rng_state_get(const ss_rng *r, uint64_t out[4]);
ss_status ss_rng_state_set(ss_rng *r, const uint64_t in[4], ss_error *err);

/* Advance by 2^128 steps: after k jumps from one seed, the streams are
 * non-overlapping for 2^128 outputs each (one per thread or worker). */
void ss_rng_jump(ss_rng *r);

#endif
