/* selfsup/dist.h on MPI (Open MPI): the MPI flavour, build/selfsup-mpi,
 * links this file instead of dist_single.c (Makefile: `make mpi`).
 *
 * Sums are computed here from point-to-point messages in one fixed order
 * (the left-complete binary tree over the ranks, selfsup/dist.h), not with
 * MPI_Allreduce, whose association of the terms is the library's choice.
 * For a power-of-two rank count: recursive halving (at distance 1, 2, 4 ...:
 * rank r exchanges half of its current range with rank r ^ d and adds the
 * half it keeps, so after log2 R steps it holds 1/R of the sum, associated
 * as the tree) then recursive doubling back (the halves are exchanged in
 * the reverse order until every rank has all of it). Each rank sends and
 * receives (R-1)/R of the buffer in each phase: the bandwidth of a ring
 * all-reduce, with log2 R latencies per phase instead of R-1. Other rank
 * counts reduce to rank 0 along the tree and broadcast. MPI's default error
 * handler is kept: a failed or lost peer ends the job (mpirun kills the
 * other ranks) rather than leaving a rank waiting. */
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/dist.h"

static int g_rank = 0, g_size = 1, g_init = 0;
static char g_name[MPI_MAX_LIBRARY_VERSION_STRING];
static void *g_tmp; /* scratch of the sums, grown as needed */
static size_t g_tmp_bytes;

ss_status ss_dist_init(int *argc, char ***argv, ss_error *err) {
    int provided = 0, flag = 0;
    MPI_Initialized(&flag);
    if (flag) return SS_OK;
    /* OpenMP threads compute; only the main thread calls MPI */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ss_fail(err, SS_ERR_IO, "MPI_Init failed");
    g_init = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    v[strcspn(v, ",\n")] = 0; /* "Open MPI v4.1.4" */
    snprintf(g_name, sizeof g_name, "%s", v);
    return SS_OK;
}

void ss_dist_finalize(void) {
    if (g_init) MPI_Finalize();
    g_init = 0;
    free(g_tmp);
    g_tmp = NULL;
    g_tmp_bytes = 0;
}

void ss_dist_abort(int status) {
    fflush(stdout);
    fflush(stderr);
    if (g_init && g_size > 1) MPI_Abort(MPI_COMM_WORLD, status);
    if (g_init) MPI_Finalize();
    exit(status);
}

int ss_dist_rank(void) { return g_rank; }
int ss_dist_size(void) { return g_size; }
const char *ss_dist_name(void) { return g_init ? g_name : "one process"; }

static ss_status scratch(size_t bytes, ss_error *err) {
    if (bytes <= g_tmp_bytes) return SS_OK;
    void *p = realloc(g_tmp, bytes);
    if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory for the gradient reduction (%zu bytes)", bytes);
    g_tmp = p;
    g_tmp_bytes = bytes;
    return SS_OK;
}

/* MPI counts are ints: messages go in chunks of at most CHUNK elements. */
#define CHUNK ((size_t)1 << 28)

