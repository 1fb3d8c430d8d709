/* The training engine end to end: a tiny model overfits one batch; a short
 * tinyshakespeare run lowers validation loss; an interrupted and resumed
 * run ends bit-identical to an uninterrupted one; checkpoints survive a
 * corrupt latest save; mismatched config/tokenizer and non-finite training
 * give clear errors. */
#include <math.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "train_helpers.h"

#include "selfsup/engine.h"
#include "selfsup/io.h"
#include "selfsup/safetensors.h"
#include "selfsup/shard.h"
#include "selfsup/tokenizer.h"
#include "selfsup/train.h"

static char data_dir[512], tok_path[512];

/* Shards from the first 150 KB of tinyshakespeare with a 512-token BPE. */
static int setup_data(void **state) {
    (void)state;
    ss_error err = {0};
    const char *dir = test_tmpdir();
    char text[512];
    snprintf(text, sizeof text, "%s/slice.txt", dir);
    snprintf(tok_path, sizeof tok_path, "%s/tok.json", dir);
    snprintf(data_dir, sizeof data_dir, "%s/shards", dir);
    ss_buf b = {0};
    CHECK_OK(ss_read_file(test_data_path("tinyshakespeare", "input.txt"), &b, &err), &err);
    CHECK_OK(ss_write_file_atomic(text, b.data, 150000, &err), &err);
    ss_buf_free(&b);
    const char *specials[] = {"<|endoftext|>"};
    ss_bpe_train_opts to = {.vocab_size = 512, .min_frequency = 2, .special_tokens = specials, .n_special = 1};
    const char *paths[] = {text};
    ss_tokenizer *tok;
    CHECK_OK(ss_bpe_train_files(&to, paths, 1, &tok, &err), &err);
    CHECK_OK(ss_tokenizer_save(tok, tok_path, &err), &err);
    ss_tokenizer_free(tok);
    ss_prepare_opts po = {.tokenizer_path = tok_path, .out_dir = data_dir, .val_fraction = 0.1,
                          .boundary = SS_DOC_BLANK, .nthreads = 2};
    ss_prepare_stats ps;
    CHECK_OK(ss_prepare_corpus(&po, paths, 1, &ps, &err), &err);
    return 0;
}

static void tiny_opts(ss_train_opts *o, const char *out) {
    ss_train_opts_defaults(o);
    o->data_dir = data_dir;
    o->out_dir = out;
    o->model = (ss_model_config){.kind = SS_DECODER, .n_layer = 2, .d_model = 48, .n_head = 2, .d_ff = 96, .max_seq = 32, .dropout = 0.1f};
    o->seq = 32;
    o->batch = 4;
    o->grad_accum = 2;
    o->steps = 24;
    o->lr = 3e-3;
    o->warmup = 4;
    o->eval_every = 12;
    o->eval_tokens = 2048;
    o->save_every = 8;
    o->log_every = 4;
    o->seed = 7;
}

static void test_overfit_one_batch(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model_config c = {.kind = SS_DECODER, .vocab_size = 50, .n_layer = 1, .d_model = 32, .n_head = 2, .d_ff = 64, .max_seq = 16};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, 1);
    int32_t tok[2 * 16], tgt[2 * 16];
    for (int i = 0; i < 32; i++) {
        tok[i] = (i * 7 + 3) % 50;
        tgt[i] = (i * 11 + 5) % 50;
    }
    ss_batch b = {tok, tgt, NULL, 2, 16};
    ss_adamw opt;
    CHECK_OK(ss_adamw_init(&opt, ss_model_num_params(m), &err), &err);
    ss_adamw_hparams h = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, 0};
    ss_loss_stats ls;
    double first = 0, last = 0;
    for (int s = 0; s < 300; s++) {
        ss_model_zero_grads(m);
        CHECK_OK(ss_model_forward_backward(m, &b, 1.0f / 32, 0, &ls, &err), &err);
        last = ls.loss_sum / 32;
        if (s == 0) first = last;
        ss_adamw_step(&opt, m, ss_model_params(m), ss_model_grads(m), &h);
    }
    printf("# overfit: loss %.4f -> %.4f\n", first, last);
    assert_true(first > 3.0);
    assert_true(last < 0.05);
    ss_adamw_free(&opt);
    ss_model_free(m);
}

