/* selfsup generate: text from a prompt with a decoder (ss_generate), streamed as it is
 * produced (a KV cache makes each new token O(T); --no-cache recomputes the
 * whole sequence per token and is the reference the cache is tested against). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "selfsup/generate.h"
#include "selfsup/io.h"

static const char usage[] =
    "usage: selfsup generate --model RUN (--prompt TEXT | --prompt-file F | --interactive)\n"
    "         [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
    "         [--repetition-penalty R] [--seed S] [--stop STRING] [--num-samples N]\n"
    "         [--echo] [--sliding] [--no-cache] [--allow-special] [--stats] [--threads N]\n"
    "         [--precision fp32|bf16|auto] [--gemm NAME]\n"
    "\n"
    "Generates text from a decoder (a clm run). The prompt is processed in one\n"
    "batched forward pass, then tokens are produced one at a time with a KV cache\n"
    "and printed as they come (bytes are held back until they form complete UTF-8\n"
    "characters). Generation stops at <|endoftext|>, at the --stop string (not\n"
    "printed), after --max-new-tokens (default 128), or at the model's maximum\n"
    "length: then it says so, or with --sliding keeps going on the last half of\n"
    "the window.\n"
    "\n"
    "Sampling defaults as in llama.cpp and nanoGPT: temperature 0.8, top-k 40\n"
    "(--top-k 0 turns it off), top-p 1 (off). --temperature 0 is greedy and\n"
    "deterministic. Repetition penalty 1 (off; CTRL's rule otherwise), seed 1337:\n"
    "the same --seed gives the same text.\n"
    "\n"
    "--echo prints the prompt before the continuation. With --num-samples N > 1\n"
    "each sample starts with a line '---------- sample I/N ----------'.\n"
    "--interactive reads one prompt per line from stdin and answers each (on a\n"
    "terminal it shows a '> ' prompt on stderr; stdout holds only the text).\n"
    "--stats prints prompt and generation speed to stderr.\n"
    "Special tokens written in the prompt (<|endoftext|>, [MASK]) are ordinary\n"
    "text, as in every command; --allow-special matches them as their ids.\n"
    "Short forms: -m RUN (--model), -p TEXT (--prompt), -n N (--max-new-tokens),\n"
    "-t N (--threads).\n"
    "\n" CLI_PRECISION_HELP
    "  A decoding step's one-row products always run in fp32 (sgemv); the prompt's use the choice.\n";

/* Text pieces go to stdout as they come. */
static void print_text(void *ctx, const char *text, size_t len) {
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* One sample, then a newline; the stop messages on stderr. */
static ss_status generate_one(ss_generator *g, const ss_generate_opts *o, int stats, ss_rng *rng, const char *text,
                              size_t len, ss_error *err) {
    ss_generate_result r;
    ss_status st = ss_generate(g, text, len, o, rng, print_text, NULL, &r, err);
    if (st) return st;
    putchar('\n');
    fflush(stdout);
    int maxT = ss_model_config_of(ss_generator_model(g))->max_seq;
    if (r.end == SS_GEN_MAX_SEQ)
        fprintf(stderr, "(stopped: reached the model's maximum length, %d tokens; --sliding continues past it)\n", maxT);
    if (stats)
        fprintf(stderr, "prompt: %zu tokens in %.4f s (%.1f tokens/s); generated: %d tokens in %.4f s (%.1f tokens/s)\n",
                r.prompt_tokens, r.prompt_seconds, (double)r.prompt_tokens / r.prompt_seconds, r.new_tokens,
                r.gen_seconds, r.new_tokens / r.gen_seconds);
    return SS_OK;
}

/* N samples of one prompt; more than one: each after a separator line. */
static ss_status generate_samples(ss_generator *g, const ss_generate_opts *o, int stats, ss_rng *rng,
                                  const char *text, size_t len, int samples, ss_error *err) {
    ss_status st = SS_OK;
    for (int s = 0; !st && s < samples; s++) {
        if (samples > 1) printf("---------- sample %d/%d ----------\n", s + 1, samples);
        st = generate_one(g, o, stats, rng, text, len, err);
    }
    return st;
}

/* --interactive: the next line of stdin without its '\n' (-1 at the end),
 * after a "> " prompt on stderr when stdin is a terminal. */
static ssize_t read_line(char **line, size_t *cap, int tty) {
    if (tty) fputs("> ", stderr);
    ssize_t got = getline(line, cap, stdin);
    if (got > 0 && (*line)[got - 1] == '\n') (*line)[--got] = '\0';
    return got;
}

static ss_status read_prompt(cli_args *a, const char **text, ss_buf *b, ss_error *err) {
    const char *p = cli_opt(a, "--prompt"), *f = cli_opt(a, "--prompt-file");
    if (p && f) return ss_fail(err, SS_ERR_ARG, "give --prompt or --prompt-file, not both");
    if (f) {
        ss_status st = ss_read_file(f, b, err);
        *text = b->data;
        return st;
    }
    *text = p;
    return SS_OK;
}

static void parse(cli_args *a, ss_generate_opts *o, int *stats, int *samples, int *interactive, int *threads,
                  long long *seed) {
    ss_generate_opts_defaults(o);
    o->max_new_tokens = cli_opt_i32(a, "--max-new-tokens", o->max_new_tokens);
    o->sampler.temperature = (float)cli_opt_double(a, "--temperature", o->sampler.temperature);
    o->sampler.top_k = cli_opt_i32(a, "--top-k", o->sampler.top_k);
    o->sampler.top_p = (float)cli_opt_double(a, "--top-p", o->sampler.top_p);
    o->sampler.repetition_penalty = (float)cli_opt_double(a, "--repetition-penalty", o->sampler.repetition_penalty);
    o->stop = cli_opt(a, "--stop");
    o->no_cache = cli_flag(a, "--no-cache");
    o->sliding = cli_flag(a, "--sliding");
    o->echo = cli_flag(a, "--echo");
    o->allow_special = cli_flag(a, "--allow-special");
    *stats = cli_flag(a, "--stats");
    *samples = cli_opt_i32(a, "--num-samples", 1);
    *interactive = cli_flag(a, "--interactive");
    *threads = cli_opt_threads(a, 0);
    *seed = cli_opt_int(a, "--seed", 1337);
    if (o->max_new_tokens < 0 || *samples < 1)
        cli_die(a->command, "--max-new-tokens must be >= 0 and --num-samples >= 1");
    const ss_sampler_config *sc = &o->sampler;
    if (sc->temperature < 0 || sc->top_k < 0 || !(sc->top_p > 0 && sc->top_p <= 1) || !(sc->repetition_penalty > 0))
        cli_die(a->command, "need --temperature >= 0, --top-k >= 0, 0 < --top-p <= 1, --repetition-penalty > 0");
}

int cmd_generate(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "generate", usage);
    ss_generate_opts o;
    int stats, samples, interactive, threads;
    long long seed;
    const char *run = cli_require(&a, "--model"), *precision = cli_opt(&a, "--precision");
    const char *gemm = cli_opt(&a, "--gemm");
    parse(&a, &o, &stats, &samples, &interactive, &threads, &seed);
    const char *text = NULL;
    ss_buf file = {0};
    ss_error err = {0};
    ss_status st = read_prompt(&a, &text, &file, &err);
    if (cli_args_done(&a)) return 2;
    if (!st && !text && !interactive) cli_die(a.command, "give --prompt TEXT, --prompt-file F or --interactive");
    int nth = cli_threads_quiet(threads);
    if (stats) fprintf(stderr, "threads: %d (OpenMP + OpenBLAS, one pool)\n", nth);
    cli_setup_precision(a.command, precision, gemm, stats);
    ss_rng rng;
    ss_rng_seed(&rng, (uint64_t)seed);
    ss_generator *g = NULL;
    if (!st) st = ss_generator_load(&g, run, &err);
    if (!st && text) st = generate_samples(g, &o, stats, &rng, text, strlen(text), samples, &err);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int tty = isatty(STDIN_FILENO);
    while (!st && interactive && (got = read_line(&line, &cap, tty)) >= 0)
        st = generate_samples(g, &o, stats, &rng, line, (size_t)got, samples, &err);
    if (!st && interactive && tty) fputc('\n', stderr); /* end of input: leave the terminal on a new line */
    free(line);
    ss_buf_free(&file);
    ss_generator_free(g);
    cli_args_free(&a);
    return st ? cli_report("generate", &err) : 0;
}
