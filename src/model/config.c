/* Model configuration: presets, validation and config.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "selfsup/model.h"

typedef struct {
    const char *name;
    int n_layer, d_model, n_head, d_ff, max_seq;
} preset;

/* Parameter counts with a vocab of 8192 are in the README. */
static const preset PRESETS[] = {
    {"tiny", 2, 128, 2, 512, 256},
    {"small", 4, 256, 4, 1024, 512},
    {"base", 6, 384, 6, 1536, 512},
};

ss_status ss_config_preset(ss_model_config *c, const char *name, ss_error *err) {
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++) {
        if (strcmp(PRESETS[i].name, name) != 0) continue;
        c->n_layer = PRESETS[i].n_layer;
        c->d_model = PRESETS[i].d_model;
        c->n_head = PRESETS[i].n_head;
        c->d_ff = PRESETS[i].d_ff;
        c->max_seq = PRESETS[i].max_seq;
        return SS_OK;
    }
    return ss_fail(err, SS_ERR_ARG, "unknown preset '%s' (presets: tiny, small, base)", name);
}

ss_status ss_config_validate(const ss_model_config *c, ss_error *err) {
    if (c->kind != SS_DECODER && c->kind != SS_ENCODER)
        return ss_fail(err, SS_ERR_ARG, "kind must be decoder or encoder");
    if (c->vocab_size < 2) return ss_fail(err, SS_ERR_ARG, "vocab_size %d must be >= 2", c->vocab_size);
    if (c->n_layer < 1) return ss_fail(err, SS_ERR_ARG, "n_layer %d must be >= 1", c->n_layer);
    if (c->d_model < 1 || c->n_head < 1 || c->d_model % c->n_head != 0)
        return ss_fail(err, SS_ERR_ARG, "d_model %d must be a positive multiple of n_head %d",
                       c->d_model, c->n_head);
    if (c->d_ff < 1) return ss_fail(err, SS_ERR_ARG, "d_ff %d must be >= 1", c->d_ff);
    if (c->max_seq < 1) return ss_fail(err, SS_ERR_ARG, "max_seq %d must be >= 1", c->max_seq);
    if (c->d_embed < 0) return ss_fail(err, SS_ERR_ARG, "d_embed %d must be >= 0", c->d_embed);
    if (c->head != SS_HEAD_LM && c->head != SS_HEAD_MLM && c->head != SS_HEAD_DISC && c->head != SS_HEAD_CLS)
        return ss_fail(err, SS_ERR_ARG, "unknown head kind %d", (int)c->head);
    if (c->d_embed > 0 && c->d_embed != c->d_model && c->head != SS_HEAD_MLM)
        return ss_fail(err, SS_ERR_ARG, "d_embed %d differs from d_model %d: only an mlm head (an ELECTRA "
                       "generator) projects back to the embedding width", c->d_embed, c->d_model);
    if (c->no_bias != 0 && c->no_bias != 1) return ss_fail(err, SS_ERR_ARG, "no_bias %d must be 0 or 1", c->no_bias);
    if (c->bidirectional != 0 && c->bidirectional != 1)
        return ss_fail(err, SS_ERR_ARG, "bidirectional %d must be 0 or 1", c->bidirectional);
    if (c->bidirectional && (c->kind != SS_DECODER || c->head != SS_HEAD_CLS))
        return ss_fail(err, SS_ERR_ARG, "bidirectional attention is for a decoder with a classification head (an "
                       "encoder's attention is bidirectional already; a language model head predicts the next "
                       "token, which it must not see)");
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return ss_fail(err, SS_ERR_ARG, "dropout %g must be in [0, 1)", (double)c->dropout);
    if (c->head == SS_HEAD_CLS) {
        if (c->n_classes < 2 || c->n_classes > 65536)
            return ss_fail(err, SS_ERR_ARG, "n_classes %d must be in [2, 65536]", c->n_classes);
        if (c->pooling < SS_POOL_CLS || c->pooling > SS_POOL_WMEAN)
            return ss_fail(err, SS_ERR_ARG, "unknown pooling %d", (int)c->pooling);
        if (c->pooler != 0 && c->pooler != 1)
            return ss_fail(err, SS_ERR_ARG, "pooler %d must be 0 or 1", c->pooler);
    }
    return SS_OK;
}

const char *ss_model_kind_name(ss_model_kind k) { return k == SS_ENCODER ? "encoder" : "decoder"; }

const char *ss_head_kind_name(ss_head_kind h) {
    return h == SS_HEAD_MLM ? "mlm" : h == SS_HEAD_DISC ? "disc" : h == SS_HEAD_CLS ? "cls" : "lm";
}

