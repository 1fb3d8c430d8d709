/* selfsup: the command-line front end. Each subcommand lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "selfsup/version.h"

/* SELFSUP_GIT: `git describe --always --dirty` of the source, written by the
 * Makefile; empty when built without git (from a tarball). */
#if defined(__has_include)
#if __has_include("selfsup_git.h")
#include "selfsup_git.h"
#endif
#endif
#ifndef SELFSUP_GIT
#define SELFSUP_GIT ""
#endif

static const char usage[] =
    "selfsup — self-supervised language-model pretraining on CPUs\n"
    "\n"
    "usage: selfsup COMMAND [SUBCOMMAND] [OPTIONS]   (every command has --help)\n"
    "       selfsup --version\n"
    "\n"
    "  tokenizer train    train a byte-level BPE tokenizer on raw text\n"
    "  tokenizer encode   text -> token ids\n"
    "  tokenizer decode   token ids -> text\n"
    "  tokenizer info     summary of a tokenizer\n"
    "  data get           fetch a corpus from corpora/ into the cache\n"
    "  data prepare       encode a corpus into zstd token shards\n"
    "  data inspect       show and verify shards\n"
    "  pretrain           pretrain a transformer on token shards (clm, mlm, rtd)\n"
    "  eval               loss/perplexity/bits per byte (decoder), masked-LM and\n"
    "                     discriminator metrics (encoder) on a split\n"
    "  plot               draw a run's loss curves to a PNG (gnuplot)\n"
    "  fill-mask          top-k fillers for each [MASK] in a text (masked LM)\n"
    "  generate           text from a prompt (decoder, KV cache, samplers)\n"
    "  finetune           train a classifier on labelled text, from a pretrained\n"
    "                     model or from scratch (the baseline)\n"
    "  classify           label texts with a fine-tuned classifier\n"
    "  embed              one vector per line of text (JSON lines or .npy), from a\n"
    "                     pretrained or fine-tuned model\n"
    "  export             a decoder as a GGUF file for llama.cpp\n"
    "\n"
    "Short forms of the common options, for every command that takes them:\n"
    "-m --model, -p --prompt, -n --max-new-tokens, -t --threads, -o --out.\n";

static int version(void) {
    printf("selfsup %s", ss_version());
    if (SELFSUP_GIT[0]) printf(" (git %s)", SELFSUP_GIT);
    printf("\n");
    return 0;
}

/* pretrain and finetune are data parallel under mpirun in the MPI flavour
 * (build/selfsup-mpi; selfsup/dist.h): they join the job first and leave it
 * at the end. A rank that fails ends the whole job (no rank is left waiting
 * in a reduction); its message was printed first (cli_report). In
 * build/selfsup all of this is nothing. */
static int distributed(int (*cmd)(int, char **), int argc, char **argv) {
    ss_error err = {0};
    if (ss_dist_init(&argc, &argv, &err)) {
        fprintf(stderr, "selfsup: %s\n", err.msg);
        return 1;
    }
    int rc = cmd(argc - 2, argv + 2);
    if (rc != 0 && rc != CLI_EXIT_INTERRUPTED && ss_dist_size() > 1) ss_dist_abort(rc);
    ss_dist_finalize();
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) return version();
    if (strcmp(argv[1], "tokenizer") == 0) return cmd_tokenizer(argc - 2, argv + 2);
    if (strcmp(argv[1], "data") == 0) return cmd_data(argc - 2, argv + 2);
    if (strcmp(argv[1], "pretrain") == 0) return distributed(cmd_pretrain, argc, argv);
    if (strcmp(argv[1], "eval") == 0) return cmd_eval(argc - 2, argv + 2);
    if (strcmp(argv[1], "plot") == 0) return cmd_plot(argc - 2, argv + 2);
    if (strcmp(argv[1], "fill-mask") == 0) return cmd_fill_mask(argc - 2, argv + 2);
    if (strcmp(argv[1], "generate") == 0) return cmd_generate(argc - 2, argv + 2);
    if (strcmp(argv[1], "finetune") == 0) return distributed(cmd_finetune, argc, argv);
    if (strcmp(argv[1], "classify") == 0) return cmd_classify(argc - 2, argv + 2);
    if (strcmp(argv[1], "embed") == 0) return cmd_embed(argc - 2, argv + 2);
    if (strcmp(argv[1], "export") == 0) return cmd_export(argc - 2, argv + 2);
    fprintf(stderr, "selfsup: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
