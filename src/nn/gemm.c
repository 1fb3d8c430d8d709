/* The GEMM layer (include/selfsup/gemm.h): OpenBLAS sgemm, oneDNN matmul in
 * f32, and oneDNN matmul on bf16 inputs with fp32 accumulation.
 *
 * oneDNN's matmul computes dst = output_scale * src @ weights (+ sum post-op
 * beta * dst), with every operand described by dims and strides, so a
 * transposed operand is just swapped strides and no data moves:
 *   A  dims {M,K}  strides trans_a ? {1,lda} : {lda,1}
 *   B  dims {K,N}  strides trans_b ? {1,ldb} : {ldb,1}
 *   C  dims {M,N}  strides {ldc,1}
 * A primitive is created once per (precision, transposes, shape, leading
 * dimensions, alpha, beta) and cached with its memory objects; a call then
 * sets the three data pointers and executes. For bf16 the inputs are first
 * rounded into packed bf16 buffers (leading dimension = row length), which
 * costs one pass over A and B: O(MK + KN) against the product's O(MNK). */
#include "selfsup/gemm.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "nn_internal.h"

/* ---- bf16 rounding ------------------------------------------------------------ */

/* Round to nearest even on the upper 16 bits; NaN is kept a (quiet) NaN. */
unsigned short ss_bf16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

float ss_f32_from_bf16(unsigned short h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* dst[r*cols + c] = bf16(src[r*ld + c]): a strided matrix into a packed one. */
static void pack_bf16(uint16_t *restrict dst, const float *restrict src, int rows, int cols, int ld) {
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols >= 65536)
    for (int r = 0; r < rows; r++) {
        const uint32_t *s = (const uint32_t *)(src + (size_t)r * ld);
        uint16_t *d = dst + (size_t)r * cols;
        #pragma omp simd
        for (int c = 0; c < cols; c++) {
            uint32_t u = s[c];
            uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
            uint32_t nan = (u >> 16) | 0x40u;
            d[c] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
        }
    }
}

/* dst[r*cols + c] = float(bf16(src[r*ld + c])): the same rounding, kept in fp32. */
static void round_bf16(float *restrict dst, const float *restrict src, int rows, int cols, int ld) {
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols >= 65536)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)r * cols + c] = ss_f32_from_bf16(ss_bf16_from_f32(src[(size_t)r * ld + c]));
}

/* ---- module state ------------------------------------------------------------- */

typedef struct {
    int bf16, ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
} prim_key;

typedef struct {
    prim_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    char impl[48];
} prim_entry;

typedef struct {
    const float *src;
    int rows, cols, ld;
    unsigned long epoch;
    uint16_t *bf;
} weight_entry;

#define MAX_PRIMS 512
#define MAX_WEIGHTS 1024

static struct {
    ss_gemm_backend backend;
    int dnnl_state;             /* 0 not tried, 1 ready, -1 unavailable */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    prim_entry prims[MAX_PRIMS];
    int n_prims;
    uint16_t *abuf, *bbuf;
    size_t acap, bcap;
    weight_entry weights[MAX_WEIGHTS];
    int n_weights;
    unsigned long epoch;
    double small;               /* M*N*K below which OpenBLAS computes (SS_GEMM_SMALL) */
    int own_tiles;              /* ss_gemm_set_own_tiles */
    int tile_bf16, tile_f32;    /* attention tiles through src/nn/tile_bf16.c or tile_f32.c (set with
                                   the backend, read from the tiles' threads) */
} G = {.small = SS_GEMM_SMALL, .own_tiles = 1};

/* The backend of every later product, and the kernels of attention's tiles
 * that go with it (gemm.h). */
static void set_backend(ss_gemm_backend be) {
    int dnnl = be == SS_GEMM_DNNL_F32 || be == SS_GEMM_DNNL_BF16;
    G.backend = be;
    G.tile_bf16 = G.own_tiles && be == SS_GEMM_DNNL_BF16 && ss_tile_bf16_available();
    G.tile_f32 = G.own_tiles && dnnl && !G.tile_bf16 && ss_tile_f32_available();
}

