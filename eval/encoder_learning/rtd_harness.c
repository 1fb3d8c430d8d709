/* The ELECTRA (rtd) training step of src/train/objectives.c + trainer.c,
 * rebuilt from the public library API so that every step's inputs can be
 * dumped: the masked batch, the generator's samples, and the loss. Its
 * per-step losses must equal `selfsup pretrain --objective rtd` (same
 * options, --log-every 1) bit for bit; replay_rtd_torch.py --samples then
 * replays the very same steps in PyTorch.
 *
 *   rtd_harness DATA OUT STEPS SEED B T L C NH F GEN_SIZE LR WARMUP DISC_WEIGHT
 *
 * OUT/init/          discriminator + generator before training
 * OUT/rtd_steps.bin  per step: int32 tokens, targets, samples [B*T], uint8 key_valid [B*T]
 * OUT/rtd_loss.tsv   step, loss, gen_loss, disc_loss, grad_norm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/io.h"
#include "selfsup/mlm.h"
#include "selfsup/model.h"
#include "selfsup/optim.h"
#include "selfsup/tokenizer.h"
#include "selfsup/train.h"

static void die(ss_status st, ss_error *err) {
    if (st) {
        fprintf(stderr, "error: %s\n", err->msg);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 15) {
        fprintf(stderr, "usage: rtd_harness DATA OUT STEPS SEED B T L C NH F GEN_SIZE LR WARMUP DISC_WEIGHT\n");
        return 2;
    }
    const char *data = argv[1], *out = argv[2];
    long steps = atol(argv[3]);
    uint64_t seed = strtoull(argv[4], NULL, 10);
    int B = atoi(argv[5]), T = atoi(argv[6]);
    double gen_size = atof(argv[11]), lr = atof(argv[12]), w = atof(argv[14]);
    long warmup = atol(argv[13]);
    ss_error err = {0};
    ss_token_split tr;
    die(ss_mkdir_p(out, &err), &err);
    die(ss_token_split_load(&tr, data, "train", &err), &err);
    char p[4200];
    snprintf(p, sizeof p, "%s/tokenizer.json", data);
    ss_tokenizer *tok;
    die(ss_tokenizer_load(&tok, p, &err), &err);
    ss_mlm_config mc;
    die(ss_mlm_config_from_tokenizer(&mc, tok, &err), &err);
    ss_doc_index td;
    die(ss_doc_index_build(&td, &tr, &err), &err);

    ss_model_config c = {SS_ENCODER, (int)tr.vocab_size, atoi(argv[7]), atoi(argv[8]), atoi(argv[9]),
                         atoi(argv[10]), T, 0.0f, 0, SS_HEAD_DISC};
    ss_model *d, *g;
    die(ss_model_create(&d, &c, &err), &err);
    ss_model_init_weights(d, seed);
    ss_model_config gc = ss_electra_generator_config(&c, gen_size);
    die(ss_model_create_shared(&g, &gc, d, &err), &err);
    ss_model_init_weights(g, seed + 1);
    snprintf(p, sizeof p, "%s/init", out);
    die(ss_model_save_with(d, g, p, NULL, 0, &err), &err);
    ss_adamw od, og;
    die(ss_adamw_init(&od, ss_model_num_params(d), &err), &err);
    die(ss_adamw_init(&og, ss_model_num_params(g), &err), &err);

    size_t n = (size_t)B * T;
    int32_t *tokens = malloc(n * 4), *targets = malloc(n * 4), *samples = malloc(n * 4), *dtok = malloc(n * 4);
    uint8_t *kv = malloc(n), *replaced = malloc(n);
    ss_rng rng;
    ss_rng_seed(&rng, seed ^ 0x5DEECE66Dull);
    snprintf(p, sizeof p, "%s/rtd_steps.bin", out);
    FILE *f = fopen(p, "wb");
    snprintf(p, sizeof p, "%s/rtd_loss.tsv", out);
    FILE *lf = fopen(p, "w");
    fprintf(lf, "step\tloss\tgen_loss\tdisc_loss\tgrad_norm\n");
    for (long s = 0; s < steps; s++) {
        ss_model_zero_grads(d);
        ss_model_zero_grads(g);
        /* objectives.c masked_batch */
        ss_mlm_pack_random(&td, &mc, &rng, B, T, tokens, kv);
        int64_t real = 0;
        for (size_t i = 0; i < n; i++) real += kv[i];
        size_t nm = ss_mlm_mask(&mc, &rng, B, T, tokens, kv, targets);
        /* rtd_generator; the step seed only matters with dropout (0 here) */
        uint64_t sseed = (seed + 0x9E3779B97F4A7C15ull * (uint64_t)(s + 1));
        for (size_t i = 0; i < n; i++) samples[i] = -1;
        ss_loss_stats ls;
        die(ss_model_body_forward(g, tokens, kv, B, T, 1, sseed ^ 0x6E6ull, NULL, &err), &err);
        die(ss_lm_head_sample(g, targets, 1.0f / (float)nm, 1, &rng, 1.0f, samples, &ls, &err), &err);
        ss_model_body_backward(g);
        fwrite(tokens, 4, n, f);
        fwrite(targets, 4, n, f);
        fwrite(samples, 4, n, f);
        fwrite(kv, 1, n, f);
        for (size_t i = 0; i < n; i++) {
            dtok[i] = targets[i] >= 0 ? samples[i] : tokens[i];
            replaced[i] = targets[i] >= 0 && samples[i] != targets[i];
        }
        ss_disc_stats ds;
        die(ss_model_body_forward(d, dtok, kv, B, T, 1, sseed, NULL, &err), &err);
        die(ss_disc_head(d, kv, replaced, (float)w / (float)real, 1, NULL, &ds, &err), &err);
        ss_model_body_backward(d);
        /* trainer.c clip_all + adamw_all */
        double a = ss_grad_norm(ss_model_grads(d), ss_model_num_params(d));
        double b = ss_grad_norm(ss_model_grads(g), ss_model_num_params(g));
        double norm = sqrt(a * a + b * b);
        if (norm > 1.0) {
            ss_scale_grads(ss_model_grads(d), ss_model_num_params(d), (float)(1.0 / (norm + 1e-6)));
            ss_scale_grads(ss_model_grads(g), ss_model_num_params(g), (float)(1.0 / (norm + 1e-6)));
        }
        ss_adamw_hparams h = {(float)ss_lr_schedule(s, steps, warmup, lr, lr / 10), 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0};
        ss_adamw_step(&od, d, ss_model_params(d), ss_model_grads(d), &h);
        ss_adamw_step(&og, g, ss_model_params(g), ss_model_grads(g), &h);
        double gl = ls.loss_sum / (double)nm, dl = ds.loss_sum / (double)ds.n;
        fprintf(lf, "%ld\t%.17g\t%.17g\t%.17g\t%.17g\n", s + 1, gl + dl * w, gl, dl, norm);
    }
    fclose(f);
    fclose(lf);
    free(tokens); free(targets); free(samples); free(dtok); free(kv); free(replaced);
    ss_adamw_free(&od); ss_adamw_free(&og);
    ss_model_free(g); ss_model_free(d);
    ss_doc_index_free(&td);
    ss_mlm_config_free(&mc);
    ss_tokenizer_free(tok);
    ss_token_split_free(&tr);
    return 0;
}
