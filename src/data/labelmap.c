/* The label map: class names in id order. Built from the training labels
 * (distinct strings, sorted numerically when all are integers so "2" < "10",
 * else bytewise), stored as a JSON array next to a fine-tuned model, and used
 * to turn every row's label into its class id. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/io.h"
#include "selfsup/labeled.h"

/* How much of a label an error message quotes (escaped: ss_quote_bytes). */
#define QUOTE_MAX 60

/* s as a whole is a decimal integer that fits in int64 (no spaces). */
static int as_integer(const char *s, long long *v) {
    if (!(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9'))) return 0;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno == 0 && end != s && *end == '\0';
}

static int cmp_bytes(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* By value; distinct strings with one value ("1", "01") by bytes, so equal
 * strings stay adjacent for the de-duplication. */
static int cmp_numeric(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    long long u, v;
    as_integer(x, &u);
    as_integer(y, &v);
    return u < v ? -1 : u > v ? 1 : strcmp(x, y);
}

/* "'0', '1', ..." into buf, cut short with "..." when long. */
static void list_names(char *const *names, int n, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        char q[4 * QUOTE_MAX + 8];
        int m = snprintf(buf + k, cap - k, "%s%s", i ? ", " : "",
                         ss_quote_bytes(q, sizeof q, names[i], strlen(names[i]), QUOTE_MAX));
        if (m < 0 || (size_t)m >= cap - k) {
            snprintf(buf + (cap > 8 ? cap - 8 : 0), 8, ", ...");
            return;
        }
        k += (size_t)m;
    }
}

ss_status ss_label_map_build(ss_label_map *m, const ss_labeled_set *s, const char *path, ss_error *err) {
    memset(m, 0, sizeof *m);
    size_t n = 0;
    char **all = malloc((s->n ? s->n : 1) * sizeof *all);
    if (!all) return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory building the label map", path);
    int numeric = 1;
    long long v;
    for (size_t i = 0; i < s->n; i++)
        if (s->labels[i]) {
            all[n++] = s->labels[i];
            numeric = numeric && as_integer(s->labels[i], &v);
        }
    qsort(all, n, sizeof *all, numeric ? cmp_numeric : cmp_bytes);
    size_t k = 0; /* distinct labels, in place */
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(all[k - 1], all[i]) != 0) all[k++] = all[i];
    ss_status st = SS_OK;
    if (k < 2)
        st = ss_fail(err, SS_ERR_FORMAT, "%s: %s: classification needs at least 2 distinct labels", path,
                     k ? "every row has the same label" : "no row has a label");
    else if (k > 0x7fffffff)
        st = ss_fail(err, SS_ERR_FORMAT, "%s: %zu distinct labels is too many", path, k);
    if (!st && !(m->names = calloc(k, sizeof *m->names)))
        st = ss_fail(err, SS_ERR_NOMEM, "%s: out of memory building the label map", path);
    for (size_t i = 0; !st && i < k; i++, m->n++)
        if (!(m->names[i] = strdup(all[i])))
            st = ss_fail(err, SS_ERR_NOMEM, "%s: out of memory building the label map", path);
    free(all);
    if (st) ss_label_map_free(m);
    return st;
}

/* Linear: maps are small (a handful of classes), and apply runs once. */
int ss_label_map_find(const ss_label_map *m, const char *label) {
    for (int i = 0; label && i < m->n; i++)
        if (strcmp(m->names[i], label) == 0) return i;
    return -1;
}

ss_status ss_label_map_apply(const ss_label_map *m, const ss_labeled_set *s, const char *path, int32_t *ids,
                             ss_error *err) {
    for (size_t i = 0; i < s->n; i++) {
        int id = ss_label_map_find(m, s->labels[i]);
        if (id >= 0) {
            ids[i] = id;
            continue;
        }
        if (!s->labels[i])
            return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: the row has no label", path, (long long)s->lines[i]);
        char known[512];
        list_names(m->names, m->n, known, sizeof known);
        char q[4 * QUOTE_MAX + 8];
        return ss_fail(err, SS_ERR_FORMAT, "%s:%lld: label '%s' is not one of the training labels: %s", path,
                       (long long)s->lines[i], ss_quote_bytes(q, sizeof q, s->labels[i], strlen(s->labels[i]), QUOTE_MAX),
                       known);
    }
    return SS_OK;
}

char *ss_label_map_to_json(const ss_label_map *m) {
    cJSON *a = cJSON_CreateStringArray((const char *const *)m->names, m->n);
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

ss_status ss_label_map_from_json(ss_label_map *m, const char *json, const char *source, ss_error *err) {
    memset(m, 0, sizeof *m);
    cJSON *a = cJSON_Parse(json);
    ss_status st = SS_OK;
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    if (!cJSON_IsArray(a))
        st = ss_fail(err, SS_ERR_FORMAT, "%s: the label map is not a JSON array of class names", source);
    else if (n < 2)
        st = ss_fail(err, SS_ERR_FORMAT, "%s: the label map has %d name%s; a classifier needs at least 2", source,
                     n, n == 1 ? "" : "s");
    else if (!(m->names = calloc((size_t)n, sizeof *m->names)))
        st = ss_fail(err, SS_ERR_NOMEM, "%s: out of memory reading the label map", source);
    const cJSON *e = a ? a->child : NULL;
    for (int i = 0; !st && i < n; i++, e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0])
            st = ss_fail(err, SS_ERR_FORMAT, "%s: label map entry %d is not a non-empty string", source, i);
        else if (ss_label_map_find(m, e->valuestring) >= 0) {
            char q[4 * QUOTE_MAX + 8];
            st = ss_fail(err, SS_ERR_FORMAT, "%s: label '%s' appears twice in the label map", source,
                         ss_quote_bytes(q, sizeof q, e->valuestring, strlen(e->valuestring), QUOTE_MAX));
        }
        else if (!(m->names[i] = strdup(e->valuestring)))
            st = ss_fail(err, SS_ERR_NOMEM, "%s: out of memory reading the label map", source);
        else
            m->n++;
    }
    cJSON_Delete(a);
    if (st) ss_label_map_free(m);
    return st;
}

void ss_label_map_free(ss_label_map *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    m->names = NULL;
    m->n = 0;
}

ss_status ss_labeled_subsample_per_class(ss_labeled_set *s, const ss_label_map *m, size_t per_class, uint64_t seed,
                                         const char *path, ss_error *err) {
    size_t *count = calloc((size_t)m->n, sizeof *count);
    if (!count) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        int k = ss_label_map_find(m, s->labels[i]);
        if (k >= 0) count[k]++;
    }
    for (int k = 0; k < m->n; k++)
        if (count[k] < per_class) {
            ss_status st = ss_fail(err, SS_ERR_ARG, "%zu rows of each class asked for, but class '%s' has %zu in %s",
                                   per_class, m->names[k], count[k], path);
            free(count);
            return st;
        }
    memset(count, 0, (size_t)m->n * sizeof *count);
    ss_labeled_subsample(s, s->n, seed); /* every row, shuffled: the subsample's order */
    size_t kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        int k = ss_label_map_find(m, s->labels[i]);
        if (k >= 0 && count[k] < per_class) {
            count[k]++;
            s->texts[kept] = s->texts[i], s->labels[kept] = s->labels[i], s->lines[kept] = s->lines[i];
            kept++;
        } else {
            free(s->texts[i]);
            free(s->labels[i]);
        }
    }
    s->n = kept;
    free(count);
    return SS_OK;
}
