/* selfsup eval: loss, perplexity and bits per byte of a decoder, or masked-LM
 * loss and accuracy (and ELECTRA's discriminator accuracy and AUC) of an
 * encoder, on a split of prepared shards. */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "selfsup/encoder_eval.h"
#include "selfsup/path.h"
#include "selfsup/train.h"

static const char usage[] =
    "usage: selfsup eval --model RUN --data SHARDS [--split val|train] [--seq T] [--batch B]\n"
    "                    [--max-tokens N] [--threads N] [--precision fp32|bf16|auto] [--gemm NAME]\n"
    "\n"
    "Decoder: loss (nats/token), perplexity and bits per byte (loss over the UTF-8\n"
    "bytes the tokens stand for, so models with different tokenizers compare), in\n"
    "non-overlapping windows of T tokens (default: the model's max_seq).\n"
    "Encoder (mlm or rtd run): masked-LM loss and masked-token accuracy with masks\n"
    "from a fixed seed (numbers compare across runs) and the run's masking\n"
    "(--mask-prob, --mask-replace, --mask-random, --whole-word as pretrained);\n"
    "the spread of the body's vectors (mean cosine, participation ratio: near 1\n"
    "the body has collapsed onto one direction); for an rtd run also the\n"
    "discriminator's accuracy and AUC on every real token (replacements sampled\n"
    "from the run's generator, also for a --rtd-generator uniform run). T\n"
    "defaults to 128.\n"
    "\n"
    "Progress goes to stderr: a live line on a terminal, else a line every 10 s.\n"
    "\n" CLI_PRECISION_HELP;

typedef struct {
    ss_model *m, *gen;
    ss_token_split s;
    ss_doc_index docs;
    ss_mlm_config mlm;
    ss_tokenizer *tok;
    cli_eval_state progress;
} eval_ctx;

static void free_ctx(eval_ctx *c) {
    ss_model_free(c->gen);
    ss_model_free(c->m);
    ss_token_split_free(&c->s);
    ss_doc_index_free(&c->docs);
    ss_mlm_config_free(&c->mlm);
    ss_tokenizer_free(c->tok);
}

static ss_status eval_encoder(eval_ctx *c, const char *run, const char *data, int B, int T, long long max_tokens,
                              ss_eval_result *r, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_status st = ss_path_join(path, sizeof path, data, SS_RUN_TOKENIZER, err);
    if (!st) st = ss_tokenizer_load(&c->tok, path, err);
    if (!st) st = ss_mlm_config_from_tokenizer(&c->mlm, c->tok, err);
    int from_run = 0;
    if (!st) st = ss_mlm_config_from_run(&c->mlm, run, &from_run, err);
    if (!st) st = ss_doc_index_build(&c->docs, &c->s, err);
    if (st) return st;
    printf("masking (%s): %.0f%% of the tokens chosen%s; of them %.0f%% [MASK], %.0f%% a random token, the rest "
           "unchanged\n", from_run ? "the run's" : "the defaults: no trainer_state.json", 100.0 * c->mlm.mask_prob,
           c->mlm.whole_word ? " (whole words)" : "", 100.0 * c->mlm.mask_replace, 100.0 * c->mlm.mask_random);
    if (ss_model_config_of(c->m)->head == SS_HEAD_DISC) {
        st = ss_model_load_generator(c->m, run, &c->gen, err);
        if (st == SS_ERR_NOT_FOUND)
            return ss_fail(err, SS_ERR_ARG, "%s is a discriminator without its generator: evaluate the rtd run "
                           "directory that holds both", run);
        if (st) return st;
        return ss_evaluate_encoder(c->gen, c->m, 0, &c->docs, &c->mlm, B, T, max_tokens, cli_eval_progress,
                                   &c->progress, r, err);
    }
    if (ss_model_config_of(c->m)->head != SS_HEAD_MLM)
        return ss_fail(err, SS_ERR_ARG, "%s is an encoder without a masked-LM head", run);
    return ss_evaluate_encoder(c->m, NULL, 0, &c->docs, &c->mlm, B, T, max_tokens, cli_eval_progress, &c->progress, r,
                               err);
}

int cmd_eval(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "eval", usage);
    const char *run = cli_require(&a, "--model"), *data = cli_require(&a, "--data");
    const char *split = cli_opt(&a, "--split");
    int T = cli_opt_i32(&a, "--seq", 0), B = cli_opt_i32(&a, "--batch", 8);
    long long max_tokens = cli_opt_int(&a, "--max-tokens", 0);
    int threads = cli_opt_threads(&a, 0);
    const char *precision = cli_opt(&a, "--precision");
    const char *gemm = cli_opt(&a, "--gemm");
    if (cli_args_done(&a)) return 2;
    if (B < 1 || T < 0) cli_die(a.command, "--batch must be >= 1 and --seq >= 1");
    cli_setup_threads(threads);
    cli_setup_precision(a.command, precision, gemm, 1);
    ss_error err = {0};
    eval_ctx c = {0};
    ss_eval_result r;
    split = split ? split : "val";
    char what[64];
    snprintf(what, sizeof what, "eval %s", split);
    c.progress.what = what;
    ss_status st = ss_model_load(&c.m, run, &err);
    if (!st) st = ss_token_split_load(&c.s, data, split, &err);
    const ss_model_config *cfg = st ? NULL : ss_model_config_of(c.m);
    if (!st && c.s.vocab_size != (uint32_t)cfg->vocab_size)
        st = ss_fail(&err, SS_ERR_FORMAT, "%s: the shards' vocabulary (%u) does not match the model's (%d)",
                     data, c.s.vocab_size, cfg->vocab_size);
    if (!st && cfg->head == SS_HEAD_CLS)
        st = ss_fail(&err, SS_ERR_ARG, "%s is a fine-tuned classifier: its dev/test metrics are in %s/eval.json, "
                     "and 'selfsup classify --model %s' labels texts", run, run, run);
    if (!st && cfg->kind == SS_DECODER) {
        st = ss_evaluate_clm(c.m, &c.s, B, T > 0 ? T : cfg->max_seq, max_tokens, cli_eval_progress, &c.progress, &r,
                             &err);
        cli_eval_progress_end(&c.progress);
        if (!st)
            printf("split %s: %lld tokens | loss %.4f | perplexity %.2f | bits per byte %.4f\n", split,
                   (long long)r.tokens, r.loss, r.perplexity, r.bits_per_byte);
    } else if (!st) {
        c.progress.estimated = 1;
        st = eval_encoder(&c, run, data, B, T > 0 ? T : (cfg->max_seq < 128 ? cfg->max_seq : 128), max_tokens, &r, &err);
        cli_eval_progress_end(&c.progress);
        if (!st)
            printf("split %s: %lld masked tokens | %sMLM loss %.4f | perplexity %.2f | masked accuracy %.4f\n", split,
                   (long long)r.tokens, c.gen ? "generator " : "", r.loss, r.perplexity, r.mlm_acc);
        if (!st && c.gen)
            printf("discriminator: loss %.4f | accuracy %.4f (base rate, share not replaced: %.4f) | AUC %.4f\n",
                   r.disc_loss, r.disc_acc, r.disc_base, r.auc);
        if (!st)
            printf("spread of the %s's mean vectors: mean cosine %.4f | participation ratio %.1f (1: collapsed)\n",
                   c.gen ? "discriminator" : "encoder", r.spread_cos, r.spread_participation);
    }
    free_ctx(&c);
    cli_args_free(&a);
    return st ? cli_report("eval", &err) : 0;
}
