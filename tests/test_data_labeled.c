/* Labelled tables: TSV, CSV and JSONL read into (text, label, line) rows;
 * every kind of malformed row in each format gives SS_ERR_FORMAT with the
 * exact FILE:LINE, or is skipped and counted; CSV quoting (commas, quotes,
 * line breaks), CRLF, BOM and zstd input; the real SST-2 training file; the
 * label map (sorting, lookups, JSON); seeded subsampling. */
#include "testutil.h"

#include <zstd.h>

#include "selfsup/io.h"
#include "selfsup/labeled.h"

static const char *tmp;

static int setup(void **state) {
    (void)state;
    tmp = test_tmpdir();
    return 0;
}

/* Write N bytes to tmp/NAME; the path is returned in a static ring of buffers. */
static const char *write_named(const char *name, const char *data, size_t n) {
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", tmp, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return p;
}

/* One zstd frame of data[0..n) at tmp/NAME (with the content checksum, as
 * the zstd tool writes by default). */
static const char *write_zstd(const char *name, const char *data, size_t n) {
    size_t cap = ZSTD_compressBound(n);
    char *z = malloc(cap);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    size_t r = ZSTD_compress2(c, z, cap, data, n);
    ZSTD_freeCCtx(c);
    assert_false(ZSTD_isError(r));
    const char *p = write_named(name, z, r);
    free(z);
    return p;
}

static void read_ok(ss_labeled_set *s, const char *path, const ss_labeled_opts *o) {
    ss_error err = {0};
    CHECK_OK(ss_labeled_read(s, path, o, &err), &err);
}

/* Row i is (text, label, line); label NULL: no label. */
static void expect_row(const ss_labeled_set *s, size_t i, const char *text, const char *label, int64_t line) {
    assert_true(i < s->n);
    assert_string_equal(s->texts[i], text);
    if (label) {
        assert_non_null(s->labels[i]);
        assert_string_equal(s->labels[i], label);
    } else {
        assert_null(s->labels[i]);
    }
    assert_int_equal(s->lines[i], line);
}

/* ---- malformed rows, per format --------------------------------------------------- */

typedef struct {
    const char *name;    /* file name (its extension picks the format) */
    const char *data;
    size_t len;
    int line;            /* the line the bad row starts on */
    const char *why;     /* what follows "FILE:LINE: " (exactly) */
    size_t good;         /* rows read when the bad one is skipped */
} bad_case;

#define BAD(name, data, line, why, good) {name, data, sizeof(data) - 1, line, why, good}

