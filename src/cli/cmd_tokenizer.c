/* selfsup tokenizer train|encode|decode|info */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "selfsup/tokenizer.h"

static const char usage_top[] =
    "usage: selfsup tokenizer SUBCOMMAND [OPTIONS]\n"
    "\n"
    "  train    train a byte-level BPE tokenizer on text files -> tokenizer.json\n"
    "  encode   text -> token ids\n"
    "  decode   token ids -> text\n"
    "  info     summary of a tokenizer\n"
    "\n"
    "A tokenizer T is a Hugging Face tokenizer.json, or a directory holding\n"
    "tokenizer.json or GPT-2's encoder.json + vocab.bpe.\n";

static const char usage_train[] =
    "usage: selfsup tokenizer train --vocab-size N --out tokenizer.json [OPTIONS] FILE...\n"
    "\n"
    "Trains a GPT-2 style byte-level BPE tokenizer on the files (plain text or .zst).\n"
    "\n"
    "  --vocab-size N         total vocab size, including special tokens and the 256 bytes\n"
    "  --min-frequency K      never merge pairs seen fewer than K times (default 2)\n"
    "  --special-tokens A,B   special tokens, given the first ids\n"
    "                         (default <|endoftext|>,[PAD],[CLS],[SEP],[MASK],[UNK]; '' for none)\n"
    "  --normalize nfc|nfkc   Unicode normalization before everything (default none)\n"
    "  --lowercase            lowercase the text (after --normalize) when training and\n"
    "                         in every later encode; per code point (simple case mapping),\n"
    "                         invalid UTF-8 bytes are left alone. Not reversible: decode\n"
    "                         gives the lowercased text. Saved in tokenizer.json.\n"
    "  -t, --threads N        threads for counting (default: physical cores)\n"
    "  -o, --out PATH         where to write tokenizer.json (atomically)\n";

static const char usage_encode[] =
    "usage: selfsup tokenizer encode --tokenizer T [--text S | --lines] [OPTIONS] [FILE...]\n"
    "\n"
    "Encodes the input (the files concatenated, or stdin) as one text and prints\n"
    "its ids space-separated on one line.\n"
    "\n"
    "  --tokenizer T      tokenizer.json or a GPT-2 directory (encoder.json + vocab.bpe)\n"
    "  --text S           encode S instead of files or stdin\n"
    "  --lines            each input line (without its '\\n') is one text -> one output line\n"
    "  --allow-special    match special tokens such as <|endoftext|> as single ids\n"
    "  -t, --threads N    threads for large inputs (default: physical cores)\n"
    "  --stats            print the encoding time and throughput to stderr\n"
    "  --repeat N         encode the input N times (with --stats: one line each;\n"
    "                     later runs see warm pre-token caches), print the ids once\n";

static const char usage_decode[] =
    "usage: selfsup tokenizer decode --tokenizer T [ID...]\n"
    "\n"
    "Writes the bytes of the ids (from the arguments, else whitespace-separated\n"
    "from stdin) to stdout. An unknown id is an error.\n"
    "\n"
    "  --tokenizer T      tokenizer.json or a GPT-2 directory (encoder.json + vocab.bpe)\n";

static const char usage_info[] =
    "usage: selfsup tokenizer info --tokenizer T\n"
    "\n"
    "Prints the vocab size, merge count, normalization (none, NFC, NFKC, Lowercase or\n"
    "NFC+Lowercase / NFKC+Lowercase), added tokens and example tokens.\n";

/* ---- buffered output with hand-rolled integer formatting ------------------------ */
typedef struct {
    char buf[1 << 16];
    size_t n;
    int failed;
} out_buf;

static void out_flush(out_buf *o) {
    if (o->n && fwrite(o->buf, 1, o->n, stdout) != o->n) o->failed = 1;
    o->n = 0;
}

static void out_ids(out_buf *o, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (o->n + 16 > sizeof o->buf) out_flush(o);
        char tmp[12];
        int k = 0;
        uint32_t v = (uint32_t)ids[i];
        do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v);
        if (i) o->buf[o->n++] = ' ';
        while (k) o->buf[o->n++] = tmp[--k];
    }
    if (o->n + 1 > sizeof o->buf) out_flush(o);
    o->buf[o->n++] = '\n';
}

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ss_tokenizer *load_or_die(const char *cmd, const char *path) {
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    if (ss_tokenizer_load(&t, path, &err)) {
        cli_report(cmd, &err);
        exit(1);
    }
    return t;
}

