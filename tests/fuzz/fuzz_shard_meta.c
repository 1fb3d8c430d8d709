/* A prepared data directory (data prepare --out): the input is meta.json,
 * optionally followed by the line "--shard--" and the bytes of
 * train-00000.shard; otherwise that shard, and always val-00000.shard, are
 * valid shards written at start-up. Both splits are loaded the way
 * pretraining loads them (ss_token_split_load: meta.json checked against
 * the shard headers, every shard streamed and verified). A split that loads
 * holds ids inside its vocabulary, as many as meta.json says. */
#include "fuzz.h"

#include "selfsup/shard.h"
#include "selfsup/tokens.h"

#define SEP "\n--shard--\n"

static char *train_shard, *val_shard;
static size_t train_len, val_len;

static char *make_shard(const char *name, uint32_t vocab, int docs, size_t *len) {
    char path[1024];
    ss_error err = {0};
    ss_shard_writer *w;
    fz_path(path, sizeof path, name);
    if (ss_shard_writer_open(&w, path, vocab, 0, &err)) goto fail;
    for (int d = 0; d < docs; d++) {
        int32_t ids[5] = {1 + d, 7, 250 + d, 299, 42};
        if (ss_shard_writer_add_doc(w, ids, 5, 12, &err)) goto fail;
    }
    if (ss_shard_writer_close(w, &err)) goto fail;
    FILE *f = fopen(path, "rb");
    char *buf = malloc(4096);
    if (!f || !buf) abort();
    *len = fread(buf, 1, 4096, f);
    fclose(f);
    return buf;
fail:
    fprintf(stderr, "fuzz_shard_meta: writing %s: %s\n", name, err.msg);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    fz_subdir("data");
    train_shard = make_shard("data/train-00000.shard", 300, 3, &train_len);
    val_shard = make_shard("data/val-00000.shard", 300, 1, &val_len);
    return 0;
}

static void load(const char *dir, const char *split) {
    ss_token_split s;
    ss_error err = {0};
    ss_status st = ss_token_split_load(&s, dir, split, &err);
    fz_note(split, st, &err);
    if (st) {
        fz_check_error(st, &err);
        return;
    }
    for (size_t i = 0; i < s.n; i++)
        FZ_CHECK(s.ids[i] >= 0 && (uint32_t)s.ids[i] < s.vocab_size, "%s: id %d outside vocab %u", split, s.ids[i],
                 s.vocab_size);
    ss_token_split_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t meta_len, shard_len;
    const uint8_t *shard;
    fz_split(data, size, SEP, &meta_len, &shard, &shard_len);
    char path[1024], dir[1024];
    fz_write(path, sizeof path, "data/meta.json", data, meta_len);
    if (shard_len) fz_write(path, sizeof path, "data/train-00000.shard", shard, shard_len);
    else fz_write(path, sizeof path, "data/train-00000.shard", train_shard, train_len);
    fz_write(path, sizeof path, "data/val-00000.shard", val_shard, val_len);
    fz_path(dir, sizeof dir, "data");
    load(dir, "train");
    load(dir, "val");
    return 0;
}
