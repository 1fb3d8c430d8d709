/* Labelled text tables: TSV, CSV (RFC 4180) and JSONL rows of (text, label).
 *
 * Input goes through ss_textstream, so plain and zstd files read alike and
 * every line has a number. A row is first split into fields (TSV: tabs; CSV:
 * a small quote-aware state machine that may join lines; JSONL: cJSON), then
 * checked and copied by one function, take_row, so the three formats share
 * their rules and messages. Rows live in three parallel arrays that grow
 * geometrically, which keeps reading linear in the size of the file. */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "selfsup/io.h"
#include "selfsup/labeled.h"
#include "selfsup/rng.h"
#include "selfsup/textstream.h"

/* The fields of one TSV/CSV record: each field's bytes followed by a NUL in
 * `bytes`, field i starting at start[i]. */
typedef struct {
    ss_buf bytes;
    size_t *start, n, cap;
} fields;

typedef struct {
    const char *name;          /* the file as messages name it */
    const ss_labeled_opts *o;
    const char *text_key, *label_key; /* text_key NULL until picked (TEXT_KEY_A/B) */
    ss_table_format fmt;
    ss_textstream *ts;
    ss_labeled_set *out;
    size_t cap;                /* rows the out arrays hold */
    int64_t line, rec_line;    /* the last line read; the line the record started on */
    fields f;
    const char *why, *why_tail; /* set when the record itself is malformed (CSV quoting) */
    int why_field;              /* the field it concerns */
    char **cols;               /* header names (TSV/CSV) */
    int n_cols, text_col, label_col;
} reader;

/* How much of an untrusted name or line an error message quotes (escaped:
 * ss_quote_bytes), so a binary file gives a short, printable message. */
#define QUOTE_MAX 60

/* The text column (JSONL: key) when none is named: Hugging Face datasets
 * call it "text", GLUE's SST-2 "sentence". */
#define TEXT_KEY_A "text"
#define TEXT_KEY_B "sentence"

static const char *noun(const reader *r) { return r->fmt == SS_FMT_JSONL ? "field" : "column"; }

/* NULL when s[0..n) can be a text or label (C strings: no NUL), else why not. */
static const char *bad_bytes(const char *s, size_t n) {
    if (memchr(s, '\0', n)) return "a NUL byte";
    if (!ss_utf8_valid(s, n)) return "invalid UTF-8";
    return NULL;
}

/* A malformed row: an error, or (skip_bad_rows) counted with the first
 * message kept. Either way "FILE:LINE: reason" with the row's first line. */
__attribute__((format(printf, 3, 4)))
static ss_status bad_row(reader *r, ss_error *err, const char *fmt, ...) {
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    ss_error local;
    ss_status st = ss_fail(r->o->skip_bad_rows ? &local : err, SS_ERR_FORMAT, "%s:%lld: %s", r->name,
                           (long long)r->rec_line, why);
    if (!r->o->skip_bad_rows) return st;
    if (r->out->n_bad++ == 0) {
        size_t n = strnlen(local.msg, sizeof r->out->first_bad - 1);
        memcpy(r->out->first_bad, local.msg, n);
        r->out->first_bad[n] = '\0';
    }
    return SS_OK;
}

