/* Self-training: a teacher fine-tuned on the labelled rows labels unlabelled
 * text, its confident, class-balanced predictions join the labelled rows,
 * and a student is fine-tuned on both, for a number of rounds (see
 * selfsup/selftrain.h).
 *
 * Under mpirun every round's fine-tuning is data parallel (ss_finetune),
 * and rank 0 alone reads and writes the self-training files (the rounds'
 * rows, pseudo.json, the summary, the copy of the kept round) and labels
 * the unlabelled texts: the other ranks wait for it (from_rank0) and take
 * its decisions and counts, so every rank trains on the same rows, the
 * ones one process would choose. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "selfsup/dist.h"
#include "selfsup/engine.h"
#include "selfsup/infer.h"
#include "selfsup/io.h"
#include "selfsup/labeled.h"
#include "selfsup/path.h"
#include "selfsup/selftrain.h"
#include "selfsup/textstream.h"

/* The unlabelled texts, with gold labels where the file has them. */
typedef struct {
    size_t n;
    char **texts, **gold; /* gold[i] NULL: unknown */
    int is_table;
    ss_labeled_set table; /* a table: owns texts and gold */
    char *lines;          /* text lines: their bytes (texts and gold are arrays of their own) */
} unlabeled_set;

static void unlabeled_free(unlabeled_set *u) {
    if (u->is_table) {
        ss_labeled_free(&u->table);
    } else {
        free(u->texts);
        free(u->gold);
        free(u->lines);
    }
    memset(u, 0, sizeof *u);
}

static int is_text_lines(const char *path) {
    size_t n = strlen(path);
    const char *end = path + n;
    if (n > 4 && !strcmp(end - 4, ".zst")) end -= 4;
    return end - path >= 4 && !strncasecmp(end - 4, ".txt", 4);
}

/* One text per line: empty lines are skipped, invalid UTF-8 is an error
 * naming the line. */
static ss_status read_lines(unlabeled_set *u, const char *path, ss_error *err) {
    ss_textstream *s;
    ss_status st = ss_textstream_open(&s, path, err);
    if (st) return st;
    ss_buf all = {0};
    size_t cap = 0;
    size_t *starts = NULL;
    const char *line;
    size_t len;
    while (!(st = ss_textstream_next_text(s, 1, &line, &len, err)) && line) {
        if (!len) continue;
        if (u->n == cap) {
            cap = cap ? 2 * cap : 1024;
            size_t *g = realloc(starts, cap * sizeof *g);
            if (!g) { st = ss_fail(err, SS_ERR_NOMEM, "out of memory"); break; }
            starts = g;
        }
        starts[u->n++] = all.len;
        if ((st = ss_buf_append(&all, line, len, err)) || (st = ss_buf_append(&all, "", 1, err))) break;
    }
    ss_textstream_close(s);
    if (!st && u->n) {
        u->texts = malloc(u->n * sizeof *u->texts);
        u->gold = calloc(u->n, sizeof *u->gold);
        if (!u->texts || !u->gold) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !st && i < u->n; i++) u->texts[i] = (char *)all.data + starts[i];
    }
    free(starts);
    u->lines = (char *)all.data;
    return st;
}

static ss_status read_unlabeled(unlabeled_set *u, const ss_finetune_opts *o, ss_error *err) {
    memset(u, 0, sizeof *u);
    ss_status st;
    if (is_text_lines(o->unlabeled)) {
        st = read_lines(u, o->unlabeled, err);
    } else {
        ss_labeled_opts lo = {.text_column = o->text_column, .label_column = o->label_column, .format = SS_FMT_AUTO,
                              .skip_bad_rows = o->skip_bad_rows, .need_label = 0};
        u->is_table = 1;
        st = ss_labeled_read(&u->table, o->unlabeled, &lo, err);
        u->n = u->table.n;
        u->texts = u->table.texts;
        u->gold = u->table.labels;
    }
    if (!st && u->n == 0) st = ss_fail(err, SS_ERR_FORMAT, "%s: no texts", o->unlabeled);
    if (st) unlabeled_free(u);
    return st;
}

static void note(ss_finetune_progress_fn fn, void *ctx, const char *msg) {
    if (!fn) return;
    ss_finetune_progress p = {0};
    p.message = msg;
    fn(ctx, &p);
}

/* Under mpirun: the other ranks wait here until rank 0 has done what it
 * alone does (its files written, its decision made), and take its status
 * and the n bytes at buf (NULL: none). A failure on rank 0 is every rank's
 * (the others say so; rank 0's message says why). One process: st. */