/* Append a whole stream to buf. */
static int slurp(FILE *f, ss_buf *buf, ss_error *err) {
    char chunk[1 << 16];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ss_buf_reserve(buf, got, err) == SS_OK) {
            memcpy(buf->data + buf->len, chunk, got);
            buf->len += got;
        } else {
            return -1;
        }
    return ferror(f) ? -1 : 0;
}

/* ---- train ------------------------------------------------------------------------- */
static int cmd_train(int argc, char **argv) {
    const char *cmd = "tokenizer train";
    cli_args a;
    cli_args_init(&a, argc, argv, cmd, usage_train);
    long long vocab = cli_opt_int(&a, "--vocab-size", -1);
    long long minf = cli_opt_int(&a, "--min-frequency", 2);
    const char *specials = cli_opt(&a, "--special-tokens");
    const char *norm = cli_opt(&a, "--normalize");
    int lower = cli_flag(&a, "--lowercase");
    int threads = cli_opt_threads(&a, cli_default_threads());
    const char *out = cli_require(&a, "--out");
    if (cli_args_done(&a)) return 2;
    if (vocab <= 0) cli_die(cmd, "--vocab-size N is required and must be positive (see --help)");
    if (minf < 1) cli_die(cmd, "--min-frequency must be at least 1");
    if (a.n_positional == 0) cli_die(cmd, "no input files (see --help)");
    ss_normalization nm = SS_NORM_NONE;
    if (norm && strcmp(norm, "nfc") == 0) nm = SS_NORM_NFC;
    else if (norm && strcmp(norm, "nfkc") == 0) nm = SS_NORM_NFKC;
    else if (norm && strcmp(norm, "none") != 0) cli_die(cmd, "--normalize must be nfc, nfkc or none, not '%s'", norm);

    char *list = strdup(specials ? specials : "<|endoftext|>,[PAD],[CLS],[SEP],[MASK],[UNK]");
    const char **sp = calloc(strlen(list) + 1, sizeof *sp);
    if (!list || !sp) cli_die(cmd, "out of memory");
    size_t nsp = 0;
    for (char *s = list; *s;) {
        char *comma = strchr(s, ',');
        if (comma) *comma = '\0';
        if (!*s) cli_die(cmd, "--special-tokens: empty token in the list");
        sp[nsp++] = s;
        if (!comma) break;
        s = comma + 1;
    }
    ss_bpe_train_opts opts = {.vocab_size = (size_t)vocab, .min_frequency = (uint64_t)minf,
                              .special_tokens = sp, .n_special = nsp, .normalization = nm,
                              .nthreads = threads, .lowercase = lower};
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    double t0 = now_sec();
    int rc = 0;
    if (ss_bpe_train_files(&opts, (const char *const *)a.positional, (size_t)a.n_positional, &t, &err) ||
        ss_tokenizer_save(t, out, &err)) {
        rc = cli_report(cmd, &err);
    } else {
        printf("trained %s: vocab %zu (%zu special, 256 bytes, %zu merges) in %.2fs\n", out,
               ss_tokenizer_vocab_size(t), nsp, ss_tokenizer_num_merges(t), now_sec() - t0);
    }
    ss_tokenizer_free(t);
    free(sp);
    free(list);
    cli_args_free(&a);
    return rc;
}

/* ---- encode ---------------------------------------------------------------------------- */
static int encode_lines(const char *cmd, ss_tokenizer *t, FILE *f, const char *name, int allow,
                        out_buf *o) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    ss_ids ids = {0};
    ss_error err = {0};
    int rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        ids.n = 0;
        if (ss_tokenizer_encode(t, line, len, allow, &ids, &err)) {
            rc = cli_report(cmd, &err);
            break;
        }
        out_ids(o, ids.ids, ids.n);
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "selfsup %s: %s: read error: %s\n", cmd, name, strerror(errno));
        rc = 1;
    }
    free(line);
    ss_ids_free(&ids);
    return rc;
}