static char *copy_str(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static ss_status push_row(reader *r, const char *text, size_t tn, const char *label, size_t ln, ss_error *err) {
    ss_labeled_set *s = r->out;
    if (s->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        char **t = realloc(s->texts, cap * sizeof *t);
        if (t) s->texts = t;
        char **l = t ? realloc(s->labels, cap * sizeof *l) : NULL;
        if (l) s->labels = l;
        int64_t *li = l ? realloc(s->lines, cap * sizeof *li) : NULL;
        if (!li) return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory at row %zu", r->name, s->n + 1);
        s->lines = li;
        r->cap = cap;
    }
    char *t = copy_str(text, tn), *l = label ? copy_str(label, ln) : NULL;
    if (!t || (label && !l)) {
        free(t);
        free(l);
        return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory at row %zu", r->name, s->n + 1);
    }
    s->texts[s->n] = t;
    s->labels[s->n] = l;
    s->lines[s->n++] = r->rec_line;
    return SS_OK;
}

/* The checks every format shares. label NULL: no label, for the reason
 * no_label (an error only when the caller needs labels). */
static ss_status take_row(reader *r, const char *text, size_t tn, const char *label, size_t ln,
                          const char *no_label, ss_error *err) {
    const char *why;
    if (tn == 0) return bad_row(r, err, "empty text in %s '%s'", noun(r), r->text_key);
    if ((why = bad_bytes(text, tn))) return bad_row(r, err, "%s in %s '%s'", why, noun(r), r->text_key);
    if (label && ln == 0) label = NULL, no_label = "empty label in";
    if (!label && r->o->need_label) return bad_row(r, err, "%s %s '%s'", no_label, noun(r), r->label_key);
    if (label && (why = bad_bytes(label, ln)))
        return bad_row(r, err, "%s in %s '%s'", why, noun(r), r->label_key);
    return push_row(r, text, tn, label, ln, err);
}

/* ---- lines and fields ------------------------------------------------------ */

/* The next line without its "\n" or "\r\n" (*term: the bytes dropped), and
 * without a UTF-8 byte order mark on line 1. *s == NULL at the end. */
static ss_status next_line(reader *r, const char **s, size_t *n, size_t *term, ss_error *err) {
    const char *line;
    size_t len;
    ss_status st = ss_textstream_next_line(r->ts, &line, &len, err);
    if (st) return st;
    *s = line;
    if (!len) return SS_OK;
    r->line = (int64_t)ss_textstream_line_no(r->ts);
    if (r->line == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3, len -= 3;
    size_t t = len && line[len - 1] == '\n';
    if (len > t && line[len - 1 - t] == '\r') t++;
    *s = line;
    *n = len - t;
    *term = t;
    return SS_OK;
}

static ss_status field_open(fields *f, ss_error *err) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        size_t *p = realloc(f->start, cap * sizeof *p);
        if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory splitting a row");
        f->start = p;
        f->cap = cap;
    }
    f->start[f->n++] = f->bytes.len;
    return SS_OK;
}

static ss_status field_close(fields *f, ss_error *err) { return ss_buf_append(&f->bytes, "", 1, err); }

static const char *field_at(const fields *f, int i, size_t *len) {
    size_t end = (size_t)i + 1 < f->n ? f->start[i + 1] : f->bytes.len;
    *len = end - f->start[i] - 1;
    return f->bytes.data + f->start[i];
}

/* A new record: its fields emptied, and its first line, the next non-blank
 * one (*eof at the end of the file instead). */
static ss_status record_start(reader *r, const char **s, size_t *n, size_t *term, int *eof, ss_error *err) {
    r->f.n = r->f.bytes.len = 0;
    r->why = NULL;
    ss_status st;
    do {
        if ((st = next_line(r, s, n, term, err))) return st;
        if (!*s) return *eof = 1, SS_OK;
    } while (*n == 0);
    r->rec_line = r->line;
    return SS_OK;
}

/* One TSV record: the next non-blank line split on tabs (no quoting). */
static ss_status tsv_record(reader *r, int *eof, ss_error *err) {
    const char *s;
    size_t n = 0, term;
    ss_status st = record_start(r, &s, &n, &term, eof, err);
    if (st || *eof) return st;
    for (size_t i = 0, a = 0; i <= n; i++)
        if (i == n || s[i] == '\t') {
            if ((st = field_open(&r->f, err)) || (st = ss_buf_append(&r->f.bytes, s + a, i - a, err)) ||
                (st = field_close(&r->f, err)))
                return st;
            a = i + 1;
        }
    return SS_OK;
}

/* Note what is wrong with the CSV record (the first problem only): "WHAT in
 * column 'c'TAIL". */
static void csv_why(reader *r, const char *what, const char *tail) {
    if (r->why) return;
    r->why = what;
    r->why_tail = tail;
    r->why_field = (int)r->f.n - 1;
}

/* CSV parsing state carried from one line of a record to the next. */
typedef struct {
    int in_quotes, after_quote; /* inside "..."; just after its closing quote */
} csv_state;

/* Parse s[0..n) into the open field(s) of the current record. */
static ss_status csv_scan(reader *r, csv_state *q, const char *s, size_t n, ss_error *err) {
    ss_buf *b = &r->f.bytes;
    ss_status st = SS_OK;
    for (size_t i = 0; i < n && !st; i++) {
        char c = s[i];
        if (q->in_quotes) {
            if (c != '"') st = ss_buf_append(b, &c, 1, err);
            else if (i + 1 < n && s[i + 1] == '"') st = ss_buf_append(b, "\"", 1, err), i++;
            else q->in_quotes = 0, q->after_quote = 1;
        } else if (c == ',') {
            q->after_quote = 0;
            if (!(st = field_close(&r->f, err))) st = field_open(&r->f, err);
        } else if (c == '"' && !q->after_quote && b->len == r->f.start[r->f.n - 1]) {
            q->in_quotes = 1;
        } else {
            /* keep going so the quoting stays in step; the row is reported at its end */
            if (q->after_quote) csv_why(r, "text after the closing quote", "");
            st = ss_buf_append(b, &c, 1, err);
        }
    }
    return st;
}

