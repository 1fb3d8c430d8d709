/* Token samplers on one row of logits: CTRL repetition penalty, temperature,
 * top-k, nucleus (top-p) and the softmax draw.
 *
 * Order and ties: tokens are ranked by logit, descending, ties broken by the
 * lower id, so every truncation is deterministic. A NaN logit ranks below
 * everything and, like -inf, has probability 0. A +inf logit takes all the
 * mass (shared equally among the +inf tokens), the limit of softmax.
 *
 * Top-k and top-p never sort the whole vocabulary: both find the last kept
 * token (the "threshold" rank) with a heap, then one pass sets every token
 * ranked below it to -inf. Their heap lives in a per-thread buffer grown once
 * to the vocabulary size; if that allocation ever fails they fall back to
 * repeated O(V) scans (slower, same answer) instead of failing. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/generate.h"

typedef struct {
    float v;    /* the logit, NaN replaced by -inf */
    int32_t id; /* token id */
} entry;

static inline float rank_value(float l) {
    return isnan(l) ? -INFINITY : l;
}

/* a ranks strictly before b: larger logit, or equal logit and lower id. */
static inline bool before(entry a, entry b) {
    return a.v > b.v || (a.v == b.v && a.id < b.id);
}

static inline bool after(entry a, entry b) {
    return before(b, a);
}

/* ---- per-thread scratch ------------------------------------------------- */

static _Thread_local void *tl_buf;
static _Thread_local size_t tl_cap;

/* At least `bytes` of per-thread scratch (contents undefined), or NULL. */
static void *thread_scratch(size_t bytes) {
    if (bytes <= tl_cap) return tl_buf;
    void *p = malloc(bytes);
    if (!p) return NULL;
    free(tl_buf);
    tl_buf = p;
    tl_cap = bytes;
    return p;
}

/* ---- heap and threshold helpers ----------------------------------------- */

/* Binary heaps of entries: heap_max has the best-ranked entry at the root,
 * heap_min the worst. Each gets its own sift-down (a macro rather than a
 * comparator pointer, so the comparison inlines). */
#define DEFINE_HEAP(name, top)                                                  \
    static void name##_sift(entry *h, size_t n, size_t i) {                     \
        entry x = h[i];                                                         \
        for (;;) {                                                              \
            size_t c = 2 * i + 1;                                               \
            if (c >= n) break;                                                  \
            if (c + 1 < n && top(h[c + 1], h[c])) c++;                          \
            if (!top(h[c], x)) break;                                           \
            h[i] = h[c];                                                        \
            i = c;                                                              \
        }                                                                       \
        h[i] = x;                                                               \
    }                                                                           \
    static void name##_build(entry *h, size_t n) { /* Floyd: O(n) */            \
        for (size_t i = n / 2; i-- > 0;) name##_sift(h, n, i);                  \
    }
DEFINE_HEAP(heap_max, before)
DEFINE_HEAP(heap_min, after)

/* The best-ranked token strictly after `t` (t.id < 0 means "before all"). */
static entry next_after(const float *logits, int V, entry t) {
    entry best = {-INFINITY, -1};
    for (int i = 0; i < V; i++) {
        entry e = {rank_value(logits[i]), i};
        if ((t.id < 0 || after(e, t)) && (best.id < 0 || before(e, best))) best = e;
    }
    return best;
}

/* Keep the tokens ranked at or before t; set the rest (and NaNs) to -inf. */
static void keep_through(float *logits, int V, entry t) {
    for (int i = 0; i < V; i++) {
        entry e = {rank_value(logits[i]), i};
        if (after(e, t) || isnan(logits[i])) logits[i] = -INFINITY;
    }
}

/* ---- softmax weights ------------------------------------------------------ */

/* Unnormalised softmax weights relative to the largest logit m: expf(l - m)
 * for finite m (in float: its ~1e-7 relative error is far below sampling
 * noise, and it is several times cheaper than exp in double; sums are in
 * double); for m = +inf, weight 1 for each +inf token and 0 otherwise.
 * NaN and -inf weigh 0. */
typedef struct {
    float m;
    bool inf_mode;
} weights;

