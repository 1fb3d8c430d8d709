/* Shared helpers for the cmocka unit tests. */
#ifndef SELFSUP_TESTUTIL_H
#define SELFSUP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "selfsup/error.h"

/* Fail the test with the library's message when st != SS_OK. */
#define CHECK_OK(expr, errp)                                                   \
    do {                                                                       \
        ss_status st_ = (expr);                                                \
        if (st_ != SS_OK) fail_msg("%s -> %s: %s", #expr,                      \
                                   ss_status_name(st_), (errp)->msg);          \
    } while (0)

/* Path of a data file from the mirror ($SELFSUP_DATA_MIRROR/CORPUS/FILE).
 * A missing data set fails the test with instructions, never skips it. */
static inline const char *test_data_path(const char *corpus, const char *file) {
    static char path[4096];
    const char *mirror = getenv("SELFSUP_DATA_MIRROR");
    if (!mirror || !*mirror)
        fail_msg("SELFSUP_DATA_MIRROR is not set: this test needs the '%s' corpus. "
                 "Run it with SELFSUP_DATA_MIRROR=../shared/data (as .ci/run does) "
                 "or point it at a directory filled by 'build/selfsup data get %s'.",
                 corpus, corpus);
    snprintf(path, sizeof path, "%s/%s/%s", mirror, corpus, file);
    if (access(path, R_OK) != 0)
        fail_msg("%s is missing: this test needs the '%s' corpus; get it with "
                 "'build/selfsup data get %s' or set SELFSUP_DATA_MIRROR=../shared/data.",
                 path, corpus, corpus);
    return path;
}

/* A fresh temporary directory for a test (removed by the test runner's
 * TMPDIR cleanup, not by the test). */
static inline const char *test_tmpdir(void) {
    static char dir[256];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/selfsup-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
    return dir;
}

#endif
