/* Fetching a corpus: each file is written to a temp file beside its final
 * name (dest/NAME/.FILE.part-XXXXXX), its size and sha256 are checked, and
 * only then is it renamed into place, so an interrupted or corrupt fetch
 * never leaves a plausible-looking file behind. Sources, in order: a cached
 * verified copy, the mirror, the generator program, base_url, the url.
 * External programs (curl, bible) run by fork/execvp, never via a shell. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "selfsup/corpus.h"
#include "selfsup/io.h"

/* printf into a fixed path/URL buffer; too long is an error, not a silent
 * truncation that could point at the wrong file. */
static ss_status make_path(char *out, size_t cap, ss_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ss_status make_path(char *out, size_t cap, ss_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        return ss_fail(err, SS_ERR_ARG, "path or URL too long: %.200s...", out);
    return SS_OK;
}

/* ---- a file descriptor sink that hashes what it writes -------------------- */

enum { SINK_CAP = 1 << 16 };
typedef struct {
    int fd;
    const char *path; /* for messages */
    ss_sha256 h;
    uint64_t n;
    size_t len;
    int external;  /* a program (curl) wrote the file: hash it afterwards */
    char hex[65];  /* its sha256 then */
    char buf[SINK_CAP];
    char rbuf[SINK_CAP]; /* read buffer for the sources */
} sink;

static ss_status write_all(int fd, const char *p, size_t n, const char *path, ss_error *err) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return ss_fail(err, SS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return SS_OK;
}

static ss_status sink_flush(sink *s, ss_error *err) {
    ss_status st = write_all(s->fd, s->buf, s->len, s->path, err);
    s->len = 0;
    return st;
}

static ss_status sink_write(sink *s, const void *data, size_t n, ss_error *err) {
    ss_sha256_update(&s->h, data, n);
    s->n += n;
    if (s->len + n > SINK_CAP) {
        ss_status st = sink_flush(s, err);
        if (st) return st;
        if (n >= SINK_CAP) return write_all(s->fd, data, n, s->path, err);
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return SS_OK;
}

/* ---- child processes ---------------------------------------------------------- */

typedef struct {
    pid_t pid;
    FILE *errlog; /* the child's stderr, for error messages */
} child;

/* The Debian package that provides a program we may run. */
static const char *package_of(const char *prog) {
    if (strcmp(prog, "bible") == 0) return "bible-kjv";
    if (strcmp(prog, "curl") == 0) return "curl";
    return NULL;
}

/* Start argv with stdin from /dev/null, stdout to out_fd, stderr captured.
 * An exec failure is reported through a close-on-exec pipe, so a missing
 * program is told apart from a program that ran and failed. */
static ss_status spawn(child *ch, char *const argv[], int out_fd, ss_error *err) {
    int ep[2], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || pipe2(ep, O_CLOEXEC) != 0 || !(ch->errlog = tmpfile())) {
        int e = errno;
        if (devnull >= 0) close(devnull);
        return ss_fail(err, SS_ERR_IO, "cannot start %s: %s", argv[0], strerror(e));
    }
    fflush(NULL);
    ch->pid = fork();
    if (ch->pid == 0) {
        dup2(devnull, 0);
        dup2(out_fd, 1);
        dup2(fileno(ch->errlog), 2);
        execvp(argv[0], argv);
        int e = errno;
        if (write(ep[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    int e = errno, exec_errno = 0;
    close(ep[1]);
    close(devnull);
    if (ch->pid < 0) {
        close(ep[0]);
        fclose(ch->errlog);
        return ss_fail(err, SS_ERR_EXTERNAL, "cannot start %s: fork: %s", argv[0], strerror(e));
    }
    ssize_t r;
    while ((r = read(ep[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {}
    close(ep[0]);
    if (r != (ssize_t)sizeof exec_errno) return SS_OK;
    while (waitpid(ch->pid, NULL, 0) < 0 && errno == EINTR) {}
    fclose(ch->errlog);
    const char *pkg = package_of(argv[0]);
    if (exec_errno == ENOENT && pkg)
        return ss_fail(err, SS_ERR_EXTERNAL,
                       "%s: program not found; it is in the Debian package %s "
                       "(sudo apt-get install %s)", argv[0], pkg, pkg);
    return ss_fail(err, SS_ERR_EXTERNAL, "%s: cannot run: %s", argv[0], strerror(exec_errno));
}

/* Wait for the child; a nonzero exit becomes an error quoting its stderr. */
static ss_status reap(child *ch, const char *prog, ss_error *err) {
    int status = 0;
    while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR) {}
    char msg[512] = "";
    rewind(ch->errlog);
    size_t n = fread(msg, 1, sizeof msg - 1, ch->errlog);
    fclose(ch->errlog);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' ')) n--;
    msg[n] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return SS_OK;
    if (WIFSIGNALED(status))
        return ss_fail(err, SS_ERR_EXTERNAL, "%s was killed by signal %d%s%s", prog,
                       WTERMSIG(status), n ? ": " : "", msg);
    return ss_fail(err, SS_ERR_EXTERNAL, "%s exited with status %d%s%s", prog,
                   WEXITSTATUS(status), n ? ": " : "", msg);
}

/* ---- generator transforms ------------------------------------------------------- */

/* "kjv-text" / "kjv-refs": lines are "<ref> <text>\n"; keep the text or the
 * ref. Streaming: in_ref is set while inside a line's first field. */
typedef struct {
    enum { T_NONE, T_TEXT, T_REFS } mode;
    int in_ref;
    size_t line, ref_len;
} transform;

static ss_status transform_chunk(transform *t, const char *p, size_t n, sink *s, const char *prog,
                                 ss_error *err) {
    if (t->mode == T_NONE) return sink_write(s, p, n, err);
    ss_status st = SS_OK;
    while (n && !st) {
        if (t->in_ref) {
            const char *sp = memchr(p, ' ', n), *nl = memchr(p, '\n', n);
            if (nl && (!sp || nl < sp))
                return ss_fail(err, SS_ERR_FORMAT,
                               "output of %s: line %zu has no space-separated reference field",
                               prog, t->line);
            size_t k = sp ? (size_t)(sp - p) : n;
            if (t->mode == T_REFS) st = sink_write(s, p, k, err);
            t->ref_len += k;
            if (!sp) break;
            p += k + 1, n -= k + 1;
            t->in_ref = 0;
            if (!st && t->mode == T_REFS) st = sink_write(s, "\n", 1, err);
        } else {
            const char *nl = memchr(p, '\n', n);
            size_t k = nl ? (size_t)(nl - p) + 1 : n;
            if (t->mode == T_TEXT) st = sink_write(s, p, k, err);
            p += k, n -= k;
            if (nl) t->in_ref = 1, t->ref_len = 0, t->line++;
        }
    }
    return st;
}

static ss_status transform_end(transform *t, sink *s, const char *prog, ss_error *err) {
    if (t->mode == T_NONE) return SS_OK;
    if (t->in_ref && t->ref_len)
        return ss_fail(err, SS_ERR_FORMAT,
                       "output of %s: line %zu has no space-separated reference field", prog, t->line);
    /* A last line without '\n' still ends with one, as cut(1) does. */
    if (!t->in_ref && t->mode == T_TEXT) return sink_write(s, "\n", 1, err);
    return SS_OK;
}

/* ---- sources ---------------------------------------------------------------------- */

static ss_status copy_from_mirror(sink *s, const ss_corpus_manifest *m, const ss_corpus_file *f,
                                  const char *mirror, ss_error *err) {
    char src[4096];
    if (make_path(src, sizeof src, err, "%s/%s/%s", mirror, m->name, f->name)) return err->code;
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return ss_fail(err, SS_ERR_NOT_FOUND,
                       "%s: not in the mirror: %s does not exist (SELFSUP_DATA_MIRROR=%s). "
                       "Point SELFSUP_DATA_MIRROR at a complete mirror (fill one with "
                       "'selfsup data get %s --dest MIRROR'), or unset it to fetch the file "
                       "from its original source", f->name, src, mirror, m->name);
    if (fd < 0) return ss_fail(err, SS_ERR_IO, "%s: %s", src, strerror(errno));
    ss_status st = SS_OK;
    for (;;) {
        ssize_t r = read(fd, s->rbuf, sizeof s->rbuf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = ss_fail(err, SS_ERR_IO, "%s: read failed: %s", src, strerror(errno));
        if (r <= 0 || (st = sink_write(s, s->rbuf, (size_t)r, err))) break;
    }
    close(fd);
    return st;
}

static ss_status generate(sink *s, const ss_corpus_file *f, ss_error *err) {
    const char *prog = f->generate[0];
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) != 0)
        return ss_fail(err, SS_ERR_IO, "cannot start %s: pipe: %s", prog, strerror(errno));
    child ch;
    ss_status st = spawn(&ch, f->generate, pp[1], err);
    close(pp[1]);
    if (st) { close(pp[0]); return st; }
    transform t = {.mode = !f->transform ? T_NONE
                           : strcmp(f->transform, "kjv-text") == 0 ? T_TEXT : T_REFS,
                   .in_ref = 1, .line = 1};
    for (;;) {
        ssize_t r = read(pp[0], s->rbuf, sizeof s->rbuf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = ss_fail(err, SS_ERR_IO, "reading the output of %s: %s", prog, strerror(errno));
        if (r <= 0 || (st = transform_chunk(&t, s->rbuf, (size_t)r, s, prog, err))) break;
    }
    if (!st) st = transform_end(&t, s, prog, err);
    close(pp[0]); /* if we stopped early the child gets SIGPIPE */
    ss_error rerr = {0};
    ss_status rst = reap(&ch, prog, &rerr);
    if (!st && rst) { *err = rerr; st = rst; }
    return st;
}

/* curl writes the temp file itself; we hash it afterwards. */
static ss_status download(sink *s, const char *tmp, const char *url, ss_error *err) {
    char *argv[] = {"curl", "-fsSL", "--retry", "2", "-o", (char *)tmp, (char *)url, NULL};
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) return ss_fail(err, SS_ERR_IO, "/dev/null: %s", strerror(errno));
    child ch;
    ss_status st = spawn(&ch, argv, devnull, err);
    close(devnull);
    if (st) return st;
    if ((st = reap(&ch, "curl", err))) return ss_error_prefix(err, "downloading %s: ", url);
    struct stat sb;
    if (fstat(s->fd, &sb) != 0) return ss_fail(err, SS_ERR_IO, "%s: %s", tmp, strerror(errno));
    s->external = 1;
    s->n = (uint64_t)sb.st_size;
    return ss_sha256_file(tmp, s->hex, err);
}

/* ---- one file ----------------------------------------------------------------------- */

/* Fill the temp file from the first applicable source; how gets a phrase
 * for the log line. */
static ss_status fill(sink *s, const char *tmp, const ss_corpus_manifest *m,
                      const ss_corpus_file *f, const ss_fetch_opts *o, char *how, size_t hlen,
                      ss_error *err) {
    if (o->mirror_dir && *o->mirror_dir) {
        snprintf(how, hlen, "copied from mirror");
        return copy_from_mirror(s, m, f, o->mirror_dir, err);
    }
    if (f->generate) {
        snprintf(how, hlen, "generated by %s", f->generate[0]);
        return generate(s, f, err);
    }
    char url[4096];
    if (o->base_url && *o->base_url) {
        size_t n = strlen(o->base_url);
        while (n && o->base_url[n - 1] == '/') n--;
        if (make_path(url, sizeof url, err, "%.*s/%s/%s", (int)n, o->base_url, m->name, f->name))
            return err->code;
    } else if (f->url) {
        if (make_path(url, sizeof url, err, "%s", f->url)) return err->code;
    } else {
        return ss_fail(err, SS_ERR_NOT_FOUND,
                       "%s: no public URL serves this file as stored (it is a converted copy%s%s); "
                       "set SELFSUP_DATA_MIRROR to a directory holding %s/%s "
                       "(a mirror of the data sets)", f->name, f->origin ? " of " : "",
                       f->origin ? f->origin : "", m->name, f->name);
    }
    snprintf(how, hlen, "downloaded from %s", url);
    return download(s, tmp, url, err);
}

static ss_status verify_and_install(sink *s, const char *tmp, const char *path, const char *how,
                                    const ss_corpus_file *f, ss_error *err) {
    if (!s->external) {
        uint8_t d[32];
        ss_sha256_final(&s->h, d);
        ss_sha256_hex(d, s->hex);
    }
    const char *hex = s->hex;
    if (s->n != f->size || strcmp(hex, f->sha256) != 0)
        return ss_fail(err, SS_ERR_CHECKSUM,
                       "%s: sha256 mismatch (%s): expected %s (%llu bytes), got %s (%llu bytes); "
                       "the file was not kept", f->name, how, f->sha256,
                       (unsigned long long)f->size, hex, (unsigned long long)s->n);
    if (fsync(s->fd) != 0 || rename(tmp, path) != 0)
        return ss_fail(err, SS_ERR_IO, "%s: cannot install: %s", path, strerror(errno));
    return SS_OK;
}

/* A present file is kept only if its size and sha256 match. */
static int cached_ok(const char *path, const ss_corpus_file *f) {
    struct stat sb;
    char hex[65];
    ss_error ignored;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != f->size) return 0;
    return ss_sha256_file(path, hex, &ignored) == SS_OK && strcmp(hex, f->sha256) == 0;
}

static ss_status fetch_one(const ss_corpus_manifest *m, const ss_corpus_file *f,
                           const ss_fetch_opts *o, const char *dir, char *logline, size_t llen,
                           ss_error *err) {
    char path[4096], tmp[4096], how[4200];
    if (make_path(path, sizeof path, err, "%s/%s", dir, f->name) ||
        make_path(tmp, sizeof tmp, err, "%s/.%s.part-XXXXXX", dir, f->name))
        return err->code;
    if (cached_ok(path, f)) {
        snprintf(logline, llen, "%s: verified (cached)", f->name);
        return SS_OK;
    }
    sink *s = malloc(sizeof *s); /* 128 KB of buffers: not on the stack */
    if (!s) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    s->fd = mkstemp(tmp);
    s->path = tmp;
    s->n = 0, s->len = 0, s->external = 0;
    if (s->fd < 0) {
        free(s);
        return ss_fail(err, SS_ERR_IO, "%s: cannot create a temporary file: %s", dir, strerror(errno));
    }
    fchmod(s->fd, 0644);
    ss_sha256_init(&s->h);
    ss_status st = fill(s, tmp, m, f, o, how, sizeof how, err);
    if (!st) st = sink_flush(s, err);
    if (!st) st = verify_and_install(s, tmp, path, how, f, err);
    close(s->fd);
    free(s);
    if (st) {
        unlink(tmp);
        return st;
    }
    snprintf(logline, llen, "%s: %s, sha256 ok", f->name, how);
    return SS_OK;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

ss_status ss_corpus_fetch(const ss_corpus_manifest *m, const ss_fetch_opts *o, ss_log_fn log,
                          void *log_ctx, ss_error *err) {
    if (!o || !o->dest_dir || !*o->dest_dir)
        return ss_fail(err, SS_ERR_ARG, "%s: no destination directory given", m->name);
    char dir[4096];
    ss_status st = make_path(dir, sizeof dir, err, "%s/%s", o->dest_dir, m->name);
    if (!st) st = ss_mkdir_p(dir, err);
    if (st) return st;
    for (size_t i = 0; i < m->n_files; i++) {
        char line[8600];
        if ((st = fetch_one(m, &m->files[i], o, dir, line, sizeof line, err)))
            return ss_error_prefix(err, "corpus %s: ", m->name);
        if (log) log(log_ctx, line);
    }
    fsync_dir(dir); /* make the renames durable */
    return SS_OK;
}