static const bad_case bad_cases[] = {
    /* TSV */
    BAD("f.tsv", "sentence\tlabel\ngood\t1\ntoo\tmany\tfields\ngood\t0\n", 3,
        "the row has 3 fields, the header has 2", 2),
    BAD("f.tsv", "sentence\tlabel\ngood\t1\njust text\n", 3, "the row has 1 field, the header has 2", 1),
    BAD("f.tsv", "sentence\tlabel\ngood\t1\n\t0\n", 3, "empty text in column 'sentence'", 1),
    BAD("f.tsv", "sentence\tlabel\ngood\t1\nbad \xff byte\t0\ngood\t0\n", 3,
        "invalid UTF-8 in column 'sentence'", 2),
    BAD("f.tsv", "sentence\tlabel\ngood\t1\noverlong \xc0\xaf\t0\n", 3, "invalid UTF-8 in column 'sentence'", 1),
    BAD("f.tsv", "sentence\tlabel\ngood\t\xc3\n", 2, "invalid UTF-8 in column 'label'", 0),
    BAD("f.tsv", "sentence\tlabel\ngood\t1\nno label\t\n", 3, "empty label in column 'label'", 1),
    BAD("f.tsv", "sentence\tlabel\na\0b\t1\ngood\t1\n", 2, "a NUL byte in column 'sentence'", 1),
    /* blank lines are skipped but counted */
    BAD("f.tsv", "sentence\tlabel\n\n\ngood\t1\n\nbad\n", 6, "the row has 1 field, the header has 2", 1),
    BAD("f.tsv", "\xEF\xBB\xBFsentence\tlabel\r\ngood\t1\r\nbad\r\n", 3, "the row has 1 field, the header has 2",
        1),
    /* CSV */
    BAD("f.csv", "sentence,label\ngood,1\na,b,c\n", 3, "the row has 3 fields, the header has 2", 1),
    BAD("f.csv", "sentence,label\ngood,1\n,1\n", 3, "empty text in column 'sentence'", 1),
    BAD("f.csv", "sentence,label\ngood,1\n\"\",1\n", 3, "empty text in column 'sentence'", 1),
    BAD("f.csv", "sentence,label\n\"a \xed\xa0\x80 surrogate\",1\ngood,0\n", 2,
        "invalid UTF-8 in column 'sentence'", 1),
    BAD("f.csv", "sentence,label\ngood,\"\xf8\"\n", 2, "invalid UTF-8 in column 'label'", 0),
    BAD("f.csv", "sentence,label\ngood,1\n\"never closed,1\nmore,0\n", 3,
        "unterminated quoted field in column 'sentence': no closing quote before the end of the file", 1),
    BAD("f.csv", "sentence,label\ngood,\"1\nmore,0\n", 2,
        "unterminated quoted field in column 'label': no closing quote before the end of the file", 0),
    BAD("f.csv", "sentence,label\ngood,1\n\"quoted\"tail,1\ngood,0\n", 3,
        "text after the closing quote in column 'sentence'", 2),
    BAD("f.csv", "sentence,label\ngood,1\nx,\"1\"x\"\",y\n", 3, "text after the closing quote in column 'label'",
        1),
    BAD("f.csv", "sentence,label\ngood,1\nno label,\n", 3, "empty label in column 'label'", 1),
    /* the row after a two-line quoted field starts on line 4 */
    BAD("f.csv", "sentence,label\n\"two\nlines\",1\nbad,row,here\ngood,0\n", 4,
        "the row has 3 fields, the header has 2", 2),
    /* a bad row that itself spans lines is reported at its first line */
    BAD("f.csv", "sentence,label\ngood,1\n\"two\nlines\",1,extra\ngood,0\n", 3,
        "the row has 3 fields, the header has 2", 2),
    BAD("f.csv", "sentence,label\r\ngood,1\r\n\r\n\"x\r\ny\",1,2\r\n", 4, "the row has 3 fields, the header has 2",
        1),
    /* JSONL */
    BAD("f.jsonl", "{\"sentence\":\"ok\",\"label\":1}\nnot json\n", 2, "invalid JSON (at byte 1 of the line 'not json')", 1),
    BAD("f.jsonl", "{\"sentence\":\"ok\",\"label\":1} trailing\n", 1,
        "invalid JSON (at byte 29 of the line '{\"sentence\":\"ok\",\"label\":1} trailing')", 0),
    BAD("f.jsonl", "{\"sentence\":\"ok\",\"label\":1}\n\n  \n{\"sentence\":\"cut\n{\"sentence\":\"b\",\"label\":0}\n", 4,
        "invalid JSON (at byte 14 of the line '{\"sentence\":\"cut')", 2), /* cJSON points just inside the open string */
    BAD("f.jsonl", "[1, 2]\n{\"sentence\":\"ok\",\"label\":1}\n", 1, "not a JSON object", 1),
    BAD("f.jsonl", "{\"sentence\":\"ok\",\"label\":1}\n\"a string\"\n", 2, "not a JSON object", 1),
    BAD("f.jsonl", "{\"review\":\"x\",\"label\":1}\n", 1, "no text field 'text' or 'sentence' in the object", 0),
    /* the first object fixes the text key for the file */
    BAD("f.jsonl", "{\"sentence\":\"ok\",\"label\":1}\n{\"text\":\"x\",\"label\":0}\n", 2,
        "no text field 'sentence' in the object", 1),
    BAD("f.jsonl", "{\"sentence\":5,\"label\":1}\n", 1, "field 'sentence' (the text) is not a string", 0),
    BAD("f.jsonl", "{\"sentence\":null,\"label\":1}\n", 1, "field 'sentence' (the text) is not a string", 0),
    BAD("f.jsonl", "{\"sentence\":\"x\",\"label\":[1]}\n", 1,
        "field 'label' (the label) must be a string, number or bool", 0),
    BAD("f.jsonl", "{\"sentence\":\"x\",\"label\":{}}\n", 1,
        "field 'label' (the label) must be a string, number or bool", 0),
    BAD("f.jsonl", "{\"sentence\":\"ok\",\"label\":1}\n{\"sentence\":\"x\"}\n", 2, "no label: missing field 'label'",
        1),
    BAD("f.jsonl", "{\"sentence\":\"x\",\"label\":null}\n", 1, "no label: null in field 'label'", 0),
    BAD("f.jsonl", "{\"sentence\":\"x\",\"label\":\"\"}\n", 1, "empty label in field 'label'", 0),
    BAD("f.jsonl", "{\"sentence\":\"\",\"label\":1}\n", 1, "empty text in field 'sentence'", 0),
    BAD("f.jsonl", "{\"sentence\":\"\xe2\x82\",\"label\":1}\n", 1, "invalid UTF-8 in field 'sentence'", 0),
    BAD("f.ndjson", "{\"sentence\":\"ok\",\"label\":\"\xff\"}\n", 1, "invalid UTF-8 in field 'label'", 0),
    BAD("f.jsonl", "{\"sentence\":\"a\0\",\"label\":1}\n", 1,
        "a NUL byte in the line ('{\"sentence\":\"a\\x00\",\"label\":1}')", 0),
};

/* The message is exactly "PATH:LINE: WHY". */
static void expect_message(const char *msg, const char *path, int line, const char *why) {
    char want[1024];
    snprintf(want, sizeof want, "%s:%d: %s", path, line, why);
    if (strcmp(msg, want) != 0) fail_msg("message\n  %s\nwanted\n  %s", msg, want);
}

static void run_bad_case(const bad_case *c, const char *path) {
    ss_labeled_opts o = {.need_label = 1};
    ss_labeled_set s;
    ss_error err = {0};
    assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, c->line, c->why);
    assert_int_equal(s.n, 0); /* nothing is left allocated on error */
    assert_null(s.texts);

    o.skip_bad_rows = 1;
    read_ok(&s, path, &o);
    assert_int_equal(s.n, c->good);
    assert_int_equal(s.n_bad, 1);
    expect_message(s.first_bad, path, c->line, c->why);
    for (size_t i = 0; i < s.n; i++) {
        assert_non_null(s.labels[i]);
        assert_true(strlen(s.texts[i]) > 0);
    }
    ss_labeled_free(&s);
}

static void test_bad_rows(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const bad_case *c = &bad_cases[i];
        print_message("case %zu: %s\n", i, c->why);
        run_bad_case(c, write_named(c->name, c->data, c->len));
        /* the same file compressed, named with .zst */
        char zname[64];
        snprintf(zname, sizeof zname, "%s.zst", c->name);
        run_bad_case(c, write_zstd(zname, c->data, c->len));
    }
}

/* Several bad rows: all counted, the first one's message kept, the good
 * rows keep their own line numbers. */