static void read_params(const char *run, float **out, size_t *n) {
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_load(&m, run, &err), &err);
    *n = ss_model_num_params(m);
    *out = malloc(*n * sizeof(float));
    memcpy(*out, ss_model_params(m), *n * sizeof(float));
    ss_model_free(m);
}

static char run_a[512];

static void test_resume_is_bit_identical(void **state) {
    (void)state;
    ss_error err = {0};
    const char *dir = test_tmpdir();
    char run_b[512];
    snprintf(run_a, sizeof run_a, "%s/a", dir);
    snprintf(run_b, sizeof run_b, "%s/b", dir);
    ss_train_opts o;
    tiny_opts(&o, run_a);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    /* B: interrupted after step 12 (saved there), then resumed to the end. */
    tiny_opts(&o, run_b);
    CHECK_OK(run_interrupted(o, 12, 12, 8, &err), &err);
    float *pa, *pb;
    size_t na, nb;
    read_params(run_a, &pa, &na);
    read_params(run_b, &pb, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na * sizeof(float));
    free(pa);
    free(pb);
}

static void test_training_lowers_val_loss(void **state) {
    (void)state;
    ss_error err = {0};
    char path[600], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_a);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    double first_loss = -1, val = -1;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "\"loss\":"), *v = strstr(line, "\"val_loss\":");
        if (p && first_loss < 0) first_loss = atof(p + 7);
        if (v) val = atof(v + 11);
    }
    fclose(f);
    /* Untrained model: loss ~ ln(512) = 6.24 */
    ss_model *m;
    ss_token_split vs;
    ss_eval_result r0;
    ss_model_config c = {.kind = SS_DECODER, .vocab_size = 512, .n_layer = 2, .d_model = 48, .n_head = 2, .d_ff = 96, .max_seq = 32, .dropout = 0.1f};
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, 7);
    CHECK_OK(ss_token_split_load(&vs, data_dir, "val", &err), &err);
    CHECK_OK(ss_evaluate_clm(m, &vs, 4, 32, 2048, NULL, NULL, &r0, &err), &err);
    printf("# val loss untrained %.4f, after 24 steps %.4f (first train loss %.4f)\n", r0.loss, val, first_loss);
    assert_true(val > 0 && val < r0.loss - 0.5);
    ss_token_split_free(&vs);
    ss_model_free(m);
}

/* The last val_loss in RUN/metrics.jsonl. */
static double last_val_loss(const char *run) {
    char path[600], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    double val = -1;
    while (fgets(line, sizeof line, f)) {
        char *v = strstr(line, "\"val_loss\":");
        if (v) val = atof(v + 11);
    }
    fclose(f);
    return val;
}

/* Mixed precision learns as fp32 does: 200 steps of the same seed reach
 * validation losses within 1% of each other; and a bf16 run interrupted and
 * resumed ends bit-identical to an uninterrupted one (determinism and exact
 * resume hold in bf16). The test's products are tiny, so all of them are
 * routed through the backend (ss_gemm_set_small(0)). */
