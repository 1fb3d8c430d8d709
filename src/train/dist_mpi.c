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
 * other ranks) rather than leaving a rank waiting.
 *
 * Overlapped sums (ss_dist_sum_f32_start): one communication thread takes
 * queued buffers in order and sums each with the same code. MPI is set up
 * with MPI_THREAD_SERIALIZED: the thread calls MPI only while the main
 * thread waits for it (ss_dist_sum_wait) or computes without MPI. Its
 * messages are nonblocking, tested with sleeps of SLEEP_NS between tests
 * after a few immediate ones (Open MPI's blocking calls poll and would take
 * a core from the OpenMP threads computing the backward pass), and it adds
 * without OpenMP (a team of its own would oversubscribe the cores). */
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "selfsup/dist.h"

static int g_rank = 0, g_size = 1, g_init = 0;
static char g_name[MPI_MAX_LIBRARY_VERSION_STRING];
static void *g_tmp; /* scratch of the main thread's sums, grown as needed */
static size_t g_tmp_bytes;

/* The communication thread and its queue of started sums. */
#define QUEUE 256
#define SLEEP_NS 20000
#define QUICK_TESTS 32
static int g_async;                    /* MPI_THREAD_SERIALIZED was provided */
static int g_comm_up, g_comm_quit;
static pthread_t g_comm;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv_job = PTHREAD_COND_INITIALIZER, g_cv_done = PTHREAD_COND_INITIALIZER;
static struct {
    float *x;
    size_t n;
} g_queue[QUEUE];
static int g_q_head, g_q_count;        /* next job to take; jobs queued or running */
static void *g_atmp;                   /* the thread's scratch (grown only while it is idle) */
static size_t g_atmp_bytes;

ss_status ss_dist_init(int *argc, char ***argv, ss_error *err) {
    int provided = 0, flag = 0;
    MPI_Initialized(&flag);
    if (flag) return SS_OK;
    /* OpenMP threads compute; the main thread and the communication thread
     * call MPI, never at the same time */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return ss_fail(err, SS_ERR_IO, "MPI_Init failed");
    g_init = 1;
    g_async = provided >= MPI_THREAD_SERIALIZED;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    v[strcspn(v, ",\n")] = 0; /* "Open MPI v4.1.4" */
    snprintf(g_name, sizeof g_name, "%s", v);
    return SS_OK;
}

static void comm_stop(void);

void ss_dist_finalize(void) {
    comm_stop();
    if (g_init) MPI_Finalize();
    g_init = 0;
    free(g_tmp);
    free(g_atmp);
    g_tmp = g_atmp = NULL;
    g_tmp_bytes = g_atmp_bytes = 0;
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

static ss_status grow(void **buf, size_t *have, size_t bytes, ss_error *err) {
    if (bytes <= *have) return SS_OK;
    void *p = realloc(*buf, bytes);
    if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory for the gradient reduction (%zu bytes)", bytes);
    *buf = p;
    *have = bytes;
    return SS_OK;
}

/* MPI counts are ints: messages go in chunks of at most CHUNK elements. */
#define CHUNK ((size_t)1 << 28)

/* The requests complete: MPI_Waitall in the main thread; in the
 * communication thread (polite), tests, the first few at once, then with
 * sleeps between them. */
static void wait_all(int n, MPI_Request *r, int polite) {
    if (!polite) {
        MPI_Waitall(n, r, MPI_STATUSES_IGNORE);
        return;
    }
    for (int i = 0;; i++) {
        int done = 0;
        MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE);
        if (done) return;
        if (i >= QUICK_TESTS) nanosleep(&(struct timespec){0, SLEEP_NS}, NULL);
    }
}

/* Send ns elements to `peer` while receiving nr from it. */
static void exchange(const void *sbuf, size_t ns, void *rbuf, size_t nr, size_t es, MPI_Datatype t, int peer,
                     int polite) {
    for (size_t i = 0; i < ns || i < nr; i += CHUNK) {
        int cs = i < ns ? (int)(ns - i < CHUNK ? ns - i : CHUNK) : 0;
        int cr = i < nr ? (int)(nr - i < CHUNK ? nr - i : CHUNK) : 0;
        MPI_Request r[2];
        MPI_Irecv(cr ? (char *)rbuf + i * es : rbuf, cr, t, peer, 19, MPI_COMM_WORLD, &r[0]);
        MPI_Isend(cs ? (const char *)sbuf + i * es : sbuf, cs, t, peer, 19, MPI_COMM_WORLD, &r[1]);
        wait_all(2, r, polite);
    }
}

