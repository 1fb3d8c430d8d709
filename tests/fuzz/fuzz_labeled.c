/* Labelled text for fine-tuning and classify (TSV, CSV, JSONL): the first
 * input byte chooses the format (by the file's extension), skip_bad_rows,
 * need_label and the text column; the rest is the file, read by
 * ss_labeled_read. Rows that come back have a non-empty, valid UTF-8 text
 * without NUL, a label when one is needed, and lines in increasing order;
 * their label map (when there are two labels or more) applies to every
 * labelled row and reads back from its JSON unchanged. */
#include "fuzz.h"

#include "selfsup/io.h"
#include "selfsup/labeled.h"

static void check_map(const ss_labeled_set *s) {
    ss_label_map m = {0}, back = {0};
    ss_error err = {0};
    ss_status st = ss_label_map_build(&m, s, "in", &err);
    if (st) {
        fz_check_error(st, &err);
        return;
    }
    FZ_CHECK(m.n >= 2, "%d classes", m.n);
    int32_t *ids = malloc((s->n + 1) * sizeof *ids);
    if (!ids) abort();
    int all_labelled = 1;
    for (size_t i = 0; i < s->n; i++) all_labelled &= s->labels[i] != NULL;
    st = ss_label_map_apply(&m, s, "in", ids, &err);
    if (all_labelled) FZ_CHECK(st == SS_OK, "the map of the rows' own labels does not apply: %s", err.msg);
    if (st) fz_check_error(st, &err);
    for (size_t i = 0; !st && i < s->n; i++)
        FZ_CHECK(ids[i] >= 0 && ids[i] < m.n && strcmp(m.names[ids[i]], s->labels[i]) == 0, "row %zu's id", i);
    free(ids);
    char *json = ss_label_map_to_json(&m);
    FZ_CHECK(json != NULL, "label map JSON");
    st = ss_label_map_from_json(&back, json, "labels.json", &err);
    FZ_CHECK(st == SS_OK, "the label map's own JSON does not read back: %s", err.msg);
    FZ_CHECK(back.n == m.n, "%d classes read back, %d written", back.n, m.n);
    for (int k = 0; k < m.n; k++) FZ_CHECK(strcmp(back.names[k], m.names[k]) == 0, "class %d", k);
    free(json);
    ss_label_map_free(&m);
    ss_label_map_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static const char *const names[] = {"in.tsv", "in.csv", "in.jsonl", "in.tsv"};
    static const char *const text_cols[] = {NULL, "text", "sentence", "review"};
    uint8_t c = data[0];
    const char *name = names[c & 3];
    ss_labeled_opts o = {.text_column = text_cols[(c >> 4) & 3], .skip_bad_rows = (c >> 2) & 1,
                         .need_label = (c >> 3) & 1, .format = (c >> 6) == 3 ? SS_FMT_CSV : SS_FMT_AUTO};
    char path[1024];
    fz_write(path, sizeof path, name, data + 1, size - 1);
    ss_labeled_set s;
    ss_error err = {0};
    ss_status st = ss_labeled_read(&s, path, &o, &err);
    fz_note(name, st, &err);
    if (st) {
        fz_check_error(st, &err);
        FZ_CHECK(s.n == 0, "a failed read left %zu rows", s.n);
        fz_remove(name);
        return 0;
    }
    for (size_t i = 0; i < s.n; i++) {
        size_t n = strlen(s.texts[i]);
        FZ_CHECK(n > 0 && ss_utf8_valid(s.texts[i], n), "row %zu: text", i);
        FZ_CHECK(!o.need_label || s.labels[i], "row %zu: no label", i);
        FZ_CHECK(s.lines[i] >= 1 && (i == 0 || s.lines[i] > s.lines[i - 1]), "row %zu: line %lld", i,
                 (long long)s.lines[i]);
    }
    FZ_CHECK(s.n_bad == 0 || o.skip_bad_rows, "%zu bad rows without skip_bad_rows", s.n_bad);
    check_map(&s);
    ss_labeled_subsample(&s, s.n / 2, c);
    ss_labeled_free(&s);
    fz_remove(name);
    return 0;
}
