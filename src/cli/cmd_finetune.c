/* selfsup finetune: a classification head on a pretrained model (or on a
 * fresh one, the baseline), trained on labelled text. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "selfsup/finetune.h"

static const char usage[] =
    "usage: selfsup finetune --init RUN|none --train FILE --dev FILE [--test FILE] --out DIR\n"
    "         [--text-column NAME --label-column label --skip-bad-rows --format tsv|csv|jsonl]\n"
    "         [--epochs N --lr LR --batch B --max-seq T --warmup-ratio R --weight-decay W\n"
    "          --clip C --dropout P --seed S --threads N]\n"
    "         [--eval-every N --patience N --select accuracy|macro_f1|mcc --train-size N]\n"
    "         [--pooling cls|last|mean --pooler|--no-pooler --freeze-encoder\n"
    "          --class-weights balanced|w0,w1,...]\n"
    "         with --init none: --tokenizer FILE [--kind encoder|decoder]\n"
    "                           [--preset tiny|small|base | --layers L --d-model D --heads H [--d-ff F]]\n"
    "\n"
    "Fine-tunes a sequence classifier. --init RUN starts from a pretrained run\n"
    "(mlm, rtd: its discriminator, or clm), --init none from random weights of\n"
    "the same kind of model (the baseline to compare with). Files are TSV, CSV\n"
    "(header row naming the columns) or JSONL, by extension, optionally .zst;\n"
    "labels may be any strings (class ids follow their sorted order, saved in\n"
    "DIR/labels.json). The text is the column (JSONL: key) named by --text-column,\n"
    "else the one named 'text' or 'sentence' (Hugging Face datasets use 'text',\n"
    "GLUE 'sentence'; a file with both must choose). A malformed row stops the run naming FILE:LINE, unless\n"
    "--skip-bad-rows (they are counted). The whole model is trained unless\n"
    "--freeze-encoder. Dev is evaluated every epoch (or every N steps) and the\n"
    "best weights are kept in DIR; --patience N stops after N evaluations\n"
    "without improvement. Accuracy, macro-F1, MCC and the confusion matrix of\n"
    "the best weights go to DIR/eval.json (dev, and test when given).\n"
    "\n"
    "An encoder reads '[CLS] text [SEP]' and pools [CLS] through a pooler\n"
    "(dense + tanh); a decoder reads 'text <|endoftext|>' and pools the last\n"
    "position. Texts longer than --max-seq keep their start.\n"
    "\n"
    "defaults: --epochs 3, --lr 1e-4 (linear warmup over 10% of the steps, then\n"
    "linear decay to 0), --batch 32, --max-seq 128, --weight-decay 0.01,\n"
    "--clip 1.0, --dropout 0.1, --seed 1337, --select accuracy, --patience 0\n"
    "(off); from scratch: --kind encoder --preset small.\n"
    "Ctrl-C stops after the current step with the best weights so far in DIR\n"
    "(evaluated and written as at the end) and exit status 130; a second Ctrl-C\n"
    "quits at once. Short forms: -o DIR (--out), -t N (--threads).\n";

static void parse_scratch(cli_args *a, ss_finetune_opts *o) {
    ss_error err = {0};
    const char *kind = cli_opt(a, "--kind"), *preset = cli_opt(a, "--preset");
    long long L = cli_opt_int(a, "--layers", 0), D = cli_opt_int(a, "--d-model", 0);
    long long H = cli_opt_int(a, "--heads", 0), F = cli_opt_int(a, "--d-ff", 0);
    o->tokenizer = cli_opt(a, "--tokenizer");
    if (o->init && (kind || preset || L || D || H || F || o->tokenizer))
        cli_die(a->command, "--kind, --preset, --layers/--d-model/--heads/--d-ff and --tokenizer are for "
                "--init none; a pretrained model brings its own");
    if (kind && strcmp(kind, "encoder") && strcmp(kind, "decoder"))
        cli_die(a->command, "--kind must be encoder or decoder");
    if (kind) o->scratch.kind = strcmp(kind, "encoder") == 0 ? SS_ENCODER : SS_DECODER;
    if (preset && (L || D || H)) cli_die(a->command, "give either --preset or --layers/--d-model/--heads");
    if (preset && ss_config_preset(&o->scratch, preset, &err)) cli_die(a->command, "%s", err.msg);
    if (L || D || H) {
        if (!L || !D || !H) cli_die(a->command, "--layers, --d-model and --heads go together");
        o->scratch.n_layer = (int)L;
        o->scratch.d_model = (int)D;
        o->scratch.n_head = (int)H;
        o->scratch.d_ff = (int)(F ? F : 4 * D);
    }
}

static void parse_head(cli_args *a, ss_finetune_opts *o) {
    ss_error err = {0};
    const char *pool = cli_opt(a, "--pooling"), *sel = cli_opt(a, "--select"), *fmt = cli_opt(a, "--format");
    ss_pooling p;
    if (pool && ss_pooling_parse(pool, &p, &err)) cli_die(a->command, "%s", err.msg);
    if (pool) o->pooling = (int)p;
    int on = cli_flag(a, "--pooler"), off = cli_flag(a, "--no-pooler");
    if (on && off) cli_die(a->command, "--pooler and --no-pooler exclude each other");
    if (on || off) o->pooler = on;
    o->freeze_encoder = cli_flag(a, "--freeze-encoder");
    o->class_weights = cli_opt(a, "--class-weights");
    if (sel && strcmp(sel, "accuracy") && strcmp(sel, "macro_f1") && strcmp(sel, "mcc"))
        cli_die(a->command, "--select must be accuracy, macro_f1 or mcc");
    if (sel) o->select = !strcmp(sel, "mcc") ? SS_SELECT_MCC : !strcmp(sel, "macro_f1") ? SS_SELECT_MACRO_F1
                                                                                       : SS_SELECT_ACCURACY;
    if (fmt && strcmp(fmt, "tsv") && strcmp(fmt, "csv") && strcmp(fmt, "jsonl"))
        cli_die(a->command, "--format must be tsv, csv or jsonl");
    if (fmt) o->table.format = !strcmp(fmt, "tsv") ? SS_FMT_TSV : !strcmp(fmt, "csv") ? SS_FMT_CSV : SS_FMT_JSONL;
}

static void parse(cli_args *a, ss_finetune_opts *o) {
    ss_finetune_opts_defaults(o);
    const char *init = cli_require(a, "--init");
    o->init = strcmp(init, "none") == 0 ? NULL : init;
    o->train_path = cli_require(a, "--train");
    o->dev_path = cli_require(a, "--dev");
    o->test_path = cli_opt(a, "--test");
    o->out_dir = cli_require(a, "--out");
    o->table.text_column = cli_opt(a, "--text-column");
    o->table.label_column = cli_opt(a, "--label-column");
    o->table.skip_bad_rows = cli_flag(a, "--skip-bad-rows");
    o->epochs = (int)cli_opt_int(a, "--epochs", o->epochs);
    o->lr = cli_opt_double(a, "--lr", o->lr);
    o->batch = (int)cli_opt_int(a, "--batch", o->batch);
    o->max_seq = (int)cli_opt_int(a, "--max-seq", o->max_seq);
    o->warmup_ratio = cli_opt_double(a, "--warmup-ratio", o->warmup_ratio);
    o->weight_decay = cli_opt_double(a, "--weight-decay", o->weight_decay);
    o->clip = cli_opt_double(a, "--clip", o->clip);
    o->dropout = cli_opt_double(a, "--dropout", o->dropout);
    o->seed = (uint64_t)cli_opt_int(a, "--seed", (long long)o->seed);
    o->eval_every = cli_opt_int(a, "--eval-every", 0);
    o->patience = (int)cli_opt_int(a, "--patience", 0);
    long long ts = cli_opt_int(a, "--train-size", 0);
    if (ts < 0 || o->eval_every < 0 || o->patience < 0)
        cli_die(a->command, "--train-size, --eval-every and --patience must be >= 0");
    o->train_size = (size_t)ts;
    parse_scratch(a, o);
    parse_head(a, o);
}

static void print_metrics(const char *split, const ss_class_metrics *m) {
    printf("%s: accuracy %.4f  macro-F1 %.4f  MCC %.4f  (n=%lld)\n", split, m->accuracy, m->macro_f1, m->mcc,
           (long long)m->n);
}

static void progress(void *ctx, const ss_finetune_progress *p) {
    (void)ctx;
    if (p->message) {
        printf("%s\n", p->message);
    } else if (p->is_eval) {
        printf("epoch %d step %lld/%lld: train loss %.4f | dev accuracy %.4f macro-F1 %.4f MCC %.4f%s\n", p->epoch,
               (long long)p->step, (long long)p->total_steps, p->loss, p->dev->accuracy, p->dev->macro_f1,
               p->dev->mcc, p->improved ? "  (best, saved)" : "");
    } else {
        char eta[32];
        cli_fmt_duration(eta, sizeof eta, p->elapsed / (double)p->step * (double)(p->total_steps - p->step));
        printf("step %lld/%lld  epoch %d  loss %.4f  lr %.2e  %.0f texts/s  ETA %s\n", (long long)p->step,
               (long long)p->total_steps, p->epoch, p->loss, p->lr, p->seqs_per_s, eta);
    }
    fflush(stdout);
}

static void print_confusion(const ss_class_metrics *m) {
    printf("confusion (rows: true, columns: predicted):\n");
    for (int i = 0; i < m->k; i++) {
        for (int j = 0; j < m->k; j++) printf(" %7lld", (long long)m->confusion[i * m->k + j]);
        printf("\n");
    }
}

int cmd_finetune(int argc, char **argv) {
    cli_args a;
    ss_finetune_opts o;
    cli_args_init(&a, argc, argv, "finetune", usage);
    parse(&a, &o);
    int threads = (int)cli_opt_int(&a, "--threads", 0);
    if (cli_args_done(&a)) return 2;
    if (a.n_positional) cli_die(a.command, "unexpected argument '%s'", a.positional[0]);
    cli_setup_threads(threads);
    o.stop = cli_catch_interrupt();
    ss_finetune_result r;
    ss_error err = {0};
    ss_status st = ss_finetune(&o, &r, progress, NULL, &err);
    cli_args_free(&a);
    if (st) return cli_report("finetune", &err);
    printf("best: epoch %d, step %lld of %lld\n", r.best_epoch, (long long)r.best_step, (long long)r.steps);
    print_metrics("dev", &r.dev);
    print_confusion(&r.dev);
    if (r.test.n) print_metrics("test", &r.test);
    printf("done: %s (eval.json, model, labels.json)\n", o.out_dir);
    ss_finetune_result_free(&r);
    if (*o.stop) {
        fprintf(stderr, "interrupted: the best weights so far are in %s\n", o.out_dir);
        return CLI_EXIT_INTERRUPTED;
    }
    return 0;
}
