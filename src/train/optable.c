/* Options tables: defaults, ranges, text and JSON forms, and the rules of
 * --resume, for any options struct described by an ss_opt table. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optable.h"

#define FIELD(r, o, T) ((T *)((char *)(o) + (r)->offset))
#define CFIELD(r, o, T) ((const T *)((const char *)(o) + (r)->offset))

/* Numbers (and bools, enums) as double; U64 is compared as integers apart. */
static double get_num(const ss_opt *r, const void *o) {
    switch (r->type) {
    case SS_OPT_INT: case SS_OPT_BOOL: case SS_OPT_ENUM: return *CFIELD(r, o, int);
    case SS_OPT_I64: return (double)*CFIELD(r, o, int64_t);
    case SS_OPT_U64: return (double)*CFIELD(r, o, uint64_t);
    case SS_OPT_DBL: return *CFIELD(r, o, double);
    case SS_OPT_FLT: return *CFIELD(r, o, float);
    default: return 0;
    }
}

static void set_num(const ss_opt *r, void *o, double v) {
    switch (r->type) {
    case SS_OPT_INT: case SS_OPT_BOOL: case SS_OPT_ENUM: *FIELD(r, o, int) = (int)v; break;
    case SS_OPT_I64: *FIELD(r, o, int64_t) = (int64_t)v; break;
    case SS_OPT_U64: *FIELD(r, o, uint64_t) = (uint64_t)v; break;
    case SS_OPT_DBL: *FIELD(r, o, double) = v; break;
    case SS_OPT_FLT: *FIELD(r, o, float) = (float)v; break;
    default: break;
    }
}

void ss_opts_defaults(const ss_opt_table *t, void *o) {
    for (size_t i = 0; i < t->n; i++) {
        if (t->rows[i].type == SS_OPT_STR) *FIELD(&t->rows[i], o, const char *) = NULL;
        else if (t->rows[i].type == SS_OPT_STRS) *FIELD(&t->rows[i], o, ss_strs) = (ss_strs){NULL, 0};
        else set_num(&t->rows[i], o, t->rows[i].def);
    }
}

int ss_opt_find(const ss_opt_table *t, const char *name) {
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].name, name) == 0) return (int)i;
    return -1;
}

void ss_opt_format(const ss_opt *r, const void *o, char *out, size_t cap) {
    switch (r->type) {
    case SS_OPT_STR: {
        const char *s = *CFIELD(r, o, const char *);
        snprintf(out, cap, "%s", s ? s : "(none)");
        break;
    }
    case SS_OPT_STRS: { /* 'a' 'b' */
        const ss_strs *l = CFIELD(r, o, ss_strs);
        size_t n = 0;
        out[0] = '\0';
        for (int i = 0; i < l->n && n < cap; i++) {
            int w = snprintf(out + n, cap - n, "%s'%s'", i ? " " : "", l->v[i]);
            n += w > 0 ? (size_t)w : 0;
        }
        if (l->n == 0) snprintf(out, cap, "(none)");
        break;
    }
    case SS_OPT_ENUM: {
        int v = *CFIELD(r, o, int), n = 0;
        while (r->names[n]) n++;
        snprintf(out, cap, "%s", v >= 0 && v < n ? r->names[v] : "auto");
        break;
    }
    case SS_OPT_U64: snprintf(out, cap, "%" PRIu64, *CFIELD(r, o, uint64_t)); break;
    case SS_OPT_INT: case SS_OPT_BOOL: case SS_OPT_I64: snprintf(out, cap, "%.0f", get_num(r, o)); break;
    case SS_OPT_FLT: snprintf(out, cap, "%g", get_num(r, o)); break;
    default: /* the shortest of 10 or 17 digits that reads back exactly */
        snprintf(out, cap, "%.10g", get_num(r, o));
        if (strtod(out, NULL) != get_num(r, o)) snprintf(out, cap, "%.17g", get_num(r, o));
        break;
    }
}

