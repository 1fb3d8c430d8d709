/* Classification metrics from a confusion matrix: accuracy, macro-F1 and
 * Matthews' correlation coefficient (the multi-class form, Gorodkin 2004,
 * which is sklearn's matthews_corrcoef). */
#ifndef SELFSUP_CLASSMETRICS_H
#define SELFSUP_CLASSMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

typedef struct {
    int k;               /* classes */
    int64_t *confusion;  /* [k, k]: row = true class, column = predicted */
    int64_t n;
    double accuracy;
    double macro_f1;     /* mean over all k classes of F1 = 2tp / (2tp + fp + fn); a class
                            with no true and no predicted row has F1 0 and still counts
                            (sklearn's f1_score(average="macro", labels=range(k)); without
                            labels= sklearn leaves such a class out of the mean) */
    double mcc;          /* in [-1, 1]; 0 when undefined (a constant prediction) */
} ss_class_metrics;

/* k in [1, 65536], else SS_ERR_ARG. */
ss_status ss_class_metrics_init(ss_class_metrics *m, int k, ss_error *err);
/* Count one example. Ids outside [0, k) are a caller's bug and are not
 * counted (n tells how many were). */
void ss_class_metrics_add(ss_class_metrics *m, int truth, int predicted);
/* Compute accuracy, macro-F1 and MCC from the confusion counts. */
void ss_class_metrics_finish(ss_class_metrics *m);
/* {"n":..,"accuracy":..,"macro_f1":..,"mcc":..,"confusion":[[..],..],"labels":[..]}
 * (malloc'd, NULL when out of memory; labels, k of them, may be NULL: then
 * omitted). The doubles read back exactly. */
char *ss_class_metrics_to_json(const ss_class_metrics *m, char *const *labels);
void ss_class_metrics_free(ss_class_metrics *m);

#endif
