/* Prompt-based fine-tuning (ss_finetune with a template and a verbalizer)
 * on a synthetic keyword task ("good" / "bad" among filler words), from
 * "pretrained" runs made here (a decoder with an LM head, an encoder with an
 * MLM head, GPT-2 initialisation):
 *   - both learn the task through their LM head's verbalizer logits, the
 *     loss falls, and the directory (head lm/mlm + prompt.json) reloads into
 *     a classifier that reproduces eval.json's dev accuracy in any batch
 *     size, with the probabilities the verbalizer head gives; so does a
 *     verbalizer of several words per label (what classify scores over the
 *     whole vocabulary, log sum P(word), is what was trained);
 *   - the run starts from every pretrained weight, the head's included;
 *   - an interrupted and resumed run ends bit-identical to one never
 *     stopped (the prompt is part of the checkpoint's options; another
 *     template on resume is an error naming it); options saved before the
 *     prompt options existed still read;
 *   - the default learning rate and layer decay by rows, and self-training's
 *     student keeping its teacher's (its rows are mostly pseudo-labels);
 *   - the errors: a template without verbalizer, no --init, a frozen body, a
 *     pooling, a word of several tokens (alone or beside another word), a
 *     label without word, a model without LM head. */
#include <math.h>
#include <omp.h>

#include <cJSON.h>

#include "testutil.h"
#include "keyword_data.h"

#include "selfsup/finetune.h"
#include "selfsup/gemm.h"
#include "selfsup/infer.h"
#include "selfsup/io.h"
#include "selfsup/labeled.h"
#include "selfsup/model.h"
#include "selfsup/prompt.h"
#include "selfsup/selftrain.h"
#include "selfsup/tokenizer.h"
#include "selfsup/train.h"

enum { N_TRAIN = 320, N_DEV = 100, BATCH = 16, SEQ = 32 };

static char g_dir[256], g_train[512], g_dev[512], g_dec[512], g_enc[512], g_cls[512];
static ss_tokenizer *g_tok;

static char *path_in(const char *dir, const char *name) {
    static char p[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* A "pretrained" run directory: GPT-2 initialisation, the tokenizer. */
static void make_run(const char *dir, ss_model_kind kind, ss_head_kind head) {
    ss_error err = {0};
    ss_model_config c = {.kind = kind, .vocab_size = (int)ss_tokenizer_vocab_size(g_tok), .n_layer = 1,
                         .d_model = 32, .n_head = 2, .d_ff = 64, .max_seq = 64, .head = head, .n_classes = 2,
                         .pooling = SS_POOL_CLS};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, 5);
    CHECK_OK(ss_model_save(m, dir, NULL, 0, &err), &err);
    CHECK_OK(ss_tokenizer_save(g_tok, path_in(dir, "tokenizer.json"), &err), &err);
    ss_model_free(m);
}

static int setup(void **state) {
    (void)state;
    char corpus[512];
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir());
    g_tok = kw_make_task(g_dir, N_TRAIN, N_DEV, g_train, g_dev, corpus, sizeof corpus);
    snprintf(g_dec, sizeof g_dec, "%s/clm", g_dir);
    snprintf(g_enc, sizeof g_enc, "%s/mlm", g_dir);
    snprintf(g_cls, sizeof g_cls, "%s/cls", g_dir);
    make_run(g_dec, SS_DECODER, SS_HEAD_LM);
    make_run(g_enc, SS_ENCODER, SS_HEAD_MLM);
    make_run(g_cls, SS_ENCODER, SS_HEAD_CLS);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ss_tokenizer_free(g_tok);
    return 0;
}

static const char *const ENC_TPL[] = {"{text} It was [MASK]."}, *const DEC_TPL[] = {"{text} It was"};
static const char *tpl_of(ss_model_kind kind) { return kind == SS_ENCODER ? ENC_TPL[0] : DEC_TPL[0]; }
/* --template TEXT given once */
static ss_strs one_template(ss_model_kind kind) { return (ss_strs){kind == SS_ENCODER ? ENC_TPL : DEC_TPL, 1}; }