int ss_gemm_set_own_tiles(int on) {
    int old = G.own_tiles;
    G.own_tiles = on != 0;
    set_backend(G.backend);
    return old;
}

static int dnnl_ready(void) {
    if (G.dnnl_state) return G.dnnl_state > 0;
    G.dnnl_state = -1;
    if (dnnl_engine_create(&G.engine, dnnl_cpu, 0) != dnnl_success) return 0;
    if (dnnl_stream_create(&G.stream, G.engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(G.engine);
        return 0;
    }
    G.dnnl_state = 1;
    return 1;
}

int ss_gemm_native_bf16(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16 ||
           (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
}

int ss_gemm_available(ss_gemm_backend be) {
    if (be == SS_GEMM_OPENBLAS || be == SS_GEMM_REF_BF16) return 1;
    if (be != SS_GEMM_DNNL_F32 && be != SS_GEMM_DNNL_BF16) return 0;
    if (!dnnl_ready()) return 0;
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if (be == SS_GEMM_DNNL_F32) return (isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2;
    /* bf16 matmul: native with AVX512_BF16/AMX, emulated on AVX-512 core */
    return (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
}

/* ---- oneDNN primitives ----------------------------------------------------------- */

static void md_2d(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t s0, int64_t s1, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {rows, cols}, strides = {s0, s1};
    dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

static ss_status create_prim(prim_entry *e, const prim_key *k, ss_error *err) {
    dnnl_data_type_t in = k->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a, b, c;
    md_2d(&a, k->M, k->K, k->ta ? 1 : k->lda, k->ta ? k->lda : 1, in);
    md_2d(&b, k->K, k->N, k->tb ? 1 : k->ldb, k->tb ? k->ldb : 1, in);
    md_2d(&c, k->M, k->N, k->ldc, 1, dnnl_f32);
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c);
    if (s == dnnl_success) s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success && k->alpha != 1.0f) s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha);
    if (s == dnnl_success && k->beta != 0.0f) {
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) s = dnnl_post_ops_append_sum(po, k->beta);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, attr, G.engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&e->prim, pd);
    if (s == dnnl_success) {
        const char *impl = "";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "");
        s = dnnl_memory_create(&e->a, &a, G.engine, DNNL_MEMORY_NONE);
        if (s == dnnl_success) s = dnnl_memory_create(&e->b, &b, G.engine, DNNL_MEMORY_NONE);
        if (s == dnnl_success) s = dnnl_memory_create(&e->c, &c, G.engine, DNNL_MEMORY_NONE);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return ss_fail(err, SS_ERR_EXTERNAL, "oneDNN matmul %s %dx%dx%d (trans %d%d): status %d", k->bf16 ? "bf16" : "f32",
                       k->M, k->N, k->K, k->ta, k->tb, (int)s);
    e->key = *k;
    return SS_OK;
}

static void destroy_prim(prim_entry *e) {
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}

/* The cached primitive of a key, created on first use. With MAX_PRIMS
 * shapes cached (a run has a few dozen) the oldest half is dropped. */
static prim_entry *find_prim(const prim_key *k, ss_error *err) {
    for (int i = G.n_prims - 1; i >= 0; i--)
        if (!memcmp(&G.prims[i].key, k, sizeof *k)) return &G.prims[i];
    if (G.n_prims == MAX_PRIMS) {
        for (int i = 0; i < MAX_PRIMS / 2; i++) destroy_prim(&G.prims[i]);
        memmove(G.prims, G.prims + MAX_PRIMS / 2, (MAX_PRIMS / 2) * sizeof G.prims[0]);
        memset(G.prims + MAX_PRIMS / 2, 0, (MAX_PRIMS / 2) * sizeof G.prims[0]);
        G.n_prims = MAX_PRIMS / 2;
    }
    prim_entry *e = &G.prims[G.n_prims];
    if (create_prim(e, k, err)) {
        destroy_prim(e);
        return NULL;
    }
    G.n_prims++;
    return e;
}

static ss_status run_prim(const prim_key *k, const void *A, const void *B, float *C, ss_error *err) {
    prim_entry *e = find_prim(k, err);
    if (!e) return err->code;
    dnnl_memory_set_data_handle(e->a, (void *)A);
    dnnl_memory_set_data_handle(e->b, (void *)B);
    dnnl_memory_set_data_handle(e->c, C);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    dnnl_status_t s = dnnl_primitive_execute(e->prim, G.stream, 3, args);
    if (s == dnnl_success) s = dnnl_stream_wait(G.stream);
    if (s != dnnl_success) return ss_fail(err, SS_ERR_EXTERNAL, "oneDNN matmul failed: status %d", (int)s);
    return SS_OK;
}

/* ---- bf16 operands ----------------------------------------------------------------- */

static uint16_t *grow(uint16_t **buf, size_t *cap, size_t n) {
    if (n > *cap) {
        free(*buf);
        *buf = malloc(n * sizeof **buf);
        *cap = *buf ? n : 0;
    }
    return *buf;
}

/* The bf16 copy of a weight matrix, converted again only when the weights
 * changed (epoch) since it was made. */
static const uint16_t *weight_bf16(const float *src, int rows, int cols, int ld) {
    weight_entry *w = NULL;
    for (int i = 0; i < G.n_weights; i++) {
        weight_entry *e = &G.weights[i];
        if (e->src == src && e->rows == rows && e->cols == cols && e->ld == ld) { w = e; break; }
    }
    if (!w) {
        if (G.n_weights == MAX_WEIGHTS) return NULL;
        w = &G.weights[G.n_weights];
        w->bf = malloc((size_t)rows * cols * sizeof *w->bf);
        if (!w->bf) return NULL;
        w->src = src, w->rows = rows, w->cols = cols, w->ld = ld;
        w->epoch = G.epoch - 1;
        G.n_weights++;
    }
    if (w->epoch != G.epoch) {
        pack_bf16(w->bf, src, rows, cols, ld);
        w->epoch = G.epoch;
    }
    return w->bf;
}

void ss_gemm_weights_changed(void) { G.epoch++; }

void ss_gemm_weights_forget(const float *base, size_t n) {
    int kept = 0;
    for (int i = 0; i < G.n_weights; i++) {
        weight_entry *e = &G.weights[i];
        if (e->src >= base && e->src < base + n) free(e->bf);
        else G.weights[kept++] = *e;
    }
    G.n_weights = kept;
    G.epoch++;
}

static ss_status gemm_dnnl(int bf16, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc, unsigned flags, ss_error *err) {
    if (!dnnl_ready()) return ss_fail(err, SS_ERR_ARG, "oneDNN is not usable on this machine");
    prim_key k = {bf16, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta};
    if (!bf16) return run_prim(&k, A, B, C, err);
    /* stored shapes: A is [M,K] (or [K,M] transposed), B [K,N] (or [N,K]) */
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    uint16_t *a16 = grow(&G.abuf, &G.acap, (size_t)ar * ac);
    const uint16_t *b16 = NULL;
    if (flags & SS_GEMM_B_WEIGHT) b16 = weight_bf16(B, br, bc, ldb);
    if (!b16) {
        uint16_t *t = grow(&G.bbuf, &G.bcap, (size_t)br * bc);
        if (t) pack_bf16(t, B, br, bc, ldb);
        b16 = t;
    }
    if (!a16 || !b16) return ss_fail(err, SS_ERR_NOMEM, "out of memory for bf16 operands of a %dx%dx%d product", M, N, K);
    pack_bf16(a16, A, ar, ac, lda);
    k.lda = ac;
    k.ldb = bc;
    return run_prim(&k, a16, b16, C, err);
}

/* ---- the product ------------------------------------------------------------------ */

/* One row (a decoding step): sgemm would pack (copy) all of B on every
 * call, sgemv streams it once (measured: 1.4 vs 2.4 ms per token for config
 * "small" on one thread). With beta = 0, C is zeroed and accumulated into:
 * some BLAS multiply what is there by 0, and 0 * NaN of an uninitialised
 * buffer is NaN. */
static void gemv_openblas(int tb, int N, int K, float alpha, const float *a, const float *B, int ldb, float beta,
                          float *c) {
    if (beta == 0.0f) {
        memset(c, 0, (size_t)N * sizeof *c);
        beta = 1.0f;
    }
    if (tb) /* c[N] = B[N,K] a */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, a, 1, beta, c, 1);
    else    /* c[N] = B[K,N]^T a */
        cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, a, 1, beta, c, 1);
}