/* The interval "[lo, hi)" of a row; an empty range accepts anything. */
static int in_range(const char *range, double v) {
    if (!range[0]) return 1;
    char *end;
    double lo = strtod(range + 1, &end), hi = strtod(strchr(range, ',') + 1, NULL);
    char close = range[strlen(range) - 1];
    return (range[0] == '[' ? v >= lo : v > lo) && (close == ']' ? v <= hi : v < hi);
}

/* "must be >= 1", "must be in [0, 1)" */
static void range_text(const char *range, char *out, size_t cap) {
    if (strstr(range, "inf)")) snprintf(out, cap, "%s %.*s", range[0] == '[' ? ">=" : ">",
                                        (int)(strchr(range, ',') - range - 1), range + 1);
    else snprintf(out, cap, "in %s", range);
}

ss_status ss_opts_check(const ss_opt_table *t, const void *o, ss_error *err) {
    for (size_t i = 0; i < t->n; i++) {
        const ss_opt *r = &t->rows[i];
        if (r->type == SS_OPT_STR || r->type == SS_OPT_STRS || r->type == SS_OPT_U64 || r->type == SS_OPT_ENUM)
            continue;
        double v = get_num(r, o);
        if (in_range(r->range, v)) continue;
        char val[64], want[64];
        ss_opt_format(r, o, val, sizeof val);
        range_text(r->range, want, sizeof want);
        return ss_fail(err, SS_ERR_ARG, "%s %s: must be %s", r->flag ? r->flag : r->name, val, want);
    }
    return SS_OK;
}

ss_status ss_opt_parse(const ss_opt *r, void *o, const char *text, ss_error *err) {
    char *end;
    errno = 0;
    switch (r->type) {
    case SS_OPT_STR: *FIELD(r, o, const char *) = text; return SS_OK;
    case SS_OPT_STRS: return ss_fail(err, SS_ERR_ARG, "option %s: a list, set by its caller", r->flag ? r->flag : r->name);
    case SS_OPT_BOOL: *FIELD(r, o, int) = 1; return SS_OK;
    case SS_OPT_ENUM:
        for (int k = 0; r->names[k]; k++)
            if (strcmp(r->names[k], text) == 0) {
                *FIELD(r, o, int) = k;
                return SS_OK;
            }
        if (r->def < 0 && strcmp(text, "auto") == 0) { /* an enum whose default is decided later */
            *FIELD(r, o, int) = -1;
            return SS_OK;
        }
        return ss_fail(err, SS_ERR_ARG, "%s: '%s' is not one of %s", r->flag, text, r->metavar);
    case SS_OPT_U64: {
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text || *end) return ss_fail(err, SS_ERR_ARG, "option %s: '%s' is not an integer", r->flag, text);
        *FIELD(r, o, uint64_t) = v;
        return SS_OK;
    }
    default: {
        double d = strtod(text, &end); /* accepts 1e6 as well as 1000000 */
        if (errno || end == text || *end || !isfinite(d))
            return ss_fail(err, SS_ERR_ARG, "option %s: '%s' is not a finite number", r->flag, text);
        int integral = r->type == SS_OPT_INT || r->type == SS_OPT_I64;
        /* the range test comes first: casting a double outside long long's range is undefined */
        if (integral && (fabs(d) >= 9.2e18 || d != (double)(long long)d || (r->type == SS_OPT_INT && (d > 2147483647.0 || d < -2147483648.0))))
            return ss_fail(err, SS_ERR_ARG, "option %s: '%s' is not an integer", r->flag, text);
        set_num(r, o, d);
        return SS_OK;
    }
    }
}

static int saved(const ss_opt *r) { return r->resume == SS_RESUME_FIXED || r->resume == SS_RESUME_LENGTH; }

