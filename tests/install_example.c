/* libselfsup from C, as an installed library: the README's example, built
 * and run by tests/cli_install.sh against `make install`.
 *
 *   cc example.c $(pkg-config --cflags --libs selfsup) -o example       (shared)
 *   cc example.c $(pkg-config --cflags selfsup) \
 *      $(pkg-config --static --libs selfsup | sed 's/-lselfsup/-l:libselfsup.a/') -o example   (static)
 *
 *   ./example TEXT DIR [PROMPT]
 *
 * trains a byte-level BPE tokenizer on the text file TEXT (DIR/tokenizer.json),
 * encodes a sentence and decodes it back, cuts TEXT into token shards
 * (DIR/shards), pretrains a tiny decoder on them (DIR/run: what `selfsup
 * pretrain` writes) and continues PROMPT greedily from the saved run.
 * What it does goes to stderr; the continuation alone to stdout.
 *
 * Every library call returns an ss_status (SS_OK = 0) and fills an ss_error
 * whose message names the file, line or field at fault; the library never
 * prints or exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <selfsup/generate.h>
#include <selfsup/io.h>
#include <selfsup/shard.h>
#include <selfsup/tokenizer.h>
#include <selfsup/train.h>
#include <selfsup/version.h>

static int fail(const char *what, const ss_error *err) {
    fprintf(stderr, "example: %s: %s\n", what, err->msg);
    return 1;
}

/* Training progress (every log_every steps): the first report and the last. */
static void on_progress(void *ctx, const ss_train_progress *p) {
    int *reported = ctx;
    if (p->message || p->is_eval) return;
    if (!*reported || p->step == p->total_steps)
        fprintf(stderr, "pretrain: step %lld/%lld, loss %.4f\n", (long long)p->step, (long long)p->total_steps,
                p->loss);
    *reported = 1;
}

/* Generated text arrives in pieces (whole UTF-8 characters). */
static void on_text(void *ctx, const char *text, size_t len) {
    (void)ctx;
    fwrite(text, 1, len, stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: example TEXT DIR [PROMPT]\n");
        return 2;
    }
    const char *text = argv[1], *dir = argv[2], *prompt = argc > 3 ? argv[3] : "The ";
    ss_error err = {0};
    char tok_path[4096], shards[4096], run[4096];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);
    snprintf(shards, sizeof shards, "%s/shards", dir);
    snprintf(run, sizeof run, "%s/run", dir);

    /* The headers' version and the library's (a shared one may be newer). */
    fprintf(stderr, "version: headers %s, library %s\n", SS_VERSION_STRING, ss_version());
    if (ss_mkdir_p(dir, &err)) return fail("mkdir", &err);

    /* 1. A tokenizer: 400 tokens, <|endoftext|> the only special one. */
    const char *specials[] = {"<|endoftext|>"};
    ss_bpe_train_opts to = {.vocab_size = 400, .min_frequency = 2, .special_tokens = specials, .n_special = 1,
                            .nthreads = 1};
    ss_tokenizer *tok;
    if (ss_bpe_train_files(&to, &text, 1, &tok, &err)) return fail("tokenizer", &err);
    if (ss_tokenizer_save(tok, tok_path, &err)) return fail("tokenizer", &err);
    fprintf(stderr, "tokenizer: %zu tokens (%zu merges) -> %s\n", ss_tokenizer_vocab_size(tok),
            ss_tokenizer_num_merges(tok), tok_path);

    /* 2. Encode and decode. */
    const char *sentence = "To be, or not to be: that is the question.";
    ss_ids ids = {0};
    ss_buf back = {0};
    if (ss_tokenizer_encode(tok, sentence, strlen(sentence), 0, &ids, &err)) return fail("encode", &err);
    if (ss_tokenizer_decode(tok, ids.ids, ids.n, &back, &err)) return fail("decode", &err);
    fprintf(stderr, "encode:");
    for (size_t i = 0; i < ids.n; i++) fprintf(stderr, " %d", ids.ids[i]);
    fprintf(stderr, "\ndecode: %s\n",
            back.len == strlen(sentence) && memcmp(back.data, sentence, back.len) == 0 ? "the same text"
                                                                                        : "DIFFERENT");
    ss_ids_free(&ids);
    ss_buf_free(&back);
    ss_tokenizer_free(tok);

    /* 3. Token shards (documents separated by blank lines, 10% to val). */
    ss_prepare_opts po = {.tokenizer_path = tok_path, .out_dir = shards, .val_fraction = 0.1, .seed = 1,
                          .boundary = SS_DOC_BLANK, .nthreads = 1};
    ss_prepare_stats ps;
    if (ss_prepare_corpus(&po, &text, 1, &ps, &err)) return fail("prepare", &err);
    fprintf(stderr, "prepare: %llu train tokens, %llu val tokens -> %s\n", (unsigned long long)ps.tokens[0],
            (unsigned long long)ps.tokens[1], shards);

    /* 4. Pretrain a tiny decoder (the options of `selfsup pretrain`). */
    ss_train_opts o;
    ss_train_opts_defaults(&o);
    o.data_dir = shards;
    o.out_dir = run;
    o.model = (ss_model_config){.kind = SS_DECODER, .n_layer = 2, .d_model = 64, .n_head = 2, .d_ff = 128,
                                .max_seq = 64};
    o.seq = 32;
    o.batch = 8;
    o.steps = 300;
    o.lr = 1e-2;
    o.eval_every = 0;
    o.threads = 1;
    int reported = 0;
    if (ss_pretrain(&o, on_progress, &reported, &err)) return fail("pretrain", &err);

    /* 5. Load the saved run and continue the prompt greedily. */
    ss_generator *g;
    if (ss_generator_load(&g, run, &err)) return fail("generate", &err);
    ss_generate_opts go;
    ss_generate_opts_defaults(&go);
    go.max_new_tokens = 24;
    go.sampler.temperature = 0; /* greedy: no random numbers drawn */
    ss_rng rng;
    ss_rng_seed(&rng, 1337);
    ss_generate_result r;
    if (ss_generate(g, prompt, strlen(prompt), &go, &rng, on_text, NULL, &r, &err)) return fail("generate", &err);
    printf("\n");
    fprintf(stderr, "generate: %d new tokens after a prompt of %zu\n", r.new_tokens, r.prompt_tokens);
    ss_generator_free(g);
    return 0;
}
