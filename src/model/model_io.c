/* Model directories: config.json + model.safetensors (+ tokenizer.json). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "selfsup/io.h"
#include "selfsup/safetensors.h"
#include "selfsup/tokenizer.h"

static void join(char *out, size_t cap, const char *dir, const char *file) {
    snprintf(out, cap, "%s/%s", dir, file);
}

ss_status ss_model_save(const ss_model *m, const char *dir, const ss_meta_kv *meta, size_t n_meta,
                        ss_error *err) {
    char path[4096];
    ss_status st = ss_mkdir_p(dir, err);
    if (st) return st;
    char *cfg = ss_config_to_json(&m->cfg);
    ss_st_tensor *t = calloc(m->n_tensors, sizeof *t);
    ss_st_meta *md = calloc(n_meta + 2, sizeof *md);
    if (!cfg || !t || !md) {
        free(cfg); free(t); free(md);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ss_param_info *p = &m->tensors[i];
        t[i] = (ss_st_tensor){.name = p->name, .dtype = SS_F32, .ndim = p->ndim,
                              .shape = {p->shape[0], p->shape[1]}, .data = m->params + p->offset};
    }
    md[0] = (ss_st_meta){"format", "selfsup"};
    md[1] = (ss_st_meta){"config", cfg};
    for (size_t i = 0; i < n_meta; i++) md[2 + i] = (ss_st_meta){meta[i].key, meta[i].value};
    join(path, sizeof path, dir, "model.safetensors");
    st = ss_safetensors_write(path, t, m->n_tensors, md, n_meta + 2, err);
    if (!st) {
        join(path, sizeof path, dir, "config.json");
        char *with_nl = malloc(strlen(cfg) + 2);
        if (!with_nl) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
        else {
            sprintf(with_nl, "%s\n", cfg);
            st = ss_write_file_atomic(path, with_nl, strlen(with_nl), err);
            free(with_nl);
        }
    }
    free(cfg); free(t); free(md);
    return st;
}

ss_status ss_model_load_config(ss_model_config *c, const char *dir, ss_error *err) {
    char path[4096];
    ss_buf b = {0};
    join(path, sizeof path, dir, "config.json");
    ss_status st = ss_read_file(path, &b, err);
    if (!st) st = ss_config_from_json(c, b.data, path, err);
    ss_buf_free(&b);
    return st;
}

static int same_config(const ss_model_config *a, const ss_model_config *b) {
    return a->kind == b->kind && a->vocab_size == b->vocab_size && a->n_layer == b->n_layer &&
           a->d_model == b->d_model && a->n_head == b->n_head && a->d_ff == b->d_ff &&
           a->max_seq == b->max_seq;
}

/* Copy every body tensor from the file, checking shape and finiteness. */
static ss_status read_tensors(ss_model *m, const ss_safetensors *f, const char *path, ss_error *err) {
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ss_param_info *p = &m->tensors[i];
        const float *data;
        ss_status st = ss_safetensors_get_f32(f, p->name, p->ndim, p->shape, &data, err);
        if (st == SS_ERR_NOT_FOUND)
            return ss_fail(err, SS_ERR_FORMAT, "%s: tensor '%s' is missing (config.json describes a model "
                           "with %d layers)", path, p->name, m->cfg.n_layer);
        if (st) return st == SS_ERR_FORMAT ? ss_error_prefix(err, "config does not match tensors: ") : st;
        for (size_t k = 0; k < p->numel; k++)
            if (!isfinite(data[k]))
                return ss_fail(err, SS_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at index %zu",
                               path, p->name, k);
        memcpy(m->params + p->offset, data, p->numel * sizeof(float));
    }
    return SS_OK;
}

static ss_status check_tokenizer(const ss_model *m, const char *dir, ss_error *err) {
    char path[4096];
    join(path, sizeof path, dir, "tokenizer.json");
    if (!ss_file_exists(path)) return SS_OK;
    ss_tokenizer *tok;
    ss_status st = ss_tokenizer_load(&tok, path, err);
    if (st) return st;
    size_t v = ss_tokenizer_vocab_size(tok);
    ss_tokenizer_free(tok);
    if (v != (size_t)m->cfg.vocab_size)
        return ss_fail(err, SS_ERR_FORMAT, "%s: vocabulary size %zu does not match the model's vocab_size %d",
                       path, v, m->cfg.vocab_size);
    return SS_OK;
}

ss_status ss_model_load(ss_model **out, const char *dir, ss_error *err) {
    ss_model_config c, c2;
    char path[4096];
    ss_status st = ss_model_load_config(&c, dir, err);
    if (st) return st;
    join(path, sizeof path, dir, "model.safetensors");
    ss_safetensors *f;
    if ((st = ss_safetensors_open(&f, path, err))) return st;
    const char *meta_cfg = ss_safetensors_meta(f, "config");
    if (meta_cfg && !(st = ss_config_from_json(&c2, meta_cfg, path, err)) && !same_config(&c, &c2))
        st = ss_fail(err, SS_ERR_FORMAT, "%s/config.json does not match the config stored in %s", dir, path);
    ss_model *m = NULL;
    if (!st) st = ss_model_create(&m, &c, err);
    if (!st) st = read_tensors(m, f, path, err);
    ss_safetensors_close(f);
    if (!st) st = check_tokenizer(m, dir, err);
    if (st) {
        ss_model_free(m);
        return st;
    }
    *out = m;
    return SS_OK;
}

int ss_model_params_finite(const ss_model *m) {
    int ok = 1;
    #pragma omp parallel for reduction(&& : ok) schedule(static)
    for (size_t i = 0; i < m->n_params; i++) ok = ok && isfinite(m->params[i]);
    return ok;
}