void opts_to_json(const ss_opt_table *t, const void *o, cJSON *j) {
    for (size_t i = 0; i < t->n; i++) {
        const ss_opt *r = &t->rows[i];
        if (!saved(r)) continue;
        char buf[64];
        if (r->type == SS_OPT_STR) {
            const char *s = *CFIELD(r, o, const char *);
            if (s) cJSON_AddStringToObject(j, r->name, s);
            else cJSON_AddNullToObject(j, r->name);
        } else if (r->type == SS_OPT_STRS) { /* null, a string (one value: as a STR row saves it), or an array */
            const ss_strs *l = CFIELD(r, o, ss_strs);
            if (l->n == 0) cJSON_AddNullToObject(j, r->name);
            else if (l->n == 1) cJSON_AddStringToObject(j, r->name, l->v[0]);
            else cJSON_AddItemToObject(j, r->name, cJSON_CreateStringArray(l->v, l->n));
        } else if (r->type == SS_OPT_ENUM || r->type == SS_OPT_U64) { /* names; 64 bits exactly, as a string */
            ss_opt_format(r, o, buf, sizeof buf);
            cJSON_AddStringToObject(j, r->name, buf);
        } else {
            cJSON_AddNumberToObject(j, r->name, get_num(r, o));
        }
    }
}

/* Keys that older runs saved under another name. */
static const cJSON *lookup(const cJSON *j, const char *name) {
    static const char *const legacy[][2] = {{"data_dir", "data"}};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    for (size_t k = 0; !v && k < sizeof legacy / sizeof legacy[0]; k++)
        if (strcmp(legacy[k][0], name) == 0) v = cJSON_GetObjectItemCaseSensitive(j, legacy[k][1]);
    return v;
}

/* A saved STRS row: null, one string, or an array of strings; *ptrs takes
 * its array, *pool its strings. */
static ss_status read_strs(const ss_opt *r, void *o, const cJSON *v, const char *src, const char ***ptrs, char **pool,
                           ss_error *err) {
    ss_strs *l = FIELD(r, o, ss_strs);
    *l = (ss_strs){NULL, 0};
    if (cJSON_IsNull(v)) return SS_OK;
    int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    const cJSON *e = cJSON_IsString(v) ? v : cJSON_IsArray(v) ? v->child : NULL;
    if (n < 1) return ss_fail(err, SS_ERR_FORMAT, "%s: saved option '%s' is not a string or a list of strings", src,
                              r->name);
    const char **arr = *ptrs;
    for (int i = 0; i < n; i++, e = e->next) {
        if (!cJSON_IsString(e))
            return ss_fail(err, SS_ERR_FORMAT, "%s: saved option '%s' holds a value that is not a string", src, r->name);
        size_t len = strlen(e->valuestring) + 1;
        memcpy(*pool, e->valuestring, len);
        arr[i] = *pool;
        *pool += len;
    }
    *ptrs += n;
    *l = (ss_strs){arr, n};
    return SS_OK;
}

static ss_status read_row(const ss_opt *r, void *o, const cJSON *v, const char *src, char **pool, ss_error *err) {
    if (r->type == SS_OPT_STR) {
        if (cJSON_IsNull(v)) {
            *FIELD(r, o, const char *) = NULL;
            return SS_OK;
        }
        if (!cJSON_IsString(v)) return ss_fail(err, SS_ERR_FORMAT, "%s: saved option '%s' is not a string", src, r->name);
        size_t n = strlen(v->valuestring) + 1;
        memcpy(*pool, v->valuestring, n);
        *FIELD(r, o, const char *) = *pool;
        *pool += n;
        return SS_OK;
    }
    if (r->type == SS_OPT_ENUM || r->type == SS_OPT_U64) {
        ss_error e = {0};
        if (!cJSON_IsString(v) || ss_opt_parse(r, o, v->valuestring, &e))
            return ss_fail(err, SS_ERR_FORMAT, "%s: saved option '%s' is not valid", src, r->name);
        return SS_OK;
    }
    if (!cJSON_IsNumber(v)) return ss_fail(err, SS_ERR_FORMAT, "%s: saved option '%s' is not a number", src, r->name);
    set_num(r, o, v->valuedouble);
    return SS_OK;
}

