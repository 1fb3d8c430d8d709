/* One writer per run directory: an advisory lock (flock) on DIR/.lock,
 * held while a training run writes DIR and released by the kernel when its
 * process ends, however it ends (so a killed run never leaves DIR locked). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "selfsup/io.h"
#include "selfsup/path.h"

ss_status ss_run_lock(const char *dir, int *fd_out, ss_error *err) {
    *fd_out = -1;
    char path[SS_PATH_MAX];
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_LOCK, err);
    if (st) return st;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ss_fail(err, SS_ERR_IO, "%s: cannot open the run's lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        close(fd);
        if (e != EWOULDBLOCK)
            return ss_fail(err, SS_ERR_IO, "%s: cannot lock the run directory: %s", path, strerror(e));
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return ss_fail(err, SS_ERR_ARG, "%s is in use by another training process%s%s%s: two runs writing one "
                       "directory would mix their checkpoints (wait for it to end, or give another --out)", dir,
                       pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    /* the pid serves only a second process's message: a failed write loses nothing else */
    if (ftruncate(fd, 0) == 0) n = (int)pwrite(fd, pid, (size_t)n, 0);
    *fd_out = fd;
    return SS_OK;
}

void ss_run_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the descriptor releases the lock */
}