static void test_skip_counts(void **state) {
    (void)state;
    const char data[] = "sentence,label\n"
                        "one,1\n"
                        "a,b,c\n"          /* 3: field count */
                        "\"multi\nline\",0\n" /* 4-5: good */
                        ",1\n"             /* 6: empty text */
                        "two,\n"           /* 7: empty label */
                        "three,0\n"        /* 8 */
                        "\"x\"y,1\n";      /* 9: text after the quote */
    const char *path = write_named("skip.csv", data, sizeof data - 1);
    ss_labeled_opts o = {.need_label = 1, .skip_bad_rows = 1};
    ss_labeled_set s;
    read_ok(&s, path, &o);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.n_bad, 4);
    expect_message(s.first_bad, path, 3, "the row has 3 fields, the header has 2");
    expect_row(&s, 0, "one", "1", 2);
    expect_row(&s, 1, "multi\nline", "0", 4);
    expect_row(&s, 2, "three", "0", 8);
    ss_labeled_free(&s);

    /* without need_label the empty label is a row with no label */
    o.need_label = 0;
    read_ok(&s, path, &o);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.n_bad, 3);
    expect_row(&s, 2, "two", NULL, 7);
    ss_labeled_free(&s);
}

/* ---- well-formed input -------------------------------------------------------------- */

static void test_tsv(void **state) {
    (void)state;
    /* BOM, CRLF, blank lines, quotes kept literally, a last line without '\n' */
    const char data[] = "\xEF\xBB\xBFsentence\tlabel\r\n"
                        "a \"quoted\" word\t1\r\n"
                        "\r\n"
                        "caf\xc3\xa9 , \xe2\x82\xac 5\t0\r\n"
                        "trailing spaces  \t  pos \r\n"
                        "last\t1";
    const char *path = write_named("ok.tsv", data, sizeof data - 1);
    ss_labeled_set s;
    read_ok(&s, path, NULL);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.n_bad, 0);
    expect_row(&s, 0, "a \"quoted\" word", "1", 2);
    expect_row(&s, 1, "caf\xc3\xa9 , \xe2\x82\xac 5", "0", 4);
    expect_row(&s, 2, "trailing spaces  ", "  pos ", 5);
    expect_row(&s, 3, "last", "1", 6);
    ss_labeled_free(&s);

    /* no label column: fine unless labels are needed */
    const char nolabel[] = "sentence\nonly text\nmore text\n";
    path = write_named("nolabel.tsv", nolabel, sizeof nolabel - 1);
    read_ok(&s, path, NULL);
    assert_int_equal(s.n, 2);
    expect_row(&s, 1, "more text", NULL, 3);
    ss_labeled_free(&s);
    ss_labeled_opts o = {.need_label = 1};
    ss_error err = {0};
    assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 1, "no label column 'label' in the header; its columns are: 'sentence'");
}

static void test_csv_quoting(void **state) {
    (void)state;
    const char data[] = "\"sentence\",label\r\n"
                        "\"a, b\",1\r\n"
                        "\"say \"\"hi\"\"\",0\r\n"
                        "\"line one\r\nline two\",1\r\n" /* 4-5 */
                        "after,0\r\n"                    /* 6 */
                        "\"\n\n\",1\n"                    /* 7-9: only line breaks */
                        "\"\"\"\",0\n"                    /* 10: one quote */
                        "an un\"quoted quote,1\n"        /* 11: kept as is */
                        "\"x\",\"\"\n"                   /* 12: empty quoted label */
                        "last,\"1\"";                    /* 13 */
    const char *path = write_named("q.csv", data, sizeof data - 1);
    ss_labeled_set s;
    read_ok(&s, path, NULL);
    assert_int_equal(s.n, 9);
    expect_row(&s, 0, "a, b", "1", 2);
    expect_row(&s, 1, "say \"hi\"", "0", 3);
    expect_row(&s, 2, "line one\r\nline two", "1", 4);
    expect_row(&s, 3, "after", "0", 6);
    expect_row(&s, 4, "\n\n", "1", 7);
    expect_row(&s, 5, "\"", "0", 10);
    expect_row(&s, 6, "an un\"quoted quote", "1", 11);
    expect_row(&s, 7, "x", NULL, 12);
    expect_row(&s, 8, "last", "1", 13);
    ss_labeled_free(&s);
}

static void test_columns_by_name(void **state) {
    (void)state;
    const char csv[] = "id,text,polarity,source\n7,first,pos,web\n8,\"second, longer\",neg,\n";
    const char *path = write_named("cols.csv", csv, sizeof csv - 1);
    ss_labeled_opts o = {.text_column = "text", .label_column = "polarity", .need_label = 1};
    ss_labeled_set s;
    read_ok(&s, path, &o);
    assert_int_equal(s.n, 2);
    expect_row(&s, 0, "first", "pos", 2);
    expect_row(&s, 1, "second, longer", "neg", 3);
    ss_labeled_free(&s);
    o.label_column = "source"; /* a label column with an empty cell */
    ss_error err = {0};
    assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 3, "empty label in column 'source'");

    /* missing columns are named with the ones that exist */
    o = (ss_labeled_opts){.text_column = "sentence"};
    assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 1,
                   "no text column 'sentence' in the header; its columns are: 'id', 'text', 'polarity', 'source'");
    o = (ss_labeled_opts){.text_column = "text", .label_column = "stars", .need_label = 1};
    assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 1,
                   "no label column 'stars' in the header; its columns are: 'id', 'text', 'polarity', 'source'");
    const char tsv[] = "\n\nlabel\tsentence\tlabel\n1\tx\t1\n";
    path = write_named("dup.tsv", tsv, sizeof tsv - 1);
    assert_int_equal(ss_labeled_read(&s, path, NULL, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 3, "column 'label' appears twice in the header");

    /* JSONL keys by name too */
    const char jsonl[] = "{\"review\":\"good film\",\"stars\":5,\"label\":\"x\"}\n";
    path = write_named("keys.jsonl", jsonl, sizeof jsonl - 1);
    o = (ss_labeled_opts){.text_column = "review", .label_column = "stars", .need_label = 1};
    read_ok(&s, path, &o);
    assert_int_equal(s.n, 1);
    expect_row(&s, 0, "good film", "5", 1);
    ss_labeled_free(&s);
}

/* No text column named: 'text' (Hugging Face datasets) or 'sentence'
 * (GLUE), whichever the file has, in every format; both is an error. */