/* Options added after runs were saved, with the value those runs had (NULL:
 * a string option that was absent): a run saved before --precision existed
 * computed in fp32 (OpenBLAS); one saved before --layer-decay trained every
 * layer at the same rate; before self-training, nothing was unlabelled;
 * before prompt-based fine-tuning, there was no template or verbalizer;
 * before pretrain --init, pretraining started from random weights; before
 * --unfreeze-every, every tensor trained from the first step; before
 * --detokenize, texts were tokenized as given; before --disc-warmup, the
 * discriminator had its full weight from the first step; before
 * --disc-start, it trained from the first step; before --gen-temperature,
 * the generator sampled at temperature 1; before
 * --gold-repeat, a student saw each labelled row once per epoch; before
 * --teachers, one teacher labelled the pool; before --per-class, no
 * subset was balanced; before --schedule, pretraining decayed by a cosine;
 * before --disc-init, the discriminator started from its own random weights;
 * before --batch-ramp, every step had --grad-accum micro-batches; before
 * --gen-embeddings, an rtd generator shared the discriminator's embeddings.
 * tests/test_train_options_compat.c loads options saved by old versions
 * (tests/golden/options/): a row added without a line here fails it. */
static const struct {
    const char *name, *value;
} added_later[] = {{"precision", "fp32"}, {"layer_decay", "1"}, {"rtd_generator", "model"}, {"unlabeled", NULL},
                   {"rounds", "1"}, {"threshold", "0.9"}, {"max_pseudo", "0"},
                   {"template", NULL}, {"verbalizer", NULL}, {"init", NULL},
                   {"student_epochs", "0"}, {"causal_share", "0.0625"}, {"unfreeze_every", "0"},
                   {"detokenize", "none"}, {"disc_warmup", "0"}, {"gold_repeat", "1"},
                   {"teachers", "1"}, {"per_class", "0"}, {"schedule", "cosine"},
                   {"disc_start", "0"}, {"gen_temperature", "1"},
                   {"disc_start_share", "0"}, {"disc_init", "fresh"}, {"batch_ramp", "0"},
                   {"attention", "auto"}, {"gen_embeddings", "shared"}};

/* 1 when `name` is listed above, its old value in *value. */
static int added_later_row(const char *name, const char **value) {
    for (size_t i = 0; i < sizeof added_later / sizeof added_later[0]; i++)
        if (!strcmp(added_later[i].name, name)) {
            *value = added_later[i].value;
            return 1;
        }
    return 0;
}

/* The block of saved strings: the STRS rows' pointer arrays first (aligned
 * as malloc aligns), then every string. */
ss_status opts_from_json(const ss_opt_table *t, void *o, const cJSON *j, const char *src, char **keep,
                         ss_error *err) {
    size_t bytes = 1, n_ptrs = 0;
    for (size_t i = 0; i < t->n; i++) {
        const cJSON *v = lookup(j, t->rows[i].name);
        if (t->rows[i].type == SS_OPT_STR && cJSON_IsString(v)) bytes += strlen(v->valuestring) + 1;
        if (t->rows[i].type != SS_OPT_STRS) continue;
        for (const cJSON *e = cJSON_IsArray(v) ? v->child : v; e; e = cJSON_IsArray(v) ? e->next : NULL) {
            if (cJSON_IsString(e)) bytes += strlen(e->valuestring) + 1;
            n_ptrs++;
        }
    }
    void *block = malloc(n_ptrs * sizeof(char *) + bytes);
    if (!(*keep = block)) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    const char **ptrs = block;
    char *pool = (char *)(ptrs + n_ptrs);
    for (size_t i = 0; i < t->n; i++) {
        const ss_opt *r = &t->rows[i];
        if (!saved(r)) continue;
        const cJSON *v = lookup(j, r->name);
        if (!v && r->resume == SS_RESUME_LENGTH) continue;
        const char *old = NULL;
        if (!v && added_later_row(r->name, &old)) {
            if (!old) { /* a string option the run did not have */
                if (r->type == SS_OPT_STR) *FIELD(r, o, const char *) = NULL;
                if (r->type == SS_OPT_STRS) *FIELD(r, o, ss_strs) = (ss_strs){NULL, 0};
                continue;
            }
            ss_error e = {0};
            if (!old && r->type == SS_OPT_STR) *FIELD(r, o, const char *) = NULL;
            else if (!old || ss_opt_parse(r, o, old, &e))
                return ss_fail(err, SS_ERR_FORMAT, "%s: %s", src, old ? e.msg : "no value for an option added later");
            continue;
        }
        if (!v) return ss_fail(err, SS_ERR_FORMAT, "%s: the saved options lack '%s' (a run saved by another "
                               "version of selfsup?)", src, r->name);
        ss_status st = r->type == SS_OPT_STRS ? read_strs(r, o, v, src, &ptrs, &pool, err)
                                              : read_row(r, o, v, src, &pool, err);
        if (st) return st;
    }
    return SS_OK;
}

