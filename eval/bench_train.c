/* make bench-train, selfsup side: training throughput on random token
 * windows (the same work as eval/torch_train_bench.py) for the three
 * objectives: clm (decoder, loss on every position), mlm (encoder, loss on
 * 15% masked positions) and rtd (ELECTRA: a generator at 1/4 width sharing
 * the embeddings samples the masked positions, the discriminator classifies
 * every token), with MFU against the sgemm peak measured in the same
 * process, and peak RSS against the analytic memory need.
 * With --precision (fp32|bf16|auto, default fp32) the GEMM layer's choice;
 * MFU is reported against the selected backend's 1024^3 peak (mfu) and
 * against the faster f32 backend's (mfu_f32).
 * --gemm NAME forces one backend (e.g. openblas-f32: the reference path).
 * --tiles openblas sends attention's tiles through OpenBLAS sgemm instead of
 * selfsup's own tile kernels (ss_gemm_set_own_tiles; make bench-tiles).
 * --bias 0: no biases in the body (pretrain --no-bias; make bench-bias).
 * usage: bench_train S|M|custom [--objective clm|mlm|rtd] [--steps N] [--warmup N] [--threads N] [--precision P]
 *        [--gemm NAME] [--tiles own|openblas] [--bias 1|0]
 *        [--layers L --d-model C --heads H --d-ff F --seq T --batch B --vocab V]
 * Prints one JSON line. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>

#include "selfsup/gemm.h"
#include "selfsup/model.h"
#include "selfsup/optim.h"
#include "selfsup/rng.h"
#include "selfsup/train.h"

typedef struct {
    ss_objective obj;
    int B, T, V;
    ss_model *m, *g;
    ss_adamw o, go;
    int32_t *tok, *tgt, *samples;
    uint8_t *replaced;
    ss_rng rng;
} bench;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const ss_error *e) {
    fprintf(stderr, "bench_train: %s\n", e->msg);
    exit(1);
}

/* Random tokens; targets on every position (clm) or on ~15% (mlm/rtd). */
static void make_batch(bench *b) {
    int n = b->B * b->T;
    for (int i = 0; i < n; i++) {
        b->tok[i] = (int32_t)ss_rng_below(&b->rng, (uint64_t)b->V);
        int chosen = b->obj == SS_OBJ_CLM || ss_rng_uniform(&b->rng) < 0.15f;
        b->tgt[i] = chosen ? (int32_t)ss_rng_below(&b->rng, (uint64_t)b->V) : -1;
    }
}

static int64_t count_targets(const bench *b) {
    int64_t n = 0;
    for (int i = 0; i < b->B * b->T; i++) n += b->tgt[i] >= 0;
    return n > 0 ? n : 1;
}

/* One training step; returns the loss. */
static double step(bench *b, uint64_t seed) {
    ss_error err = {0};
    ss_loss_stats ls;
    int64_t nt = count_targets(b);
    ss_model_zero_grads(b->m);
    if (b->obj != SS_OBJ_RTD) {
        ss_batch bt = {b->tok, b->tgt, NULL, b->B, b->T};
        if (ss_model_forward_backward(b->m, &bt, 1.0f / (float)nt, seed, &ls, &err)) die(&err);
    } else {
        ss_model_zero_grads(b->g);
        if (ss_model_body_forward(b->g, b->tok, NULL, b->B, b->T, 1, seed, NULL, &err) ||
            ss_lm_head_sample(b->g, b->tgt, 1.0f / (float)nt, 1, &b->rng, 1.0f, b->samples, &ls, &err)) die(&err);
        ss_model_body_backward(b->g);
        for (int i = 0; i < b->B * b->T; i++) {
            b->replaced[i] = b->tgt[i] >= 0 && b->samples[i] != b->tgt[i];
            if (b->tgt[i] >= 0) b->tok[i] = b->samples[i];
        }
        ss_disc_stats ds;
        if (ss_model_body_forward(b->m, b->tok, NULL, b->B, b->T, 1, seed, NULL, &err) ||
            ss_disc_head(b->m, NULL, b->replaced, 50.0f / (float)(b->B * b->T), 1, NULL, &ds, &err)) die(&err);
        ss_model_body_backward(b->m);
        ls.loss_sum += 50.0 * ds.loss_sum / (double)ds.n * (double)nt;
    }
    /* clipping folded into the update, as the trainer does (per model here) */
    ss_adamw_hparams h = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0};
    double nm = ss_grad_norm(ss_model_grads(b->m), ss_model_num_params(b->m));
    ss_adamw_step_scaled(&b->o, b->m, ss_model_params(b->m), ss_model_grads(b->m), &h, 0, ss_clip_factor(nm, 1.0));
    if (b->g) {
        double ng = ss_grad_norm(ss_model_grads(b->g), ss_model_num_params(b->g));
        ss_adamw_step_scaled(&b->go, b->g, ss_model_params(b->g), ss_model_grads(b->g), &h, 0,
                             ss_clip_factor(ng, 1.0));
    }
    return ls.loss_sum / (double)nt;
}