static void send_all(const void *buf, size_t n, size_t es, MPI_Datatype t, int peer, int polite) {
    for (size_t i = 0; i < n; i += CHUNK) {
        MPI_Request r;
        MPI_Isend((const char *)buf + i * es, (int)(n - i < CHUNK ? n - i : CHUNK), t, peer, 20, MPI_COMM_WORLD, &r);
        wait_all(1, &r, polite);
    }
}

static void recv_all(void *buf, size_t n, size_t es, MPI_Datatype t, int peer, int polite) {
    for (size_t i = 0; i < n; i += CHUNK) {
        MPI_Request r;
        MPI_Irecv((char *)buf + i * es, (int)(n - i < CHUNK ? n - i : CHUNK), t, peer, 20, MPI_COMM_WORLD, &r);
        wait_all(1, &r, polite);
    }
}

static void bcast(void *buf, size_t bytes, int polite) {
    for (size_t i = 0; i < bytes; i += CHUNK) {
        MPI_Request r;
        MPI_Ibcast((char *)buf + i, (int)(bytes - i < CHUNK ? bytes - i : CHUNK), MPI_BYTE, 0, MPI_COMM_WORLD, &r);
        wait_all(1, &r, polite);
    }
}

/* a[i] += b[i]; `polite`: in the communication thread, without OpenMP. */
typedef void (*add_fn)(void *a, const void *b, size_t n, int polite);

