/* The options tables' JSON and --resume rules (src/train/optable.c), shared
 * by pretraining (options.c) and fine-tuning (finetune_opts.c). */
#ifndef SELFSUP_OPTABLE_H
#define SELFSUP_OPTABLE_H

#include <cJSON.h>

#include "selfsup/options.h"

/* The saved rows (resume rule FIXED or LENGTH) as members of j. */
void opts_to_json(const ss_opt_table *t, const void *opts, cJSON *j);
/* Read the saved rows from j into opts: a FIXED row missing is
 * SS_ERR_FORMAT naming it (a LENGTH row missing keeps its value: runs saved
 * before it was stored). Strings are copied into one block, *keep. */
ss_status opts_from_json(const ss_opt_table *t, void *opts, const cJSON *j, const char *src, char **keep,
                         ss_error *err);
/* On resume: each FIXED row of `opts` that was given (bit in `given`, or a
 * value other than the default) must equal the saved run's, else SS_ERR_ARG
 * naming the option; then every FIXED row takes the saved value. FREE and
 * NONE rows keep the caller's; LENGTH rows are the caller's to decide. */
ss_status opts_resume(const ss_opt_table *t, void *opts, const void *saved, uint64_t given, ss_error *err);
/* Whether row r was given: its bit, or a value other than the default. */
int opt_given(const ss_opt *r, const void *opts, uint64_t given, size_t i);

#endif
