/* Fetching a corpus: each file is written to a temp file beside its final
 * name (dest/NAME/.FILE.part-XXXXXX), its size and sha256 are checked, and
 * only then is it renamed into place, so an interrupted or corrupt fetch
 * never leaves a plausible-looking file behind. Sources, in order: a cached
 * verified copy, the mirror, the generator program, base_url, the url, the
 * published original (downloaded to dest/NAME/.download/, verified, then
 * converted by convert.c). External programs (curl, bible, tar) run by
 * fork/execvp, never via a shell. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zstd.h>

#include "convert.h"
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
    FILE *errlog; /* the child's stderr, for error messages (NULL: inherited) */
} child;

/* The Debian package that provides a program we may run. */
static const char *package_of(const char *prog) {
    if (strcmp(prog, "bible") == 0) return "bible-kjv";
    if (strcmp(prog, "curl") == 0) return "curl";
    if (strcmp(prog, "tar") == 0) return "tar";
    return NULL;
}

/* Start argv with stdin from /dev/null, stdout to out_fd, stderr captured
 * (or inherited when inherit_stderr: curl's progress bar). An exec failure is
 * reported through a close-on-exec pipe, so a missing program is told apart
 * from a program that ran and failed. */
static ss_status spawn(child *ch, char *const argv[], int out_fd, int inherit_stderr,
                       ss_error *err) {
    int ep[2], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ch->errlog = NULL;
    if (devnull < 0 || pipe2(ep, O_CLOEXEC) != 0 || (!inherit_stderr && !(ch->errlog = tmpfile()))) {
        int e = errno;
        if (devnull >= 0) close(devnull);
        return ss_fail(err, SS_ERR_IO, "cannot start %s: %s", argv[0], strerror(e));
    }
    fflush(NULL);
    ch->pid = fork();
    if (ch->pid == 0) {
        dup2(devnull, 0);
        dup2(out_fd, 1);
        if (ch->errlog) dup2(fileno(ch->errlog), 2);
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
        if (ch->errlog) fclose(ch->errlog);
        return ss_fail(err, SS_ERR_EXTERNAL, "cannot start %s: fork: %s", argv[0], strerror(e));
    }
    ssize_t r;
    while ((r = read(ep[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {}
    close(ep[0]);
    if (r != (ssize_t)sizeof exec_errno) return SS_OK;
    while (waitpid(ch->pid, NULL, 0) < 0 && errno == EINTR) {}
    if (ch->errlog) fclose(ch->errlog);
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
    size_t n = 0;
    if (ch->errlog) {
        rewind(ch->errlog);
        n = fread(msg, 1, sizeof msg - 1, ch->errlog);
        fclose(ch->errlog);
    }
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

/* ---- messages ------------------------------------------------------------------------ */

/* "84.1 MB", "738.8 kB", "512 bytes" (decimal units, as curl shows them). */
static void human_size(uint64_t n, char *out, size_t cap) {
    if (n >= 1000000000) snprintf(out, cap, "%.1f GB", (double)n / 1e9);
    else if (n >= 1000000) snprintf(out, cap, "%.1f MB", (double)n / 1e6);
    else if (n >= 1000) snprintf(out, cap, "%.1f kB", (double)n / 1e3);
    else snprintf(out, cap, "%llu bytes", (unsigned long long)n);
}

static void logf_(ss_log_fn log, void *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(ss_log_fn log, void *ctx, const char *fmt, ...) {
    if (!log) return;
    char line[8600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log(ctx, line);
}

/* What the mirror is, for every message that asks for one. */
#define MIRROR_IS                                                                           \
    "SELFSUP_DATA_MIRROR names a directory laid out as NAME/FILE holding copies of the data " \
    "sets (for machines without internet, or for files no public URL serves); fill one with " \
    "'selfsup data get NAME --dest DIR' on a machine that has the data or internet"

static const char *base_name(const char *url) {
    const char *s = strrchr(url, '/');
    return s ? s + 1 : url;
}

/* ---- sources ---------------------------------------------------------------------- */

static ss_status copy_from_mirror(sink *s, const ss_corpus_manifest *m, const ss_corpus_file *f,
                                  const char *mirror, ss_error *err) {
    char src[4096];
    if (make_path(src, sizeof src, err, "%s/%s/%s", mirror, m->name, f->name)) return err->code;
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        char alt[4200] = "";
        if (f->url) snprintf(alt, sizeof alt, ", or unset it to download the file from %s", f->url);
        else if (f->source)
            snprintf(alt, sizeof alt, ", or unset it to download its original from %s and "
                     "convert it", f->source->url);
        else if (f->generate)
            snprintf(alt, sizeof alt, ", or unset it to generate the file with %s", f->generate[0]);
        else snprintf(alt, sizeof alt, " (no public URL serves this file: %s)",
                      f->origin ? f->origin : "it was made for selfsup");
        return ss_fail(err, SS_ERR_NOT_FOUND,
                       "%s: not in the mirror: %s does not exist (SELFSUP_DATA_MIRROR=%s). "
                       MIRROR_IS ". Point SELFSUP_DATA_MIRROR at a complete mirror%s",
                       f->name, src, mirror, alt);
    }
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
    ss_status st = spawn(&ch, f->generate, pp[1], 0, err);
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

/* curl -o out url; with progress, its progress bar goes to our stderr. */
static ss_status curl(const char *url, const char *out, int progress, ss_error *err) {
    char *argv[] = {"curl", progress ? "-#fSL" : "-fsSL", "--retry", "2", "-o", (char *)out,
                    (char *)url, NULL};
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) return ss_fail(err, SS_ERR_IO, "/dev/null: %s", strerror(errno));
    child ch;
    ss_status st = spawn(&ch, argv, devnull, progress, err);
    close(devnull);
    if (st) return st;
    if ((st = reap(&ch, "curl", err))) return ss_error_prefix(err, "downloading %s: ", url);
    return SS_OK;
}

/* curl writes the temp file itself; we hash it afterwards. */
static ss_status download(sink *s, const char *tmp, const char *url, int progress, ss_error *err) {
    ss_status st = curl(url, tmp, progress, err);
    if (st) return st;
    struct stat sb;
    if (fstat(s->fd, &sb) != 0) return ss_fail(err, SS_ERR_IO, "%s: %s", tmp, strerror(errno));
    s->external = 1;
    s->n = (uint64_t)sb.st_size;
    return ss_sha256_file(tmp, s->hex, err);
}

/* ---- zstd: hashing the content of .zst files, compressing converted output ---------- */

/* sha256 and size of the decompressed bytes of a .zst file. */
static ss_status zstd_content(const char *path, char hex[65], uint64_t *n, ss_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ss_fail(err, SS_ERR_IO, "%s: %s", path, strerror(errno));
    ZSTD_DStream *ds = ZSTD_createDStream();
    size_t icap = ZSTD_DStreamInSize(), ocap = ZSTD_DStreamOutSize();
    char *ib = malloc(icap), *ob = malloc(ocap);
    ss_status st = ds && ib && ob ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_sha256 h;
    ss_sha256_init(&h);
    *n = 0;
    size_t got, left = 0;
    while (!st && (got = fread(ib, 1, icap, f)) > 0) {
        ZSTD_inBuffer in = {ib, got, 0};
        while (!st && in.pos < in.size) {
            ZSTD_outBuffer out = {ob, ocap, 0};
            left = ZSTD_decompressStream(ds, &out, &in);
            if (ZSTD_isError(left))
                st = ss_fail(err, SS_ERR_FORMAT, "%s: not valid zstd: %s", path, ZSTD_getErrorName(left));
            ss_sha256_update(&h, ob, out.pos);
            *n += out.pos;
        }
    }
    if (!st && ferror(f)) st = ss_fail(err, SS_ERR_IO, "%s: read error", path);
    if (!st && left != 0) st = ss_fail(err, SS_ERR_FORMAT, "%s: truncated zstd data", path);
    if (!st) {
        uint8_t d[32];
        ss_sha256_final(&h, d);
        ss_sha256_hex(d, hex);
    }
    fclose(f);
    ZSTD_freeDStream(ds);
    free(ib);
    free(ob);
    return st;
}

/* Converted output into the sink: as is, or zstd-compressed while the
 * uncompressed bytes are hashed. Level 9, not the stored files' 19: such a
 * file is verified by the sha256 of its content, whatever its compressed
 * bytes, and level 19 costs minutes of CPU on IMDB's 130 MB (level 9:
 * seconds, files about 10% larger). */
enum { CONVERT_ZSTD_LEVEL = 9 };
typedef struct {
    sink *s;
    ZSTD_CCtx *cctx; /* NULL: no compression */
    ss_sha256 h;
    uint64_t n;
    char *zbuf;
    size_t zcap;
} conv_sink;

static ss_status zflush(conv_sink *c, ZSTD_inBuffer *in, ZSTD_EndDirective mode, ss_error *err) {
    for (;;) {
        ZSTD_outBuffer out = {c->zbuf, c->zcap, 0};
        size_t left = ZSTD_compressStream2(c->cctx, &out, in, mode);
        if (ZSTD_isError(left))
            return ss_fail(err, SS_ERR_EXTERNAL, "zstd: %s", ZSTD_getErrorName(left));
        ss_status st = sink_write(c->s, c->zbuf, out.pos, err);
        if (st) return st;
        if (mode == ZSTD_e_end ? left == 0 : in->pos == in->size) return SS_OK;
    }
}

static ss_status conv_write(void *ctx, const void *p, size_t n, ss_error *err) {
    conv_sink *c = ctx;
    if (!c->cctx) return sink_write(c->s, p, n, err);
    ss_sha256_update(&c->h, p, n);
    c->n += n;
    ZSTD_inBuffer in = {p, n, 0};
    return zflush(c, &in, ZSTD_e_continue, err);
}

/* ---- originals: download once into .download/, verified ------------------------------ */

/* The URL to download an original from: BASE/HOST/PATH with source_base_url. */
static ss_status source_url(const ss_fetch_opts *o, const char *url, char *out, size_t cap,
                            ss_error *err) {
    if (!o->source_base_url || !*o->source_base_url) return make_path(out, cap, err, "%s", url);
    const char *rest = strstr(url, "://");
    size_t n = strlen(o->source_base_url);
    while (n && o->source_base_url[n - 1] == '/') n--;
    return make_path(out, cap, err, "%.*s/%s", (int)n, o->source_base_url, rest ? rest + 3 : url);
}

/* Size, sha256 and (if given) git blob id of an original. *ok = 0 when they
 * differ; then what says how. */
static ss_status check_original(const char *path, const ss_corpus_source *src, int *ok,
                                char *what, size_t wcap, ss_error *err) {
    struct stat sb;
    *ok = 0;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(what, wcap, "missing");
        return SS_OK;
    }
    char hex[65], blob[41];
    ss_status st = ss_sha256_file(path, hex, err);
    if (st) return st;
    if ((uint64_t)sb.st_size != src->size || strcmp(hex, src->sha256) != 0) {
        snprintf(what, wcap, "sha256 mismatch: expected %s (%llu bytes), got %s (%llu bytes)",
                 src->sha256, (unsigned long long)src->size, hex, (unsigned long long)sb.st_size);
        return SS_OK;
    }
    if (src->git_blob) {
        if ((st = corpus_git_blob_file(path, blob, err))) return st;
        if (strcmp(blob, src->git_blob) != 0) {
            snprintf(what, wcap, "git blob id mismatch: expected %s, got %s", src->git_blob, blob);
            return SS_OK;
        }
    }
    *ok = 1;
    return SS_OK;
}

/* Make dir/.download/BASENAME a verified copy of the original; path gets it. */
static ss_status get_original(const ss_corpus_file *f, const ss_fetch_opts *o, const char *dir,
                              char *path, size_t cap, ss_log_fn log, void *lctx, ss_error *err) {
    const ss_corpus_source *src = f->source;
    const char *base = base_name(src->url);
    char dl[4096], tmp[4200], url[4096], what[512];
    ss_status st;
    int ok;
    /* .download/<sha256 prefix>/: originals with the same name cannot clash */
    if ((st = make_path(dl, sizeof dl, err, "%s/.download/%.16s", dir, src->sha256)) ||
        (st = make_path(path, cap, err, "%s/%s", dl, base)) ||
        (st = make_path(tmp, sizeof tmp, err, "%s/.%s.part-XXXXXX", dl, base)) ||
        (st = ss_mkdir_p(dl, err)) || (st = check_original(path, src, &ok, what, sizeof what, err)))
        return st;
    if (ok) {
        logf_(log, lctx, "%s (original of %s): verified (downloaded before)", base, f->name);
        return SS_OK;
    }
    if ((st = source_url(o, src->url, url, sizeof url, err))) return st;
    char size[32];
    human_size(src->size, size, sizeof size);
    logf_(log, lctx, "downloading %s (%s), the original of %s, from %s", base, size, f->name, url);
    int fd = mkstemp(tmp);
    if (fd < 0) return ss_fail(err, SS_ERR_IO, "%s: cannot create a temporary file: %s", dl, strerror(errno));
    fchmod(fd, 0644);
    close(fd);
    st = curl(url, tmp, o->progress, err);
    if (!st) st = check_original(tmp, src, &ok, what, sizeof what, err);
    if (!st && !ok)
        st = ss_fail(err, SS_ERR_CHECKSUM, "%s (the original of %s, from %s): %s; the download was "
                     "not kept", base, f->name, url, what);
    if (!st && rename(tmp, path) != 0)
        st = ss_fail(err, SS_ERR_IO, "%s: cannot install: %s", path, strerror(errno));
    if (st) unlink(tmp);
    else logf_(log, lctx, "%s (original of %s): sha256 ok%s", base, f->name,
                    src->git_blob ? ", git blob id ok" : "");
    return st;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* tar -xzf ARCHIVE -C DIR MEMBER... for the members a conversion reads. */
static ss_status extract(const ss_corpus_source *src, const char *archive, const char *dir,
                         ss_error *err) {
    char pos[4096], neg[4096];
    char *argv[] = {"tar", "-xzf", (char *)archive, "-C", (char *)dir, src->member, NULL, NULL};
    if (strcmp(src->convert, "aclimdb-labelled") == 0) { /* only pos/ and neg/ */
        if (make_path(pos, sizeof pos, err, "%s/pos", src->member) ||
            make_path(neg, sizeof neg, err, "%s/neg", src->member))
            return err->code;
        argv[5] = pos;
        argv[6] = neg;
    }
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) return ss_fail(err, SS_ERR_IO, "/dev/null: %s", strerror(errno));
    child ch;
    ss_status st = spawn(&ch, argv, devnull, 0, err);
    close(devnull);
    if (!st && (st = reap(&ch, "tar", err)))
        ss_error_prefix(err, "extracting %s from %s: ", src->member, base_name(archive));
    return st;
}

/* Download (or reuse) the original, extract what is needed, convert into s. */
static ss_status convert_source(sink *s, const ss_corpus_file *f, const ss_fetch_opts *o,
                                const char *dir, char *how, size_t hlen, uint64_t *content_n,
                                char content_hex[65], ss_log_fn log, void *lctx, ss_error *err) {
    const ss_corpus_source *src = f->source;
    char orig[4096], xdir[4096] = "";
    ss_status st = get_original(f, o, dir, orig, sizeof orig, log, lctx, err);
    if (st) return st;
    snprintf(how, hlen, "converted from %s%s%s (%s)", base_name(src->url), src->member ? ":" : "",
             src->member ? src->member : "", src->convert);
    const char *input = orig;
    if (src->archive) {
        if ((st = make_path(xdir, sizeof xdir, err, "%s/.download/.extract-XXXXXX", dir))) return st;
        if (!mkdtemp(xdir))
            return ss_fail(err, SS_ERR_IO, "%s: cannot create a directory: %s", xdir, strerror(errno));
        input = xdir;
        st = extract(src, orig, xdir, err);
    }
    conv_sink c = {.s = s};
    if (!st && f->content_sha256) { /* NAME.zst */
        ss_sha256_init(&c.h);
        c.zcap = ZSTD_CStreamOutSize();
        c.cctx = ZSTD_createCCtx();
        c.zbuf = malloc(c.zcap);
        if (!c.cctx || !c.zbuf ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c.cctx, ZSTD_c_compressionLevel, CONVERT_ZSTD_LEVEL)))
            st = ss_fail(err, SS_ERR_NOMEM, "zstd: cannot set up compression");
        if (!st) logf_(log, lctx, "%s: converting and compressing (zstd level %d)", f->name,
                       CONVERT_ZSTD_LEVEL);
    }
    if (!st) st = corpus_convert(src, input, conv_write, &c, err);
    if (st) ss_error_prefix(err, "%s: converting %s (%s): ", f->name, base_name(src->url), src->convert);
    if (!st && c.cctx) {
        ZSTD_inBuffer none = {NULL, 0, 0};
        if (!(st = zflush(&c, &none, ZSTD_e_end, err))) {
            uint8_t d[32];
            ss_sha256_final(&c.h, d);
            ss_sha256_hex(d, content_hex);
            *content_n = c.n;
        }
    }
    ZSTD_freeCCtx(c.cctx);
    free(c.zbuf);
    if (*xdir) rm_rf(xdir);
    return st;
}

/* ---- one file ----------------------------------------------------------------------- */

/* A file no source but a mirror provides. */
static int mirror_only(const ss_corpus_file *f, const ss_fetch_opts *o) {
    return !(o->mirror_dir && *o->mirror_dir) && !f->generate && !(o->base_url && *o->base_url) &&
           !f->url && !f->source;
}

/* A file that will be made from its published original. */
static int will_convert(const ss_corpus_file *f, const ss_fetch_opts *o) {
    return f->source && !(o->mirror_dir && *o->mirror_dir) && !(o->base_url && *o->base_url);
}

/* Fill the temp file from the first applicable source; how gets a phrase
 * for the log line. A converted .zst file gets its content hash too. */
static ss_status fill(sink *s, const char *tmp, const ss_corpus_manifest *m,
                      const ss_corpus_file *f, const ss_fetch_opts *o, const char *dir, char *how,
                      size_t hlen, uint64_t *content_n, char content_hex[65], ss_log_fn log,
                      void *lctx, ss_error *err) {
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
    } else if (f->source) {
        return convert_source(s, f, o, dir, how, hlen, content_n, content_hex, log, lctx, err);
    } else {
        return ss_fail(err, SS_ERR_NOT_FOUND, "%s: no public URL serves this file (%s%s); only a "
                       "data mirror has it. " MIRROR_IS ". Set SELFSUP_DATA_MIRROR to a directory "
                       "holding %s/%s", f->name, f->origin ? "origin: " : "it was made for selfsup",
                       f->origin ? f->origin : "", m->name, f->name);
    }
    char size[32];
    human_size(f->size, size, sizeof size);
    logf_(log, lctx, "downloading %s (%s) from %s", f->name, size, url);
    snprintf(how, hlen, "downloaded from %s", url);
    return download(s, tmp, url, o->progress, err);
}

/* Does a file with size n and sha256 hex match f: its stored bytes, or (for
 * .zst files with content_sha256) its decompressed content? content_hex is
 * the content's hash when already known, else "" (then the file at path is
 * decompressed). *which: "sha256 ok", "content sha256 ok" or NULL. */
static const char *matches(const ss_corpus_file *f, const char *path, uint64_t n, const char *hex,
                           uint64_t content_n, const char *content_hex) {
    if (n == f->size && strcmp(hex, f->sha256) == 0) return "sha256 ok";
    if (!f->content_sha256) return NULL;
    char chex[65];
    ss_error ignored;
    if (!*content_hex) {
        if (zstd_content(path, chex, &content_n, &ignored)) return NULL;
        content_hex = chex;
    }
    if (content_n == f->content_size && strcmp(content_hex, f->content_sha256) == 0)
        return "content sha256 ok (its zstd bytes differ from the stored ones, as zstd versions "
               "and settings may)";
    return NULL;
}

static ss_status verify_and_install(sink *s, const char *tmp, const char *path, const char *how,
                                    const ss_corpus_file *f, uint64_t content_n,
                                    const char *content_hex, const char **which, ss_error *err) {
    if (!s->external) {
        uint8_t d[32];
        ss_sha256_final(&s->h, d);
        ss_sha256_hex(d, s->hex);
    }
    const char *hex = s->hex;
    if (!(*which = matches(f, tmp, s->n, hex, content_n, content_hex))) {
        char content[256] = "";
        if (f->content_sha256 && *content_hex)
            snprintf(content, sizeof content, "; its content: expected sha256 %s (%llu bytes), got "
                     "%s (%llu bytes)", f->content_sha256, (unsigned long long)f->content_size,
                     content_hex, (unsigned long long)content_n);
        else if (f->content_sha256)
            snprintf(content, sizeof content, "; its decompressed content does not match "
                     "content_sha256 %s either", f->content_sha256);
        return ss_fail(err, SS_ERR_CHECKSUM,
                       "%s: sha256 mismatch (%s): expected %s (%llu bytes), got %s (%llu bytes)%s; "
                       "the file was not kept", f->name, how, f->sha256,
                       (unsigned long long)f->size, hex, (unsigned long long)s->n, content);
    }
    if (fsync(s->fd) != 0 || rename(tmp, path) != 0)
        return ss_fail(err, SS_ERR_IO, "%s: cannot install: %s", path, strerror(errno));
    return SS_OK;
}

/* A present file is kept only if it matches (size and sha256, or content). */
static int cached_ok(const char *path, const ss_corpus_file *f) {
    struct stat sb;
    char hex[65];
    ss_error ignored;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    if ((uint64_t)sb.st_size != f->size && !f->content_sha256) return 0;
    if (ss_sha256_file(path, hex, &ignored) != SS_OK) return 0;
    return matches(f, path, (uint64_t)sb.st_size, hex, 0, "") != NULL;
}

static ss_status fetch_one(const ss_corpus_manifest *m, const ss_corpus_file *f,
                           const ss_fetch_opts *o, const char *dir, int cached, ss_log_fn log,
                           void *lctx, ss_error *err) {
    char path[4096], tmp[4096], how[4200];
    if (make_path(path, sizeof path, err, "%s/%s", dir, f->name) ||
        make_path(tmp, sizeof tmp, err, "%s/.%s.part-XXXXXX", dir, f->name))
        return err->code;
    if (cached) {
        logf_(log, lctx, "%s: verified (cached)", f->name);
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
    uint64_t content_n = 0;
    char content_hex[65] = "";
    const char *which = NULL;
    ss_status st = fill(s, tmp, m, f, o, dir, how, sizeof how, &content_n, content_hex, log, lctx, err);
    if (!st) st = sink_flush(s, err);
    if (!st) st = verify_and_install(s, tmp, path, how, f, content_n, content_hex, &which, err);
    close(s->fd);
    free(s);
    if (st) {
        unlink(tmp);
        return st;
    }
    logf_(log, lctx, "%s: %s, %s", f->name, how, which);
    return SS_OK;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

/* The files to fetch: all, or those named in o->only (each must exist). */
static ss_status select_files(const ss_corpus_manifest *m, const ss_fetch_opts *o, char *sel,
                              ss_error *err) {
    memset(sel, !o->only, m->n_files);
    for (const char *const *p = o->only; p && *p; p++) {
        size_t i = 0;
        while (i < m->n_files && strcmp(m->files[i].name, *p) != 0) i++;
        if (i == m->n_files) {
            char names[1024] = "";
            for (size_t j = 0, len = 0; j < m->n_files && len < sizeof names; j++)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", j ? ", " : "",
                                        m->files[j].name);
            return ss_fail(err, SS_ERR_NOT_FOUND, "no file '%s' in this corpus (its files: %s)",
                           *p, names);
        }
        sel[i] = 1;
    }
    return SS_OK;
}

/* Before any download: fail at once if a file only a mirror provides is
 * missing, and say how much will be downloaded to convert. */
static ss_status plan(const ss_corpus_manifest *m, const ss_fetch_opts *o, const char *dir,
                      const char *sel, char *cached, ss_log_fn log, void *lctx, ss_error *err) {
    char missing[2048] = "";
    size_t mlen = 0, n_conv = 0, n_orig = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < m->n_files; i++) {
        const ss_corpus_file *f = &m->files[i];
        char path[4096];
        if (!sel[i]) continue;
        if (make_path(path, sizeof path, err, "%s/%s", dir, f->name)) return err->code;
        cached[i] = (char)cached_ok(path, f);
        if (cached[i]) continue;
        if (mirror_only(f, o) && mlen < sizeof missing)
            mlen += (size_t)snprintf(missing + mlen, sizeof missing - mlen, "%s%s (%s)",
                                     mlen ? "; " : "", f->name,
                                     f->origin ? f->origin : "made for selfsup");
        if (!will_convert(f, o)) continue;
        n_conv++;
        size_t j = 0; /* count each original once */
        while (j < i && !(sel[j] && !cached[j] && m->files[j].source &&
                          strcmp(m->files[j].source->url, f->source->url) == 0))
            j++;
        if (j == i) n_orig++, bytes += f->source->size;
    }
    if (*missing)
        return ss_fail(err, SS_ERR_NOT_FOUND,
                       "no public URL serves %s, so nothing was downloaded. " MIRROR_IS
                       ". Set SELFSUP_DATA_MIRROR to a directory holding %s/FILE for these files, "
                       "or fetch only the others with 'selfsup data get %s FILE...'",
                       missing, m->name, m->name);
    if (n_conv) {
        char size[32];
        human_size(bytes, size, sizeof size);
        logf_(log, lctx, "%s: %zu file%s to make from %zu published original%s (%s to download "
              "unless already in %s/.download)", m->name, n_conv, n_conv == 1 ? "" : "s", n_orig,
              n_orig == 1 ? "" : "s", size, dir);
    }
    return SS_OK;
}

ss_status ss_corpus_fetch(const ss_corpus_manifest *m, const ss_fetch_opts *o, ss_log_fn log,
                          void *log_ctx, ss_error *err) {
    if (!o || !o->dest_dir || !*o->dest_dir)
        return ss_fail(err, SS_ERR_ARG, "%s: no destination directory given", m->name);
    char dir[4096], dl[4200];
    ss_status st = make_path(dir, sizeof dir, err, "%s/%s", o->dest_dir, m->name);
    if (!st) st = make_path(dl, sizeof dl, err, "%s/.download", dir);
    if (!st) st = ss_mkdir_p(dir, err);
    if (st) return st;
    char *sel = malloc(2 * m->n_files + 1), *cached = sel + m->n_files;
    if (!sel) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    st = select_files(m, o, sel, err);
    if (!st) st = plan(m, o, dir, sel, cached, log, log_ctx, err);
    for (size_t i = 0; i < m->n_files && !st; i++)
        if (sel[i]) st = fetch_one(m, &m->files[i], o, dir, cached[i], log, log_ctx, err);
    free(sel);
    if (st) return ss_error_prefix(err, "corpus %s: ", m->name);
    if (!o->only) rm_rf(dl); /* the originals: every file made from them is in place */
    fsync_dir(dir); /* make the renames durable */
    return SS_OK;
}
