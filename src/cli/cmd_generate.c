/* selfsup generate: text from a prompt with a decoder, streamed as it is
 * produced (a KV cache makes each new token O(T); --no-cache recomputes the
 * whole sequence per token and is the reference the cache is tested against). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "selfsup/generate.h"
#include "selfsup/io.h"
#include "selfsup/tokenizer.h"

static const char usage[] =
    "usage: selfsup generate --model RUN (--prompt TEXT | --prompt-file F | --interactive)\n"
    "         [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
    "         [--repetition-penalty R] [--seed S] [--stop STRING] [--num-samples N]\n"
    "         [--echo] [--sliding] [--no-cache] [--stats] [--threads N]\n"
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
    "Short forms: -m RUN (--model), -p TEXT (--prompt), -n N (--max-new-tokens),\n"
    "-t N (--threads).\n";

typedef struct {
    ss_model *m;
    ss_tokenizer *tok;
    ss_decoder_state *st;
    ss_sampler_config sc;
    ss_rng rng;
    int max_new, no_cache, sliding, stats, echo, eot;
    const char *stop;
    float *logits, *scratch;
    ss_ids seq;     /* prompt + generated ids */
    ss_buf pending; /* decoded bytes not printed yet */
} gen_ctx;

/* Bytes at the end of b that may still be completed into a UTF-8 character. */
static size_t incomplete_utf8_tail(const char *b, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)b[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Longest suffix of b that is a proper prefix of stop (it may become the stop string). */
static size_t stop_prefix_tail(const char *b, size_t n, const char *stop) {
    size_t ls = stop ? strlen(stop) : 0;
    for (size_t k = ls > 1 ? ls - 1 : 0; k > 0; k--)
        if (k <= n && memcmp(b + n - k, stop, k) == 0) return k;
    return 0;
}

/* Print what is safe to print; returns 1 when the stop string was reached. */
static int flush_text(gen_ctx *g, int final) {
    ss_buf *p = &g->pending;
    size_t emit = p->len;
    int stopped = 0;
    if (g->stop && *g->stop) {
        char *hit = p->len ? memmem(p->data, p->len, g->stop, strlen(g->stop)) : NULL;
        if (hit) {
            emit = (size_t)(hit - p->data);
            stopped = 1;
        } else if (!final) {
            emit -= stop_prefix_tail(p->data, p->len, g->stop);
        }
    }
    if (!final && !stopped) {
        size_t hold = incomplete_utf8_tail(p->data, emit);
        emit -= hold;
    }
    fwrite(p->data, 1, emit, stdout);
    fflush(stdout);
    memmove(p->data, p->data + emit, p->len - emit);
    p->len -= emit;
    return stopped;
}

static ss_status next_logits(gen_ctx *g, int32_t token, ss_error *err) {
    if (g->no_cache) return ss_decoder_full_logits(g->m, g->seq.ids, (int)g->seq.n, g->logits, err);
    return ss_decoder_step(g->st, token, g->logits, err);
}

/* Restart the cache on the last half of the window (--sliding). */
static ss_status slide(gen_ctx *g, ss_error *err) {
    size_t keep = (size_t)ss_model_config_of(g->m)->max_seq / 2;
    memmove(g->seq.ids, g->seq.ids + g->seq.n - keep, keep * sizeof(int32_t));
    g->seq.n = keep;
    ss_decoder_state_reset(g->st);
    if (g->no_cache) return ss_decoder_full_logits(g->m, g->seq.ids, (int)keep, g->logits, err);
    return ss_decoder_prefill(g->st, g->seq.ids, (int)keep, g->logits, err);
}

static ss_status prompt_ids(gen_ctx *g, const char *text, size_t len, ss_error *err) {
    int maxT = ss_model_config_of(g->m)->max_seq;
    g->seq.n = 0;
    ss_status st = ss_tokenizer_encode(g->tok, text, len, 1, &g->seq, err);
    if (!st && g->seq.n == 0 && g->eot >= 0) st = ss_ids_push(&g->seq, g->eot, err);
    if (!st && g->seq.n == 0) st = ss_fail(err, SS_ERR_ARG, "empty prompt and no <|endoftext|> token to start from");
    if (!st && g->seq.n >= (size_t)maxT) {
        if (!g->sliding)
            return ss_fail(err, SS_ERR_ARG, "the prompt is %zu tokens; the model takes at most %d (use --sliding to "
                           "keep its last part)", g->seq.n, maxT - 1);
        size_t keep = (size_t)maxT / 2;
        memmove(g->seq.ids, g->seq.ids + g->seq.n - keep, keep * sizeof(int32_t));
        g->seq.n = keep;
    }
    return st;
}

/* One sample: prefill the prompt, then sample, print, step. */
static ss_status generate_one(gen_ctx *g, const char *text, size_t len, ss_error *err) {
    int V = ss_model_config_of(g->m)->vocab_size, maxT = ss_model_config_of(g->m)->max_seq;
    ss_status st = prompt_ids(g, text, len, err);
    if (st) return st;
    size_t n_prompt = g->seq.n;
    if (g->echo) fwrite(text, 1, len, stdout);
    double t0 = omp_get_wtime();
    ss_decoder_state_reset(g->st);
    st = g->no_cache ? ss_decoder_full_logits(g->m, g->seq.ids, (int)g->seq.n, g->logits, err)
                     : ss_decoder_prefill(g->st, g->seq.ids, (int)g->seq.n, g->logits, err);
    double t1 = omp_get_wtime();
    int made = 0;
    const char *why = NULL;
    g->pending.len = 0;
    while (!st && made < g->max_new) {
        int32_t next = ss_sample_next(g->logits, V, &g->sc, g->seq.ids, g->seq.n, &g->rng, g->scratch);
        if (next == g->eot) { why = NULL; break; }
        if ((st = ss_ids_push(&g->seq, next, err))) break;
        made++;
        size_t blen;
        const char *bytes = ss_tokenizer_token_bytes(g->tok, next, &blen);
        if ((st = ss_buf_append(&g->pending, bytes, blen, err))) break;
        if (flush_text(g, 0)) break;
        if (made == g->max_new) break;
        if (g->seq.n >= (size_t)maxT) {
            if (!g->sliding) { why = "reached the model's maximum length"; break; }
            st = slide(g, err);
        } else {
            st = next_logits(g, next, err);
        }
    }
    if (!st) {
        flush_text(g, 1);
        putchar('\n');
        fflush(stdout);
    }
    double t2 = omp_get_wtime();
    if (!st && why) fprintf(stderr, "(stopped: %s, %d tokens; --sliding continues past it)\n", why, maxT);
    if (!st && g->stats)
        fprintf(stderr, "prompt: %zu tokens in %.4f s (%.1f tokens/s); generated: %d tokens in %.4f s (%.1f tokens/s)\n",
                n_prompt, t1 - t0, (double)n_prompt / (t1 - t0), made, t2 - t1, made / (t2 - t1));
    return st;
}

/* N samples of one prompt; more than one: each after a separator line. */
static ss_status generate_samples(gen_ctx *g, const char *text, size_t len, int samples, ss_error *err) {
    ss_status st = SS_OK;
    for (int s = 0; !st && s < samples; s++) {
        if (samples > 1) printf("---------- sample %d/%d ----------\n", s + 1, samples);
        st = generate_one(g, text, len, err);
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

static ss_status setup(gen_ctx *g, const char *run, ss_error *err) {
    char path[4096];
    ss_status st = ss_model_load(&g->m, run, err);
    if (st) return st;
    if (ss_model_config_of(g->m)->kind != SS_DECODER)
        return ss_fail(err, SS_ERR_ARG, "%s is an encoder (masked LM): it cannot generate text left to right; "
                       "try 'selfsup fill-mask --model %s \"... [MASK] ...\"'", run, run);
    snprintf(path, sizeof path, "%s/tokenizer.json", run);
    if ((st = ss_tokenizer_load(&g->tok, path, err))) return st;
    g->eot = ss_tokenizer_token_id(g->tok, "<|endoftext|>");
    size_t V = (size_t)ss_model_config_of(g->m)->vocab_size;
    g->logits = malloc(V * sizeof(float));
    g->scratch = malloc(V * sizeof(float));
    if (!g->logits || !g->scratch) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    return ss_decoder_state_create(&g->st, g->m, err);
}

static void teardown(gen_ctx *g) {
    ss_decoder_state_free(g->st);
    ss_model_free(g->m);
    ss_tokenizer_free(g->tok);
    free(g->logits);
    free(g->scratch);
    ss_ids_free(&g->seq);
    ss_buf_free(&g->pending);
}

static void parse(cli_args *a, gen_ctx *g, int *samples, int *interactive, int *threads, long long *seed) {
    g->max_new = (int)cli_opt_int(a, "--max-new-tokens", 128);
    g->sc.temperature = (float)cli_opt_double(a, "--temperature", 0.8);
    g->sc.top_k = (int)cli_opt_int(a, "--top-k", 40);
    g->sc.top_p = (float)cli_opt_double(a, "--top-p", 1.0);
    g->sc.repetition_penalty = (float)cli_opt_double(a, "--repetition-penalty", 1.0);
    g->stop = cli_opt(a, "--stop");
    g->no_cache = cli_flag(a, "--no-cache");
    g->sliding = cli_flag(a, "--sliding");
    g->stats = cli_flag(a, "--stats");
    g->echo = cli_flag(a, "--echo");
    *samples = (int)cli_opt_int(a, "--num-samples", 1);
    *interactive = cli_flag(a, "--interactive");
    *threads = (int)cli_opt_int(a, "--threads", 0);
    *seed = cli_opt_int(a, "--seed", 1337);
    if (g->max_new < 0 || *samples < 1) cli_die(a->command, "--max-new-tokens must be >= 0 and --num-samples >= 1");
    if (g->sc.temperature < 0 || g->sc.top_k < 0 || !(g->sc.top_p > 0 && g->sc.top_p <= 1) ||
        !(g->sc.repetition_penalty > 0))
        cli_die(a->command, "need --temperature >= 0, --top-k >= 0, 0 < --top-p <= 1, --repetition-penalty > 0");
}

int cmd_generate(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "generate", usage);
    gen_ctx g = {0};
    int samples, interactive, threads;
    long long seed;
    const char *run = cli_require(&a, "--model");
    parse(&a, &g, &samples, &interactive, &threads, &seed);
    const char *text = NULL;
    ss_buf file = {0};
    ss_error err = {0};
    ss_status st = read_prompt(&a, &text, &file, &err);
    if (cli_args_done(&a)) return 2;
    if (!st && !text && !interactive) cli_die(a.command, "give --prompt TEXT, --prompt-file F or --interactive");
    int nth = cli_threads_quiet(threads);
    if (g.stats) fprintf(stderr, "threads: %d (OpenMP + OpenBLAS, one pool)\n", nth);
    ss_rng_seed(&g.rng, (uint64_t)seed);
    if (!st) st = setup(&g, run, &err);
    if (!st && text) st = generate_samples(&g, text, strlen(text), samples, &err);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int tty = isatty(STDIN_FILENO);
    while (!st && interactive && (got = read_line(&line, &cap, tty)) >= 0)
        st = generate_samples(&g, line, (size_t)got, samples, &err);
    if (!st && interactive && tty) fputc('\n', stderr); /* end of input: leave the terminal on a new line */
    free(line);
    ss_buf_free(&file);
    teardown(&g);
    cli_args_free(&a);
    return st ? cli_report("generate", &err) : 0;
}