/* Send ns elements to `peer` while receiving nr from it. */
static void exchange(const void *sbuf, size_t ns, void *rbuf, size_t nr, size_t es, MPI_Datatype t, int peer) {
    for (size_t i = 0; i < ns || i < nr; i += CHUNK) {
        int cs = i < ns ? (int)(ns - i < CHUNK ? ns - i : CHUNK) : 0;
        int cr = i < nr ? (int)(nr - i < CHUNK ? nr - i : CHUNK) : 0;
        MPI_Sendrecv(cs ? (const char *)sbuf + i * es : sbuf, cs, t, peer, 19, cr ? (char *)rbuf + i * es : rbuf, cr,
                     t, peer, 19, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
}

static void send_all(const void *buf, size_t n, size_t es, MPI_Datatype t, int peer) {
    for (size_t i = 0; i < n; i += CHUNK)
        MPI_Send((const char *)buf + i * es, (int)(n - i < CHUNK ? n - i : CHUNK), t, peer, 20, MPI_COMM_WORLD);
}

static void recv_all(void *buf, size_t n, size_t es, MPI_Datatype t, int peer) {
    for (size_t i = 0; i < n; i += CHUNK)
        MPI_Recv((char *)buf + i * es, (int)(n - i < CHUNK ? n - i : CHUNK), t, peer, 20, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
}

typedef void (*add_fn)(void *a, const void *b, size_t n); /* a[i] += b[i] */

static void add_f32(void *a, const void *b, size_t n) {
    float *x = a;
    const float *y = b;
    #pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static void add_f64(void *a, const void *b, size_t n) {
    double *x = a;
    const double *y = b;
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static int split_of(int n) {
    int p = 1;
    while (2 * p < n) p *= 2;
    return p;
}

/* Power-of-two rank count: recursive halving, then doubling (see the top). */
static void sum_pow2(char *x, size_t n, size_t es, MPI_Datatype t, add_fn add) {
    size_t plo[32], phi[32], lo = 0, hi = n;
    int lv = 0, d;
    for (d = 1; d < g_size; d <<= 1, lv++) {
        int up = (g_rank & d) != 0;
        size_t mid = lo + (hi - lo) / 2;
        size_t klo = up ? mid : lo, khi = up ? hi : mid, slo = up ? lo : mid, shi = up ? mid : hi;
        plo[lv] = lo, phi[lv] = hi;
        exchange(x + slo * es, shi - slo, g_tmp, khi - klo, es, t, g_rank ^ d);
        add(x + klo * es, g_tmp, khi - klo); /* the tree's left + right: the same bits either way round */
        lo = klo, hi = khi;
    }
    for (lv--, d >>= 1; lv >= 0; lv--, d >>= 1) {
        int up = (g_rank & d) != 0;
        size_t mid = plo[lv] + (phi[lv] - plo[lv]) / 2;
        size_t olo = up ? plo[lv] : mid, ohi = up ? mid : phi[lv];
        exchange(x + lo * es, hi - lo, x + olo * es, ohi - olo, es, t, g_rank ^ d);
        lo = plo[lv], hi = phi[lv];
    }
}

/* Other rank counts: ranks [lo, hi) sum into rank lo along the tree. */
static void reduce_tree(char *x, size_t n, size_t es, MPI_Datatype t, add_fn add, int lo, int hi) {
    if (hi - lo < 2) return;
    int mid = lo + split_of(hi - lo);
    if (g_rank < mid) {
        reduce_tree(x, n, es, t, add, lo, mid);
        if (g_rank == lo) {
            recv_all(g_tmp, n, es, t, mid);
            add(x, g_tmp, n);
        }
    } else {
        reduce_tree(x, n, es, t, add, mid, hi);
        if (g_rank == mid) send_all(x, n, es, t, lo);
    }
}

static ss_status sum(void *x, size_t n, size_t es, MPI_Datatype t, add_fn add, ss_error *err) {
    if (g_size < 2 || n == 0) return SS_OK;
    int pow2 = (g_size & (g_size - 1)) == 0;
    ss_status st = scratch(n * es, err);
    if (st) return st;
    if (pow2) {
        sum_pow2(x, n, es, t, add);
        return SS_OK;
    }
    reduce_tree(x, n, es, t, add, 0, g_size);
    return ss_dist_bcast(x, n * es, err);
}

ss_status ss_dist_sum_f32(float *x, size_t n, ss_error *err) { return sum(x, n, sizeof *x, MPI_FLOAT, add_f32, err); }
ss_status ss_dist_sum_f64(double *x, size_t n, ss_error *err) { return sum(x, n, sizeof *x, MPI_DOUBLE, add_f64, err); }

ss_status ss_dist_bcast(void *buf, size_t bytes, ss_error *err) {
    (void)err;
    if (g_size < 2) return SS_OK;
    for (size_t i = 0; i < bytes; i += CHUNK)
        MPI_Bcast((char *)buf + i, (int)(bytes - i < CHUNK ? bytes - i : CHUNK), MPI_BYTE, 0, MPI_COMM_WORLD);
    return SS_OK;
}

ss_status ss_dist_gather(const void *mine, size_t bytes, void **all, size_t *all_bytes, ss_error *err) {
    unsigned long long me = bytes, *each = malloc((size_t)g_size * sizeof *each);
    int *counts = malloc((size_t)g_size * sizeof *counts), *displs = malloc((size_t)g_size * sizeof *displs);
    ss_status st = each && counts && displs ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) MPI_Allgather(&me, 1, MPI_UNSIGNED_LONG_LONG, each, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    size_t total = 0;
    for (int i = 0; !st && i < g_size; i++) {
        if (each[i] > INT_MAX || total + each[i] > INT_MAX) {
            st = ss_fail(err, SS_ERR_RANGE, "gathering %llu bytes from rank %d: more than MPI's int counts hold",
                         each[i], i);
            break;
        }
        counts[i] = (int)each[i];
        displs[i] = (int)total;
        total += each[i];
    }
    *all = NULL;
    if (!st && !(*all = malloc(total ? total : 1))) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) MPI_Allgatherv(mine, (int)bytes, MPI_BYTE, *all, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
    *all_bytes = total;
    free(each), free(counts), free(displs);
    return st;
}