static int cmd_encode(int argc, char **argv) {
    const char *cmd = "tokenizer encode";
    cli_args a;
    cli_args_init(&a, argc, argv, cmd, usage_encode);
    const char *path = cli_require(&a, "--tokenizer");
    const char *text = cli_opt(&a, "--text");
    int lines = cli_flag(&a, "--lines");
    int allow = cli_flag(&a, "--allow-special");
    int threads = cli_opt_threads(&a, cli_default_threads());
    int stats = cli_flag(&a, "--stats");
    long long repeat = cli_opt_int(&a, "--repeat", 1);
    if (cli_args_done(&a)) return 2;
    if (repeat < 1) cli_die(cmd, "--repeat must be at least 1");
    if (text && (lines || a.n_positional)) cli_die(cmd, "--text cannot be combined with --lines or files");
    if (threads < 1) cli_die(cmd, "--threads must be at least 1");
    ss_tokenizer *t = load_or_die(cmd, path);
    static out_buf o;
    ss_error err = {0};
    int rc = 0;
    if (lines) {
        if (a.n_positional == 0) rc = encode_lines(cmd, t, stdin, "stdin", allow, &o);
        for (int i = 0; i < a.n_positional && !rc; i++) {
            FILE *f = fopen(a.positional[i], "rb");
            if (!f) {
                fprintf(stderr, "selfsup %s: %s: cannot open: %s\n", cmd, a.positional[i], strerror(errno));
                rc = 1;
                break;
            }
            rc = encode_lines(cmd, t, f, a.positional[i], allow, &o);
            fclose(f);
        }
    } else {
        ss_buf in = {0};
        if (text) {
            if (ss_buf_append(&in, text, strlen(text), &err)) rc = cli_report(cmd, &err);
        } else if (a.n_positional == 0) {
            if (slurp(stdin, &in, &err)) {
                fprintf(stderr, "selfsup %s: reading stdin failed\n", cmd);
                rc = 1;
            }
        }
        for (int i = 0; i < a.n_positional && !rc; i++) {
            FILE *f = fopen(a.positional[i], "rb");
            if (!f || slurp(f, &in, &err)) {
                fprintf(stderr, "selfsup %s: %s: cannot read: %s\n", cmd, a.positional[i], strerror(errno));
                rc = 1;
            }
            if (f) fclose(f);
        }
        ss_ids ids = {0};
        for (long long r = 0; r < repeat && !rc; r++) {
            ids.n = 0;
            double t0 = now_sec();
            if (ss_tokenizer_encode_parallel(t, in.data ? in.data : "", in.len, allow, threads, &ids, &err))
                rc = cli_report(cmd, &err);
            double dt = now_sec() - t0;
            if (stats && !rc)
                fprintf(stderr, "encoded %zu bytes into %zu tokens in %.4f s: %.2f MB/s, %d thread%s\n", in.len,
                        ids.n, dt, dt > 0 ? (double)in.len / dt / 1e6 : 0.0, threads, threads == 1 ? "" : "s");
        }
        if (!rc) out_ids(&o, ids.ids, ids.n);
        ss_ids_free(&ids);
        ss_buf_free(&in);
    }
    out_flush(&o);
    if (fflush(stdout) != 0 || o.failed) {
        fprintf(stderr, "selfsup %s: writing stdout failed: %s\n", cmd, strerror(errno));
        rc = 1;
    }
    ss_tokenizer_free(t);
    cli_args_free(&a);
    return rc;
}

/* ---- decode ----------------------------------------------------------------------------- */

