/* The command line's numbers: the input is an option's value text, parsed
 * by the CLI's parsers (src/cli/args.c: cli_parse_int, cli_parse_i32,
 * cli_parse_double, behind cli_opt_int, cli_opt_i32 and cli_opt_double) and
 * by the options tables' parser for every numeric row of pretrain and
 * finetune (ss_opt_parse, then the library's range check ss_opts_check).
 * Nothing wraps and nothing non-finite passes: an accepted integer is the
 * exact value of the text, an accepted number finite, an int row accepts
 * what cli_parse_i32 accepts, and a value that passes the range check is
 * finite. Every refusal names the option. */
#include <math.h>

#include "fuzz.h"

#include "cli.h" /* src/cli: the option parsers */
#include "selfsup/finetune.h"
#include "selfsup/train.h"

static void refused(ss_status st, const ss_error *err, const char *name) {
    fz_check_error(st, err);
    FZ_CHECK(strstr(err->msg, name) != NULL, "the message does not name %s: %s", name, err->msg);
}

static void table(const ss_opt_table *t, void *opts, size_t size, const char *v) {
    void *defaults = malloc(size);
    if (!defaults) abort();
    ss_opts_defaults(t, defaults);
    for (size_t i = 0; i < t->n; i++) {
        const ss_opt *r = &t->rows[i];
        if (!r->flag || r->type == SS_OPT_STR || r->type == SS_OPT_STRS || r->type == SS_OPT_BOOL) continue;
        memcpy(opts, defaults, size);
        ss_error err = {0};
        ss_status st = ss_opt_parse(r, opts, v, &err);
        int i32;
        ss_error e2 = {0};
        ss_status as_i32 = cli_parse_i32(r->flag, v, &i32, &e2);
        if (r->type == SS_OPT_INT) {
            FZ_CHECK((st == SS_OK) == (as_i32 == SS_OK), "%s '%s': table %d, cli_parse_i32 %d", r->flag, v, st,
                     as_i32);
            if (!st) FZ_CHECK(*(int *)((char *)opts + r->offset) == i32, "%s '%s'", r->flag, v);
        }
        if (st) {
            refused(st, &err, r->flag);
            continue;
        }
        char shown[64];
        ss_opt_format(r, opts, shown, sizeof shown);
        st = ss_opts_check(t, opts, &err);
        if (st) {
            refused(st, &err, r->flag);
            continue;
        }
        double x = r->type == SS_OPT_DBL ? *(double *)((char *)opts + r->offset)
                 : r->type == SS_OPT_FLT ? *(float *)((char *)opts + r->offset) : 0;
        FZ_CHECK(isfinite(x), "%s '%s' passed the range check as %s", r->flag, v, shown);
    }
    free(defaults);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *v = fz_cstr(data, size);
    ss_error err = {0};
    long long ll;
    int i32;
    double d;
    ss_status si = cli_parse_int("--steps", v, &ll, &err);
    fz_note("integer", si, &err);
    if (si) refused(si, &err, "--steps");
    else FZ_CHECK(fabs((double)ll) < 9.2e18 && (double)ll == strtod(v, NULL), "'%s' read as %lld", v, ll);
    ss_status s32 = cli_parse_i32("--seq", v, &i32, &err);
    if (s32) refused(s32, &err, "--seq");
    else FZ_CHECK(!si && ll == i32, "'%s' read as %d, as a long long %lld", v, i32, ll);
    if (!si && ll >= -2147483648LL && ll <= 2147483647LL) FZ_CHECK(!s32, "'%s' is an int", v);
    ss_status sd = cli_parse_double("--lr", v, &d, &err);
    if (sd) refused(sd, &err, "--lr");
    else FZ_CHECK(isfinite(d) && d == strtod(v, NULL), "'%s' read as %g", v, d);
    if (!si) FZ_CHECK(!sd && d == (double)ll, "'%s': integer %lld but number %g", v, ll, d);
    ss_train_opts to;
    ss_finetune_opts fo;
    table(&ss_train_opt_table, &to, sizeof to, v);
    table(&ss_finetune_opt_table, &fo, sizeof fo, v);
    free(v);
    return 0;
}