static ss_status from_rank0(ss_status st, void *buf, size_t n, ss_error *err) {
    if (ss_dist_size() == 1) return st;
    int32_t code = (int32_t)st;
    ss_error e = {0};
    ss_status bst = ss_dist_bcast(&code, sizeof code, &e);
    if (!bst && !code && buf) bst = ss_dist_bcast(buf, n, &e);
    if (st) return st; /* rank 0's own failure, with its message */
    if (bst) {
        *err = e;
        return bst;
    }
    if (code) return ss_fail(err, (ss_status)code, "self-training: rank 0 failed (its message says why)");
    return SS_OK;
}

/* Whether the run was asked to stop (o->stop, SIGINT). Under mpirun the
 * ranks agree, as the training steps do: one rank's signal stops all, and
 * every rank's o->stop is set then, so that each returns alike. */
static int stopped(const ss_finetune_opts *o) {
    double s = o->stop && *o->stop;
    ss_error e = {0};
    if (ss_dist_size() > 1 && ss_dist_sum_f64(&s, 1, &e)) s = 1; /* the job is failing: stop here */
    if (s > 0 && o->stop) *o->stop = 1;
    return s > 0;
}

static ss_status round_dir(char *out, size_t cap, const char *root, int k, ss_error *err) {
    char name[32];
    snprintf(name, sizeof name, "round-%d", k);
    return ss_path_join(out, cap, root, name, err);
}

/* Teacher t (0-based) of --teachers: round-0 itself, then teacher-2, ... */
static void teacher_name(char *out, size_t cap, int t) {
    if (t == 0) snprintf(out, cap, "round-0");
    else snprintf(out, cap, "teacher-%d", t + 1);
}

static uint64_t teacher_seed(const ss_finetune_opts *o, int t) { return o->seed + 1000u * (uint64_t)t; }

/* Dev metrics of a finished round, from its eval.json. */
static ss_status read_round_eval(ss_selftrain_round *rd, const char *dir, ss_select_metric sel, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_buf b = {0};
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_EVAL, err);
    if (!st) st = ss_read_file(path, &b, err);
    if (st) return st;
    cJSON *j = cJSON_ParseWithLength((const char *)b.data, b.len);
    ss_buf_free(&b);
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "dev");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(dev, "accuracy"), *f = cJSON_GetObjectItemCaseSensitive(dev, "macro_f1"),
                *m = cJSON_GetObjectItemCaseSensitive(dev, "mcc");
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(f) || !cJSON_IsNumber(m)) {
        cJSON_Delete(j);
        return ss_fail(err, SS_ERR_FORMAT, "%s: no dev accuracy, macro_f1 and mcc", path);
    }
    rd->dev_accuracy = a->valuedouble;
    rd->dev_macro_f1 = f->valuedouble;
    rd->dev_mcc = m->valuedouble;
    rd->dev_score = sel == SS_SELECT_MACRO_F1 ? rd->dev_macro_f1 : sel == SS_SELECT_MCC ? rd->dev_mcc : rd->dev_accuracy;
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(j, "lr"), *ld = cJSON_GetObjectItemCaseSensitive(j, "layer_decay");
    rd->lr = cJSON_IsNumber(lr) ? lr->valuedouble : 0; /* 0: not recorded (eval.json of an older run) */
    rd->layer_decay = cJSON_IsNumber(ld) ? ld->valuedouble : 0;
    cJSON_Delete(j);
    return SS_OK;
}

/* A round finished: its eval.json is there and no checkpoint (an
 * interrupted fine-tuning run writes eval.json for its best weights so far
 * and keeps its checkpoint; a finished one removes it). */
static int round_finished(const char *dir) {
    char a[SS_PATH_MAX], b[SS_PATH_MAX];
    ss_error e = {0};
    if (ss_path_join(a, sizeof a, dir, SS_RUN_EVAL, &e) || ss_path_join(b, sizeof b, dir, SS_RUN_CHECKPOINT, &e))
        return 0;
    return ss_file_exists(a) && !ss_file_exists(b);
}

/* Fine-tune one round into dir from base's options (train: its rows,
 * else --train's), resuming its checkpoint when asked. */
