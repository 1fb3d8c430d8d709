/* selfsup/dist.h for one process (build/selfsup, libselfsup): rank 0 of 1,
 * every reduction the identity, no MPI linked. The MPI flavour replaces this
 * file with dist_mpi.c. */
#include <stdlib.h>
#include <string.h>

#include "selfsup/dist.h"

ss_status ss_dist_init(int *argc, char ***argv, ss_error *err) {
    (void)argc, (void)argv, (void)err;
    return SS_OK;
}

void ss_dist_finalize(void) {}
void ss_dist_abort(int status) { exit(status); }
int ss_dist_rank(void) { return 0; }
int ss_dist_size(void) { return 1; }
const char *ss_dist_name(void) { return "one process"; }

ss_status ss_dist_sum_f32(float *x, size_t n, ss_error *err) {
    (void)x, (void)n, (void)err;
    return SS_OK;
}

ss_status ss_dist_sum_f64(double *x, size_t n, ss_error *err) {
    (void)x, (void)n, (void)err;
    return SS_OK;
}

ss_status ss_dist_sum_f32_start(float *x, size_t n, ss_error *err) { return ss_dist_sum_f32(x, n, err); }

ss_status ss_dist_sum_wait(ss_error *err) {
    (void)err;
    return SS_OK;
}

int ss_dist_async(void) { return 0; }

ss_status ss_dist_bcast(void *buf, size_t bytes, ss_error *err) {
    (void)buf, (void)bytes, (void)err;
    return SS_OK;
}

ss_status ss_dist_gather(const void *mine, size_t bytes, void **all, size_t *all_bytes, ss_error *err) {
    *all = malloc(bytes ? bytes : 1);
    if (!*all) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (bytes) memcpy(*all, mine, bytes);
    *all_bytes = bytes;
    return SS_OK;
}