static void pt_opts(ss_finetune_opts *o, ss_model_kind kind, const char *out) {
    ss_finetune_opts_defaults(o);
    o->init = kind == SS_ENCODER ? g_enc : g_dec;
    o->train_path = g_train;
    o->dev_path = g_dev;
    o->out_dir = out;
    o->epochs = 4;
    o->batch = BATCH;
    o->max_seq = SEQ;
    o->lr = 2e-3;
    o->dropout = 0.0;
    o->seed = 3;
    o->template = one_template(kind);
    o->verbalizer = "neg=bad;pos=good";
    /* fp32: the checks compare batch sizes to 1e-5; with bf16 products (the
     * default on a CPU with fast native bf16) one row and many rows round
     * differently (selfsup's one-row kernels against oneDNN's), by ~1e-3 */
    o->precision = SS_PRECISION_FP32;
}

static cJSON *read_json(const char *path) {
    ss_error err = {0};
    ss_buf b = {0};
    CHECK_OK(ss_read_file(path, &b, &err), &err);
    CHECK_OK(ss_buf_append(&b, "", 1, &err), &err);
    cJSON *j = cJSON_Parse(b.data);
    ss_buf_free(&b);
    if (!j) fail_msg("%s is not JSON", path);
    return j;
}

/* Mean train loss of the first and of the last metrics line. */
static void first_last_loss(const char *dir, double *first, double *last) {
    ss_error err = {0};
    ss_buf b = {0};
    CHECK_OK(ss_read_file(path_in(dir, "metrics.jsonl"), &b, &err), &err);
    CHECK_OK(ss_buf_append(&b, "", 1, &err), &err);
    *first = *last = NAN;
    for (char *line = strtok(b.data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "loss");
        if (cJSON_IsNumber(l)) {
            if (isnan(*first)) *first = l->valuedouble;
            *last = l->valuedouble;
        }
        cJSON_Delete(j);
    }
    ss_buf_free(&b);
}

/* Dev accuracy of the directory through ss_classifier_load + ss_classify;
 * probs_out (N_DEV x 2, may be NULL) receives the probabilities. */
static double reload_accuracy_n(const char *dir, int batch, float *probs_out, int n_templates) {
    ss_error err = {0};
    ss_classifier c;
    CHECK_OK(ss_classifier_load(&c, dir, &err), &err);
    assert_int_equal(c.n_prompts, n_templates);
    ss_labeled_set dev;
    CHECK_OK(ss_labeled_read(&dev, g_dev, NULL, &err), &err);
    float probs[N_DEV * 2];
    CHECK_OK(ss_classify(&c, dev.texts, dev.n, batch, probs, &err), &err);
    size_t right = 0;
    for (size_t i = 0; i < dev.n; i++) {
        int best = probs[i * 2 + 1] > probs[i * 2];
        right += best == ss_label_map_find(&c.labels, dev.labels[i]);
    }
    if (probs_out) memcpy(probs_out, probs, sizeof probs);
    ss_labeled_free(&dev);
    ss_classifier_free(&c);
    return (double)right / N_DEV;
}

static double reload_accuracy(const char *dir, int batch, float *probs_out) {
    return reload_accuracy_n(dir, batch, probs_out, 1);
}

/* The probabilities fine-tuning trains: the verbalizer head's softmax on
 * the reloaded model, one text at a time. */
static void verbalizer_probs(const char *dir, float *probs) {
    ss_error err = {0};
    ss_classifier c;
    CHECK_OK(ss_classifier_load(&c, dir, &err), &err);
    ss_labeled_set dev;
    CHECK_OK(ss_labeled_read(&dev, g_dev, NULL, &err), &err);
    ss_seqs s;
    int32_t *pos, ids[8], labels[8];
    CHECK_OK(ss_prompt_encode(c.prompts[0], dev.texts, dev.n, &s, &pos, &err), &err);
    int W = ss_prompt_num_words(c.prompts[0]);
    assert_true(W <= 8);
    CHECK_OK(ss_prompt_word_tokens(c.prompts[0], ids, labels, &err), &err);
    ss_verbalizer_tokens v = {ids, labels, W, 2};
    for (size_t i = 0; i < dev.n; i++) {
        ss_cls_stats st;
        CHECK_OK(ss_model_body_forward(c.model, s.ids + s.off[i], NULL, 1, (int)ss_seqs_len(&s, i), 0, 0, NULL, &err),
                 &err);
        CHECK_OK(ss_verbalizer_head(c.model, pos + i, 1, &v, NULL, NULL, 0, 0, probs + 2 * i, &st, &err), &err);
    }
    free(pos);
    ss_seqs_free(&s);
    ss_labeled_free(&dev);
    ss_classifier_free(&c);
}