/* One CSV record: the next non-blank line, joined with the following lines
 * while a quoted field is open (its line breaks are kept in the field). */
static ss_status csv_record(reader *r, int *eof, ss_error *err) {
    const char *s;
    size_t n = 0, term = 0;
    csv_state q = {0, 0};
    ss_status st = record_start(r, &s, &n, &term, eof, err);
    if (st || *eof) return st;
    if ((st = field_open(&r->f, err))) return st;
    for (;;) {
        if ((st = csv_scan(r, &q, s, n, err))) return st;
        if (!q.in_quotes) break;
        if ((st = ss_buf_append(&r->f.bytes, s + n, term, err))) return st;
        if ((st = next_line(r, &s, &n, &term, err))) return st;
        if (!s) {
            csv_why(r, "unterminated quoted field", ": no closing quote before the end of the file");
            break;
        }
    }
    return field_close(&r->f, err);
}

static ss_status table_record(reader *r, int *eof, ss_error *err) {
    return r->fmt == SS_FMT_CSV ? csv_record(r, eof, err) : tsv_record(r, eof, err);
}

/* ---- TSV / CSV ------------------------------------------------------------- */

/* "'a', 'b', 'c'" into buf (cut short with "..." when long). */
static void list_columns(const reader *r, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->n_cols && k + 8 < cap; i++) {
        char q[4 * QUOTE_MAX + 8];
        ss_quote_bytes(q, sizeof q, r->cols[i], strlen(r->cols[i]), QUOTE_MAX);
        int m = snprintf(buf + k, cap - k, "%s'%s'", i ? ", " : "", q);
        if (m < 0 || (size_t)m >= cap - k) {
            snprintf(buf + (cap > 8 ? cap - 8 : 0), 8, ", ...");
            return;
        }
        k += (size_t)m;
    }
}

/* Column index of NAME in the header; -1 when absent, -2 when there twice. */
static int find_column(const reader *r, const char *name) {
    int at = -1;
    for (int i = 0; i < r->n_cols; i++)
        if (strcmp(r->cols[i], name) == 0) {
            if (at >= 0) return -2;
            at = i;
        }
    return at;
}

/* No text column named: the header's 'text' or 'sentence' column; both
 * there is ambiguous, so an error (the caller must choose). */
static ss_status pick_text_column(reader *r, ss_error *err) {
    int a = find_column(r, TEXT_KEY_A), b = find_column(r, TEXT_KEY_B);
    if (a != -1 && b != -1)
        return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: the header has both a '" TEXT_KEY_A "' and a '" TEXT_KEY_B
                       "' column: name the text column (--text-column)", r->name, (long long)r->rec_line);
    if (a == -1 && b == -1) {
        char list[512];
        list_columns(r, list, sizeof list);
        return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: no text column '" TEXT_KEY_A "' or '" TEXT_KEY_B "' in the "
                       "header (or name it: --text-column); its columns are: %s", r->name, (long long)r->rec_line,
                       list);
    }
    r->text_key = a != -1 ? TEXT_KEY_A : TEXT_KEY_B;
    return SS_OK;
}

static ss_status read_header(reader *r, ss_error *err) {
    int eof = 0;
    ss_status st = table_record(r, &eof, err);
    if (st) return st;
    if (eof)
        return ss_fail(err, SS_ERR_FORMAT, "%s: empty file: a %s file needs a header row naming its columns",
                       r->name, r->fmt == SS_FMT_CSV ? "CSV" : "TSV");
    if (r->why)
        return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: header row: %s in field %d%s", r->name,
                       (long long)r->rec_line, r->why, r->why_field + 1, r->why_tail);
    if (!(r->cols = calloc(r->f.n, sizeof *r->cols))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->f.n; i++) {
        size_t len;
        const char *c = field_at(&r->f, (int)i, &len), *why = bad_bytes(c, len);
        if (why) { /* a binary file, most likely: say so with a short, printable excerpt */
            char q[4 * QUOTE_MAX + 8];
            ss_quote_bytes(q, sizeof q, c, len, QUOTE_MAX);
            return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: header row: %s in field %zu ('%s'): not a %s text file?",
                           r->name, (long long)r->rec_line, why, i + 1, q, r->fmt == SS_FMT_CSV ? "CSV" : "TSV");
        }
        if (!(r->cols[i] = copy_str(c, len))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        r->n_cols++;
    }
    if (!r->text_key && (st = pick_text_column(r, err))) return st;
    const char *keys[2] = {r->text_key, r->label_key};
    int *at[2] = {&r->text_col, &r->label_col};
    for (int k = 0; k < 2; k++) {
        *at[k] = find_column(r, keys[k]);
        if (*at[k] == -2)
            return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: column '%s' appears twice in the header", r->name,
                           (long long)r->rec_line, keys[k]);
        if (*at[k] == -1 && (k == 0 || r->o->need_label)) {
            char list[512];
            list_columns(r, list, sizeof list);
            return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: no %s column '%s' in the header; its columns are: %s",
                           r->name, (long long)r->rec_line, k ? "label" : "text", keys[k], list);
        }
    }
    return SS_OK;
}

