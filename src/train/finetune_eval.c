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
    int batch = r->o.batch > 64 ? r->o.batch : 64;
    ss_status st = SS_OK;
    for (int j = lo; !st && j < hi; j++) {
        size_t a = ss_part_lo(s->seqs.n, j, parts), b = ss_part_lo(s->seqs.n, j + 1, parts);
        ss_seqs part = {s->seqs.ids, s->seqs.off + a, b - a, 0}; /* a view: off[] holds offsets into ids */
        if (b > a)
            st = r->prompt ? ss_prompt_classify_seqs(r->prompt, r->model, &part, s->pos + a, batch, probs + a * (size_t)K, err)
                           : ss_classify_seqs(r->model, &part, batch, r->fmt.pad_id, probs + a * (size_t)K, err);
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
    ss_prompt_spec spec = r->prompt ? ss_prompt_spec_of(r->prompt) : (ss_prompt_spec){0};
    char *prompt = r->prompt ? ss_prompt_spec_to_json(&spec) : NULL;
    ss_meta_kv meta[] = {{"labels", labels}, {"step", step}, {"init", r->o.init ? r->o.init : "none"},
                         {"prompt", prompt}};
    ss_status st = r->prompt && !prompt ? ss_fail(err, SS_ERR_NOMEM, "out of memory")
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
    if (r->prompt) {
        cJSON_AddStringToObject(o, "template", r->o.template);
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