/* Parse one id; on a non-number or out-of-range value print an error naming it. */
static int parse_id(const char *cmd, const char *s, size_t len, size_t pos, size_t vocab, ss_ids *ids) {
    char tmp[32];
    int ok = len > 0 && len < sizeof tmp;
    long long v = 0;
    if (ok) {
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        char *end;
        errno = 0;
        v = strtoll(tmp, &end, 10);
        ok = !errno && *end == '\0' && (tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9'));
    }
    if (!ok) {
        fprintf(stderr, "selfsup %s: '%.*s' (position %zu) is not a token id\n", cmd,
                (int)(len > 64 ? 64 : len), s, pos);
        return 1;
    }
    if (v < 0 || (unsigned long long)v >= vocab) {
        fprintf(stderr, "selfsup %s: token id %lld at position %zu is out of range (vocab size %zu)\n",
                cmd, v, pos, vocab);
        return 1;
    }
    ss_error err = {0};
    if (ss_ids_push(ids, (int32_t)v, &err)) return cli_report(cmd, &err);
    return 0;
}

static int cmd_decode(int argc, char **argv) {
    const char *cmd = "tokenizer decode";
    cli_args a;
    cli_args_init(&a, argc, argv, cmd, usage_decode);
    const char *path = cli_require(&a, "--tokenizer");
    if (cli_args_done(&a)) return 2;
    ss_tokenizer *t = load_or_die(cmd, path);
    size_t vocab = ss_tokenizer_vocab_size(t);
    ss_ids ids = {0};
    ss_error err = {0};
    int rc = 0;
    for (int i = 0; i < a.n_positional && !rc; i++)
        rc = parse_id(cmd, a.positional[i], strlen(a.positional[i]), ids.n, vocab, &ids);
    if (a.n_positional == 0) {
        ss_buf in = {0};
        if (slurp(stdin, &in, &err)) {
            fprintf(stderr, "selfsup %s: reading stdin failed\n", cmd);
            rc = 1;
        }
        for (size_t i = 0; !rc && i < in.len;) {
            while (i < in.len && strchr(" \t\r\n\v\f", in.data[i])) i++;
            size_t j = i;
            while (j < in.len && !strchr(" \t\r\n\v\f", in.data[j])) j++;
            if (j > i) rc = parse_id(cmd, in.data + i, j - i, ids.n, vocab, &ids);
            i = j;
        }
        ss_buf_free(&in);
    }
    ss_buf out = {0};
    if (!rc && ss_tokenizer_decode(t, ids.ids, ids.n, &out, &err)) rc = cli_report(cmd, &err);
    if (!rc && out.len && (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)) {
        fprintf(stderr, "selfsup %s: writing stdout failed: %s\n", cmd, strerror(errno));
        rc = 1;
    }
    ss_buf_free(&out);
    ss_ids_free(&ids);
    ss_tokenizer_free(t);
    cli_args_free(&a);
    return rc;
}

/* ---- info ------------------------------------------------------------------------------- */
static void print_escaped(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') fputs("\\\\", stdout);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7F || c >= 0x80) printf("\\x%02x", c);
        else putchar(c);
    }
}

static int cmd_info(int argc, char **argv) {
    const char *cmd = "tokenizer info";
    cli_args a;
    cli_args_init(&a, argc, argv, cmd, usage_info);
    const char *path = cli_require(&a, "--tokenizer");
    if (cli_args_done(&a)) return 2;
    ss_tokenizer *t = load_or_die(cmd, path);
    static const char *norms[] = {"none", "NFC", "NFKC"};
    size_t v = ss_tokenizer_vocab_size(t), na = ss_tokenizer_num_added(t);
    printf("tokenizer:     %s\n", path);
    printf("vocab size:    %zu\n", v);
    printf("merges:        %zu\n", ss_tokenizer_num_merges(t));
    ss_normalization nm = ss_tokenizer_normalization(t);
    if (!ss_tokenizer_lowercase(t)) printf("normalization: %s\n", norms[nm]);
    else if (nm == SS_NORM_NONE) printf("normalization: Lowercase\n");
    else printf("normalization: %s+Lowercase\n", norms[nm]);
    printf("added tokens:  %zu\n", na);
    for (size_t i = 0; i < na; i++) {
        const ss_added_token *x = ss_tokenizer_added(t, i);
        printf("  %6d  %s%s\n", x->id, x->content, x->special ? "  (special)" : "");
    }
    printf("examples (id, stored token, bytes):\n");
    /* a byte, then tokens spread over the vocab (later ids are longer merges) */
    int32_t ex[] = {ss_tokenizer_token_id(t, "e"), (int32_t)(v / 4), (int32_t)(v / 2),
                    (int32_t)(3 * v / 4), (int32_t)v - 1};
    int32_t last = -1;
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
        if (ex[i] <= last || (size_t)ex[i] >= v) continue;
        last = ex[i];
        size_t len;
        const char *b = ss_tokenizer_token_bytes(t, ex[i], &len);
        printf("  %6d  %-20s \"", ex[i], ss_tokenizer_token(t, ex[i]));
        print_escaped(b, len);
        printf("\"\n");
    }
    ss_tokenizer_free(t);
    cli_args_free(&a);
    return 0;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage_top, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(sub, "encode") == 0) return cmd_encode(argc - 1, argv + 1);
    if (strcmp(sub, "decode") == 0) return cmd_decode(argc - 1, argv + 1);
    if (strcmp(sub, "info") == 0) return cmd_info(argc - 1, argv + 1);
    fprintf(stderr, "selfsup tokenizer: unknown subcommand '%s'\n\n%s", sub, usage_top);
    return 2;
}
