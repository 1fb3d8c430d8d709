/* selfsup data get|prepare|inspect */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "selfsup/shard.h"

static const char usage_top[] =
    "usage: selfsup data SUBCOMMAND [OPTIONS]   (every subcommand has --help)\n"
    "\n"
    "  get       fetch a corpus from corpora/ into the cache\n"
    "  prepare   encode raw text into zstd token shards for training\n"
    "  inspect   print a shard's (or a prepared directory's) header and verify it\n";

static const char usage_prepare[] =
    "usage: selfsup data prepare --tokenizer T --out DIR [OPTIONS] FILE...\n"
    "\n"
    "Encode raw text files (plain or zstd, '-' = stdin) into token shards.\n"
    "\n"
    "  --tokenizer T        tokenizer.json, or a directory with tokenizer.json or\n"
    "                       GPT-2's encoder.json + vocab.bpe\n"
    "  -o, --out DIR        output directory (created if needed)\n"
    "  --doc-boundary B     line  (default) each non-empty line is a document\n"
    "                       blank blocks separated by blank lines\n"
    "                       file  each whole file is a document\n"
    "  --val-fraction F     share of documents held out for validation (default 0.05),\n"
    "                       chosen by a seeded hash of the document index\n"
    "  --seed S             seed of the train/val assignment (default 1234)\n"
    "  --separator TOKEN    token placed after every document (default <|endoftext|>)\n"
    "  --shard-tokens N     tokens per shard file (default 67108864)\n"
    "  -t, --threads N      encoding threads (default: physical cores)\n"
    "\n"
    "Output: DIR/train-00000.shard ..., DIR/val-00000.shard ..., DIR/tokenizer.json and\n"
    "DIR/meta.json (splits, shard names, doc/token/byte counts, settings).\n"
    "A shard is a 64-byte little-endian header (magic SSSHARD1, version, id width,\n"
    "vocab size, separator id, token/doc/text-byte counts, FNV-1a 64 checksum of\n"
    "the id bytes, payload size) followed by one zstd frame of uint16 ids (uint32\n"
    "when the vocab exceeds 65536): doc sep doc sep ...\n";

static const char usage_inspect[] =
    "usage: selfsup data inspect SHARD_OR_DIR...\n"
    "\n"
    "Print the header of each shard (for a prepared directory: meta.json's splits\n"
    "and every listed shard) and verify the payload: token count, FNV-1a checksum,\n"
    "zstd frame checksum, ids below the vocab size. Exits 1 on the first bad file.\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_boundary(const char *s, ss_doc_boundary *b) {
    if (strcmp(s, "line") == 0) *b = SS_DOC_LINE;
    else if (strcmp(s, "blank") == 0) *b = SS_DOC_BLANK;
    else if (strcmp(s, "file") == 0) *b = SS_DOC_FILE;
    else return 0;
    return 1;
}

static int cmd_prepare(int argc, char **argv) {
    const char *cmd = "data prepare";
    cli_args a;
    cli_args_init(&a, argc, argv, cmd, usage_prepare);
    ss_prepare_opts o = {0};
    o.tokenizer_path = cli_require(&a, "--tokenizer");
    o.out_dir = cli_require(&a, "--out");
    o.val_fraction = cli_opt_double(&a, "--val-fraction", 0.05);
    long long seed = cli_opt_int(&a, "--seed", 1234);
    long long shard_tokens = cli_opt_int(&a, "--shard-tokens", 1ll << 26);
    int threads = cli_opt_threads(&a, cli_default_threads());
    const char *boundary = cli_opt(&a, "--doc-boundary");
    o.separator = cli_opt(&a, "--separator");
    if (cli_args_done(&a)) { cli_args_free(&a); return 2; }
    if (boundary && !parse_boundary(boundary, &o.boundary))
        cli_die(cmd, "--doc-boundary must be line, blank or file, not '%s'", boundary);
    if (!(o.val_fraction >= 0 && o.val_fraction <= 1))
        cli_die(cmd, "--val-fraction must be between 0 and 1");
    if (seed < 0) cli_die(cmd, "--seed must be >= 0");
    if (shard_tokens < 1) cli_die(cmd, "--shard-tokens must be >= 1");
    if (threads < 1 || threads > 4096) cli_die(cmd, "--threads must be between 1 and 4096");
    if (a.n_positional == 0) cli_die(cmd, "no input files (see --help)");
    o.seed = (uint64_t)seed;
    o.shard_tokens = (uint64_t)shard_tokens;
    o.nthreads = (int)threads;

    ss_prepare_stats st;
    ss_error err = {0};
    double t0 = now_s();
    ss_status s = ss_prepare_corpus(&o, (const char *const *)a.positional,
                                    (size_t)a.n_positional, &st, &err);
    double dt = now_s() - t0;
    cli_args_free(&a);
    if (s) return cli_report(cmd, &err);
    uint64_t tokens = st.tokens[0] + st.tokens[1], bytes = st.text_bytes[0] + st.text_bytes[1];
    for (int i = 0; i < 2; i++)
        printf("%-5s %10llu docs %12llu tokens %13llu text bytes %5zu shard%s\n",
               i ? "val" : "train", (unsigned long long)st.docs[i],
               (unsigned long long)st.tokens[i], (unsigned long long)st.text_bytes[i],
               st.shards[i], st.shards[i] == 1 ? "" : "s");
    printf("wrote %s/ in %.2f s: %.0f tokens/s, %.2f MB/s of text, %.3f bytes/token, %d threads\n",
           o.out_dir, dt, dt > 0 ? (double)tokens / dt : 0.0, dt > 0 ? (double)bytes / dt / 1e6 : 0.0,
           tokens ? (double)bytes / (double)tokens : 0.0, o.nthreads);
    return 0;
}

