/* Shared pieces of the command-line front end: option parsing, error
 * reporting and the subcommand entry points. Only src/cli/ prints and exits. */
#ifndef SELFSUP_CLI_H
#define SELFSUP_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/dist.h"
#include "selfsup/error.h"
#include "selfsup/gemm.h"
#include "selfsup/model.h"
#include "selfsup/options.h"

/* Option parsing: options are "--name VALUE", "--name=VALUE" or flags;
 * the common ones also have a short form, "-m VALUE" or "-m=VALUE" (-m
 * --model, -p --prompt, -n --max-new-tokens, -t --threads, -o --out; one
 * table in args.c). Everything else is a positional argument ("-" and
 * negative numbers included; other arguments starting with '-' go after
 * "--"). A value may start with '-' ("--seed -1"). Usage:
 *   cli_args a; cli_args_init(&a, argc, argv, "tokenizer encode", usage_text);
 *   const char *tok = cli_opt(&a, "--tokenizer");   // NULL if absent
 *   int lines = cli_flag(&a, "--lines");
 *   if (cli_args_done(&a)) return 2;  // reports unknown options
 * --help anywhere prints usage_text and exits 0. */
typedef struct {
    int argc;
    char **argv;
    char *used;          /* per-argv: consumed by an option */
    const char *command; /* "tokenizer encode", for messages */
    const char *usage;
    char **positional;
    int n_positional;
    void *owned[8];      /* the value arrays of list options (cli_parse_table), freed by cli_args_free */
    int n_owned;
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv, const char *command,
                   const char *usage);
const char *cli_opt(cli_args *a, const char *name);
int cli_flag(cli_args *a, const char *name);
/* An option that may be given several times (classify's --template): every
 * value in order in *out (malloc'd, the caller frees it; NULL when absent);
 * returns the count. Any other option given twice keeps its last value. */
int cli_opt_all(cli_args *a, const char *name, const char ***out);
/* A numeric option's value text parsed, without exiting (the fuzz target
 * tests/fuzz/fuzz_cli_numbers.c calls these): SS_ERR_ARG naming the option
 * when it is not an integer (strtod's syntax, so 1e6 is one; |v| < 9.2e18),
 * outside int's range, or not a finite number (NaN and infinity never pass). */
ss_status cli_parse_int(const char *name, const char *v, long long *out, ss_error *err);
ss_status cli_parse_i32(const char *name, const char *v, int *out, ss_error *err);
ss_status cli_parse_double(const char *name, const char *v, double *out, ss_error *err);
/* Numeric options: on a malformed value print an error and exit(2). */
long long cli_opt_int(cli_args *a, const char *name, long long def);
/* The same for an int option: a value outside int's range is an error (never wrapped). */
int cli_opt_i32(cli_args *a, const char *name, int def);
double cli_opt_double(cli_args *a, const char *name, double def);
/* Required option: print an error naming it and exit(2) when absent. */
const char *cli_require(cli_args *a, const char *name);
/* Every row of an options table that has a flag: its value parsed into
 * opts (a malformed one: an error naming the flag, exit 2) and its bit set
 * in *given. */
void cli_parse_table(cli_args *a, const ss_opt_table *t, void *opts, uint64_t *given);
/* The table's options for a usage text, one per line: flag, value, help and
 * the default (from `defaults`, a struct holding them). Returns the length. */
size_t cli_table_usage(char *out, size_t cap, const ss_opt_table *t, const void *defaults);
/* A command's whole usage text: head, the table's option lines, tail. */
void cli_usage_with_table(char *out, size_t cap, const char *head, const ss_opt_table *t, const void *defaults,
                          const char *tail);
/* Collect positionals; report unknown options (long or short). Returns nonzero on error. */
int cli_args_done(cli_args *a);
void cli_args_free(cli_args *a);

/* A command whose model comes from a saved run (RUN; WHAT names it in
 * messages: "--init run", "resumed run"): --preset, --layers, --d-model,
 * --heads, --d-ff and --kind, when given, must agree with RUN's config.json
 * (one that differs: an error naming it and both values, exit 2; one that
 * agrees is accepted, as a training option that agrees is on --resume, so
 * the command that started a run continues it with --resume added). The
 * config read goes to *have. --kind is compared with *kind_of when given
 * (pretrain --init: the objective decides the kind, RUN may be of the
 * other), else with RUN's. Returns -1 without checking when RUN is NULL or
 * has no readable config.json (the library reports that), else 0. */
int cli_model_opts_agree(cli_args *a, const char *run, const char *what, const ss_model_kind *kind_of,
                         ss_model_config *have);

