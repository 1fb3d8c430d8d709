/* Data-parallel training across processes: the ranks of an MPI job, or one
 * process.
 *
 * Two implementations of the same functions: src/train/dist_single.c (one
 * process: rank 0 of 1; every reduction is the identity) goes into
 * libselfsup and build/selfsup, which therefore link no MPI and pay no MPI
 * start-up; src/train/dist_mpi.c (Open MPI) replaces it in the MPI flavour,
 * build/selfsup-mpi (`make mpi`). The helpers below them (src/train/dist.c)
 * are shared.
 *
 * Every reduction here is deterministic: its result depends on the values
 * and on the number of ranks, never on timing or on the MPI library's choice
 * of algorithm. Sums follow one fixed tree, the left-complete binary tree
 * over the ranks in order (split [lo, hi) at lo + the largest power of two
 * below hi - lo: for 4 ranks (x0 + x1) + (x2 + x3)), and every rank gets the
 * same bits. MPI_Allreduce is not used for sums: the standard lets its
 * result depend on the algorithm Open MPI picks (by message size and rank
 * count), so it need not be bit-reproducible across runs or rank counts. */
#ifndef SELFSUP_DIST_H
#define SELFSUP_DIST_H

#include <stddef.h>

#include "selfsup/error.h"

/* ---- the implementation (dist_single.c, or dist_mpi.c in selfsup-mpi) ---------- */

/* Join the job (MPI_Init; one process: nothing). Call once, before any
 * other function here; the others work without it as one process. */
ss_status ss_dist_init(int *argc, char ***argv, ss_error *err);
/* Leave the job normally (every rank must call it: MPI_Finalize). */
void ss_dist_finalize(void);
/* End the whole job at once with this exit status (MPI_Abort kills every
 * rank; one process: exit). Never returns. */
void ss_dist_abort(int status) __attribute__((noreturn));
int ss_dist_rank(void);
int ss_dist_size(void);
/* "one process", or the MPI library's name and version. */
const char *ss_dist_name(void);

/* x[0..n) summed over the ranks, in place, on every rank, in the fixed tree
 * order above: recursive halving (a reduce-scatter) and recursive doubling
 * (an allgather) when the rank count is a power of two (each rank sends and
 * receives (R-1)/R of the buffer twice, as a ring all-reduce does),
 * otherwise a reduction to rank 0 along the tree and a broadcast. */
ss_status ss_dist_sum_f32(float *x, size_t n, ss_error *err);
ss_status ss_dist_sum_f64(double *x, size_t n, ss_error *err);
/* Sums that run beside the caller's computation (gradient buckets
 * overlapped with the backward pass). ss_dist_sum_f32_start queues x[0..n)
 * to be summed in place over the ranks, as ss_dist_sum_f32 sums it (the same
 * tree, so the same bits: the sums are element by element), by a
 * communication thread; until ss_dist_sum_wait returns, the caller must not
 * touch the queued buffers nor call any other ss_dist_ function. Every rank
 * must start the same sums in the same order (when each starts is free).
 * The thread waits for its messages with short sleeps between tests instead
 * of MPI's polling, so it takes little from the cores that compute. One
 * process, or an MPI without MPI_THREAD_SERIALIZED: the sum runs at once in
 * the caller, and ss_dist_async() is 0. */
ss_status ss_dist_sum_f32_start(float *x, size_t n, ss_error *err);
/* Wait until every started sum is complete; the first failure, if any. */
ss_status ss_dist_sum_wait(ss_error *err);
int ss_dist_async(void);
/* Rank 0's bytes to every rank. */
ss_status ss_dist_bcast(void *buf, size_t bytes, ss_error *err);
/* Every rank's `bytes` bytes (they may differ), concatenated in rank order,
 * on every rank: *all (malloc'd, the caller frees) of *all_bytes. */
ss_status ss_dist_gather(const void *mine, size_t bytes, void **all, size_t *all_bytes, ss_error *err);

/* ---- shared helpers (dist.c) --------------------------------------------------- */

/* Parts of a batch. The global batch of a step is cut into P parts (the
 * run's shards, a multiple of the ranks); rank r computes parts
 * [r P/R, (r+1) P/R). Part j of n items is items [j n / P, (j+1) n / P):
 * ss_part_lo(n, j, P) to ss_part_lo(n, j + 1, P). */
static inline size_t ss_part_lo(size_t n, int j, int parts) { return n * (size_t)j / (size_t)parts; }
/* This rank's parts [*lo, *hi) of `parts` (a multiple of ss_dist_size()). */
void ss_dist_my_parts(int parts, int *lo, int *hi);

/* Sum of n buffers of len floats in the fixed tree order above (over the
 * buffers in order), into bufs[0]; the others are used as scratch. */
void ss_tree_sum_f32(float *const *bufs, int n, size_t len);
/* out[f] = the tree sum over the parts of slots[.][f] (slots: [parts][width]). */
void ss_tree_sum_parts(const double *slots, int parts, int width, double *out);
/* Per-part results: slots [parts][width] doubles, this rank's parts filled
 * and the others zero. Summed over the ranks (exact: each slot has one
 * nonzero term), then ss_tree_sum_parts. So the result is the same bits for
 * any rank count that divides parts. */
ss_status ss_dist_sum_parts(double *slots, int parts, int width, double *out, ss_error *err);

#endif
