/* Pretraining options: the table made from selfsup/train_opts.def, their
 * checks, and their JSON form (stored in trainer_state.json so that --resume
 * continues with exactly the options of the original run). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optable.h"
#include "selfsup/train.h"

const char *const ss_objective_names[] = {"clm", "mlm", "rtd", "hybrid", NULL};
const char *const ss_rtd_generator_names[] = {"model", "uniform", NULL};
const char *const ss_disc_init_names[] = {"fresh", "generator", "auto", NULL};
const char *const ss_gen_embeddings_names[] = {"shared", "own", NULL};
const char *const ss_schedule_names[] = {"cosine", "one-cycle", NULL};

const char *ss_objective_name(ss_objective o) {
    return o == SS_OBJ_MLM ? "mlm" : o == SS_OBJ_RTD ? "rtd" : o == SS_OBJ_HYBRID ? "hybrid" : "clm";
}

ss_status ss_objective_parse(const char *s, ss_objective *o, ss_error *err) {
    if (strcmp(s, "clm") == 0) *o = SS_OBJ_CLM;
    else if (strcmp(s, "mlm") == 0) *o = SS_OBJ_MLM;
    else if (strcmp(s, "rtd") == 0) *o = SS_OBJ_RTD;
    else if (strcmp(s, "hybrid") == 0) *o = SS_OBJ_HYBRID;
    else return ss_fail(err, SS_ERR_ARG, "unknown objective '%s' (clm, mlm, rtd or hybrid)", s);
    return SS_OK;
}

static const ss_opt rows[] = {
#define SS_OPT(type, ctype, field, flag, meta, def, range, names, resume, help) \
    {#field, flag, meta, SS_OPT_##type, offsetof(ss_train_opts, field), (double)(def), range, names, \
     SS_RESUME_##resume, help},
#include "selfsup/train_opts.def"
#undef SS_OPT
};
_Static_assert(sizeof rows / sizeof rows[0] <= 64, "given is a 64-bit mask");
const ss_opt_table ss_train_opt_table = {rows, sizeof rows / sizeof rows[0]};

void ss_train_opts_defaults(ss_train_opts *o) {
    memset(o, 0, sizeof *o);
    ss_opts_defaults(&ss_train_opt_table, o);
}

ss_status ss_train_opts_check(const ss_train_opts *o, ss_error *err) {
    ss_status st = ss_opts_check(&ss_train_opt_table, o, err);
    if (st) return st;
    if (!o->out_dir) return ss_fail(err, SS_ERR_ARG, "missing the run directory (--out)");
    if (!o->resume && !o->data_dir) return ss_fail(err, SS_ERR_ARG, "missing the data (--data)");
    int n_len = (o->steps > 0) + (o->tokens > 0) + (o->flops > 0) + (o->time_limit > 0);
    if (n_len > 1 || (!o->resume && n_len != 1))
        return ss_fail(err, SS_ERR_ARG, "give exactly one of --steps, --tokens, --flops, --time%s",
                       o->resume ? " (or none: --resume continues the saved length)" : "");
    if (!o->resume && o->batch_ramp > 0 && o->grad_accum < 2) /* a resumed run's were checked when it started */
        return ss_fail(err, SS_ERR_ARG, "--batch-ramp %g: the batch grows from one micro-batch to --grad-accum K, "
                       "so it needs --grad-accum 2 or more", o->batch_ramp);
    return SS_OK;
}

char *ss_train_opts_to_json(const ss_train_opts *o, int64_t total_steps) {
    cJSON *j = cJSON_CreateObject();
    opts_to_json(&ss_train_opt_table, o, j);
    cJSON_AddNumberToObject(j, "total_steps", (double)total_steps);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

ss_status ss_train_opts_from_json(ss_train_opts *o, int64_t *total_steps, const char *json, const char *src,
                                  char **keep, ss_error *err) {
    *keep = NULL;
    cJSON *j = cJSON_Parse(json);
    if (!j) return ss_fail(err, SS_ERR_FORMAT, "%s: training options are not valid JSON", src);
    ss_status st = opts_from_json(&ss_train_opt_table, o, j, src, keep, err);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "total_steps");
    if (!st && !cJSON_IsNumber(ts)) st = ss_fail(err, SS_ERR_FORMAT, "%s: the saved options lack 'total_steps'", src);
    if (!st) *total_steps = (int64_t)ts->valuedouble;
    cJSON_Delete(j);
    return st;
}