static void test_bf16_learns_as_fp32(void **state) {
    (void)state;
    ss_error err = {0};
    const char *dir = test_tmpdir();
    char r32[512], r16[512], r16b[512];
    snprintf(r32, sizeof r32, "%s/fp32", dir);
    snprintf(r16, sizeof r16, "%s/bf16", dir);
    snprintf(r16b, sizeof r16b, "%s/bf16-resumed", dir);
    double old_small = ss_gemm_set_small(0);
    ss_train_opts o;
    tiny_opts(&o, r32);
    o.steps = 200;
    o.warmup = 10;
    o.eval_every = 200;
    o.eval_tokens = 8192;
    o.save_every = 100;
    o.precision = SS_PRECISION_FP32;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    o.out_dir = r16;
    o.precision = SS_PRECISION_BF16;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    char state_path[600];
    ss_buf b = {0};
    snprintf(state_path, sizeof state_path, "%s/trainer_state.json", r16);
    CHECK_OK(ss_read_file(state_path, &b, &err), &err);
    assert_non_null(strstr(b.data, ss_gemm_available(SS_GEMM_DNNL_BF16) ? "onednn-bf16" : "openblas-bf16-rounded"));
    ss_buf_free(&b);
    o.out_dir = r16b;
    CHECK_OK(run_interrupted(o, 100, 200, 100, &err), &err);
    double v32 = last_val_loss(r32), v16 = last_val_loss(r16);
    printf("# 200 steps: val loss fp32 %.4f, bf16 %.4f (%.2f%%)\n", v32, v16, 100 * (v16 - v32) / v32);
    assert_true(v32 > 0 && fabs(v16 - v32) <= 0.01 * v32);
    float *pa, *pb, *pc;
    size_t na, nb, nc;
    read_params(r32, &pa, &na);
    read_params(r16, &pb, &nb);
    read_params(r16b, &pc, &nc);
    assert_int_equal(nb, nc);
    assert_memory_equal(pb, pc, nb * sizeof(float));
    assert_memory_not_equal(pa, pb, na * sizeof(float)); /* bf16 did round */
    free(pa), free(pb), free(pc);
    ss_gemm_set_small(old_small);
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
}

static void truncate_file(const char *path, long keep) {
    assert_int_equal(truncate(path, keep), 0);
}

static void test_corrupt_checkpoint_falls_back(void **state) {
    (void)state;
    ss_error err = {0};
    char path[700];
    ss_train_models tm;
    ss_train_state st;
    char *opts;
    int prev;
    snprintf(path, sizeof path, "%s/model.safetensors", run_a);
    truncate_file(path, 1000);
    CHECK_OK(ss_checkpoint_load(run_a, &tm, &st, &opts, &prev, &err), &err);
    printf("# %s\n", err.msg);
    assert_int_equal(st.step, 16); /* .previous: the save before the last */
    assert_non_null(strstr(err.msg, ".previous"));
    assert_int_equal(prev, 1);
    ss_model_free(tm.model);
    ss_adamw_free(&tm.opt);
    free(opts);
    snprintf(path, sizeof path, "%s/.previous/optimizer.safetensors", run_a);
    truncate_file(path, 50);
    err = (ss_error){0};
    assert_int_not_equal(ss_checkpoint_load(run_a, &tm, &st, &opts, &prev, &err), SS_OK);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "model.safetensors"));
}

static void test_config_and_tokenizer_mismatch(void **state) {
    (void)state;
    ss_error err = {0};
    ss_train_opts o;
    char run[600], path[700];
    snprintf(run, sizeof run, "%s/c", test_tmpdir());
    tiny_opts(&o, run);
    o.steps = 2;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    ss_model *m;
    CHECK_OK(ss_model_load(&m, run, &err), &err);
    ss_model_free(m);
    /* config.json claims 3 layers: the tensors do not match */
    snprintf(path, sizeof path, "%s/config.json", run);
    ss_buf b = {0};
    CHECK_OK(ss_read_file(path, &b, &err), &err);
    char *p = strstr(b.data, "\"n_layer\":");
    assert_non_null(p);
    p = strchr(p, '2');
    *p = '3';
    CHECK_OK(ss_write_file_atomic(path, b.data, b.len, &err), &err);
    assert_int_equal(ss_model_load(&m, run, &err), SS_ERR_FORMAT);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "does not match"));
    *p = '2';
    CHECK_OK(ss_write_file_atomic(path, b.data, b.len, &err), &err);
    ss_buf_free(&b);
    /* a tokenizer with another vocabulary size */
    snprintf(path, sizeof path, "%s/tokenizer.json", run);
    ss_tokenizer *gpt2;
    char gdir[4096];
    snprintf(gdir, sizeof gdir, "%s", test_data_path("gpt2-tokenizer", "encoder.json"));
    *strrchr(gdir, '/') = '\0';
    CHECK_OK(ss_tokenizer_load(&gpt2, gdir, &err), &err);
    CHECK_OK(ss_tokenizer_save(gpt2, path, &err), &err);
    ss_tokenizer_free(gpt2);
    assert_int_equal(ss_model_load(&m, run, &err), SS_ERR_FORMAT);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "vocab"));
}

