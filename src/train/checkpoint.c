/* Training checkpoints with exact resume.
 *
 * A checkpoint is four files in RUN/: config.json, model.safetensors,
 * optimizer.safetensors (AdamW moments, step count) and trainer_state.json
 * (step, data RNG, clock, options). Each file is replaced atomically, and
 * every file records the step, so a mixed set is detectable. Before
 * replacing, the current set is hard-linked into RUN/.previous/: a crash at
 * any moment leaves either RUN/ or RUN/.previous/ complete and consistent,
 * and loading falls back to .previous when RUN/ is not. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/safetensors.h"
#include "selfsup/train.h"

static const char *const FILES[] = {SS_RUN_CONFIG, SS_RUN_MODEL, SS_RUN_OPTIMIZER, SS_RUN_STATE};
#define N_FILES 4

static ss_status link_previous(const char *run, ss_error *err) {
    char prev[SS_PATH_MAX], src[SS_PATH_MAX], dst[SS_PATH_MAX];
    ss_status st = ss_path_join(prev, sizeof prev, run, SS_RUN_PREVIOUS, err);
    if (!st) st = ss_path_join(src, sizeof src, run, SS_RUN_STATE, err);
    if (st) return st;
    if (!ss_file_exists(src)) return SS_OK; /* first save */
    st = ss_mkdir_p(prev, err);
    for (int i = 0; !st && i < N_FILES; i++) {
        if ((st = ss_path_join(src, sizeof src, run, FILES[i], err)) ||
            (st = ss_path_join(dst, sizeof dst, prev, FILES[i], err)))
            return st;
        if (unlink(dst) != 0 && errno != ENOENT)
            return ss_fail(err, SS_ERR_IO, "%s: cannot remove: %s", dst, strerror(errno));
        if (link(src, dst) != 0)
            return ss_fail(err, SS_ERR_IO, "%s: cannot link to %s: %s", src, dst, strerror(errno));
    }
    return st;
}

/* exp_avg.NAME / exp_avg_sq.NAME for every tensor of one model. */
static void add_moments(const ss_model *m, const ss_adamw *o, const char *prefix, ss_st_tensor *t,
                        char (*names)[112]) {
    for (size_t i = 0; i < ss_model_num_tensors(m); i++) {
        const ss_param_info *p = ss_model_tensor(m, i);
        for (int k = 0; k < 2; k++) {
            snprintf(names[2 * i + k], sizeof names[0], "%s.%s%s", k ? "exp_avg_sq" : "exp_avg", prefix, p->name);
            t[2 * i + k] = (ss_st_tensor){.name = names[2 * i + k], .dtype = SS_F32, .ndim = p->ndim,
                                          .shape = {p->shape[0], p->shape[1]},
                                          .data = (k ? o->v : o->m) + p->offset};
        }
    }
}

