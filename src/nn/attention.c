/* Multi-head self-attention, tiled with an online softmax (FlashAttention-2).
 *
 * For one (batch b, head h) the scores are S = Q K^T * scale, scale = 1/sqrt(hs),
 * with masked entries at -inf; P = softmax_rows(S); O = P V.
 *
 * Forward, per query tile of BR rows, sweeping key tiles of BC columns:
 *   m' = max(m, rowmax S_tile);  P~ = exp(S_tile - m');  alpha = exp(m - m')
 *   l  = alpha l + rowsum P~;    O = alpha O + P~ V_tile;  m = m'
 * and at the end O /= l, lse = m + log l (the row's log-sum-exp).
 *
 * Backward, per key tile j (outer) and query tile i (inner), with P recomputed
 * exactly as exp(S - lse) and D_i = rowsum(dO_i * O_i) (= rowsum(P * dP), the
 * softmax Jacobian term):
 *   dV_j += P^T dO_i;  dP = dO_i V_j^T;  dS = P * (dP - D_i)
 *   dQ_i += scale dS K_j;  dK_j += scale dS^T Q_i
 * The element-wise work (exp, masks, rescaling, dS) uses explicit GCC vector
 * types over tile rows padded to a multiple of VL lanes, with a polynomial
 * exp, so it vectorizes at -O2 without -ffast-math.
 *
 * All products are ss_gemm_ex calls marked SS_GEMM_TILE (selfsup/gemm.h: in
 * bf16 numerics with the bf16 backend on CPUs with AVX512_BF16, else fp32)
 * on strided views of qkv / out / dout / dqkv (leading dimension 3C or C):
 * no operand is copied here. Each backward
 * task owns one (b, h) and so the dq/dk/dv channels of that head: no two
 * threads write the same element and the accumulation order does not depend
 * on the thread count, so results are bit-identical from run to run.
 *
 * Memory: the only scratch lives on the stack of the task and is independent
 * of T and hs:
 *   forward  BR*BC (scores/probs) + BC (key mask) + 3*BR (m, l, alpha) floats
 *   backward 2*BR*BC (P, dP/dS) + BC (key mask) floats
 * i.e. 17 KB / 33 KB with BR = BC = 64: no [T,T] matrix ever exists; the
 * saved state is lse[B,NH,T]. Key tiles past the causal diagonal are never
 * visited. */
#include "selfsup/nn.h"
#include "selfsup/gemm.h"

#include <math.h>
#include <string.h>

#ifndef BR
#define BR 64 /* query rows per tile */
#endif
#ifndef BC
#define BC 64 /* key columns per tile (a multiple of VL) */
#endif
/* Lanes per vector, the machine's native width (a wider GCC vector type than
 * the ISA has would change the ABI of the inline helpers and warn); tile rows
 * are padded to a multiple of VL. */
#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif

/* GCC vector extensions: explicit SIMD that does not depend on -O level or
 * -ffast-math (libm's expf does not vectorize without it). */
typedef float vf __attribute__((vector_size(4 * VL)));
typedef int32_t vi __attribute__((vector_size(4 * VL)));
typedef float vfu __attribute__((vector_size(4 * VL), aligned(4), may_alias));

static inline vf vsplat(float a) {
    vf v = {0};
    return v + a;
}

static inline vf vsel(vi mask, vf a, vf b) { /* mask ? a : b, lane-wise */
    return (vf)(((vi)a & mask) | ((vi)b & ~mask));
}

/* exp(x) lane-wise, Cephes polynomial (~1 ulp); x < -87 (including -inf for
 * masked scores) gives exactly 0, x > 88 is clamped. */
static inline vf vexp(vf x) {
    vi under = x < -87.0f;
    x = vsel(under, vsplat(-87.0f), x);
    x = vsel(x > 88.0f, vsplat(88.0f), x);
    vf n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round */
    vf r = x - n * 0.693359375f + n * 2.12194440e-4f;
    vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    vi e = (__builtin_convertvector(n, vi) + 127) << 23;
    return (vf)((vi)(p * (vf)e) & ~under);
}

static inline float hmax(vf v) {
    float m = v[0];
    for (int i = 1; i < VL; i++) m = v[i] > m ? v[i] : m;
    return m;
}

static inline float hsum(vf v) {
    float s = 0.0f;
    for (int i = 0; i < VL; i++) s += v[i];
    return s;
}

static inline int round_up(int n) { return (n + VL - 1) / VL * VL; }

/* x[0..n) *= a on a strided (unaligned) row of out. */
static void scale_row(float *x, int n, float a) {
    int d = 0;
    for (; d + VL <= n; d += VL) *(vfu *)(x + d) = *(vfu *)(x + d) * a;
    for (; d < n; d++) x[d] *= a;
}

