/* Continued pretraining (pretrain --init RUN): a new run whose model starts
 * from an existing run's weights, on new text, with a fresh optimizer,
 * schedule and step (domain- and task-adaptive pretraining, Gururangan et
 * al. 2020). Unlike --resume, nothing but the weights is taken from RUN.
 *
 *   architecture  RUN's (kind, vocabulary, depth, widths, heads, max_seq);
 *                 the dropout is the new run's
 *   body          RUN's embeddings, blocks and final LayerNorm, always
 *   head          RUN's when it is the head the objective trains (clm: the
 *                 tied LM head, which has no weights of its own; mlm: an
 *                 MLM head; rtd: a discriminator head), else a fresh one
 *   generator     (rtd) RUN's when RUN is an rtd run, else a fresh one
 *
 * The objective decides the kind: clm continues a decoder, mlm and rtd an
 * encoder. A run of the other kind changes kind (its blocks are the same
 * tensors; only the attention mask differs): a clm run continued with mlm
 * becomes an encoder whose attention sees the whole text, as LLM2Vec
 * (BehnamGhader et al. 2024) adapts a decoder with masked prediction before
 * using it bidirectionally; an encoder continued with clm becomes a decoder.
 * The data must be encoded with RUN's tokenizer (compared by content, not by
 * file bytes). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/safetensors.h"
#include "selfsup/tokenizer.h"
#include "trainer_internal.h"

/* 1 when a and b encode every text alike: the same vocabulary (id by id),
 * merges (rank by rank), added tokens, normalization and lowercasing; else
 * 0 and the first difference in why. */
static int same_tokenizer(const ss_tokenizer *a, const ss_tokenizer *b, char *why, size_t cap) {
    size_t va = ss_tokenizer_vocab_size(a), vb = ss_tokenizer_vocab_size(b);
    if (va != vb) return snprintf(why, cap, "vocabularies of %zu and %zu tokens", va, vb), 0;
    for (size_t i = 0; i < va; i++) {
        const char *x = ss_tokenizer_token(a, (int32_t)i), *y = ss_tokenizer_token(b, (int32_t)i);
        if (strcmp(x, y)) return snprintf(why, cap, "token %zu is '%s' in one and '%s' in the other", i, x, y), 0;
    }
    size_t ma = ss_tokenizer_num_merges(a), mb = ss_tokenizer_num_merges(b);
    if (ma != mb) return snprintf(why, cap, "%zu and %zu merges", ma, mb), 0;
    for (size_t r = 0; r < ma; r++) {
        int32_t pa[2], pb[2];
        ss_tokenizer_merge(a, r, pa);
        ss_tokenizer_merge(b, r, pb);
        if (pa[0] != pb[0] || pa[1] != pb[1]) return snprintf(why, cap, "merge %zu differs", r), 0;
    }
    size_t na = ss_tokenizer_num_added(a), nb = ss_tokenizer_num_added(b);
    if (na != nb) return snprintf(why, cap, "%zu and %zu added tokens", na, nb), 0;
    for (size_t i = 0; i < na; i++) {
        const ss_added_token *x = ss_tokenizer_added(a, i), *y = ss_tokenizer_added(b, i);
        if (x->id != y->id || x->special != y->special || strcmp(x->content, y->content))
            return snprintf(why, cap, "added token %zu differs ('%s' and '%s')", i, x->content, y->content), 0;
    }
    if (ss_tokenizer_normalization(a) != ss_tokenizer_normalization(b))
        return snprintf(why, cap, "their Unicode normalizations differ"), 0;
    if (ss_tokenizer_lowercase(a) != ss_tokenizer_lowercase(b))
        return snprintf(why, cap, "one lowercases the text and the other does not"), 0;
    return 1;
}

