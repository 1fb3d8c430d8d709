/* A fine-tuned classifier directory: the model with its CLS head, the
 * tokenizer it reads with, and the class names (labels.json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/infer.h"
#include "selfsup/io.h"
#include "selfsup/path.h"

void ss_classifier_free(ss_classifier *c) {
    ss_model_free(c->model);
    ss_tokenizer_free(c->tok);
    ss_label_map_free(&c->labels);
    memset(c, 0, sizeof *c);
}

static ss_status load_labels(ss_label_map *m, const char *dir, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_buf text = {0};
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_LABELS, err);
    if (!st) st = ss_read_file(path, &text, err);
    if (!st) st = ss_label_map_from_json(m, text.data, path, err);
    ss_buf_free(&text);
    return st;
}

ss_status ss_classifier_load(ss_classifier *c, const char *dir, ss_error *err) {
    memset(c, 0, sizeof *c);
    char path[SS_PATH_MAX];
    ss_status st = ss_model_load(&c->model, dir, err);
    if (st) return st;
    const ss_model_config *cfg = ss_model_config_of(c->model);
    if (cfg->head != SS_HEAD_CLS) { /* the message first: cfg lives in the model */
        st = ss_fail(err, SS_ERR_ARG, "%s holds a pretrained model (head '%s'), not a classifier: fine-tune it "
                     "first with 'selfsup finetune --init %s ...'", dir, ss_head_kind_name(cfg->head), dir);
        ss_classifier_free(c);
        return st;
    }
    st = ss_path_join(path, sizeof path, dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_tokenizer_load(&c->tok, path, err);
    if (!st) st = load_labels(&c->labels, dir, err);
    if (!st && c->labels.n != cfg->n_classes)
        st = ss_fail(err, SS_ERR_FORMAT, "%s/labels.json names %d classes but the model has %d", dir, c->labels.n,
                     cfg->n_classes);
    if (!st) st = ss_text_format_init(&c->fmt, c->tok, cfg->kind, cfg->max_seq, err);
    if (st) ss_classifier_free(c);
    return st;
}

ss_status ss_classify(ss_classifier *c, char *const *texts, size_t n, int batch, float *probs, ss_error *err) {
    ss_seqs s;
    ss_status st = ss_seqs_encode(&s, c->tok, &c->fmt, texts, n, err);
    if (st) return st;
    st = ss_classify_seqs(c->model, &s, batch, c->fmt.pad_id, probs, err);
    ss_seqs_free(&s);
    return st;
}