static void test_nonfinite_training_stops(void **state) {
    (void)state;
    ss_error err = {0};
    ss_train_opts o;
    char run[600];
    snprintf(run, sizeof run, "%s/nan", test_tmpdir());
    tiny_opts(&o, run);
    o.lr = 1e30;      /* the first update sends weights to ~1e30: the loss overflows */
    o.warmup = 0;
    o.clip = 0;
    o.steps = 30;
    o.save_every = 1; /* a save is attempted after every step that is not skipped */
    ss_status st = ss_pretrain(&o, NULL, NULL, &err);
    printf("# %s\n", err.msg);
    assert_int_not_equal(st, SS_OK);
    assert_true(strstr(err.msg, "not finite") || strstr(err.msg, "non-finite"));
    /* whatever checkpoint exists holds finite weights */
    ss_model *m;
    if (ss_model_load(&m, run, &err) == SS_OK) {
        assert_true(ss_model_params_finite(m));
        ss_model_free(m);
    }
}

/* Steps reported by a run with --log-every 1: the lr each used and the
 * training time elapsed after it. */
typedef struct {
    int64_t n;
    double lr[20000], elapsed[20000];
} lr_trace;

static int64_t trace_from = 1; /* the first step reported */

static void trace_cb(void *ctx, const ss_train_progress *p) {
    lr_trace *t = ctx;
    if (p->message || p->is_eval || t->n >= 20000) return;
    assert_int_equal(p->step, t->n + trace_from);
    t->lr[t->n] = p->lr;
    t->elapsed[t->n++] = p->elapsed;
}

/* A --time run warms up over the first 5% of its time budget, so over ~5%
 * of its steps however fast they run (not a fixed 100 steps), then follows
 * the cosine over the rest of the budget down to lr_min. The lr of every
 * step is checked against the elapsed time before it. */
/* tiny_opts as a --time run of `seconds` in run directory `name`, logging
 * every step, no evaluations or periodic saves. */
static void timed_opts(ss_train_opts *o, const char *name, double seconds) {
    static char run[600];
    snprintf(run, sizeof run, "%s/%s", test_tmpdir(), name);
    tiny_opts(o, run);
    o->steps = 0;
    o->time_limit = seconds;
    o->grad_accum = 1;
    o->eval_every = 0;
    o->save_every = 0;
    o->log_every = 1;
}

/* ss_pretrain on one thread: steps of even length on a loaded machine (two
 * threads spinning at barriers on shared cores make some steps 20x longer). */
static void pretrain_one_thread(const ss_train_opts *o, ss_train_progress_fn fn, void *ctx) {
    ss_error err = {0};
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    ss_status st = ss_pretrain(o, fn, ctx, &err);
    omp_set_num_threads(threads);
    CHECK_OK(st, &err);
}

/* A 2-s --time run of `schedule` with the default warmup, traced into *t. */
static void timed_run(const char *name, int schedule, ss_train_opts *o, lr_trace *t) {
    timed_opts(o, name, 2.0);
    o->schedule = schedule;
    o->warmup = -1;
    t->n = 0;
    pretrain_one_thread(o, trace_cb, t);
    if (t->n < 20 || t->n >= 20000) fail_msg("%lld steps in %.0f s: too few (or too many) to check", (long long)t->n,
                                             o->time_limit);
}