static void test_default_text_column(void **state) {
    (void)state;
    static const struct {
        const char *name, *data, *first; /* the first row's text */
        int line;                         /* the first row's line */
    } files[] = {
        {"hf.tsv", "label\ttext\n1\tgood film\n0\tbad film\n", "good film", 2},
        {"hf.csv", "text,label\n\"good, film\",1\nbad film,0\n", "good, film", 2},
        {"hf.jsonl", "{\"text\":\"good film\",\"label\":1}\n{\"label\":0,\"text\":\"bad film\"}\n", "good film", 1},
        {"glue.tsv", "sentence\tlabel\ngood film\t1\nbad film\t0\n", "good film", 2},
        {"glue.jsonl", "{\"sentence\":\"good film\",\"label\":1}\n{\"sentence\":\"bad film\",\"label\":0}\n",
         "good film", 1},
    };
    ss_labeled_opts o = {.need_label = 1};
    ss_labeled_set s;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        print_message("%s\n", files[i].name);
        read_ok(&s, write_named(files[i].name, files[i].data, strlen(files[i].data)), &o);
        assert_int_equal(s.n, 2);
        expect_row(&s, 0, files[i].first, "1", files[i].line);
        expect_row(&s, 1, "bad film", "0", files[i].line + 1);
        ss_labeled_free(&s);
    }

    /* both: the caller must choose (even with skip_bad_rows: the whole file is concerned) */
    ss_error err = {0};
    const char both[] = "text,sentence,label\na,b,1\n";
    const char *path = write_named("both.csv", both, sizeof both - 1);
    assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 1,
                   "the header has both a 'text' and a 'sentence' column: name the text column (--text-column)");
    o.text_column = "sentence";
    read_ok(&s, path, &o);
    expect_row(&s, 0, "b", "1", 2);
    ss_labeled_free(&s);
    o = (ss_labeled_opts){.need_label = 1, .skip_bad_rows = 1};
    const char both_json[] = "\n{\"text\":\"a\",\"sentence\":\"b\",\"label\":1}\n";
    path = write_named("both.jsonl", both_json, sizeof both_json - 1);
    assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 2,
                   "the object has both a 'text' and a 'sentence' field: name the text field (--text-column)");

    /* neither: the header's columns are listed */
    const char neither[] = "id\treview\tlabel\n1\tx\t0\n";
    path = write_named("neither.tsv", neither, sizeof neither - 1);
    assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 1,
                   "no text column 'text' or 'sentence' in the header (or name it: --text-column); its columns "
                   "are: 'id', 'review', 'label'");
    /* a JSONL row with neither is a bad row (skipped here); the next one fixes the key */
    const char skip[] = "{\"review\":\"x\",\"label\":1}\n{\"text\":\"y\",\"label\":0}\n";
    path = write_named("skip.jsonl", skip, sizeof skip - 1);
    read_ok(&s, path, &o);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.n_bad, 1);
    expect_row(&s, 0, "y", "0", 2);
    ss_labeled_free(&s);
}

static void test_jsonl_labels(void **state) {
    (void)state;
    const char data[] = "\xEF\xBB\xBF{\"sentence\":\"int\",\"label\":1}\r\n"
                        "\n"
                        "   \n"
                        "{\"label\":2.5,\"sentence\":\"half\"}\n"
                        "{\"sentence\":\"hundred\",\"label\":100}\n"
                        "{\"sentence\":\"float int\",\"label\":3.0}\n"
                        "{\"sentence\":\"neg\",\"label\":-7}\n"
                        "{\"sentence\":\"tenth\",\"label\":0.1}\n"
                        "{\"sentence\":\"big\",\"label\":1e300}\n"
                        "{\"sentence\":\"yes\",\"label\":true}\n"
                        "{\"sentence\":\"no\",\"label\":false}\n"
                        "{\"sentence\":\"str\",\"label\":\"positive\",\"extra\":[1,{}]}\n"
                        "{\"sentence\":\"esc \\\"q\\\" \\u00e9\\n\",\"label\":\"\\u20ac\"}\n"
                        "{\"sentence\":\"unlabelled\"}\n"
                        "{\"sentence\":\"null label\",\"label\":null}";
    const char *path = write_named("labels.jsonl", data, sizeof data - 1);
    ss_labeled_set s;
    read_ok(&s, path, NULL);
    assert_int_equal(s.n, 13);
    expect_row(&s, 0, "int", "1", 1);
    expect_row(&s, 1, "half", "2.5", 4);
    expect_row(&s, 2, "hundred", "100", 5);
    expect_row(&s, 3, "float int", "3", 6);
    expect_row(&s, 4, "neg", "-7", 7);
    expect_row(&s, 5, "tenth", "0.1", 8);
    expect_row(&s, 6, "big", "1e+300", 9);
    expect_row(&s, 7, "yes", "true", 10);
    expect_row(&s, 8, "no", "false", 11);
    expect_row(&s, 9, "str", "positive", 12);
    expect_row(&s, 10, "esc \"q\" \xc3\xa9\n", "\xe2\x82\xac", 13);
    expect_row(&s, 11, "unlabelled", NULL, 14);
    expect_row(&s, 12, "null label", NULL, 15);
    ss_labeled_free(&s);
}

