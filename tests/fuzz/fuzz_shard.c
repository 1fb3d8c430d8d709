/* Token shards (train-NNNNN.shard): the input is one shard file, read by the
 * streaming reader in small pieces to its end (where the token count and
 * checksum are verified) and by ss_shard_verify, which must agree. Every id
 * read is inside the header's vocabulary; a shard read through has exactly
 * the header's token count. */
#include "fuzz.h"

#include "selfsup/shard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024];
    fz_write(path, sizeof path, "train-00000.shard", data, size);
    ss_error err = {0};
    if (size >= SS_SHARD_HEADER_SIZE) {
        ss_shard_header h;
        ss_status st = ss_shard_header_parse(data, "in.shard", &h, &err);
        if (st) fz_check_error(st, &err);
    }
    ss_shard_reader *r = NULL;
    ss_status st = ss_shard_reader_open(&r, path, &err);
    ss_status verified = ss_shard_verify(path, &err);
    fz_note("shard", verified, &err);
    if (verified) fz_check_error(verified, &err);
    if (st) {
        fz_check_error(st, &err);
        FZ_CHECK(verified != SS_OK, "the reader refused a shard that verifies");
        return 0;
    }
    const ss_shard_header *h = ss_shard_reader_header(r);
    int32_t ids[7];
    uint64_t total = 0;
    size_t got = 0, cap = 1 + (size ? data[size - 1] % 7 : 0);
    while (!(st = ss_shard_reader_next(r, ids, cap, &got, &err)) && got) {
        FZ_CHECK(got <= cap, "%zu ids for room for %zu", got, cap);
        for (size_t i = 0; i < got; i++)
            FZ_CHECK(ids[i] >= 0 && (uint32_t)ids[i] < h->vocab_size, "id %d outside vocab %u", ids[i],
                     h->vocab_size);
        total += got;
    }
    if (st) fz_check_error(st, &err);
    else FZ_CHECK(total == h->n_tokens, "%llu ids read, header says %llu", (unsigned long long)total,
                  (unsigned long long)h->n_tokens);
    FZ_CHECK((st == SS_OK) == (verified == SS_OK), "reader %d but verify %d", (int)st, (int)verified);
    ss_shard_reader_close(r);
    return 0;
}
