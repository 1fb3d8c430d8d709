/* Continued pretraining (pretrain --init RUN): a run started from another
 * run's weights has exactly those weights before its first step (checked
 * after one step at lr 1e-30, against a control run without --init whose
 * weights differ), evaluates as that run does on the new data, and has a
 * fresh optimizer and step; the architecture is the init run's; encoders
 * take the body always, the head when it is the objective's, an rtd run's
 * generator; a run of the other kind continues its body under the
 * objective's kind; the tokenizer must match (by content); the record of the init
 * run in trainer_state.json survives --resume, which stays bit-identical;
 * wrong inits are clear errors. */
#include <math.h>
#include <omp.h>

#include <cJSON.h>

#include "testutil.h"
#include "train_helpers.h"

#include "selfsup/io.h"
#include "selfsup/safetensors.h"
#include "selfsup/shard.h"
#include "selfsup/tokenizer.h"
#include "selfsup/train.h"

static char tmp[512], sa[600], sb[600], sc[600], sd[600];
static char run_clm[600], run_mlm[600], run_rtd[600];

static void prepare(const char *tok, const char *text, const char *out) {
    ss_error err = {0};
    const char *paths[] = {text};
    ss_prepare_opts po = {.tokenizer_path = tok, .out_dir = out, .val_fraction = 0.1, .boundary = SS_DOC_BLANK,
                          .nthreads = 1};
    ss_prepare_stats ps;
    CHECK_OK(ss_prepare_corpus(&po, paths, 1, &ps, &err), &err);
}

static void train_tokenizer(const char *text, const char *out) {
    ss_error err = {0};
    const char *specials[] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"};
    ss_bpe_train_opts to = {.vocab_size = 400, .min_frequency = 2, .special_tokens = specials, .n_special = 6};
    const char *paths[] = {text};
    ss_tokenizer *tok;
    CHECK_OK(ss_bpe_train_files(&to, paths, 1, &tok, &err), &err);
    CHECK_OK(ss_tokenizer_save(tok, out, &err), &err);
    ss_tokenizer_free(tok);
}

static void tiny(ss_train_opts *o, ss_objective ob, const char *data, const char *out) {
    ss_train_opts_defaults(o);
    o->objective = ob;
    o->data_dir = data;
    o->out_dir = out;
    o->model = (ss_model_config){.kind = ob == SS_OBJ_CLM ? SS_DECODER : SS_ENCODER, .n_layer = 2, .d_model = 48,
                                 .n_head = 2, .d_ff = 96, .max_seq = 32, .dropout = 0.1f};
    o->seq = 32;
    o->batch = 4;
    o->steps = 12;
    o->lr = 3e-3;
    o->warmup = 2;
    o->eval_every = 12;
    o->eval_tokens = 2048;
    o->save_every = 0;
    o->log_every = 4;
    o->seed = 7;
}

/* A continuation of `init` on `data`: one step at lr 1e-30 (the weights
 * move by ~1e-30: they stay the init run's to float precision), another
 * seed, and a model config that must be ignored. */
static void continuation(ss_train_opts *o, ss_objective ob, const char *init, const char *out) {
    tiny(o, ob, sb, out);
    o->init = init;
    o->steps = 1;
    o->lr = 1e-30;
    o->warmup = 0;
    o->eval_every = 1;
    o->seed = 99;
    o->model.n_layer = 5;
    o->model.d_model = 64;
}

/* Text A (the first 120 KB of tinyshakespeare) and text B (the next
 * 120 KB); tokenizer T on A, tokenizer U (same size) on B. Shards: sa = A
 * with T, sb = B with T, sc = B with U, sd = B with T's tokenizer.json
 * rewritten in another layout (same content, other bytes). */