static void gemm_openblas(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 1 && !ta && K > 0) {
        gemv_openblas(tb, N, K, alpha, A, B, ldb, beta, C);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

/* bf16 numerics without oneDNN: inputs rounded into fp32 copies, then sgemm. */
static ss_status gemm_ref_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                               const float *B, int ldb, float beta, float *C, int ldc, ss_error *err) {
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    float *a = malloc((size_t)ar * ac * sizeof *a), *b = malloc((size_t)br * bc * sizeof *b);
    if (!a || !b) {
        free(a), free(b);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for bf16 operands of a %dx%dx%d product", M, N, K);
    }
    round_bf16(a, A, ar, ac, lda);
    round_bf16(b, B, br, bc, ldb);
    gemm_openblas(ta, tb, M, N, K, alpha, a, ac, b, bc, beta, C, ldc);
    free(a), free(b);
    return SS_OK;
}

ss_status ss_gemm_on(ss_gemm_backend be, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc, ss_error *err) {
    if (M <= 0 || N <= 0) return SS_OK;
    if (be == SS_GEMM_OPENBLAS) {
        gemm_openblas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return SS_OK;
    }
    if (be == SS_GEMM_REF_BF16) return gemm_ref_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, err);
    if (!ss_gemm_available(be)) return ss_fail(err, SS_ERR_ARG, "GEMM backend %s is not available on this CPU", ss_gemm_backend_name(be));
    if (K <= 0) { /* C = beta C, as sgemm does; oneDNN rejects empty K */
        gemm_openblas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return SS_OK;
    }
    return gemm_dnnl(be == SS_GEMM_DNNL_BF16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, err);
}

