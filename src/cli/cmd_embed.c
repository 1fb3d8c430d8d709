/* selfsup embed: one vector per input line (ss_embed), as JSON lines or a .npy file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "selfsup/embed.h"
#include "selfsup/io.h"

static const char usage[] =
    "usage: selfsup embed --model RUN [--pooling mean|cls|last|wmean] [--normalize] [--batch N] [--max-seq N]\n"
    "                     [--npy FILE] [--detokenize none|ptb] [--threads N] [--precision fp32|bf16|auto]\n"
    "                     [--gemm NAME] [FILE...]\n"
    "\n"
    "Writes one vector per input line (files, plain or .zst, or standard input;\n"
    "'-' is standard input), in input order: the model body's hidden states\n"
    "(after the final LayerNorm) pooled over the line's tokens. RUN is a\n"
    "pretraining run (clm decoder, mlm encoder, rtd run: its discriminator) or a\n"
    "fine-tuned classifier (its body; the head is not used). A line is read as\n"
    "fine-tuning reads a text: [CLS] line [SEP] (encoder), line <|endoftext|>\n"
    "(decoder).\n"
    "\n"
    "Output: a JSON array of d_model numbers per line on standard output\n"
    "([0.0123, -1.5, ...], each float32 printed with the fewest digits that read\n"
    "back exactly); with --npy FILE, a NumPy .npy file instead (float32, shape\n"
    "[lines, d_model], written atomically), and nothing on standard output.\n"
    "\n"
    "  --pooling mean|cls|last|wmean  mean over the tokens (special tokens\n"
    "                           included), the [CLS] position (encoders), the last\n"
    "                           token (a decoder's <|endoftext|>), or the position-\n"
    "                           weighted mean (the k-th of n tokens weighs k; SGPT's\n"
    "                           pooling for decoders). Default: mean for an\n"
    "                           encoder, last for a decoder; a fine-tuned classifier:\n"
    "                           the pooling its head was trained with\n"
    "  --normalize              scale each vector to unit L2 norm\n"
    "  --batch N                lines per forward pass (64; 1 from a terminal)\n"
    "  --max-seq N              tokens per line, [CLS]/[SEP] or <|endoftext|> included\n"
    "                           (the model's max_seq); a longer line keeps its start,\n"
    "                           and standard error says how many were cut\n"
    "  --npy FILE               write a .npy file instead of JSON lines\n"
    "  --detokenize none|ptb    normalize each line first (ptb: undo Penn Treebank\n"
    "                           tokenization, as finetune --detokenize); default:\n"
    "                           the model's (a classifier's choice), else none\n"
    "An empty line is embedded as the empty text (so output lines match input\n"
    "lines); a line with invalid UTF-8 or a NUL byte is an error naming FILE:LINE.\n"
    "Short forms: -m RUN (--model), -t N (--threads).\n"
    "\n" CLI_PRECISION_HELP;

typedef struct {
    ss_embedder e;
    ss_embed_opts o;
    ss_npy_writer *npy;
    size_t cap, lines, truncated;
    float *vecs;
} embed_ctx;

/* A float32 as JSON: the fewest significant digits (6..9) that read back to the same float. */
static void print_float(float v) {
    char b[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)v);
        if (strtof(b, NULL) == v) break;
    }
    fputs(b, stdout);
}

/* Embeds one batch of lines and writes its vectors. */
static ss_status flush(void *ctx, char *const *texts, size_t n, ss_error *err) {
    embed_ctx *x = ctx;
    int d = ss_embedder_dim(&x->e);
    size_t cut = 0;
    ss_status st = ss_embed(&x->e, texts, n, &x->o, x->vecs, &cut, err);
    x->truncated += cut;
    x->lines += n;
    if (!st && x->npy) st = ss_npy_append(x->npy, x->vecs, n, err);
    for (size_t i = 0; i < n && !st && !x->npy; i++) {
        putchar('[');
        for (int j = 0; j < d; j++) {
            if (j) fputs(", ", stdout);
            print_float(x->vecs[i * (size_t)d + j]);
        }
        fputs("]\n", stdout);
    }
    if (!x->npy) fflush(stdout);
    return st;
}