/* The same rows from plain and zstd files, and through a format override. */
static void test_zstd_and_formats(void **state) {
    (void)state;
    const char csv[] = "sentence,label\n\"multi\nline\",1\nplain,0\n";
    ss_labeled_set a, b;
    read_ok(&a, write_named("z.csv", csv, sizeof csv - 1), NULL);
    read_ok(&b, write_zstd("z.CSV.zst", csv, sizeof csv - 1), NULL);
    assert_int_equal(a.n, 2);
    assert_int_equal(b.n, 2);
    for (size_t i = 0; i < a.n; i++) expect_row(&b, i, a.texts[i], a.labels[i], a.lines[i]);
    ss_labeled_free(&a);
    ss_labeled_free(&b);

    /* a .txt name needs the format; the zstd magic is found without a .zst */
    const char *path = write_zstd("table.txt", csv, sizeof csv - 1);
    ss_error err = {0};
    assert_int_equal(ss_labeled_read(&a, path, NULL, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, path));
    ss_labeled_opts o = {.format = SS_FMT_CSV};
    read_ok(&a, path, &o);
    expect_row(&a, 0, "multi\nline", "1", 2);
    ss_labeled_free(&a);
    o.format = SS_FMT_TSV; /* the same bytes as TSV: one column "sentence,label" */
    assert_int_equal(ss_labeled_read(&a, path, &o, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 1, "no text column 'text' or 'sentence' in the header (or name it: --text-column); "
                   "its columns are: 'sentence,label'");

    /* empty files, missing files */
    path = write_named("empty.tsv", "\xEF\xBB\xBF\n\n", 5);
    assert_int_equal(ss_labeled_read(&a, path, NULL, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "header row"));
    read_ok(&a, write_named("empty.jsonl", "", 0), NULL);
    assert_int_equal(a.n, 0);
    ss_labeled_free(&a);
    char missing[512];
    snprintf(missing, sizeof missing, "%s/none.tsv", tmp);
    assert_int_equal(ss_labeled_read(&a, missing, NULL, &err), SS_ERR_IO);
    assert_non_null(strstr(err.msg, missing));
    /* a corrupt zstd file is a format error naming it */
    ss_buf z = {0};
    CHECK_OK(ss_read_file(write_zstd("c.tsv.zst", csv, sizeof csv - 1), &z, &err), &err);
    z.data[z.len - 2] ^= 0x55;
    path = write_named("c.tsv.zst", z.data, z.len);
    ss_buf_free(&z);
    assert_int_equal(ss_labeled_read(&a, path, NULL, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, path));
}

/* Big inputs read in linear time: a 400,000-line quoted CSV field and
 * 60,000 TSV rows (quadratic joining or growth would take minutes here). */
static void test_big_inputs(void **state) {
    (void)state;
    ss_buf b = {0};
    ss_error err = {0};
    CHECK_OK(ss_buf_append(&b, "sentence,label\n\"", 16, &err), &err);
    for (int i = 0; i < 400000; i++) CHECK_OK(ss_buf_append(&b, "word\n", 5, &err), &err);
    CHECK_OK(ss_buf_append(&b, "end\",1\nnext,0\n", 14, &err), &err);
    ss_labeled_set s;
    read_ok(&s, write_named("big.csv", b.data, b.len), NULL);
    assert_int_equal(s.n, 2);
    assert_int_equal(strlen(s.texts[0]), 400000 * 5 + 3);
    expect_row(&s, 1, "next", "0", 400003);
    ss_labeled_free(&s);

    b.len = 0;
    CHECK_OK(ss_buf_append(&b, "sentence\tlabel\n", 15, &err), &err);
    for (int i = 0; i < 60000; i++) {
        char row[64];
        int n = snprintf(row, sizeof row, "row %d text\t%d\n", i, i % 3);
        CHECK_OK(ss_buf_append(&b, row, (size_t)n, &err), &err);
    }
    read_ok(&s, write_named("big.tsv", b.data, b.len), NULL);
    assert_int_equal(s.n, 60000);
    expect_row(&s, 59999, "row 59999 text", "2", 60001);
    ss_labeled_free(&s);
    ss_buf_free(&b);
}

/* ---- the real SST-2 training file --------------------------------------------------- */

static void check_sst2(const ss_labeled_set *s) {
    assert_int_equal(s->n, 6920);
    assert_int_equal(s->n_bad, 0);
    expect_row(s, 0,
               "a stirring , funny and finally transporting re-imagining of beauty and the beast and 1930s "
               "horror films",
               "1", 2);
    assert_int_equal(s->lines[s->n - 1], 6921);
    size_t zeros = 0, ones = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->labels[i], "0") == 0) zeros++;
        else if (strcmp(s->labels[i], "1") == 0) ones++;
        else fail_msg("row %zu: label '%s'", i, s->labels[i]);
    }
    assert_int_equal(zeros, 3310);
    assert_int_equal(ones, 3610);
}

static void test_sst2(void **state) {
    (void)state;
    const char *path = test_data_path("sst2", "train.tsv");
    ss_labeled_opts o = {.need_label = 1};
    ss_labeled_set s, z;
    read_ok(&s, path, &o);
    check_sst2(&s);

    ss_error err = {0};
    ss_buf raw = {0};
    CHECK_OK(ss_read_file(path, &raw, &err), &err);
    read_ok(&z, write_zstd("sst2-train.tsv.zst", raw.data, raw.len), &o);
    ss_buf_free(&raw);
    check_sst2(&z);
    for (size_t i = 0; i < s.n; i++) expect_row(&z, i, s.texts[i], s.labels[i], s.lines[i]);
    ss_labeled_free(&z);

    ss_label_map m;
    CHECK_OK(ss_label_map_build(&m, &s, path, &err), &err);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.names[0], "0");
    assert_string_equal(m.names[1], "1");
    int32_t *ids = malloc(s.n * sizeof *ids);
    CHECK_OK(ss_label_map_apply(&m, &s, path, ids, &err), &err);
    int64_t sum = 0;
    for (size_t i = 0; i < s.n; i++) sum += ids[i];
    assert_int_equal(sum, 3610);
    free(ids);
    ss_label_map_free(&m);
    ss_labeled_free(&s);
}

/* ---- the label map --------------------------------------------------------------- */

