/* Atomic file replacement: a crash at any point leaves either the old file or
 * the complete new one, never a torn mix. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "selfsup/io.h"

struct ss_atomic_file {
    FILE *f;
    char *path, *tmp;
};

ss_status ss_atomic_open(ss_atomic_file **out, const char *path, ss_error *err) {
    ss_atomic_file *a = calloc(1, sizeof *a);
    size_t n = strlen(path);
    if (!a || !(a->path = strdup(path)) || !(a->tmp = malloc(n + 16))) {
        if (a) free(a->path);
        free(a);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    snprintf(a->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
        ss_fail(err, SS_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(errno));
        if (fd >= 0) { close(fd); unlink(a->tmp); }
        free(a->tmp); free(a->path); free(a);
        return SS_ERR_IO;
    }
    fchmod(fd, 0644);
    *out = a;
    return SS_OK;
}

FILE *ss_atomic_stream(ss_atomic_file *a) { return a->f; }

static void fsync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
    free(copy);
}

ss_status ss_atomic_commit(ss_atomic_file *a, ss_error *err) {
    ss_status st = SS_OK;
    int failed = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int saved = errno;
    if (fclose(a->f) != 0 && !failed) { failed = 1; saved = errno; }
    if (!failed && rename(a->tmp, a->path) != 0) { failed = 1; saved = errno; }
    if (failed) {
        st = ss_fail(err, SS_ERR_IO, "%s: write failed: %s", a->path, strerror(saved));
        unlink(a->tmp);
    } else {
        fsync_parent_dir(a->path);
    }
    free(a->tmp); free(a->path); free(a);
    return st;
}

void ss_atomic_abort(ss_atomic_file *a) {
    if (!a) return;
    fclose(a->f);
    unlink(a->tmp);
    free(a->tmp); free(a->path); free(a);
}

ss_status ss_write_file_atomic(const char *path, const void *data, size_t len, ss_error *err) {
    ss_atomic_file *a;
    ss_status st = ss_atomic_open(&a, path, err);
    if (st) return st;
    if (len && fwrite(data, 1, len, a->f) != len) {
        ss_atomic_abort(a);
        return ss_fail(err, SS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return ss_atomic_commit(a, err);
}

ss_status ss_mkdir_p(const char *path, ss_error *err) {
    char *p = strdup(path);
    if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        int end = (*s == '\0');
        if (*s == '/' || end) {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                ss_fail(err, SS_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return SS_ERR_IO;
            }
            if (end) break;
            *s = '/';
        }
    }
    free(p);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ss_fail(err, SS_ERR_IO, "%s: exists and is not a directory", path);
    return SS_OK;
}

int ss_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

ss_status ss_atomic_remove_stale(const char *path, int *removed, ss_error *err) {
    if (removed) *removed = 0;
    char *d = strdup(path), *b = strdup(path);
    if (!d || !b) {
        free(d); free(b);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    const char *dir = dirname(d), *base = basename(b);
    size_t bn = strlen(base);
    ss_status st = SS_OK;
    DIR *dp = opendir(dir);
    if (!dp) {
        if (errno != ENOENT) st = ss_fail(err, SS_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
        free(d); free(b);
        return st;
    }
    for (struct dirent *e; !st && (e = readdir(dp));) {
        const char *n = e->d_name; /* BASE.tmp.XXXXXX, as ss_atomic_open names them */
        if (strlen(n) != bn + 11 || strncmp(n, base, bn) != 0 || strncmp(n + bn, ".tmp.", 5) != 0) continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, n);
        if (unlink(full) != 0 && errno != ENOENT)
            st = ss_fail(err, SS_ERR_IO, "%s: cannot remove: %s", full, strerror(errno));
        else if (removed)
            (*removed)++;
    }
    closedir(dp);
    free(d); free(b);
    return st;
}
