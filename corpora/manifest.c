/* Corpus manifests: corpora/NAME.json parsed with cJSON and validated
 * strictly (unknown keys are errors too, so a typo such as "sha265" is caught
 * instead of silently disabling a check). Every error names the manifest
 * file and the field, e.g. "corpora/kjv.json: files[1].sha256: ...". */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "selfsup/corpus.h"
#include "selfsup/io.h"

static const char *const manifest_keys[] = {"name", "description", "license", "homepage",
                                            "citation", "files", NULL};
static const char *const file_keys[] = {"name", "size", "sha256", "url", "origin",
                                        "generate", "transform", "note", "source",
                                        "content_sha256", "content_size", NULL};
static const char *const source_keys[] = {"url", "size", "sha256", "git_blob", "archive",
                                          "member", "convert", "patches", NULL};
static const char *const patch_keys[] = {"line", "from", "to", NULL};
static const char *const transforms[] = {"kjv-text", "kjv-refs", NULL};
/* Conversions of a source (corpora/convert.c); the aclimdb ones read a
 * directory of an archive, the others one file. */
static const char *const conversions[] = {"copy", "crlf-to-lf", "sst-label-sentence", "tsv-strip",
                                          "tsv-swap-strip", "aclimdb-labelled", "aclimdb-unsup",
                                          NULL};
static const char *const archives[] = {"tar.gz", NULL};

static int in_list(const char *s, const char *const *list) {
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return 1;
    return 0;
}

/* Names are used as path components and URL segments: keep them plain. */
static int safe_name(const char *s) {
    if (!*s || s[0] == '.') return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-') return 0;
    return 1;
}

static int is_hex(const char *s, size_t len) {
    size_t i = 0;
    for (; s[i]; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return 0;
    return i == len;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A member path inside an archive: relative, '/'-separated plain names. */
static int safe_member(const char *s) {
    if (!*s || s[0] == '/') return 0;
    for (const char *p = s; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char part[256];
        if (n == 0 || n >= sizeof part) return 0;
        memcpy(part, p, n);
        part[n] = '\0';
        if (!safe_name(part)) return 0;
        p += n + (slash != NULL);
        if (slash && !*p) return 0;
    }
    return 1;
}

/* Context for error messages: the manifest path and the object being read
 * ("" for the top level, "files[3]" for a file entry). */
typedef struct {
    const char *path;
    char where[64];
    ss_error *err;
} ctx;

static ss_status bad(ctx *c, const char *field, const char *what) {
    return ss_fail(c->err, SS_ERR_FORMAT, "%s: %s%s%s: %s", c->path, c->where,
                   c->where[0] && field[0] ? "." : "", field, what);
}

static ss_status check_keys(ctx *c, const cJSON *obj, const char *const *keys) {
    for (const cJSON *it = obj->child; it; it = it->next)
        if (!in_list(it->string, keys)) return bad(c, it->string, "unknown field");
    return SS_OK;
}

/* A string field: required ones must exist; optional ones may be absent
 * (*out stays NULL) but must be strings when present. */
static ss_status get_str(ctx *c, const cJSON *obj, const char *field, int required, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!v) return required ? bad(c, field, "missing (a string is required)") : SS_OK;
    if (!cJSON_IsString(v)) return bad(c, field, "must be a string");
    if (required && !*v->valuestring) return bad(c, field, "must not be empty");
    if (!(*out = strdup(v->valuestring))) return ss_fail(c->err, SS_ERR_NOMEM, "out of memory");
    return SS_OK;
}

/* A non-negative integer field (a byte count or a line number), at most 2^53,
 * the largest integer a JSON number (a double) holds exactly. */
static ss_status get_uint(ctx *c, const cJSON *obj, const char *field, int required,
                          const char *what, uint64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!v) {
        if (!required) return SS_OK;
        char msg[128];
        snprintf(msg, sizeof msg, "missing (%s is required)", what);
        return bad(c, field, msg);
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble) {
        char msg[128];
        snprintf(msg, sizeof msg, "must be a non-negative integer (%s)", what);
        return bad(c, field, msg);
    }
    *out = (uint64_t)v->valuedouble;
    return SS_OK;
}