static ss_status train_round(const ss_finetune_opts *base, const char *dir, const char *train, int student,
                             int resume, int round, ss_finetune_progress_fn fn, void *ctx, ss_error *err) {
    ss_finetune_opts o = *base;
    o.out_dir = dir;
    o.unlabeled = NULL; /* a plain fine-tuning run: the self-training options are not its own */
    o.given &= ~(SS_OPT_BIT(SS_FINETUNE_OPT_rounds) | SS_OPT_BIT(SS_FINETUNE_OPT_threshold) |
                 SS_OPT_BIT(SS_FINETUNE_OPT_max_pseudo) | SS_OPT_BIT(SS_FINETUNE_OPT_student_epochs) |
                 SS_OPT_BIT(SS_FINETUNE_OPT_gold_repeat) | SS_OPT_BIT(SS_FINETUNE_OPT_teachers));
    if (train) {
        o.train_path = train;
        o.train_size = o.per_class = 0; /* the file holds the labelled subset already */
        if (student && base->student_epochs > 0) {
            o.epochs = base->student_epochs;
            o.eval_every = 0;
        }
    }
    o.resume = resume;
    ss_finetune_result res;
    ss_status st = ss_finetune(&o, &res, fn, ctx, err);
    if (st) return ss_error_prefix(err, "self-training round %d: ", round);
    ss_finetune_result_free(&res);
    return SS_OK;
}

/* One round into dir (train_round), unless it finished before; its dev
 * metrics into rd (rank 0 reads its eval.json). */
static ss_status run_round(const ss_finetune_opts *base, const char *dir, const char *train, int student,
                           ss_selftrain_round *rd, ss_finetune_progress_fn fn, void *ctx, ss_error *err) {
    char path[SS_PATH_MAX];
    int rank0 = ss_dist_rank() == 0;
    int32_t state[2] = {0, 0}; /* finished before; a checkpoint to resume (rank 0 looks) */
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_CHECKPOINT, err);
    if (!st && rank0) {
        state[0] = round_finished(dir);
        state[1] = ss_file_exists(path);
    }
    if ((st = from_rank0(st, state, sizeof state, err))) return st;
    if (state[0]) {
        char msg[SS_PATH_MAX + 64];
        snprintf(msg, sizeof msg, "round %d: finished before (%s)", rd->round, dir);
        note(fn, ctx, msg);
    } else {
        st = train_round(base, dir, train, student, state[1], rd->round, fn, ctx, err);
        if (st || stopped(base)) return st; /* interrupted: no eval.json to read yet */
    }
    return from_rank0(rank0 ? read_round_eval(rd, dir, base->select, err) : SS_OK, rd, sizeof *rd, err);
}

/* How --train's and --dev's rows are read (the columns and format the
 * user gave), labels required. */
static ss_labeled_opts labelled_opts(const ss_finetune_opts *o) {
    return (ss_labeled_opts){.text_column = o->text_column, .label_column = o->label_column, .format = o->format,
                             .skip_bad_rows = o->skip_bad_rows, .need_label = 1};
}

/* The JSONL keys of the rows written for a student or teacher: --train's
 * column names, so that its other options read them unchanged. */
static const char *text_key(const ss_finetune_opts *o) { return o->text_column ? o->text_column : "text"; }
static const char *label_key(const ss_finetune_opts *o) { return o->label_column ? o->label_column : "label"; }

static ss_status add_row(ss_buf *out, const char *tkey, const char *lkey, const char *text,
                         const char *label, ss_error *err) {
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, tkey, text) || !cJSON_AddStringToObject(j, lkey, label)) {
        cJSON_Delete(j);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = ss_buf_append(out, s, strlen(s), err);
    if (!st) st = ss_buf_append(out, "\n", 1, err);
    free(s);
    return st;
}

typedef struct {
    size_t i;
    float p;
} scored;

static int by_confidence(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* ties: file order, so the choice is deterministic */
}

/* Append the labelled rows the first teacher trained on (--train, cut to
 * its --train-size or --per-class subset by ss_finetune_train_subset, as
 * ss_finetune cuts it) `times` times to out as JSONL: the rows of the
 * teachers after the first (a teacher with another seed would draw another
 * subset) and the gold rows of a student (--gold-repeat times). */
static ss_status add_labelled_rows(ss_buf *out, const ss_finetune_opts *o, int times, ss_error *err) {
    ss_labeled_set lab = {0};
    ss_label_map classes = {0};
    ss_labeled_opts lo = labelled_opts(o);
    ss_status st = ss_labeled_read(&lab, o->train_path, &lo, err);
    if (!st) st = ss_label_map_build(&classes, &lab, o->train_path, err);
    if (!st) st = ss_finetune_train_subset(&lab, &classes, o, err);
    for (int rep = 0; !st && rep < times; rep++)
        for (size_t i = 0; !st && i < lab.n; i++)
            st = add_row(out, text_key(o), label_key(o), lab.texts[i], lab.labels[i], err);
    ss_label_map_free(&classes);
    ss_labeled_free(&lab);
    return st;
}

/* --teachers: the labelled rows written to path for the teachers after the
 * first. */