static void test_time_budget_warmup(void **state) {
    (void)state;
    ss_train_opts o;
    static lr_trace t;
    timed_run("timed", SS_SCHEDULE_COSINE, &o, &t);
    int64_t warm = 0;
    for (int64_t i = 0; i < t.n; i++) {
        double before = i ? t.elapsed[i - 1] : 0, share = before / o.time_limit;
        double w = fmax((double)(i + 1) / 1000, share / 0.05), want;
        if (w < 1) {
            want = o.lr * w;
            warm = i + 1;
        } else {
            double p = fmin(1, fmax(0, (share - 0.05) / 0.95));
            want = o.lr / 10 + 0.5 * (o.lr - o.lr / 10) * (1 + cos(M_PI * p));
        }
        if (fabs(t.lr[i] - want) > 1e-5 * o.lr) /* the cosine position is quantized to 1e-6 */
            fail_msg("step %lld: lr %.9g, expected %.9g (elapsed before it %.4f s of %.1f)", (long long)i + 1,
                     t.lr[i], want, before, o.time_limit);
    }
    double share = (double)warm / (double)t.n;
    printf("# --time %.0f s: %lld steps, %lld of them warmup (%.1f%%); last lr %.3g\n", o.time_limit,
           (long long)t.n, (long long)warm, 100 * share, t.lr[t.n - 1]);
    /* 5% of the time: ~5% of the steps when they take equally long (a
     * fixed 100 steps of warmup, as before, would be most of this run) */
    assert_true(warm >= 1 && share < 0.2);
    assert_true(t.lr[t.n - 1] < 0.15 * o.lr);  /* the cosine reached (nearly) lr_min = lr / 10 */
}


/* --schedule one-cycle (Cramming's triangle): by default the warmup is half
 * the run, then a straight line down to lr_min. Steps: exactly so at every
 * step, and the run's log says so. --time: the same by the elapsed share of
 * the budget (about half the steps warm up, however fast they run); an
 * explicit --warmup still counts steps. */
static void test_one_cycle_schedule(void **state) {
    (void)state;
    ss_error err = {0};
    char run[600];
    static lr_trace t;
    ss_train_opts o;
    snprintf(run, sizeof run, "%s/one-cycle-steps", test_tmpdir());
    tiny_opts(&o, run);
    o.schedule = SS_SCHEDULE_ONE_CYCLE;
    o.warmup = -1;
    o.steps = 40;
    o.lr_min = 3e-4;
    o.log_every = 1;
    o.eval_every = 0;
    o.save_every = 0;
    t.n = 0;
    CHECK_OK(ss_pretrain(&o, trace_cb, &t, &err), &err);
    assert_int_equal(t.n, 40);
    for (int64_t i = 0; i < t.n; i++) {
        double want = i < 20 ? o.lr * (double)(i + 1) / 20 : o.lr_min + (o.lr - o.lr_min) * (double)(40 - i) / 20;
        if (fabs(t.lr[i] - want) > 1e-12) fail_msg("step %lld: lr %.12g, expected %.12g", (long long)i + 1, t.lr[i], want);
    }
    assert_true(t.lr[19] == o.lr && t.lr[20] == o.lr); /* the peak mid-run */

    timed_run("one-cycle-time", SS_SCHEDULE_ONE_CYCLE, &o, &t);
    int64_t warm = 0;
    double lr_min = o.lr / 10;
    for (int64_t i = 0; i < t.n; i++) {
        double before = i ? t.elapsed[i - 1] : 0, share = before / o.time_limit, want;
        if (share < 0.5) {
            want = o.lr * share / 0.5;
            warm = i + 1;
        } else {
            want = lr_min + (o.lr - lr_min) * (1 - fmin(1, (share - 0.5) / 0.5));
        }
        if (fabs(t.lr[i] - want) > 1e-5 * o.lr) /* the position is quantized to 1e-6 */
            fail_msg("step %lld: lr %.9g, expected %.9g (elapsed before it %.4f s of %.1f)", (long long)i + 1,
                     t.lr[i], want, before, o.time_limit);
    }
    double share = (double)warm / (double)t.n;
    printf("# --schedule one-cycle --time %.0f s: %lld steps, %lld of them warmup (%.1f%%); last lr %.3g\n",
           o.time_limit, (long long)t.n, (long long)warm, 100 * share, t.lr[t.n - 1]);
    assert_true(share > 0.3 && share < 0.7);
    assert_true(t.lr[t.n - 1] < 0.2 * o.lr);
}

/* --batch-ramp (Cramming's batch-size ramp): the micro-batches per step by
 * the share of the run done; a 24-step run with --grad-accum 4 and a ramp
 * over its first half has 1, 2 and 3 micro-batches for 4 steps each (the
 * share passes 1/6, 2/6 and 3/6 at steps 4, 8 and 12), then 4: every
 * step's tokens are checked. --tokens and --flops buy exactly that run back
 * (23 steps would be 68 micro-batches, short of its 72); a run interrupted
 * mid-ramp and resumed ends bit-identical to it. */