static const char *const POOLINGS[] = {"cls", "last", "mean", "wmean"}; /* indexed by ss_pooling */

const char *ss_pooling_name(ss_pooling p) {
    return p >= SS_POOL_CLS && p <= SS_POOL_WMEAN ? POOLINGS[p] : "?";
}

ss_status ss_pooling_parse(const char *s, ss_pooling *p, ss_error *err) {
    for (int i = SS_POOL_CLS; i <= SS_POOL_WMEAN; i++)
        if (s && !strcmp(s, POOLINGS[i])) {
            *p = (ss_pooling)i;
            return SS_OK;
        }
    return ss_fail(err, SS_ERR_ARG, "unknown pooling '%s' (choices: cls, last, mean, wmean)", s ? s : "");
}

/* The double whose shortest decimal form is the float's shortest form, so
 * JSON shows a float as it was written (0.1, not 0.10000000149011612). */
static double float_as_written(float f) {
    char s[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(s, sizeof s, "%.*g", p, (double)f);
        if (strtof(s, NULL) == f) break;
    }
    return strtod(s, NULL);
}

char *ss_config_to_json(const ss_model_config *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model_type", "selfsup");
    cJSON_AddStringToObject(o, "kind", ss_model_kind_name(c->kind));
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(o, "d_model", c->d_model);
    cJSON_AddNumberToObject(o, "n_head", c->n_head);
    cJSON_AddNumberToObject(o, "d_ff", c->d_ff);
    cJSON_AddNumberToObject(o, "max_seq", c->max_seq);
    cJSON_AddNumberToObject(o, "dropout", float_as_written(c->dropout));
    cJSON_AddNumberToObject(o, "d_embed", ss_model_embed_width(c));
    cJSON_AddStringToObject(o, "head", ss_head_kind_name(c->head));
    if (c->no_bias) cJSON_AddBoolToObject(o, "bias", 0);
    if (c->bidirectional) cJSON_AddStringToObject(o, "attention", "bidirectional");
    if (c->head == SS_HEAD_CLS) {
        cJSON_AddNumberToObject(o, "n_classes", c->n_classes);
        cJSON_AddStringToObject(o, "pooling", ss_pooling_name(c->pooling));
        cJSON_AddBoolToObject(o, "pooler", c->pooler);
    }
    if (c->text_norm != SS_TEXT_NORM_NONE)
        cJSON_AddStringToObject(o, "text_normalization", ss_text_norm_names[c->text_norm]);
    cJSON_AddNumberToObject(o, "layer_norm_eps", 1e-5);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", 1);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

static ss_status get_int(const cJSON *o, const char *key, int *out, const char *src, ss_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e9)
        return ss_fail(err, SS_ERR_FORMAT, "%s: field '%s' must be an integer", src, key);
    *out = (int)v->valuedouble;
    return SS_OK;
}

/* The classification head's fields (required when head is "cls"). */
static ss_status cls_fields(const cJSON *o, ss_model_config *c, const char *src, ss_error *err) {
    ss_status st = get_int(o, "n_classes", &c->n_classes, src, err);
    if (st) return st;
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(o, "pooling");
    if (!cJSON_IsString(pl) || ss_pooling_parse(pl->valuestring, &c->pooling, err))
        return ss_fail(err, SS_ERR_FORMAT, "%s: field 'pooling' must be \"cls\", \"last\", \"mean\" or \"wmean\"", src);
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "pooler");
    if (!cJSON_IsBool(pr)) return ss_fail(err, SS_ERR_FORMAT, "%s: field 'pooler' must be true or false", src);
    c->pooler = cJSON_IsTrue(pr);
    return SS_OK;
}