static ss_status save_optimizer(const char *run, const ss_train_models *tm, int64_t step, ss_error *err) {
    size_t n1 = 2 * ss_model_num_tensors(tm->model), n2 = tm->gen ? 2 * ss_model_num_tensors(tm->gen) : 0;
    ss_st_tensor *t = calloc(n1 + n2, sizeof *t);
    char (*names)[112] = calloc(n1 + n2, sizeof *names);
    if (!t || !names) {
        free(t); free(names);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    add_moments(tm->model, &tm->opt, "", t, names);
    if (tm->gen) add_moments(tm->gen, &tm->gen_opt, "generator.", t + n1, names + n1);
    char sstep[32], st_t[32], gt_t[32], path[SS_PATH_MAX];
    snprintf(sstep, sizeof sstep, "%" PRId64, step);
    snprintf(st_t, sizeof st_t, "%" PRId64, tm->opt.t);
    snprintf(gt_t, sizeof gt_t, "%" PRId64, tm->gen ? tm->gen_opt.t : 0);
    ss_st_meta meta[] = {{"format", "selfsup-adamw"}, {"step", sstep}, {"adamw_t", st_t}, {"generator_adamw_t", gt_t}};
    ss_status st = ss_path_join(path, sizeof path, run, SS_RUN_OPTIMIZER, err);
    if (!st) st = ss_safetensors_write(path, t, n1 + n2, meta, tm->gen ? 4 : 3, err);
    free(t); free(names);
    return st;
}

static char *state_json(const ss_train_state *s, const char *opts_json) {
    cJSON *o = cJSON_CreateObject();
    char buf[32];
    cJSON_AddNumberToObject(o, "step", (double)s->step);
    cJSON_AddNumberToObject(o, "total_steps", (double)s->total_steps);
    cJSON_AddNumberToObject(o, "tokens_seen", (double)s->tokens_seen);
    cJSON_AddNumberToObject(o, "bad_steps", (double)s->bad_steps);
    cJSON_AddNumberToObject(o, "elapsed_s", s->elapsed);
    cJSON *rng = cJSON_AddArrayToObject(o, "data_rng");
    for (int i = 0; i < 4; i++) { /* as strings: JSON numbers cannot hold 64 bits exactly */
        snprintf(buf, sizeof buf, "%" PRIu64, s->data_rng[i]);
        cJSON_AddItemToArray(rng, cJSON_CreateString(buf));
    }
    cJSON_AddNumberToObject(o, "schedule_steps", (double)s->sched_steps);
    cJSON_AddNumberToObject(o, "schedule_time_s", s->sched_time);
    if (s->gemm[0]) cJSON_AddStringToObject(o, "gemm", s->gemm);
    cJSON_AddNumberToObject(o, "shards", (double)(s->shards > 0 ? s->shards : 1));
    if (s->disc_from >= 0) cJSON_AddNumberToObject(o, "disc_from_step", (double)s->disc_from);
    if (s->epoch > 0) { /* fine-tuning */
        cJSON *f = cJSON_AddObjectToObject(o, "finetune");
        const char *k[] = {"epoch", "epoch_batch", "best_step", "best_epoch", "evals_since_best", "have_best", "loss_n"};
        const int64_t v[] = {s->epoch, s->epoch_batch, s->best_step, s->best_epoch, s->evals_since_best, s->have_best,
                             s->loss_n};
        for (int i = 0; i < 7; i++) cJSON_AddNumberToObject(f, k[i], (double)v[i]);
        cJSON_AddNumberToObject(f, "best_score", s->best_score);
        cJSON_AddNumberToObject(f, "loss_sum", s->loss_sum);
    }
    cJSON *opts = opts_json ? cJSON_Parse(opts_json) : NULL;
    if (s->init_sha256[0]) { /* continued pretraining: the run it started from */
        const cJSON *run = cJSON_GetObjectItemCaseSensitive(opts, "init");
        cJSON *in = cJSON_AddObjectToObject(o, "init");
        if (cJSON_IsString(run)) cJSON_AddStringToObject(in, "run", run->valuestring);
        cJSON_AddNumberToObject(in, "step", (double)s->init_step);
        cJSON_AddStringToObject(in, "model_sha256", s->init_sha256);
    }
    if (opts) cJSON_AddItemToObject(o, "options", opts);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    return txt;
}

ss_status ss_checkpoint_save(const char *run, const ss_train_models *tm, const ss_train_state *s,
                             const char *opts_json, int keep_previous, ss_error *err) {
    if (!ss_model_params_finite(tm->model) || (tm->gen && !ss_model_params_finite(tm->gen)))
        return ss_fail(err, SS_ERR_RANGE, "%s: refusing to save a checkpoint with non-finite weights (step %" PRId64 ")",
                       run, s->step);
    char path[SS_PATH_MAX];
    ss_status st = ss_mkdir_p(run, err);
    /* a save killed midway (kill -9, power loss) leaves temp files: remove them, they take a set's space */
    for (int i = 0; !st && i < N_FILES; i++)
        if (!(st = ss_path_join(path, sizeof path, run, FILES[i], err))) st = ss_atomic_remove_stale(path, NULL, err);
    if (!st && !keep_previous) st = link_previous(run, err);
    char sstep[32];
    snprintf(sstep, sizeof sstep, "%" PRId64, s->step);
    ss_meta_kv meta[] = {{"step", sstep}};
    if (!st) st = ss_model_save_with(tm->model, tm->gen, run, meta, 1, err);
    if (!st) st = save_optimizer(run, tm, s->step, err);
    if (!st) {
        char *txt = state_json(s, opts_json);
        if (!txt) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
        else if (!(st = ss_path_join(path, sizeof path, run, SS_RUN_STATE, err)))
            st = ss_write_file_atomic(path, txt, strlen(txt), err);
        free(txt);
    }
    return st;
}

static double num_or(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* The schedule's length (absent in runs saved before it was stored: -1)
 * and the fine-tuning position (absent for pretraining: 0). The JSON
 * numbers hold these exactly (doubles: integers below 2^53; the scores
 * printed with 17 digits). */
static ss_status parse_extras(const cJSON *o, const char *path, ss_train_state *s, ss_error *err) {
    s->sched_steps = (int64_t)num_or(o, "schedule_steps", -1);
    s->sched_time = num_or(o, "schedule_time_s", -1);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "gemm");
    snprintf(s->gemm, sizeof s->gemm, "%s", cJSON_IsString(g) ? g->valuestring : "");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "init");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(in, "model_sha256");
    snprintf(s->init_sha256, sizeof s->init_sha256, "%s", cJSON_IsString(sha) ? sha->valuestring : "");
    s->init_step = (int64_t)num_or(in, "step", -1);
    s->shards = (int64_t)num_or(o, "shards", 1);
    s->disc_from = (int64_t)num_or(o, "disc_from_step", -1);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "finetune");
    s->epoch = s->epoch_batch = s->best_step = s->best_epoch = s->evals_since_best = s->have_best = s->loss_n = 0;
    s->best_score = s->loss_sum = 0;
    if (!f) return SS_OK;
    if (!cJSON_IsObject(f) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(f, "epoch")))
        return ss_fail(err, SS_ERR_FORMAT, "%s: field 'finetune' is not a fine-tuning position", path);
    s->epoch = (int64_t)num_or(f, "epoch", 0);
    s->epoch_batch = (int64_t)num_or(f, "epoch_batch", 0);
    s->best_step = (int64_t)num_or(f, "best_step", 0);
    s->best_epoch = (int64_t)num_or(f, "best_epoch", 0);
    s->evals_since_best = (int64_t)num_or(f, "evals_since_best", 0);
    s->have_best = (int64_t)num_or(f, "have_best", 0);
    s->loss_n = (int64_t)num_or(f, "loss_n", 0);
    s->best_score = num_or(f, "best_score", 0);
    s->loss_sum = num_or(f, "loss_sum", 0);
    return SS_OK;
}