static int setup(void **state) {
    (void)state;
    ss_error err = {0};
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir());
    char ta[600], tb[600], tok[600], tok2[600];
    snprintf(ta, sizeof ta, "%s/a.txt", tmp);
    snprintf(tb, sizeof tb, "%s/b.txt", tmp);
    snprintf(tok, sizeof tok, "%s/tok.json", tmp);
    snprintf(tok2, sizeof tok2, "%s/tok2.json", tmp);
    snprintf(sa, sizeof sa, "%s/sa", tmp);
    snprintf(sb, sizeof sb, "%s/sb", tmp);
    snprintf(sc, sizeof sc, "%s/sc", tmp);
    snprintf(sd, sizeof sd, "%s/sd", tmp);
    ss_buf b = {0};
    CHECK_OK(ss_read_file(test_data_path("tinyshakespeare", "input.txt"), &b, &err), &err);
    CHECK_OK(ss_write_file_atomic(ta, b.data, 120000, &err), &err);
    CHECK_OK(ss_write_file_atomic(tb, b.data + 120000, 120000, &err), &err);
    ss_buf_free(&b);
    train_tokenizer(ta, tok);
    train_tokenizer(tb, tok2);
    prepare(tok, ta, sa);
    prepare(tok, tb, sb);
    prepare(tok2, tb, sc);
    prepare(tok, tb, sd);
    char path[700];
    snprintf(path, sizeof path, "%s/tokenizer.json", sd);
    CHECK_OK(ss_read_file(path, &b, &err), &err);
    cJSON *j = cJSON_Parse(b.data);
    char *compact = cJSON_PrintUnformatted(j);
    assert_true(strlen(compact) != b.len);
    CHECK_OK(ss_write_file_atomic(path, compact, strlen(compact), &err), &err);
    free(compact);
    cJSON_Delete(j);
    ss_buf_free(&b);
    /* the runs continued from */
    snprintf(run_clm, sizeof run_clm, "%s/clm", tmp);
    snprintf(run_mlm, sizeof run_mlm, "%s/mlm", tmp);
    snprintf(run_rtd, sizeof run_rtd, "%s/rtd", tmp);
    ss_train_opts o;
    tiny(&o, SS_OBJ_CLM, sa, run_clm);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    tiny(&o, SS_OBJ_MLM, sa, run_mlm);
    o.steps = 6;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    tiny(&o, SS_OBJ_RTD, sa, run_rtd);
    o.steps = 6;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    return 0;
}

typedef struct {
    ss_train_models tm;
    ss_train_state st;
    char *opts;
} ckpt;

static void load(ckpt *c, const char *run) {
    ss_error err = {0};
    int prev;
    CHECK_OK(ss_checkpoint_load(run, &c->tm, &c->st, &c->opts, &prev, &err), &err);
    assert_int_equal(prev, 0);
}

static void unload(ckpt *c) {
    ss_model_free(c->tm.gen);
    ss_model_free(c->tm.model);
    ss_adamw_free(&c->tm.opt);
    ss_adamw_free(&c->tm.gen_opt);
    free(c->opts);
}

/* Largest |a - b| over floats [from, to) of two models' flat parameters. */
static double max_diff(ss_model *a, ss_model *b, size_t from, size_t to) {
    assert_true(to <= ss_model_num_params(a) && to <= ss_model_num_params(b));
    const float *pa = ss_model_params(a), *pb = ss_model_params(b);
    double d = 0;
    for (size_t i = from; i < to; i++) d = fmax(d, fabs((double)pa[i] - pb[i]));
    return d;
}

static double all_diff(ss_model *a, ss_model *b) {
    assert_int_equal(ss_model_num_params(a), ss_model_num_params(b));
    return max_diff(a, b, 0, ss_model_num_params(a));
}

static double metric_at(const char *run, const char *key, int64_t step) {
    char path[700], line[4096], want[64], k[64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    snprintf(want, sizeof want, "{\"step\":%lld,", (long long)step);
    snprintf(k, sizeof k, "\"%s\":", key);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    double v = NAN;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, want, strlen(want)) && strstr(line, k)) v = atof(strstr(line, k) + strlen(k));
    fclose(f);
    return v;
}