static ss_status write_labelled(const ss_finetune_opts *o, const char *path, ss_error *err) {
    ss_buf out = {0};
    ss_status st = add_labelled_rows(&out, o, 1, err);
    if (!st) st = ss_write_file_atomic(path, out.data, out.len, err);
    ss_buf_free(&out);
    return st;
}

static int same_labels(const ss_label_map *a, const ss_label_map *b) {
    if (a->n != b->n) return 0;
    for (int k = 0; k < a->n; k++)
        if (strcmp(a->names[k], b->names[k])) return 0;
    return 1;
}

/* probs[0..n*K) += the class probabilities of texts by the classifier in
 * dir, and the same for the dev texts; its labels must be `labels`. */
static ss_status add_probs(const char *dir, const ss_label_map *labels, const unlabeled_set *u,
                           const ss_labeled_set *dev, int batch, float *probs, float *dev_probs, ss_error *err) {
    ss_classifier c;
    ss_status st = ss_classifier_load(&c, dir, err);
    if (st) return st;
    size_t K = (size_t)labels->n, n = u->n > dev->n ? u->n : dev->n;
    float *p = NULL;
    if (!same_labels(&c.labels, labels))
        st = ss_fail(err, SS_ERR_FORMAT, "%s: its labels differ from the first teacher's", dir);
    if (!st && !(p = malloc(n * K * sizeof *p))) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_classify(&c, u->texts, u->n, batch, p, err);
    for (size_t i = 0; !st && i < u->n * K; i++) probs[i] += p[i];
    if (!st) st = ss_classify(&c, dev->texts, dev->n, batch, p, err);
    for (size_t i = 0; !st && i < dev->n * K; i++) dev_probs[i] += p[i];
    free(p);
    ss_classifier_free(&c);
    return st;
}

static int argmax(const float *p, int K) {
    int m = 0;
    for (int j = 1; j < K; j++)
        if (p[j] > p[m]) m = j;
    return m;
}

/* Label the unlabelled texts with the mean class probabilities of the
 * models in dirs[0..nd) (round k-1's model; for round 1, the --teachers of
 * round 0, whose ensemble is also scored on dev) and write the student's
 * rows (the labelled ones --gold-repeat times, then the chosen
 * pseudo-labelled ones) to `train` as JSONL, with the column names of
 * --train. */
static ss_status pseudo_label(const ss_finetune_opts *o, const unlabeled_set *u, char (*dirs)[SS_PATH_MAX], int nd,
                              const char *train, ss_selftrain_round *rd, ss_error *err) {
    ss_classifier c;
    ss_status st = ss_classifier_load(&c, dirs[0], err);
    if (st) return st;
    int K = c.labels.n;
    float *probs = malloc(u->n * (size_t)K * sizeof *probs), *dev_probs = NULL;
    int *pred = malloc(u->n * sizeof *pred);
    scored *cand = malloc(u->n * sizeof *cand);
    ss_labeled_set dev = {0};
    ss_buf out = {0};
    if (!probs || !pred || !cand) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_classify(&c, u->texts, u->n, o->batch, probs, err);
    if (!st && nd > 1) { /* the ensemble: the mean of the teachers' probabilities, here and on dev */
        ss_labeled_opts lo = labelled_opts(o);
        st = ss_labeled_read(&dev, o->dev_path, &lo, err);
        if (!st && !(dev_probs = malloc((dev.n ? dev.n : 1) * (size_t)K * sizeof *dev_probs)))
            st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
        if (!st) st = ss_classify(&c, dev.texts, dev.n, o->batch, dev_probs, err);
        for (int t = 1; !st && t < nd; t++) st = add_probs(dirs[t], &c.labels, u, &dev, o->batch, probs, dev_probs, err);
        for (size_t i = 0; !st && i < u->n * (size_t)K; i++) probs[i] /= (float)nd;
        size_t right = 0;
        for (size_t i = 0; !st && i < dev.n; i++)
            right += argmax(dev_probs + i * (size_t)K, K) == ss_label_map_find(&c.labels, dev.labels[i]);
        if (!st) rd->ensemble_dev_accuracy = dev.n ? (double)right / (double)dev.n : 0.0;
    }
    if (!st) st = add_labelled_rows(&out, o, o->gold_repeat, err); /* --gold-repeat: their weight among the pseudo */
    /* the prediction of each text, and how many per class reach the threshold */
    size_t per_class = SIZE_MAX, *reach = st ? NULL : calloc((size_t)K, sizeof *reach);
    if (!st && !reach) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < u->n; i++) {
        const float *p = probs + i * (size_t)K;
        pred[i] = argmax(p, K);
        reach[pred[i]] += p[pred[i]] >= o->threshold;
    }
    for (int k = 0; !st && k < K; k++) {
        rd->candidates += reach[k];
        if (reach[k] < per_class) per_class = reach[k];
    }
    free(reach);
    if (o->max_pseudo > 0 && per_class > (size_t)o->max_pseudo / (size_t)K) per_class = (size_t)o->max_pseudo / (size_t)K;
    /* per class the per_class most confident */
    for (int k = 0; !st && k < K; k++) {
        size_t m = 0;
        for (size_t i = 0; i < u->n; i++)
            if (pred[i] == k && probs[i * (size_t)K + k] >= o->threshold) cand[m++] = (scored){i, probs[i * (size_t)K + k]};
        qsort(cand, m, sizeof *cand, by_confidence);
        for (size_t r = 0; !st && r < per_class; r++) {
            size_t i = cand[r].i;
            st = add_row(&out, text_key(o), label_key(o), u->texts[i], c.labels.names[k], err);
            rd->pseudo++;
            if (u->gold[i]) {
                rd->gold++;
                rd->correct += ss_label_map_find(&c.labels, u->gold[i]) == k;
            }
        }
    }
    rd->per_class = st ? 0 : per_class;
    if (!st && rd->pseudo > 0) st = ss_write_file_atomic(train, out.data, out.len, err);
    ss_buf_free(&out);
    ss_labeled_free(&dev);
    free(probs);
    free(dev_probs);
    free(pred);
    free(cand);
    ss_classifier_free(&c);
    return st;
}