/* verbalizer NULL: pt_opts's one word per label */
static void learns(ss_model_kind kind, const char *verbalizer) {
    ss_error err = {0};
    char out[512];
    snprintf(out, sizeof out, "%s/learn-%s%s", g_dir, ss_model_kind_name(kind), verbalizer ? "-words" : "");
    ss_finetune_opts o;
    pt_opts(&o, kind, out);
    if (verbalizer) o.verbalizer = verbalizer;
    ss_finetune_result r;
    CHECK_OK(ss_finetune(&o, &r, NULL, NULL, &err), &err);
    double first, last;
    first_last_loss(out, &first, &last);
    print_message("prompt-based %s, verbalizer %s: dev accuracy %.3f (best epoch %d), train loss %.3f -> %.3f\n",
                  ss_model_kind_name(kind), o.verbalizer, r.dev.accuracy, r.best_epoch, first, last);
    assert_true(r.dev.accuracy > 0.9);
    assert_true(last < 0.5 * first);
    assert_true(ss_file_exists(path_in(out, "prompt.json")));
    cJSON *cfg = read_json(path_in(out, "config.json"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cfg, "head")->valuestring, kind == SS_ENCODER ? "mlm" : "lm");
    cJSON_Delete(cfg);
    cJSON *ev = read_json(path_in(out, "eval.json"));
    double acc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "dev"), "accuracy")->valuedouble;
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "template")->valuestring, tpl_of(kind));
    cJSON_Delete(ev);
    assert_true(acc == r.dev.accuracy);
    /* classify on the saved directory: eval.json's accuracy, in any batch size */
    float p64[N_DEV * 2], p1[N_DEV * 2], pv[N_DEV * 2];
    assert_true(reload_accuracy(out, 64, p64) == acc);
    assert_true(reload_accuracy(out, 7, NULL) == acc);
    assert_true(reload_accuracy(out, 1, p1) == acc);
    verbalizer_probs(out, pv);
    for (int i = 0; i < N_DEV * 2; i++) {
        if (fabsf(p64[i] - p1[i]) > 1e-5f) fail_msg("row %d: batch 64 %g, batch 1 %g", i / 2, p64[i], p1[i]);
        if (fabsf(p64[i] - pv[i]) > 1e-5f) fail_msg("row %d: classify %g, verbalizer head %g", i / 2, p64[i], pv[i]);
    }
    ss_finetune_result_free(&r);
}

static void test_decoder_learns(void **state) {
    (void)state;
    learns(SS_DECODER, NULL);
}

static void test_encoder_learns(void **state) {
    (void)state;
    learns(SS_ENCODER, NULL);
}

/* Several words per label, in any order: the class logit is the
 * log-sum-exp of its words' logits, and the reloaded classifier (which
 * scores log sum P(word) over the whole vocabulary) gives the same
 * probabilities. */
static void test_several_words_learn(void **state) {
    (void)state;
    learns(SS_DECODER, "pos=good,film;neg=bad,plot,story");
    learns(SS_ENCODER, "neg=bad,plot;pos=good,film,cast");
}

/* Several templates (--template twice): every training row through each
 * (twice one template's steps), eval.json and prompt.json list them, and
 * the directory reloads into a classifier of both that reproduces
 * eval.json's dev accuracy with the normalized geometric mean of each
 * template's probabilities (checked by hand against each alone). */
