/* Corpus manifests (corpora/NAME.json) and fetching: from a local mirror
 * ($SELFSUP_DATA_MIRROR/NAME/), from the original URL with curl, or by a
 * generator program (kjv from Debian's bible-kjv). Every file's sha256 is
 * verified; files land atomically in the cache directory. */
#ifndef SELFSUP_CORPUS_H
#define SELFSUP_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

typedef struct {
    char *name;      /* file name inside the corpus directory */
    char *url;       /* original public download URL (may be NULL) */
    char *sha256;    /* hex, of the file as stored */
    uint64_t size;
    char **generate; /* argv of a generator command, NULL-terminated, or NULL */
    char *transform; /* how generator output becomes the file, or NULL */
    char *note;      /* provenance note */
} ss_corpus_file;

typedef struct {
    char *name, *description, *license, *homepage;
    size_t n_files;
    ss_corpus_file *files;
} ss_corpus_manifest;

/* Load corpora_dir/NAME.json. */
ss_status ss_corpus_load(ss_corpus_manifest *m, const char *corpora_dir,
                         const char *name, ss_error *err);
void ss_corpus_free(ss_corpus_manifest *m);

typedef struct {
    const char *dest_dir;   /* files go to dest_dir/NAME/ */
    const char *mirror_dir; /* $SELFSUP_DATA_MIRROR or NULL */
    const char *base_url;   /* $SELFSUP_DATA_BASE_URL: download BASE/NAME/FILE
                               instead of the manifest URL (tests), or NULL */
    int verbose;
} ss_fetch_opts;

/* Make every file of the corpus present and verified in dest_dir/NAME/.
 * A file already there with the right sha256 is kept. log (may be NULL)
 * receives one line per file describing what was done. */
typedef void (*ss_log_fn)(void *ctx, const char *line);
ss_status ss_corpus_fetch(const ss_corpus_manifest *m, const ss_fetch_opts *o,
                          ss_log_fn log, void *log_ctx, ss_error *err);

#endif
