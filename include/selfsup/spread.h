/* How spread a set of vectors is: a monitor of representation collapse.
 *
 * A body whose sentence vectors all point the same way holds nothing for a
 * classifier to read (an ELECTRA discriminator stuck at its base rate ends
 * that way: eval/RESULTS.md, the learning study's seventh part). Two
 * numbers summarise n vectors v_i of width d:
 *
 *   mean_cos       the mean cosine between two different vectors,
 *                  (|sum_i u_i|^2 - n) / (n (n - 1)) with u_i = v_i / |v_i|
 *                  (a zero vector counts as u = 0): 1 when they are parallel
 *   participation  the participation ratio of their covariance C (centred),
 *                  tr(C)^2 / tr(C^2) = (sum l)^2 / sum l^2 over its
 *                  eigenvalues l: 1 when they vary along one direction, d
 *                  when equally along all; 0 when they do not vary
 *
 * The sums are kept in an accumulator of ss_spread_width(d) doubles (zero
 * it to start; accumulators add elementwise, so parts computed apart can be
 * summed in a fixed order): n, the non-zero count, sum v, sum u, and the
 * Gram matrix sum v v^T, accumulated in double from one fp32 product per
 * call, always through OpenBLAS in fp32 (never bf16: near collapse the
 * covariance is a small difference of large second moments, 0.25% of them
 * for the rtd body above, below bf16's rounding of the inputs). */
#ifndef SELFSUP_SPREAD_H
#define SELFSUP_SPREAD_H

#include <stddef.h>

typedef struct {
    double n, mean_cos, participation; /* n < 2: mean_cos and participation are NaN */
} ss_spread_stats;

size_t ss_spread_width(int d);
/* Add the n vectors v[n, d] (row-major) to acc; gram is d*d floats of
 * scratch. */
void ss_spread_add(double *acc, const float *v, int n, int d, float *gram);
ss_spread_stats ss_spread_get(const double *acc, int d);

#endif
