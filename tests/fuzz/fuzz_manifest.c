/* Corpus manifests (corpora/NAME.json): the input is a manifest, loaded and
 * validated by ss_corpus_load (nothing is fetched: no network). A manifest
 * that loads names its corpus and has well-formed files: safe names, a
 * sha256 of 64 hex digits, and a way to obtain each (or none: mirror only). */
#include "fuzz.h"

#include "selfsup/corpus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024], dir[1024];
    fz_subdir("corpora");
    fz_write(path, sizeof path, "corpora/fz.json", data, size);
    fz_path(dir, sizeof dir, "corpora");
    ss_corpus_manifest m;
    ss_error err = {0};
    ss_status st = ss_corpus_load(&m, dir, "fz", &err);
    fz_note("manifest", st, &err);
    if (st) {
        fz_check_error(st, &err);
        FZ_CHECK(m.n_files == 0 && m.files == NULL && m.name == NULL, "a failed load left fields");
        return 0;
    }
    FZ_CHECK(m.name && strcmp(m.name, "fz") == 0, "the manifest's name is not its file's");
    for (size_t i = 0; i < m.n_files; i++) {
        const ss_corpus_file *f = &m.files[i];
        FZ_CHECK(f->name && f->name[0] && !strchr(f->name, '/') && strcmp(f->name, "..") && strcmp(f->name, "."),
                 "file %zu: name '%s'", i, f->name ? f->name : "(null)");
        FZ_CHECK(f->sha256 && strlen(f->sha256) == 64 && strspn(f->sha256, "0123456789abcdef") == 64,
                 "file '%s': sha256", f->name);
        for (size_t k = 0; f->source && k + 1 < f->source->n_patches; k++)
            FZ_CHECK(f->source->patches[k].line < f->source->patches[k + 1].line, "file '%s': patches out of order",
                     f->name);
    }
    ss_corpus_free(&m);
    return 0;
}
