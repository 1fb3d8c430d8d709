/* selfsup fill-mask: the top-k fillers of each [MASK] in a text (ss_fill_mask). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "selfsup/infer.h"

static const char usage[] =
    "usage: selfsup fill-mask --model RUN [--top-k K] [--threads N] [--precision fp32|bf16|auto] [--gemm NAME] TEXT\n"
    "\n"
    "Encodes TEXT (where [MASK] is the mask token), runs the masked LM of RUN (an\n"
    "mlm run, or the generator of an rtd run) over [CLS] TEXT [SEP], and prints\n"
    "the K most probable tokens (default 5) with their probabilities for each\n"
    "[MASK], then TEXT with the best fillers.\n"
    "Short forms: -m RUN (--model), -t N (--threads).\n"
    "\n" CLI_PRECISION_HELP;

/* A token's bytes, quoted, with control characters escaped. */
static void print_token(const char *b, size_t len) {
    putchar('\'');
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == '\n') fputs("\\n", stdout);
        else if (ch == '\t') fputs("\\t", stdout);
        else if (ch < 0x20 || ch == 0x7f) printf("\\x%02x", ch);
        else putchar(ch);
    }
    putchar('\'');
}

/* Each [MASK]'s candidates, then the text with the best fillers. */
static void print_result(const ss_tokenizer *tok, const ss_fill_result *r) {
    for (int j = 0; j < r->n_masks; j++) {
        printf("[MASK] #%d:\n", j + 1);
        for (int i = 0; i < r->k; i++) {
            const ss_token_prob *t = r->top + (size_t)j * r->k + i;
            size_t len;
            const char *bytes = ss_tokenizer_token_bytes(tok, t->id, &len);
            printf("  %6.2f%%  ", 100.0 * t->prob);
            print_token(bytes, len);
            printf("  (id %d)\n", t->id);
        }
    }
    printf("best: %.*s\n", (int)r->filled.len, r->filled.data);
}

int cmd_fill_mask(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "fill-mask", usage);
    const char *run = cli_require(&a, "--model");
    int k = cli_opt_i32(&a, "--top-k", 5), threads = cli_opt_threads(&a, 0);
    const char *precision = cli_opt(&a, "--precision");
    const char *gemm = cli_opt(&a, "--gemm");
    if (cli_args_done(&a)) return 2;
    if (a.n_positional != 1) cli_die(a.command, "give the text as one argument, e.g. 'The [MASK] sat on the mat.'");
    if (k < 1) cli_die(a.command, "--top-k must be at least 1");
    if (threads > 0) cli_setup_threads(threads);
    else cli_threads_quiet(0);
    cli_setup_precision(a.command, precision, gemm, threads > 0);
    const char *text = a.positional[0];
    ss_masked_lm *f = NULL;
    ss_fill_result r = {0};
    ss_error err = {0};
    ss_status st = ss_masked_lm_load(&f, run, &err);
    if (!st) st = ss_fill_mask(f, text, strlen(text), k, &r, &err);
    if (!st) print_result(ss_masked_lm_tokenizer(f), &r);
    ss_fill_result_free(&r);
    ss_masked_lm_free(f);
    cli_args_free(&a);
    return st ? cli_report("fill-mask", &err) : 0;
}