static ss_status parse_state(const char *path, ss_train_state *s, char **opts_json, ss_error *err) {
    ss_buf b = {0};
    ss_status st = ss_read_file(path, &b, err);
    if (st) return st;
    cJSON *o = cJSON_Parse(b.data);
    ss_buf_free(&b);
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(o, "data_rng");
    const char *keys[] = {"step", "total_steps", "tokens_seen", "bad_steps", "elapsed_s"};
    double v[5];
    for (int i = 0; o && i < 5; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
        if (!cJSON_IsNumber(x)) st = ss_fail(err, SS_ERR_FORMAT, "%s: field '%s' missing or not a number", path, keys[i]);
        else v[i] = x->valuedouble;
    }
    if (!o) st = ss_fail(err, SS_ERR_FORMAT, "%s: not valid JSON (truncated?)", path);
    if (!st && (!cJSON_IsArray(rng) || cJSON_GetArraySize(rng) != 4))
        st = ss_fail(err, SS_ERR_FORMAT, "%s: field 'data_rng' must be an array of 4 strings", path);
    for (int i = 0; !st && i < 4; i++) {
        const cJSON *x = cJSON_GetArrayItem(rng, i);
        char *end;
        if (!cJSON_IsString(x) || (s->data_rng[i] = strtoull(x->valuestring, &end, 10), *end))
            st = ss_fail(err, SS_ERR_FORMAT, "%s: data_rng[%d] is not an unsigned integer string", path, i);
    }
    if (!st) {
        s->step = (int64_t)v[0]; s->total_steps = (int64_t)v[1]; s->tokens_seen = (int64_t)v[2];
        s->bad_steps = (int64_t)v[3]; s->elapsed = v[4];
        st = parse_extras(o, path, s, err);
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(o, "options");
        *opts_json = opts ? cJSON_PrintUnformatted(opts) : NULL;
    }
    cJSON_Delete(o);
    return st;
}

