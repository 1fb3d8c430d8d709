/* Classification metrics from a confusion matrix C (row = true class,
 * column = predicted), with s = sum C, c = trace C, t_k = row sums (true
 * counts) and p_k = column sums (predicted counts):
 *   accuracy = c / s
 *   F1_k     = 2 tp_k / (2 tp_k + fp_k + fn_k), 0 when the denominator is 0,
 *              where tp_k = C[k][k], fp_k = p_k - tp_k, fn_k = t_k - tp_k
 *   macro-F1 = mean_k F1_k (over all k classes)
 *   MCC      = (c s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2)(s^2 - sum_k t_k^2)),
 *              0 when the denominator is 0 (Gorodkin's R_K; for two classes
 *              it is the usual (tp tn - fp fn) / sqrt(...)).
 * Sums are taken in double: s^2 overflows int64 from s ~ 3e9. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/classmetrics.h"

ss_status ss_class_metrics_init(ss_class_metrics *m, int k, ss_error *err) {
    memset(m, 0, sizeof *m);
    if (k < 1 || k > 65536)
        return ss_fail(err, SS_ERR_ARG, "the number of classes %d must be in [1, 65536]", k);
    if (!(m->confusion = calloc((size_t)k * (size_t)k, sizeof *m->confusion)))
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for a %d x %d confusion matrix", k, k);
    m->k = k;
    return SS_OK;
}

void ss_class_metrics_add(ss_class_metrics *m, int truth, int predicted) {
    if (truth < 0 || truth >= m->k || predicted < 0 || predicted >= m->k) return;
    m->confusion[(size_t)truth * (size_t)m->k + (size_t)predicted]++;
    m->n++;
}

void ss_class_metrics_finish(ss_class_metrics *m) {
    int k = m->k;
    double s = 0, c = 0, pt = 0, pp = 0, tt = 0, f1 = 0;
    for (int i = 0; i < k; i++) {
        double t = 0, p = 0, tp = (double)m->confusion[(size_t)i * k + i];
        for (int j = 0; j < k; j++) {
            t += (double)m->confusion[(size_t)i * k + j];
            p += (double)m->confusion[(size_t)j * k + i];
        }
        double den = t + p; /* = 2 tp + fp + fn */
        f1 += den > 0 ? 2 * tp / den : 0;
        s += t, c += tp, pt += p * t, pp += p * p, tt += t * t;
    }
    m->accuracy = s > 0 ? c / s : 0;
    m->macro_f1 = k > 0 ? f1 / k : 0;
    double den = (s * s - pp) * (s * s - tt);
    m->mcc = den > 0 ? (c * s - pt) / sqrt(den) : 0;
}

/* KEY: the shortest decimal that reads back as exactly x (cJSON's own
 * printing stops at 15 digits when they are "close enough"). */
static void add_exact(cJSON *o, const char *key, double x) {
    char buf[32];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, x);
        if (strtod(buf, NULL) == x) break;
    }
    cJSON_AddRawToObject(o, key, buf);
}

char *ss_class_metrics_to_json(const ss_class_metrics *m, char *const *labels) {
    cJSON *o = cJSON_CreateObject(), *conf = cJSON_CreateArray();
    if (!o || !conf) {
        cJSON_Delete(o);
        cJSON_Delete(conf);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "n", (double)m->n);
    add_exact(o, "accuracy", m->accuracy);
    add_exact(o, "macro_f1", m->macro_f1);
    add_exact(o, "mcc", m->mcc);
    for (int i = 0; i < m->k; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < m->k; j++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)m->confusion[(size_t)i * m->k + j]));
        cJSON_AddItemToArray(conf, row);
    }
    cJSON_AddItemToObject(o, "confusion", conf);
    if (labels) cJSON_AddItemToObject(o, "labels", cJSON_CreateStringArray((const char *const *)labels, m->k));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void ss_class_metrics_free(ss_class_metrics *m) {
    if (!m) return;
    free(m->confusion);
    memset(m, 0, sizeof *m);
}