int cmd_embed(int argc, char **argv) {
    cli_args a;
    embed_ctx x = {0};
    cli_args_init(&a, argc, argv, "embed", usage);
    const char *dir = cli_require(&a, "--model"), *pooling = cli_opt(&a, "--pooling");
    const char *npy = cli_opt(&a, "--npy"), *precision = cli_opt(&a, "--precision");
    const char *gemm = cli_opt(&a, "--gemm"), *detok = cli_opt(&a, "--detokenize");
    x.o.normalize = cli_flag(&a, "--normalize");
    x.o.batch = cli_opt_i32(&a, "--batch", 64);
    int max_seq = cli_opt_i32(&a, "--max-seq", 0);
    int threads = cli_opt_threads(&a, 0);
    if (cli_args_done(&a)) return 2;
    if (x.o.batch < 1) cli_die(a.command, "--batch must be >= 1");
    if (cli_opt(&a, "--max-seq") && max_seq < 3) cli_die(a.command, "--max-seq must be >= 3");
    ss_error err = {0};
    ss_pooling pool = SS_POOL_MEAN;
    if (pooling && ss_pooling_parse(pooling, &pool, &err)) cli_die(a.command, "--pooling: %s", err.msg);
    ss_text_norm norm = SS_TEXT_NORM_NONE;
    if (detok && ss_text_norm_parse(detok, &norm, &err)) cli_die(a.command, "--detokenize: %s", err.msg);
    cli_threads_quiet(threads);
    cli_setup_precision(a.command, precision, gemm, 0);
    ss_status st = ss_embedder_load(&x.e, dir, max_seq, &err);
    if (!st) {
        x.o.pooling = pooling ? pool : x.e.default_pooling;
        x.o.text_norm = detok ? norm : x.e.default_text_norm;
        /* one line at a time from a terminal; else CLI_SORT_BATCHES batches, sorted by length together */
        x.cap = (size_t)x.o.batch * CLI_SORT_BATCHES;
        x.vecs = malloc(x.cap * (size_t)ss_embedder_dim(&x.e) * sizeof(float));
        if (!x.vecs) st = ss_fail(&err, SS_ERR_NOMEM, "out of memory");
    }
    if (!st && x.o.pooling == SS_POOL_CLS && ss_model_config_of(x.e.model)->kind == SS_DECODER)
        st = ss_fail(&err, SS_ERR_ARG, "--pooling cls reads position 0, which in a decoder has seen only the first "
                     "token: use last or mean");
    if (!st && npy) st = ss_npy_open(&x.npy, npy, ss_embedder_dim(&x.e), &err);
    for (int i = 0; i < (a.n_positional ? a.n_positional : 1) && !st; i++)
        st = cli_text_batches(a.n_positional ? a.positional[i] : "-", 1, x.cap, flush, &x, &err);
    if (x.npy) {
        if (!st) st = ss_npy_commit(x.npy, &err);
        else ss_npy_abort(x.npy);
    }
    if (!st && x.truncated)
        fprintf(stderr, "embed: %zu of %zu lines were longer than %d tokens (--max-seq, with the special tokens) "
                "and were cut to their start\n", x.truncated, x.lines, x.e.fmt.max_seq);
    if (!st && npy)
        fprintf(stderr, "embed: wrote %zu vectors of %d float32 (pooling %s%s) to %s\n", x.lines,
                ss_embedder_dim(&x.e), ss_pooling_name(x.o.pooling), x.o.normalize ? ", normalized" : "", npy);
    free(x.vecs);
    ss_embedder_free(&x.e);
    cli_args_free(&a);
    return st ? cli_report("embed", &err) : 0;
}
