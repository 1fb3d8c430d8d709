/* Fine-tuning evaluation: metrics on a split, saving the best model, and
 * the final eval.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "finetune_internal.h"
#include "selfsup/dist.h"
#include "selfsup/io.h"
#include "selfsup/path.h"

/* Rows [a, b) of the split: class probabilities probs[(b - a) * K]; with
 * several templates, the normalized geometric mean of theirs (as 'selfsup
 * classify' reads the saved model: ss_prompt_mean_add). */
static ss_status classify_rows(ft_run *r, const ft_split *s, size_t a, size_t b, float *probs, ss_error *err) {
    int K = r->labels.n, batch = r->o.batch > 64 ? r->o.batch : 64;
    if (!r->n_prompts) {
        ss_seqs part = {s->seqs.ids, s->seqs.off + a, b - a, 0}; /* a view: off[] holds offsets into ids */
        return ss_classify_seqs(r->model, &part, batch, r->fmt.pad_id, probs, err);
    }
    size_t n = s->rows.n, cells = (b - a) * (size_t)K;
    double *mean = r->n_prompts > 1 ? calloc(cells + 1, sizeof(double)) : NULL;
    ss_status st = r->n_prompts > 1 && !mean ? ss_fail(err, SS_ERR_NOMEM, "out of memory") : SS_OK;
    for (int t = 0; t < r->n_prompts && !st; t++) {
        size_t at = (size_t)t * n + a; /* row a through template t */
        ss_seqs part = {s->seqs.ids, s->seqs.off + at, b - a, 0};
        st = ss_prompt_classify_seqs(r->prompts[t], r->model, &part, s->pos + at, batch, probs, err);
        if (!st && mean) ss_prompt_mean_add(mean, probs, cells, r->n_prompts);
    }
    if (!st && mean) ss_prompt_mean_probs(mean, b - a, K, probs);
    free(mean);
    return st;
}

/* Predicted class = argmax of the probabilities (ties: the lower id). The
 * rows are cut into the run's shards, contiguous parts classified each on
 * its own (so a row's probabilities are the same bits on any rank count);
 * each rank classifies its parts, and the probabilities, zero elsewhere,
 * are summed over the ranks (exact: one nonzero term each). */
ss_status ft_eval_split(ft_run *r, const ft_split *s, ss_class_metrics *m, ss_error *err) {
    int K = r->labels.n, parts = r->state.shards > 0 ? (int)r->state.shards : 1, lo, hi;
    float *probs = calloc(s->rows.n * (size_t)K + 1, sizeof(float));
    if (!probs) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_dist_my_parts(parts, &lo, &hi);
    ss_status st = SS_OK;
    for (int j = lo; !st && j < hi; j++) {
        size_t a = ss_part_lo(s->rows.n, j, parts), b = ss_part_lo(s->rows.n, j + 1, parts);
        if (b > a) st = classify_rows(r, s, a, b, probs + a * (size_t)K, err);
    }
    if (!st && ss_dist_size() > 1) st = ss_dist_sum_f32(probs, s->rows.n * (size_t)K, err);
    if (!st) st = ss_class_metrics_init(m, K, err);
    for (size_t i = 0; i < s->rows.n && !st; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (probs[i * K + k] > probs[i * K + best]) best = k;
        ss_class_metrics_add(m, s->y[i], best);
    }
    if (!st) ss_class_metrics_finish(m);
    free(probs);
    return st;
}

char *ft_prompt_json(const ft_run *r) {
    ss_prompt_spec *specs = calloc((size_t)r->n_prompts, sizeof *specs);
    for (int i = 0; specs && i < r->n_prompts; i++) specs[i] = ss_prompt_spec_of(r->prompts[i]);
    char *json = specs ? ss_prompt_specs_to_json(specs, r->n_prompts) : NULL;
    free(specs);
    return json;
}

double ft_score(const ft_run *r, const ss_class_metrics *m) {
    switch (r->o.select) {
    case SS_SELECT_MACRO_F1: return m->macro_f1;
    case SS_SELECT_MCC: return m->mcc;
    default: return m->accuracy;
    }
}

static const char *select_name(ss_select_metric s) {
    return s == SS_SELECT_MACRO_F1 ? "macro_f1" : s == SS_SELECT_MCC ? "mcc" : "accuracy";
}

/* The model with its class names in the safetensors metadata too, so the
 * weights file alone says what its outputs mean. */
ss_status ft_save_best(ft_run *r, ss_error *err) {
    char *labels = ss_label_map_to_json(&r->labels), step[32];
    if (!labels) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    snprintf(step, sizeof step, "%lld", (long long)r->state.step);
    char *prompt = r->n_prompts ? ft_prompt_json(r) : NULL;
    ss_meta_kv meta[] = {{"labels", labels}, {"step", step}, {"init", r->o.init ? r->o.init : "none"},
                         {"prompt", prompt}};
    ss_status st = r->n_prompts && !prompt ? ss_fail(err, SS_ERR_NOMEM, "out of memory")
                                        : ss_model_save(r->model, r->o.out_dir, meta, 3 + (prompt != NULL), err);
    free(labels);
    free(prompt);
    return st;
}

static cJSON *metrics_json(const ss_class_metrics *m, char *const *labels) {
    char *s = ss_class_metrics_to_json(m, labels);
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    free(s);
    return o;
}

ss_status ft_write_eval_json(ft_run *r, const ss_finetune_result *res, ss_error *err) {
    if (ss_dist_rank() != 0) return SS_OK; /* rank 0 writes DIR */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "init", r->o.init ? r->o.init : "none");
    cJSON_AddStringToObject(o, "kind", ss_model_kind_name(ss_model_config_of(r->model)->kind));
    cJSON_AddStringToObject(o, "selected_by", select_name(r->o.select));
    cJSON_AddNumberToObject(o, "best_step", (double)res->best_step);
    cJSON_AddNumberToObject(o, "best_epoch", res->best_epoch);
    cJSON_AddNumberToObject(o, "steps", (double)res->steps);
    cJSON_AddNumberToObject(o, "train_rows", (double)res->train_rows);
    cJSON_AddNumberToObject(o, "train_bad_rows", (double)res->train_bad_rows);
    cJSON_AddNumberToObject(o, "train_truncated", (double)r->train.seqs.n_truncated);
    cJSON_AddNumberToObject(o, "seed", (double)r->o.seed);
    cJSON_AddNumberToObject(o, "lr", r->o.lr);
    cJSON_AddNumberToObject(o, "layer_decay", r->o.layer_decay);
    cJSON_AddNumberToObject(o, "unfreeze_every", (double)r->o.unfreeze_every);
    if (r->n_prompts) { /* as prompt.json: one template as a string, several as a list */
        if (r->o.template.n == 1) cJSON_AddStringToObject(o, "template", r->o.template.v[0]);
        else cJSON_AddItemToObject(o, "template", cJSON_CreateStringArray(r->o.template.v, r->o.template.n));
        cJSON_AddStringToObject(o, "verbalizer", r->o.verbalizer);
    }
    cJSON_AddItemToObject(o, "dev", metrics_json(&res->dev, r->labels.names));
    if (res->test.n > 0) cJSON_AddItemToObject(o, "test", metrics_json(&res->test, r->labels.names));
    char *text = cJSON_Print(o), path[SS_PATH_MAX];
    cJSON_Delete(o);
    if (!text) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = ss_path_join(path, sizeof path, r->o.out_dir, SS_RUN_EVAL, err);
    if (!st) st = ss_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return st;
}
