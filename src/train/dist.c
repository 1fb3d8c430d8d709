/* Helpers of data-parallel training shared by both implementations of
 * selfsup/dist.h: which parts of a batch a rank computes, and sums in the
 * one fixed tree order (the left-complete binary tree over the terms in
 * order). */
#include <stdlib.h>
#include <string.h>

#include "selfsup/dist.h"

void ss_dist_my_parts(int parts, int *lo, int *hi) {
    int r = ss_dist_rank(), R = ss_dist_size();
    *lo = (int)((long long)parts * r / R);
    *hi = (int)((long long)parts * (r + 1) / R);
}

/* The largest power of two below n (n >= 2): where the tree splits [lo, lo+n). */
static int split_of(int n) {
    int p = 1;
    while (2 * p < n) p *= 2;
    return p;
}

/* bufs[lo] = sum of bufs[lo .. hi) in the tree order. */
static void tree_f32(float *const *bufs, int lo, int hi, size_t len) {
    if (hi - lo < 2) return;
    int mid = lo + split_of(hi - lo);
    tree_f32(bufs, lo, mid, len);
    tree_f32(bufs, mid, hi, len);
    float *a = bufs[lo];
    const float *b = bufs[mid];
    #pragma omp parallel for simd schedule(static) if (len >= 65536)
    for (size_t i = 0; i < len; i++) a[i] += b[i];
}

void ss_tree_sum_f32(float *const *bufs, int n, size_t len) { tree_f32(bufs, 0, n, len); }

/* The tree sum of v[lo*stride], v[(lo+1)*stride], ... v[(hi-1)*stride]. */
static double tree_f64(const double *v, size_t stride, int lo, int hi) {
    if (hi - lo == 1) return v[(size_t)lo * stride];
    int mid = lo + split_of(hi - lo);
    return tree_f64(v, stride, lo, mid) + tree_f64(v, stride, mid, hi);
}

void ss_tree_sum_parts(const double *slots, int parts, int width, double *out) {
    for (int f = 0; f < width; f++) out[f] = tree_f64(slots + f, (size_t)width, 0, parts);
}

ss_status ss_dist_sum_parts(double *slots, int parts, int width, double *out, ss_error *err) {
    ss_status st = ss_dist_size() > 1 ? ss_dist_sum_f64(slots, (size_t)parts * width, err) : SS_OK;
    if (!st) ss_tree_sum_parts(slots, parts, width, out);
    return st;
}