static ss_status get_generate(ctx *c, const cJSON *obj, char ***out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "generate");
    if (!v) return SS_OK;
    int n = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || n == 0)
        return bad(c, "generate", "must be a non-empty array of strings (program and arguments)");
    char **argv = calloc((size_t)n + 1, sizeof *argv);
    if (!argv) return ss_fail(c->err, SS_ERR_NOMEM, "out of memory");
    *out = argv;
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it) || !*it->valuestring)
            return bad(c, "generate", "every element must be a non-empty string");
        if (!(argv[i] = strdup(it->valuestring))) return ss_fail(c->err, SS_ERR_NOMEM, "out of memory");
    }
    return SS_OK;
}

static ss_status parse_patches(ctx *c, const cJSON *obj, ss_corpus_source *s) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "patches");
    if (!v) return SS_OK;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return bad(c, "patches", "must be a non-empty array of {line, from, to}");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (!(s->patches = calloc(n, sizeof *s->patches)))
        return ss_fail(c->err, SS_ERR_NOMEM, "out of memory");
    s->n_patches = n;
    size_t len = strlen(c->where), i = 0;
    ss_status st = SS_OK;
    for (const cJSON *it = v->child; it && !st; it = it->next, i++) {
        ss_corpus_patch *p = &s->patches[i];
        snprintf(c->where + len, sizeof c->where - len, ".patches[%zu]", i);
        if (!cJSON_IsObject(it)) st = bad(c, "", "must be an object {line, from, to}");
        if (!st) st = check_keys(c, it, patch_keys);
        if (!st) st = get_uint(c, it, "line", 1, "a 1-based line number", &p->line);
        if (!st && (p->line == 0 || (i && p->line <= s->patches[i - 1].line)))
            st = bad(c, "line", "must be >= 1 and greater than the previous patch's line");
        if (!st) st = get_str(c, it, "from", 1, &p->from);
        if (!st) st = get_str(c, it, "to", 1, &p->to);
        if (!st && (strchr(p->from, '\n') || strchr(p->to, '\n')))
            st = bad(c, strchr(p->from, '\n') ? "from" : "to", "must be one line (no '\\n')");
    }
    if (!st) c->where[len] = '\0';
    return st;
}

static ss_status parse_source(ctx *c, const cJSON *obj, ss_corpus_source *s) {
    ss_status st;
    if (!cJSON_IsObject(obj)) return bad(c, "", "must be an object");
    if ((st = check_keys(c, obj, source_keys)) || (st = get_str(c, obj, "url", 1, &s->url)) ||
        (st = get_uint(c, obj, "size", 1, "the original's size in bytes", &s->size)) ||
        (st = get_str(c, obj, "sha256", 1, &s->sha256)) ||
        (st = get_str(c, obj, "git_blob", 0, &s->git_blob)) ||
        (st = get_str(c, obj, "archive", 0, &s->archive)) ||
        (st = get_str(c, obj, "member", 0, &s->member)) ||
        (st = get_str(c, obj, "convert", 1, &s->convert)))
        return st;
    if (strncmp(s->url, "https://", 8) != 0 && strncmp(s->url, "http://", 7) != 0)
        return bad(c, "url", "must start with https:// or http://");
    const char *base = strrchr(s->url, '/') + 1;
    if (!safe_name(base))
        return bad(c, "url", "must end in a plain file name of letters, digits, '.', '_' or '-'");
    if (!is_hex(s->sha256, 64)) return bad(c, "sha256", "must be 64 lowercase hex digits");
    if (s->git_blob && !is_hex(s->git_blob, 40))
        return bad(c, "git_blob", "must be 40 lowercase hex digits");
    if (s->archive && !in_list(s->archive, archives))
        return bad(c, "archive", "unknown archive format (known: tar.gz)");
    if (!s->archive != !s->member)
        return bad(c, s->archive ? "member" : "archive",
                   "\"archive\" and \"member\" go together (the path inside the archive)");
    if (s->member && !safe_member(s->member))
        return bad(c, "member", "must be a relative path of plain names ([A-Za-z0-9._-]) "
                                "separated by '/'");
    if (!in_list(s->convert, conversions))
        return bad(c, "convert", "unknown conversion (known: copy, crlf-to-lf, sst-label-sentence, "
                                 "tsv-strip, tsv-swap-strip, aclimdb-labelled, aclimdb-unsup)");
    if (strncmp(s->convert, "aclimdb-", 8) == 0 && !s->archive)
        return bad(c, "convert", "aclimdb conversions read a directory of an archive: "
                                 "\"archive\" and \"member\" are required");
    return parse_patches(c, obj, s);
}