/* ROUND/pseudo.json: what pseudo_label chose, so that a finished round is
 * not labelled again when the command runs again. */
static ss_status save_pseudo_stats(const char *dir, const ss_selftrain_round *rd, ss_error *err) {
    char path[SS_PATH_MAX], text[320];
    ss_status st = ss_path_join(path, sizeof path, dir, "pseudo.json", err);
    if (st) return st;
    int n = snprintf(text, sizeof text, "{\"pseudo_labels\": %zu, \"per_class\": %zu, \"candidates\": %zu, "
                     "\"pseudo_with_gold\": %zu, \"correct\": %zu, \"ensemble_dev_accuracy\": %.17g}\n", rd->pseudo,
                     rd->per_class, rd->candidates, rd->gold, rd->correct, rd->ensemble_dev_accuracy);
    return ss_write_file_atomic(path, text, (size_t)n, err);
}

/* 1 when the round's pseudo-labels were chosen before (pseudo.json and its
 * train.jsonl there, written when they were): the counts read back into rd.
 * The teacher is deterministic, so labelling again would choose the same. */
static int load_pseudo_stats(const char *dir, ss_selftrain_round *rd) {
    char path[SS_PATH_MAX];
    ss_error e = {0};
    ss_buf b = {0};
    if (ss_path_join(path, sizeof path, dir, "train.jsonl", &e) || !ss_file_exists(path)) return 0;
    if (ss_path_join(path, sizeof path, dir, "pseudo.json", &e) || ss_read_file(path, &b, &e)) return 0;
    cJSON *j = cJSON_ParseWithLength((const char *)b.data, b.len);
    ss_buf_free(&b);
    const char *keys[] = {"pseudo_labels", "per_class", "candidates", "pseudo_with_gold", "correct"};
    size_t *fields[] = {&rd->pseudo, &rd->per_class, &rd->candidates, &rd->gold, &rd->correct};
    int ok = j != NULL;
    for (int i = 0; ok && i < 5; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if ((ok = cJSON_IsNumber(v) && v->valuedouble >= 0)) *fields[i] = (size_t)v->valuedouble;
    }
    const cJSON *ens = cJSON_GetObjectItemCaseSensitive(j, "ensemble_dev_accuracy"); /* absent: written by one teacher */
    rd->ensemble_dev_accuracy = cJSON_IsNumber(ens) ? ens->valuedouble : -1.0;
    cJSON_Delete(j);
    return ok;
}

