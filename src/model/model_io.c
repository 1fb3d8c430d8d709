/* Model directories: config.json + model.safetensors (+ tokenizer.json). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "model_internal.h"
#include "selfsup/gemm.h"
#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/safetensors.h"
#include "selfsup/tokenizer.h"

/* Tensor list of a model, names prefixed (the generator of an RTD run is
 * stored beside its discriminator as "generator.<name>"). */
static void add_tensors(const ss_model *m, const char *prefix, ss_st_tensor *t, char (*names)[96]) {
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ss_param_info *p = &m->tensors[i];
        snprintf(names[i], sizeof names[i], "%s%s", prefix, p->name);
        t[i] = (ss_st_tensor){.name = names[i], .dtype = SS_F32, .ndim = p->ndim,
                              .shape = {p->shape[0], p->shape[1]}, .data = m->params + p->offset};
    }
}

/* config.json's text: the config, and when the metadata names the classes
 * ("labels", a JSON array of strings: a classifier) also Hugging Face's
 * id2label {"0": name, ...} and label2id {name: 0, ...}. */
static char *config_file_text(const char *cfg, const ss_meta_kv *meta, size_t n_meta) {
    const char *labels = NULL;
    for (size_t i = 0; i < n_meta; i++)
        if (!strcmp(meta[i].key, "labels")) labels = meta[i].value;
    cJSON *o = cJSON_Parse(cfg), *l = labels ? cJSON_Parse(labels) : NULL;
    if (o && cJSON_IsArray(l)) {
        cJSON *id2label = cJSON_AddObjectToObject(o, "id2label"), *label2id = cJSON_AddObjectToObject(o, "label2id");
        int i = 0;
        for (const cJSON *e = l->child; e; e = e->next, i++) {
            char id[16];
            snprintf(id, sizeof id, "%d", i);
            if (!cJSON_IsString(e)) continue;
            cJSON_AddStringToObject(id2label, id, e->valuestring);
            cJSON_AddNumberToObject(label2id, e->valuestring, i);
        }
    }
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    cJSON_Delete(l);
    return text;
}

static ss_status write_config_json(const char *dir, const char *cfg, const ss_meta_kv *meta, size_t n_meta,
                                   ss_error *err) {
    char path[SS_PATH_MAX];
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_CONFIG, err);
    if (st) return st;
    char *text = config_file_text(cfg, meta, n_meta);
    size_t n = text ? strlen(text) : 0;
    char *with_nl = text ? realloc(text, n + 2) : NULL;
    if (!with_nl) {
        free(text);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    with_nl[n] = '\n';
    st = ss_write_file_atomic(path, with_nl, n + 1, err);
    free(with_nl);
    return st;
}

ss_status ss_model_save_with(const ss_model *m, const ss_model *gen, const char *dir, const ss_meta_kv *meta,
                             size_t n_meta, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_status st = ss_mkdir_p(dir, err);
    if (st) return st;
    size_t nt = m->n_tensors + (gen ? gen->n_tensors : 0);
    char *cfg = ss_config_to_json(&m->cfg), *gcfg = gen ? ss_config_to_json(&gen->cfg) : NULL;
    ss_st_tensor *t = calloc(nt, sizeof *t);
    char (*names)[96] = calloc(nt, sizeof *names);
    ss_st_meta *md = calloc(n_meta + 3, sizeof *md);
    if (!cfg || !t || !names || !md || (gen && !gcfg)) {
        st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    } else {
        add_tensors(m, "", t, names);
        if (gen) add_tensors(gen, "generator.", t + m->n_tensors, names + m->n_tensors);
        size_t k = 0;
        md[k++] = (ss_st_meta){"format", "selfsup"};
        md[k++] = (ss_st_meta){"config", cfg};
        if (gen) md[k++] = (ss_st_meta){"generator_config", gcfg};
        for (size_t i = 0; i < n_meta; i++) md[k++] = (ss_st_meta){meta[i].key, meta[i].value};
        st = ss_path_join(path, sizeof path, dir, SS_RUN_MODEL, err);
        if (!st) st = ss_safetensors_write(path, t, nt, md, k, err);
        if (!st) st = write_config_json(dir, cfg, meta, n_meta, err);
    }
    free(cfg); free(gcfg); free(t); free(names); free(md);
    return st;
}

ss_status ss_model_save(const ss_model *m, const char *dir, const ss_meta_kv *meta, size_t n_meta,
                        ss_error *err) {
    return ss_model_save_with(m, NULL, dir, meta, n_meta, err);
}

ss_status ss_model_load_config(ss_model_config *c, const char *dir, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_buf b = {0};
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_CONFIG, err);
    if (!st) st = ss_read_file(path, &b, err);
    if (!st) st = ss_config_from_json(c, b.data, path, err);
    ss_buf_free(&b);
    return st;
}

