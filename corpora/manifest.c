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
                                        "generate", "transform", "note", NULL};
static const char *const transforms[] = {"kjv-text", "kjv-refs", NULL};

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

static int is_sha256_hex(const char *s) {
    size_t i = 0;
    for (; s[i]; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return 0;
    return i == 64;
}

/* Context for error messages: the manifest path and the object being read
 * ("" for the top level, "files[3]" for a file entry). */
typedef struct {
    const char *path;
    char where[32];
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

static ss_status parse_file(ctx *c, const cJSON *obj, ss_corpus_file *f) {
    ss_status st;
    if (!cJSON_IsObject(obj)) return bad(c, "", "must be an object");
    if ((st = check_keys(c, obj, file_keys))) return st;
    if ((st = get_str(c, obj, "name", 1, &f->name))) return st;
    if (!safe_name(f->name))
        return bad(c, "name", "must be a plain file name of letters, digits, '.', '_' or '-'");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(obj, "size");
    if (!size) return bad(c, "size", "missing (the file size in bytes is required)");
    /* 2^53: the largest integer a JSON number (a double) holds exactly. */
    if (!cJSON_IsNumber(size) || size->valuedouble < 0 || size->valuedouble > 9007199254740992.0 ||
        size->valuedouble != (double)(uint64_t)size->valuedouble)
        return bad(c, "size", "must be a non-negative integer (bytes)");
    f->size = (uint64_t)size->valuedouble;
    if ((st = get_str(c, obj, "sha256", 1, &f->sha256))) return st;
    if (!is_sha256_hex(f->sha256)) return bad(c, "sha256", "must be 64 lowercase hex digits");
    if ((st = get_str(c, obj, "url", 0, &f->url)) || (st = get_str(c, obj, "origin", 0, &f->origin)) ||
        (st = get_str(c, obj, "note", 0, &f->note)) || (st = get_generate(c, obj, &f->generate)) ||
        (st = get_str(c, obj, "transform", 0, &f->transform)))
        return st;
    if (f->url && strncmp(f->url, "https://", 8) != 0 && strncmp(f->url, "http://", 7) != 0)
        return bad(c, "url", "must start with https:// or http://");
    if (f->transform && !f->generate) return bad(c, "transform", "only allowed with \"generate\"");
    if (f->transform && !in_list(f->transform, transforms))
        return bad(c, "transform", "unknown transform (known: kjv-text, kjv-refs)");
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
        free(f->transform); free(f->note);
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
