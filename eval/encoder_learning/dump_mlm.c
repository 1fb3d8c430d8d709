/* Dump exactly what `selfsup pretrain --objective mlm` trains on, so a
 * PyTorch run can replay it: the initial weights (a model directory) and,
 * for each step, the packed + masked batch, drawn with the trainer's data
 * RNG in the trainer's order (ss_mlm_pack_random, then ss_mlm_mask, per
 * micro-batch). Also the val batches the trainer's evaluation uses, the raw
 * train/val ids, and a decoded listing of the first batch for inspection.
 *
 *   dump_mlm DATA OUT STEPS SEED B T L C NH F [mlm | rtd GEN_SIZE]
 *
 * OUT/init/            config.json + model.safetensors (ss_model_init_weights(seed));
 *                      for rtd the discriminator, with the generator
 *                      (init seed+1, sharing its embeddings) stored beside it
 * OUT/batches.bin      per step: int32 tokens[B*T], int32 targets[B*T], uint8 key_valid[B*T]
 * OUT/val_batches.bin  int32 rows, then the same three arrays for each eval batch
 * OUT/{train,val}.ids  int32 ids of the splits (separator included)
 * OUT/first_batch.txt  the first batch decoded token by token
 *
 * Must mirror src/train/trainer.c (setup_fresh: data_rng seed) and
 * src/train/objectives.c (masked_batch) and src/train/encoder_eval.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/encoder_eval.h"
#include "selfsup/io.h"
#include "selfsup/mlm.h"
#include "selfsup/model.h"
#include "selfsup/tokenizer.h"
#include "selfsup/train.h"

static void die(ss_status st, ss_error *err) {
    if (st) {
        fprintf(stderr, "error: %s\n", err->msg);
        exit(1);
    }
}

static void write_ids(const char *out, const char *name, const ss_token_split *s) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s.ids", out, name);
    FILE *f = fopen(p, "wb");
    fwrite(s->ids, 4, s->n, f);
    fclose(f);
}

static void show_row(FILE *f, const ss_tokenizer *tok, const int32_t *t, const int32_t *tg, const uint8_t *kv, int T) {
    for (int i = 0; i < T; i++) {
        size_t n;
        const char *b = ss_tokenizer_token_bytes(tok, t[i], &n);
        fprintf(f, "%3d kv=%d tok=%4d %-12.*s", i, kv[i], t[i], (int)n, b ? b : "?");
        if (tg[i] >= 0) {
            const char *c = ss_tokenizer_token_bytes(tok, tg[i], &n);
            fprintf(f, "  target=%4d %.*s", tg[i], (int)n, c ? c : "?");
        }
        fputc('\n', f);
    }
}

int main(int argc, char **argv) {
    if (argc < 11) {
        fprintf(stderr, "usage: dump_mlm DATA OUT STEPS SEED B T L C NH F [mlm | rtd GEN_SIZE]\n");
        return 2;
    }
    const char *data = argv[1], *out = argv[2];
    long steps = atol(argv[3]);
    uint64_t seed = strtoull(argv[4], NULL, 10);
    int B = atoi(argv[5]), T = atoi(argv[6]);
    ss_error err = {0};
    ss_token_split tr, va;
    die(ss_mkdir_p(out, &err), &err);
    die(ss_token_split_load(&tr, data, "train", &err), &err);
    die(ss_token_split_load(&va, data, "val", &err), &err);
    write_ids(out, "train", &tr);
    write_ids(out, "val", &va);

    char p[4200];
    snprintf(p, sizeof p, "%s/tokenizer.json", data);
    ss_tokenizer *tok;
    die(ss_tokenizer_load(&tok, p, &err), &err);
    ss_mlm_config mc;
    die(ss_mlm_config_from_tokenizer(&mc, tok, &err), &err);

    /* the model exactly as obj_create_models makes it (disc head for rtd) */
    int rtd = argc > 11 && strcmp(argv[11], "rtd") == 0;
    ss_model_config c = {SS_ENCODER, (int)tr.vocab_size, atoi(argv[7]), atoi(argv[8]), atoi(argv[9]),
                         atoi(argv[10]), T, 0.0f, 0, rtd ? SS_HEAD_DISC : SS_HEAD_MLM};
    ss_model *m, *gen = NULL;
    die(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, seed);
    if (rtd) { /* as obj_create_models does it */
        ss_model_config g = ss_electra_generator_config(&c, argc > 12 ? atof(argv[12]) : 0.25);
        die(ss_model_create_shared(&gen, &g, m, &err), &err);
        ss_model_init_weights(gen, seed + 1);
    }
    snprintf(p, sizeof p, "%s/init", out);
    die(ss_model_save_with(m, gen, p, NULL, 0, &err), &err);

    ss_doc_index td, vd;
    die(ss_doc_index_build(&td, &tr, &err), &err);
    die(ss_doc_index_build(&vd, &va, &err), &err);
    size_t n = (size_t)B * T;
    int32_t *tokens = malloc(n * 4), *targets = malloc(n * 4);
    uint8_t *kv = malloc(n);

    ss_rng rng;
    ss_rng_seed(&rng, seed ^ 0x5DEECE66Dull); /* trainer.c setup_fresh */
    snprintf(p, sizeof p, "%s/batches.bin", out);
    FILE *f = fopen(p, "wb");
    long masked = 0, real = 0;
    for (long s = 0; s < steps; s++) {
        ss_mlm_pack_random(&td, &mc, &rng, B, T, tokens, kv);
        masked += (long)ss_mlm_mask(&mc, &rng, B, T, tokens, kv, targets);
        for (size_t i = 0; i < n; i++) real += kv[i];
        fwrite(tokens, 4, n, f);
        fwrite(targets, 4, n, f);
        fwrite(kv, 1, n, f);
        if (s == 0) {
            char q[4200];
            snprintf(q, sizeof q, "%s/first_batch.txt", out);
            FILE *g = fopen(q, "w");
            for (int b = 0; b < B; b++) {
                fprintf(g, "==== row %d\n", b);
                show_row(g, tok, tokens + (size_t)b * T, targets + (size_t)b * T, kv + (size_t)b * T, T);
            }
            fclose(g);
        }
    }
    fclose(f);
    if (rtd) {
        /* RTD draws generator samples from the same RNG between batches, so
         * only the first batch above is the trainer's; the rest are not. */
        fprintf(stderr, "note: rtd batches after the first differ from the trainer's (sampling uses data_rng)\n");
    }

    /* val batches as ss_evaluate_encoder makes them (whole split) */
    ss_rng er;
    ss_rng_seed(&er, SS_EVAL_MASK_SEED);
    uint64_t cursor = 0;
    int rows;
    snprintf(p, sizeof p, "%s/val_batches.bin", out);
    f = fopen(p, "wb");
    long vmasked = 0;
    while ((rows = ss_mlm_pack_sequential(&vd, &mc, &cursor, B, T, tokens, kv)) > 0) {
        vmasked += (long)ss_mlm_mask(&mc, &er, rows, T, tokens, kv, targets);
        for (size_t i = (size_t)rows * T; i < n; i++) targets[i] = -1;
        int32_t r = rows;
        fwrite(&r, 4, 1, f);
        fwrite(tokens, 4, n, f);
        fwrite(targets, 4, n, f);
        fwrite(kv, 1, n, f);
    }
    fclose(f);
    printf("dumped %ld steps: %ld real tokens, %ld masked (%.3f); val masked %ld\n", steps, real, masked,
           (double)masked / (double)real, vmasked);
    printf("ids: cls %d sep %d pad %d mask %d, %zu ordinary; train %zu docs, mean len %.1f\n", mc.cls_id, mc.sep_id,
           mc.pad_id, mc.mask_id, mc.n_ordinary, td.n_docs, (double)td.cum[td.n_docs] / (double)td.n_docs);
    free(tokens); free(targets); free(kv);
    ss_doc_index_free(&td); ss_doc_index_free(&vd);
    ss_mlm_config_free(&mc);
    ss_model_free(gen);
    ss_model_free(m);
    ss_tokenizer_free(tok);
    ss_token_split_free(&tr); ss_token_split_free(&va);
    return 0;
}
