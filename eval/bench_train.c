/* make bench-train, selfsup side: training throughput of the CLM decoder on
 * random token windows (the same work as eval/torch_train_bench.py), with
 * MFU against the sgemm peak measured in the same process, and peak RSS
 * against the analytic memory need.
 * usage: bench_train CONFIG(S|M|custom) [--steps N] [--warmup N] [--threads N]
 *        [--layers L --d-model C --heads H --d-ff F --seq T --batch B --vocab V]
 * Prints one JSON line. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>

#include "selfsup/model.h"
#include "selfsup/optim.h"
#include "selfsup/rng.h"
#include "selfsup/train.h"

static int median_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train S|M|custom [options]\n");
        return 2;
    }
    const char *name = argv[1];
    int L = 4, C = 256, H = 4, F = 1024, T = 128, B = 16, V = 8192, steps = 20, warm = 3, threads = 2;
    if (strcmp(name, "M") == 0) { L = 6; C = 384; H = 6; F = 1536; T = 256; B = 8; }
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--steps")) steps = v;
        else if (!strcmp(argv[i], "--warmup")) warm = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--layers")) L = v;
        else if (!strcmp(argv[i], "--d-model")) C = v;
        else if (!strcmp(argv[i], "--heads")) H = v;
        else if (!strcmp(argv[i], "--d-ff")) F = v;
        else if (!strcmp(argv[i], "--seq")) T = v;
        else if (!strcmp(argv[i], "--batch")) B = v;
        else if (!strcmp(argv[i], "--vocab")) V = v;
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    double peak = ss_sgemm_peak_gflops();
    ss_model_config cfg = {SS_DECODER, V, L, C, H, F, T, 0.0f};
    ss_error err = {0};
    ss_model *m;
    ss_adamw opt;
    if (ss_model_create(&m, &cfg, &err) || ss_adamw_init(&opt, ss_model_num_params(m), &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    ss_model_init_weights(m, 1);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)B * (T + 1)), *tgt = malloc(sizeof(int32_t) * (size_t)B * T);
    ss_rng rng;
    ss_rng_seed(&rng, 1);
    ss_adamw_hparams h = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f};
    double *dt = malloc(sizeof(double) * (size_t)steps), loss = 0;
    for (int s = 0; s < warm + steps; s++) {
        for (int i = 0; i < B * T; i++) {
            tok[i] = (int32_t)ss_rng_below(&rng, (uint64_t)V);
            tgt[i] = (int32_t)ss_rng_below(&rng, (uint64_t)V);
        }
        double t0 = omp_get_wtime();
        ss_batch b = {tok, tgt, NULL, B, T};
        ss_loss_stats ls;
        ss_model_zero_grads(m);
        if (ss_model_forward_backward(m, &b, 1.0f / (float)(B * T), (uint64_t)s, &ls, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        ss_clip_grad_norm(ss_model_grads(m), ss_model_num_params(m), 1.0);
        ss_adamw_step(&opt, m, ss_model_params(m), ss_model_grads(m), &h);
        if (s >= warm) dt[s - warm] = omp_get_wtime() - t0;
        loss = ls.loss_sum / (double)ls.n_targets;
    }
    qsort(dt, (size_t)steps, sizeof(double), median_cmp);
    double med = dt[steps / 2], tps = (double)B * T / med;
    double fpt = ss_model_flops_per_token(&cfg, T), mfu = fpt * tps / (peak * 1e9);
    size_t np = ss_model_num_params(m);
    double need = (double)np * 4 * 4 + (double)ss_model_activation_bytes(&cfg, B, T);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\":\"selfsup\",\"config\":\"%s\",\"threads\":%d,\"params\":%zu,\"B\":%d,\"T\":%d,"
           "\"tokens_per_s\":%.1f,\"step_ms_median\":%.2f,\"sgemm_peak_gflops\":%.1f,\"model_gflop_per_token\":%.5f,"
           "\"mfu\":%.4f,\"peak_rss_mb\":%.1f,\"analytic_need_mb\":%.1f,\"rss_over_need\":%.3f,\"last_loss\":%.4f}\n",
           name, threads, np, B, T, tps, med * 1e3, peak, fpt / 1e9, mfu, ru.ru_maxrss / 1024.0, need / 1048576.0,
           ru.ru_maxrss * 1024.0 / need, loss);
    ss_adamw_free(&opt);
    ss_model_free(m);
    free(tok); free(tgt); free(dt);
    return 0;
}