typedef struct {
    int64_t n, tokens[20000];
    double elapsed[20000];
} token_trace;

static void token_cb(void *ctx, const ss_train_progress *p) {
    token_trace *t = ctx;
    if (p->message || p->is_eval || t->n >= 20000) return;
    assert_int_equal(p->step, t->n + 1);
    t->elapsed[t->n] = p->elapsed;
    t->tokens[t->n++] = p->tokens_seen;
}

static void test_batch_ramp(void **state) {
    (void)state;
    assert_int_equal(ss_batch_ramp_micro(0, 0.5, 4), 1);
    assert_int_equal(ss_batch_ramp_micro(0.1666, 0.5, 4), 1);
    assert_int_equal(ss_batch_ramp_micro(0.1667, 0.5, 4), 2);
    assert_int_equal(ss_batch_ramp_micro(0.49, 0.5, 4), 3);
    assert_int_equal(ss_batch_ramp_micro(0.5, 0.5, 4), 4);
    assert_int_equal(ss_batch_ramp_micro(2, 0.5, 4), 4);
    assert_int_equal(ss_batch_ramp_micro(0, 0, 4), 4);
    assert_int_equal(ss_batch_ramp_micro(0, 1, 1), 1);
    ss_error err = {0};
    const char *dir = test_tmpdir();
    char run[600];
    static token_trace t;
    ss_train_opts o;
    const int64_t per_micro = 4 * 32; /* tiny_opts: batch 4 x seq 32 */
    const char *how[] = {"steps", "tokens", "flops", "interrupted"};
    float *p0 = NULL;
    size_t n0 = 0;
    for (int v = 0; v < 4; v++) {
        snprintf(run, sizeof run, "%s/ramp-%s", dir, how[v]);
        tiny_opts(&o, run);
        o.grad_accum = 4;
        o.batch_ramp = 0.5;
        o.log_every = 1;
        if (v == 1) o.steps = 0, o.tokens = 72 * per_micro;
        if (v == 2) {
            ss_model_config c = o.model;
            c.vocab_size = 512;
            o.steps = 0;
            o.flops = 72 * per_micro * ss_train_flops_per_token(SS_OBJ_CLM, &c, NULL, o.seq, 0, 0) * (1 - 1e-9);
        }
        t.n = 0;
        if (v == 3) {
            CHECK_OK(run_interrupted(o, 6, 12, 8, &err), &err);
        } else {
            CHECK_OK(ss_pretrain(&o, token_cb, &t, &err), &err);
            assert_int_equal(t.n, 24);
            for (int64_t i = 0; i < t.n; i++) {
                int64_t k = i < 12 ? 1 + i / 4 : 4, got = t.tokens[i] - (i ? t.tokens[i - 1] : 0);
                if (got != k * per_micro)
                    fail_msg("--%s: step %lld trained %lld tokens, expected %lld (%lld micro-batches)", how[v],
                             (long long)i + 1, (long long)got, (long long)(k * per_micro), (long long)k);
            }
        }
        float *p;
        size_t n;
        read_params(run, &p, &n);
        if (!p0) p0 = p, n0 = n;
        else {
            assert_int_equal(n, n0);
            if (memcmp(p, p0, n * sizeof(float))) fail_msg("--%s: the weights differ from the --steps run's", how[v]);
            free(p);
        }
    }
    free(p0);
    /* --time: by the elapsed share of the budget, checked at every step
     * against the time before it */
    timed_opts(&o, "ramp-time", 1.0);
    o.grad_accum = 3;
    o.batch_ramp = 0.6;
    t.n = 0;
    pretrain_one_thread(&o, token_cb, &t);
    int64_t small = 0;
    for (int64_t i = 0; i < t.n; i++) {
        double share = (i ? t.elapsed[i - 1] : 0) / o.time_limit;
        int64_t k = share < 0.3 ? 1 : share < 0.6 ? 2 : 3, got = t.tokens[i] - (i ? t.tokens[i - 1] : 0);
        small += k < 3;
        if (got != k * per_micro)
            fail_msg("--time: step %lld (%.3f of the budget before it) trained %lld tokens, expected %lld",
                     (long long)i + 1, share, (long long)got, (long long)(k * per_micro));
    }
    printf("# --time %.0f s with --batch-ramp 0.6: %lld steps, %lld of them before the full batch\n", o.time_limit,
           (long long)t.n, (long long)small);
    assert_true(t.n >= 10 && small >= 3 && small < t.n);
}

