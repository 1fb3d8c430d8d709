/* The GEMM layer: every matrix product of selfsup goes through ss_gemm.
 *
 *   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C     (row-major)
 *
 * op(X) = X, or X^T when the trans flag is set (A then is stored [K,M] with
 * leading dimension lda, B [N,K] with ldb), exactly as cblas_sgemm with
 * CblasRowMajor. Operands and result are always fp32 in memory.
 *
 * Backends (chosen once per process with ss_gemm_select, never assumed):
 *   SS_GEMM_OPENBLAS   OpenBLAS cblas_sgemm: always available, the reference.
 *   SS_GEMM_DNNL_F32   oneDNN matmul in f32.
 *   SS_GEMM_DNNL_BF16  oneDNN matmul with both inputs rounded to bfloat16
 *                      (round to nearest even), products accumulated and
 *                      written in fp32 (mixed precision: the result differs
 *                      from fp32 only by the rounding of the inputs).
 *   SS_GEMM_REF_BF16   the same rounding of the inputs, then OpenBLAS sgemm:
 *                      bf16 numerics on any CPU (slow; for CPUs without
 *                      AVX-512, where oneDNN has no bf16 matmul, and tests).
 * oneDNN primitives are created once per shape and cached. Products issued
 * from inside an OpenMP parallel region and products too small to amortise a
 * primitive call run through OpenBLAS in fp32 in every mode (see
 * SS_GEMM_SMALL). The tiles of attention (products of 64 x 64 x head size
 * inside attention's OpenMP tasks, marked SS_GEMM_TILE; never oneDNN, whose
 * primitive call costs more than such a product) run, with the oneDNN
 * backends, through selfsup's own tile kernels: with the bf16 backend on
 * CPUs with AVX512_BF16, src/nn/tile_bf16.c (bf16 inputs, fp32
 * accumulation); otherwise, on CPUs with AVX-512, src/nn/tile_f32.c (fp32
 * FMAs: OpenBLAS packs both operands of every call, and on a CPU its table
 * does not know it runs SSE3 kernels). Both give the same bits on any
 * thread count. With the OpenBLAS and rounding-reference backends, and
 * without AVX-512, through OpenBLAS in fp32. Single rows against a weight stored [N, K] (M = 1, B
 * transposed: a decoding step's matrix-vector products, bound by reading
 * the weights) run, with the oneDNN backends, through selfsup's own AVX-512
 * kernels (src/nn/gemv.c): in bf16 numerics with the bf16 backend on CPUs
 * with AVX512_BF16 (reading the weight's cached bf16 copy: half the bytes),
 * else in fp32; without AVX-512, and with the OpenBLAS and rounding-
 * reference backends, through OpenBLAS's sgemv.
 *
 * Weights: when the caller marks B as a weight (SS_GEMM_B_WEIGHT), the bf16
 * backend keeps its bf16 copy between calls and refreshes it only after
 * ss_gemm_weights_changed() (the optimizer calls it once per step; loading
 * a model calls it too), as mixed-precision training keeps bf16 weight
 * copies beside fp32 master weights.
 *
 * The selection is process-wide state of this module (like OpenBLAS's thread
 * count): set it before computing, from one thread. */
#ifndef SELFSUP_GEMM_H
#define SELFSUP_GEMM_H

#include <stddef.h>

#include "selfsup/error.h"

typedef enum { SS_GEMM_OPENBLAS = 0, SS_GEMM_DNNL_F32, SS_GEMM_DNNL_BF16, SS_GEMM_REF_BF16, SS_GEMM_N_BACKENDS } ss_gemm_backend;
typedef enum { SS_PRECISION_AUTO = 0, SS_PRECISION_FP32, SS_PRECISION_BF16 } ss_precision;

/* flags of ss_gemm_ex: B is a weight (its bf16 copy is cached); the product
 * is a tile of attention, issued from inside a parallel task (see above) */
enum { SS_GEMM_B_WEIGHT = 1, SS_GEMM_TILE = 2 };

void ss_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);
void ss_gemm_ex(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc, unsigned flags);

/* The same product through one named backend (tests and the probe). Returns
 * SS_OK, or an error when the backend is unavailable or failed. */
ss_status ss_gemm_on(ss_gemm_backend be, int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     ss_error *err);

/* Whether a backend can run on this machine (oneDNN f32 needs AVX2 or
 * better; bf16 runs natively with AVX512_BF16 or AMX, and emulated on plain
 * AVX-512). native_bf16: the CPU has bf16 dot-product instructions. */
int ss_gemm_available(ss_gemm_backend be);
int ss_gemm_native_bf16(void);

/* What ss_gemm_select decided, and why. */
typedef struct {
    ss_precision precision;     /* fp32 or bf16 (never auto) */
    ss_gemm_backend backend;    /* the large-product backend */
    ss_gemm_backend f32_backend;/* the f32 backend: oneDNN f32, or OpenBLAS where the probe measured it 1.2x faster */
    double peak[SS_GEMM_N_BACKENDS]; /* GFLOP/s measured by the probe, 0 = not measured/unavailable */
    char isa[64];               /* oneDNN's instruction set, e.g. "avx512_core_bf16" */
    char reason[160];           /* one line: why this precision and backend */
} ss_gemm_choice;