static void test_several_templates_learn(void **state) {
    (void)state;
    ss_error err = {0};
    char out[512];
    snprintf(out, sizeof out, "%s/learn-two-templates", g_dir);
    static const char *const two[] = {"{text} It was", "Review: {text} All in all, it was"};
    ss_finetune_opts o;
    pt_opts(&o, SS_DECODER, out);
    o.template = (ss_strs){two, 2};
    ss_finetune_result r;
    CHECK_OK(ss_finetune(&o, &r, NULL, NULL, &err), &err);
    print_message("prompt-based decoder, two templates: dev accuracy %.3f in %lld steps\n", r.dev.accuracy,
                  (long long)r.steps);
    assert_true(r.dev.accuracy > 0.9);
    assert_int_equal(r.steps, 2 * ((N_TRAIN + BATCH - 1) / BATCH) * o.epochs);
    assert_int_equal(r.train_rows, N_TRAIN);
    const char *files[] = {"eval.json", "prompt.json"};
    for (int f = 0; f < 2; f++) {
        cJSON *j = read_json(path_in(out, files[f]));
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "template");
        assert_true(cJSON_IsArray(t) && cJSON_GetArraySize(t) == 2);
        for (int i = 0; i < 2; i++) assert_string_equal(cJSON_GetArrayItem(t, i)->valuestring, two[i]);
        cJSON_Delete(j);
    }
    float both[N_DEV * 2], each[2][N_DEV * 2];
    assert_true(reload_accuracy_n(out, 64, both, 2) == r.dev.accuracy);
    assert_true(reload_accuracy_n(out, 5, NULL, 2) == r.dev.accuracy);
    ss_labeled_set dev;
    CHECK_OK(ss_labeled_read(&dev, g_dev, NULL, &err), &err);
    for (int t = 0; t < 2; t++) { /* each template alone, through the same fine-tuned model */
        ss_classifier c;
        ss_prompt_spec spec = {two[t], "neg=bad;pos=good", 0};
        CHECK_OK(ss_classifier_load_prompt(&c, out, &spec, 1, &err), &err);
        CHECK_OK(ss_classify(&c, dev.texts, dev.n, 64, each[t], &err), &err);
        ss_classifier_free(&c);
    }
    ss_labeled_free(&dev);
    /* in log-odds (fine-tuned through both, the templates nearly agree:
     * probabilities would hide the difference) */
    double apart = 0;
    for (int i = 0; i < N_DEV; i++) {
        double odds[2];
        for (int t = 0; t < 2; t++) odds[t] = log(each[t][2 * i + 1]) - log(each[t][2 * i]);
        double want = 0.5 * (odds[0] + odds[1]), got = log(both[2 * i + 1]) - log(both[2 * i]);
        if (fabs(got - want) > 1e-4) fail_msg("row %d: classify's log-odds %g, by hand %g", i, got, want);
        apart = fmax(apart, fabs(odds[0] - odds[1]));
    }
    print_message("the two templates' log-odds differ by up to %.4f\n", apart);
    assert_true(apart > 2e-3); /* the mean is neither template alone */
    ss_finetune_result_free(&r);
}

static void lr_note(void *ctx, const ss_finetune_progress *p) {
    if (p->message && strstr(p->message, "learning rate")) snprintf(ctx, 256, "%s", p->message);
}

/* --lr 0 and --layer-decay 0 (the defaults) for prompt-based fine-tuning:
 * a decoder on fewer than 1,000 rows lr 1e-5 without decay, on more 2e-4
 * with layer decay 0.8 (the learning study's SST-2 measurements,
 * finetune.c's auto_hparams); an encoder 2e-4 without decay. The values
 * chosen are the ones eval.json records and the note names. */