/* Print "selfsup: <command>: <message>" to stderr; return exit code 1. */
int cli_report(const char *command, const ss_error *err);
void cli_die(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* --threads N of the commands without an options table (eval, generate,
 * classify, fill-mask, embed, data, tokenizer): def when absent (0: the
 * physical cores); a negative count exits 2 naming the flag, as the tables'
 * range check does. */
int cli_opt_threads(cli_args *a, int def);

/* Default thread count: the number of physical cores. */
int cli_default_threads(void);

/* One thread count for OpenMP and OpenBLAS (both use the OpenMP pool);
 * prints the setup line to stderr (a diagnostic: stdout holds only
 * results). n <= 0: the number of physical cores. Returns n. */
int cli_setup_threads(int n);
/* The same without the line (generate, classify: it would only be noise). */
int cli_threads_quiet(int n);

/* --precision fp32|bf16|auto (NULL: auto): choose the GEMM backend
 * (selfsup/gemm.h, after the threads are set: the probe measures with them)
 * and, when verbose, print the choice, why, and the measured peaks to
 * stderr. --gemm NAME (NULL: none) then forces one backend by name, e.g.
 * openblas-f32, the reference path (comparisons, and a CPU where oneDNN
 * misbehaves). A bad value or an impossible choice exits 2. */
ss_gemm_choice cli_setup_precision(const char *command, const char *precision, const char *gemm, int verbose);
/* Where --precision auto's probe comes from (src/cli/gemm_cache.c): the
 * measurements an earlier command made on this machine (same CPU,
 * libraries and thread count), kept in the cache directory, or measured
 * now and kept there; so that every command chooses the same backend and
 * a seed gives the same bits in every process. SELFSUP_GEMM_PROBE=fresh
 * measures again, =off neither reads nor writes; a bad value exits 2.
 * After the threads are set; cli_setup_precision calls it, and the
 * training commands before their run. verbose: say where the
 * measurements came from on stderr. */
void cli_gemm_probe_prepare(const char *command, int verbose);
/* The --precision line of the usage texts. */
#define CLI_PRECISION_HELP                                                                               \
    "--precision fp32|bf16|auto: matrix products in fp32, or with bf16 inputs and fp32 accumulation\n"  \
    "  (auto, the default: bf16 where the CPU has native bf16 dot products, else fp32 through the\n"    \
    "  faster of OpenBLAS and oneDNN on a short measured probe)\n"                                   \
    "--gemm NAME: force one GEMM backend instead: openblas-f32 (the reference), onednn-f32,\n"         \
    "  onednn-bf16, or openblas-bf16-rounded (OpenBLAS on bf16-rounded inputs)\n"


/* Install the Ctrl-C handler of the training commands and return the flag
 * it sets (pass it as the run's `stop`): the first Ctrl-C lets the run save
 * and stop, a second one kills. The command then exits with
 * CLI_EXIT_INTERRUPTED (128 + SIGINT, what a shell reports for Ctrl-C). */
volatile int *cli_catch_interrupt(void);
#define CLI_EXIT_INTERRUPTED 130

/* Progress callback for ss_pretrain (src/cli/progress.c). */
typedef struct {
    int line_open;
} cli_progress_state;
#include "selfsup/train.h"
void cli_progress(void *ctx, const ss_train_progress *p);

/* Progress callback for ss_evaluate_clm / ss_evaluate_encoder (on stderr);
 * call cli_eval_progress_end after the evaluation to close a live line. */
typedef struct {
    const char *what;    /* line prefix, "eval" when NULL */
    int estimated;       /* total_batches is an estimate (printed "~N") */
    double last_print;
    int line_open;
} cli_eval_state;
void cli_eval_progress(void *ctx, const ss_eval_progress *p);
void cli_eval_progress_end(cli_eval_state *s);
/* A duration as "42s", "3m07s" or "1h05m". */
void cli_fmt_duration(char *out, size_t cap, double seconds);

/* Reads PATH ("-": standard input) one text per line (ss_textstream_next_text;
 * keep_empty passes empty lines on as empty texts) and hands them to flush in
 * input order, in batches of at most cap lines; from a terminal, each line at
 * once. The texts are freed after flush returns. Stops at the first error. */
typedef ss_status (*cli_text_flush)(void *ctx, char *const *texts, size_t n, ss_error *err);
/* Batches of lines classify and embed read at once: the library sorts the
 * lines of one call by length, so more at a time means less padding. */
#define CLI_SORT_BATCHES 16
ss_status cli_text_batches(const char *path, int keep_empty, size_t cap, cli_text_flush flush, void *ctx,
                           ss_error *err);

int cmd_tokenizer(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_fill_mask(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_embed(int argc, char **argv);        /* src/cli/cmd_embed.c */
int cmd_export(int argc, char **argv);       /* src/cli/cmd_export.c */
int cmd_data(int argc, char **argv);
int cmd_data_get(int argc, char **argv);     /* src/cli/cmd_data_get.c */

#endif