/* Every saved option survives to_json -> from_json; the JSON a run saved
 * before the options table (key "data", no steps/tokens) still reads. */
static void test_opts_json_roundtrip(void **state) {
    (void)state;
    ss_error err = {0};
    ss_train_opts a, b;
    tiny_opts(&a, "/tmp/x");
    a.objective = SS_OBJ_RTD;
    a.seed = 18446744073709551557ull; /* needs all 64 bits */
    a.mask_prob = 0.2f;
    a.whole_word = 1;
    a.lr_min = 1.0 / 3;
    a.batch_ramp = 0.25;
    char *json = ss_train_opts_to_json(&a, 24), *keep;
    ss_train_opts_defaults(&b);
    int64_t total = 0;
    CHECK_OK(ss_train_opts_from_json(&b, &total, json, "test", &keep, &err), &err);
    assert_int_equal(total, 24);
    const ss_opt_table *t = &ss_train_opt_table;
    for (size_t i = 0; i < t->n; i++) {
        if (t->rows[i].resume != SS_RESUME_FIXED && t->rows[i].resume != SS_RESUME_LENGTH) continue;
        char va[512], vb[512];
        ss_opt_format(&t->rows[i], &a, va, sizeof va);
        ss_opt_format(&t->rows[i], &b, vb, sizeof vb);
        if (strcmp(va, vb)) fail_msg("option %s: %s saved, %s read back", t->rows[i].name, va, vb);
    }
    free(json);
    free(keep);
    const char *old = "{\"objective\":\"clm\",\"data\":\"/d\",\"seq\":32,\"batch\":4,\"grad_accum\":2,"
        "\"total_steps\":24,\"time_limit\":0,\"flops\":0,\"lr\":0.003,\"lr_min\":0.0003,\"warmup\":4,"
        "\"weight_decay\":0.1,\"clip\":1,\"beta1\":0.9,\"beta2\":0.95,\"eps\":1e-08,\"seed\":\"7\","
        "\"eval_tokens\":2048,\"mask_prob\":0.15,\"mask_replace\":0.8,\"mask_random\":0.1,\"whole_word\":0,"
        "\"gen_size\":0.25,\"disc_weight\":50}";
    ss_train_opts_defaults(&b);
    CHECK_OK(ss_train_opts_from_json(&b, &total, old, "old", &keep, &err), &err);
    assert_string_equal(b.data_dir, "/d");
    assert_true(b.lr == 0.003 && b.seed == 7 && b.steps == 0 && total == 24);
    free(keep);
    /* a saved option missing is an error naming it */
    char *cut = strdup(old);
    memcpy(strstr(cut, "\"clip\""), "\"clap\"", 6);
    assert_int_equal(ss_train_opts_from_json(&b, &total, cut, "cut", &keep, &err), SS_ERR_FORMAT);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "'clip'"));
    free(keep);
    free(cut);
}

/* The library rejects what the CLI rejects, before writing anything. */
static void test_opts_checked_by_library(void **state) {
    (void)state;
    char run[600];
    snprintf(run, sizeof run, "%s/never", test_tmpdir());
    ss_train_opts o;
    ss_error err = {0};
    tiny_opts(&o, run);
    o.log_every = 0;
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_ARG);
    assert_string_equal(err.msg, "--log-every 0: must be >= 1");
    tiny_opts(&o, run);
    o.beta2 = 1;
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_ARG);
    assert_string_equal(err.msg, "--beta2 1: must be in [0, 1)");
    tiny_opts(&o, run);
    o.tokens = 1000;
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "exactly one of --steps, --tokens, --flops, --time"));
    tiny_opts(&o, run);
    o.grad_accum = 1;
    o.batch_ramp = 0.5;
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_ARG);
    assert_string_equal(err.msg, "--batch-ramp 0.5: the batch grows from one micro-batch to --grad-accum K, so it "
                                 "needs --grad-accum 2 or more");
    tiny_opts(&o, run);
    o.batch_ramp = 1.5;
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_ARG);
    assert_string_equal(err.msg, "--batch-ramp 1.5: must be in [0, 1]");
    assert_false(ss_file_exists(run));
}

