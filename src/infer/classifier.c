/* Classifiers: a fine-tuned directory (a CLS head, or an LM head with the
 * prompt it was fine-tuned with), or a language model with prompts given
 * by the caller (zero-shot); the tokenizer it reads with and the class names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/infer.h"
#include "selfsup/io.h"
#include "selfsup/path.h"

void ss_classifier_free(ss_classifier *c) {
    for (int i = 0; i < c->n_prompts; i++) ss_prompt_free(c->prompts[i]);
    free(c->prompts);
    ss_model_free(c->model); /* before its owner: a generator shares the owner's embeddings */
    ss_model_free(c->owner);
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

static ss_status load_tokenizer(ss_classifier *c, const char *dir, ss_error *err) {
    char path[SS_PATH_MAX];
    const ss_model_config *cfg = ss_model_config_of(c->model);
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_tokenizer_load(&c->tok, path, err);
    if (!st) st = ss_text_format_init(&c->fmt, c->tok, cfg->kind, cfg->max_seq, err);
    return st;
}

/* The prompts, for the model's kind and length. */
static ss_status make_prompts(ss_classifier *c, const ss_prompt_spec *specs, int n, ss_error *err) {
    const ss_model_config *cfg = ss_model_config_of(c->model);
    if (!(c->prompts = calloc((size_t)n, sizeof *c->prompts))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (; c->n_prompts < n; c->n_prompts++) {
        ss_status st = ss_prompt_create(&c->prompts[c->n_prompts], &specs[c->n_prompts], c->tok, cfg->kind,
                                        cfg->max_seq, err);
        if (st) return st;
    }
    return SS_OK;
}

/* A prompt-fine-tuned directory: DIR/prompt.json (one template or the
 * several it was fine-tuned through), classes from labels.json. */
static ss_status load_prompt_dir(ss_classifier *c, const char *dir, const char *path, ss_error *err) {
    ss_buf text = {0};
    char *keep = NULL;
    ss_prompt_spec *specs = NULL;
    int n = 0;
    ss_status st = ss_read_file(path, &text, err);
    if (!st) st = ss_buf_append(&text, "", 1, err);
    if (!st) st = ss_prompt_specs_from_json(&specs, &n, text.data, path, &keep, err);
    if (!st) st = load_labels(&c->labels, dir, err);
    if (!st) st = make_prompts(c, specs, n, err);
    if (st == SS_ERR_ARG) ss_error_prefix(err, "%s: ", path);
    for (int i = 0; i < c->n_prompts && !st; i++)
        st = ss_prompt_order_labels(c->prompts[i], &c->labels, SS_RUN_LABELS, err);
    ss_buf_free(&text);
    free(keep);
    return st;
}

ss_status ss_classifier_load(ss_classifier *c, const char *dir, ss_error *err) {
    memset(c, 0, sizeof *c);
    char path[SS_PATH_MAX];
    ss_status st = ss_model_load(&c->model, dir, err);
    if (st) return st;
    const ss_model_config *cfg = ss_model_config_of(c->model);
    int lm = cfg->head == SS_HEAD_LM || cfg->head == SS_HEAD_MLM;
    if (!st) st = ss_path_join(path, sizeof path, dir, SS_RUN_PROMPT, err);
    if (!st && cfg->head != SS_HEAD_CLS && !(lm && ss_file_exists(path))) { /* the message first: cfg lives in the model */
        st = ss_fail(err, SS_ERR_ARG, "%s holds a pretrained model (head '%s'), not a classifier: fine-tune it "
                     "first with 'selfsup finetune --init %s ...'%s", dir, ss_head_kind_name(cfg->head), dir,
                     lm || cfg->head == SS_HEAD_DISC ? ", or classify zero-shot with --template and --verbalizer" : "");
        ss_classifier_free(c);
        return st;
    }
    if (!st) st = load_tokenizer(c, dir, err);
    c->text_norm = cfg->text_norm;
    if (!st && lm) st = load_prompt_dir(c, dir, path, err);
    if (!st && !lm) st = load_labels(&c->labels, dir, err);
    if (!st && !lm && c->labels.n != cfg->n_classes)
        st = ss_fail(err, SS_ERR_FORMAT, "%s/labels.json names %d classes but the model has %d", dir, c->labels.n,
                     cfg->n_classes);
    if (st) ss_classifier_free(c);
    return st;
}

/* The language model of DIR: its own (clm, mlm), or an rtd run's generator. */
static ss_status load_lm(ss_classifier *c, const char *dir, ss_error *err) {
    ss_status st = ss_model_load(&c->model, dir, err);
    if (st) return st;
    ss_head_kind head = ss_model_config_of(c->model)->head;
    if (head == SS_HEAD_CLS)
        return ss_fail(err, SS_ERR_ARG, "%s is a classifier fine-tuned with a classification head: --template and "
                       "--verbalizer need a language model head (a pretrained clm, mlm or rtd run, or a model "
                       "fine-tuned with --template)", dir);
    if (head != SS_HEAD_DISC) return SS_OK;
    c->owner = c->model;
    c->model = NULL;
    st = ss_model_load_generator(c->owner, dir, &c->model, err);
    if (st == SS_ERR_NOT_FOUND)
        return ss_fail(err, SS_ERR_ARG, "%s has no language model head (an rtd discriminator alone has none: use "
                       "the rtd run directory, whose generator has one)", dir);
    return st;
}

/* The class names of the first prompt's verbalizer; every other prompt's
 * labels renumbered to them (SS_ERR_ARG when one names other labels). */
static ss_status prompt_labels(ss_classifier *c, ss_error *err) {
    int K = ss_prompt_num_labels(c->prompts[0]);
    if (!(c->labels.names = calloc((size_t)K, sizeof(char *)))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (int k = 0; k < K; k++, c->labels.n++)
        if (!(c->labels.names[k] = strdup(ss_prompt_label(c->prompts[0], k))))
            return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = SS_OK;
    for (int i = 1; i < c->n_prompts && !st; i++)
        if ((st = ss_prompt_order_labels(c->prompts[i], &c->labels, "the first verbalizer", err)) == SS_ERR_ARG)
            ss_error_prefix(err, "prompt %d: ", i + 1);
    return st;
}

ss_status ss_classifier_load_prompt(ss_classifier *c, const char *dir, const ss_prompt_spec *specs, int n_specs,
                                    ss_error *err) {
    memset(c, 0, sizeof *c);
    if (n_specs < 1) return ss_fail(err, SS_ERR_ARG, "no template and verbalizer given");
    ss_status st = load_lm(c, dir, err);
    if (!st) st = load_tokenizer(c, dir, err);
    if (!st) c->text_norm = ss_model_config_of(c->model)->text_norm;
    if (!st) st = make_prompts(c, specs, n_specs, err);
    if (!st) st = prompt_labels(c, err);
    if (st) ss_classifier_free(c);
    return st;
}

/* Several prompts: the normalized geometric mean of their class
 * probabilities (ss_prompt_mean_add). */
static ss_status classify_prompts(ss_classifier *c, char *const *texts, size_t n, int batch, float *probs,
                                  ss_error *err) {
    if (c->n_prompts == 1) return ss_prompt_classify(c->prompts[0], c->model, texts, n, batch, probs, err);
    int K = c->labels.n;
    double *mean = calloc(n * (size_t)K + 1, sizeof(double));
    ss_status st = mean ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n_prompts && !st; i++)
        if (!(st = ss_prompt_classify(c->prompts[i], c->model, texts, n, batch, probs, err)))
            ss_prompt_mean_add(mean, probs, n * (size_t)K, c->n_prompts);
    if (!st) ss_prompt_mean_probs(mean, n, K, probs);
    free(mean);
    return st;
}

static ss_status classify_texts(ss_classifier *c, char *const *texts, size_t n, int batch, float *probs,
                                ss_error *err) {
    if (c->n_prompts) return classify_prompts(c, texts, n, batch, probs, err);
    ss_seqs s;
    ss_status st = ss_seqs_encode(&s, c->tok, &c->fmt, texts, n, err);
    if (st) return st;
    st = ss_classify_seqs(c->model, &s, batch, c->fmt.pad_id, probs, err);
    ss_seqs_free(&s);
    return st;
}

ss_status ss_classify(ss_classifier *c, char *const *texts, size_t n, int batch, float *probs, ss_error *err) {
    if (c->text_norm == SS_TEXT_NORM_NONE) return classify_texts(c, texts, n, batch, probs, err);
    char **copy;
    ss_status st = ss_texts_normalized(texts, n, c->text_norm, &copy, err);
    if (st) return st;
    st = classify_texts(c, copy, n, batch, probs, err);
    ss_texts_free(copy, n);
    return st;
}
