/* selfsup data get: fetch a corpus described by corpora/NAME.json into the
 * cache (from $SELFSUP_DATA_MIRROR, a generator program, or its URL),
 * verifying every file's sha256. argv holds the arguments after "data get". */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "selfsup/corpus.h"

static const char usage[] =
    "usage: selfsup data get NAME [FILE...] [--dest DIR] [--corpora DIR]\n"
    "       selfsup data get --list [--corpora DIR]\n"
    "\n"
    "Fetch the corpus NAME (described by the manifest CORPORA/NAME.json), or only\n"
    "the named FILEs of it, into DIR/NAME/, verifying each file's size and sha256\n"
    "before it is put in place. Files already present and verified are kept. Each\n"
    "file comes from, in order: $SELFSUP_DATA_MIRROR/NAME/FILE if that variable is\n"
    "set; else the manifest's generator program (kjv: 'bible' from the Debian\n"
    "package bible-kjv); else $SELFSUP_DATA_BASE_URL/NAME/FILE if set; else the\n"
    "file's URL; else its published original (pinned URL, checked by sha256 and\n"
    "git blob id), downloaded once into DIR/NAME/.download/ and converted\n"
    "(imdb: the 84 MB aclImdb_v1.tar.gz). Before a download its size is shown; on\n"
    "a terminal curl shows a progress bar. A file only a data mirror has\n"
    "(gpt2-tokenizer's vectors.tsv) is reported before anything is downloaded.\n"
    "Prints what it does on stderr, then the directory holding the files on\n"
    "stdout.\n"
    "\n"
    "  --dest DIR      cache directory (default corpora/cache)\n"
    "  --corpora DIR   manifest directory (default ./corpora, else the corpora/\n"
    "                  directory beside the selfsup executable's parent)\n"
    "  --list          list the available corpora and exit\n"
    "\n"
    "environment:\n"
    "  SELFSUP_DATA_MIRROR     a directory laid out as NAME/FILE holding copies of\n"
    "                          the data sets (filled by 'selfsup data get NAME\n"
    "                          --dest DIR' elsewhere); every file is copied from it\n"
    "  SELFSUP_DATA_BASE_URL   download NAME/FILE from this URL instead (a mirror\n"
    "                          served over HTTP)\n"
    "  SELFSUP_DATA_SOURCE_BASE_URL  download an original https://HOST/PATH from\n"
    "                          BASE/HOST/PATH instead (tests)\n";

static const char command[] = "data get";

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* ./corpora, else <dir of the executable>/../corpora (build/selfsup run
 * from elsewhere). Writes into buf; NULL if neither exists. */
static const char *find_corpora_dir(char *buf, size_t cap) {
    if (is_dir("corpora")) return "corpora";
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    snprintf(buf, cap, "%s/../corpora", dirname(exe));
    return is_dir(buf) ? buf : NULL;
}

static void log_line(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

static int list_corpora(const char *corpora_dir) {
    char **names;
    size_t n;
    ss_error err = {0};
    if (ss_corpus_list(corpora_dir, &names, &n, &err)) return cli_report(command, &err);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        ss_corpus_manifest m;
        if (ss_corpus_load(&m, corpora_dir, names[i], &err)) {
            rc = cli_report(command, &err);
            break;
        }
        printf("%-16s %s\n", m.name, m.description);
        ss_corpus_free(&m);
    }
    ss_corpus_list_free(names, n);
    return rc;
}

/* files: the FILE arguments, NULL-terminated, or NULL for all. */
static int get_corpus(const char *name, const char *const *files, const char *corpora_dir,
                      const char *dest) {
    ss_corpus_manifest m;
    ss_error err = {0};
    if (ss_corpus_load(&m, corpora_dir, name, &err)) return cli_report(command, &err);
    ss_fetch_opts o = {
        .dest_dir = dest,
        .mirror_dir = getenv("SELFSUP_DATA_MIRROR"),
        .base_url = getenv("SELFSUP_DATA_BASE_URL"),
        .source_base_url = getenv("SELFSUP_DATA_SOURCE_BASE_URL"),
        .only = files,
        .progress = isatty(2),
    };
    ss_status st = ss_corpus_fetch(&m, &o, log_line, NULL, &err);
    ss_corpus_free(&m);
    if (st) return cli_report(command, &err);
    printf("%s/%s\n", dest, name);
    return 0;
}

int cmd_data_get(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, command, usage);
    const char *dest = cli_opt(&a, "--dest");
    const char *corpora = cli_opt(&a, "--corpora");
    int list = cli_flag(&a, "--list");
    if (cli_args_done(&a)) { cli_args_free(&a); return 2; }
    char buf[PATH_MAX + 16];
    if (!corpora && !(corpora = find_corpora_dir(buf, sizeof buf))) {
        cli_args_free(&a);
        cli_die(command, "no corpora/ directory here or beside the executable; "
                         "run from the selfsup source tree or pass --corpora DIR");
    }
    int rc;
    if (list) {
        rc = a.n_positional ? (fprintf(stderr, "selfsup %s: --list takes no NAME\n", command), 2)
                            : list_corpora(corpora);
    } else if (a.n_positional < 1) {
        fprintf(stderr, "selfsup %s: expected a corpus NAME (see --help; "
                        "--list shows the corpora)\n", command);
        rc = 2;
    } else {
        const char **files = NULL;
        if (a.n_positional > 1 && !(files = calloc((size_t)a.n_positional, sizeof *files)))
            cli_die(command, "out of memory");
        for (int i = 1; i < a.n_positional; i++) files[i - 1] = a.positional[i];
        rc = get_corpus(a.positional[0], files, corpora, dest ? dest : "corpora/cache");
        free(files);
    }
    cli_args_free(&a);
    return rc;
}