static void test_clm_starts_from_init_weights(void **state) {
    (void)state;
    ss_error err = {0};
    char b_run[700], c_run[700], path[800];
    snprintf(b_run, sizeof b_run, "%s/clm-b", tmp);
    snprintf(c_run, sizeof c_run, "%s/clm-control", tmp);
    ss_train_opts o;
    continuation(&o, SS_OBJ_CLM, run_clm, b_run);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    o.init = NULL; /* the control: the same run from random weights (a 2-layer d 48 model) */
    o.out_dir = c_run;
    o.model.n_layer = 2;
    o.model.d_model = 48;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    ckpt a, b, c;
    load(&a, run_clm);
    load(&b, b_run);
    load(&c, c_run);
    /* the architecture is the init run's, not o.model's */
    const ss_model_config *ca = ss_model_config_of(a.tm.model), *cb = ss_model_config_of(b.tm.model);
    assert_int_equal(cb->n_layer, 2);
    assert_int_equal(cb->d_model, ca->d_model);
    assert_int_equal(cb->vocab_size, ca->vocab_size);
    double d_init = all_diff(a.tm.model, b.tm.model), d_ctrl = all_diff(a.tm.model, c.tm.model);
    printf("# clm: max |weight difference| from the init run: continued %.3g, control %.3g\n", d_init, d_ctrl);
    assert_true(d_init <= 1e-6);
    assert_true(d_ctrl > 1e-2);
    /* a fresh optimizer and step: one step, one AdamW update */
    assert_int_equal(b.st.step, 1);
    assert_int_equal(b.tm.opt.t, 1);
    assert_int_equal(a.st.step, 12);
    /* its first evaluation is the init run's loss on the new data */
    ss_token_split val;
    ss_eval_result r;
    CHECK_OK(ss_token_split_load(&val, sb, "val", &err), &err);
    CHECK_OK(ss_evaluate_clm(a.tm.model, &val, 4, 32, 2048, NULL, NULL, &r, &err), &err);
    double vb = metric_at(b_run, "val_loss", 1), vc = metric_at(c_run, "val_loss", 1);
    printf("# val loss on the new text: init run %.6f, continued (step 1) %.6f, control %.6f\n", r.loss, vb, vc);
    assert_true(fabs(vb - r.loss) <= 1e-5 * r.loss);
    assert_true(fabs(vc - r.loss) > 0.1);
    ss_token_split_free(&val);
    /* the record: RUN, its step and the sha256 of its weights */
    char sha[65];
    snprintf(path, sizeof path, "%s/model.safetensors", run_clm);
    CHECK_OK(ss_sha256_file(path, sha, &err), &err);
    assert_string_equal(b.st.init_sha256, sha);
    assert_int_equal(b.st.init_step, 12);
    assert_string_equal(c.st.init_sha256, "");
    snprintf(path, sizeof path, "%s/trainer_state.json", b_run);
    ss_buf txt = {0};
    CHECK_OK(ss_read_file(path, &txt, &err), &err);
    cJSON *j = cJSON_Parse(txt.data);
    const cJSON *in = cJSON_GetObjectItem(j, "init"), *opts = cJSON_GetObjectItem(j, "options");
    assert_string_equal(cJSON_GetObjectItem(in, "run")->valuestring, run_clm);
    assert_int_equal(cJSON_GetObjectItem(in, "step")->valueint, 12);
    assert_string_equal(cJSON_GetObjectItem(in, "model_sha256")->valuestring, sha);
    assert_string_equal(cJSON_GetObjectItem(opts, "init")->valuestring, run_clm);
    cJSON_Delete(j);
    ss_buf_free(&txt);
    unload(&a), unload(&b), unload(&c);
}

/* A fresh model of cfg with the weights a new run of this seed starts from
 * (and, for rtd, its generator: seed + 1). */
static void fresh(const ss_model_config *cfg, uint64_t seed, double gen_size, ss_model **m, ss_model **g) {
    ss_error err = {0};
    CHECK_OK(ss_model_create(m, cfg, &err), &err);
    ss_model_init_weights(*m, seed);
    if (!g) return;
    ss_model_config gc = ss_electra_generator_config(cfg, gen_size);
    CHECK_OK(ss_model_create_shared(g, &gc, *m, &err), &err);
    ss_model_init_weights(*g, seed + 1);
}