/* Print one shard's header, then stream it to verify. */
static int inspect_shard(const char *path) {
    ss_shard_header h;
    ss_error err = {0};
    if (ss_shard_read_header(path, &h, &err)) return cli_report("data inspect", &err);
    double ratio = h.n_tokens ? (double)h.payload_bytes / (double)h.n_tokens : 0.0;
    printf("%s\n  version %u, %u-byte ids, vocab %u, separator %u\n"
           "  %llu tokens, %llu docs, %llu text bytes, payload %llu bytes (%.2f bytes/token)\n"
           "  checksum %016llx",
           path, h.version, h.id_bytes, h.vocab_size, h.separator_id,
           (unsigned long long)h.n_tokens, (unsigned long long)h.n_docs,
           (unsigned long long)h.n_text_bytes, (unsigned long long)h.payload_bytes, ratio,
           (unsigned long long)h.checksum);
    fflush(stdout);
    if (ss_shard_verify(path, &err)) {
        printf(": BAD\n");
        return cli_report("data inspect", &err);
    }
    printf(": verified\n");
    return 0;
}

/* A prepared directory: both splits via ss_shardset (which checks headers
 * against meta.json), then every shard in full. */
static int inspect_dir(const char *dir) {
    static const char *const splits[2] = {"train", "val"};
    for (int i = 0; i < 2; i++) {
        ss_shardset *s;
        ss_error err = {0};
        if (ss_shardset_open(&s, dir, splits[i], &err)) return cli_report("data inspect", &err);
        printf("%s: %s split: %zu shards, %llu docs, %llu tokens, %llu text bytes, vocab %u, "
               "separator %u\n", dir, splits[i], ss_shardset_num_shards(s),
               (unsigned long long)ss_shardset_docs(s), (unsigned long long)ss_shardset_tokens(s),
               (unsigned long long)ss_shardset_text_bytes(s), ss_shardset_vocab_size(s),
               ss_shardset_separator_id(s));
        int rc = 0;
        for (size_t k = 0; k < ss_shardset_num_shards(s) && !rc; k++)
            rc = inspect_shard(ss_shardset_shard_path(s, k));
        ss_shardset_close(s);
        if (rc) return rc;
    }
    return 0;
}

static int cmd_inspect(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "data inspect", usage_inspect);
    if (cli_args_done(&a)) { cli_args_free(&a); return 2; }
    if (a.n_positional == 0) cli_die("data inspect", "expected a shard file or directory");
    int rc = 0;
    for (int i = 0; i < a.n_positional && !rc; i++) {
        struct stat sb;
        const char *p = a.positional[i];
        rc = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode) ? inspect_dir(p) : inspect_shard(p);
    }
    cli_args_free(&a);
    return rc;
}

int cmd_data(int argc, char **argv) {
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage_top, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "get") == 0) return cmd_data_get(argc - 1, argv + 1);
    if (strcmp(sub, "prepare") == 0) return cmd_prepare(argc - 1, argv + 1);
    if (strcmp(sub, "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
    fprintf(stderr, "selfsup data: unknown subcommand '%s'\n\n%s", sub, usage_top);
    return 2;
}