static ss_status read_moments(const ss_safetensors *f, const ss_model *m, ss_adamw *o, const char *prefix,
                              ss_error *err) {
    char name[160];
    ss_status st = ss_adamw_init(o, ss_model_num_params(m), err);
    for (size_t i = 0; !st && i < ss_model_num_tensors(m); i++) {
        const ss_param_info *p = ss_model_tensor(m, i);
        for (int k = 0; !st && k < 2; k++) {
            const float *d;
            snprintf(name, sizeof name, "%s.%s%s", k ? "exp_avg_sq" : "exp_avg", prefix, p->name);
            st = ss_safetensors_get_f32(f, name, p->ndim, p->shape, &d, err);
            if (!st) memcpy((k ? o->v : o->m) + p->offset, d, p->numel * sizeof(float));
        }
    }
    return st;
}

static ss_status load_optimizer(const char *dir, ss_train_models *tm, int64_t step, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_safetensors *f;
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_OPTIMIZER, err);
    if (!st) st = ss_safetensors_open(&f, path, err);
    if (st) return st;
    const char *ms = ss_safetensors_meta(f, "step"), *mt = ss_safetensors_meta(f, "adamw_t");
    const char *gt = ss_safetensors_meta(f, "generator_adamw_t");
    if (!ms || !mt || strtoll(ms, NULL, 10) != step)
        st = ss_fail(err, SS_ERR_FORMAT, "%s: step %s does not match trainer_state.json's step %" PRId64
                     " (interrupted save?)", path, ms ? ms : "(missing)", step);
    if (!st && tm->gen && !gt) st = ss_fail(err, SS_ERR_FORMAT, "%s: no generator moments", path);
    if (!st) st = read_moments(f, tm->model, &tm->opt, "", err);
    if (!st) tm->opt.t = strtoll(mt, NULL, 10);
    if (!st && tm->gen) st = read_moments(f, tm->gen, &tm->gen_opt, "generator.", err);
    if (!st && tm->gen) tm->gen_opt.t = strtoll(gt, NULL, 10);
    ss_safetensors_close(f);
    return st;
}

static void free_models(ss_train_models *tm) {
    ss_model_free(tm->gen);
    ss_model_free(tm->model);
    ss_adamw_free(&tm->opt);
    ss_adamw_free(&tm->gen_opt);
    memset(tm, 0, sizeof *tm);
}

static ss_status check_step(const char *dir, int64_t step, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_safetensors *f;
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_MODEL, err);
    if (!st) st = ss_safetensors_open_header(&f, path, err); /* its data: checked by ss_model_load */
    if (st) return st;
    const char *ms = ss_safetensors_meta(f, "step");
    if (!ms || strtoll(ms, NULL, 10) != step)
        st = ss_fail(err, SS_ERR_FORMAT, "%s: step %s does not match trainer_state.json's step %" PRId64
                     " (interrupted save?)", path, ms ? ms : "(missing)", step);
    ss_safetensors_close(f);
    return st;
}

static ss_status load_from(const char *dir, ss_train_models *tm, ss_train_state *s, char **opts, ss_error *err) {
    char path[SS_PATH_MAX];
    memset(tm, 0, sizeof *tm);
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_STATE, err);
    if (!st) st = parse_state(path, s, opts, err);
    if (!st) st = ss_model_load(&tm->model, dir, err);
    if (!st) st = check_step(dir, s->step, err);
    if (!st) {
        st = ss_model_load_generator(tm->model, dir, &tm->gen, err);
        if (st == SS_ERR_NOT_FOUND) { /* not an rtd run: no generator, and no message to pass on */
            st = SS_OK;
            err->code = SS_OK;
            err->msg[0] = 0;
        }
    }
    if (!st) st = load_optimizer(dir, tm, s->step, err);
    if (st) {
        free_models(tm);
        free(*opts);
        *opts = NULL;
    }
    return st;
}

ss_status ss_checkpoint_load(const char *run, ss_train_models *tm, ss_train_state *s, char **opts_json,
                             int *from_previous, ss_error *err) {
    *opts_json = NULL;
    *from_previous = 0;
    ss_status st = load_from(run, tm, s, opts_json, err);
    if (!st) return SS_OK;
    char prev[SS_PATH_MAX];
    ss_error e2 = {0};
    if (ss_path_join(prev, sizeof prev, run, SS_RUN_PREVIOUS, &e2)) return st;
    if (ss_file_exists(prev) && load_from(prev, tm, s, opts_json, &e2) == SS_OK) {
        ss_error_prefix(err, "latest checkpoint unusable (%s); resumed from %s/.previous instead: ", run, run);
        *from_previous = 1;
        return SS_OK; /* the caller shows err->msg as a warning */
    }
    return st;
}
