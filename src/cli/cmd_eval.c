/* selfsup eval: loss, perplexity and bits per byte on the val split. */
#include <stdio.h>

#include "cli.h"
#include "selfsup/train.h"

static const char usage[] =
    "usage: selfsup eval --model RUN --data SHARDS [--split val|train] [--seq T] [--batch B]\n"
    "                    [--max-tokens N] [--threads N]\n"
    "\n"
    "Evaluates a decoder on a split of prepared shards in non-overlapping windows\n"
    "of T tokens (default: the model's max_seq) and prints loss (nats/token),\n"
    "perplexity and bits per byte (loss over the UTF-8 bytes the tokens stand\n"
    "for, so models with different tokenizers compare).\n";

int cmd_eval(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "eval", usage);
    const char *run = cli_require(&a, "--model"), *data = cli_require(&a, "--data");
    const char *split = cli_opt(&a, "--split");
    int T = (int)cli_opt_int(&a, "--seq", 0), B = (int)cli_opt_int(&a, "--batch", 8);
    long long max_tokens = cli_opt_int(&a, "--max-tokens", 0);
    int threads = (int)cli_opt_int(&a, "--threads", 0);
    if (cli_args_done(&a)) return 2;
    cli_setup_threads(threads);
    ss_error err = {0};
    ss_model *m = NULL;
    ss_token_split s = {0};
    ss_eval_result r;
    ss_status st = ss_model_load(&m, run, &err);
    if (!st) st = ss_token_split_load(&s, data, split ? split : "val", &err);
    if (!st && s.vocab_size != (uint32_t)ss_model_config_of(m)->vocab_size)
        st = ss_fail(&err, SS_ERR_FORMAT, "%s: the shards' vocabulary (%u) does not match the model's (%d)",
                     data, s.vocab_size, ss_model_config_of(m)->vocab_size);
    if (!st && ss_model_config_of(m)->kind != SS_DECODER)
        st = ss_fail(&err, SS_ERR_ARG, "%s is an encoder; eval of encoders reports masked-LM metrics "
                     "(not available in this build)", run);
    if (!st) {
        if (T <= 0) T = ss_model_config_of(m)->max_seq;
        st = ss_evaluate_clm(m, &s, B, T, max_tokens, &r, &err);
    }
    if (!st)
        printf("split %s: %lld tokens | loss %.4f | perplexity %.2f | bits per byte %.4f\n",
               split ? split : "val", (long long)r.tokens, r.loss, r.perplexity, r.bits_per_byte);
    ss_model_free(m);
    ss_token_split_free(&s);
    cli_args_free(&a);
    return st ? cli_report("eval", &err) : 0;
}