int opt_given(const ss_opt *r, const void *o, uint64_t given, size_t i) {
    if (given & SS_OPT_BIT(i)) return 1;
    if (r->type == SS_OPT_STR) return *CFIELD(r, o, const char *) != NULL;
    if (r->type == SS_OPT_STRS) return CFIELD(r, o, ss_strs)->n > 0;
    if (r->type == SS_OPT_U64) return *CFIELD(r, o, uint64_t) != (uint64_t)r->def;
    if (r->type == SS_OPT_FLT) return (float)get_num(r, o) != (float)r->def;
    return get_num(r, o) != r->def;
}

/* Two paths name the same file: equal strings, or the same real path. */
static int same_path(const char *a, const char *b) {
    if (!a || !b) return a == b;
    if (strcmp(a, b) == 0) return 1;
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    int same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

static int same_value(const ss_opt *r, const void *a, const void *b) {
    if (r->type == SS_OPT_STR) return same_path(*CFIELD(r, a, const char *), *CFIELD(r, b, const char *));
    if (r->type == SS_OPT_STRS) { /* the same strings in the same order */
        const ss_strs *x = CFIELD(r, a, ss_strs), *y = CFIELD(r, b, ss_strs);
        int same = x->n == y->n;
        for (int i = 0; same && i < x->n; i++) same = strcmp(x->v[i], y->v[i]) == 0;
        return same;
    }
    if (r->type == SS_OPT_U64) return *CFIELD(r, a, uint64_t) == *CFIELD(r, b, uint64_t);
    return get_num(r, a) == get_num(r, b);
}

static void copy_value(const ss_opt *r, void *dst, const void *src) {
    size_t size = r->type == SS_OPT_STRS ? sizeof(ss_strs) : r->type == SS_OPT_STR ? sizeof(const char *) : r->type == SS_OPT_I64 || r->type == SS_OPT_U64 ||
                  r->type == SS_OPT_DBL ? 8 : 4;
    memcpy((char *)dst + r->offset, (const char *)src + r->offset, size);
}

ss_status opts_resume(const ss_opt_table *t, void *o, const void *saved_opts, uint64_t given, ss_error *err) {
    for (size_t i = 0; i < t->n; i++) {
        const ss_opt *r = &t->rows[i];
        if (r->resume != SS_RESUME_FIXED) continue;
        if (opt_given(r, o, given, i) && !same_value(r, o, saved_opts)) {
            char now[512], was[512];
            ss_opt_format(r, o, now, sizeof now);
            ss_opt_format(r, saved_opts, was, sizeof was);
            return ss_fail(err, SS_ERR_ARG, "%s %s differs from the run's %s: an option that defines a run cannot "
                           "change on --resume (leave it out, or start a new run)", r->flag ? r->flag : r->name,
                           now, was);
        }
        copy_value(r, o, saved_opts);
    }
    return SS_OK;
}