/* Choose the backend for the precision asked: fp32 -> oneDNN f32 unless
 * OpenBLAS measures at least 1.2x faster on a short probe (FFTW-style; the
 * margin keeps close timings from flipping the choice, and the bits,
 * between runs); bf16 ->
 * oneDNN bf16 (without AVX-512: the rounding reference path); auto -> bf16
 * when the CPU has native bf16 dot products (AVX512_BF16 or AMX) and the
 * probe measured bf16 products at least 1.15x faster than the faster f32
 * backend, else as fp32 (native bf16 is not always faster: Intel cores
 * without AMX tiles run it no faster than fp32 FMAs). The probe runs a
 * transformer-sized product (2048 x 1024 x 256) a few times per backend on
 * the current thread count: about 0.1 s, once per process and thread count
 * (later selections reuse its measurements, so the runs of one process
 * choose alike even where load makes timings noisy), unless measurements
 * were given with ss_gemm_set_probe (the CLI keeps them across processes). */
ss_status ss_gemm_select(ss_precision want, ss_gemm_choice *out, ss_error *err);
/* The probe itself: measure now on the current thread count (replacing any
 * earlier measurements; later selections reuse these) and, when peak is not
 * NULL, copy the GFLOP/s per backend out (0 = unavailable; the rounding
 * reference is never measured). Returns the share of the timed products'
 * wall time x threads this process had the CPU for: near 1 on an idle
 * machine, about 0.5 beside another job on every core (timings then are
 * noise: a caller keeping them should not). */
double ss_gemm_probe(double peak[SS_GEMM_N_BACKENDS]);
/* Measurements made before, by another process on this machine (a cache the
 * caller keeps, e.g. the CLI's, src/cli/gemm_cache.c), taken as the probe's
 * for the current thread count: selections then decide from them without
 * timing, so every process given the same numbers chooses alike. Peaks of
 * backends unavailable here are taken as 0. */
void ss_gemm_set_probe(const double peak[SS_GEMM_N_BACKENDS]);
/* Use one backend without probing (tests, and --resume of a run's recorded precision). */
ss_status ss_gemm_use(ss_gemm_backend be, ss_error *err);
ss_gemm_backend ss_gemm_current(void);
const char *ss_gemm_backend_name(ss_gemm_backend be);
/* A backend from its name (openblas-f32, onednn-f32, onednn-bf16, openblas-bf16-rounded). */
ss_status ss_gemm_backend_parse(const char *s, ss_gemm_backend *be, ss_error *err);
const char *ss_precision_name(ss_precision p);
extern const char *const ss_precision_names[]; /* "auto", "fp32", "bf16", NULL: by ss_precision */
ss_status ss_precision_parse(const char *s, ss_precision *p, ss_error *err);

/* GFLOP/s of one backend on a product of M x N x K (best of reps >= 3 over
 * at least min_seconds), with the current thread count; 0 if unavailable. */
double ss_gemm_peak(ss_gemm_backend be, int M, int N, int K, double min_seconds);
/* GFLOP/s of the current backend on this machine with the current thread
 * count (best of 1024^3 products over at least 0.3 s, src/nn/peak.c): the
 * denominator of MFU. */
double ss_gemm_peak_gflops(void);

/* bf16 copies of weights are stale: refresh them at their next use. Called
 * by whatever writes weights: the optimizer step, model creation and
 * loading (code that writes a model's parameters directly, as finite-
 * difference tests do, calls it too). */
void ss_gemm_weights_changed(void);
/* Drop the bf16 copies of weights inside [base, base + n) (a model being
 * freed: its memory may hold another model's weights next). */
void ss_gemm_weights_forget(const float *base, size_t n);

/* Products with M*N*K below this go to OpenBLAS in every mode (the
 * default; tests set 0 to send even tiny products through the backend).
 * Returns the previous threshold. */
#define SS_GEMM_SMALL 262144.0
double ss_gemm_set_small(double mnk);

/* Attention's tiles through selfsup's own kernels where the backend takes
 * them (1, the default: see above) or through OpenBLAS sgemm in fp32 (0:
 * the side-by-side measure of make bench-tiles). Set it from one thread,
 * outside parallel regions; it holds until changed, across ss_gemm_use and
 * ss_gemm_select. Returns the previous setting. */
int ss_gemm_set_own_tiles(int on);

/* fp32 -> bf16 (round to nearest even; NaN stays NaN) and back, the rounding
 * the bf16 backend applies to its inputs (tests and reference paths). */
unsigned short ss_bf16_from_f32(float x);
float ss_f32_from_bf16(unsigned short h);

/* Free the cached primitives and buffers (at exit; tests use it to check
 * for leaks). The selection is kept. */
void ss_gemm_release(void);

#endif