/* A set with the given labels (texts "t0", "t1", ...; lines 10, 11, ...). */
static void make_set(ss_labeled_set *s, const char *const *labels, size_t n) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->texts = calloc(n, sizeof *s->texts);
    s->labels = calloc(n, sizeof *s->labels);
    s->lines = calloc(n, sizeof *s->lines);
    for (size_t i = 0; i < n; i++) {
        char t[32];
        snprintf(t, sizeof t, "t%zu", i);
        s->texts[i] = strdup(t);
        s->labels[i] = labels[i] ? strdup(labels[i]) : NULL;
        s->lines[i] = 10 + (int64_t)i;
    }
}

static void expect_map(const char *const *labels, size_t n, const char *const *want, int k) {
    ss_labeled_set s;
    make_set(&s, labels, n);
    ss_label_map m;
    ss_error err = {0};
    CHECK_OK(ss_label_map_build(&m, &s, "train.tsv", &err), &err);
    assert_int_equal(m.n, k);
    for (int i = 0; i < k; i++) {
        assert_string_equal(m.names[i], want[i]);
        assert_int_equal(ss_label_map_find(&m, want[i]), i);
    }
    ss_label_map_free(&m);
    ss_labeled_free(&s);
}

static void test_label_map_sorting(void **state) {
    (void)state;
    /* integers by value, not bytes */
    const char *num[] = {"10", "2", "-1", "2", NULL, "0", "10", "+3"};
    const char *num_want[] = {"-1", "0", "2", "+3", "10"};
    expect_map(num, 8, num_want, 5);
    /* one value written two ways stays two labels */
    const char *same[] = {"1", "01", "1", "0"};
    const char *same_want[] = {"0", "01", "1"};
    expect_map(same, 4, same_want, 3);
    /* anything not an integer: bytes */
    const char *str[] = {"pos", "neutral", "neg", "pos"};
    const char *str_want[] = {"neg", "neutral", "pos"};
    expect_map(str, 4, str_want, 3);
    const char *mixed[] = {"10", "9", "2.5", "1 "};
    const char *mixed_want[] = {"1 ", "10", "2.5", "9"};
    expect_map(mixed, 4, mixed_want, 4);
    const char *huge[] = {"2", "99999999999999999999", "10"}; /* beyond int64: not an integer */
    const char *huge_want[] = {"10", "2", "99999999999999999999"};
    expect_map(huge, 3, huge_want, 3);

    ss_labeled_set s;
    ss_label_map m;
    ss_error err = {0};
    const char *one[] = {"1", NULL, "1"};
    make_set(&s, one, 3);
    assert_int_equal(ss_label_map_build(&m, &s, "train.tsv", &err), SS_ERR_FORMAT);
    assert_string_equal(err.msg,
                        "train.tsv: every row has the same label: classification needs at least 2 distinct labels");
    assert_int_equal(m.n, 0);
    ss_labeled_free(&s);
    const char *none[] = {NULL, NULL};
    make_set(&s, none, 2);
    assert_int_equal(ss_label_map_build(&m, &s, "train.tsv", &err), SS_ERR_FORMAT);
    assert_string_equal(err.msg,
                        "train.tsv: no row has a label: classification needs at least 2 distinct labels");
    ss_labeled_free(&s);
}

static void test_label_map_apply(void **state) {
    (void)state;
    const char *train[] = {"1", "0", "1"};
    ss_labeled_set tr, dev;
    make_set(&tr, train, 3);
    ss_label_map m;
    ss_error err = {0};
    CHECK_OK(ss_label_map_build(&m, &tr, "train.tsv", &err), &err);
    assert_int_equal(ss_label_map_find(&m, "2"), -1);
    assert_int_equal(ss_label_map_find(&m, NULL), -1);
    int32_t ids[4];
    CHECK_OK(ss_label_map_apply(&m, &tr, "train.tsv", ids, &err), &err);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 1);

    const char *dv[] = {"0", "1", "x", "0"};
    make_set(&dev, dv, 4);
    assert_int_equal(ss_label_map_apply(&m, &dev, "dev.tsv", ids, &err), SS_ERR_FORMAT);
    assert_string_equal(err.msg, "dev.tsv:12: label 'x' is not one of the training labels: 0, 1");
    ss_labeled_free(&dev);
    const char *unl[] = {"0", NULL};
    make_set(&dev, unl, 2);
    assert_int_equal(ss_label_map_apply(&m, &dev, "dev.tsv", ids, &err), SS_ERR_FORMAT);
    assert_string_equal(err.msg, "dev.tsv:11: the row has no label");
    ss_labeled_free(&dev);
    ss_label_map_free(&m);
    ss_labeled_free(&tr);
}

/* A binary file given as TSV/CSV/JSONL (issue 18, item 8): the message quotes
 * at most 60 bytes of it, control and invalid bytes as \xNN, then "...",
 * never the raw bytes (they used to fill ~1 KB of the terminal). */