/* OUT/selftrain.json: the rounds and the one kept. */
static ss_status write_summary(const ss_finetune_opts *o, const ss_selftrain_result *r, ss_error *err) {
    cJSON *j = cJSON_CreateObject(), *rounds = cJSON_AddArrayToObject(j, "rounds");
    cJSON_AddStringToObject(j, "unlabeled", o->unlabeled);
    cJSON_AddNumberToObject(j, "unlabeled_texts", (double)r->unlabeled);
    cJSON_AddNumberToObject(j, "threshold", o->threshold);
    cJSON_AddNumberToObject(j, "best_round", r->best);
    cJSON_AddNumberToObject(j, "rounds_asked", o->rounds);
    if (r->stopped_at) cJSON_AddNumberToObject(j, "stopped_at_round", r->stopped_at);
    cJSON *teachers = cJSON_AddArrayToObject(j, "teachers");
    for (int t = 0; t < r->teachers; t++) {
        char name[32];
        cJSON *x = cJSON_CreateObject();
        teacher_name(name, sizeof name, t);
        cJSON_AddStringToObject(x, "dir", name);
        cJSON_AddNumberToObject(x, "seed", (double)teacher_seed(o, t));
        cJSON_AddNumberToObject(x, "dev_accuracy", r->teacher_dev_accuracy[t]);
        cJSON_AddItemToArray(teachers, x);
    }
    for (int k = 0; k < r->n; k++) {
        const ss_selftrain_round *rd = &r->rounds[k];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "round", rd->round);
        cJSON_AddNumberToObject(x, "pseudo_labels", (double)rd->pseudo);
        cJSON_AddNumberToObject(x, "candidates", (double)rd->candidates);
        cJSON_AddNumberToObject(x, "pseudo_with_gold", (double)rd->gold);
        if (rd->gold) cJSON_AddNumberToObject(x, "pseudo_accuracy", (double)rd->correct / (double)rd->gold);
        if (rd->ensemble_dev_accuracy >= 0) cJSON_AddNumberToObject(x, "ensemble_dev_accuracy", rd->ensemble_dev_accuracy);
        cJSON_AddNumberToObject(x, "dev_accuracy", rd->dev_accuracy);
        cJSON_AddNumberToObject(x, "dev_macro_f1", rd->dev_macro_f1);
        cJSON_AddNumberToObject(x, "dev_mcc", rd->dev_mcc);
        cJSON_AddItemToArray(rounds, x);
    }
    char *s = cJSON_Print(j), path[SS_PATH_MAX];
    cJSON_Delete(j);
    if (!s) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = ss_path_join(path, sizeof path, o->out_dir, "selftrain.json", err);
    if (!st) st = ss_write_file_atomic(path, s, strlen(s), err);
    free(s);
    return st;
}

/* The best round's classifier files into OUT (atomically, one by one). */
static ss_status copy_round(const char *from, const char *to, ss_error *err) {
    static const char *const files[] = {SS_RUN_CONFIG, SS_RUN_MODEL, SS_RUN_TOKENIZER, SS_RUN_TOKENIZER_CONFIG,
                                        SS_RUN_LABELS, SS_RUN_EVAL, SS_RUN_METRICS, SS_RUN_PROMPT};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char a[SS_PATH_MAX], b[SS_PATH_MAX];
        ss_buf buf = {0};
        ss_status st = ss_path_join(a, sizeof a, from, files[i], err);
        if (!st) st = ss_path_join(b, sizeof b, to, files[i], err);
        if (st) return st;
        if (!ss_file_exists(a)) { /* absent there: absent here too (a stale copy would mislead classify) */
            if (ss_file_exists(b) && remove(b) != 0)
                return ss_fail(err, SS_ERR_IO, "%s: cannot remove: %s", b, strerror(errno));
            continue;
        }
        if (!(st = ss_read_file(a, &buf, err))) st = ss_write_file_atomic(b, buf.data, buf.len, err);
        ss_buf_free(&buf);
        if (st) return st;
    }
    return SS_OK;
}

/* Round 0's teachers after the first (--teachers K): each fine-tuned on the
 * same labelled rows (OUT/labelled.jsonl) with its own seed into
 * OUT/teacher-T/, their directories into labellers[1..K) and their dev
 * accuracy into r. A teacher that finished before is not redone. */
static ss_status more_teachers(const ss_finetune_opts *o, ss_selftrain_result *r, char (*labellers)[SS_PATH_MAX],
                               ss_finetune_progress_fn fn, void *ctx, ss_error *err) {
    char labelled[SS_PATH_MAX], name[32], msg[SS_PATH_MAX + 128];
    ss_status st = ss_path_join(labelled, sizeof labelled, o->out_dir, "labelled.jsonl", err);
    if (!st && ss_dist_rank() == 0) st = write_labelled(o, labelled, err); /* the same rows every time: rewriting is harmless */
    st = from_rank0(st, NULL, 0, err);
    for (int t = 1; !st && t < o->teachers && !stopped(o); t++) {
        teacher_name(name, sizeof name, t);
        if ((st = ss_path_join(labellers[t], sizeof labellers[t], o->out_dir, name, err))) break;
        ss_finetune_opts ot = *o;
        ot.seed = teacher_seed(o, t);
        snprintf(msg, sizeof msg, "self-training round 0: teacher %d of %d (seed %llu) on the same labelled rows, "
                 "into %s", t + 1, o->teachers, (unsigned long long)ot.seed, labellers[t]);
        note(fn, ctx, msg);
        ss_selftrain_round tr = {.round = 0};
        if (!(st = run_round(&ot, labellers[t], labelled, 0, &tr, fn, ctx, err)))
            r->teacher_dev_accuracy[t] = tr.dev_accuracy;
    }
    return st;
}