static ss_status parse_file(ctx *c, const cJSON *obj, ss_corpus_file *f) {
    ss_status st;
    if (!cJSON_IsObject(obj)) return bad(c, "", "must be an object");
    if ((st = check_keys(c, obj, file_keys))) return st;
    if ((st = get_str(c, obj, "name", 1, &f->name))) return st;
    if (!safe_name(f->name))
        return bad(c, "name", "must be a plain file name of letters, digits, '.', '_' or '-'");
    if ((st = get_uint(c, obj, "size", 1, "the file size in bytes", &f->size))) return st;
    if ((st = get_str(c, obj, "sha256", 1, &f->sha256))) return st;
    if (!is_hex(f->sha256, 64)) return bad(c, "sha256", "must be 64 lowercase hex digits");
    if ((st = get_str(c, obj, "url", 0, &f->url)) || (st = get_str(c, obj, "origin", 0, &f->origin)) ||
        (st = get_str(c, obj, "note", 0, &f->note)) || (st = get_generate(c, obj, &f->generate)) ||
        (st = get_str(c, obj, "transform", 0, &f->transform)))
        return st;
    if (f->url && strncmp(f->url, "https://", 8) != 0 && strncmp(f->url, "http://", 7) != 0)
        return bad(c, "url", "must start with https:// or http://");
    if (f->transform && !f->generate) return bad(c, "transform", "only allowed with \"generate\"");
    if (f->transform && !in_list(f->transform, transforms))
        return bad(c, "transform", "unknown transform (known: kjv-text, kjv-refs)");
    if ((st = get_str(c, obj, "content_sha256", 0, &f->content_sha256)) ||
        (st = get_uint(c, obj, "content_size", 0, "bytes", &f->content_size)))
        return st;
    if (f->content_sha256 && !is_hex(f->content_sha256, 64))
        return bad(c, "content_sha256", "must be 64 lowercase hex digits");
    if (!f->content_sha256 != !cJSON_GetObjectItemCaseSensitive(obj, "content_size"))
        return bad(c, f->content_sha256 ? "content_size" : "content_sha256",
                   "content_sha256 and content_size go together");
    if (f->content_sha256 && !ends_with(f->name, ".zst"))
        return bad(c, "content_sha256", "only allowed for zstd-compressed files (NAME.zst)");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(obj, "source");
    if (!src) return SS_OK;
    if (f->url || f->generate)
        return bad(c, "source", "not allowed with \"url\" or \"generate\" (one way to get a file)");
    if (ends_with(f->name, ".zst") && !f->content_sha256)
        return bad(c, "source", "a converted NAME.zst file needs content_sha256 and content_size "
                                "(its compressed bytes depend on the zstd version)");
    if (!(f->source = calloc(1, sizeof *f->source)))
        return ss_fail(c->err, SS_ERR_NOMEM, "out of memory");
    size_t len = strlen(c->where);
    snprintf(c->where + len, sizeof c->where - len, ".source");
    if ((st = parse_source(c, src, f->source))) return st;
    c->where[len] = '\0';
    return SS_OK;
}

static ss_status parse_manifest(ctx *c, const cJSON *root, const char *name, ss_corpus_manifest *m) {
    ss_status st;
    if (!cJSON_IsObject(root)) return bad(c, "(top level)", "must be a JSON object");
    if ((st = check_keys(c, root, manifest_keys)) || (st = get_str(c, root, "name", 1, &m->name)))
        return st;
    if (strcmp(m->name, name) != 0)
        return bad(c, "name", "does not match the manifest's file name");
    if ((st = get_str(c, root, "description", 1, &m->description)) ||
        (st = get_str(c, root, "license", 1, &m->license)) ||
        (st = get_str(c, root, "homepage", 1, &m->homepage)) ||
        (st = get_str(c, root, "citation", 0, &m->citation)))
        return st;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (!files) return bad(c, "files", "missing (an array of file entries is required)");
    if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) == 0)
        return bad(c, "files", "must be a non-empty array");
    size_t n = (size_t)cJSON_GetArraySize(files);
    if (!(m->files = calloc(n, sizeof *m->files)))
        return ss_fail(c->err, SS_ERR_NOMEM, "out of memory");
    m->n_files = n;
    size_t i = 0;
    for (const cJSON *it = files->child; it; it = it->next, i++) {
        snprintf(c->where, sizeof c->where, "files[%zu]", i);
        if ((st = parse_file(c, it, &m->files[i]))) return st;
        for (size_t j = 0; j < i; j++) /* a handful of files: a scan is fine */
            if (strcmp(m->files[j].name, m->files[i].name) == 0)
                return bad(c, "name", "duplicate file name");
    }
    return SS_OK;
}