static float dot_row(const float *x, const float *y, int n) {
    vf acc = {0};
    int d = 0;
    for (; d + VL <= n; d += VL) acc += *(const vfu *)(x + d) * *(const vfu *)(y + d);
    float s = hsum(acc);
    for (; d < n; d++) s += x[d] * y[d];
    return s;
}

/* Head h of batch b: strided views of q, k, v (row stride ld = 3C). */
typedef struct {
    const float *q, *k, *v;
    const uint8_t *valid; /* key_valid row of batch b, or NULL */
    int T, hs, ld, causal;
    float scale;
} head_view;

static head_view head_of(const float *qkv, const uint8_t *key_valid, int causal,
                         int b, int h, int T, int C, int NH) {
    head_view hv;
    int hs = C / NH;
    const float *base = qkv + (size_t)b * T * 3 * C + (size_t)h * hs;
    hv.q = base;
    hv.k = base + C;
    hv.v = base + 2 * C;
    hv.valid = key_valid ? key_valid + (size_t)b * T : NULL;
    hv.T = T;
    hv.hs = hs;
    hv.ld = 3 * C;
    hv.causal = causal;
    hv.scale = 1.0f / sqrtf((float)hs);
    return hv;
}

static int min_int(int a, int b) { return a < b ? a : b; }

/* ---- forward ------------------------------------------------------------- */

/* S[br, W] (row stride BC, W = round_up(bc)) = Q_i K_j^T * scale with masked
 * entries (padding keys, keys after the query, columns >= bc) at -inf. */
static void score_tile(float *S, const head_view *hv, int i0, int br, int j0, int bc) {
    _Alignas(64) float kmask[BC];
    int W = round_up(bc);
    ss_gemm_ex(0, 1, br, bc, hv->hs, hv->scale, hv->q + (size_t)i0 * hv->ld, hv->ld, hv->k + (size_t)j0 * hv->ld, hv->ld, 0.0f, S, BC, SS_GEMM_TILE);
    for (int c = 0; c < W; c++)
        kmask[c] = c < bc && (!hv->valid || hv->valid[j0 + c]) ? 0.0f : -INFINITY;
    for (int r = 0; r < br; r++) {
        float *s = S + (size_t)r * BC;
        /* select, not add: columns bc..W-1 were not written by sgemm and may
         * hold any bits (NaN + -inf is NaN) */
        for (int c = 0; c < W; c += VL) {
            vf km = *(vf *)(kmask + c);
            *(vf *)(s + c) = vsel(km != vsplat(0.0f), km, *(vf *)(s + c));
        }
        if (hv->causal) /* keys j > i = i0 + r are masked */
            for (int c = i0 + r - j0 + 1 < 0 ? 0 : i0 + r - j0 + 1; c < bc; c++)
                s[c] = -INFINITY;
    }
}

/* Online-softmax step for one tile: updates m and l, writes P~ over S and
 * each row's rescale factor alpha. Returns nonzero if any entry is visible. */
static int online_softmax(float *S, int br, int W, float *m, float *l, float *alpha) {
    int any = 0;
    for (int r = 0; r < br; r++) {
        float *s = S + (size_t)r * BC;
        vf vmx = *(vf *)s;
        for (int c = VL; c < W; c += VL) vmx = vsel(*(vf *)(s + c) > vmx, *(vf *)(s + c), vmx);
        float mx = hmax(vmx);
        mx = mx > m[r] ? mx : m[r];
        alpha[r] = 1.0f;
        if (mx == -INFINITY) { /* nothing visible yet: P row is zero */
            memset(s, 0, (size_t)W * sizeof *s);
            continue;
        }
        vf sum = {0};
        for (int c = 0; c < W; c += VL) {
            vf p = vexp(*(vf *)(s + c) - mx);
            *(vf *)(s + c) = p;
            sum += p;
        }
        if (m[r] != mx) alpha[r] = m[r] == -INFINITY ? 0.0f : expf(m[r] - mx);
        l[r] = alpha[r] * l[r] + hsum(sum);
        m[r] = mx;
        any = 1;
    }
    return any;
}

