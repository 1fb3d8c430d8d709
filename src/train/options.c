/* Training options: defaults and their JSON form (stored in trainer_state.json
 * so that --resume continues with exactly the options of the original run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "selfsup/train.h"

const char *ss_objective_name(ss_objective o) {
    return o == SS_OBJ_MLM ? "mlm" : o == SS_OBJ_RTD ? "rtd" : "clm";
}

ss_status ss_objective_parse(const char *s, ss_objective *o, ss_error *err) {
    if (strcmp(s, "clm") == 0) *o = SS_OBJ_CLM;
    else if (strcmp(s, "mlm") == 0) *o = SS_OBJ_MLM;
    else if (strcmp(s, "rtd") == 0) *o = SS_OBJ_RTD;
    else return ss_fail(err, SS_ERR_ARG, "unknown objective '%s' (clm, mlm or rtd)", s);
    return SS_OK;
}

void ss_train_opts_defaults(ss_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->objective = SS_OBJ_CLM;
    o->seq = 128;
    o->batch = 16;
    o->grad_accum = 1;
    o->lr = 1e-3;
    o->lr_min = -1; /* default: lr / 10 */
    o->weight_decay = 0.1;
    o->clip = 1.0;
    o->beta1 = 0.9;
    o->beta2 = 0.95;
    o->eps = 1e-8;
    o->warmup = -1; /* default: 5% of the steps, at most 1000 */
    o->seed = 1337;
    o->eval_every = 200;
    o->save_every = 1000;
    o->log_every = 10;
    o->eval_tokens = 1 << 18;
    o->max_bad_steps = 5;
    o->mask_prob = 0.15f;
    o->mask_replace = 0.8f;
    o->mask_random = 0.1f;
    o->gen_size = 0.25;
    o->disc_weight = 50;
}

/* The options that define a run (not threads or logging cadence). */
char *ss_train_opts_to_json(const ss_train_opts *o, int64_t total_steps) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "objective", ss_objective_name(o->objective));
    cJSON_AddStringToObject(j, "data", o->data_dir);
    cJSON_AddNumberToObject(j, "seq", o->seq);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "grad_accum", o->grad_accum);
    cJSON_AddNumberToObject(j, "total_steps", (double)total_steps);
    cJSON_AddNumberToObject(j, "time_limit", o->time_limit);
    cJSON_AddNumberToObject(j, "flops", o->flops);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "lr_min", o->lr_min);
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "clip", o->clip);
    cJSON_AddNumberToObject(j, "beta1", o->beta1);
    cJSON_AddNumberToObject(j, "beta2", o->beta2);
    cJSON_AddNumberToObject(j, "eps", o->eps);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddNumberToObject(j, "eval_tokens", (double)o->eval_tokens);
    cJSON_AddNumberToObject(j, "mask_prob", o->mask_prob);
    cJSON_AddNumberToObject(j, "mask_replace", o->mask_replace);
    cJSON_AddNumberToObject(j, "mask_random", o->mask_random);
    cJSON_AddNumberToObject(j, "whole_word", o->whole_word);
    cJSON_AddNumberToObject(j, "gen_size", o->gen_size);
    cJSON_AddNumberToObject(j, "disc_weight", o->disc_weight);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static double num(const cJSON *j, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

ss_status ss_train_opts_from_json(ss_train_opts *o, int64_t *total_steps, const char *json,
                                  const char *src, ss_error *err) {
    cJSON *j = cJSON_Parse(json);
    if (!j) return ss_fail(err, SS_ERR_FORMAT, "%s: training options are not valid JSON", src);
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(j, "objective");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
    ss_status st = SS_OK;
    if (!cJSON_IsString(obj) || !cJSON_IsString(seed))
        st = ss_fail(err, SS_ERR_FORMAT, "%s: options lack 'objective' or 'seed'", src);
    if (!st) st = ss_objective_parse(obj->valuestring, &o->objective, err);
    if (!st) {
        o->seed = strtoull(seed->valuestring, NULL, 10);
        o->seq = (int)num(j, "seq", o->seq);
        o->batch = (int)num(j, "batch", o->batch);
        o->grad_accum = (int)num(j, "grad_accum", o->grad_accum);
        *total_steps = (int64_t)num(j, "total_steps", 0);
        o->time_limit = num(j, "time_limit", 0);
        o->flops = num(j, "flops", 0);
        o->lr = num(j, "lr", o->lr);
        o->lr_min = num(j, "lr_min", o->lr_min);
        o->warmup = (int64_t)num(j, "warmup", (double)o->warmup);
        o->weight_decay = num(j, "weight_decay", o->weight_decay);
        o->clip = num(j, "clip", o->clip);
        o->beta1 = num(j, "beta1", o->beta1);
        o->beta2 = num(j, "beta2", o->beta2);
        o->eps = num(j, "eps", o->eps);
        o->eval_tokens = (int64_t)num(j, "eval_tokens", (double)o->eval_tokens);
        o->mask_prob = (float)num(j, "mask_prob", o->mask_prob);
        o->mask_replace = (float)num(j, "mask_replace", o->mask_replace);
        o->mask_random = (float)num(j, "mask_random", o->mask_random);
        o->whole_word = (int)num(j, "whole_word", o->whole_word);
        o->gen_size = num(j, "gen_size", o->gen_size);
        o->disc_weight = num(j, "disc_weight", o->disc_weight);
    }
    cJSON_Delete(j);
    return st;
}
