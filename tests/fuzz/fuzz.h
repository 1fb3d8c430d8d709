/* Shared by the libFuzzer targets in tests/fuzz/ (built with clang and
 * -fsanitize=fuzzer,address,undefined by `make fuzz` and `make check`; see
 * tests/fuzz/README.md). Each target feeds the fuzz input to the library's
 * real parsing API: in memory where the API takes text, else through files
 * in a scratch directory of its own (made once per process under $TMPDIR and
 * removed at exit). Beyond the sanitizers' findings, a target checks
 * properties and aborts (a finding) when one fails: every failure carries a
 * known status and a message, and what was parsed reads back the same. */
#ifndef SELFSUP_FUZZ_H
#define SELFSUP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "selfsup/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A violated property: say which, and abort (libFuzzer saves the input). */
#define FZ_CHECK(cond, ...)                                                        \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
            abort();                                                               \
        }                                                                          \
    } while (0)

/* A failed call returns a known error status and fills a message. */
static inline void fz_check_error(ss_status st, const ss_error *err) {
    FZ_CHECK(st > SS_OK && st <= SS_ERR_EXTERNAL, "status %d", (int)st);
    FZ_CHECK(err->msg[0] != '\0', "status %d without a message", (int)st);
    FZ_CHECK(memchr(err->msg, '\0', sizeof err->msg) != NULL, "message not terminated");
}

/* With FUZZ_VERBOSE=1 in the environment, the outcome of the target's main
 * call ("ok" or its message) on stderr: to see that seeds parse. */
static inline void fz_note(const char *what, ss_status st, const ss_error *err) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") && atoi(getenv("FUZZ_VERBOSE")) > 0;
    if (verbose) fprintf(stderr, "fuzz: %s: %s\n", what, st ? err->msg : "ok");
}

static char fz_dir_buf[512];

static void fz_cleanup(void) {
    if (!fz_dir_buf[0]) return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir_buf);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fz_dir_buf);
}

/* This process's scratch directory. */
static inline const char *fz_dir(void) {
    if (!fz_dir_buf[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir_buf, sizeof fz_dir_buf, "%s/selfsup-fuzz.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_dir_buf)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fz_cleanup);
    }
    return fz_dir_buf;
}

/* DIR/NAME into out (NAME may hold a subdirectory made with fz_subdir). */
static inline const char *fz_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", fz_dir(), name);
    return out;
}

static inline void fz_subdir(const char *name) {
    char p[1024];
    fz_path(p, sizeof p, name);
    if (access(p, F_OK) != 0 && mkdir(p, 0700) != 0) {
        perror("fuzz: mkdir");
        abort();
    }
}

/* Write n bytes to DIR/NAME (replacing it); its path goes to out, which is returned. */
static inline const char *fz_write(char *out, size_t cap, const char *name, const void *data, size_t n) {
    fz_path(out, cap, name);
    FILE *f = fopen(out, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror("fuzz: writing a scratch file");
        abort();
    }
    return out;
}

static inline void fz_remove(const char *name) {
    char p[1024];
    unlink(fz_path(p, sizeof p, name));
}

/* The input split at the first occurrence of sep: [0, *a_len) and
 * [*b, *b + *b_len). Without sep, all of it is the first part and the
 * second is empty. */
static inline void fz_split(const uint8_t *data, size_t n, const char *sep, size_t *a_len, const uint8_t **b,
                            size_t *b_len) {
    size_t sl = strlen(sep);
    const uint8_t *at = sl <= n ? memmem(data, n, sep, sl) : NULL;
    if (!at) {
        *a_len = n;
        *b = data + n;
        *b_len = 0;
        return;
    }
    *a_len = (size_t)(at - data);
    *b = at + sl;
    *b_len = n - *a_len - sl;
}

/* A NUL-terminated copy of the input (free it). */
static inline char *fz_cstr(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#endif