static ss_status table_row(reader *r, ss_error *err) {
    if (r->why) {
        int i = r->why_field;
        char q[4 * QUOTE_MAX + 8];
        if (i < r->n_cols)
            return bad_row(r, err, "%s in column '%s'%s", r->why,
                           ss_quote_bytes(q, sizeof q, r->cols[i], strlen(r->cols[i]), QUOTE_MAX), r->why_tail);
        return bad_row(r, err, "%s in field %d%s", r->why, i + 1, r->why_tail);
    }
    if (r->f.n != (size_t)r->n_cols)
        return bad_row(r, err, "the row has %zu field%s, the header has %d", r->f.n, r->f.n == 1 ? "" : "s",
                       r->n_cols);
    size_t tn, ln = 0;
    const char *text = field_at(&r->f, r->text_col, &tn), *label = NULL;
    if (r->label_col >= 0) label = field_at(&r->f, r->label_col, &ln);
    return take_row(r, text, tn, label, ln, "no label in", err);
}

static ss_status read_table(reader *r, ss_error *err) {
    ss_status st = read_header(r, err);
    for (int eof = 0; !st;) {
        if ((st = table_record(r, &eof, err)) || eof) break;
        st = table_row(r, err);
    }
    return st;
}

/* ---- JSONL ----------------------------------------------------------------- */

/* The shortest decimal that reads back as x ("1", "2.5", "1e+300"); integers
 * below 2^53 in full ("100", not "1e+02"). */
static void number_text(double x, char *buf, size_t cap) {
    if (x == floor(x) && fabs(x) < 0x1p53) {
        snprintf(buf, cap, "%.0f", x + 0.0); /* + 0.0 turns -0 into 0 */
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static ss_status json_row(reader *r, const cJSON *o, ss_error *err) {
    if (!cJSON_IsObject(o)) return bad_row(r, err, "not a JSON object");
    if (!r->text_key) { /* no key named: the first object's 'text' or 'sentence' fixes it for the file */
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, TEXT_KEY_A);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, TEXT_KEY_B);
        if (a && b)
            return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: the object has both a '" TEXT_KEY_A "' and a '" TEXT_KEY_B
                           "' field: name the text field (--text-column)", r->name, (long long)r->rec_line);
        if (!a && !b) return bad_row(r, err, "no text field '" TEXT_KEY_A "' or '" TEXT_KEY_B "' in the object");
        r->text_key = a ? TEXT_KEY_A : TEXT_KEY_B;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, r->text_key);
    if (!t) return bad_row(r, err, "no text field '%s' in the object", r->text_key);
    if (!cJSON_IsString(t)) return bad_row(r, err, "field '%s' (the text) is not a string", r->text_key);
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, r->label_key);
    const char *label = NULL, *no_label = "no label: missing";
    char num[32];
    if (cJSON_IsString(l)) label = l->valuestring;
    else if (cJSON_IsBool(l)) label = cJSON_IsTrue(l) ? "true" : "false";
    else if (cJSON_IsNumber(l)) number_text(l->valuedouble, num, sizeof num), label = num;
    else if (cJSON_IsNull(l)) no_label = "no label: null in";
    else if (l) return bad_row(r, err, "field '%s' (the label) must be a string, number or bool", r->label_key);
    return take_row(r, t->valuestring, strlen(t->valuestring), label, label ? strlen(label) : 0, no_label, err);
}