/* One query tile of the forward: o (row stride ldo) and lse for rows i0.. */
static void forward_tile(float *o, int ldo, float *lse, const head_view *hv, int i0, int br) {
    _Alignas(64) float S[BR * BC];
    float m[BR], l[BR], alpha[BR];
    int hs = hv->hs;
    for (int r = 0; r < br; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        memset(o + (size_t)r * ldo, 0, (size_t)hs * sizeof *o);
    }
    /* keys past the tile's last row are masked for all its rows when causal */
    int jend = hv->causal ? min_int(hv->T, i0 + br) : hv->T;
    for (int j0 = 0; j0 < jend; j0 += BC) {
        int bc = min_int(BC, jend - j0);
        score_tile(S, hv, i0, br, j0, bc);
        if (!online_softmax(S, br, round_up(bc), m, l, alpha)) continue;
        for (int r = 0; r < br; r++)
            if (alpha[r] != 1.0f) scale_row(o + (size_t)r * ldo, hs, alpha[r]);
        ss_gemm_ex(0, 0, br, hs, bc, 1.0f, S, BC, hv->v + (size_t)j0 * hv->ld, hv->ld, 1.0f, o, ldo, SS_GEMM_TILE);
    }
    for (int r = 0; r < br; r++) {
        if (l[r] == 0.0f) { /* no visible key: zero output, lse = -inf */
            lse[r] = -INFINITY;
            continue;
        }
        scale_row(o + (size_t)r * ldo, hs, 1.0f / l[r]);
        lse[r] = m[r] + logf(l[r]);
    }
}

void ss_attention_forward(float *out, float *lse, const float *qkv,
                          const uint8_t *key_valid, int causal,
                          int B, int T, int C, int NH) {
    int nq = (T + BR - 1) / BR, hs = C / NH;
    long ntasks = (long)B * NH * nq;
    /* Tasks are (b, h, query tile); each writes its own rows of out and lse.
     * Descending order starts the long causal tiles (late queries) first. */
#pragma omp parallel for schedule(dynamic, 1)
    for (long t = ntasks - 1; t >= 0; t--) {
        int qt = (int)(t % nq), bh = (int)(t / nq), b = bh / NH, h = bh % NH;
        head_view hv = head_of(qkv, key_valid, causal, b, h, T, C, NH);
        int i0 = qt * BR;
        forward_tile(out + ((size_t)b * T + i0) * C + (size_t)h * hs, C,
                     lse + (size_t)bh * T + i0, &hv, i0, min_int(BR, T - i0));
    }
}

/* ---- appended rows (a KV-cached decoder) ---------------------------------- */

/* o[0..n) += a x[0..n) on strided (unaligned) rows. */
static void axpy_row(float *o, const float *x, int n, float a) {
    int d = 0;
    for (; d + VL <= n; d += VL) *(vfu *)(o + d) = *(vfu *)(o + d) + *(const vfu *)(x + d) * a;
    for (; d < n; d++) o[d] += a * x[d];
}

/* One query row of one head against keys 0..n-1 (all visible): the online
 * softmax of forward_tile with a single row, the scores of BC keys at a
 * time on the stack, dot products instead of sgemm (a GEMV-sized problem). */
static void attend_row(float *o, const head_view *hv, int i, int n) {
    float s[BC], m = -INFINITY, l = 0.0f;
    const float *q = hv->q + (size_t)i * hv->ld;
    memset(o, 0, (size_t)hv->hs * sizeof *o);
    for (int j0 = 0; j0 < n; j0 += BC) {
        int bc = min_int(BC, n - j0);
        float mx = m;
        for (int c = 0; c < bc; c++) {
            s[c] = dot_row(q, hv->k + (size_t)(j0 + c) * hv->ld, hv->hs) * hv->scale;
            mx = s[c] > mx ? s[c] : mx;
        }
        float alpha = expf(m - mx), sum = 0.0f; /* m = -inf at first: alpha 0, o and l still 0 */
        for (int c = 0; c < bc; c++) sum += (s[c] = expf(s[c] - mx));
        if (alpha != 1.0f) scale_row(o, hv->hs, alpha);
        for (int c = 0; c < bc; c++) axpy_row(o, hv->v + (size_t)(j0 + c) * hv->ld, hv->hs, s[c]);
        l = alpha * l + sum;
        m = mx;
    }
    scale_row(o, hv->hs, 1.0f / l);
}

/* Task t of the appended rows: row t / NH, head t % NH. */
static void rows_task(float *out, const float *qkv, int t0, int T, int C, int NH, long t) {
    int r = (int)(t / NH), h = (int)(t % NH);
    head_view hv = head_of(qkv, NULL, 1, 0, h, T, C, NH);
    attend_row(out + (size_t)r * C + (size_t)h * (C / NH), &hv, t0 + r, t0 + r + 1);
}

void ss_attention_forward_rows(float *out, const float *qkv, int t0, int T, int C, int NH) {
    long n = (long)(T - t0) * NH;
    if (T - t0 == 1) {
        /* a decoding step is O(T C) work, less than an OpenMP fork per layer
         * costs (far less when the cores are shared): no OpenMP region */
        for (long t = 0; t < n; t++) rows_task(out, qkv, t0, T, C, NH, t);
        return;
    }
#pragma omp parallel for schedule(static)
    for (long t = 0; t < n; t++) rows_task(out, qkv, t0, T, C, NH, t);
}

