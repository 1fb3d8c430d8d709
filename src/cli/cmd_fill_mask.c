/* selfsup fill-mask: the top-k fillers of each [MASK] in a text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "selfsup/model.h"
#include "selfsup/tokenizer.h"

static const char usage[] =
    "usage: selfsup fill-mask --model RUN [--top-k K] [--threads N] TEXT\n"
    "\n"
    "Encodes TEXT (where [MASK] is the mask token), runs the masked LM of RUN (an\n"
    "mlm run, or the generator of an rtd run) over [CLS] TEXT [SEP], and prints\n"
    "the K most probable tokens (default 5) with their probabilities for each\n"
    "[MASK], then TEXT with the best fillers.\n"
    "Short forms: -m RUN (--model), -t N (--threads).\n";

typedef struct {
    ss_model *owner, *mlm;
    ss_tokenizer *tok;
    ss_ids ids;
    float *logits;
    int32_t *positions;
} fm_ctx;

static void fm_free(fm_ctx *c) {
    if (c->mlm != c->owner) ss_model_free(c->mlm);
    ss_model_free(c->owner);
    ss_tokenizer_free(c->tok);
    ss_ids_free(&c->ids);
    free(c->logits);
    free(c->positions);
}

/* The model that can fill masks: an MLM, or the generator of an RTD run. */
static ss_status load_mlm(fm_ctx *c, const char *run, ss_error *err) {
    ss_status st = ss_model_load(&c->owner, run, err);
    if (st) return st;
    const ss_model_config *cfg = ss_model_config_of(c->owner);
    if (cfg->kind == SS_DECODER)
        return ss_fail(err, SS_ERR_ARG, "%s is a decoder (next-token LM): it cannot fill masks", run);
    if (cfg->head == SS_HEAD_MLM) {
        c->mlm = c->owner;
        return SS_OK;
    }
    st = ss_model_load_generator(c->owner, run, &c->mlm, err);
    if (st == SS_ERR_NOT_FOUND)
        return ss_fail(err, SS_ERR_ARG, "%s has no masked-LM head (an rtd discriminator alone cannot fill masks: "
                       "use the rtd run directory, whose generator can)", run);
    return st;
}

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

/* Print the top-k of softmax(z) with their decoded text. */
static void print_top(const ss_tokenizer *tok, const float *z, int V, int k) {
    float mx = z[0];
    for (int v = 1; v < V; v++) mx = fmaxf(mx, z[v]);
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)(z[v] - mx));
    char *taken = calloc((size_t)V, 1);
    for (int r = 0; r < k && r < V && taken; r++) {
        int best = -1;
        for (int v = 0; v < V; v++)
            if (!taken[v] && (best < 0 || z[v] > z[best])) best = v;
        taken[best] = 1;
        size_t len;
        const char *bytes = ss_tokenizer_token_bytes(tok, best, &len);
        printf("  %6.2f%%  ", 100.0 * exp((double)(z[best] - mx)) / sum);
        print_token(bytes, len);
        printf("  (id %d)\n", best);
    }
    free(taken);
}

static int argmax(const float *z, int V) {
    int b = 0;
    for (int v = 1; v < V; v++) if (z[v] > z[b]) b = v;
    return b;
}

int cmd_fill_mask(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "fill-mask", usage);
    const char *run = cli_require(&a, "--model");
    int k = (int)cli_opt_int(&a, "--top-k", 5), threads = (int)cli_opt_int(&a, "--threads", 0);
    if (cli_args_done(&a)) return 2;
    if (a.n_positional != 1) cli_die(a.command, "give the text as one argument, e.g. 'The [MASK] sat on the mat.'");
    if (k < 1) cli_die(a.command, "--top-k must be at least 1");
    if (threads > 0) cli_setup_threads(threads);
    const char *text = a.positional[0];
    char path[4096];
    fm_ctx c = {0};
    ss_error err = {0};
    snprintf(path, sizeof path, "%s/tokenizer.json", run);
    ss_status st = load_mlm(&c, run, &err);
    if (!st) st = ss_tokenizer_load(&c.tok, path, &err);
    int32_t cls = -1, sep = -1, mask = -1;
    if (!st) {
        cls = ss_tokenizer_token_id(c.tok, "[CLS]"), sep = ss_tokenizer_token_id(c.tok, "[SEP]");
        mask = ss_tokenizer_token_id(c.tok, "[MASK]");
        if (cls < 0 || sep < 0 || mask < 0) st = ss_fail(&err, SS_ERR_FORMAT, "%s lacks [CLS], [SEP] or [MASK]", path);
    }
    if (!st) st = ss_ids_push(&c.ids, cls, &err);
    if (!st) st = ss_tokenizer_encode(c.tok, text, strlen(text), 1, &c.ids, &err);
    if (!st) st = ss_ids_push(&c.ids, sep, &err);
    int n = 0, T = st ? 0 : (int)c.ids.n, V = st ? 0 : ss_model_config_of(c.mlm)->vocab_size;
    if (!st && T > ss_model_config_of(c.mlm)->max_seq)
        st = ss_fail(&err, SS_ERR_ARG, "the text is %d tokens with [CLS]/[SEP]; the model takes at most %d", T,
                     ss_model_config_of(c.mlm)->max_seq);
    if (!st && (c.positions = malloc((size_t)T * sizeof(int32_t))))
        for (int i = 0; i < T; i++) if (c.ids.ids[i] == mask) c.positions[n++] = i;
    if (!st && n == 0) st = ss_fail(&err, SS_ERR_ARG, "the text has no [MASK] token");
    if (!st && !(c.logits = malloc((size_t)n * V * sizeof(float)))) st = ss_fail(&err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_model_body_forward(c.mlm, c.ids.ids, NULL, 1, T, 0, 0, NULL, &err);
    if (!st) st = ss_lm_head_logits(c.mlm, c.positions, n, c.logits, &err);
    for (int j = 0; !st && j < n; j++) {
        printf("[MASK] #%d:\n", j + 1);
        print_top(c.tok, c.logits + (size_t)j * V, V, k);
        c.ids.ids[c.positions[j]] = argmax(c.logits + (size_t)j * V, V);
    }
    ss_buf filled = {0};
    if (!st) st = ss_tokenizer_decode(c.tok, c.ids.ids + 1, c.ids.n - 2, &filled, &err);
    if (!st) printf("best: %.*s\n", (int)filled.len, filled.data);
    ss_buf_free(&filled);
    fm_free(&c);
    cli_args_free(&a);
    return st ? cli_report("fill-mask", &err) : 0;
}
