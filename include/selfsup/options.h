/* Options described once. Each options struct (ss_train_opts, ss_finetune_opts)
 * is declared by an X-macro file (train_opts.def, finetune_opts.def) whose
 * rows give every option's field, C type, flag, default, accepted range,
 * resume rule and help; from the rows come the struct's fields, a table of
 * ss_opt descriptors, and from the table the defaults, the JSON stored with a
 * checkpoint, range validation, the comparison on --resume, and the CLI's
 * parsing and usage text (src/cli/args.c). */
#ifndef SELFSUP_OPTIONS_H
#define SELFSUP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

typedef enum {
    SS_OPT_INT, SS_OPT_I64, SS_OPT_U64, SS_OPT_DBL, SS_OPT_FLT, SS_OPT_BOOL, SS_OPT_STR, SS_OPT_ENUM,
    SS_OPT_STRS, /* ss_strs: an option that may be given several times (finetune --template) */
} ss_opt_type;

/* The value of an SS_OPT_STRS row: n strings in the order given (n = 0,
 * v = NULL: absent). The strings and the array belong to whoever set them
 * (the CLI: its arguments; a resumed run: the saved options' block). */
typedef struct {
    const char *const *v;
    int n;
} ss_strs;

/* What --resume does with an option. */
typedef enum {
    SS_RESUME_FIXED,  /* defines the run: saved; given with another value on resume, an error naming it */
    SS_RESUME_FREE,   /* may change on resume (cadence, threads): not saved */
    SS_RESUME_LENGTH, /* the run length: saved; on resume it may grow, never shrink (README) */
    SS_RESUME_NONE,   /* not part of the run's definition (--out, --resume) */
} ss_opt_resume;

typedef struct {
    const char *name;         /* field name and JSON key */
    const char *flag;         /* "--lr"; NULL: the CLI parses it by hand */
    const char *metavar;      /* "LR" (flags: "") */
    ss_opt_type type;
    size_t offset;            /* of the field in its struct */
    double def;               /* default: number, 0/1, or enum index (strings: NULL) */
    const char *range;        /* accepted values as an interval, "[0, 1)", "(0, inf)"; "" = any */
    const char *const *names; /* SS_OPT_ENUM: value names by index, NULL-terminated */
    ss_opt_resume resume;
    const char *help;
} ss_opt;

typedef struct {
    const ss_opt *rows;
    size_t n;
} ss_opt_table;

/* Bit i of an options struct's `given`: row i was given by the user (the CLI
 * sets it). Library callers may leave `given` 0: on --resume a value that
 * differs from the default counts as given. */
#define SS_OPT_BIT(i) ((uint64_t)1 << (i))

void ss_opts_defaults(const ss_opt_table *t, void *opts);
/* Every row's value inside its range ("--log-every 0: must be >= 1"). */
ss_status ss_opts_check(const ss_opt_table *t, const void *opts, ss_error *err);
/* Row i's value as text ("0.001", "clm", "(none)"). */
void ss_opt_format(const ss_opt *r, const void *opts, char *out, size_t cap);
/* Set row r from text (the CLI's value); SS_ERR_ARG naming the flag when
 * malformed. An SS_OPT_STRS row is set by its caller (an ss_strs over its
 * own array): SS_ERR_ARG. */
ss_status ss_opt_parse(const ss_opt *r, void *opts, const char *text, ss_error *err);
/* Index of the row with this name, or -1. */
int ss_opt_find(const ss_opt_table *t, const char *name);

#endif