/* ---- backward ------------------------------------------------------------ */

/* Per-task scratch of the backward (see the memory note at the top). */
typedef struct {
    _Alignas(64) float P[BR * BC];  /* probabilities, row stride BC */
    _Alignas(64) float dS[BR * BC]; /* dP, then dS, row stride BC */
} bwd_scratch;

/* P[br, W] = exp(S - lse) for query tile i0 and key tile j0, masked entries
 * and blind rows (lse = -inf) 0. Returns nonzero if any P is nonzero. */
static int recompute_probs(float *P, const head_view *hv, const float *lse,
                           int i0, int br, int j0, int bc) {
    int W = round_up(bc);
    score_tile(P, hv, i0, br, j0, bc);
    vf total = {0};
    for (int r = 0; r < br; r++) {
        float *p = P + (size_t)r * BC, lr = lse[i0 + r];
        if (lr == -INFINITY) {
            memset(p, 0, (size_t)W * sizeof *p);
            continue;
        }
        for (int c = 0; c < W; c += VL) {
            vf e = vexp(*(vf *)(p + c) - lr);
            *(vf *)(p + c) = e;
            total += e;
        }
    }
    return hsum(total) > 0.0f;
}

/* dS = P * (dP - D) in place over dP; D_r = dot(dO_r, O_r) = rowsum(P dP). */
static void softmax_grad(float *dS, const float *P, const float *dO, const float *O,
                         int ld, int br, int bc, int hs) {
    int W = round_up(bc);
    for (int r = 0; r < br; r++) {
        float D = dot_row(dO + (size_t)r * ld, O + (size_t)r * ld, hs);
        float *g = dS + (size_t)r * BC;
        const float *p = P + (size_t)r * BC;
        for (int c = 0; c < W; c += VL) *(vf *)(g + c) = *(vf *)(p + c) * (*(vf *)(g + c) - D);
    }
}

/* Gradients for head view hv: dq/dk/dv are the matching views of dqkv,
 * dO/O views of dout/out (row stride ld), lse the head's [T] row. */
static void backward_head(float *dq, float *dk, float *dv, const float *dO,
                          const float *O, int ld, const float *lse,
                          const head_view *hv, bwd_scratch *w) {
    int T = hv->T, hs = hv->hs, l3 = hv->ld;
    for (int j0 = 0; j0 < T; j0 += BC) {
        int bc = min_int(BC, T - j0);
        const float *K = hv->k + (size_t)j0 * l3, *V = hv->v + (size_t)j0 * l3;
        /* causal: the first query tile that has a row i >= j0 */
        for (int i0 = hv->causal ? j0 / BR * BR : 0; i0 < T; i0 += BR) {
            int br = min_int(BR, T - i0);
            const float *Q = hv->q + (size_t)i0 * l3, *dOi = dO + (size_t)i0 * ld;
            if (!recompute_probs(w->P, hv, lse, i0, br, j0, bc)) continue;
            ss_gemm_ex(1, 0, bc, hs, br, 1.0f, w->P, BC, dOi, ld, 1.0f, dv + (size_t)j0 * l3, l3, SS_GEMM_TILE);
            ss_gemm_ex(0, 1, br, bc, hs, 1.0f, dOi, ld, V, l3, 0.0f, w->dS, BC, SS_GEMM_TILE);
            softmax_grad(w->dS, w->P, dOi, O + (size_t)i0 * ld, ld, br, bc, hs);
            ss_gemm_ex(0, 0, br, hs, bc, hv->scale, w->dS, BC, K, l3, 1.0f, dq + (size_t)i0 * l3, l3, SS_GEMM_TILE);
            ss_gemm_ex(1, 0, bc, hs, br, hv->scale, w->dS, BC, Q, l3, 1.0f, dk + (size_t)j0 * l3, l3, SS_GEMM_TILE);
        }
    }
}

void ss_attention_backward(float *dqkv, const float *dout, const float *out,
                           const float *lse, const float *qkv,
                           const uint8_t *key_valid, int causal,
                           int B, int T, int C, int NH) {
    int hs = C / NH;
#pragma omp parallel
    {
        bwd_scratch w;
        memset(&w, 0, sizeof w); /* lanes past bc are computed on (never used): keep them finite */
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH;
            head_view hv = head_of(qkv, key_valid, causal, b, h, T, C, NH);
            float *dq = dqkv + (size_t)b * T * 3 * C + (size_t)h * hs;
            size_t off = (size_t)b * T * C + (size_t)h * hs;
            backward_head(dq, dq + C, dq + 2 * C, dout + off, out + off, C,
                          lse + (size_t)bh * T, &hv, &w);
        }
    }
}