/* Returns false when no token has positive weight (all -inf or NaN). */
static bool weights_init(const float *logits, int V, weights *w) {
    /* Four running maxima break the compare-select dependency chain (the
     * compiler may not reorder a NaN-aware max); NaN compares false. */
    float m4[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 4 <= V; i += 4)
        for (int j = 0; j < 4; j++) m4[j] = logits[i + j] > m4[j] ? logits[i + j] : m4[j];
    for (; i < V; i++) m4[0] = logits[i] > m4[0] ? logits[i] : m4[0];
    float m = m4[0];
    for (int j = 1; j < 4; j++) m = m4[j] > m ? m4[j] : m;
    w->m = m;
    w->inf_mode = isinf(m) && m > 0;
    return m > -INFINITY;
}

static inline float weight(const weights *w, float l) {
    if (w->inf_mode) return l == INFINITY ? 1.0f : 0.0f;
    if (!(l > -INFINITY)) return 0.0f; /* -inf and NaN */
    return expf(l - w->m);
}

/* Lowest-id argmax ignoring NaN; 0 if every logit is NaN (or V <= 0). */
static int32_t argmax(const float *logits, int V) {
    int32_t best = 0;
    bool found = false;
    for (int i = 0; i < V; i++) {
        if (isnan(logits[i])) continue;
        if (!found || logits[i] > logits[best]) best = i;
        found = true;
    }
    return best;
}

/* ---- the samplers ----------------------------------------------------------- */

/* CTRL (Keskar et al. 2019): each distinct history token in [0, V) is
 * penalised once. A bitmap of V bits marks the tokens already done; without
 * memory for it, an earlier occurrence is found by a backward scan. */
void ss_repetition_penalty(float *logits, int V, const int32_t *history, size_t n, float penalty) {
    if (V <= 0 || !history || n == 0 || !(penalty > 0) || penalty == 1.0f) return;
    size_t words = ((size_t)V + 63) / 64;
    uint64_t *done = thread_scratch(words * sizeof *done);
    if (done) memset(done, 0, words * sizeof *done);
    for (size_t i = 0; i < n; i++) {
        int32_t t = history[i];
        if (t < 0 || t >= V) continue;
        if (done) {
            uint64_t bit = 1ull << (t & 63);
            if (done[t >> 6] & bit) continue;
            done[t >> 6] |= bit;
        } else {
            size_t j = 0;
            while (j < i && history[j] != t) j++;
            if (j < i) continue;
        }
        float l = logits[t];
        logits[t] = l > 0 ? l / penalty : l * penalty;
    }
}

void ss_temperature(float *logits, int V, float t) {
    if (!(t > 0) || t == 1.0f) return;
    for (int i = 0; i < V; i++) logits[i] /= t;
}

/* A min-heap (worst-ranked at the root) of the k best seen so far: a token
 * enters only if it beats the root, so the scan is O(V log k) worst case and
 * O(V) once the heap holds the top tokens. The final root is the k-th. */
int ss_top_k(float *logits, int V, int k) {
    if (V <= 0) return 0;
    if (k <= 0 || k >= V) return V;
    entry kth;
    entry *h = thread_scratch((size_t)k * sizeof *h);
    if (h) {
        for (int i = 0; i < k; i++) h[i] = (entry){rank_value(logits[i]), i};
        heap_min_build(h, (size_t)k);
        for (int i = k; i < V; i++) {
            entry e = {rank_value(logits[i]), i};
            if (before(e, h[0])) {
                h[0] = e;
                heap_min_sift(h, (size_t)k, 0);
            }
        }
        kth = h[0];
    } else {
        kth = (entry){0, -1};
        for (int i = 0; i < k; i++) kth = next_after(logits, V, kth);
    }
    keep_through(logits, V, kth);
    return k;
}

/* Nucleus candidates are first narrowed by a histogram of log-weights:
 * bucket b holds the tokens with m - l in [b, b + 1) / 8 nats (the last one
 * everything further down). Buckets are a partition in rank order, so the
 * first bucket whose running mass reaches p * Z bounds the nucleus. */
enum { NBUCKET = 128, BUCKETS_PER_NAT = 8 };

static inline int bucket_of(const weights *w, float l) {
    if (w->inf_mode) return l == INFINITY ? 0 : NBUCKET - 1;
    float d = (w->m - l) * BUCKETS_PER_NAT;
    return d < NBUCKET - 1 ? (int)d : NBUCKET - 1;
}

/* The last bucket that can hold nucleus tokens (a relative margin of 1e-9
 * covers the different summation order from the heap's running sum). */