/* 1-based line of byte offset pos, for JSON syntax errors. */
static size_t line_of(const char *text, size_t pos) {
    size_t line = 1;
    for (size_t i = 0; i < pos && text[i]; i++) line += text[i] == '\n';
    return line;
}

static ss_status not_found(const char *corpora_dir, const char *name, ss_error *err) {
    char **names;
    size_t n;
    ss_error lerr = {0};
    if (ss_corpus_list(corpora_dir, &names, &n, &lerr))
        return ss_fail(err, SS_ERR_NOT_FOUND, "unknown corpus '%s': %s", name, lerr.msg);
    char avail[768] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof avail; i++)
        len += (size_t)snprintf(avail + len, sizeof avail - len, "%s%s", i ? ", " : "", names[i]);
    ss_corpus_list_free(names, n);
    return ss_fail(err, SS_ERR_NOT_FOUND, "unknown corpus '%s' (no %s/%s.json); available: %s",
                   name, corpora_dir, name, n ? avail : "none");
}

ss_status ss_corpus_load(ss_corpus_manifest *m, const char *corpora_dir, const char *name,
                         ss_error *err) {
    memset(m, 0, sizeof *m);
    if (!safe_name(name)) return not_found(corpora_dir, name, err);
    char path[4096];
    if (strlen(corpora_dir) + strlen(name) + 7 > sizeof path)
        return ss_fail(err, SS_ERR_ARG, "corpora directory path too long: %.200s", corpora_dir);
    snprintf(path, sizeof path, "%s/%s.json", corpora_dir, name);
    if (!ss_file_exists(path)) return not_found(corpora_dir, name, err);
    ss_buf text = {0};
    ss_status st = ss_read_file(path, &text, err);
    if (st) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text.data, text.len + 1, &end, 1); /* + its NUL */
    if (!root) {
        size_t pos = end ? (size_t)(end - text.data) : 0;
        st = ss_fail(err, SS_ERR_FORMAT, "%s: line %zu: invalid JSON", path, line_of(text.data, pos));
    } else {
        ctx c = {.path = path, .where = "", .err = err};
        st = parse_manifest(&c, root, name, m);
        cJSON_Delete(root);
    }
    ss_buf_free(&text);
    if (st) ss_corpus_free(m);
    return st;
}

void ss_corpus_free(ss_corpus_manifest *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_files; i++) {
        ss_corpus_file *f = &m->files[i];
        free(f->name); free(f->url); free(f->origin); free(f->sha256);
        free(f->transform); free(f->note); free(f->content_sha256);
        if (f->source) {
            ss_corpus_source *src = f->source;
            free(src->url); free(src->sha256); free(src->git_blob); free(src->archive);
            free(src->member); free(src->convert);
            for (size_t k = 0; k < src->n_patches; k++) {
                free(src->patches[k].from);
                free(src->patches[k].to);
            }
            free(src->patches);
            free(src);
        }
        for (char **a = f->generate; a && *a; a++) free(*a);
        free(f->generate);
    }
    free(m->files);
    free(m->name); free(m->description); free(m->license); free(m->homepage); free(m->citation);
    memset(m, 0, sizeof *m);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

ss_status ss_corpus_list(const char *corpora_dir, char ***names, size_t *n, ss_error *err) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(corpora_dir);
    if (!d)
        return ss_fail(err, SS_ERR_NOT_FOUND, "corpora directory %s: %s", corpora_dir,
                       strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(*names, cap * sizeof *grown);
            if (!grown) goto nomem;
            *names = grown;
        }
        if (!((*names)[*n] = strndup(e->d_name, len - 5))) goto nomem;
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(*names, *n, sizeof **names, cmp_str);
    return SS_OK;
nomem:
    closedir(d);
    ss_corpus_list_free(*names, *n);
    *names = NULL;
    *n = 0;
    return ss_fail(err, SS_ERR_NOMEM, "out of memory");
}

void ss_corpus_list_free(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}