/* One row against a weight stored [N, K] (a decoding step's products):
 * selfsup's own kernels (src/nn/gemv.c), which stream the weight at memory
 * speed whatever OpenBLAS's CPU table knows. With the oneDNN backends only:
 * the OpenBLAS backend and the bf16 rounding reference stay pure OpenBLAS.
 * bf16 numerics (both inputs rounded, fp32 accumulation) with the bf16
 * backend on CPUs with AVX512_BF16 for weights outside parallel regions (the
 * weight cache serves one caller at a time); fp32 otherwise. Returns 0 when
 * the caller should compute the product itself. */
static int gemv_row(int N, int K, float alpha, const float *a, const float *B, int ldb, float beta, float *c,
                    unsigned flags) {
    if (G.backend != SS_GEMM_DNNL_F32 && G.backend != SS_GEMM_DNNL_BF16) return 0;
    if (G.backend == SS_GEMM_DNNL_BF16 && (flags & SS_GEMM_B_WEIGHT) && !omp_in_parallel() &&
        ss_gemv_bf16_available()) {
        int kp = (K + 31) / 32 * 32;
        uint16_t *a16 = grow(&G.abuf, &G.acap, (size_t)kp);
        const uint16_t *b16 = a16 ? weight_bf16(B, N, K, ldb) : NULL;
        if (b16) {
            pack_bf16(a16, a, 1, K, K);
            memset(a16 + K, 0, (size_t)(kp - K) * sizeof *a16);
            ss_gemv_bf16(N, K, alpha, a16, b16, beta, c);
            return 1;
        }
    }
    if (!ss_gemv_f32_available()) return 0;
    ss_gemv_f32(N, K, alpha, a, B, ldb, beta, c);
    return 1;
}