static void add_f32(void *a, const void *b, size_t n, int polite) {
    float *x = a;
    const float *y = b;
    #pragma omp parallel for simd schedule(static) if (!polite && n >= 65536)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static void add_f64(void *a, const void *b, size_t n, int polite) {
    (void)polite;
    double *x = a;
    const double *y = b;
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* One sum in progress: the buffer, its element type, the scratch, and
 * whether it runs in the communication thread. */
typedef struct {
    char *x;
    size_t n, es;
    MPI_Datatype t;
    add_fn add;
    char *tmp;
    int polite;
} sum_op;

static int split_of(int n) {
    int p = 1;
    while (2 * p < n) p *= 2;
    return p;
}

/* Power-of-two rank count: recursive halving, then doubling (see the top). */
static void sum_pow2(const sum_op *o) {
    size_t plo[32], phi[32], lo = 0, hi = o->n, es = o->es;
    int lv = 0, d;
    for (d = 1; d < g_size; d <<= 1, lv++) {
        int up = (g_rank & d) != 0;
        size_t mid = lo + (hi - lo) / 2;
        size_t klo = up ? mid : lo, khi = up ? hi : mid, slo = up ? lo : mid, shi = up ? mid : hi;
        plo[lv] = lo, phi[lv] = hi;
        exchange(o->x + slo * es, shi - slo, o->tmp, khi - klo, es, o->t, g_rank ^ d, o->polite);
        o->add(o->x + klo * es, o->tmp, khi - klo, o->polite); /* the tree's left + right: the same bits either way round */
        lo = klo, hi = khi;
    }
    for (lv--, d >>= 1; lv >= 0; lv--, d >>= 1) {
        int up = (g_rank & d) != 0;
        size_t mid = plo[lv] + (phi[lv] - plo[lv]) / 2;
        size_t olo = up ? plo[lv] : mid, ohi = up ? mid : phi[lv];
        exchange(o->x + lo * es, hi - lo, o->x + olo * es, ohi - olo, es, o->t, g_rank ^ d, o->polite);
        lo = plo[lv], hi = phi[lv];
    }
}

/* Other rank counts: ranks [lo, hi) sum into rank lo along the tree. */
static void reduce_tree(const sum_op *o, int lo, int hi) {
    if (hi - lo < 2) return;
    int mid = lo + split_of(hi - lo);
    if (g_rank < mid) {
        reduce_tree(o, lo, mid);
        if (g_rank == lo) {
            recv_all(o->tmp, o->n, o->es, o->t, mid, o->polite);
            o->add(o->x, o->tmp, o->n, o->polite);
        }
    } else {
        reduce_tree(o, mid, hi);
        if (g_rank == mid) send_all(o->x, o->n, o->es, o->t, lo, o->polite);
    }
}

static void run_sum(const sum_op *o) {
    if (g_size < 2 || o->n == 0) return;
    if ((g_size & (g_size - 1)) == 0) {
        sum_pow2(o);
        return;
    }
    reduce_tree(o, 0, g_size);
    bcast(o->x, o->n * o->es, o->polite);
}

static void comm_idle(void);

static ss_status sum(void *x, size_t n, size_t es, MPI_Datatype t, add_fn add, ss_error *err) {
    if (g_size < 2 || n == 0) return SS_OK;
    comm_idle(); /* MPI_THREAD_SERIALIZED: the thread's sums first */
    ss_status st = grow(&g_tmp, &g_tmp_bytes, n * es, err);
    if (st) return st;
    run_sum(&(sum_op){x, n, es, t, add, g_tmp, 0});
    return SS_OK;
}

ss_status ss_dist_sum_f32(float *x, size_t n, ss_error *err) { return sum(x, n, sizeof *x, MPI_FLOAT, add_f32, err); }
ss_status ss_dist_sum_f64(double *x, size_t n, ss_error *err) { return sum(x, n, sizeof *x, MPI_DOUBLE, add_f64, err); }

ss_status ss_dist_bcast(void *buf, size_t bytes, ss_error *err) {
    (void)err;
    if (g_size < 2) return SS_OK;
    comm_idle();
    bcast(buf, bytes, 0);
    return SS_OK;
}

/* ---- the communication thread ---------------------------------------------------- */

static void *comm_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_mu);
    for (;;) {
        while (!g_q_count && !g_comm_quit) pthread_cond_wait(&g_cv_job, &g_mu);
        if (!g_q_count) break; /* quit, and nothing left */
        float *x = g_queue[g_q_head].x;
        size_t n = g_queue[g_q_head].n;
        pthread_mutex_unlock(&g_mu);
        run_sum(&(sum_op){(char *)x, n, sizeof *x, MPI_FLOAT, add_f32, g_atmp, 1});
        pthread_mutex_lock(&g_mu);
        g_q_head = (g_q_head + 1) % QUEUE;
        g_q_count--;
        pthread_cond_broadcast(&g_cv_done);
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

static void comm_stop(void) {
    if (!g_comm_up) return;
    pthread_mutex_lock(&g_mu);
    g_comm_quit = 1;
    pthread_cond_broadcast(&g_cv_job);
    pthread_mutex_unlock(&g_mu);
    pthread_join(g_comm, NULL);
    g_comm_up = g_comm_quit = 0;
}

int ss_dist_async(void) { return g_async && g_size > 1; }

static void comm_idle(void) {
    if (!g_comm_up) return;
    pthread_mutex_lock(&g_mu);
    while (g_q_count) pthread_cond_wait(&g_cv_done, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

ss_status ss_dist_sum_wait(ss_error *err) {
    (void)err;
    comm_idle();
    return SS_OK;
}

ss_status ss_dist_sum_f32_start(float *x, size_t n, ss_error *err) {
    if (!ss_dist_async()) return ss_dist_sum_f32(x, n, err);
    if (n == 0) return SS_OK;
    ss_status st = SS_OK;
    if (n * sizeof *x > g_atmp_bytes) { /* grown while the thread is idle */
        comm_idle();
        if ((st = grow(&g_atmp, &g_atmp_bytes, n * sizeof *x, err))) return st;
    }
    if (!g_comm_up) {
        if (pthread_create(&g_comm, NULL, comm_main, NULL))
            return ss_fail(err, SS_ERR_IO, "cannot start the communication thread");
        g_comm_up = 1;
    }
    pthread_mutex_lock(&g_mu);
    while (g_q_count == QUEUE) pthread_cond_wait(&g_cv_done, &g_mu);
    int tail = (g_q_head + g_q_count) % QUEUE;
    g_queue[tail].x = x;
    g_queue[tail].n = n;
    g_q_count++;
    pthread_cond_signal(&g_cv_job);
    pthread_mutex_unlock(&g_mu);
    return SS_OK;
}

ss_status ss_dist_gather(const void *mine, size_t bytes, void **all, size_t *all_bytes, ss_error *err) {
    comm_idle();
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
