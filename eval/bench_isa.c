/* make bench-isa: what this core's vector units do per second, the ceiling
 * under every GEMM backend: AVX-512 fp32 FMAs (vfmadd231ps, 16 multiply-adds
 * each) against bf16 dot products (vdpbf16ps, 32 each, AVX512_BF16), each
 * in twelve independent chains (more than either latency needs), one
 * thread, medians of RUNS alternating rounds. When the bf16 instruction's
 * throughput is under half the FMA's, bf16 GEMMs cannot beat fp32 here
 * whatever the library (AMX aside), and `--precision auto` is right to
 * choose fp32. Prints the CPU model and flags with the figures. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12 /* written out in TIMED_CHAINS: a loop over an array would go through memory */
#define ITERS 20000000L /* per chain */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The accumulators read in registers every iteration (inputs only: as
 * outputs they would be stored back to the array each time), so the loop
 * is neither removed nor shortened. */
#define KEEP(a)                                                                                                      \
    __asm__ volatile("" ::"v"(a[0]), "v"(a[1]), "v"(a[2]), "v"(a[3]), "v"(a[4]), "v"(a[5]), "v"(a[6]), "v"(a[7]),   \
                     "v"(a[8]), "v"(a[9]), "v"(a[10]), "v"(a[11]))

/* One timed loop: ITERS rounds of STEP(c) on each of the twelve
 * accumulators a[c], which start at c; sets dt (seconds) and adds the
 * sums to *sink so that nothing is optimised away. */
#define TIMED_CHAINS(STEP)                                                                                           \
    __m512 a[CHAINS];                                                                                                \
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);                                                \
    double t0 = now();                                                                                               \
    for (long i = 0; i < ITERS; i++) {                                                                               \
        STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7) STEP(8) STEP(9) STEP(10) STEP(11)            \
        KEEP(a);                                                                                                     \
    }                                                                                                                \
    double dt = now() - t0;                                                                                          \
    for (int i = 0; i < CHAINS; i++) *sink += _mm512_reduce_add_ps(a[i])

__attribute__((target("avx512f"))) static double fma_gflops(float *sink) {
    __m512 x = _mm512_set1_ps(1.0001f), y = _mm512_set1_ps(0.9999f);
#define F(c) a[c] = _mm512_fmadd_ps(x, y, a[c]);
    TIMED_CHAINS(F);
#undef F
    return 2.0 * 16 * CHAINS * (double)ITERS / dt / 1e9; /* 16 multiply-adds an instruction */
}

__attribute__((target("avx512f,avx512bf16"))) static double dpbf16_gflops(float *sink) {
    __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0001f), _mm512_set1_ps(0.9999f)), y = x;
#define D(c) a[c] = _mm512_dpbf16_ps(a[c], x, y);
    TIMED_CHAINS(D);
#undef D
    return 2.0 * 32 * CHAINS * (double)ITERS / dt / 1e9; /* 32 multiply-adds an instruction */
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 100) {
        fprintf(stderr, "usage: bench_isa [RUNS 1-100]\n");
        return 2;
    }
    char line[4096], model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f"), hasbf16 = __builtin_cpu_supports("avx512bf16");
    printf("CPU: %s; avx512f %s, avx512_bf16 %s; one thread, %d alternating rounds, %d chains\n", model,
           has512 ? "yes" : "no", hasbf16 ? "yes" : "no", runs, CHAINS);
    if (!has512) {
        printf("no AVX-512 here: nothing to measure\n");
        return 0;
    }
    double fma[100], bf[100];
    float sink = 0;
    for (int r = 0; r < runs; r++) {
        fma[r] = fma_gflops(&sink);
        bf[r] = hasbf16 ? dpbf16_gflops(&sink) : 0;
    }
    qsort(fma, (size_t)runs, sizeof *fma, by_value);
    qsort(bf, (size_t)runs, sizeof *bf, by_value);
    double mf = fma[runs / 2], mb = bf[runs / 2];
    printf("| instruction | multiply-adds each | GFLOP/s (median) | instructions per ns |\n|---|---|---|---|\n");
    printf("| vfmadd231ps zmm (fp32) | 16 | %.1f | %.2f |\n", mf, mf / 32);
    if (hasbf16) {
        printf("| vdpbf16ps zmm (bf16 in, fp32 sum) | 32 | %.1f | %.2f |\n", mb, mb / 64);
        printf("bf16 / fp32 FLOP rate: %.2fx%s\n", mb / mf,
               mb < mf ? " (a bf16 GEMM cannot beat fp32 on this core)" : "");
    }
    return sink == 12345.0f; /* the sink keeps the sums alive */
}