static int last_bucket(const double *mass, double target) {
    double cum = 0;
    for (int b = 0; b < NBUCKET; b++) {
        cum += mass[b];
        if (cum >= target * (1 + 1e-9)) return b;
    }
    return NBUCKET - 1;
}

/* Holtzman et al. 2019. The candidates (positive weight, bucket <= the last
 * bucket) go into a max-heap (Floyd's O(n) build) and are popped best first
 * until their mass reaches p * Z: O(V) plus O(m log n) for a nucleus of m
 * tokens, never a sort of the vocabulary. If rounding leaves the candidates'
 * total just short of p * Z, all of them are kept. */
int ss_top_p(float *logits, int V, float p) {
    if (V <= 0) return 0;
    if (!(p < 1.0f)) return V; /* p >= 1 or NaN: off */
    weights w;
    if (!weights_init(logits, V, &w)) return V; /* nothing has mass: leave it */
    double z = 0, mass[NBUCKET] = {0};
    size_t n = 0; /* tokens of positive weight */
    for (int i = 0; i < V; i++) {
        float wi = weight(&w, logits[i]);
        if (wi <= 0) continue;
        z += wi;
        mass[bucket_of(&w, logits[i])] += wi;
        n++;
    }
    double target = (double)p * z, cum = 0;
    entry last = {0, -1};
    int kept = 0;
    entry *h = thread_scratch(n * sizeof *h);
    if (h) {
        int lb = last_bucket(mass, target);
        n = 0;
        for (int i = 0; i < V; i++) {
            float l = logits[i];
            if (!(l > -INFINITY) || bucket_of(&w, l) > lb) continue;
            if (lb == NBUCKET - 1 && !(weight(&w, l) > 0)) continue; /* underflow */
            h[n++] = (entry){l, i};
        }
        heap_max_build(h, n);
        while (n > 0 && (kept == 0 || cum < target)) {
            last = h[0];
            cum += weight(&w, last.v);
            kept++;
            h[0] = h[--n];
            heap_max_sift(h, n, 0);
        }
    } else {
        while ((size_t)kept < n && (kept == 0 || cum < target)) {
            last = next_after(logits, V, last);
            cum += weight(&w, last.v);
            kept++;
        }
    }
    keep_through(logits, V, last);
    return kept;
}

/* The index whose cumulative weight first exceeds u * Z, or -1 when no token
 * has positive weight. The weights are kept from the first pass (or, without
 * memory for them, recomputed identically), so the running sum ends exactly
 * at Z and only u * Z rounding up to Z can run off the end; that draw goes to
 * the last token of positive weight. */
static int32_t draw(const float *logits, int V, double u) {
    weights w;
    if (V <= 0 || !weights_init(logits, V, &w)) return -1;
    float *wt = thread_scratch((size_t)V * sizeof *wt);
    double z = 0;
    for (int i = 0; i < V; i++) {
        float wi = weight(&w, logits[i]);
        if (wt) wt[i] = wi;
        z += wi;
    }
    double target = u * z, cum = 0;
    int32_t last = -1;
    for (int i = 0; i < V; i++) {
        float wi = wt ? wt[i] : weight(&w, logits[i]);
        if (wi <= 0) continue;
        cum += wi;
        last = i;
        if (target < cum) return i;
    }
    return last;
}

int32_t ss_sample_softmax(const float *logits, int V, ss_rng *rng) {
    int32_t t = draw(logits, V, ss_rng_uniform_double(rng));
    return t >= 0 ? t : argmax(logits, V);
}

/* Greedy decoding consumes no randomness; sampling consumes one uniform. */
int32_t ss_sample_next(const float *logits, int V, const ss_sampler_config *c, const int32_t *history, size_t n,
                       ss_rng *rng, float *scratch) {
    if (V <= 0) return 0;
    if (scratch != logits) memcpy(scratch, logits, (size_t)V * sizeof *scratch);
    ss_repetition_penalty(scratch, V, history, n, c->repetition_penalty);
    int32_t t;
    if (!(c->temperature > 0)) {
        weights w;
        t = weights_init(scratch, V, &w) ? argmax(scratch, V) : -1;
    } else {
        ss_temperature(scratch, V, c->temperature);
        if (c->top_k > 0) ss_top_k(scratch, V, c->top_k);
        if (c->top_p < 1.0f) ss_top_p(scratch, V, c->top_p);
        t = draw(scratch, V, ss_rng_uniform_double(rng));
    }
    return t >= 0 ? t : argmax(logits, V);
}