static void test_encoders(void **state) {
    (void)state;
    ss_error err = {0};
    char out[700];
    ss_train_opts o;
    ckpt m, r, x;
    load(&m, run_mlm);
    load(&r, run_rtd);
    size_t head = ss_model_head_offset(m.tm.model), n = ss_model_num_params(m.tm.model);

    /* mlm from an mlm run: body and MLM head */
    snprintf(out, sizeof out, "%s/mlm-from-mlm", tmp);
    continuation(&o, SS_OBJ_MLM, run_mlm, out);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    load(&x, out);
    printf("# mlm from mlm: body %.3g, head %.3g\n", max_diff(m.tm.model, x.tm.model, 0, head),
           max_diff(m.tm.model, x.tm.model, head, n));
    assert_true(all_diff(m.tm.model, x.tm.model) <= 1e-6);
    unload(&x);

    /* rtd from an mlm run: the discriminator's body; its head and the generator fresh */
    snprintf(out, sizeof out, "%s/rtd-from-mlm", tmp);
    continuation(&o, SS_OBJ_RTD, run_mlm, out);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    load(&x, out);
    ss_model *f, *fg;
    fresh(ss_model_config_of(x.tm.model), 99, o.gen_size, &f, &fg);
    size_t dhead = ss_model_head_offset(x.tm.model), dn = ss_model_num_params(x.tm.model);
    assert_int_equal(dhead, head);
    double body = max_diff(m.tm.model, x.tm.model, 0, head);
    double dh = max_diff(f, x.tm.model, dhead, dn), gen = all_diff(fg, x.tm.gen);
    printf("# rtd from mlm: body vs the mlm run %.3g; disc head vs a fresh one %.3g; generator vs a fresh one %.3g\n",
           body, dh, gen);
    assert_true(body <= 1e-6 && dh <= 1e-6 && gen <= 1e-6);
    assert_true(max_diff(f, x.tm.model, 0, dhead) > 1e-2); /* the body is not the fresh one */
    ss_model_free(fg);
    ss_model_free(f);
    unload(&x);

    /* rtd from an rtd run: discriminator (body and head) and generator */
    snprintf(out, sizeof out, "%s/rtd-from-rtd", tmp);
    continuation(&o, SS_OBJ_RTD, run_rtd, out);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    load(&x, out);
    printf("# rtd from rtd: discriminator %.3g, generator %.3g\n", all_diff(r.tm.model, x.tm.model),
           all_diff(r.tm.gen, x.tm.gen));
    assert_true(all_diff(r.tm.model, x.tm.model) <= 1e-6 && all_diff(r.tm.gen, x.tm.gen) <= 1e-6);
    unload(&x);

    /* mlm from an rtd run: the discriminator's body, a fresh MLM head */
    snprintf(out, sizeof out, "%s/mlm-from-rtd", tmp);
    continuation(&o, SS_OBJ_MLM, run_rtd, out);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    load(&x, out);
    fresh(ss_model_config_of(x.tm.model), 99, 0, &f, NULL);
    assert_true(max_diff(r.tm.model, x.tm.model, 0, head) <= 1e-6);
    assert_true(max_diff(f, x.tm.model, head, ss_model_num_params(x.tm.model)) <= 1e-6);
    ss_model_free(f);
    unload(&x);

    /* the generator of an rtd run has its --gen-size: another one is an error naming it */
    snprintf(out, sizeof out, "%s/rtd-gen-size", tmp);
    continuation(&o, SS_OBJ_RTD, run_rtd, out);
    o.gen_size = 0.5;
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_ARG);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "--gen-size 0.5"));

    /* the objective decides the kind: an mlm run continued with clm is a decoder with the mlm run's body
     * (and the tied LM head, which has no weights of its own) */
    snprintf(out, sizeof out, "%s/clm-from-mlm", tmp);
    continuation(&o, SS_OBJ_CLM, run_mlm, out);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    load(&x, out);
    assert_int_equal(ss_model_config_of(x.tm.model)->kind, SS_DECODER);
    assert_int_equal(ss_model_head_offset(x.tm.model), head);
    assert_int_equal(ss_model_num_params(x.tm.model), head);
    assert_true(max_diff(m.tm.model, x.tm.model, 0, head) <= 1e-6);
    unload(&x);
    /* and a clm run continued with mlm an encoder with the decoder's body and a fresh MLM head */
    snprintf(out, sizeof out, "%s/mlm-from-clm", tmp);
    continuation(&o, SS_OBJ_MLM, run_clm, out);
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    load(&x, out);
    ckpt c;
    load(&c, run_clm);
    assert_int_equal(ss_model_config_of(x.tm.model)->kind, SS_ENCODER);
    fresh(ss_model_config_of(x.tm.model), 99, 0, &f, NULL);
    body = max_diff(c.tm.model, x.tm.model, 0, head);
    printf("# mlm from clm: body vs the clm run %.3g\n", body);
    assert_true(body <= 1e-6);
    assert_true(max_diff(f, x.tm.model, head, ss_model_num_params(x.tm.model)) <= 1e-6);
    ss_model_free(f);
    unload(&c);
    unload(&x);
    unload(&m), unload(&r);
}