static void setup(bench *b, const ss_model_config *cfg) {
    ss_error err = {0};
    ss_model_config c = *cfg;
    c.kind = b->obj == SS_OBJ_CLM ? SS_DECODER : SS_ENCODER;
    c.head = b->obj == SS_OBJ_CLM ? SS_HEAD_LM : b->obj == SS_OBJ_MLM ? SS_HEAD_MLM : SS_HEAD_DISC;
    if (ss_model_create(&b->m, &c, &err) || ss_adamw_init(&b->o, ss_model_num_params(b->m), &err)) die(&err);
    ss_model_init_weights(b->m, 1);
    if (b->obj == SS_OBJ_RTD) {
        ss_model_config g = ss_electra_generator_config(&c, 0.25);
        if (ss_model_create_shared(&b->g, &g, b->m, &err) || ss_adamw_init(&b->go, ss_model_num_params(b->g), &err))
            die(&err);
        ss_model_init_weights(b->g, 2);
    }
    size_t n = (size_t)b->B * b->T;
    b->tok = malloc(n * 4); b->tgt = malloc(n * 4); b->samples = malloc(n * 4); b->replaced = malloc(n);
    ss_rng_seed(&b->rng, 1);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train S|M|custom [--objective clm|mlm|rtd] [options]\n");
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "S") && strcmp(name, "M") && strcmp(name, "custom")) {
        fprintf(stderr, "bench_train: the first argument is the configuration S, M or custom, not '%s'\n", name);
        return 2;
    }
    if (argc % 2) {
        fprintf(stderr, "bench_train: %s needs a value\n", argv[argc - 1]);
        return 2;
    }
    int L = 4, C = 256, H = 4, F = 1024, T = 128, B = 16, V = 8192, steps = 20, warm = 3, threads = 2, bias = 1;
    bench b = {.obj = SS_OBJ_CLM};
    ss_precision prec = SS_PRECISION_FP32;
    const char *force = NULL, *tiles = "own";
    if (strcmp(name, "M") == 0) { L = 6; C = 384; H = 6; F = 1536; T = 256; B = 8; }
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        ss_error err = {0};
        if (!strcmp(argv[i], "--objective")) { if (ss_objective_parse(argv[i + 1], &b.obj, &err)) die(&err); }
        else if (!strcmp(argv[i], "--gemm")) force = argv[i + 1];
        else if (!strcmp(argv[i], "--tiles")) {
            tiles = argv[i + 1];
            if (strcmp(tiles, "own") && strcmp(tiles, "openblas")) { fprintf(stderr, "--tiles: own or openblas\n"); return 2; }
        }
        else if (!strcmp(argv[i], "--precision")) { if (ss_precision_parse(argv[i + 1], &prec, &err)) die(&err); }
        else if (!strcmp(argv[i], "--steps")) steps = v;
        else if (!strcmp(argv[i], "--warmup")) warm = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--layers")) L = v;
        else if (!strcmp(argv[i], "--d-model")) C = v;
        else if (!strcmp(argv[i], "--heads")) H = v;
        else if (!strcmp(argv[i], "--d-ff")) F = v;
        else if (!strcmp(argv[i], "--seq")) T = v;
        else if (!strcmp(argv[i], "--batch")) B = v;
        else if (!strcmp(argv[i], "--vocab")) V = v;
        else if (!strcmp(argv[i], "--bias")) {
            if (strcmp(argv[i + 1], "0") && strcmp(argv[i + 1], "1")) { fprintf(stderr, "--bias: 0 or 1\n"); return 2; }
            bias = v;
        }
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    ss_gemm_choice gc_;
    ss_error perr = {0};
    if (ss_gemm_select(prec, &gc_, &perr)) die(&perr);
    if (force) { /* one backend, whatever the probe preferred */
        ss_gemm_backend be;
        if (ss_gemm_backend_parse(force, &be, &perr) || ss_gemm_use(be, &perr)) die(&perr);
    }
    ss_gemm_set_own_tiles(strcmp(tiles, "own") == 0);
    double peak = ss_gemm_peak_gflops();
    ss_gemm_backend chosen = ss_gemm_current();
    double peak_f32 = ss_gemm_peak(gc_.f32_backend, 1024, 1024, 1024, 0.3);
    ss_model_config cfg = {.kind = SS_DECODER, .vocab_size = V, .n_layer = L, .d_model = C, .n_head = H, .d_ff = F,
                           .max_seq = T, .head = SS_HEAD_LM, .no_bias = !bias};
    b.B = B; b.T = T; b.V = V;
    setup(&b, &cfg);
    double *dt = malloc(sizeof(double) * (size_t)steps), loss = 0;
    for (int s = 0; s < warm + steps; s++) {
        make_batch(&b);
        double t0 = omp_get_wtime();
        loss = step(&b, (uint64_t)s);
        if (s >= warm) dt[s - warm] = omp_get_wtime() - t0;
    }
    qsort(dt, (size_t)steps, sizeof(double), cmp_double);
    double med = dt[steps / 2], tps = (double)B * T / med;
    const ss_model_config *mc = ss_model_config_of(b.m), *gc = b.g ? ss_model_config_of(b.g) : NULL;
    double fpt = ss_train_flops_per_token(b.obj, mc, gc, T, 0.15, 0), mfu = fpt * tps / (peak * 1e9);
    double mfu_f32 = fpt * tps / (peak_f32 * 1e9);
    size_t np = ss_model_num_params(b.m) + (b.g ? ss_model_num_params(b.g) : 0);
    double need = (double)np * 16 + (double)ss_model_activation_bytes(mc, B, T) +
                  (gc ? (double)ss_model_activation_bytes(gc, B, T) : 0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\":\"selfsup\",\"objective\":\"%s\",\"config\":\"%s\",\"threads\":%d,\"params\":%zu,\"B\":%d,"
           "\"T\":%d,\"tokens_per_s\":%.1f,\"step_ms_median\":%.2f,\"sgemm_peak_gflops\":%.1f,"
           "\"model_gflop_per_token\":%.5f,\"mfu\":%.4f,\"peak_rss_mb\":%.1f,\"analytic_need_mb\":%.1f,"
           "\"rss_over_need\":%.3f,\"last_loss\":%.4f,\"precision\":\"%s\",\"gemm\":\"%s\","
           "\"f32_gemm\":\"%s\",\"f32_peak_gflops\":%.1f,\"mfu_f32\":%.4f,\"gemm_forced\":%s,"
           "\"tiles\":\"%s\",\"openblas_core\":\"%s\",\"bias\":%s}\n",
           ss_objective_name(b.obj), name, threads, np, B, T, tps, med * 1e3, peak, fpt / 1e9, mfu,
           ru.ru_maxrss / 1024.0, need / 1048576.0, ru.ru_maxrss * 1024.0 / need, loss,
           ss_precision_name(gc_.precision), ss_gemm_backend_name(chosen), ss_gemm_backend_name(gc_.f32_backend),
           peak_f32, mfu_f32, force ? "true" : "false", tiles, openblas_get_corename(), bias ? "true" : "false");
    free(dt);
    return 0;
}