static void test_default_lr(void **state) {
    (void)state;
    ss_error err = {0};
    char big[512];
    snprintf(big, sizeof big, "%s/train1000.tsv", g_dir);
    kw_write_tsv(big, 1000, NULL, 0);
    struct {
        ss_model_kind kind;
        const char *train, *name, *note;
        double lr, decay;
    } cases[] = {{SS_DECODER, g_train, "lr-dec-few", "a decoder on fewer than 1,000 rows", 1e-5, 1.0},
                 {SS_DECODER, big, "lr-dec-many", "a decoder on at least 1,000 rows", 2e-4, 0.8},
                 {SS_ENCODER, g_train, "lr-enc", "prompt-based fine-tuning of an encoder", 2e-4, 1.0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[512], note[256] = "";
        snprintf(out, sizeof out, "%s/%s", g_dir, cases[i].name);
        ss_finetune_opts o;
        pt_opts(&o, cases[i].kind, out);
        o.train_path = cases[i].train;
        o.epochs = 1;
        o.lr = 0;
        o.layer_decay = 0;
        ss_finetune_result r;
        CHECK_OK(ss_finetune(&o, &r, lr_note, note, &err), &err);
        ss_finetune_result_free(&r);
        cJSON *ev = read_json(path_in(out, "eval.json"));
        double lr = cJSON_GetObjectItemCaseSensitive(ev, "lr")->valuedouble;
        double decay = cJSON_GetObjectItemCaseSensitive(ev, "layer_decay")->valuedouble;
        cJSON_Delete(ev);
        if (fabs(lr - cases[i].lr) > 1e-12 || fabs(decay - cases[i].decay) > 1e-12 || !strstr(note, cases[i].note))
            fail_msg("%s: lr %g, layer decay %g, note '%s'; want %g, %g and '%s'", cases[i].name, lr, decay, note,
                     cases[i].lr, cases[i].decay, cases[i].note);
    }
}

/* Self-training with the defaults: the student's rows (320 labelled + about
 * 1,200 pseudo-labels) pass 1,000, where a decoder's prompt-based default
 * would become lr 2e-4 with layer decay 0.8; the student keeps what its
 * teacher resolved from the 320 labelled rows (1e-5, no decay), and says
 * so. The teacher starts from a model that knows the task (prompt-based
 * fine-tuning at 2e-3 first), so that both classes get pseudo-labels. */
static void test_selftrain_student_keeps_teacher_lr(void **state) {
    (void)state;
    ss_error err = {0};
    char init[512], out[512], pool[512], note[256] = "";
    snprintf(init, sizeof init, "%s/st-init", g_dir);
    snprintf(out, sizeof out, "%s/st", g_dir);
    snprintf(pool, sizeof pool, "%s/pool.tsv", g_dir);
    kw_write_tsv(pool, 1200, NULL, 0);
    ss_finetune_opts o;
    pt_opts(&o, SS_DECODER, init);
    ss_finetune_result fr;
    CHECK_OK(ss_finetune(&o, &fr, NULL, NULL, &err), &err);
    ss_finetune_result_free(&fr);
    pt_opts(&o, SS_DECODER, out);
    o.init = init;
    o.epochs = 1;
    o.lr = 0;
    o.layer_decay = 0;
    o.unlabeled = pool;
    o.rounds = 1;
    o.threshold = 0.5;
    ss_selftrain_result r;
    CHECK_OK(ss_selftrain(&o, &r, lr_note, note, &err), &err);
    assert_int_equal(r.n, 2);
    for (int k = 0; k < 2; k++) {
        cJSON *ev = read_json(path_in(out, k ? "round-1/eval.json" : "round-0/eval.json"));
        double lr = cJSON_GetObjectItemCaseSensitive(ev, "lr")->valuedouble;
        double decay = cJSON_GetObjectItemCaseSensitive(ev, "layer_decay")->valuedouble;
        double rows = cJSON_GetObjectItemCaseSensitive(ev, "train_rows")->valuedouble;
        cJSON_Delete(ev);
        if (k == 1 && rows < 1000) fail_msg("the student trained on %g rows: the test needs at least 1,000", rows);
        if (fabs(lr - 1e-5) > 1e-12 || fabs(decay - 1.0) > 1e-12)
            fail_msg("round %d (%g rows): lr %g, layer decay %g; want the teacher's 1e-5 and 1", k, rows, lr, decay);
    }
    if (!strstr(note, "first teacher's learning rate 1e-05 and layer decay 1"))
        fail_msg("no note of the inherited values: last note '%s'", note);
    ss_selftrain_result_free(&r);
}

/* The GEMM backend in use when self-training announces its labelling. */
static void backend_note(void *ctx, const ss_finetune_progress *p) {
    if (p->message && strstr(p->message, ", labelling: ")) *(int *)ctx = (int)ss_gemm_current();
}

/* Self-training resumed after its teacher finished (round 1 removed, round
 * 0 kept) labels the pool with the matrix products --precision chooses, as
 * the uninterrupted run did, not with whatever backend the process last
 * used (here OpenBLAS, set on purpose; the probe's numbers make oneDNN f32
 * the fp32 choice): the same backend, and the same pseudo-labels, bit for
 * bit. Before, a resumed run labelled with the library's default backend. */
static void test_selftrain_resumed_labels_alike(void **state) {
    (void)state;
    if (!ss_gemm_available(SS_GEMM_DNNL_F32)) skip();
    ss_error err = {0};
    char out[512], pool[512], first[700], again[700], cmd[2600];
    snprintf(out, sizeof out, "%s/st-labelling", g_dir);
    snprintf(pool, sizeof pool, "%s/pool.tsv", g_dir);
    kw_write_tsv(pool, 300, NULL, 0);
    double peak[SS_GEMM_N_BACKENDS] = {0};
    peak[SS_GEMM_OPENBLAS] = 10;
    peak[SS_GEMM_DNNL_F32] = 100;
    ss_gemm_set_probe(peak);
    ss_finetune_opts o;
    pt_opts(&o, SS_DECODER, out);
    o.init = g_dec;
    o.epochs = 1;
    o.unlabeled = pool;
    o.rounds = 1;
    o.threshold = 0;
    o.precision = SS_PRECISION_FP32;
    int used[2] = {-1, -1};
    for (int run = 0; run < 2; run++) {
        CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
        ss_selftrain_result r;
        CHECK_OK(ss_selftrain(&o, &r, backend_note, &used[run], &err), &err);
        assert_int_equal(r.n, 2);
        ss_selftrain_result_free(&r);
        snprintf(run ? again : first, 700, run ? "%s/round-1/train.jsonl" : "%s/first-train.jsonl", out);
        if (run == 0) { /* keep the first labels, then drop round 1: the next run redoes it from the kept teacher */
            snprintf(cmd, sizeof cmd, "cp '%s/round-1/train.jsonl' '%s' && rm -rf '%s/round-1'", out, first, out);
            assert_int_equal(system(cmd), 0);
        }
    }
    if (used[0] != SS_GEMM_DNNL_F32 || used[1] != SS_GEMM_DNNL_F32)
        fail_msg("labelled with %s, then (resumed) with %s; want %s both times",
                 used[0] < 0 ? "(no note)" : ss_gemm_backend_name((ss_gemm_backend)used[0]),
                 used[1] < 0 ? "(no note)" : ss_gemm_backend_name((ss_gemm_backend)used[1]),
                 ss_gemm_backend_name(SS_GEMM_DNNL_F32));
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", first, again);
    assert_int_equal(system(cmd), 0);
    ss_gemm_probe(NULL); /* the later tests choose from this machine's measurements again */
}

/* With a learning rate of 1e-9 the fine-tuned model is the pretrained one:
 * every tensor (the MLM head's too) was loaded, none re-initialised. */
static void test_starts_from_pretrained_head(void **state) {
    (void)state;
    ss_error err = {0};
    char out[512];
    snprintf(out, sizeof out, "%s/tiny-lr", g_dir);
    ss_finetune_opts o;
    pt_opts(&o, SS_ENCODER, out);
    o.lr = 1e-9;
    o.epochs = 1;
    ss_finetune_result r;
    CHECK_OK(ss_finetune(&o, &r, NULL, NULL, &err), &err);
    ss_finetune_result_free(&r);
    ss_model *a, *b;
    CHECK_OK(ss_model_load(&a, g_enc, &err), &err);
    CHECK_OK(ss_model_load(&b, out, &err), &err);
    assert_int_equal(ss_model_num_tensors(a), ss_model_num_tensors(b));
    for (size_t t = 0; t < ss_model_num_tensors(b); t++) {
        const ss_param_info *ta = ss_model_tensor(a, t), *tb = ss_model_tensor(b, t);
        assert_string_equal(ta->name, tb->name);
        for (size_t k = 0; k < tb->numel; k++) {
            float x = ss_model_params(a)[ta->offset + k], y = ss_model_params(b)[tb->offset + k];
            if (fabsf(x - y) > 1e-5f) fail_msg("%s[%zu]: pretrained %g, fine-tuned %g", tb->name, k, x, y);
        }
    }
    ss_model_free(a);
    ss_model_free(b);
}

/* ---- resume ---------------------------------------------------------------------------- */

typedef struct {
    int64_t stop_at;
    volatile int *stop;
} stopper;

static void stop_cb(void *ctx, const ss_finetune_progress *p) {
    stopper *s = ctx;
    if (p->is_eval && p->step >= s->stop_at) *s->stop = 1;
}

static void test_resume_is_bit_identical(void **state) {
    (void)state;
    ss_error err = {0};
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/resume-a", g_dir);
    snprintf(b, sizeof b, "%s/resume-b", g_dir);
    ss_finetune_opts o;
    pt_opts(&o, SS_DECODER, a);
    static const char *const two[] = {"{text} It was", "{text} Overall it was"};
    o.template = (ss_strs){two, 2}; /* a list read back from the checkpoint's options */
    o.epochs = 1;
    o.eval_every = 5;
    o.dropout = 0.1;
    ss_finetune_result ra, rb;
    CHECK_OK(ss_finetune(&o, &ra, NULL, NULL, &err), &err);
    o.out_dir = b;
    volatile int stop = 0;
    stopper s = {10, &stop};
    o.stop = &stop;
    CHECK_OK(ss_finetune(&o, &rb, stop_cb, &s, &err), &err);
    ss_finetune_result_free(&rb);
    assert_true(stop && ss_file_exists(path_in(b, "checkpoint")));
    ss_finetune_opts r;
    ss_finetune_opts_defaults(&r);
    r.out_dir = b;
    r.resume = 1;
    static const char *const other[] = {"{text} It is", "{text} Overall it was"};
    r.template = (ss_strs){other, 2};
    assert_int_equal(ss_finetune(&r, &rb, NULL, NULL, &err), SS_ERR_ARG);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "--template '{text} It is' '{text} Overall it was' differs from the run's "
                                    "'{text} It was' '{text} Overall it was'"));
    r.template = (ss_strs){two, 1}; /* one template fewer is another run too */
    assert_int_equal(ss_finetune(&r, &rb, NULL, NULL, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "--template '{text} It was' differs"));
    r.template = (ss_strs){NULL, 0};
    CHECK_OK(ss_finetune(&r, &rb, NULL, NULL, &err), &err);
    assert_int_equal(ra.steps, rb.steps);
    assert_int_equal(ra.best_step, rb.best_step);
    assert_true(ra.dev.accuracy == rb.dev.accuracy);
    assert_true(reload_accuracy_n(b, 64, NULL, 2) == rb.dev.accuracy);
    ss_model *ma, *mb;
    CHECK_OK(ss_model_load(&ma, a, &err), &err);
    CHECK_OK(ss_model_load(&mb, b, &err), &err);
    assert_memory_equal(ss_model_params(ma), ss_model_params(mb), ss_model_num_params(ma) * sizeof(float));
    ss_model_free(ma);
    ss_model_free(mb);
    ss_finetune_result_free(&ra);
    ss_finetune_result_free(&rb);
}