static void test_binary_input_is_quoted(void **state) {
    (void)state;
    unsigned char bin[1200];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)(i * 37 + 11);
    memcpy(bin, "\x7f" "ELF\x02\x01\x01\x00", 8);
    static const char *const names[] = {"bin.tsv", "bin.csv", "bin.jsonl"};
    for (int k = 0; k < 3; k++) {
        const char *path = write_named(names[k], (const char *)bin, sizeof bin);
        ss_labeled_opts o = {.need_label = 1};
        ss_labeled_set s;
        ss_error err = {0};
        assert_int_equal(ss_labeled_read(&s, path, &o, &err), SS_ERR_FORMAT);
        printf("# %s\n", err.msg);
        const char *want = k < 2 ? ":1: header row: a NUL byte in field 1 ('\\x7FELF\\x02\\x01\\x01\\x00"
                                 : ":1: a NUL byte in the line ('\\x7FELF\\x02\\x01\\x01\\x00";
        if (!strstr(err.msg, path) || !strstr(err.msg, want)) fail_msg("got: %s\nwanted: %s", err.msg, want);
        if (!strstr(err.msg, "...')")) fail_msg("not cut short: %s", err.msg);
        for (const char *c = err.msg; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f) fail_msg("a raw control byte: %s", err.msg);
        assert_true(strlen(err.msg) < strlen(path) + 320); /* 60 bytes, 4 characters each at most, and the words */
    }
    /* invalid UTF-8 without a NUL: the same, naming the problem */
    const char *path = write_named("u.tsv", "ab\xff\xfe\x01\tlabel\nx\t1\n", 15);
    ss_labeled_set s;
    ss_error err = {0};
    assert_int_equal(ss_labeled_read(&s, path, NULL, &err), SS_ERR_FORMAT);
    expect_message(err.msg, path, 1, "header row: invalid UTF-8 in field 1 ('ab\\xFF\\xFE\\x01'): not a TSV text file?");
    /* control bytes in valid UTF-8 labels (a terminal escape) are escaped too */
    const char *tr[] = {"a\x1b[31m", "b"}, *dv[] = {"c\x07\\"};
    ss_labeled_set trs, dvs;
    make_set(&trs, tr, 2);
    make_set(&dvs, dv, 1);
    ss_label_map m;
    int32_t ids[1];
    CHECK_OK(ss_label_map_build(&m, &trs, "train.tsv", &err), &err);
    assert_int_equal(ss_label_map_apply(&m, &dvs, "dev.tsv", ids, &err), SS_ERR_FORMAT);
    assert_string_equal(err.msg, "dev.tsv:10: label 'c\\x07\\\\' is not one of the training labels: a\\x1B[31m, b");
    ss_label_map_free(&m);
    ss_labeled_free(&trs);
    ss_labeled_free(&dvs);
}

static void test_label_map_json(void **state) {
    (void)state;
    const char *labels[] = {"pos", "neg", "say \"hi\"", "caf\xc3\xa9", "neg"};
    ss_labeled_set s;
    make_set(&s, labels, 5);
    ss_label_map m, back;
    ss_error err = {0};
    CHECK_OK(ss_label_map_build(&m, &s, "t", &err), &err);
    char *json = ss_label_map_to_json(&m);
    assert_non_null(json);
    assert_string_equal(json, "[\"caf\xc3\xa9\",\"neg\",\"pos\",\"say \\\"hi\\\"\"]");
    CHECK_OK(ss_label_map_from_json(&back, json, "labels.json", &err), &err);
    assert_int_equal(back.n, m.n);
    for (int i = 0; i < m.n; i++) assert_string_equal(back.names[i], m.names[i]);
    free(json);
    ss_label_map_free(&back);
    ss_label_map_free(&m);
    ss_labeled_free(&s);

    /* stored order is id order, whatever it is */
    CHECK_OK(ss_label_map_from_json(&m, " [\"b\", \"a\", \"10\", \"9\"] ", "labels.json", &err), &err);
    assert_int_equal(m.n, 4);
    assert_int_equal(ss_label_map_find(&m, "b"), 0);
    assert_int_equal(ss_label_map_find(&m, "9"), 3);
    ss_label_map_free(&m);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"[\"a\", \"b\"", "labels.json: the label map is not a JSON array of class names"},
        {"{\"0\": \"a\"}", "labels.json: the label map is not a JSON array of class names"},
        {"", "labels.json: the label map is not a JSON array of class names"},
        {"[]", "labels.json: the label map has 0 names; a classifier needs at least 2"},
        {"[\"only\"]", "labels.json: the label map has 1 name; a classifier needs at least 2"},
        {"[\"a\", 1]", "labels.json: label map entry 1 is not a non-empty string"},
        {"[\"a\", \"\"]", "labels.json: label map entry 1 is not a non-empty string"},
        {"[null, \"a\"]", "labels.json: label map entry 0 is not a non-empty string"},
        {"[\"a\", \"b\", \"a\"]", "labels.json: label 'a' appears twice in the label map"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ss_label_map_from_json(&m, bad[i].json, "labels.json", &err), SS_ERR_FORMAT);
        assert_string_equal(err.msg, bad[i].msg);
        assert_int_equal(m.n, 0);
        assert_null(m.names);
    }
}

/* ---- subsampling --------------------------------------------------------------------- */

/* texts "t<i>", labels "l<i>", lines 10+i: still aligned after a shuffle. */
static void expect_aligned(const ss_labeled_set *s, size_t n_orig) {
    char *seen = calloc(n_orig, 1);
    for (size_t i = 0; i < s->n; i++) {
        size_t k;
        assert_int_equal(sscanf(s->texts[i], "t%zu", &k), 1);
        assert_true(k < n_orig);
        assert_false(seen[k]);
        seen[k] = 1;
        char l[32];
        snprintf(l, sizeof l, "l%zu", k);
        assert_string_equal(s->labels[i], l);
        assert_int_equal(s->lines[i], 10 + (int64_t)k);
    }
    free(seen);
}

static void make_numbered(ss_labeled_set *s, size_t n) {
    char **labels = calloc(n, sizeof *labels);
    for (size_t i = 0; i < n; i++) {
        labels[i] = malloc(32);
        snprintf(labels[i], 32, "l%zu", i);
    }
    make_set(s, (const char *const *)labels, n);
    for (size_t i = 0; i < n; i++) free(labels[i]);
    free(labels);
}