static int same_config(const ss_model_config *a, const ss_model_config *b) {
    return a->kind == b->kind && a->vocab_size == b->vocab_size && a->n_layer == b->n_layer &&
           a->d_model == b->d_model && a->n_head == b->n_head && a->d_ff == b->d_ff &&
           a->max_seq == b->max_seq && a->head == b->head && a->n_classes == b->n_classes &&
           a->pooling == b->pooling && a->pooler == b->pooler;
}

/* Copy every body tensor from the file, checking shape and finiteness. */
static ss_status read_tensors(ss_model *m, const ss_safetensors *f, const char *path, const char *prefix,
                              ss_error *err) {
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ss_param_info *p = &m->tensors[i];
        const float *data;
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        ss_status st = ss_safetensors_get_f32(f, name, p->ndim, p->shape, &data, err);
        if (st == SS_ERR_NOT_FOUND)
            return ss_fail(err, SS_ERR_FORMAT, "%s: tensor '%s' is missing (the config describes a %d-layer "
                           "model with a '%s' head)", path, name, m->cfg.n_layer, ss_head_kind_name(m->cfg.head));
        if (st) return st == SS_ERR_FORMAT ? ss_error_prefix(err, "config does not match tensors: ") : st;
        for (size_t k = 0; k < p->numel; k++)
            if (!isfinite(data[k]))
                return ss_fail(err, SS_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value at index %zu",
                               path, p->name, k);
        memcpy(m->params + p->offset, data, p->numel * sizeof(float));
    }
    ss_gemm_weights_changed();
    return SS_OK;
}

static ss_status check_tokenizer(const ss_model *m, const char *dir, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_TOKENIZER, err);
    if (st) return st;
    if (!ss_file_exists(path)) return SS_OK;
    ss_tokenizer *tok;
    st = ss_tokenizer_load(&tok, path, err);
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
    char path[SS_PATH_MAX];
    ss_status st = ss_model_load_config(&c, dir, err);
    if (st) return st;
    if ((st = ss_path_join(path, sizeof path, dir, SS_RUN_MODEL, err))) return st;
    ss_safetensors *f;
    if ((st = ss_safetensors_open(&f, path, err))) return st;
    const char *meta_cfg = ss_safetensors_meta(f, "config");
    if (meta_cfg && !(st = ss_config_from_json(&c2, meta_cfg, path, err)) && !same_config(&c, &c2))
        st = ss_fail(err, SS_ERR_FORMAT, "%s/config.json does not match the config stored in %s", dir, path);
    ss_model *m = NULL;
    if (!st) st = ss_model_create(&m, &c, err);
    if (!st) st = read_tensors(m, f, path, "", err);
    ss_safetensors_close(f);
    if (!st) st = check_tokenizer(m, dir, err);
    if (st) {
        ss_model_free(m);
        return st;
    }
    *out = m;
    return SS_OK;
}

ss_status ss_model_load_generator(ss_model *owner, const char *dir, ss_model **out, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_model_config c;
    ss_safetensors *f;
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_MODEL, err);
    if (!st) st = ss_safetensors_open_header(&f, path, err); /* the data is read (and checked) only with a generator */
    if (st) return st;
    const char *gc = ss_safetensors_meta(f, "generator_config");
    ss_model *m = NULL;
    if (!gc) st = ss_fail(err, SS_ERR_NOT_FOUND, "%s holds no ELECTRA generator", path);
    if (!st) st = ss_safetensors_verify(f, err);
    if (!st) st = ss_config_from_json(&c, gc, path, err);
    /* a generator with embeddings of its own (pretrain --gen-embeddings own) saved them; else it reads owner's */
    int own = !st && ss_safetensors_find(f, "generator.embeddings.token.weight") != NULL;
    if (own && c.vocab_size != owner->cfg.vocab_size) /* one tokenizer reads for both */
        st = ss_fail(err, SS_ERR_FORMAT, "%s: the generator's vocab_size %d differs from the model's %d", path,
                     c.vocab_size, owner->cfg.vocab_size);
    if (!st) st = own ? ss_model_create(&m, &c, err) : ss_model_create_shared(&m, &c, owner, err);
    if (!st) st = read_tensors(m, f, path, "generator.", err);
    ss_safetensors_close(f);
    if (st) {
        ss_model_free(m);
        return st;
    }
    *out = m;
    return SS_OK;
}

/* The first body field where the pretrained config `a` differs from m's
 * config `b`, named in the error. */