/* True when a product should skip oneDNN: issued inside a parallel region
 * (the module's buffers and primitives serve one caller at a time), one row
 * (a decoding step: a matrix-vector product, bound by reading the weights,
 * which OpenBLAS's sgemv streams once), or too small for a primitive call to
 * pay. */
static int use_openblas(int M, int N, int K) {
    return G.backend == SS_GEMM_OPENBLAS || K <= 0 || M == 1 || omp_in_parallel() || (double)M * N * K < G.small;
}

double ss_gemm_set_small(double mnk) {
    double old = G.small;
    G.small = mnk;
    return old;
}

void ss_gemm_ex(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc, unsigned flags) {
    if (M <= 0 || N <= 0) return;
    if (flags & SS_GEMM_TILE) { /* a tile of attention (see gemm.h) */
        if (G.tile_bf16)
            ss_tile_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        else if (G.tile_f32)
            ss_tile_gemm_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        else
            gemm_openblas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M == 1 && !ta && tb && K > 0 && gemv_row(N, K, alpha, A, B, ldb, beta, C, flags)) return;
    if (!use_openblas(M, N, K)) {
        ss_error err = {0};
        if (G.backend == SS_GEMM_REF_BF16 &&
            gemm_ref_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &err) == SS_OK)
            return;
        if (gemm_dnnl(G.backend == SS_GEMM_DNNL_BF16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, flags,
                      &err) == SS_OK)
            return;
        /* a primitive that cannot be made for this shape (or no memory for
         * bf16 operands): the reference computes it instead */
    }
    gemm_openblas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ss_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc) {
    ss_gemm_ex(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0);
}

/* ---- choosing a backend ------------------------------------------------------------ */

const char *ss_gemm_backend_name(ss_gemm_backend be) {
    switch (be) {
    case SS_GEMM_OPENBLAS: return "openblas-f32";
    case SS_GEMM_DNNL_F32: return "onednn-f32";
    case SS_GEMM_DNNL_BF16: return "onednn-bf16";
    case SS_GEMM_REF_BF16: return "openblas-bf16-rounded";
    default: return "?";
    }
}

ss_status ss_gemm_backend_parse(const char *s, ss_gemm_backend *be, ss_error *err) {
    for (int i = 0; i < SS_GEMM_N_BACKENDS; i++)
        if (!strcmp(s, ss_gemm_backend_name((ss_gemm_backend)i))) {
            *be = (ss_gemm_backend)i;
            return SS_OK;
        }
    return ss_fail(err, SS_ERR_ARG, "GEMM backend '%s': expected openblas-f32, onednn-f32, onednn-bf16 or "
                   "openblas-bf16-rounded", s);
}

const char *const ss_precision_names[] = {"auto", "fp32", "bf16", NULL};

const char *ss_precision_name(ss_precision p) {
    return p == SS_PRECISION_FP32 ? "fp32" : p == SS_PRECISION_BF16 ? "bf16" : "auto";
}

ss_status ss_precision_parse(const char *s, ss_precision *p, ss_error *err) {
    if (!strcmp(s, "auto")) *p = SS_PRECISION_AUTO;
    else if (!strcmp(s, "fp32")) *p = SS_PRECISION_FP32;
    else if (!strcmp(s, "bf16")) *p = SS_PRECISION_BF16;
    else return ss_fail(err, SS_ERR_ARG, "precision '%s': expected fp32, bf16 or auto", s);
    return SS_OK;
}

ss_gemm_backend ss_gemm_current(void) { return G.backend; }