static ss_status check_tokenizer(const trainer *t, ss_error *err) {
    char dpath[SS_PATH_MAX], ipath[SS_PATH_MAX], why[512];
    ss_status st = ss_path_join(dpath, sizeof dpath, t->o.data_dir, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_path_join(ipath, sizeof ipath, t->o.init, SS_RUN_TOKENIZER, err);
    if (st) return st;
    if (!ss_file_exists(ipath))
        return ss_fail(err, SS_ERR_FORMAT, "--init %s: no %s beside the model, so the data's tokenizer cannot be "
                       "checked against it", t->o.init, SS_RUN_TOKENIZER);
    ss_tokenizer *a = NULL, *b = NULL;
    st = ss_tokenizer_load(&a, dpath, err);
    if (!st) st = ss_tokenizer_load(&b, ipath, err);
    if (!st && !same_tokenizer(a, b, why, sizeof why))
        st = ss_fail(err, SS_ERR_ARG, "the data's tokenizer %s differs from the --init run's %s (%s): continued "
                     "pretraining needs text encoded with the run's tokenizer ('selfsup data prepare --tokenizer "
                     "%s ...')", dpath, ipath, why, ipath);
    ss_tokenizer_free(a);
    ss_tokenizer_free(b);
    return st;
}

static ss_head_kind objective_head(ss_objective o) {
    return o == SS_OBJ_RTD ? SS_HEAD_DISC : o == SS_OBJ_CLM ? SS_HEAD_LM : SS_HEAD_MLM;
}

ss_status obj_init_config(trainer *t, ss_error *err) {
    const char *run = t->o.init;
    char path[SS_PATH_MAX];
    struct stat sb;
    if (stat(run, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ss_fail(err, SS_ERR_NOT_FOUND, "--init %s: no such run directory", run);
    ss_status st = ss_path_join(path, sizeof path, run, SS_RUN_CONFIG, err);
    if (st) return st;
    if (!ss_file_exists(path))
        return ss_fail(err, SS_ERR_NOT_FOUND, "--init %s: not a model directory (no %s)", run, SS_RUN_CONFIG);
    ss_model_config ic;
    if ((st = ss_model_load_config(&ic, run, err))) return ss_error_prefix(err, "--init: ");
    ss_objective ob = t->o.objective;
    if ((st = check_tokenizer(t, err))) return st;
    ss_model_config c = ic;
    c.kind = ob == SS_OBJ_CLM ? SS_DECODER : SS_ENCODER; /* RUN's blocks under the objective's attention */
    t->init_other_kind = c.kind != ic.kind;
    c.head = objective_head(ob);
    c.dropout = t->o.model.dropout;
    c.d_embed = 0;
    c.n_classes = 0;
    c.pooling = SS_POOL_CLS;
    c.pooler = 0;
    c.bidirectional = 0; /* a classifier fine-tuned bidirectionally continues as the decoder it was */
    t->o.model = c;
    return SS_OK;
}

/* The head's tensors (behind the body in m's parameters) from RUN's model,
 * by name and size, when RUN's model has m's kind of head (*loaded = 1);
 * else m's head keeps its fresh values. */
static ss_status load_head(ss_model *m, const char *run, int *loaded, ss_error *err) {
    ss_model *src;
    ss_status st = ss_model_load(&src, run, err);
    if (st) return st;
    const ss_model_config *a = ss_model_config_of(src), *b = ss_model_config_of(m);
    *loaded = a->head == b->head && ss_model_embed_width(a) == ss_model_embed_width(b);
    size_t head = ss_model_head_offset(m);
    for (size_t i = 0; *loaded && !st && i < ss_model_num_tensors(m); i++) {
        const ss_param_info *t = ss_model_tensor(m, i);
        if (t->offset < head) continue;
        const ss_param_info *f = ss_model_find_tensor(src, t->name);
        if (!f || f->numel != t->numel)
            st = ss_fail(err, SS_ERR_FORMAT, "%s: no head tensor '%s' of %zu values", run, t->name, t->numel);
        else
            memcpy(ss_model_params(m) + t->offset, ss_model_params(src) + f->offset, t->numel * sizeof(float));
    }
    ss_model_free(src);
    return st;
}

/* The step RUN's model.safetensors records (-1: none). */
static int64_t saved_step(const char *path) {
    ss_safetensors *f;
    ss_error e = {0};
    if (ss_safetensors_open(&f, path, &e)) return -1;
    const char *s = ss_safetensors_meta(f, "step");
    int64_t step = s ? strtoll(s, NULL, 10) : -1;
    ss_safetensors_close(f);
    return step;
}

/* An rtd run's generator into t->tm.gen (which must have its shape: the
 * same --gen-size); *found 0 when RUN has none. */
static ss_status load_generator(trainer *t, int *found, ss_error *err) {
    ss_model *g = NULL;
    *found = 0;
    ss_status st = ss_model_load_generator(t->tm.model, t->o.init, &g, err);
    if (st == SS_ERR_NOT_FOUND) {
        *err = (ss_error){0};
        return SS_OK;
    }
    if (st) return st;
    const ss_model_config *a = ss_model_config_of(g), *b = ss_model_config_of(t->tm.gen);
    if (a->n_layer != b->n_layer || a->d_model != b->d_model || a->n_head != b->n_head || a->d_ff != b->d_ff)
        st = ss_fail(err, SS_ERR_ARG, "--gen-size %g makes a generator of d_model %d, %d heads, d_ff %d; the --init "
                     "run's generator has d_model %d, %d heads, d_ff %d: give the --gen-size that run used",
                     t->o.gen_size, b->d_model, b->n_head, b->d_ff, a->d_model, a->n_head, a->d_ff);
    else if (ss_model_shares_embeddings(g) != ss_model_shares_embeddings(t->tm.gen))
        st = ss_fail(err, SS_ERR_ARG, "%s",
                     ss_model_shares_embeddings(g) ? "the --init run's generator shares the discriminator's "
                                                     "embeddings: leave --gen-embeddings own out"
                                                   : "the --init run's generator has embeddings of its own: give "
                                                     "--gen-embeddings own");
    else if (ss_model_num_params(g) != ss_model_num_params(t->tm.gen))
        st = ss_fail(err, SS_ERR_FORMAT, "%s: the generator's tensors do not fit its config", t->o.init);
    if (!st) {
        memcpy(ss_model_params(t->tm.gen), ss_model_params(g), ss_model_num_params(g) * sizeof(float));
        ss_gemm_weights_changed();
        *found = 1;
    }
    ss_model_free(g);
    return st;
}

ss_status obj_init_models(trainer *t, char *msg, size_t cap, ss_error *err) {
    const char *run = t->o.init;
    if ((uint32_t)t->o.model.vocab_size != t->train.vocab_size)
        return ss_fail(err, SS_ERR_FORMAT, "%s: the data's vocabulary (%u) differs from the --init run's (%d)",
                       t->o.data_dir, t->train.vocab_size, t->o.model.vocab_size);
    /* fresh, seeded models first: what RUN lacks (another head, a generator) starts from these */
    ss_status st = obj_create_models(t, err);
    int head = 0, gen = 0;
    if (!st) st = ss_model_load_body_any_kind(t->tm.model, run, err);
    if (!st) st = load_head(t->tm.model, run, &head, err);
    if (!st) ss_gemm_weights_changed();
    if (!st && t->tm.gen) st = load_generator(t, &gen, err);
    char path[SS_PATH_MAX];
    if (!st) st = ss_path_join(path, sizeof path, run, SS_RUN_MODEL, err);
    if (!st) st = ss_sha256_file(path, t->state.init_sha256, err);
    if (st) return ss_error_prefix(err, "--init %s: ", run);
    t->state.init_step = saved_step(path);
    char what[300];
    int decoder = t->o.objective == SS_OBJ_CLM;
    if (t->init_other_kind)
        snprintf(what, sizeof what, "the %s's body as %s (attention %s), a fresh %s head%s",
                 decoder ? "encoder" : "decoder", decoder ? "a decoder" : "an encoder",
                 decoder ? "causal from now on" : "over the whole text from now on",
                 ss_head_kind_name(ss_model_config_of(t->tm.model)->head), t->tm.gen ? " and a fresh generator" : "");
    else if (decoder) snprintf(what, sizeof what, "its weights");
    else
        snprintf(what, sizeof what, "its body%s%s %s head%s", t->tm.gen ? ", " : " and ", head ? "its" : "a fresh",
                 ss_head_kind_name(ss_model_config_of(t->tm.model)->head),
                 !t->tm.gen ? "" : gen ? " and its generator" : " and a fresh generator");
    char step[48] = "";
    if (t->state.init_step >= 0) snprintf(step, sizeof step, "step %" PRId64 ", ", t->state.init_step);
    snprintf(msg, cap, "continuing from %s (%smodel.safetensors sha256 %.16s...): %s; a fresh optimizer, schedule "
             "and step", run, step, t->state.init_sha256, what);
    return SS_OK;
}