static ss_status same_body(const ss_model_config *a, const ss_model_config *b, int any_kind, const char *dir,
                           ss_error *err) {
    if (!any_kind && a->kind != b->kind)
        return ss_fail(err, SS_ERR_ARG, "%s: pretrained kind %s differs from this model's %s", dir,
                       ss_model_kind_name(a->kind), ss_model_kind_name(b->kind));
    const struct { const char *name; int pre, mine; } f[] = {
        {"vocab_size", a->vocab_size, b->vocab_size}, {"n_layer", a->n_layer, b->n_layer},
        {"d_model", a->d_model, b->d_model},          {"n_head", a->n_head, b->n_head},
        {"d_ff", a->d_ff, b->d_ff},
        {"d_embed", ss_model_embed_width(a), ss_model_embed_width(b)},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].pre != f[i].mine)
            return ss_fail(err, SS_ERR_ARG, "%s: pretrained %s %d differs from this model's %d", dir, f[i].name,
                           f[i].pre, f[i].mine);
    if (a->no_bias != b->no_bias)
        return ss_fail(err, SS_ERR_ARG, "%s: the pretrained model %s biases in its body, this model %s", dir,
                       a->no_bias ? "has no" : "has", b->no_bias ? "has none" : "has them");
    if (b->max_seq > a->max_seq)
        return ss_fail(err, SS_ERR_ARG, "%s: this model's max_seq %d exceeds the pretrained %d", dir, b->max_seq,
                       a->max_seq);
    return SS_OK;
}

/* Copy m's tensors [0, end) (offsets into the flat array) from src by name:
 * each must be there with the same number of values, except the position
 * table, of which m (max_seq <= the pretrained one) takes the first rows. */
static ss_status copy_tensors(ss_model *m, const ss_model *src, size_t end, const char *dir, ss_error *err) {
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ss_param_info *t = &m->tensors[i];
        if (t->offset >= end) continue;
        const ss_param_info *s = NULL;
        for (size_t k = 0; k < src->n_tensors && !s; k++)
            if (!strcmp(src->tensors[k].name, t->name)) s = &src->tensors[k];
        int prefix = s && !strcmp(t->name, "embeddings.position.weight") && s->numel >= t->numel;
        if (!s || (s->numel != t->numel && !prefix))
            return ss_fail(err, SS_ERR_FORMAT, "%s: pretrained model has no tensor '%s' of %zu values", dir,
                           t->name, t->numel);
        memcpy(m->params + t->offset, src->params + s->offset, t->numel * sizeof(float));
    }
    return SS_OK;
}

/* Every tensor in front of m's head is a body tensor; the loaded model has
 * the same body. */
static ss_status load_body(ss_model *m, const char *dir, int any_kind, ss_error *err) {
    ss_model *src;
    ss_status st = ss_model_load(&src, dir, err);
    if (st) return st;
    if (m->shared_emb) st = ss_fail(err, SS_ERR_ARG, "cannot load a body into a model with shared embeddings");
    if (!st) st = same_body(&src->cfg, &m->cfg, any_kind, dir, err);
    if (!st) st = copy_tensors(m, src, ss_model_head_offset(m), dir, err);
    ss_model_free(src);
    return st;
}

ss_status ss_model_load_body(ss_model *m, const char *dir, ss_error *err) { return load_body(m, dir, 0, err); }

ss_status ss_model_load_body_any_kind(ss_model *m, const char *dir, ss_error *err) {
    return load_body(m, dir, 1, err);
}

ss_status ss_model_load_weights(ss_model *m, const char *dir, ss_error *err) {
    ss_model *src;
    ss_status st = ss_model_load(&src, dir, err);
    if (st) return st;
    if (m->shared_emb) st = ss_fail(err, SS_ERR_ARG, "cannot load weights into a model with shared embeddings");
    if (!st) st = same_body(&src->cfg, &m->cfg, 0, dir, err);
    if (!st && src->cfg.head != m->cfg.head)
        st = ss_fail(err, SS_ERR_ARG, "%s: pretrained head '%s' differs from this model's '%s'", dir,
                     ss_head_kind_name(src->cfg.head), ss_head_kind_name(m->cfg.head));
    if (!st && m->cfg.head == SS_HEAD_CLS && src->cfg.n_classes != m->cfg.n_classes)
        st = ss_fail(err, SS_ERR_ARG, "%s: pretrained n_classes %d differs from this model's %d", dir,
                     src->cfg.n_classes, m->cfg.n_classes);
    if (!st) st = copy_tensors(m, src, m->n_params, dir, err);
    ss_model_free(src);
    return st;
}

int ss_model_params_finite(const ss_model *m) {
    int ok = 1;
    #pragma omp parallel for reduction(&& : ok) schedule(static)
    for (size_t i = 0; i < m->n_params; i++) ok = ok && isfinite(m->params[i]);
    return ok;
}
