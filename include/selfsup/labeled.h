/* Labelled text for fine-tuning: TSV, CSV and JSONL files (chosen by the
 * extension, after an optional .zst), one (text, label) row each, labels as
 * strings; and the label map that turns them into class ids. */
#ifndef SELFSUP_LABELED_H
#define SELFSUP_LABELED_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

typedef enum { SS_FMT_AUTO = 0, SS_FMT_TSV, SS_FMT_CSV, SS_FMT_JSONL } ss_table_format;

typedef struct {
    const char *text_column, *label_column; /* the columns (JSONL: keys); NULL: "label", and for the
                                               text "text" or "sentence", whichever the header (the
                                               first JSONL object) has: both is SS_ERR_FORMAT */
    ss_table_format format;                 /* AUTO: .tsv .csv .jsonl/.ndjson (+ .zst), any case */
    int skip_bad_rows;                      /* 0: the first malformed row is an error */
    int need_label;                         /* 0: the label column may be absent, a label empty */
} ss_labeled_opts;

typedef struct {
    size_t n;                 /* rows read */
    char **texts, **labels;   /* n each (labels[i] NULL when the row has no label: no label
                                 column, an empty cell, a JSON null or missing key) */
    int64_t *lines;           /* the 1-based line each row started on */
    size_t n_bad;             /* malformed rows skipped (skip_bad_rows) */
    char first_bad[512];      /* "FILE:LINE: reason" of the first one skipped (cut to fit) */
} ss_labeled_set;

/* Read PATH (plain or zstd, detected by content; "-" is stdin and needs a
 * format). TSV and CSV need a header row naming the columns: the text
 * column, and the label column when need_label, missing from it (or there
 * twice) is SS_ERR_FORMAT listing the columns there are. CSV follows RFC 4180: quoted fields may hold commas, quotes
 * ("") and line breaks (kept as in the file; a row's line is the one it
 * starts on); a quote inside an unquoted field is kept as text, text after
 * a closing quote is malformed. TSV fields are split on tabs with no
 * quoting. JSONL has one object per line: the text a string, the label a
 * string, number (its shortest decimal: 1 -> "1", 2.5 -> "2.5") or bool
 * ("true", "false"). In every format blank lines are ignored, a trailing
 * '\r' (CRLF files) and a UTF-8 BOM are dropped. A malformed row (wrong
 * field count, empty text, invalid UTF-8 or a NUL byte, unterminated quote,
 * bad JSON or a key of the wrong type, no label when need_label) stops with
 * SS_ERR_FORMAT "FILE:LINE: reason" naming the column or key, or is skipped
 * and counted with skip_bad_rows. A name whose extension tells no format
 * (with AUTO) is SS_ERR_ARG, an unreadable file SS_ERR_IO. o NULL: all
 * defaults. On error *out is left empty. Linear time and memory. */
ss_status ss_labeled_read(ss_labeled_set *out, const char *path, const ss_labeled_opts *o, ss_error *err);
void ss_labeled_free(ss_labeled_set *s);
/* Keep the first n rows of a seeded Fisher-Yates shuffle, texts, labels and
 * lines together (n >= s->n keeps every row, shuffled), and free the rest:
 * label-efficiency runs. For one seed a smaller n keeps a prefix of what a
 * larger n keeps, so the subsets are nested. */
void ss_labeled_subsample(ss_labeled_set *s, size_t n, uint64_t seed);

/* Class names in id order. Built from the training labels: the distinct
 * strings sorted, numerically when all are integers ("-1" < "2" < "10";
 * distinct strings of one value, "1" and "01", stay two classes), else
 * bytewise (strcmp). */
typedef struct {
    int n;
    char **names;
} ss_label_map;

/* Rows without a label are passed over; fewer than 2 distinct labels is
 * SS_ERR_FORMAT naming PATH. */
ss_status ss_label_map_build(ss_label_map *m, const ss_labeled_set *s, const char *path, ss_error *err);
/* -1 when absent (or label NULL). */
int ss_label_map_find(const ss_label_map *m, const char *label);
/* ids[i] for every row of s; a label the map lacks is SS_ERR_FORMAT
 * "PATH:LINE: label 'x' is not one of the training labels: 0, 1", and so is
 * a row with no label. */
ss_status ss_label_map_apply(const ss_label_map *m, const ss_labeled_set *s, const char *path, int32_t *ids,
                             ss_error *err);
/* Keep per_class rows of each of m's classes and free the rest: of each
 * class the first rows of ss_labeled_subsample's seeded shuffle, in that
 * order, so for one seed a smaller per_class keeps a subset of a larger
 * one's rows (balanced few-shot sets: LM-BFF's 16 per class). Rows whose
 * label m lacks are not kept. A class with fewer than per_class rows is
 * SS_ERR_ARG naming it, PATH and its count, s unchanged. */
ss_status ss_labeled_subsample_per_class(ss_labeled_set *s, const ss_label_map *m, size_t per_class, uint64_t seed,
                                         const char *path, ss_error *err);
/* JSON array text of the names (malloc'd, NULL when out of memory), and
 * back: at least 2 distinct non-empty strings, else SS_ERR_FORMAT naming
 * `source`. */
char *ss_label_map_to_json(const ss_label_map *m);
ss_status ss_label_map_from_json(ss_label_map *m, const char *json, const char *source, ss_error *err);
void ss_label_map_free(ss_label_map *m);

#endif
