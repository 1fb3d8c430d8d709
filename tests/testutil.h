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

#include "selfsup/corpus.h"
#include "selfsup/error.h"

/* Fail the test with the library's message when st != SS_OK. */
#define CHECK_OK(expr, errp)                                                   \
    do {                                                                       \
        ss_status st_ = (expr);                                                \
        if (st_ != SS_OK) fail_msg("%s -> %s: %s", #expr,                      \
                                   ss_status_name(st_), (errp)->msg);          \
    } while (0)

/* stderr lines of a fetch, as TAP comments. */
static inline void test_data_log_(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "# %s\n", line);
}

/* Path of a data file: $SELFSUP_DATA_MIRROR/CORPUS/FILE when that is set
 * (CI); else corpora/cache/CORPUS/FILE, fetched (verified) from its public
 * origin as 'selfsup data get CORPUS FILE' would. A data set that cannot be
 * had fails the test with instructions, never skips it. */
static inline const char *test_data_path(const char *corpus, const char *file) {
    static char path[4096];
    const char *mirror = getenv("SELFSUP_DATA_MIRROR");
    if (mirror && *mirror) {
        snprintf(path, sizeof path, "%s/%s/%s", mirror, corpus, file);
        if (access(path, R_OK) != 0)
            fail_msg("%s is missing: this test needs the '%s' corpus, and SELFSUP_DATA_MIRROR "
                     "(a directory laid out as NAME/FILE holding copies of the data sets) does "
                     "not have it. Point it at a complete mirror (e.g. ../shared/data), or unset "
                     "it to fetch the data from its public origin into corpora/cache.",
                     path, corpus);
        return path;
    }
    snprintf(path, sizeof path, "corpora/cache/%s/%s", corpus, file);
    ss_corpus_manifest m;
    ss_error err = {0};
    ss_status st = ss_corpus_load(&m, "corpora", corpus, &err);
    if (!st) { /* FILE and every file of the corpus that has a public origin
                  (tests read neighbours such as vocab.bpe beside encoder.json) */
        const char *only[64];
        size_t n = 0;
        only[n++] = file;
        for (size_t i = 0; i < m.n_files && n < 63; i++)
            if (strcmp(m.files[i].name, file) != 0 &&
                (m.files[i].url || m.files[i].generate || m.files[i].source))
                only[n++] = m.files[i].name;
        only[n] = NULL;
        ss_fetch_opts o = {.dest_dir = "corpora/cache", .only = only,
                           .base_url = getenv("SELFSUP_DATA_BASE_URL"),
                           .source_base_url = getenv("SELFSUP_DATA_SOURCE_BASE_URL")};
        st = ss_corpus_fetch(&m, &o, test_data_log_, NULL, &err);
        ss_corpus_free(&m);
    }
    if (st)
        fail_msg("this test needs %s/%s, which SELFSUP_DATA_MIRROR is unset to provide and "
                 "fetching it from its origin into corpora/cache failed: %s. Either run with "
                 "SELFSUP_DATA_MIRROR pointing at a data mirror (a directory laid out as "
                 "NAME/FILE, e.g. ../shared/data, as .ci/run does), or on a machine with "
                 "internet ('build/selfsup data get %s').", corpus, file, err.msg, corpus);
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