static void test_subsample(void **state) {
    (void)state;
    const size_t N = 1000;
    ss_labeled_set a, b, all, none;
    make_numbered(&a, N);
    make_numbered(&b, N);
    make_numbered(&all, N);
    make_numbered(&none, N);
    ss_labeled_subsample(&a, 100, 42);
    ss_labeled_subsample(&b, 100, 42);
    ss_labeled_subsample(&all, 5000, 42); /* more than there are: all rows, shuffled */
    ss_labeled_subsample(&none, 0, 42);
    assert_int_equal(a.n, 100);
    assert_int_equal(all.n, N);
    assert_int_equal(none.n, 0);
    expect_aligned(&a, N);
    expect_aligned(&all, N);
    size_t moved = 0;
    for (size_t i = 0; i < 100; i++) {
        assert_string_equal(a.texts[i], b.texts[i]);      /* deterministic */
        assert_string_equal(a.texts[i], all.texts[i]);    /* nested: the first 100 of the full shuffle */
        moved += a.lines[i] != 10 + (int64_t)i;
    }
    assert_true(moved > 90); /* shuffled, not the first 100 rows */
    ss_labeled_free(&b);
    make_numbered(&b, N);
    ss_labeled_subsample(&b, 100, 43);
    size_t same = 0;
    for (size_t i = 0; i < 100; i++) same += strcmp(a.texts[i], b.texts[i]) == 0;
    assert_true(same < 10); /* another seed, another sample */
    /* every row is equally likely to be picked: over 2,000 seeds each of
     * 10 rows lands in a 3-row sample 600 times on average */
    int hits[10] = {0};
    for (uint64_t seed = 0; seed < 2000; seed++) {
        ss_labeled_set t;
        make_numbered(&t, 10);
        ss_labeled_subsample(&t, 3, seed);
        expect_aligned(&t, 10);
        for (size_t i = 0; i < t.n; i++) hits[t.lines[i] - 10]++;
        ss_labeled_free(&t);
    }
    for (int i = 0; i < 10; i++) /* binomial sd ~ 20.5: 5 sd either way */
        if (hits[i] < 500 || hits[i] > 700) fail_msg("row %d picked %d times of 2000", i, hits[i]);
    ss_labeled_free(&a);
    ss_labeled_free(&b);
    ss_labeled_free(&all);
    ss_labeled_free(&none);
}

/* Rows t<i> labelled "pos" for i % 4 == 0 and "neg" otherwise (1 in 4
 * positive), one row without a label at the end. */
static void make_skewed(ss_labeled_set *s, size_t n) {
    const char **labels = calloc(n + 1, sizeof *labels);
    for (size_t i = 0; i < n; i++) labels[i] = i % 4 == 0 ? "pos" : "neg";
    make_set(s, labels, n + 1);
    free(labels);
}

static int count_label(const ss_labeled_set *s, const char *label) {
    int c = 0;
    for (size_t i = 0; i < s->n; i++) c += s->labels[i] && !strcmp(s->labels[i], label);
    return c;
}

/* --per-class: N of each class from the seeded shuffle of
 * ss_labeled_subsample (so, for one seed, nested across N and in the
 * shuffle's order), texts, labels and lines together; a class too small is
 * an error naming it and the file, the set untouched. */
static void test_subsample_per_class(void **state) {
    (void)state;
    ss_labeled_set a, big, shuffled, small;
    ss_label_map m;
    ss_error err = {0};
    make_skewed(&a, 400);
    CHECK_OK(ss_label_map_build(&m, &a, "train.tsv", &err), &err);
    make_skewed(&big, 400);
    make_skewed(&shuffled, 400);
    CHECK_OK(ss_labeled_subsample_per_class(&a, &m, 16, 7, "train.tsv", &err), &err);
    CHECK_OK(ss_labeled_subsample_per_class(&big, &m, 50, 7, "train.tsv", &err), &err);
    ss_labeled_subsample(&shuffled, shuffled.n, 7);
    assert_int_equal(a.n, 32);
    assert_int_equal(count_label(&a, "pos"), 16);
    assert_int_equal(count_label(&a, "neg"), 16);
    assert_int_equal(big.n, 100);
    for (size_t i = 0; i < a.n; i++) { /* aligned, and the row without a label is never kept */
        size_t k;
        assert_non_null(a.labels[i]);
        assert_int_equal(sscanf(a.texts[i], "t%zu", &k), 1);
        assert_string_equal(a.labels[i], k % 4 == 0 ? "pos" : "neg");
        assert_int_equal(a.lines[i], 10 + (int64_t)k);
    }
    /* the first 16 of each class in the full shuffle, in its order; so the
     * 16-per-class set is inside the 50-per-class one, in the same order */
    size_t j = 0, in_big = 0;
    int seen[2] = {0, 0};
    for (size_t i = 0; i < shuffled.n && j < a.n; i++) {
        if (!shuffled.labels[i]) continue;
        int c = !strcmp(shuffled.labels[i], "pos");
        if (seen[c]++ < 16) assert_string_equal(a.texts[j++], shuffled.texts[i]);
    }
    assert_int_equal(j, a.n);
    for (size_t i = 0; i < big.n && in_big < a.n; i++) in_big += !strcmp(big.texts[i], a.texts[in_big]);
    assert_int_equal(in_big, a.n);
    /* 101 positives asked of 100: an error naming the class, its count and the file; nothing changed */
    make_skewed(&small, 400);
    assert_int_equal(ss_labeled_subsample_per_class(&small, &m, 101, 7, "train.tsv", &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "'pos' has 100 in train.tsv"));
    assert_int_equal(small.n, 401);
    for (size_t i = 0; i < small.n; i++) assert_int_equal(small.lines[i], 10 + (int64_t)i);
    ss_label_map_free(&m);
    ss_labeled_free(&a);
    ss_labeled_free(&big);
    ss_labeled_free(&shuffled);
    ss_labeled_free(&small);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_skip_counts),
        cmocka_unit_test(test_tsv),
        cmocka_unit_test(test_csv_quoting),
        cmocka_unit_test(test_columns_by_name),
        cmocka_unit_test(test_default_text_column),
        cmocka_unit_test(test_jsonl_labels),
        cmocka_unit_test(test_zstd_and_formats),
        cmocka_unit_test(test_big_inputs),
        cmocka_unit_test(test_sst2),
        cmocka_unit_test(test_label_map_sorting),
        cmocka_unit_test(test_label_map_apply),
        cmocka_unit_test(test_binary_input_is_quoted),
        cmocka_unit_test(test_label_map_json),
        cmocka_unit_test(test_subsample),
        cmocka_unit_test(test_subsample_per_class),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