/* Resuming a finished 24-step run: an option that defines the run given
 * with another value is an error naming it; a longer --steps extends the
 * run, whose added steps run at lr_min; a shorter one is an error. */
static void test_resume_rules(void **state) {
    (void)state;
    ss_error err = {0};
    char run[600], other[600];
    snprintf(run, sizeof run, "%s/rules", test_tmpdir());
    snprintf(other, sizeof other, "%s/rules-data", test_tmpdir());
    ss_train_opts o;
    tiny_opts(&o, run);
    o.eval_every = 0;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    assert_int_equal(symlink(data_dir, other), 0); /* the same data by another name is the same data */
    ss_train_opts r;
    ss_train_opts_defaults(&r);
    r.out_dir = run;
    r.data_dir = other;
    r.resume = 1;
    r.eval_every = 0;
    CHECK_OK(ss_pretrain(&r, NULL, NULL, &err), &err);
    /* other data */
    r.data_dir = test_tmpdir();
    assert_int_equal(ss_pretrain(&r, NULL, NULL, &err), SS_ERR_ARG);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "--data"));
    r.data_dir = data_dir;
    /* another lr, even one equal to a default when the user gave it */
    r.lr = 1e-2;
    assert_int_equal(ss_pretrain(&r, NULL, NULL, &err), SS_ERR_ARG);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "--lr 0.01 differs from the run's 0.003"));
    r.lr = 1e-3;
    r.given = SS_OPT_BIT(SS_TRAIN_OPT_lr);
    assert_int_equal(ss_pretrain(&r, NULL, NULL, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "--lr"));
    r.lr = 0; /* the default again: not given */
    r.given = 0;
    /* shorter, or a time budget for a run in steps */
    r.steps = 10;
    assert_int_equal(ss_pretrain(&r, NULL, NULL, &err), SS_ERR_ARG);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "--steps: shorter than the run's length"));
    r.steps = 0;
    r.time_limit = 30;
    assert_int_equal(ss_pretrain(&r, NULL, NULL, &err), SS_ERR_ARG);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "--time"));
    r.time_limit = 0;
    /* longer: 8 more steps at lr_min, the schedule unchanged */
    static lr_trace t;
    t.n = 0;
    r.steps = 32;
    r.log_every = 1;
    trace_from = 25;
    CHECK_OK(ss_pretrain(&r, trace_cb, &t, &err), &err);
    trace_from = 1;
    assert_int_equal(t.n, 8);
    for (int i = 0; i < 8; i++) assert_true(fabs(t.lr[i] - 3e-4) < 1e-12);
    ss_train_models tm;
    ss_train_state st;
    char *json;
    int prev;
    CHECK_OK(ss_checkpoint_load(run, &tm, &st, &json, &prev, &err), &err);
    assert_int_equal(st.step, 32);
    assert_int_equal(st.total_steps, 32);
    assert_int_equal(st.sched_steps, 24);
    ss_model_free(tm.model);
    ss_adamw_free(&tm.opt);
    free(json);
}

int main(void) {
    omp_set_num_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overfit_one_batch),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_bf16_learns_as_fp32),
        cmocka_unit_test(test_training_lowers_val_loss),
        cmocka_unit_test(test_corrupt_checkpoint_falls_back),
        cmocka_unit_test(test_config_and_tokenizer_mismatch),
        cmocka_unit_test(test_nonfinite_training_stops),
        cmocka_unit_test(test_time_budget_warmup),
        cmocka_unit_test(test_one_cycle_schedule),
        cmocka_unit_test(test_batch_ramp),
        cmocka_unit_test(test_opts_json_roundtrip),
        cmocka_unit_test(test_opts_checked_by_library),
        cmocka_unit_test(test_resume_rules),
    };
    return cmocka_run_group_tests(tests, setup_data, NULL);
}