/* The options of the rounds after the first teacher: its learning rate and
 * layer decay where the user left them to the defaults. The defaults follow
 * the rows a run trains on (finetune.c's auto_hparams: prompt-based
 * fine-tuning of a decoder takes 1e-5 under 1,000 rows, 2e-4 with layer
 * decay 0.8 from 1,000) and were measured on labelled rows; a student's
 * rows are mostly pseudo-labels, so the student keeps the recipe of its
 * labelled rows instead of one its pseudo-labels would pick. */
static void after_teacher_opts(ss_finetune_opts *so, const ss_finetune_opts *o, const ss_selftrain_round *teacher,
                               ss_finetune_progress_fn fn, void *ctx) {
    *so = *o;
    if (o->lr == 0 && teacher->lr > 0) so->lr = teacher->lr;
    if (o->layer_decay == 0 && teacher->layer_decay > 0) so->layer_decay = teacher->layer_decay;
    if (so->lr == o->lr && so->layer_decay == o->layer_decay) return;
    char msg[192];
    snprintf(msg, sizeof msg, "self-training: the later rounds train with the first teacher's learning rate %g and "
             "layer decay %g (its defaults, from the labelled rows)", so->lr, so->layer_decay);
    note(fn, ctx, msg);
}

/* The matrix products that label round k's pool: --precision's choice, made
 * here as a fine-tuning run makes it. Without this the labelling would
 * compute with whatever the last fine-tuning in this process chose, or,
 * when every teacher had finished before (a resumed run), the library's
 * default backend: other bits, and on a CPU OpenBLAS runs generic kernels
 * on, several times slower. */
static ss_status labelling_precision(const ss_finetune_opts *o, int k, ss_finetune_progress_fn fn, void *ctx,
                                     ss_error *err) {
    ss_train_state state;
    memset(&state, 0, sizeof state);
    char pmsg[512], msg[600];
    ss_status st = ss_engine_precision(o->precision, 0, &state, pmsg, sizeof pmsg, err);
    if (st) return st;
    snprintf(msg, sizeof msg, "self-training round %d, labelling: %s", k, pmsg);
    note(fn, ctx, msg);
    return SS_OK;
}

/* Round k's pseudo-labels, by the models in labellers[0..nl), into its
 * train.jsonl and pseudo.json and their counts into rd; or, when the
 * command runs again, the ones chosen before. Under mpirun rank 0 labels
 * and writes, the other ranks choose the products with it
 * (ss_engine_precision is collective) and take its counts. */
static ss_status label_round(const ss_finetune_opts *o, const unlabeled_set *u, char (*labellers)[SS_PATH_MAX],
                             int nl, const char *dir, const char *train, int k, ss_selftrain_round *rd,
                             ss_finetune_progress_fn fn, void *ctx, ss_error *err) {
    int rank0 = ss_dist_rank() == 0;
    int32_t before = rank0 && load_pseudo_stats(dir, rd);
    ss_status st = from_rank0(SS_OK, &before, sizeof before, err);
    if (!st && !before) {
        st = labelling_precision(o, k, fn, ctx, err);
        if (!st && rank0) st = pseudo_label(o, u, labellers, nl, train, rd, err);
        if (!st && rank0 && rd->pseudo) st = save_pseudo_stats(dir, rd, err);
    }
    return from_rank0(st, rd, sizeof *rd, err);
}