/* Options saved before --template existed read back without a prompt; the
 * prompt options round-trip: one template saved as a string (as runs saved
 * before --template could repeat have it), several as a list. */
static void test_opts_json(void **state) {
    (void)state;
    ss_error err = {0};
    ss_finetune_opts o, back;
    pt_opts(&o, SS_ENCODER, "/x");
    char *json = ss_finetune_opts_to_json(&o), *keep;
    assert_non_null(strstr(json, "\"template\":\"{text} It was [MASK].\""));
    ss_finetune_opts_defaults(&back);
    CHECK_OK(ss_finetune_opts_from_json(&back, json, "j", &keep, &err), &err);
    assert_int_equal(back.template.n, 1);
    assert_string_equal(back.template.v[0], o.template.v[0]);
    assert_string_equal(back.verbalizer, o.verbalizer);
    free(keep);
    static const char *const three[] = {"{text} It was [MASK].", "[MASK]: {text}", "{text} All in all [MASK]."};
    o.template = (ss_strs){three, 3};
    char *json3 = ss_finetune_opts_to_json(&o);
    CHECK_OK(ss_finetune_opts_from_json(&back, json3, "j", &keep, &err), &err);
    assert_int_equal(back.template.n, 3);
    for (int i = 0; i < 3; i++) assert_string_equal(back.template.v[i], three[i]);
    assert_string_equal(back.verbalizer, o.verbalizer);
    free(keep);
    free(json3);
    const char *bad[] = {"{\"template\": [], ", "{\"template\": [\"a\", 3], ", "{\"template\": 3, "};
    for (int i = 0; i < 3; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s\"verbalizer\": \"n=bad;p=good\"}", bad[i]);
        cJSON *j = cJSON_Parse(json), *t = cJSON_Parse(text);
        cJSON_ReplaceItemInObject(j, "template", cJSON_Duplicate(cJSON_GetObjectItem(t, "template"), 1));
        char *bad_json = cJSON_PrintUnformatted(j);
        assert_int_equal(ss_finetune_opts_from_json(&back, bad_json, "saved.json", &keep, &err), SS_ERR_FORMAT);
        assert_non_null(strstr(err.msg, "saved.json: saved option 'template'"));
        free(keep);
        free(bad_json);
        cJSON_Delete(j);
        cJSON_Delete(t);
    }
    cJSON *j = cJSON_Parse(json);
    cJSON_DeleteItemFromObject(j, "template");
    cJSON_DeleteItemFromObject(j, "verbalizer");
    char *old = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    ss_finetune_opts_defaults(&back);
    back.template = (ss_strs){three, 3};
    CHECK_OK(ss_finetune_opts_from_json(&back, old, "old", &keep, &err), &err);
    assert_int_equal(back.template.n, 0);
    assert_null(back.verbalizer);
    free(keep);
    free(old);
    free(json);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_error(ss_finetune_opts *o, const char *needle) {
    ss_error err = {0};
    ss_finetune_result r;
    ss_status st = ss_finetune(o, &r, NULL, NULL, &err);
    if (st != SS_ERR_ARG || !strstr(err.msg, needle))
        fail_msg("got %s '%s', expected an error with '%s'", ss_status_name(st), err.msg, needle);
    assert_false(ss_file_exists(o->out_dir));
}