ss_status ss_gemm_use(ss_gemm_backend be, ss_error *err) {
    if (!ss_gemm_available(be))
        return ss_fail(err, SS_ERR_ARG, "GEMM backend %s is not available on this CPU (oneDNN ISA: %s)",
                       ss_gemm_backend_name(be), G.dnnl_state > 0 ? "see --help" : "oneDNN unusable");
    set_backend(be);
    return SS_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of this process, every thread. */
static double cpu_s(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec * 1e-6 + (double)r.ru_stime.tv_sec +
           (double)r.ru_stime.tv_usec * 1e-6;
}

/* Best GFLOP/s of at least min_reps products and min_seconds; the timed
 * products' wall and CPU seconds added to *wall and *cpu (when not NULL). */
static double peak_of(ss_gemm_backend be, int M, int N, int K, double min_seconds, int min_reps, double *wall,
                      double *cpu) {
    if (!ss_gemm_available(be)) return 0.0;
    float *a = malloc((size_t)M * K * sizeof *a), *b = malloc((size_t)N * K * sizeof *b);
    float *c = malloc((size_t)M * N * sizeof *c);
    double best = 0.0;
    if (a && b && c) {
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
        for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
        ss_error err = {0};
        /* the first call creates the primitive: not timed */
        if (ss_gemm_on(be, 0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N, &err) == SS_OK) {
            double start = now_s(), cpu0 = cpu ? cpu_s() : 0.0;
            for (int rep = 0; rep < min_reps || now_s() - start < min_seconds; rep++) {
                double t0 = now_s();
                ss_gemm_on(be, 0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N, &err);
                double dt = now_s() - t0, g = 2.0 * M * N * K / dt * 1e-9;
                if (g > best) best = g;
            }
            if (wall) *wall += now_s() - start;
            if (cpu) *cpu += cpu_s() - cpu0;
        }
    }
    free(a);
    free(b);
    free(c);
    return best;
}

double ss_gemm_peak(ss_gemm_backend be, int M, int N, int K, double min_seconds) {
    return peak_of(be, M, N, K, min_seconds, 5, NULL, NULL);
}

static void isa_name(char *out, size_t n) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const char *s = (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx   ? "avx512_core_amx"
                    : (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16"
                    : (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core         ? "avx512_core"
                    : (isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2                       ? "avx2"
                                                                                           : "sse41 or less";
    snprintf(out, n, "%s", s);
}

/* The probe's product: a transformer layer's MLP shape (rows x d_ff x d_model). */
enum { PROBE_M = 2048, PROBE_N = 1024, PROBE_K = 256 };
#define PROBE_SECONDS 0.02
#define PROBE_ROUNDS 4 /* backends measured in turn, best of every round: a busy spell of the machine
                          cannot favour one backend (it did with one block each: auto flipped between runs) */
#define AUTO_BF16_MARGIN 1.15 /* bf16 must beat f32 by this factor: its conversions cost outside the product */
#define OPENBLAS_MARGIN 1.2   /* OpenBLAS replaces oneDNN f32 only when this much faster: where the two are close
                                 (on the Xeon, OpenBLAS's AVX-512 kernels and oneDNN f32 both ~305 GFLOP/s) noise
                                 would flip the choice, and with it the bits, from one run of a command to the next;
                                 where they differ (AVX2-only OpenBLAS, generic kernels) oneDNN measured 1.9-6x */

/* The probe's measurements, once per process and thread count: every
 * selection after the first reuses them, so the runs of one process (a
 * test's uninterrupted and resumed runs, a library user's) choose the same
 * backend even on a loaded machine, where timing can change the order. */
static struct {
    int threads;
    double peak[SS_GEMM_N_BACKENDS];
} probe_cache;

double ss_gemm_probe(double peak[SS_GEMM_N_BACKENDS]) {
    dnnl_ready();
    memset(probe_cache.peak, 0, sizeof probe_cache.peak);
    double wall = 0.0, cpu = 0.0;
    for (int round = 0; round < PROBE_ROUNDS; round++)
        for (int be = 0; be < SS_GEMM_REF_BF16; be++) {
            double p = peak_of((ss_gemm_backend)be, PROBE_M, PROBE_N, PROBE_K, PROBE_SECONDS / PROBE_ROUNDS, 2,
                               &wall, &cpu);
            if (p > probe_cache.peak[be]) probe_cache.peak[be] = p;
        }
    probe_cache.threads = omp_get_max_threads();
    if (peak) memcpy(peak, probe_cache.peak, sizeof probe_cache.peak);
    return wall > 0 ? cpu / (wall * probe_cache.threads) : 1.0;
}

void ss_gemm_set_probe(const double peak[SS_GEMM_N_BACKENDS]) {
    for (int be = 0; be < SS_GEMM_N_BACKENDS; be++) /* a backend not available here cannot be chosen */
        probe_cache.peak[be] =
            be < SS_GEMM_REF_BF16 && ss_gemm_available((ss_gemm_backend)be) && peak[be] > 0 ? peak[be] : 0.0;
    probe_cache.threads = omp_get_max_threads();
}

ss_status ss_gemm_select(ss_precision want, ss_gemm_choice *out, ss_error *err) {
    ss_gemm_choice c;
    memset(&c, 0, sizeof c);
    dnnl_ready();
    isa_name(c.isa, sizeof c.isa);
    int native = ss_gemm_native_bf16();
    (void)err;
    if (probe_cache.threads != omp_get_max_threads()) ss_gemm_probe(NULL);
    memcpy(c.peak, probe_cache.peak, sizeof c.peak);
    c.f32_backend = c.peak[SS_GEMM_DNNL_F32] > 0 && c.peak[SS_GEMM_OPENBLAS] <= OPENBLAS_MARGIN * c.peak[SS_GEMM_DNNL_F32]
                        ? SS_GEMM_DNNL_F32 : SS_GEMM_OPENBLAS;
    /* auto takes bf16 only where it is native AND measured faster: AVX512_BF16
     * without AMX doubles the multiply-adds per instruction on some cores
     * (AMD Zen 4/5) but not on others (Intel Sapphire/Emerald Rapids without
     * AMX tiles run vdpbf16ps on one port: measured here slower than f32) */
    int bf16_faster = c.peak[SS_GEMM_DNNL_BF16] > AUTO_BF16_MARGIN * c.peak[c.f32_backend];
    if (want == SS_PRECISION_BF16 || (want == SS_PRECISION_AUTO && native && bf16_faster)) {
        c.precision = SS_PRECISION_BF16;
        c.backend = ss_gemm_available(SS_GEMM_DNNL_BF16) ? SS_GEMM_DNNL_BF16 : SS_GEMM_REF_BF16;
        snprintf(c.reason, sizeof c.reason, "%s", want == SS_PRECISION_AUTO ? "auto: native bf16 dot products, measured faster than f32"
                 : native ? "bf16 asked; the CPU has native bf16 dot products"
                 : c.backend == SS_GEMM_DNNL_BF16 ? "bf16 asked; no native bf16 dot products: oneDNN emulates them (slower than fp32)"
                 : "bf16 asked; oneDNN has no bf16 matmul without AVX-512: inputs rounded, products by OpenBLAS (slower than fp32)");
    } else {
        c.precision = SS_PRECISION_FP32;
        c.backend = c.f32_backend;
        snprintf(c.reason, sizeof c.reason, "%s; %s", want == SS_PRECISION_FP32 ? "fp32 asked"
                 : !native ? "auto: no native bf16 dot products on this CPU (oneDNN ISA below avx512_core_bf16)"
                 : "auto: bf16 products measured no faster than f32 on this CPU",
                 c.f32_backend == SS_GEMM_DNNL_F32 ? "onednn-f32 (OpenBLAS is taken only when measured 1.2x faster)"
                                                   : "openblas-f32 measured faster");
    }
    set_backend(c.backend);
    if (out) *out = c;
    return SS_OK;
}

void ss_gemm_release(void) {
    for (int i = 0; i < G.n_prims; i++) destroy_prim(&G.prims[i]);
    G.n_prims = 0;
    for (int i = 0; i < G.n_weights; i++) free(G.weights[i].bf);
    G.n_weights = 0;
    free(G.abuf);
    free(G.bbuf);
    G.abuf = G.bbuf = NULL;
    G.acap = G.bcap = 0;
}