static void test_tokenizer_and_missing_run(void **state) {
    (void)state;
    ss_error err = {0};
    char out[700], nope[700], tok[700], tok_init[700];
    snprintf(out, sizeof out, "%s/errors", tmp);
    ss_train_opts o;
    /* another tokenizer of the same size: an error naming both files */
    continuation(&o, SS_OBJ_CLM, run_clm, out);
    o.data_dir = sc;
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_ARG);
    printf("# %s\n", err.msg);
    snprintf(tok, sizeof tok, "%s/tokenizer.json", sc);
    snprintf(tok_init, sizeof tok_init, "%s/tokenizer.json", run_clm);
    assert_non_null(strstr(err.msg, tok));
    assert_non_null(strstr(err.msg, tok_init));
    /* the same tokenizer written in another layout (other bytes, same content) is the same */
    o.data_dir = sd;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    /* a run directory that does not exist */
    snprintf(nope, sizeof nope, "%s/no-such-run", tmp);
    continuation(&o, SS_OBJ_CLM, nope, out);
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_NOT_FOUND);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, nope));
    assert_non_null(strstr(err.msg, "--init"));
    /* a directory that is not a model */
    continuation(&o, SS_OBJ_CLM, sb, out);
    assert_int_equal(ss_pretrain(&o, NULL, NULL, &err), SS_ERR_NOT_FOUND);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "no config.json"));
}

/* A continued run interrupted and resumed ends bit-identical to one never
 * stopped, and keeps its record of the init run; --resume with another
 * --init is an error naming it. */
static void test_resume(void **state) {
    (void)state;
    ss_error err = {0};
    char full[700], cut[700];
    snprintf(full, sizeof full, "%s/cont-full", tmp);
    snprintf(cut, sizeof cut, "%s/cont-cut", tmp);
    ss_train_opts o;
    continuation(&o, SS_OBJ_CLM, run_clm, full);
    o.steps = 8;
    o.lr = 1e-3;
    o.eval_every = 4;
    CHECK_OK(ss_pretrain(&o, NULL, NULL, &err), &err);
    o.out_dir = cut;
    CHECK_OK(run_interrupted(o, 4, 4, 0, &err), &err);
    ckpt a, b;
    load(&a, full);
    load(&b, cut);
    assert_int_equal(b.st.step, 8);
    assert_memory_equal(ss_model_params(a.tm.model), ss_model_params(b.tm.model),
                        ss_model_num_params(a.tm.model) * sizeof(float));
    assert_string_equal(a.st.init_sha256, b.st.init_sha256);
    assert_int_equal(b.st.init_step, 12);
    unload(&a), unload(&b);
    ss_train_opts r;
    ss_train_opts_defaults(&r);
    r.out_dir = cut;
    r.resume = 1;
    r.init = run_clm; /* the same: resumes */
    r.steps = 9;
    CHECK_OK(ss_pretrain(&r, NULL, NULL, &err), &err);
    r.init = run_mlm;
    r.steps = 10;
    assert_int_equal(ss_pretrain(&r, NULL, NULL, &err), SS_ERR_ARG);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "--init"));
    /* a run saved before --init existed (no "init" among its options) resumes as a run from random weights */
    ss_train_opts s;
    int64_t total;
    char *keep;
    ss_train_opts_defaults(&s);
    CHECK_OK(ss_train_opts_from_json(&s, &total, "{\"objective\":\"clm\",\"data_dir\":\"/d\",\"seq\":32,\"batch\":4,"
             "\"grad_accum\":1,\"total_steps\":8,\"lr\":0.003,\"lr_min\":0.0003,\"warmup\":2,\"weight_decay\":0.1,"
             "\"clip\":1,\"beta1\":0.9,\"beta2\":0.95,\"eps\":1e-08,\"seed\":\"7\",\"eval_tokens\":2048,"
             "\"mask_prob\":0.15,\"mask_replace\":0.8,\"mask_random\":0.1,\"whole_word\":0,\"gen_size\":0.25,"
             "\"disc_weight\":50}", "old", &keep, &err), &err);
    assert_null(s.init);
    free(keep);
}

int main(void) {
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clm_starts_from_init_weights),
        cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_tokenizer_and_missing_run),
        cmocka_unit_test(test_resume),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