/* Fields added after the first format: absent means the old default. */
static ss_status optional_fields(const cJSON *o, ss_model_config *c, const char *src, ss_error *err) {
    const cJSON *de = cJSON_GetObjectItemCaseSensitive(o, "d_embed");
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(o, "head");
    ss_status st = SS_OK;
    if (de && (st = get_int(o, "d_embed", &c->d_embed, src, err))) return st;
    if (c->d_embed == c->d_model) c->d_embed = 0;
    const cJSON *bi = cJSON_GetObjectItemCaseSensitive(o, "bias");
    if (bi && !cJSON_IsBool(bi)) return ss_fail(err, SS_ERR_FORMAT, "%s: field 'bias' must be true or false", src);
    c->no_bias = bi && cJSON_IsFalse(bi);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "attention"); /* absent: the kind's own */
    if (at && !(cJSON_IsString(at) && (!strcmp(at->valuestring, "causal") || !strcmp(at->valuestring, "bidirectional"))))
        return ss_fail(err, SS_ERR_FORMAT, "%s: field 'attention' must be \"causal\" or \"bidirectional\"", src);
    if (at && c->kind == SS_ENCODER && strcmp(at->valuestring, "bidirectional"))
        return ss_fail(err, SS_ERR_FORMAT, "%s: field 'attention' is \"causal\": an encoder's is bidirectional", src);
    c->bidirectional = at && c->kind == SS_DECODER && !strcmp(at->valuestring, "bidirectional");
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(o, "text_normalization");
    if (tn && (!cJSON_IsString(tn) || ss_text_norm_parse(tn->valuestring, &c->text_norm, err)))
        return ss_fail(err, SS_ERR_FORMAT, "%s: field 'text_normalization' must be \"none\" or \"ptb\"", src);
    if (hd) {
        const char *h = cJSON_IsString(hd) ? hd->valuestring : "";
        if (!strcmp(h, "lm")) c->head = SS_HEAD_LM;
        else if (!strcmp(h, "mlm")) c->head = SS_HEAD_MLM;
        else if (!strcmp(h, "disc")) c->head = SS_HEAD_DISC;
        else if (!strcmp(h, "cls")) c->head = SS_HEAD_CLS;
        else return ss_fail(err, SS_ERR_FORMAT, "%s: field 'head' must be \"lm\", \"mlm\", \"disc\" or \"cls\"", src);
    }
    return c->head == SS_HEAD_CLS ? cls_fields(o, c, src, err) : SS_OK;
}

ss_status ss_config_from_json(ss_model_config *c, const char *json, const char *src, ss_error *err) {
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ss_fail(err, SS_ERR_FORMAT, "%s: not a JSON object", src);
    }
    memset(c, 0, sizeof *c);
    ss_status st = SS_OK;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    if (!cJSON_IsString(kind) || (strcmp(kind->valuestring, "decoder") && strcmp(kind->valuestring, "encoder")))
        st = ss_fail(err, SS_ERR_FORMAT, "%s: field 'kind' must be \"decoder\" or \"encoder\"", src);
    else
        c->kind = strcmp(kind->valuestring, "encoder") == 0 ? SS_ENCODER : SS_DECODER;
    if (!st) st = get_int(o, "vocab_size", &c->vocab_size, src, err);
    if (!st) st = get_int(o, "n_layer", &c->n_layer, src, err);
    if (!st) st = get_int(o, "d_model", &c->d_model, src, err);
    if (!st) st = get_int(o, "n_head", &c->n_head, src, err);
    if (!st) st = get_int(o, "d_ff", &c->d_ff, src, err);
    if (!st) st = get_int(o, "max_seq", &c->max_seq, src, err);
    const cJSON *dp = cJSON_GetObjectItemCaseSensitive(o, "dropout");
    if (!st) {
        if (dp && !cJSON_IsNumber(dp)) st = ss_fail(err, SS_ERR_FORMAT, "%s: field 'dropout' must be a number", src);
        else c->dropout = dp ? (float)dp->valuedouble : 0.0f;
    }
    if (!st) st = optional_fields(o, c, src, err);
    cJSON_Delete(o);
    if (!st && (st = ss_config_validate(c, err))) ss_error_prefix(err, "%s: ", src);
    if (st == SS_ERR_ARG) err->code = st = SS_ERR_FORMAT;
    return st;
}

/* 6 x (matmul weights per token) + 12 L T C attention: the body of a model
 * (blocks and, for a generator, the embedding projection). */
double ss_model_body_flops(const ss_model_config *c, int T) {
    double C = c->d_model, F = c->d_ff, L = c->n_layer, E = ss_model_embed_width(c);
    return 6.0 * (L * (4 * C * C + 2 * C * F) + (E != C ? C * E : 0)) + 12.0 * L * T * C;
}

/* 6 x the head's matmul weights for one position with a target (CLS: for
 * one pooled sequence). */
double ss_model_head_flops(const ss_model_config *c) {
    double E = ss_model_embed_width(c), C = c->d_model, V = c->vocab_size;
    if (c->head == SS_HEAD_DISC) return 6.0 * (C * C + C);
    if (c->head == SS_HEAD_CLS) return 6.0 * ((c->pooler ? C * C : 0) + (double)c->n_classes * C);
    return 6.0 * (V * E + (c->head == SS_HEAD_MLM ? E * C : 0));
}

double ss_model_flops_per_token(const ss_model_config *c, int T) {
    return ss_model_body_flops(c, T) + ss_model_head_flops(c);
}
