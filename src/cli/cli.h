/* Shared pieces of the command-line front end: option parsing, error
 * reporting and the subcommand entry points. Only src/cli/ prints and exits. */
#ifndef SELFSUP_CLI_H
#define SELFSUP_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/error.h"

/* Option parsing: options are "--name VALUE", "--name=VALUE" or flags;
 * everything else is a positional argument. Usage:
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
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv, const char *command,
                   const char *usage);
const char *cli_opt(cli_args *a, const char *name);
int cli_flag(cli_args *a, const char *name);
/* Numeric options: on a malformed value print an error and exit(2). */
long long cli_opt_int(cli_args *a, const char *name, long long def);
double cli_opt_double(cli_args *a, const char *name, double def);
/* Required option: print an error naming it and exit(2) when absent. */
const char *cli_require(cli_args *a, const char *name);
/* Collect positionals; report unknown --options. Returns nonzero on error. */
int cli_args_done(cli_args *a);
void cli_args_free(cli_args *a);

/* Print "selfsup: <command>: <message>" to stderr; return exit code 1. */
int cli_report(const char *command, const ss_error *err);
void cli_die(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Default thread count: the number of physical cores. */
int cli_default_threads(void);

/* One thread count for OpenMP and OpenBLAS (both use the OpenMP pool);
 * prints the setup line. n <= 0: the number of physical cores. Returns n. */
int cli_setup_threads(int n);
/* The same without printing (for commands whose stdout is the product). */
int cli_threads_quiet(int n);

/* Progress callback for ss_pretrain (src/cli/progress.c). */
typedef struct {
    int line_open;
} cli_progress_state;
#include "selfsup/train.h"
void cli_progress(void *ctx, const ss_train_progress *p);

int cmd_tokenizer(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_fill_mask(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_data_get(int argc, char **argv);     /* src/cli/cmd_data_get.c */

#endif