/* One object per non-blank line. */
static ss_status read_jsonl(reader *r, ss_error *err) {
    const char *s;
    size_t n = 0, term;
    ss_status st;
    for (;;) {
        if ((st = next_line(r, &s, &n, &term, err)) || !s) return st;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
        if (k == n) continue;
        r->rec_line = r->line;
        if (memchr(s, '\0', n)) {
            char q[4 * QUOTE_MAX + 8];
            if ((st = bad_row(r, err, "a NUL byte in the line ('%s')", ss_quote_bytes(q, sizeof q, s, n, QUOTE_MAX))))
                return st;
            continue;
        }
        /* cJSON needs a NUL-terminated copy (the line is not terminated) */
        r->f.bytes.len = 0;
        if ((st = ss_buf_append(&r->f.bytes, s, n, err))) return st;
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithOpts(r->f.bytes.data, &end, 1);
        if (!o) {
            size_t at = end ? (size_t)(end - r->f.bytes.data) + 1 : 0;
            char q[4 * QUOTE_MAX + 8];
            st = bad_row(r, err, "invalid JSON (at byte %zu of the line '%s')", at, ss_quote_bytes(q, sizeof q, s, n, QUOTE_MAX));
        } else {
            st = json_row(r, o, err);
        }
        cJSON_Delete(o);
        if (st) return st;
    }
}

/* ---- the public functions ---------------------------------------------------- */

static ss_table_format format_from_name(const char *path) {
    static const struct {
        const char *ext;
        ss_table_format fmt;
    } exts[] = {{".tsv", SS_FMT_TSV}, {".csv", SS_FMT_CSV}, {".jsonl", SS_FMT_JSONL}, {".ndjson", SS_FMT_JSONL}};
    size_t n = strlen(path);
    if (n > 4 && strcasecmp(path + n - 4, ".zst") == 0) n -= 4;
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
        size_t e = strlen(exts[i].ext);
        if (n > e && strncasecmp(path + n - e, exts[i].ext, e) == 0) return exts[i].fmt;
    }
    return SS_FMT_AUTO;
}

ss_status ss_labeled_read(ss_labeled_set *out, const char *path, const ss_labeled_opts *o, ss_error *err) {
    static const ss_labeled_opts defaults = {0};
    memset(out, 0, sizeof *out);
    if (!o) o = &defaults;
    reader r = {.name = path, .o = o, .out = out, .fmt = o->format, .label_col = -1};
    r.text_key = o->text_column; /* NULL: picked from the header or the first object */
    r.label_key = o->label_column ? o->label_column : "label";
    if (r.fmt == SS_FMT_AUTO && (r.fmt = format_from_name(path)) == SS_FMT_AUTO)
        return ss_fail(err, SS_ERR_ARG, "%s: cannot tell the format from the name: expected .tsv, .csv, .jsonl "
                       "or .ndjson (optionally + .zst), or give the format", path);
    if (r.fmt != SS_FMT_TSV && r.fmt != SS_FMT_CSV && r.fmt != SS_FMT_JSONL)
        return ss_fail(err, SS_ERR_ARG, "%s: unknown table format %d", path, (int)r.fmt);
    ss_status st = ss_textstream_open(&r.ts, path, err);
    if (st) return st;
    r.name = ss_textstream_path(r.ts);
    st = r.fmt == SS_FMT_JSONL ? read_jsonl(&r, err) : read_table(&r, err);
    ss_textstream_close(r.ts);
    ss_buf_free(&r.f.bytes);
    free(r.f.start);
    for (int i = 0; i < r.n_cols; i++) free(r.cols[i]);
    free(r.cols);
    if (st) ss_labeled_free(out);
    return st;
}

void ss_labeled_free(ss_labeled_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->texts[i]);
        free(s->labels[i]);
    }
    free(s->texts);
    free(s->labels);
    free(s->lines);
    memset(s, 0, sizeof *s);
}

/* Fisher-Yates run forwards: position i takes a uniform pick of the rows not
 * yet placed. Stopping after n positions gives the same first n rows as the
 * full shuffle, so for one seed the subsets are nested (100 rows within the
 * 1,000), which keeps label-efficiency curves comparable. */
void ss_labeled_subsample(ss_labeled_set *s, size_t n, uint64_t seed) {
    ss_rng rng;
    ss_rng_seed(&rng, seed);
    size_t keep = n < s->n ? n : s->n;
    for (size_t i = 0; i < keep && i + 1 < s->n; i++) {
        size_t j = i + (size_t)ss_rng_below(&rng, s->n - i);
        char *t = s->texts[i], *l = s->labels[i];
        int64_t li = s->lines[i];
        s->texts[i] = s->texts[j], s->labels[i] = s->labels[j], s->lines[i] = s->lines[j];
        s->texts[j] = t, s->labels[j] = l, s->lines[j] = li;
    }
    for (size_t i = keep; i < s->n; i++) {
        free(s->texts[i]);
        free(s->labels[i]);
    }
    s->n = keep;
}