static void test_errors(void **state) {
    (void)state;
    char out[512];
    snprintf(out, sizeof out, "%s/never", g_dir);
    ss_finetune_opts o;
    pt_opts(&o, SS_ENCODER, out);
    o.verbalizer = NULL;
    expect_error(&o, "--template and --verbalizer go together");
    pt_opts(&o, SS_ENCODER, out);
    o.init = NULL;
    o.tokenizer = "tok.json";
    expect_error(&o, "needs --init RUN");
    pt_opts(&o, SS_ENCODER, out);
    o.freeze_encoder = 1;
    expect_error(&o, "--freeze-encoder does not go with --template");
    pt_opts(&o, SS_ENCODER, out);
    o.pooling = SS_POOL_MEAN;
    expect_error(&o, "--pooling and --pooler are for a classification head");
    pt_opts(&o, SS_DECODER, out);
    o.attention = 1;
    expect_error(&o, "--attention bidirectional is for a classification head");
    pt_opts(&o, SS_ENCODER, out);
    o.verbalizer = "neg=bad;pos=somewhatgood";
    expect_error(&o, "the verbalizer word 'somewhatgood' (label 'pos') is");
    pt_opts(&o, SS_DECODER, out);
    o.verbalizer = "neg=bad,somewhatbad;pos=good";
    expect_error(&o, "the verbalizer word 'somewhatbad' (label 'neg') is");
    pt_opts(&o, SS_DECODER, out);
    o.verbalizer = "neg=bad;positive=good";
    expect_error(&o, "the verbalizer's label 'positive' is not a label of");
    pt_opts(&o, SS_DECODER, out);
    o.verbalizer = "neg=bad;pos=good;meh=film";
    expect_error(&o, "'meh' is not a label of");
    pt_opts(&o, SS_ENCODER, out);
    o.template = one_template(SS_DECODER);
    expect_error(&o, "an encoder's template needs exactly one");
    /* several templates: each is checked, and all must give the words the same tokens */
    static const char *const enc_dec[] = {"{text} It was [MASK].", "{text} It was"};
    pt_opts(&o, SS_ENCODER, out);
    o.template = (ss_strs){enc_dec, 2};
    expect_error(&o, "an encoder's template needs exactly one");
    static const char *const line_break[] = {"{text} It was", "{text}\nIt was:\n"};
    pt_opts(&o, SS_DECODER, out);
    o.template = (ss_strs){line_break, 2};
    expect_error(&o, "--template '{text}\nIt was:\n' gives the verbalizer's words other tokens than '{text} It was'");
    pt_opts(&o, SS_ENCODER, out);
    o.init = g_cls;
    expect_error(&o, "has a 'cls' head: prompt-based fine-tuning");
}

int main(void) {
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_learns),
        cmocka_unit_test(test_encoder_learns),
        cmocka_unit_test(test_several_words_learn),
        cmocka_unit_test(test_several_templates_learn),
        cmocka_unit_test(test_starts_from_pretrained_head),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_opts_json),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_default_lr),
        cmocka_unit_test(test_selftrain_student_keeps_teacher_lr),
        cmocka_unit_test(test_selftrain_resumed_labels_alike),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