ss_status ss_selftrain(const ss_finetune_opts *o, ss_selftrain_result *r, ss_finetune_progress_fn fn, void *ctx,
                       ss_error *err) {
    memset(r, 0, sizeof *r);
    ss_status st = ss_finetune_opts_check(o, err);
    if (st) return st;
    if (!o->unlabeled) return ss_fail(err, SS_ERR_ARG, "self-training needs unlabelled texts (--unlabeled FILE)");
    if (o->resume)
        return ss_fail(err, SS_ERR_ARG, "self-training resumes by itself: run the same command again, without --resume");
    if (o->format != SS_FMT_AUTO)
        return ss_fail(err, SS_ERR_ARG, "self-training writes the student's rows as JSONL: leave --format out (files "
                       "are told apart by their extension)");
    unlabeled_set u;
    if ((st = read_unlabeled(&u, o, err))) return st;
    r->unlabeled = u.n;
    r->teachers = o->teachers;
    r->rounds = calloc((size_t)o->rounds + 1, sizeof *r->rounds);
    r->teacher_dev_accuracy = calloc((size_t)o->teachers, sizeof *r->teacher_dev_accuracy);
    /* the models that label the next round: round k-1's, or round 0's teachers */
    char (*labellers)[SS_PATH_MAX] = malloc((size_t)o->teachers * sizeof *labellers);
    int n_labellers = 0;
    if (!r->rounds || !r->teacher_dev_accuracy || !labellers) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) st = ss_mkdir_p(o->out_dir, err);
    char dir[SS_PATH_MAX], train[SS_PATH_MAX], msg[512];
    ss_finetune_opts later = *o; /* the rounds after the first teacher (after_teacher_opts) */
    for (int k = 0; !st && k <= o->rounds && !stopped(o); k++) {
        ss_selftrain_round *rd = &r->rounds[k];
        rd->round = k;
        rd->ensemble_dev_accuracy = -1.0;
        if ((st = round_dir(dir, sizeof dir, o->out_dir, k, err))) break;
        if (k == 0) {
            snprintf(msg, sizeof msg, "self-training round 0: the teacher, on the labelled rows alone (%zu unlabelled "
                     "texts in %s)", u.n, o->unlabeled);
            note(fn, ctx, msg);
            if (!(st = run_round(o, dir, NULL, 0, rd, fn, ctx, err))) r->n = 1;
            strcpy(labellers[0], dir);
            n_labellers = 1;
            r->teacher_dev_accuracy[0] = rd->dev_accuracy;
            if (!st) after_teacher_opts(&later, o, rd, fn, ctx);
            if (!st && o->teachers > 1 && !stopped(o))
                st = more_teachers(&later, r, labellers, fn, ctx, err);
            if (!st) n_labellers = o->teachers;
            continue;
        }
        if ((st = ss_mkdir_p(dir, err)) || (st = ss_path_join(train, sizeof train, dir, "train.jsonl", err))) break;
        if ((st = label_round(o, &u, labellers, n_labellers, dir, train, k, rd, fn, ctx, err))) break;
        if (rd->pseudo == 0) {
            snprintf(msg, sizeof msg, "self-training round %d: some class has no unlabelled text predicted with "
                     "probability >= %g (%zu texts reached it in all): stopping after round %d", k, o->threshold,
                     rd->candidates, k - 1);
            note(fn, ctx, msg);
            r->stopped_at = k;
            break;
        }
        char ens[96] = "";
        if (rd->ensemble_dev_accuracy >= 0)
            snprintf(ens, sizeof ens, " from %d teachers (their ensemble: %.2f%% on dev)", n_labellers,
                     100.0 * rd->ensemble_dev_accuracy);
        if (rd->gold)
            snprintf(msg, sizeof msg, "self-training round %d: %zu pseudo-labels%s (%zu per class, of %zu at or above "
                     "%g), %.2f%% of the %zu with a gold label correct", k, rd->pseudo, ens, rd->per_class,
                     rd->candidates, o->threshold, 100.0 * (double)rd->correct / (double)rd->gold, rd->gold);
        else
            snprintf(msg, sizeof msg, "self-training round %d: %zu pseudo-labels%s (of %zu at or above %g)", k,
                     rd->pseudo, ens, rd->candidates, o->threshold);
        note(fn, ctx, msg);
        if (!(st = run_round(&later, dir, train, 1, rd, fn, ctx, err))) r->n = k + 1;
        strcpy(labellers[0], dir);
        n_labellers = 1;
    }
    if (!st && r->n > 0 && !stopped(o)) {
        for (int k = 1; k < r->n; k++)
            if (r->rounds[k].dev_score > r->rounds[r->best].dev_score) r->best = k;
        if (ss_dist_rank() == 0) { /* rank 0 writes OUT */
            if (!(st = round_dir(dir, sizeof dir, o->out_dir, r->best, err))) st = copy_round(dir, o->out_dir, err);
            if (!st) st = write_summary(o, r, err);
        }
        st = from_rank0(st, NULL, 0, err);
    }
    free(labellers);
    unlabeled_free(&u);
    return st;
}

void ss_selftrain_result_free(ss_selftrain_result *r) {
    free(r->rounds);
    free(r->teacher_dev_accuracy);
    memset(r, 0, sizeof *r);
}
